//! Card payments through Stripe, against the real app on SQLite and PostgreSQL and a
//! fake Stripe on loopback.
//!
//! The fake implements only the endpoints ECOM uses (create-and-confirm a
//! PaymentIntent, capture, cancel, refund) and checks every request the way Stripe's
//! API reference describes it: `Authorization: Bearer sk_test_…` (401 otherwise),
//! a form-encoded body, known parameters only, required ones present, `amount` a
//! positive integer, `currency` three lower-case letters, and an `Idempotency-Key` on
//! every POST. Like Stripe, it saves the answer of every request that began executing
//! under its idempotency key: the same key with the same parameters gets the saved
//! answer again (`Idempotent-Replayed: true`), with other parameters a 400
//! `idempotency_error`. Outcomes follow Stripe's test PaymentMethods
//! (`pm_card_visa` succeeds, `pm_card_chargeDeclined` and
//! `pm_card_chargeDeclinedInsufficientFunds` are declined with 402 `card_error`,
//! `pm_card_authenticationRequired` needs 3-D Secure). It keeps the events Stripe would
//! send, and delivers them to the app's `/webhooks/stripe` signed as Stripe documents:
//! `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256(whsec secret, "<t>.<payload>")>`.
//!
//! Two faults can be injected: a 500 before anything ran (nothing saved, as Stripe
//! does for requests that never began executing), and an answer cut off after the
//! PaymentIntent was made and saved (the client never hears of it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::{Backend, TestApp, ready_cart, store_with_stock};
use ecom::config::Secret;
use ecom_core::Tenant;
use ecom_services::checkout::{Actor, OrderCommand, PaymentChoice, PlaceOutcome};
use ecom_services::payments::{ChargeOutcome, ChargeRequest, PaymentError, PaymentProvider};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

const SECRET_KEY: &str = "sk_test_51EcomFakeStripeKey0123456789";
const WEBHOOK_SECRET: &str = "whsec_ecomFakeStripeSigningSecret0123";

// ---- the fake Stripe ---------------------------------------------------------------------

/// One request as the fake saw it, and what it answered.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: String,
    content_type: String,
    idempotency_key: Option<String>,
    stripe_version: Option<String>,
    params: Vec<(String, String)>,
    status: u16,
    replayed: bool,
}

impl Seen {
    fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// An answer saved under an idempotency key.
struct Saved {
    endpoint: String,
    params: Vec<(String, String)>,
    status: u16,
    body: Value,
}

#[derive(Default)]
struct FakeState {
    seen: Vec<Seen>,
    intents: HashMap<String, Value>,
    refunds: Vec<Value>,
    saved: HashMap<String, Saved>,
    events: Vec<Value>,
    fail_next: u32,
    cut_next: u32,
    counter: u64,
}

/// What one request gets: status, JSON body, whether it is a replay, whether to cut it off.
struct Reply {
    status: u16,
    body: Value,
    replayed: bool,
    cut: bool,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply { status, body, replayed: false, cut: false }
}

/// An error in Stripe's shape: `{"error": {"type", "message", "code"?, "param"?, …}}`.
fn stripe_error(status: u16, kind: &str, code: Option<&str>, param: Option<&str>, message: &str) -> Reply {
    let mut error = json!({ "type": kind, "message": message });
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    reply(status, json!({ "error": error }))
}

/// A request the fake refuses before running anything (not saved under its key).
type Refusal = Reply;

fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(text.get(i + 1..i + 3)?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `application/x-www-form-urlencoded`, strictly.
fn decode_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((unescape(k)?, unescape(v)?))
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn valid_version(v: &str) -> bool {
    let date = v.split('.').next().unwrap_or_default();
    date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() })
}

impl FakeState {
    fn id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_3Fake{:010}", self.counter)
    }

    fn event(&mut self, kind: &str, object: Value, idempotency_key: &str) {
        let id = self.id("evt");
        let request = self.id("req");
        self.events.push(json!({
            "id": id,
            "object": "event",
            "api_version": ecom_services::stripe::API_VERSION,
            "created": chrono::Utc::now().timestamp(),
            "livemode": false,
            "pending_webhooks": 1,
            "type": kind,
            "data": { "object": object },
            "request": { "id": request, "idempotency_key": idempotency_key },
        }));
    }

    /// Checks and answers one request.
    fn answer(&mut self, seen: &mut Seen, body: &[u8]) -> Reply {
        let Some(key) = seen.authorization.strip_prefix("Bearer ") else {
            return stripe_error(
                401,
                "invalid_request_error",
                None,
                None,
                "You did not provide an API key. You need to provide your API key in the Authorization header, \
                 using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            );
        };
        if !key.starts_with("sk_test_") || key != SECRET_KEY {
            // Stripe masks most of the key here; this fake echoes it whole, so that the
            // tests can check that ECOM never passes it on.
            return stripe_error(401, "invalid_request_error", None, None, &format!("Invalid API Key provided: {key}"));
        }
        let segments: Vec<&str> = seen.path.trim_start_matches('/').split('/').collect();
        let route = match (seen.method.as_str(), segments.as_slice()) {
            ("POST", ["v1", "payment_intents"]) => "create",
            ("POST", ["v1", "payment_intents", _, "capture"]) => "capture",
            ("POST", ["v1", "payment_intents", _, "cancel"]) => "cancel",
            ("POST", ["v1", "refunds"]) => "refund",
            _ => {
                let message = format!(
                    "Unrecognized request URL ({}: {}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
                    seen.method, seen.path
                );
                return stripe_error(404, "invalid_request_error", None, None, &message);
            }
        };
        if !seen.content_type.starts_with("application/x-www-form-urlencoded") {
            return stripe_error(
                400,
                "invalid_request_error",
                None,
                None,
                "Request bodies must be form-encoded (application/x-www-form-urlencoded).",
            );
        }
        if let Some(v) = &seen.stripe_version
            && !valid_version(v)
        {
            return stripe_error(400, "invalid_request_error", None, None, &format!("Invalid Stripe API version: {v}"));
        }
        let Some(idempotency_key) = seen.idempotency_key.clone().filter(|k| !k.is_empty() && k.len() <= 255) else {
            return stripe_error(
                400,
                "invalid_request_error",
                None,
                None,
                "This fake Stripe requires an Idempotency-Key (1 to 255 characters) on every POST.",
            );
        };
        let Some(params) = decode_form(body) else {
            return stripe_error(400, "invalid_request_error", None, None, "Invalid request body encoding.");
        };
        seen.params = params.clone();
        if self.fail_next > 0 {
            self.fail_next -= 1;
            return stripe_error(
                500,
                "api_error",
                None,
                None,
                "An unknown error occurred while processing your request. (Nothing ran: retry.)",
            );
        }
        let mut sorted = params.clone();
        sorted.sort();
        let endpoint = format!("{} {}", seen.method, seen.path);
        if let Some(saved) = self.saved.get(&idempotency_key) {
            if saved.endpoint == endpoint && saved.params == sorted {
                return Reply { status: saved.status, body: saved.body.clone(), replayed: true, cut: false };
            }
            return stripe_error(
                400,
                "idempotency_error",
                None,
                None,
                &format!(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. \
                     Try using a key other than '{idempotency_key}' if you meant to execute a different request."
                ),
            );
        }
        let executed = match route {
            "create" => self.create_intent(&params, &idempotency_key),
            "capture" => self.capture(segments[2], &params, &idempotency_key),
            "cancel" => self.cancel(segments[2], &params, &idempotency_key),
            _ => self.refund(&params, &idempotency_key),
        };
        let mut answer = match executed {
            Ok(answer) => answer,
            Err(refusal) => return refusal,
        };
        self.saved.insert(
            idempotency_key,
            Saved { endpoint, params: sorted, status: answer.status, body: answer.body.clone() },
        );
        if self.cut_next > 0 && answer.status == 200 {
            self.cut_next -= 1;
            answer.cut = true;
        }
        answer
    }

    fn unknown_params(params: &[(String, String)], allowed: &[&str]) -> Result<(), Refusal> {
        for (k, v) in params {
            let metadata = k.strip_prefix("metadata[").and_then(|rest| rest.strip_suffix(']'));
            match metadata {
                Some(name) if !name.is_empty() && name.len() <= 40 && v.len() <= 500 => {}
                Some(_) => {
                    return Err(stripe_error(400, "invalid_request_error", None, Some(k), "Invalid metadata."));
                }
                None if allowed.contains(&k.as_str()) => {}
                None => {
                    return Err(stripe_error(
                        400,
                        "invalid_request_error",
                        Some("parameter_unknown"),
                        Some(k),
                        &format!("Received unknown parameter: {k}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn positive_integer(name: &str, value: Option<&str>, required: bool) -> Result<Option<i64>, Refusal> {
        match value {
            None if required => Err(stripe_error(
                400,
                "invalid_request_error",
                Some("parameter_missing"),
                Some(name),
                &format!("Missing required param: {name}."),
            )),
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n > 0 && v.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
                _ => Err(stripe_error(
                    400,
                    "invalid_request_error",
                    Some("parameter_invalid_integer"),
                    Some(name),
                    &format!("Invalid positive integer: {v}"),
                )),
            },
        }
    }

    fn missing(name: &str) -> Refusal {
        stripe_error(
            400,
            "invalid_request_error",
            Some("parameter_missing"),
            Some(name),
            &format!("Missing required param: {name}."),
        )
    }

    fn create_intent(&mut self, params: &[(String, String)], key: &str) -> Result<Reply, Refusal> {
        let p = |k: &str| param(params, k);
        Self::unknown_params(
            params,
            &[
                "amount",
                "currency",
                "payment_method",
                "confirm",
                "capture_method",
                "automatic_payment_methods[enabled]",
                "automatic_payment_methods[allow_redirects]",
                "return_url",
                "description",
            ],
        )?;
        let amount = Self::positive_integer("amount", p("amount"), true)?.unwrap_or(0);
        let currency = p("currency").ok_or_else(|| Self::missing("currency"))?;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(stripe_error(
                400,
                "invalid_request_error",
                Some("parameter_invalid_string"),
                Some("currency"),
                &format!("Invalid currency: {currency}. Use a three-letter ISO code in lower case, such as usd."),
            ));
        }
        let payment_method = p("payment_method").ok_or_else(|| Self::missing("payment_method"))?;
        if p("confirm") != Some("true") {
            return Err(stripe_error(
                400,
                "invalid_request_error",
                None,
                Some("confirm"),
                "This fake only creates PaymentIntents confirmed at once (confirm=true).",
            ));
        }
        let capture_method = p("capture_method").unwrap_or("automatic");
        if !["automatic", "automatic_async", "manual"].contains(&capture_method) {
            return Err(stripe_error(
                400,
                "invalid_request_error",
                Some("parameter_invalid_string"),
                Some("capture_method"),
                "Invalid capture_method: must be one of automatic, automatic_async, or manual",
            ));
        }
        let automatic = p("automatic_payment_methods[enabled]");
        if !matches!(automatic, None | Some("true" | "false")) {
            return Err(stripe_error(
                400,
                "invalid_request_error",
                None,
                Some("automatic_payment_methods[enabled]"),
                "Invalid boolean",
            ));
        }
        let redirects = p("automatic_payment_methods[allow_redirects]");
        if automatic != Some("false") && redirects != Some("never") && p("return_url").is_none() {
            return Err(stripe_error(
                400,
                "invalid_request_error",
                None,
                Some("return_url"),
                "This PaymentIntent is configured to accept payment methods enabled in your Dashboard, some of \
                 which may require a full page redirect to succeed. If you do not want to accept redirect-based \
                 payment methods, set `automatic_payment_methods[enabled]` to `true` and \
                 `automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment \
                 Intents. If you do want to accept redirect-based payment methods, set the `return_url` parameter.",
            ));
        }
        let declined = |decline_code: &str, message: &str| (decline_code.to_owned(), message.to_owned());
        let outcome = match payment_method {
            "pm_card_visa" | "pm_card_mastercard" => {
                Ok(if capture_method == "manual" { "requires_capture" } else { "succeeded" })
            }
            "pm_card_authenticationRequired" => Ok("requires_action"),
            "pm_card_chargeDeclined" => Err(declined("generic_decline", "Your card was declined.")),
            "pm_card_chargeDeclinedInsufficientFunds" => {
                Err(declined("insufficient_funds", "Your card has insufficient funds."))
            }
            other => {
                return Err(stripe_error(
                    400,
                    "invalid_request_error",
                    Some("resource_missing"),
                    Some("payment_method"),
                    &format!("No such PaymentMethod: '{other}'"),
                ));
            }
        };
        let id = self.id("pi");
        let charge = self.id("ch");
        let metadata: serde_json::Map<String, Value> = params
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("metadata[").and_then(|r| r.strip_suffix(']')).map(|n| (n.to_owned(), json!(v)))
            })
            .collect();
        let status = match &outcome {
            Ok(status) => *status,
            Err(_) => "requires_payment_method",
        };
        let mut intent = json!({
            "id": id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": if status == "requires_capture" { amount } else { 0 },
            "amount_received": if status == "succeeded" { amount } else { 0 },
            "capture_method": capture_method,
            "client_secret": format!("{id}_secret_fake"),
            "confirmation_method": "automatic",
            "created": chrono::Utc::now().timestamp(),
            "currency": currency,
            "last_payment_error": null,
            "latest_charge": charge,
            "livemode": false,
            "metadata": metadata,
            "payment_method": payment_method,
            "status": status,
        });
        match outcome {
            Err((decline_code, message)) => {
                let error = json!({
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": decline_code,
                    "message": message,
                    "charge": charge,
                });
                intent["last_payment_error"] = error.clone();
                self.intents.insert(id.clone(), intent.clone());
                self.event("payment_intent.payment_failed", intent.clone(), key);
                let mut body = json!({ "error": error });
                body["error"]["payment_intent"] = intent;
                Ok(reply(402, body))
            }
            Ok(status) => {
                self.intents.insert(id.clone(), intent.clone());
                match status {
                    "succeeded" => {
                        self.event("payment_intent.succeeded", intent.clone(), key);
                        let charge_object = json!({
                            "id": charge, "object": "charge", "amount": amount, "payment_intent": id,
                            "metadata": intent["metadata"], "paid": true, "captured": true,
                        });
                        self.event("charge.succeeded", charge_object, key);
                    }
                    "requires_capture" => self.event("payment_intent.amount_capturable_updated", intent.clone(), key),
                    _ => {}
                }
                Ok(reply(200, intent))
            }
        }
    }

    fn intent(&self, id: &str) -> Result<Value, Refusal> {
        self.intents.get(id).cloned().ok_or_else(|| {
            stripe_error(
                404,
                "invalid_request_error",
                Some("resource_missing"),
                Some("intent"),
                &format!("No such payment_intent: '{id}'"),
            )
        })
    }

    fn unexpected_state(intent: &Value, action: &str, allowed: &str) -> Refusal {
        stripe_error(
            400,
            "invalid_request_error",
            Some("payment_intent_unexpected_state"),
            None,
            &format!(
                "This PaymentIntent could not be {action} because it has a status of {}. Only a PaymentIntent with \
                 one of the following statuses may be {action}: {allowed}.",
                intent["status"].as_str().unwrap_or_default()
            ),
        )
    }

    fn capture(&mut self, id: &str, params: &[(String, String)], key: &str) -> Result<Reply, Refusal> {
        let p = |k: &str| param(params, k);
        Self::unknown_params(params, &["amount_to_capture"])?;
        let mut intent = self.intent(id)?;
        if intent["status"] != "requires_capture" {
            return Err(Self::unexpected_state(&intent, "captured", "requires_capture"));
        }
        let capturable = intent["amount_capturable"].as_i64().unwrap_or(0);
        let amount = Self::positive_integer("amount_to_capture", p("amount_to_capture"), false)?.unwrap_or(capturable);
        if amount > capturable {
            return Err(stripe_error(
                400,
                "invalid_request_error",
                Some("amount_too_large"),
                Some("amount_to_capture"),
                "The amount to capture is greater than the amount capturable.",
            ));
        }
        intent["status"] = json!("succeeded");
        intent["amount_received"] = json!(amount);
        intent["amount_capturable"] = json!(0);
        self.intents.insert(id.to_owned(), intent.clone());
        self.event("payment_intent.succeeded", intent.clone(), key);
        Ok(reply(200, intent))
    }

    fn cancel(&mut self, id: &str, params: &[(String, String)], key: &str) -> Result<Reply, Refusal> {
        Self::unknown_params(params, &["cancellation_reason"])?;
        let mut intent = self.intent(id)?;
        let cancellable = ["requires_payment_method", "requires_capture", "requires_confirmation", "requires_action"];
        if !cancellable.contains(&intent["status"].as_str().unwrap_or_default()) {
            return Err(Self::unexpected_state(&intent, "canceled", &cancellable.join(", ")));
        }
        intent["status"] = json!("canceled");
        intent["amount_capturable"] = json!(0);
        intent["canceled_at"] = json!(chrono::Utc::now().timestamp());
        self.intents.insert(id.to_owned(), intent.clone());
        self.event("payment_intent.canceled", intent.clone(), key);
        Ok(reply(200, intent))
    }

    fn refund(&mut self, params: &[(String, String)], key: &str) -> Result<Reply, Refusal> {
        let p = |k: &str| param(params, k);
        Self::unknown_params(params, &["payment_intent", "charge", "amount", "reason"])?;
        let id = p("payment_intent").ok_or_else(|| Self::missing("payment_intent"))?;
        let mut intent = self.intent(id)?;
        if intent["status"] != "succeeded" {
            return Err(Self::unexpected_state(&intent, "refunded", "succeeded"));
        }
        let received = intent["amount_received"].as_i64().unwrap_or(0);
        let refunded = intent["amount_refunded"].as_i64().unwrap_or(0);
        let amount = Self::positive_integer("amount", p("amount"), false)?.unwrap_or(received - refunded);
        if amount > received - refunded {
            return Err(stripe_error(
                400,
                "invalid_request_error",
                Some("amount_too_large"),
                Some("amount"),
                &format!(
                    "Refund amount ({amount}) is greater than unrefunded amount on charge ({})",
                    received - refunded
                ),
            ));
        }
        intent["amount_refunded"] = json!(refunded + amount);
        self.intents.insert(id.to_owned(), intent.clone());
        let refund_id = self.id("re");
        let refund = json!({
            "id": refund_id, "object": "refund", "amount": amount, "currency": intent["currency"],
            "payment_intent": id, "charge": intent["latest_charge"], "status": "succeeded",
        });
        self.refunds.push(refund.clone());
        let charge = json!({
            "id": intent["latest_charge"], "object": "charge", "amount": received, "amount_refunded": refunded + amount,
            "payment_intent": id, "refunded": refunded + amount == received, "metadata": intent["metadata"],
        });
        self.event("charge.refunded", charge, key);
        Ok(reply(200, refund))
    }
}

async fn serve_fake(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut seen = Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        authorization: header("authorization").unwrap_or_default(),
        content_type: header("content-type").unwrap_or_default(),
        idempotency_key: header("idempotency-key"),
        stripe_version: header("stripe-version"),
        params: Vec::new(),
        status: 0,
        replayed: false,
    };
    let answer = {
        let mut fake = state.lock().unwrap();
        let answer = fake.answer(&mut seen, &body);
        seen.status = answer.status;
        seen.replayed = answer.replayed;
        fake.seen.push(seen);
        answer
    };
    let status = StatusCode::from_u16(answer.status).unwrap();
    let mut text = answer.body.to_string();
    if answer.cut {
        // The connection dropped mid-answer: the client gets half a JSON document.
        text.truncate(text.len() / 2);
    }
    let mut response = (status, [("content-type", "application/json")], text).into_response();
    if answer.replayed {
        response.headers_mut().insert("idempotent-replayed", "true".parse().unwrap());
    }
    response
}

#[derive(Clone)]
struct FakeStripe {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
}

impl FakeStripe {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(FakeState::default()));
        let router = axum::Router::new().fallback(serve_fake).with_state(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    fn intents(&self) -> usize {
        self.state.lock().unwrap().intents.len()
    }

    fn intent(&self, id: &str) -> Value {
        self.state.lock().unwrap().intents.get(id).cloned().unwrap_or(Value::Null)
    }

    fn events(&self, kind: &str) -> Vec<Value> {
        self.state.lock().unwrap().events.iter().filter(|e| e["type"] == kind).cloned().collect()
    }

    /// The next request fails with a 500 before anything runs.
    fn fail_next(&self) {
        self.state.lock().unwrap().fail_next += 1;
    }

    /// The next successful answer is cut off after it was made and saved.
    fn cut_next(&self) {
        self.state.lock().unwrap().cut_next += 1;
    }

    /// POSTs `event` to the app's `/webhooks/stripe`, signed as Stripe documents with
    /// `secret`, at `timestamp`.
    async fn deliver_signed(&self, app: &TestApp, event: &Value, secret: &str, timestamp: i64) -> (u16, String) {
        use hmac::Mac;
        let payload = serde_json::to_string_pretty(event).unwrap();
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.{payload}").as_bytes());
        let signature = format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()));
        deliver_raw(app, &payload, Some(&signature)).await
    }

    async fn deliver(&self, app: &TestApp, event: &Value) -> (u16, String) {
        self.deliver_signed(app, event, WEBHOOK_SECRET, chrono::Utc::now().timestamp()).await
    }
}

async fn deliver_raw(app: &TestApp, payload: &str, signature: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/webhooks/stripe", app.addr))
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
        .body(payload.to_owned());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

// ---- harness -----------------------------------------------------------------------------

/// Boots a fake Stripe and the app configured to use it, then runs `test`.
async fn run<F, Fut>(test: F, backend: Backend)
where
    F: FnOnce(TestApp, FakeStripe) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let fake = FakeStripe::start().await;
    let url = fake.url();
    let app = TestApp::spawn_with(backend, |config| {
        config.stripe_secret_key = Some(Secret(SECRET_KEY.into()));
        config.stripe_webhook_secret = Some(Secret(WEBHOOK_SECRET.into()));
        config.stripe_api_base = url;
    })
    .await;
    if let Some(app) = app {
        test(app, fake).await;
    }
}

/// Like `both!`, with a fake Stripe: `with_stripe!(name)` runs `name(app, fake)` on
/// SQLite and on PostgreSQL.
macro_rules! with_stripe {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::run(super::$name, crate::common::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::run(super::$name, crate::common::Backend::Postgres).await;
            }
        }
    };
}

fn stripe(payment_method: &str) -> PaymentChoice {
    PaymentChoice { provider: "stripe".into(), token: payment_method.into() }
}

async fn place(app: &TestApp, tenant: &Tenant, variant: Uuid, payment_method: &str) -> (i64, Option<String>) {
    let cart = ready_cart(app, tenant, variant, 2).await;
    match app.checkout.place_order(tenant, cart, None, &stripe(payment_method)).await.unwrap() {
        PlaceOutcome::Placed { number, payment_error, .. } => (number, payment_error),
        PlaceOutcome::Refused(why) => panic!("not placed: {why}"),
    }
}

/// The store's order events, oldest first.
async fn topics(app: &TestApp, tenant: &Tenant) -> Vec<String> {
    common::outbox_topics(app, tenant, "order.").await
}

// ---- tests -------------------------------------------------------------------------------

async fn card_orders_through_stripe_are_paid(app: TestApp, fake: FakeStripe) {
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    let (number, error) = place(&app, &tenant, variant, "pm_card_visa").await;
    assert_eq!(error, None);
    let order = app.checkout.order(&tenant, number).await.unwrap().unwrap();
    assert_eq!((order.status, order.payment_status, order.payment_provider.as_str()), ("paid", "paid", "stripe"));
    // 2 × $25.00 + $5.00 shipping + 6.25 % tax.
    assert_eq!(order.totals.raw.total, 5844);

    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let r = &seen[0];
    assert_eq!((r.method.as_str(), r.path.as_str(), r.status, r.replayed), ("POST", "/v1/payment_intents", 200, false));
    assert_eq!(r.authorization, format!("Bearer {SECRET_KEY}"));
    assert!(r.content_type.starts_with("application/x-www-form-urlencoded"), "{}", r.content_type);
    assert_eq!(r.stripe_version.as_deref(), Some(ecom_services::stripe::API_VERSION));
    assert_eq!(r.idempotency_key, Some(format!("{}:charge:0", order.id)));
    let tenant_id = tenant.id.0.to_string();
    let order_id = order.id.to_string();
    for (key, value) in [
        ("amount", "5844"),
        ("currency", "usd"),
        ("payment_method", "pm_card_visa"),
        ("confirm", "true"),
        ("capture_method", "automatic"),
        ("automatic_payment_methods[enabled]", "true"),
        ("automatic_payment_methods[allow_redirects]", "never"),
        ("metadata[tenant_id]", tenant_id.as_str()),
        ("metadata[order_id]", order_id.as_str()),
    ] {
        assert_eq!(r.param(key), Some(value), "{key} in {:?}", r.params);
    }
    assert_eq!(fake.intents(), 1);
    let reference = &order.payments[0].reference;
    assert!(reference.starts_with("pi_"), "{reference}");
    assert_eq!(fake.intent(reference)["status"], "succeeded");
    assert!(order.events.iter().any(|e| e.message.contains(reference.as_str())), "{:?}", order.events);
    assert_eq!(topics(&app, &tenant).await, ["order.placed", "order.paid"]);
    app.stop().await;
}
with_stripe!(card_orders_through_stripe_are_paid);

async fn a_retried_payment_reuses_its_idempotency_key(app: TestApp, fake: FakeStripe) {
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    // Stripe makes the PaymentIntent, but its answer never arrives.
    fake.cut_next();
    let (number, error) = place(&app, &tenant, variant, "pm_card_visa").await;
    assert!(error.as_deref().is_some_and(|m| m.contains("not answering")), "{error:?}");
    let order = app.checkout.order(&tenant, number).await.unwrap().unwrap();
    assert_eq!((order.status, order.payment_status), ("pending_payment", "pending"));
    assert!(order.payments.is_empty());
    assert_eq!(fake.intents(), 1, "Stripe did charge the card");

    // The shopper tries again: the same attempt, the same key, Stripe's saved answer.
    let again = app.checkout.pay(&tenant, order.id, &stripe("pm_card_visa"), true).await.unwrap();
    assert_eq!(again, None);
    let order = app.checkout.order(&tenant, number).await.unwrap().unwrap();
    assert_eq!(order.status, "paid");
    assert_eq!(fake.intents(), 1, "no second PaymentIntent");
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    let key = format!("{}:charge:0", order.id);
    assert!(seen.iter().all(|r| r.idempotency_key.as_deref() == Some(key.as_str())), "{seen:#?}");
    assert_eq!(seen[0].params, seen[1].params);
    assert!(!seen[0].replayed && seen[1].replayed);
    assert_eq!(order.payments.len(), 1);
    assert_eq!(fake.intent(&order.payments[0].reference)["status"], "succeeded");
    app.stop().await;
}
with_stripe!(a_retried_payment_reuses_its_idempotency_key);

async fn declined_cards_leave_the_order_pending(app: TestApp, fake: FakeStripe) {
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    let (number, error) = place(&app, &tenant, variant, "pm_card_chargeDeclined").await;
    assert_eq!(error.as_deref(), Some("Your card was declined."));
    let order = app.checkout.order(&tenant, number).await.unwrap().unwrap();
    assert_eq!((order.status, order.payment_status), ("pending_payment", "pending"));
    assert!(order.events.iter().any(|e| e.kind == "payment_failed" && e.message.contains("Your card was declined.")));

    let funds = app.checkout.pay(&tenant, order.id, &stripe("pm_card_chargeDeclinedInsufficientFunds"), true).await;
    assert_eq!(funds.unwrap().as_deref(), Some("Your card has insufficient funds."));
    let order = app.checkout.order(&tenant, number).await.unwrap().unwrap();
    assert_eq!((order.status, order.payment_status), ("pending_payment", "pending"));

    assert_eq!(app.checkout.pay(&tenant, order.id, &stripe("pm_card_visa"), true).await.unwrap(), None);
    let order = app.checkout.order(&tenant, number).await.unwrap().unwrap();
    assert_eq!(order.status, "paid");
    assert_eq!(order.payments.len(), 3, "three attempts, each recorded");
    let seen = fake.seen();
    let answers: Vec<(u16, String)> =
        seen.iter().map(|r| (r.status, r.idempotency_key.clone().unwrap_or_default())).collect();
    let key = |n: u32| format!("{}:charge:{n}", order.id);
    assert_eq!(answers, [(402, key(0)), (402, key(1)), (200, key(2))], "a new attempt is a new key");
    assert_eq!(fake.events("payment_intent.payment_failed").len(), 2);
    app.stop().await;
}
with_stripe!(declined_cards_leave_the_order_pending);

async fn authorised_payments_are_captured_refunded_and_voided(app: TestApp, fake: FakeStripe) {
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    let staff = Actor::Staff("owner@demo.test".into());
    app.checkout.save_general_settings(&tenant, false, 60, false, "", &staff).await.unwrap();
    let (number, error) = place(&app, &tenant, variant, "pm_card_visa").await;
    assert_eq!(error, None);
    let order = app.checkout.order(&tenant, number).await.unwrap().unwrap();
    assert_eq!((order.status, order.payment_status), ("pending_payment", "authorized"));
    assert_eq!(fake.seen()[0].param("capture_method"), Some("manual"));
    let intent = order.payments[0].reference.clone();
    assert_eq!(fake.intent(&intent)["status"], "requires_capture");

    app.checkout.command(&tenant, order.id, OrderCommand::Capture, &staff).await.unwrap();
    let capture = fake.seen().pop().unwrap();
    assert_eq!((capture.path.clone(), capture.status), (format!("/v1/payment_intents/{intent}/capture"), 200));
    assert_eq!(capture.param("amount_to_capture"), Some("5844"));
    assert_eq!(capture.idempotency_key, Some(format!("{}:capture", order.id)));
    assert_eq!(fake.intent(&intent)["status"], "succeeded");
    assert_eq!(app.checkout.order(&tenant, number).await.unwrap().unwrap().status, "paid");

    let refund = OrderCommand::Refund { amount: 1000, reason: "scratched".into() };
    app.checkout.command(&tenant, order.id, refund, &staff).await.unwrap();
    let r = fake.seen().pop().unwrap();
    assert_eq!((r.path.as_str(), r.status), ("/v1/refunds", 200));
    assert_eq!((r.param("payment_intent"), r.param("amount")), (Some(intent.as_str()), Some("1000")));
    assert_eq!(r.idempotency_key, Some(format!("{}:refund:0:1000", order.id)));
    assert_eq!(fake.intent(&intent)["amount_refunded"], 1000);
    let order = app.checkout.order(&tenant, number).await.unwrap().unwrap();
    assert_eq!((order.payment_status, order.refunded_minor), ("partially_refunded", 1000));

    // A second authorised order, cancelled: the hold on the card is released.
    let (second, _) = place(&app, &tenant, variant, "pm_card_visa").await;
    let second = app.checkout.order(&tenant, second).await.unwrap().unwrap();
    let held = second.payments[0].reference.clone();
    app.checkout.command(&tenant, second.id, OrderCommand::Cancel { restock: true }, &staff).await.unwrap();
    let cancel = fake.seen().pop().unwrap();
    assert_eq!((cancel.path.clone(), cancel.status), (format!("/v1/payment_intents/{held}/cancel"), 200));
    assert_eq!(cancel.idempotency_key, Some(format!("{}:void", second.id)));
    assert_eq!(fake.intent(&held)["status"], "canceled");
    assert_eq!(app.checkout.order_by_id(&tenant, second.id).await.unwrap().unwrap().status, "cancelled");
    app.stop().await;
}
with_stripe!(authorised_payments_are_captured_refunded_and_voided);

async fn stripe_webhooks_are_verified_and_applied_once(app: TestApp, fake: FakeStripe) {
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    // The charge's answer is lost: only the webhook can tell the app it was paid.
    fake.cut_next();
    let (number, error) = place(&app, &tenant, variant, "pm_card_visa").await;
    assert!(error.is_some());
    let succeeded = fake.events("payment_intent.succeeded");
    assert_eq!(succeeded.len(), 1);
    let event = &succeeded[0];
    let intent = event["data"]["object"]["id"].as_str().unwrap().to_owned();
    let (a, t) = (&app, &tenant);
    let pending = move || async move {
        let o = a.checkout.order(t, number).await.unwrap().unwrap();
        (o.status, o.events.len())
    };
    let (status, events_before) = pending().await;
    assert_eq!(status, "pending_payment");

    // Wrong secret, stale timestamp, no header at all: refused, nothing changes.
    let now = chrono::Utc::now().timestamp();
    let wrong = fake.deliver_signed(&app, event, "whsec_someoneElse", now).await;
    assert_eq!(wrong.0, 400, "{wrong:?}");
    let stale = fake.deliver_signed(&app, event, WEBHOOK_SECRET, now - 600).await;
    assert_eq!(stale.0, 400, "{stale:?}");
    assert_eq!(deliver_raw(&app, &event.to_string(), None).await.0, 400);
    assert_eq!(pending().await, ("pending_payment", events_before));

    let first = fake.deliver(&app, event).await;
    assert_eq!(first, (200, "ok".to_owned()));
    let order = app.checkout.order(&tenant, number).await.unwrap().unwrap();
    assert_eq!((order.status, order.payment_status), ("paid", "paid"));
    assert!(
        order.events.iter().any(|e| e.message.contains(&intent) && e.actor.contains("stripe")),
        "{:?}",
        order.events
    );
    let events_after = order.events.len();
    let replay = fake.deliver(&app, event).await;
    assert_eq!(replay, (200, "already processed".to_owned()));
    assert_eq!(app.checkout.order(&tenant, number).await.unwrap().unwrap().events.len(), events_after);
    assert_eq!(topics(&app, &tenant).await.iter().filter(|t| *t == "order.paid").count(), 1);

    // Events ECOM has no use for are acknowledged and change nothing.
    let charge = &fake.events("charge.succeeded")[0];
    assert_eq!(fake.deliver(&app, charge).await, (200, "ok".to_owned()));
    let foreign = json!({
        "id": "evt_foreign", "object": "event", "type": "customer.created",
        "data": { "object": { "id": "cus_1", "object": "customer", "metadata": {} } },
    });
    let (status, body) = fake.deliver(&app, &foreign).await;
    assert_eq!(status, 200);
    assert!(body.contains("ignored"), "{body}");
    assert_eq!(app.checkout.order(&tenant, number).await.unwrap().unwrap().events.len(), events_after);

    // The shopper's retry finds the order paid and calls nobody; a refund finds the
    // PaymentIntent the webhook named.
    let calls = fake.seen().len();
    assert_eq!(app.checkout.pay(&tenant, order.id, &stripe("pm_card_visa"), true).await.unwrap(), None);
    assert_eq!(fake.seen().len(), calls);
    let staff = Actor::Staff("owner@demo.test".into());
    let refund = OrderCommand::Refund { amount: 500, reason: String::new() };
    app.checkout.command(&tenant, order.id, refund, &staff).await.unwrap();
    let r = fake.seen().pop().unwrap();
    assert_eq!((r.path.as_str(), r.param("payment_intent"), r.status), ("/v1/refunds", Some(intent.as_str()), 200));
    let refunded = &fake.events("charge.refunded")[0];
    assert_eq!(fake.deliver(&app, refunded).await, (200, "ok".to_owned()));
    app.stop().await;
}
with_stripe!(stripe_webhooks_are_verified_and_applied_once);

async fn shoppers_pay_with_stripe_in_the_browser(app: TestApp, fake: FakeStripe) {
    let (tenant, variant) = store_with_stock(&app, "demo", 3).await;
    let b = app.browser(&[]);
    let host = "demo.localhost";
    let v = variant.to_string();
    assert_eq!(b.post(host, "/cart/add", &[("variant", &v), ("quantity", "1")]).await.status, 303);
    let form = b.get(host, "/checkout").await;
    assert!(form.body.contains("Card (Stripe)"), "{}", form.body);
    assert!(form.body.contains("Stripe payment method id (from Stripe.js)"));
    // Stripe is down: the order is saved, the shopper is told, nothing is charged.
    fake.fail_next();
    let fields = [
        ("email", "pat@example.com"),
        ("name", "Pat Doe"),
        ("line1", "1 Main St"),
        ("city", "Springfield"),
        ("region", "IL"),
        ("postal_code", "62701"),
        ("country", "US"),
        ("shipping", "standard"),
        ("provider", "stripe"),
        ("card_number", ""),
        ("payment_method", "pm_card_visa"),
        ("action", "place"),
    ];
    let placed = b.submit(host, "/checkout", "/checkout", &fields).await;
    assert_eq!(placed.status, 303, "{}", placed.body);
    let to = placed.location().unwrap().to_owned();
    assert!(to.ends_with("?declined=1"), "{to}");
    let page = b.get(host, &to).await;
    assert!(page.body.contains("not answering"), "{}", page.body);
    let order = app.checkout.order(&tenant, 1001).await.unwrap().unwrap();
    assert_eq!((order.status, order.payment_status), ("pending_payment", "pending"));
    assert_eq!(fake.intents(), 0);
    assert_eq!(fake.seen()[0].status, 500);
    assert_eq!(fake.seen()[0].param("payment_method"), Some("pm_card_visa"), "the form's payment method was sent");

    // Paying again from the order page (a headless client: the form there is the test
    // card's) goes through with the same key.
    let order_path = to.trim_end_matches("?declined=1").to_owned();
    let pay = b
        .submit(
            host,
            &order_path,
            &format!("{order_path}/pay"),
            &[("provider", "stripe"), ("payment_method", "pm_card_visa")],
        )
        .await;
    assert_eq!(pay.status, 303, "{}", pay.body);
    assert_eq!(pay.location(), Some(order_path.as_str()));
    assert!(b.get(host, &order_path).await.body.contains("Paid"));
    let seen = fake.seen();
    assert_eq!((seen.len(), seen[1].status), (2, 200));
    assert_eq!(seen[0].idempotency_key, seen[1].idempotency_key);
    assert_eq!(fake.intents(), 1);
    app.stop().await;
}
with_stripe!(shoppers_pay_with_stripe_in_the_browser);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_is_off_without_a_key() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else { return };
    assert!(app.checkout.payments().get("stripe").is_none());
    assert_eq!(deliver_raw(&app, "{}", Some("t=1,v1=00")).await.0, 404);
    app.stop().await;
}

/// The adapter on its own against the fake, and the fake's own checks.
#[tokio::test]
async fn the_adapter_keeps_secrets_out_of_errors_and_the_fake_checks_requests() {
    use ecom_services::stripe::Stripe;
    let fake = FakeStripe::start().await;
    let request = |token: &str, key: &str, amount: i64| ChargeRequest {
        amount,
        currency: "EUR".into(),
        token: token.into(),
        capture: true,
        idempotency_key: key.into(),
        tenant_id: Uuid::now_v7(),
        order_id: Uuid::now_v7(),
    };

    // A wrong key: Stripe's message (which here holds the key) is not passed on.
    let wrong = Stripe::new("sk_test_wrongKeyXYZ987", WEBHOOK_SECRET, &fake.url()).unwrap();
    let refused = wrong.charge(&request("pm_card_visa", "k-wrong", 100)).await;
    let Err(PaymentError::Refused(message)) = refused else { panic!("{refused:?}") };
    assert!(!message.contains("wrongKeyXYZ987"), "{message}");
    assert_eq!(fake.seen()[0].status, 401);

    let s = Stripe::new(SECRET_KEY, WEBHOOK_SECRET, &fake.url()).unwrap();
    let req = request("pm_card_visa", "k1", 1999);
    let first = s.charge(&req).await.unwrap();
    assert!(matches!(&first, ChargeOutcome::Captured { reference } if reference.starts_with("pi_")));
    assert_eq!(fake.seen().pop().unwrap().param("currency"), Some("eur"));
    assert_eq!(s.charge(&req).await.unwrap(), first, "the same key, the same PaymentIntent");
    assert_eq!(fake.intents(), 1);
    // The same key for a different charge is Stripe's idempotency_error.
    let clash = s.charge(&ChargeRequest { amount: 2999, ..req.clone() }).await;
    assert!(matches!(&clash, Err(PaymentError::Refused(m)) if m.contains("idempotent")), "{clash:?}");
    assert_eq!(fake.seen().pop().unwrap().status, 400);

    // 3-D Secure cannot be done here: a decline with a clear message.
    let action = s.charge(&request("pm_card_authenticationRequired", "k2", 500)).await.unwrap();
    assert!(matches!(&action, ChargeOutcome::Declined { message } if message.contains("3-D Secure")), "{action:?}");
    // Unknown or malformed ids: refused by Stripe, or before any request.
    let unknown = s.capture("pi_doesNotExist", 100, "k3").await;
    assert!(matches!(&unknown, Err(PaymentError::Refused(m)) if m.contains("No such payment_intent")), "{unknown:?}");
    let calls = fake.seen().len();
    assert!(matches!(s.refund("pi_1/../../v1/payment_intents", 100, "k4").await, Err(PaymentError::Refused(_))));
    assert_eq!(fake.seen().len(), calls, "a bad id never reaches Stripe");

    // The fake holds requests to Stripe's rules.
    let http = reqwest::Client::new();
    let post = |form: Vec<(&'static str, &'static str)>, key: Option<&'static str>, auth: bool| {
        let mut r = http.post(format!("{}/v1/payment_intents", fake.url())).form(&form);
        if let Some(key) = key {
            r = r.header("idempotency-key", key);
        }
        if auth {
            r = r.bearer_auth(SECRET_KEY);
        }
        r.send()
    };
    let good: Vec<(&str, &str)> = vec![
        ("amount", "100"),
        ("currency", "usd"),
        ("payment_method", "pm_card_visa"),
        ("confirm", "true"),
        ("automatic_payment_methods[enabled]", "true"),
        ("automatic_payment_methods[allow_redirects]", "never"),
    ];
    let with = |key: &'static str, value: &'static str| {
        let mut f: Vec<(&str, &str)> = good.iter().filter(|(k, _)| *k != key).cloned().collect();
        f.push((key, value));
        f
    };
    let error_of = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        (status, body["error"]["type"].as_str().unwrap_or_default().to_owned(), body["error"]["param"].clone())
    };
    assert_eq!(error_of(post(good.clone(), Some("f1"), false).await.unwrap()).await.0, 401);
    assert_eq!(error_of(post(good.clone(), None, true).await.unwrap()).await.0, 400, "no idempotency key");
    for (form, param) in [
        (with("currency", "USD"), "currency"),
        (with("amount", "-5"), "amount"),
        (with("amount", "12.50"), "amount"),
        (with("automatic_payment_methods[allow_redirects]", "always"), "return_url"),
        (with("surprise", "1"), "surprise"),
    ] {
        let (status, kind, p) = error_of(post(form, Some("f2"), true).await.unwrap()).await;
        assert_eq!((status, kind.as_str(), p), (400, "invalid_request_error", json!(param)));
    }
    let json_body = http
        .post(format!("{}/v1/payment_intents", fake.url()))
        .bearer_auth(SECRET_KEY)
        .header("idempotency-key", "f3")
        .json(&json!({"amount": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), 400, "JSON bodies are refused");
}
