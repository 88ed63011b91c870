//! Idempotency keys for mutating API requests, as Stripe has them: a client sends
//! `Idempotency-Key` with a request; the first request with that key runs and its answer
//! is kept; a retry with the same key and the same request gets the kept answer without
//! running again; the same key with another request is refused.

use crate::{Result, ServiceError};
use chrono::{Duration, Utc};
use ecom_core::{Invalid, TenantId};
use ecom_store::idempotency::{self as repo, Begin};
use ecom_store::{Db, StoreError};
use sha2::{Digest, Sha256};

/// How long a key's first request may run before a retry may take the key over (its
/// process is taken to have died). The operations behind keys are safe to run again.
const STALE_AFTER_SECS: i64 = 60;

/// The longest key accepted (Stripe's limit).
pub const MAX_KEY_LEN: usize = 255;

/// The answer to a request with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyed {
    /// The request's answer (HTTP status and JSON body); `replayed` when it is the kept
    /// answer of an earlier request with the same key.
    Answer { status: u16, body: String, replayed: bool },
    /// The key was used before with a different request.
    Mismatch,
    /// The first request with this key has not finished yet.
    InProgress,
}

#[derive(Clone)]
pub struct Idempotency {
    db: Db,
}

impl Idempotency {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Checks a key as a client sent it: 1–255 visible ASCII characters.
    pub fn parse_key(raw: &str) -> Result<String, Invalid> {
        let key = raw.trim();
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Invalid::new(
                "Idempotency-Key",
                format!("send 1 to {MAX_KEY_LEN} visible ASCII characters, e.g. a UUID, unique per change"),
            ));
        }
        Ok(key.to_owned())
    }

    /// A fingerprint of a request: what it asks for, so a key reused for another
    /// request is noticed.
    pub fn fingerprint(parts: &[&[u8]]) -> String {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p);
        }
        hex::encode(h.finalize())
    }

    /// Runs `request` once per `(client, key)`: its answer is kept, unless its status is
    /// 5xx (a failure on our side, which a retry should run afresh).
    pub async fn run<F, Fut>(
        &self,
        tenant: TenantId,
        client: &str,
        key: &str,
        fingerprint: &str,
        request: F,
    ) -> Result<Keyed>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (u16, String)>,
    {
        let now = Utc::now();
        let txn = self.db.tenant_txn(tenant).await?;
        let begin =
            repo::begin(&txn, tenant, client, key, fingerprint, now, now - Duration::seconds(STALE_AFTER_SECS)).await?;
        commit(txn).await?;
        let id = match begin {
            Begin::Run(id) => id,
            Begin::Replay { status, response } => return Ok(Keyed::Answer { status, body: response, replayed: true }),
            Begin::Mismatch => return Ok(Keyed::Mismatch),
            Begin::InProgress => return Ok(Keyed::InProgress),
        };
        let (status, body) = request().await;
        let txn = self.db.tenant_txn(tenant).await?;
        if status >= 500 {
            repo::forget(&txn, tenant, id).await?;
        } else {
            repo::complete(&txn, tenant, id, status, &body, Utc::now()).await?;
        }
        commit(txn).await?;
        Ok(Keyed::Answer { status, body, replayed: false })
    }
}

async fn commit(txn: ecom_store::DatabaseTransaction) -> Result<()> {
    txn.commit().await.map_err(|e| ServiceError::from(StoreError::from(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert_eq!(Idempotency::parse_key(" abc-123 ").unwrap_or_default(), "abc-123");
        assert!(Idempotency::parse_key("").is_err());
        assert!(Idempotency::parse_key("has space").is_err());
        assert!(Idempotency::parse_key("ключ").is_err());
        assert!(Idempotency::parse_key(&"k".repeat(256)).is_err());
        assert!(Idempotency::parse_key(&"k".repeat(255)).is_ok());
    }

    #[test]
    fn fingerprints_separate_their_parts() {
        let a = Idempotency::fingerprint(&[b"POST", b"/a", b"bc"]);
        let b = Idempotency::fingerprint(&[b"POST", b"/ab", b"c"]);
        assert_ne!(a, b);
        assert_eq!(a, Idempotency::fingerprint(&[b"POST", b"/a", b"bc"]));
    }
}
