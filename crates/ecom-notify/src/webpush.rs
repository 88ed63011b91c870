//! Web Push: messages to browsers' push services, signed with VAPID (RFC 8292) and
//! encrypted to the subscription's keys (RFC 8291, `aes128gcm` of RFC 8188).
//!
//! A webpush row's recipient is a push subscription's id (`push_subscriptions`); its
//! `body_text` is the JSON the service worker shows ([`PushMessage`]: title, body,
//! url). The channel reads the subscription when it sends, so a subscription removed
//! meanwhile (the owner unsubscribed, or the push service answered 404/410 to an
//! earlier message) fails the row for good instead of reaching a dead endpoint.
//!
//! Keys: `ECOM_VAPID_PRIVATE_KEY` (the raw P-256 private key, base64url, as web-push
//! tools print it) when set; else a key pair generated once and kept in the database
//! (`platform_keys`, sealed with a key derived from `ECOM_SECRET_KEY`:
//! `ecom_core::sealed`), so every node signs with the same key and subscriptions
//! survive restarts. Browsers subscribe with the public key from `GET /push/key`.
//!
//! Crypto is aws-lc-rs (already the TLS provider): ECDH and ECDSA on P-256, HMAC-SHA-256
//! for HKDF, AES-128-GCM.

use crate::{Channel, Outgoing, SendError};
use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{aead, agreement, hmac, signature};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ecom_store::{Db, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The channel kind of Web Push rows; their recipient is a push subscription's id.
pub const WEBPUSH: &str = "webpush";

/// The record size written in the header; one record holds the whole message.
const RECORD_SIZE: u32 = 4096;
/// The longest JSON payload sent (push services take about 4 KB bodies).
pub const MAX_PAYLOAD: usize = 3000;
/// The `platform_keys` row of the generated key.
const KEY_NAME: &str = "vapid_private_key";

/// What the service worker shows: a notification with a title and a body, opening
/// `url` when clicked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushMessage {
    pub title: String,
    pub body: String,
    pub url: String,
}

impl PushMessage {
    /// The row text: the JSON, its body shortened to fit a push message.
    pub fn to_row_text(&self) -> String {
        let mut m = self.clone();
        m.title = m.title.chars().take(120).collect();
        m.body = m.body.chars().take(1000).collect();
        serde_json::to_string(&m).unwrap_or_default()
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// HKDF-SHA-256 (RFC 5869) for outputs of at most 32 bytes: one expand block.
fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let prk = hmac_sha256(salt, &[ikm]);
    hmac_sha256(&prk, &[info, &[1]])[..len.min(32)].to_vec()
}

fn decode_key(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_end_matches('=');
    B64.decode(s).ok()
}

/// A subscription's keys as the browser gave them: `p256dh` an uncompressed P-256
/// point (65 bytes), `auth` 16 bytes, both base64url. The error names the field.
pub fn check_subscription_keys(p256dh: &str, auth: &str) -> Result<(), String> {
    let public = decode_key(p256dh).ok_or("keys.p256dh: not base64url")?;
    if public.len() != 65 || public[0] != 4 {
        return Err("keys.p256dh: expected an uncompressed P-256 public key (65 bytes)".into());
    }
    agreement::ParsedPublicKey::try_from(&agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &public))
        .map_err(|_| "keys.p256dh: not a point on P-256")?;
    let secret = decode_key(auth).ok_or("keys.auth: not base64url")?;
    if secret.len() != 16 {
        return Err("keys.auth: expected 16 bytes".into());
    }
    Ok(())
}

/// RFC 8291 with the sender's key and salt given (the RFC's example uses fixed ones):
/// the `aes128gcm` body, header (salt, record size, the sender's public key) then the
/// single record.
pub fn encrypt_with(
    plaintext: &[u8],
    ua_public: &[u8],
    auth_secret: &[u8],
    as_private: &agreement::PrivateKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, String> {
    if plaintext.len() > RECORD_SIZE as usize - 17 {
        return Err("the message is too long for one push record".into());
    }
    let as_public = as_private.compute_public_key().map_err(|_| "cannot compute the sender's public key")?;
    let as_public = as_public.as_ref();
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, ua_public);
    let ecdh_secret = agreement::agree(as_private, peer, "the subscription's key is not usable", |s| Ok(s.to_vec()))?;
    // IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" 0 ua_public as_public)
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let ikm = hkdf(auth_secret, &ecdh_secret, &key_info, 32);
    let cek = hkdf(salt, &ikm, b"Content-Encoding: aes128gcm\0", 16);
    let nonce = hkdf(salt, &ikm, b"Content-Encoding: nonce\0", 12);
    // The only (so the last) record: the text, then the 0x02 delimiter, no padding.
    let mut record = plaintext.to_vec();
    record.push(2);
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &cek).map_err(|_| "bad content key")?);
    let nonce = aead::Nonce::try_assume_unique_for_key(&nonce).map_err(|_| "bad nonce")?;
    key.seal_in_place_append_tag(nonce, aead::Aad::empty(), &mut record).map_err(|_| "encryption failed")?;
    let mut body = Vec::with_capacity(16 + 4 + 1 + as_public.len() + record.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(u8::try_from(as_public.len()).map_err(|_| "key too long")?);
    body.extend_from_slice(as_public);
    body.extend_from_slice(&record);
    Ok(body)
}

/// RFC 8291 encryption of `plaintext` to a subscription's keys (base64url), with a
/// fresh sender key pair and salt.
pub fn encrypt(plaintext: &[u8], p256dh: &str, auth: &str) -> Result<Vec<u8>, String> {
    check_subscription_keys(p256dh, auth)?;
    let ua_public = decode_key(p256dh).ok_or("keys.p256dh: not base64url")?;
    let auth_secret = decode_key(auth).ok_or("keys.auth: not base64url")?;
    let as_private = agreement::PrivateKey::generate(&agreement::ECDH_P256).map_err(|_| "cannot make a key")?;
    let mut salt = [0u8; 16];
    SystemRandom::new().fill(&mut salt).map_err(|_| "no randomness")?;
    encrypt_with(plaintext, &ua_public, &auth_secret, &as_private, &salt)
}

/// The application server's VAPID key pair (ES256) and contact.
pub struct VapidKey {
    pair: signature::EcdsaKeyPair,
    private_b64: String,
    public_b64: String,
    subject: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey").field("public", &self.public_b64).field("subject", &self.subject).finish()
    }
}

impl VapidKey {
    /// From the raw private key (32 bytes, base64url).
    pub fn from_private(private_b64: &str, subject: &str) -> Result<Self, String> {
        let raw = decode_key(private_b64).ok_or("expected base64url")?;
        if raw.len() != 32 {
            return Err("expected a raw P-256 private key: 32 bytes, base64url (43 characters)".into());
        }
        let agreement_key = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, &raw)
            .map_err(|_| "not a valid P-256 private key")?;
        let public = agreement_key.compute_public_key().map_err(|_| "not a valid P-256 private key")?;
        let pair = signature::EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &raw,
            public.as_ref(),
        )
        .map_err(|_| "not a valid P-256 private key")?;
        Ok(Self {
            public_b64: B64.encode(public.as_ref()),
            private_b64: B64.encode(&raw),
            pair,
            subject: subject.to_owned(),
        })
    }

    /// A new key pair.
    pub fn generate(subject: &str) -> Result<Self, String> {
        let pair = signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| "cannot generate a key pair")?;
        let raw: aws_lc_rs::encoding::EcPrivateKeyBin<'_> =
            pair.private_key().as_be_bytes().map_err(|_| "cannot export the key")?;
        Self::from_private(&B64.encode(raw.as_ref()), subject)
    }

    /// The public key browsers subscribe with (`applicationServerKey`): the
    /// uncompressed point, base64url.
    pub fn public_key(&self) -> &str {
        &self.public_b64
    }

    /// `Authorization: vapid t=<JWT>, k=<public key>` for a push to `endpoint`: the JWT
    /// is ES256 over `{aud: the endpoint's origin, exp: 12 hours on, sub}`.
    pub fn authorization(&self, endpoint: &reqwest::Url, now: chrono::DateTime<chrono::Utc>) -> Result<String, String> {
        let origin = endpoint.origin().ascii_serialization();
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": origin,
            "exp": (now + chrono::Duration::hours(12)).timestamp(),
            "sub": self.subject,
        });
        let claims = B64.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let sig = self.pair.sign(&SystemRandom::new(), signing_input.as_bytes()).map_err(|_| "signing failed")?;
        Ok(format!("vapid t={signing_input}.{}, k={}", B64.encode(sig.as_ref()), self.public_b64))
    }
}

/// The platform's VAPID key, shared by the channel and the web layer: the configured
/// one, or the one kept in the database (generated on first use). Cheap to clone.
#[derive(Clone)]
pub struct Vapid {
    db: Db,
    subject: String,
    configured: Option<Arc<VapidKey>>,
    /// Seals the generated key in `platform_keys`.
    sealer: ecom_core::sealed::Sealer,
    loaded: Arc<tokio::sync::OnceCell<Arc<VapidKey>>>,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid").field("subject", &self.subject).field("configured", &self.configured.is_some()).finish()
    }
}

/// How a sealed key is marked in `platform_keys` (rows from before sealing hold the
/// key itself, and are sealed when first read).
const SEALED: &str = "sealed:";

impl Vapid {
    /// `private_key` is `ECOM_VAPID_PRIVATE_KEY` when set; `subject` the contact
    /// (`mailto:…` or `https://…`) push services may use to reach the operator;
    /// `secret_key` the platform secret, which seals a generated key.
    pub fn new(db: Db, private_key: Option<&str>, subject: &str, secret_key: &[u8]) -> Result<Self, String> {
        let configured = match private_key.map(str::trim).filter(|k| !k.is_empty()) {
            Some(k) => Some(Arc::new(VapidKey::from_private(k, subject)?)),
            None => None,
        };
        let sealer = ecom_core::sealed::Sealer::new(secret_key, "ecom vapid key");
        Ok(Self { db, subject: subject.to_owned(), configured, sealer, loaded: Arc::default() })
    }

    /// The key: configured, or read from (and on the very first call, generated into)
    /// the database. Two nodes generating at once keep the first one stored.
    pub async fn key(&self) -> Result<Arc<VapidKey>, StoreError> {
        if let Some(k) = &self.configured {
            return Ok(k.clone());
        }
        self.loaded
            .get_or_try_init(|| async {
                let txn = self.db.platform_txn().await?;
                let stored = match ecom_store::channels::platform_key(&txn, KEY_NAME).await? {
                    Some(k) => k,
                    None => {
                        let fresh = VapidKey::generate(&self.subject).map_err(corrupt)?;
                        let sealed = format!("{SEALED}{}", self.sealer.seal(&fresh.private_b64));
                        let kept = ecom_store::channels::platform_key_or_insert(&txn, KEY_NAME, &sealed).await?;
                        tracing::info!(
                            "generated the Web Push (VAPID) key pair; set ECOM_VAPID_PRIVATE_KEY to choose one"
                        );
                        kept
                    }
                };
                let private = match stored.strip_prefix(SEALED) {
                    Some(sealed) => self.sealer.open(sealed).map_err(|e| corrupt(format!("{KEY_NAME}: {e}")))?,
                    None => {
                        // Kept in the clear by an older version: sealed now.
                        let sealed = format!("{SEALED}{}", self.sealer.seal(&stored));
                        ecom_store::channels::replace_platform_key(&txn, KEY_NAME, &sealed).await?;
                        stored
                    }
                };
                txn.commit().await?;
                Ok(Arc::new(VapidKey::from_private(&private, &self.subject).map_err(corrupt)?))
            })
            .await
            .cloned()
    }
}

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt { table: "platform_keys", detail }
}

/// Checks a push endpoint before it is contacted (the webhooks' SSRF guard); the
/// error says why it is refused.
pub type EndpointCheck = Arc<dyn Fn(&reqwest::Url) -> Result<(), String> + Send + Sync>;

/// Web Push through the subscription's push service.
pub struct WebPushChannel {
    db: Db,
    vapid: Vapid,
    /// A client whose resolver refuses non-public addresses (ecom-services' Outbound).
    client: reqwest::Client,
    check: EndpointCheck,
}

impl WebPushChannel {
    pub fn new(db: Db, vapid: Vapid, client: reqwest::Client, check: EndpointCheck) -> Self {
        Self { db, vapid, client, check }
    }

    async fn remove(&self, id: uuid::Uuid) -> Result<(), StoreError> {
        let txn = self.db.platform_txn().await?;
        ecom_store::channels::remove_push_subscription(&txn, id).await?;
        txn.commit().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Channel for WebPushChannel {
    fn kind(&self) -> &'static str {
        WEBPUSH
    }

    fn describe(&self) -> String {
        "Web Push (VAPID) to browsers' push services".into()
    }

    async fn send(&self, m: &Outgoing) -> Result<String, SendError> {
        let id = uuid::Uuid::parse_str(&m.to)
            .map_err(|_| SendError::Permanent("the recipient is not a push subscription id".into()))?;
        let transient = |e: StoreError| SendError::Transient(format!("database: {e}"));
        let txn = self.db.platform_txn().await.map_err(transient)?;
        let sub = ecom_store::channels::push_subscription_by_id(&txn, id).await.map_err(transient)?;
        txn.commit().await.map_err(|e| transient(e.into()))?;
        let Some(sub) = sub else {
            return Err(SendError::Permanent("the push subscription was removed".into()));
        };
        let url = reqwest::Url::parse(&sub.endpoint)
            .map_err(|_| SendError::Permanent("the subscription's endpoint is not a URL".into()))?;
        (self.check)(&url).map_err(|e| SendError::Permanent(format!("push endpoint refused: {e}")))?;
        let body = encrypt(m.text.as_bytes(), &sub.p256dh, &sub.auth).map_err(SendError::Permanent)?;
        let key = self.vapid.key().await.map_err(transient)?;
        let authorization = key.authorization(&url, chrono::Utc::now()).map_err(SendError::Transient)?;
        let response = self
            .client
            .post(url)
            .header("Authorization", authorization)
            .header("TTL", "86400")
            .header("Urgency", "high")
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("push service: {}", crate::sms::without_url(&e))))?;
        let status = response.status();
        if status.is_success() {
            let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let txn = self.db.platform_txn().await.map_err(transient)?;
            ecom_store::channels::touch_push_subscription(&txn, id, chrono::Utc::now()).await.map_err(transient)?;
            txn.commit().await.map_err(|e| transient(e.into()))?;
            return Ok(location.unwrap_or_else(|| format!("push:{}", status.as_u16())));
        }
        let text: String = response.text().await.unwrap_or_default().chars().take(300).collect();
        let detail = format!("push service answered {}: {}", status.as_u16(), text.trim());
        if matches!(status.as_u16(), 404 | 410) {
            // The browser unsubscribed or the subscription expired: it never comes back.
            self.remove(id).await.map_err(transient)?;
            return Err(SendError::Permanent(format!("{detail} (subscription removed)")));
        }
        if crate::sms::transient_status(status) {
            Err(SendError::Transient(detail))
        } else {
            Err(SendError::Permanent(detail))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn b(s: &str) -> Vec<u8> {
        B64.decode(s).unwrap()
    }

    /// RFC 8291 Appendix A: the example's keys and salt give exactly its message.
    #[test]
    fn encryption_reproduces_the_rfc_8291_example() {
        let as_private = agreement::PrivateKey::from_private_key(
            &agreement::ECDH_P256,
            &b("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"),
        )
        .unwrap();
        assert_eq!(
            B64.encode(as_private.compute_public_key().unwrap().as_ref()),
            "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
        );
        let salt: [u8; 16] = b("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let body = encrypt_with(
            b"When I grow up, I want to be a watermelon",
            &b("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"),
            &b("BTBZMqHH6r4Tts7J_aSIgg"),
            &as_private,
            &salt,
        )
        .unwrap();
        assert_eq!(
            B64.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn vapid_keys_round_trip_and_sign_verifiable_tokens() {
        let key = VapidKey::generate("mailto:ops@example.com").unwrap();
        let again = VapidKey::from_private(&key.private_b64, "mailto:ops@example.com").unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let url = reqwest::Url::parse("https://push.example.net/send/abc").unwrap();
        let auth = key.authorization(&url, chrono::Utc::now()).unwrap();
        let (t, k) = auth.strip_prefix("vapid t=").unwrap().split_once(", k=").unwrap();
        assert_eq!(k, key.public_key());
        let (input, sig) = t.rsplit_once('.').unwrap();
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, b(k))
            .verify(input.as_bytes(), &b(sig))
            .unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&b(input.split('.').nth(1).unwrap())).unwrap();
        assert_eq!(claims["aud"], "https://push.example.net");
        for bad in ["", "not base64!", "AAAA"] {
            assert!(VapidKey::from_private(bad, "mailto:x@example.com").is_err());
        }
    }

    #[test]
    fn subscription_keys_are_checked_by_field() {
        let p256dh = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        assert!(check_subscription_keys(p256dh, "BTBZMqHH6r4Tts7J_aSIgg").is_ok());
        assert!(check_subscription_keys("AAAA", "BTBZMqHH6r4Tts7J_aSIgg").unwrap_err().starts_with("keys.p256dh"));
        assert!(check_subscription_keys(p256dh, "AAAA").unwrap_err().starts_with("keys.auth"));
    }
}
