//! Global ids for the GraphQL APIs: opaque, bound to one store, unforgeable.
//!
//! An id is `gid://ecom/<Type>/<uuid>` together with the store's id and an HMAC of
//! both, base64url-encoded: `base64url(1 ‖ tenant(16) ‖ mac(16) ‖ gid)`. Decoding
//! checks the MAC and the store, so an id minted for store A is simply not found on
//! store B, and an id nobody minted is not found anywhere.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ecom_core::TenantId;
use hmac::{Hmac, Mac};
use std::sync::Arc;
use uuid::Uuid;

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;
const HEADER: usize = 1 + 16 + MAC_LEN;
/// Longer input is not an id we made; refused before decoding.
const MAX_ID_CHARS: usize = 200;

/// What an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Product,
    ProductVariant,
    Collection,
    Image,
    Cart,
    /// A cart line: the cart's line of one variant (named by the variant's id).
    CartLine,
    /// A cart's one delivery group (named by the cart's id).
    CartDeliveryGroup,
    Order,
    LineItem,
    Customer,
    WebhookSubscription,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Product => "Product",
            Self::ProductVariant => "ProductVariant",
            Self::Collection => "Collection",
            Self::Image => "ProductImage",
            Self::Cart => "Cart",
            Self::CartLine => "CartLine",
            Self::CartDeliveryGroup => "CartDeliveryGroup",
            Self::Order => "Order",
            Self::LineItem => "LineItem",
            Self::Customer => "Customer",
            Self::WebhookSubscription => "WebhookSubscription",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        const ALL: [Kind; 11] = [
            Kind::Product,
            Kind::ProductVariant,
            Kind::Collection,
            Kind::Image,
            Kind::Cart,
            Kind::CartLine,
            Kind::CartDeliveryGroup,
            Kind::Order,
            Kind::LineItem,
            Kind::Customer,
            Kind::WebhookSubscription,
        ];
        ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Encodes and checks global ids with a key derived from the platform secret.
#[derive(Clone)]
pub struct IdCodec {
    key: Arc<[u8; 32]>,
}

impl IdCodec {
    pub fn new(key: Arc<[u8; 32]>) -> Self {
        Self { key }
    }

    fn mac(&self, tenant: TenantId, gid: &[u8]) -> Hmac<sha2::Sha256> {
        let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key[..]) else {
            unreachable!("HMAC accepts keys of any length")
        };
        mac.update(&[VERSION]);
        mac.update(tenant.0.as_bytes());
        mac.update(gid);
        mac
    }

    /// The id of `uuid` of this kind in this store.
    pub fn encode(&self, tenant: TenantId, kind: Kind, uuid: Uuid) -> String {
        let gid = format!("gid://ecom/{}/{uuid}", kind.as_str());
        let tag = self.mac(tenant, gid.as_bytes()).finalize().into_bytes();
        let mut bytes = Vec::with_capacity(HEADER + gid.len());
        bytes.push(VERSION);
        bytes.extend_from_slice(tenant.0.as_bytes());
        bytes.extend_from_slice(&tag[..MAC_LEN]);
        bytes.extend_from_slice(gid.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The uuid an id names, if it is a genuine id of this kind for this store;
    /// `None` for anything else (garbage, forged, another store's, another kind).
    pub fn decode(&self, tenant: TenantId, kind: Kind, id: &str) -> Option<Uuid> {
        if id.len() > MAX_ID_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(id.trim()).ok()?;
        if bytes.len() <= HEADER || bytes[0] != VERSION || bytes[1..17] != tenant.0.as_bytes()[..] {
            return None;
        }
        let gid = &bytes[HEADER..];
        self.mac(tenant, gid).verify_truncated_left(&bytes[17..HEADER]).ok()?;
        let rest = std::str::from_utf8(gid).ok()?.strip_prefix("gid://ecom/")?;
        let (k, uuid) = rest.split_once('/')?;
        if Kind::parse(k)? != kind {
            return None;
        }
        Uuid::parse_str(uuid).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_only_in_their_store_and_kind() {
        let codec = IdCodec::new(Arc::new([7; 32]));
        let (a, b) = (TenantId(Uuid::now_v7()), TenantId(Uuid::now_v7()));
        let p = Uuid::now_v7();
        let id = codec.encode(a, Kind::Product, p);
        assert_eq!(codec.decode(a, Kind::Product, &id), Some(p));
        assert_eq!(codec.decode(b, Kind::Product, &id), None, "another store's id");
        assert_eq!(codec.decode(a, Kind::Collection, &id), None, "another kind");
        let other_key = IdCodec::new(Arc::new([8; 32]));
        assert_eq!(other_key.decode(a, Kind::Product, &id), None, "minted with another key");
        for garbage in ["", "x", "gid://ecom/Product/1", "AAAA", &"A".repeat(500), "é!"] {
            assert_eq!(codec.decode(a, Kind::Product, garbage), None, "{garbage}");
        }
        // Re-targeting a genuine id at another store or product breaks the MAC.
        let mut bytes = URL_SAFE_NO_PAD.decode(&id).unwrap_or_default();
        bytes[1..17].copy_from_slice(b.0.as_bytes());
        assert_eq!(codec.decode(b, Kind::Product, &URL_SAFE_NO_PAD.encode(&bytes)), None);
        let mut bytes = URL_SAFE_NO_PAD.decode(&id).unwrap_or_default();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(codec.decode(a, Kind::Product, &URL_SAFE_NO_PAD.encode(&bytes)), None, "another product");
    }
}
