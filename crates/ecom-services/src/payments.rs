//! Payment providers behind one trait. Every call carries an idempotency key, so a
//! retried request (a double click, a timeout and retry) never charges twice.
//!
//! - `manual`: bank transfer or cash on delivery; nothing is charged, the merchant
//!   marks the order paid.
//! - `test_card`: behaves like a card gateway: authorise, capture, refund, void,
//!   declines by test card number (the numbers Stripe documents), and an asynchronous
//!   webhook signed the way Stripe signs them (`t=…,v1=HMAC-SHA256(secret, "t.body")`).

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::net::SocketAddr;
use std::time::Duration;

/// What a provider says about a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Money held on the card; `reference` identifies it at the provider.
    Authorized { reference: String },
    /// Money taken.
    Captured { reference: String },
    /// Nothing to charge now (manual payment); the merchant confirms it later.
    Pending,
    /// The card was refused; the message is for the shopper.
    Declined { message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The provider could not be reached or answered nonsense; safe to retry with the
    /// same idempotency key.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The request was wrong (unknown charge, amount too high).
    #[error("{0}")]
    Refused(String),
}

/// A charge for an order.
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    pub amount: i64,
    pub currency: String,
    /// Test card number, or a provider token from the browser.
    pub token: String,
    pub capture: bool,
    pub idempotency_key: String,
    /// Echoed in webhooks so they find their order.
    pub tenant_id: uuid::Uuid,
    pub order_id: uuid::Uuid,
}

/// An event a provider told us about, verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    pub id: String,
    /// `charge.authorized`, `charge.captured`, `charge.refunded`, `charge.failed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub reference: String,
    pub amount: i64,
    pub tenant_id: uuid::Uuid,
    pub order_id: uuid::Uuid,
}

#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// `manual`, `test_card`, `stripe`.
    fn code(&self) -> &'static str;
    /// For shoppers: "Bank transfer", "Card".
    fn title(&self) -> &'static str;
    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, PaymentError>;
    async fn capture(&self, reference: &str, amount: i64, idempotency_key: &str) -> Result<(), PaymentError>;
    async fn refund(&self, reference: &str, amount: i64, idempotency_key: &str) -> Result<(), PaymentError>;
    async fn void(&self, reference: &str, idempotency_key: &str) -> Result<(), PaymentError>;
    /// Checks a webhook's signature and parses it. `None` for providers without webhooks.
    fn verify_webhook(&self, signature_header: &str, body: &[u8]) -> Option<Result<WebhookEvent, String>>;
}

/// Bank transfer / cash on delivery.
pub struct Manual;

#[async_trait]
impl PaymentProvider for Manual {
    fn code(&self) -> &'static str {
        "manual"
    }
    fn title(&self) -> &'static str {
        "Bank transfer or cash on delivery"
    }
    async fn charge(&self, _req: &ChargeRequest) -> Result<ChargeOutcome, PaymentError> {
        Ok(ChargeOutcome::Pending)
    }
    async fn capture(&self, _: &str, _: i64, _: &str) -> Result<(), PaymentError> {
        Ok(())
    }
    async fn refund(&self, _: &str, _: i64, _: &str) -> Result<(), PaymentError> {
        // The merchant pays it back by hand; recording it is all there is.
        Ok(())
    }
    async fn void(&self, _: &str, _: &str) -> Result<(), PaymentError> {
        Ok(())
    }
    fn verify_webhook(&self, _: &str, _: &[u8]) -> Option<Result<WebhookEvent, String>> {
        None
    }
}

type HmacSha256 = Hmac<Sha256>;

/// Signs `body` as Stripe does: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t.body")>`.
pub fn sign_webhook(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable_hmac());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn unreachable_hmac() -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot happen.
    #[allow(clippy::expect_used)]
    HmacSha256::new_from_slice(b"x").expect("hmac takes any key")
}

/// Verifies a `t=…,v1=…` signature: any `v1` may match (secrets roll over), in constant
/// time, and the timestamp must be within `tolerance` of now (replays of old captures
/// are refused even before the event id is checked).
pub fn verify_signature(secret: &[u8], header: &str, body: &[u8], tolerance: Duration) -> Result<(), String> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(hex::decode(sig).unwrap_or_default()),
            _ => {}
        }
    }
    let t = timestamp.ok_or("signature header has no timestamp")?;
    let age = (chrono::Utc::now().timestamp() - t).unsigned_abs();
    if age > tolerance.as_secs() {
        return Err("signature timestamp outside the tolerance".into());
    }
    for sig in signatures {
        let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable_hmac());
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err("no signature matches".into())
}

/// Test card numbers, as Stripe documents them.
pub const TEST_CARD_OK: &str = "4242424242424242";
pub const TEST_CARD_DECLINED: &str = "4000000000000002";
pub const TEST_CARD_INSUFFICIENT_FUNDS: &str = "4000000000009995";

/// A card gateway for tests and demos. Charges are remembered by idempotency key for
/// the process's life (like a gateway's 24-hour idempotency window), so the same key
/// gets the same answer. Webhooks go over HTTP to `deliver_to` (this server's own
/// listener) at `/webhooks/test-card`, shortly after each charge, signed.
pub struct TestCard {
    secret: Vec<u8>,
    deliver_to: Option<SocketAddr>,
    seen: moka::sync::Cache<String, ChargeOutcome>,
    http: reqwest::Client,
}

impl TestCard {
    pub fn new(secret: Vec<u8>, deliver_to: Option<SocketAddr>) -> Self {
        Self {
            secret,
            deliver_to,
            seen: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(86_400)).build(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default(),
        }
    }

    fn webhook(&self, event: WebhookEvent) {
        let Some(addr) = self.deliver_to else { return };
        let (http, secret) = (self.http.clone(), self.secret.clone());
        tokio::spawn(async move {
            // Like a real gateway: a moment later, and retried a few times.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let Ok(body) = serde_json::to_vec(&event) else { return };
            for attempt in 0..5u32 {
                let signature = sign_webhook(&secret, chrono::Utc::now().timestamp(), &body);
                let sent = http
                    .post(format!("http://{addr}/webhooks/test-card"))
                    .header("content-type", "application/json")
                    .header("ecom-test-signature", signature)
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => {
                        tracing::warn!(status = %r.status(), attempt, event = %event.id, "test-card webhook refused")
                    }
                    Err(e) => tracing::warn!(error = %e, attempt, event = %event.id, "test-card webhook failed"),
                }
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
            }
        });
    }
}

fn event_id() -> String {
    format!("evt_{}", hex::encode(rand::random::<[u8; 12]>()))
}

#[async_trait]
impl PaymentProvider for TestCard {
    fn code(&self) -> &'static str {
        "test_card"
    }
    fn title(&self) -> &'static str {
        "Card"
    }

    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, PaymentError> {
        if let Some(previous) = self.seen.get(&req.idempotency_key) {
            return Ok(previous);
        }
        let number: String = req.token.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        let outcome = match number.as_str() {
            TEST_CARD_OK => {
                let reference = format!("ch_test_{}", hex::encode(rand::random::<[u8; 12]>()));
                if req.capture {
                    ChargeOutcome::Captured { reference }
                } else {
                    ChargeOutcome::Authorized { reference }
                }
            }
            TEST_CARD_DECLINED => ChargeOutcome::Declined { message: "Your card was declined.".into() },
            TEST_CARD_INSUFFICIENT_FUNDS => {
                ChargeOutcome::Declined { message: "Your card has insufficient funds.".into() }
            }
            n if n.len() < 12 || !n.chars().all(|c| c.is_ascii_digit()) => {
                ChargeOutcome::Declined { message: "That card number is incomplete.".into() }
            }
            _ => ChargeOutcome::Declined {
                message: "Use a test card: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined.".into(),
            },
        };
        self.seen.insert(req.idempotency_key.clone(), outcome.clone());
        let (kind, reference) = match &outcome {
            ChargeOutcome::Captured { reference } => ("charge.captured", reference.clone()),
            ChargeOutcome::Authorized { reference } => ("charge.authorized", reference.clone()),
            _ => ("charge.failed", String::new()),
        };
        self.webhook(WebhookEvent {
            id: event_id(),
            kind: kind.into(),
            reference,
            amount: req.amount,
            tenant_id: req.tenant_id,
            order_id: req.order_id,
        });
        Ok(outcome)
    }

    async fn capture(&self, reference: &str, amount: i64, _key: &str) -> Result<(), PaymentError> {
        if !reference.starts_with("ch_test_") || amount <= 0 {
            return Err(PaymentError::Refused(format!("no capturable charge {reference}")));
        }
        Ok(())
    }

    async fn refund(&self, reference: &str, amount: i64, _key: &str) -> Result<(), PaymentError> {
        if !reference.starts_with("ch_test_") || amount <= 0 {
            return Err(PaymentError::Refused(format!("no refundable charge {reference}")));
        }
        Ok(())
    }

    async fn void(&self, reference: &str, _key: &str) -> Result<(), PaymentError> {
        if !reference.starts_with("ch_test_") {
            return Err(PaymentError::Refused(format!("no charge {reference}")));
        }
        Ok(())
    }

    fn verify_webhook(&self, signature_header: &str, body: &[u8]) -> Option<Result<WebhookEvent, String>> {
        Some(
            verify_signature(&self.secret, signature_header, body, Duration::from_secs(300))
                .and_then(|()| serde_json::from_slice::<WebhookEvent>(body).map_err(|e| format!("webhook body: {e}"))),
        )
    }
}

/// The providers a store can use, by code.
#[derive(Clone)]
pub struct Payments {
    providers: std::sync::Arc<Vec<std::sync::Arc<dyn PaymentProvider>>>,
}

impl Payments {
    pub fn new(providers: Vec<std::sync::Arc<dyn PaymentProvider>>) -> Self {
        Self { providers: std::sync::Arc::new(providers) }
    }

    pub fn get(&self, code: &str) -> Option<&std::sync::Arc<dyn PaymentProvider>> {
        self.providers.iter().find(|p| p.code() == code)
    }

    pub fn all(&self) -> impl Iterator<Item = &std::sync::Arc<dyn PaymentProvider>> {
        self.providers.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let body = br#"{"id":"evt_1"}"#;
        let now = chrono::Utc::now().timestamp();
        let header = sign_webhook(b"secret", now, body);
        let tol = Duration::from_secs(300);
        assert!(verify_signature(b"secret", &header, body, tol).is_ok());
        assert!(verify_signature(b"other", &header, body, tol).is_err(), "wrong secret");
        assert!(verify_signature(b"secret", &header, br#"{"id":"evt_2"}"#, tol).is_err(), "changed body");
        let old = sign_webhook(b"secret", now - 3600, body);
        assert!(verify_signature(b"secret", &old, body, tol).is_err(), "too old");
        assert!(verify_signature(b"secret", "garbage", body, tol).is_err());
        // A second, rolled-over secret's signature may sit beside the good one.
        let both = format!("{header},v1=00ff");
        assert!(verify_signature(b"secret", &both, body, tol).is_ok());
    }

    #[tokio::test]
    async fn test_cards_behave_like_stripes_test_numbers() {
        let gw = TestCard::new(b"s".to_vec(), None);
        let req = |token: &str, key: &str| ChargeRequest {
            amount: 1000,
            currency: "USD".into(),
            token: token.into(),
            capture: true,
            idempotency_key: key.into(),
            tenant_id: uuid::Uuid::nil(),
            order_id: uuid::Uuid::nil(),
        };
        let ok = gw.charge(&req("4242 4242 4242 4242", "k1")).await.unwrap();
        assert!(matches!(ok, ChargeOutcome::Captured { .. }));
        assert_eq!(gw.charge(&req("4242424242424242", "k1")).await.unwrap(), ok, "same key, same charge");
        assert!(matches!(
            gw.charge(&req(TEST_CARD_DECLINED, "k2")).await.unwrap(),
            ChargeOutcome::Declined { message } if message.contains("declined")
        ));
        assert!(matches!(
            gw.charge(&req(TEST_CARD_INSUFFICIENT_FUNDS, "k3")).await.unwrap(),
            ChargeOutcome::Declined { message } if message.contains("insufficient funds")
        ));
    }
}
