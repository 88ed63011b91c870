//! Stripe, through PaymentIntents over HTTPS.
//!
//! - A charge creates and confirms a PaymentIntent in one request, with the
//!   PaymentMethod id the browser got from Stripe.js (`pm_…`), `capture_method`
//!   automatic (sale) or manual (authorise now, capture later), and the store and
//!   order in `metadata`, so that webhooks find their order.
//! - Every POST carries the caller's idempotency key in `Idempotency-Key`: Stripe
//!   answers a repeated key with the response it gave the first time, so a retry after
//!   a timeout or a dropped connection never charges twice.
//! - Requests are form-encoded (Stripe's API takes `application/x-www-form-urlencoded`)
//!   and pinned to one API version ([`API_VERSION`]).
//! - Webhooks are checked with the endpoint's signing secret (`whsec_…`) the way
//!   Stripe signs them (`Stripe-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")`,
//!   five minutes' tolerance) and translated into [`WebhookEvent`]s.
//!
//! Outcomes: `succeeded` → captured; `requires_capture` → authorised; `processing`
//! → pending (Stripe confirms it later by webhook; cards almost never stop there);
//! `requires_action` (3-D Secure) and `requires_payment_method` → declined, because
//! this checkout cannot run Stripe.js's authentication step yet. A 402 `card_error`
//! is a decline with Stripe's message for the shopper; 5xx, 409 (the same key still
//! in flight), 429, timeouts and connection errors are "unavailable" (retry with the
//! same key); any other 4xx is refused with Stripe's message, with keys blanked out.

use crate::payments::{ChargeOutcome, ChargeRequest, PaymentError, PaymentProvider, WebhookEvent, verify_signature};
use async_trait::async_trait;
use serde::Deserialize;
use std::time::Duration;

/// The Stripe API version every request is pinned to (`Stripe-Version`). Create the
/// webhook endpoint with the same version so events have the same shape.
pub const API_VERSION: &str = "2024-06-20";

/// Where Stripe's API lives.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// The start of the error `verify_webhook` gives for a correctly signed event that
/// is not about an ECOM payment (no `tenant_id`/`order_id` metadata): the webhook
/// handler acknowledges those (2xx) so that Stripe does not retry them for days.
pub const NOT_ECOM_PAYMENT: &str = "not an ECOM payment";

/// How old a webhook signature may be (Stripe's libraries use the same default).
const WEBHOOK_TOLERANCE: Duration = Duration::from_secs(300);

/// The Stripe payment provider (`stripe`).
pub struct Stripe {
    secret_key: String,
    webhook_secret: String,
    api_base: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe")
            .field("secret_key", &"(redacted)")
            .field("webhook_secret", &"(redacted)")
            .field("api_base", &self.api_base)
            .finish()
    }
}

/// Whether `id` may go into a URL path: Stripe ids are letters, digits and `_`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Blanks anything that looks like a Stripe key (`sk_…`, `rk_…`, `pk_…`, `whsec_…`)
/// and the given secrets out of `text`, so a message from Stripe can be shown and
/// logged.
fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s, "[redacted]");
    }
    const PREFIXES: [&str; 7] = ["sk_live_", "sk_test_", "rk_live_", "rk_test_", "pk_live_", "pk_test_", "whsec_"];
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while !rest.is_empty() {
        let next = PREFIXES.iter().filter_map(|p| rest.find(p).map(|i| (i, p.len()))).min_by_key(|(i, _)| *i);
        let Some((at, len)) = next else {
            result.push_str(rest);
            break;
        };
        result.push_str(&rest[..at + len]);
        let tail = &rest[at + len..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '*')).unwrap_or(tail.len());
        result.push_str("[redacted]");
        rest = &tail[end..];
    }
    result
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Debug, Deserialize)]
struct StripeError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PaymentIntent {
    id: String,
    status: String,
    #[serde(default)]
    last_payment_error: Option<StripeError>,
}

#[derive(Debug, Deserialize)]
struct Refund {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    failure_reason: Option<String>,
}

/// What one API call came back with.
enum Answer {
    Ok(Vec<u8>),
    /// A 402 with `type: card_error`: the shopper's card was refused.
    CardError(String),
}

impl Stripe {
    /// `secret_key` (`sk_…`/`rk_…`) authenticates API calls; `webhook_secret`
    /// (`whsec_…`) checks webhooks; `api_base` is [`DEFAULT_API_BASE`] except in tests.
    pub fn new(secret_key: &str, webhook_secret: &str, api_base: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client for Stripe: {e}"))?;
        Ok(Self {
            secret_key: secret_key.trim().to_owned(),
            webhook_secret: webhook_secret.trim().to_owned(),
            api_base: api_base.trim().trim_end_matches('/').to_owned(),
            http,
        })
    }

    fn scrub(&self, text: &str) -> String {
        scrub(text, &[&self.secret_key, &self.webhook_secret])
    }

    /// POSTs a form to `path` with the idempotency key; sorts the answer into
    /// success, a card decline, or a [`PaymentError`].
    async fn post(&self, path: &str, form: &[(&str, String)], idempotency_key: &str) -> Result<Answer, PaymentError> {
        if idempotency_key.is_empty() || idempotency_key.len() > 255 {
            return Err(PaymentError::Refused("an idempotency key of 1 to 255 characters is required".into()));
        }
        let url = format!("{}{path}", self.api_base);
        let sent = self
            .http
            .post(&url)
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", idempotency_key)
            .header("Stripe-Version", API_VERSION)
            .form(form)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "connection failed"
                };
                return Err(PaymentError::Unavailable(format!("Stripe {why} (POST {path})")));
            }
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(b) => b.to_vec(),
            Err(_) => return Err(PaymentError::Unavailable(format!("Stripe's answer was cut off (POST {path})"))),
        };
        if status.is_success() {
            return Ok(Answer::Ok(body));
        }
        let error = serde_json::from_slice::<ErrorBody>(&body).ok().map(|b| b.error);
        let message = self.scrub(error.as_ref().and_then(|e| e.message.as_deref()).unwrap_or("no message"));
        let kind = error.as_ref().map(|e| e.kind.as_str()).unwrap_or_default();
        match status.as_u16() {
            402 if kind == "card_error" => Ok(Answer::CardError(message)),
            409 | 429 => Err(PaymentError::Unavailable(format!("Stripe asked to retry ({status}): {message}"))),
            s if s >= 500 => Err(PaymentError::Unavailable(format!("Stripe answered {status} (POST {path})"))),
            401 | 403 => {
                tracing::error!(%status, message = %message, "Stripe refused the API key (check ECOM_STRIPE_SECRET_KEY)");
                Err(PaymentError::Refused(
                    "Card payments are not set up correctly; please try another way to pay.".into(),
                ))
            }
            _ => {
                tracing::warn!(%status, kind, message = %message, path, "Stripe refused a request");
                Err(PaymentError::Refused(format!("Stripe: {message}")))
            }
        }
    }

    /// Translates a verified Stripe event body into ECOM's terms.
    fn parse_event(body: &[u8]) -> Result<WebhookEvent, String> {
        #[derive(Deserialize)]
        struct Event {
            id: String,
            #[serde(rename = "type")]
            kind: String,
            data: Data,
        }
        #[derive(Deserialize)]
        struct Data {
            object: serde_json::Value,
        }
        let event: Event = serde_json::from_slice(body).map_err(|e| format!("not a Stripe event: {e}"))?;
        let object = &event.data.object;
        let text = |key: &str| object.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let number = |key: &str| object.get(key).and_then(serde_json::Value::as_i64);
        let (kind, reference, amount) = match event.kind.as_str() {
            "payment_intent.succeeded" => {
                ("charge.captured", text("id"), number("amount_received").or(number("amount")))
            }
            "payment_intent.amount_capturable_updated" => {
                ("charge.authorized", text("id"), number("amount_capturable").or(number("amount")))
            }
            "payment_intent.payment_failed" => ("charge.failed", text("id"), number("amount")),
            "charge.refunded" => ("charge.refunded", text("payment_intent"), number("amount_refunded")),
            _ => ("ignored", text("id"), None),
        };
        let metadata = |key: &str| {
            object
                .get("metadata")
                .and_then(|m| m.get(key))
                .and_then(|v| v.as_str())
                .and_then(|v| uuid::Uuid::parse_str(v).ok())
        };
        let (Some(tenant_id), Some(order_id)) = (metadata("tenant_id"), metadata("order_id")) else {
            return Err(format!("{NOT_ECOM_PAYMENT}: {} {} has no tenant_id/order_id metadata", event.kind, event.id));
        };
        if event.id.is_empty() || event.id.len() > 255 {
            return Err("the event has no usable id".into());
        }
        Ok(WebhookEvent {
            id: event.id,
            kind: kind.into(),
            reference,
            amount: amount.unwrap_or(0),
            tenant_id,
            order_id,
        })
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, PaymentError> {
    serde_json::from_slice(body)
        .map_err(|_| PaymentError::Unavailable(format!("Stripe answered something that is not {what}")))
}

fn checked_id(id: &str) -> Result<&str, PaymentError> {
    if valid_id(id) { Ok(id) } else { Err(PaymentError::Refused("that is not a Stripe payment id".into())) }
}

#[async_trait]
impl PaymentProvider for Stripe {
    fn code(&self) -> &'static str {
        "stripe"
    }
    fn title(&self) -> &'static str {
        "Card (Stripe)"
    }

    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, PaymentError> {
        let token = req.token.trim();
        if !(token.starts_with("pm_") && valid_id(token)) {
            return Ok(ChargeOutcome::Declined {
                message: "Card details are missing: the payment form did not send a Stripe payment method.".into(),
            });
        }
        if req.amount <= 0 {
            return Err(PaymentError::Refused("nothing to charge".into()));
        }
        let form = [
            ("amount", req.amount.to_string()),
            ("currency", req.currency.to_ascii_lowercase()),
            ("payment_method", token.to_owned()),
            ("confirm", "true".into()),
            ("capture_method", if req.capture { "automatic" } else { "manual" }.into()),
            ("automatic_payment_methods[enabled]", "true".into()),
            ("automatic_payment_methods[allow_redirects]", "never".into()),
            ("metadata[tenant_id]", req.tenant_id.to_string()),
            ("metadata[order_id]", req.order_id.to_string()),
        ];
        let body = match self.post("/v1/payment_intents", &form, &req.idempotency_key).await? {
            Answer::Ok(body) => body,
            Answer::CardError(message) => return Ok(ChargeOutcome::Declined { message }),
        };
        let intent: PaymentIntent = parse(&body, "a PaymentIntent")?;
        if !valid_id(&intent.id) {
            return Err(PaymentError::Unavailable("Stripe answered a PaymentIntent without an id".into()));
        }
        Ok(match intent.status.as_str() {
            "succeeded" => ChargeOutcome::Captured { reference: intent.id },
            "requires_capture" => ChargeOutcome::Authorized { reference: intent.id },
            "processing" => ChargeOutcome::Pending,
            "requires_action" => ChargeOutcome::Declined {
                message: "Your bank asks to confirm this payment (3-D Secure), which this checkout cannot do yet. \
                          Please use another card."
                    .into(),
            },
            "requires_payment_method" => ChargeOutcome::Declined {
                message: intent
                    .last_payment_error
                    .and_then(|e| e.message)
                    .map(|m| self.scrub(&m))
                    .unwrap_or_else(|| "Your card was declined.".into()),
            },
            other => {
                return Err(PaymentError::Refused(format!(
                    "Stripe left the payment in an unexpected state ({}).",
                    self.scrub(other)
                )));
            }
        })
    }

    async fn capture(&self, reference: &str, amount: i64, idempotency_key: &str) -> Result<(), PaymentError> {
        let id = checked_id(reference)?;
        if amount <= 0 {
            return Err(PaymentError::Refused("nothing to capture".into()));
        }
        let form = [("amount_to_capture", amount.to_string())];
        match self.post(&format!("/v1/payment_intents/{id}/capture"), &form, idempotency_key).await? {
            Answer::Ok(body) => {
                let intent: PaymentIntent = parse(&body, "a PaymentIntent")?;
                match intent.status.as_str() {
                    "succeeded" | "processing" => Ok(()),
                    other => Err(PaymentError::Refused(format!("Stripe did not capture the payment ({other})."))),
                }
            }
            Answer::CardError(message) => Err(PaymentError::Refused(message)),
        }
    }

    async fn refund(&self, reference: &str, amount: i64, idempotency_key: &str) -> Result<(), PaymentError> {
        let id = checked_id(reference)?;
        if amount <= 0 {
            return Err(PaymentError::Refused("nothing to refund".into()));
        }
        let form = [("payment_intent", id.to_owned()), ("amount", amount.to_string())];
        match self.post("/v1/refunds", &form, idempotency_key).await? {
            Answer::Ok(body) => {
                let refund: Refund = parse(&body, "a refund")?;
                match refund.status.as_deref() {
                    Some("failed" | "canceled") => Err(PaymentError::Refused(format!(
                        "Stripe could not refund the payment ({}).",
                        refund.failure_reason.as_deref().unwrap_or("no reason given")
                    ))),
                    _ => Ok(()),
                }
            }
            Answer::CardError(message) => Err(PaymentError::Refused(message)),
        }
    }

    async fn void(&self, reference: &str, idempotency_key: &str) -> Result<(), PaymentError> {
        let id = checked_id(reference)?;
        match self.post(&format!("/v1/payment_intents/{id}/cancel"), &[], idempotency_key).await? {
            Answer::Ok(body) => {
                let intent: PaymentIntent = parse(&body, "a PaymentIntent")?;
                if intent.status == "canceled" {
                    Ok(())
                } else {
                    Err(PaymentError::Refused(format!("Stripe did not cancel the payment ({}).", intent.status)))
                }
            }
            Answer::CardError(message) => Err(PaymentError::Refused(message)),
        }
    }

    fn verify_webhook(&self, signature_header: &str, body: &[u8]) -> Option<Result<WebhookEvent, String>> {
        Some(
            verify_signature(self.webhook_secret.as_bytes(), signature_header, body, WEBHOOK_TOLERANCE)
                .and_then(|()| Self::parse_event(body)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::sign_webhook;

    const WHSEC: &str = "whsec_test_secret";

    fn stripe() -> Stripe {
        Stripe::new("sk_test_123", WHSEC, "http://127.0.0.1:9").unwrap_or_else(|e| panic!("{e}"))
    }

    fn event(kind: &str, object: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "id": "evt_1", "object": "event", "type": kind, "data": { "object": object }
        }))
        .unwrap_or_default()
    }

    fn signed(body: &[u8]) -> String {
        sign_webhook(WHSEC.as_bytes(), chrono::Utc::now().timestamp(), body)
    }

    #[test]
    fn stripe_events_become_ecom_events() {
        let (tenant, order) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let metadata = serde_json::json!({ "tenant_id": tenant.to_string(), "order_id": order.to_string() });
        let s = stripe();
        let cases = [
            (
                "payment_intent.succeeded",
                serde_json::json!({"id": "pi_1", "amount": 900, "amount_received": 900, "metadata": metadata}),
                "charge.captured",
                "pi_1",
                900,
            ),
            (
                "payment_intent.amount_capturable_updated",
                serde_json::json!({"id": "pi_2", "amount": 900, "amount_capturable": 900, "metadata": metadata}),
                "charge.authorized",
                "pi_2",
                900,
            ),
            (
                "payment_intent.payment_failed",
                serde_json::json!({"id": "pi_3", "amount": 900, "metadata": metadata}),
                "charge.failed",
                "pi_3",
                900,
            ),
            (
                "charge.refunded",
                serde_json::json!({"id": "ch_1", "payment_intent": "pi_4", "amount_refunded": 300, "metadata": metadata}),
                "charge.refunded",
                "pi_4",
                300,
            ),
            ("charge.succeeded", serde_json::json!({"id": "ch_2", "metadata": metadata}), "ignored", "ch_2", 0),
        ];
        for (stripe_kind, object, kind, reference, amount) in cases {
            let body = event(stripe_kind, object);
            let e = s.verify_webhook(&signed(&body), &body).unwrap_or_else(|| Err("none".into()));
            let e = e.unwrap_or_else(|why| panic!("{stripe_kind}: {why}"));
            assert_eq!((e.kind.as_str(), e.reference.as_str(), e.amount), (kind, reference, amount), "{stripe_kind}");
            assert_eq!((e.tenant_id, e.order_id, e.id.as_str()), (tenant, order, "evt_1"));
        }
    }

    #[test]
    fn bad_signatures_and_foreign_events_are_refused() {
        let s = stripe();
        let body = event("payment_intent.succeeded", serde_json::json!({"id": "pi_1", "metadata": {}}));
        let wrong = sign_webhook(b"whsec_other", chrono::Utc::now().timestamp(), &body);
        assert!(s.verify_webhook(&wrong, &body).is_some_and(|r| r.is_err()));
        let old = sign_webhook(WHSEC.as_bytes(), chrono::Utc::now().timestamp() - 600, &body);
        assert!(s.verify_webhook(&old, &body).is_some_and(|r| r.is_err()));
        let foreign = s.verify_webhook(&signed(&body), &body).unwrap_or_else(|| Err(String::new()));
        assert!(foreign.is_err_and(|e| e.starts_with(NOT_ECOM_PAYMENT)));
        let garbage = b"{not json";
        assert!(s.verify_webhook(&signed(garbage), garbage).is_some_and(|r| r.is_err()));
    }

    #[test]
    fn ids_are_checked_before_they_go_into_a_url() {
        assert!(valid_id("pi_3MtwBwLkdIwHu7ix28a3tqPa"));
        for bad in ["", "../v1/refunds", "pi_1/cancel", "pi_1?x=1", "pi 1", "pi_1%2F", "pí_1"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn bad_ids_never_reach_stripe() {
        // The API base is a closed port: a request would be "unavailable", not refused.
        let s = stripe();
        for call in [s.capture("../x", 100, "k").await, s.refund("pi_1/x", 100, "k").await, s.void("", "k").await] {
            assert!(matches!(call, Err(PaymentError::Refused(_))), "{call:?}");
        }
        let req = ChargeRequest {
            amount: 100,
            currency: "USD".into(),
            token: "4242424242424242".into(),
            capture: true,
            idempotency_key: "k".into(),
            tenant_id: uuid::Uuid::nil(),
            order_id: uuid::Uuid::nil(),
        };
        assert!(matches!(s.charge(&req).await, Ok(ChargeOutcome::Declined { .. })));
        let unreachable = s.charge(&ChargeRequest { token: "pm_card_visa".into(), ..req }).await;
        assert!(matches!(unreachable, Err(PaymentError::Unavailable(_))), "{unreachable:?}");
    }

    #[test]
    fn keys_are_blanked_out_of_messages() {
        let m = scrub("Invalid API Key provided: sk_test_abc123XYZ, also rk_live_9 and whsec_q.", &[]);
        assert_eq!(m, "Invalid API Key provided: sk_test_[redacted], also rk_live_[redacted] and whsec_[redacted].");
        assert_eq!(scrub("key mysecret here", &["mysecret"]), "key [redacted] here");
        assert!(!format!("{:?}", stripe()).contains("sk_test_123"));
    }
}
