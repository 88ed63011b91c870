//! SMS, WhatsApp and Web Push channels, and phone verification, on SQLite and
//! PostgreSQL. The providers are real HTTP servers on loopback that check requests the
//! way Twilio's Messages API, the WhatsApp Cloud API and a Web Push service document
//! them, and answer like them (errors included). The push service verifies the VAPID
//! JWT's signature, and the test decrypts the RFC 8291 payload with the subscription's
//! private key, which only the test holds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_lc_rs::{aead, agreement, hkdf, signature};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use common::{Browser, Logged, PASSWORD, TestApp, store_with_stock};
use ecom_core::{Email, Realm, Tenant};
use ecom_services::checkout::{CheckoutDetails, PaymentChoice, PlaceOutcome};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "twilio-auth-token-0123456789abcdef";
const WA_TOKEN: &str = "EAAG-whatsapp-test-token-0123456789";
const WA_NUMBER_ID: &str = "106540352242922";

fn fast(c: &mut ecom::config::Config) {
    c.bus_poll_ms = 10;
    c.bus_backoff_base_ms = 50;
    c.bus_backoff_max_ms = 200;
}

/// Serves `router` on a free loopback port.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn log(app: &TestApp) -> Vec<Logged> {
    common::notification_log(&app.db, 500).await
}

/// Waits until `done` holds for the notification log.
async fn log_until(app: &TestApp, what: &str, done: impl Fn(&[Logged]) -> bool) -> Vec<Logged> {
    let start = Instant::now();
    loop {
        let rows = log(app).await;
        if done(&rows) {
            return rows;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

fn row<'a>(rows: &'a [Logged], to: &str) -> &'a Logged {
    rows.iter().find(|r| r.recipient == to).unwrap_or_else(|| panic!("no message to {to}: {rows:#?}"))
}

fn settled(rows: &[Logged], n: usize) -> bool {
    rows.len() >= n && rows.iter().all(|r| r.status != "pending")
}

async fn queue(app: &TestApp, tenant: &Tenant, channel: &'static str, to: &str, text: &str) {
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    ecom_notify::enqueue_to_number(&txn, tenant.id, channel, to, "test", text, None).await.unwrap();
    txn.commit().await.unwrap();
}

async fn customer_id(app: &TestApp, tenant: &Tenant) -> uuid::Uuid {
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let c = ecom_store::accounts::find_by_email(
        &txn,
        Realm::Customer(tenant.id),
        &Email::parse("pat@example.com").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    txn.commit().await.unwrap();
    c.id.0
}

// ---- Twilio ----

#[derive(Default)]
struct Twilio {
    /// (To, From, Body) of every well-formed request.
    received: Mutex<Vec<(String, String, String)>>,
    /// Requests that broke the documented shape, and why.
    malformed: Mutex<Vec<String>>,
    /// Until set, a text to +15005550700 gets no answer: a provider sitting on a request.
    released: std::sync::atomic::AtomicBool,
}

/// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` as Twilio documents it.
async fn twilio_messages(
    State(t): State<Arc<Twilio>>,
    Path((sid, file)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let expected_auth = format!("Basic {}", STANDARD.encode(format!("{SID}:{TOKEN}")));
    let problem = if sid != SID || file != "Messages.json" {
        Some("wrong path")
    } else if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected_auth.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"code": 20003, "message": "Authenticate", "status": 401})),
        )
            .into_response();
    } else if !headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
    {
        Some("not form-encoded")
    } else {
        None
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let (to, from, text) = (get("To"), get("From"), get("Body"));
    let problem = problem.or(if !to.starts_with('+') || to.len() < 9 {
        Some("To is not E.164")
    } else if from.is_empty() && get("MessagingServiceSid").is_empty() {
        Some("neither From nor MessagingServiceSid")
    } else if text.is_empty() {
        Some("no Body")
    } else {
        None
    });
    if let Some(p) = problem {
        t.malformed.lock().unwrap().push(p.to_owned());
        return (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"code": 21601, "message": p, "status": 400})))
            .into_response();
    }
    let seen = {
        let mut r = t.received.lock().unwrap();
        r.push((to.clone(), from, text));
        r.iter().filter(|(t2, _, _)| *t2 == to).count()
    };
    if to == "+15005550700" {
        while !t.released.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    match to.as_str() {
        // Twilio's own answer for a number that cannot receive messages.
        "+15005550009" => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({
                "code": 21614, "message": "'To' number is not a valid mobile number",
                "more_info": "https://www.twilio.com/docs/errors/21614", "status": 400
            })),
        )
            .into_response(),
        // Too many requests once, then fine.
        "+15005550429" if seen == 1 => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({"code": 20429, "message": "Too Many Requests", "status": 429})),
        )
            .into_response(),
        _ => (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({
                "sid": format!("SM{:032x}", seen as u128 + u128::from(to.len() as u32) * 1000),
                "status": "queued", "to": to, "account_sid": SID,
            })),
        )
            .into_response(),
    }
}

/// A local server answering Twilio's Messages API, and its address.
async fn twilio_server() -> (Arc<Twilio>, String) {
    let twilio = Arc::new(Twilio::default());
    let router = axum::Router::new()
        .route("/2010-04-01/Accounts/{sid}/{file}", axum::routing::post(twilio_messages))
        .with_state(twilio.clone());
    (twilio, serve(router).await)
}

/// Texts go through Twilio at `base` (a [`twilio_server`]), from +15005550006.
fn twilio_at(c: &mut ecom::config::Config, base: String) {
    c.twilio_account_sid = Some(SID.into());
    c.twilio_auth_token = Some(ecom::config::Secret(TOKEN.into()));
    c.twilio_from = Some("+15005550006".into());
    c.twilio_api_url = base;
}

/// An app whose texts go to a new [`twilio_server`].
async fn twilio_app(backend: common::Backend) -> Option<(Arc<Twilio>, TestApp)> {
    let (twilio, base) = twilio_server().await;
    let app = TestApp::spawn_with(backend, |c| {
        fast(c);
        twilio_at(c, base);
    })
    .await?;
    Some((twilio, app))
}

async fn twilio_sms_is_sent_as_documented_and_errors_are_retried_or_failed(backend: common::Backend) {
    let Some((twilio, app)) = twilio_app(backend).await else { return };
    let tenant = app.store("demo", "Demo").await;
    queue(&app, &tenant, ecom_notify::SMS, "+14155550100", "Your order has shipped").await;
    queue(&app, &tenant, ecom_notify::SMS, "+15005550429", "Busy once").await;
    queue(&app, &tenant, ecom_notify::SMS, "+15005550009", "Never arrives").await;
    let rows = log_until(&app, "three SMS settled", |r| settled(r, 3)).await;

    let ok = row(&rows, "+14155550100");
    // `attempts` counts every try, the successful one included.
    assert_eq!((ok.status.as_str(), ok.attempts), ("sent", 1), "{ok:#?}");
    assert!(ok.provider_id.starts_with("SM") && ok.provider_id.len() == 34, "Twilio's sid is the provider id: {ok:#?}");
    let retried = row(&rows, "+15005550429");
    assert_eq!((retried.status.as_str(), retried.attempts), ("sent", 2), "429 is retried: {retried:#?}");
    assert!(retried.last_error.contains("20429"), "{retried:#?}");
    let refused = row(&rows, "+15005550009");
    assert_eq!((refused.status.as_str(), refused.attempts), ("failed", 1), "a 400 is final: {refused:#?}");
    assert!(refused.last_error.contains("21614") && refused.last_error.contains("not a valid mobile"), "{refused:#?}");

    assert!(twilio.malformed.lock().unwrap().is_empty(), "{:?}", twilio.malformed.lock().unwrap());
    let received = twilio.received.lock().unwrap().clone();
    assert!(received.contains(&("+14155550100".into(), "+15005550006".into(), "Your order has shipped".into())));
    assert_eq!(received.iter().filter(|(to, _, _)| to == "+15005550429").count(), 2);
}
backends!(twilio_sms_is_sent_as_documented_and_errors_are_retried_or_failed);

/// Each channel is sent from its own lane: while Twilio sits on a text, email keeps
/// going out and is recorded sent, and the text is sent once Twilio answers.
async fn a_provider_sitting_on_a_text_does_not_hold_up_email(backend: common::Backend) {
    let Some((twilio, app)) = twilio_app(backend).await else { return };
    let tenant = app.store("demo", "Demo").await;
    queue(&app, &tenant, ecom_notify::SMS, "+15005550700", "Held by the provider").await;
    let start = Instant::now();
    while !twilio.received.lock().unwrap().iter().any(|(to, _, _)| to == "+15005550700") {
        assert!(start.elapsed() < Duration::from_secs(30), "the text was never sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let email = ecom_notify::Email {
        to: "pat@example.com",
        template: "plain",
        subject: "Meanwhile",
        text: "Email does not wait for texts.",
        html: "",
        event_id: None,
    };
    ecom_notify::enqueue_email(&txn, Some(tenant.id), &email).await.unwrap();
    txn.commit().await.unwrap();
    let queued = Instant::now();
    let rows =
        log_until(&app, "the email sent", |r| r.iter().any(|n| n.channel == "email" && n.status == "sent")).await;
    assert!(queued.elapsed() < Duration::from_secs(10), "the email waited {:?}", queued.elapsed());
    let text = row(&rows, "+15005550700");
    assert_eq!((text.status.as_str(), text.attempts), ("pending", 0), "still with Twilio: {text:#?}");

    twilio.released.store(true, std::sync::atomic::Ordering::SeqCst);
    let rows = log_until(&app, "the text sent", |r| row(r, "+15005550700").status == "sent").await;
    assert_eq!(row(&rows, "+15005550700").attempts, 1, "sent once, when Twilio answered");
}
backends!(a_provider_sitting_on_a_text_does_not_hold_up_email);

// ---- WhatsApp ----

#[derive(Default)]
struct Graph {
    received: Mutex<Vec<serde_json::Value>>,
    malformed: Mutex<Vec<String>>,
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC"}})),
    )
        .into_response()
}

/// `POST /{version}/{phone_number_id}/messages` as the Cloud API documents it.
async fn graph_messages(
    State(g): State<Arc<Graph>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(format!("Bearer {WA_TOKEN}").as_str()) {
        return graph_error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token");
    }
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let t = &json["template"];
    let problem = if version != "v21.0" || id != WA_NUMBER_ID {
        Some("wrong path")
    } else if !headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
    {
        Some("not JSON")
    } else if json["messaging_product"] != "whatsapp" || json["type"] != "template" {
        Some("not a WhatsApp template message")
    } else if !json["to"].as_str().is_some_and(|to| to.len() >= 8 && to.bytes().all(|b| b.is_ascii_digit())) {
        Some("to is not a phone number")
    } else if !t["name"].is_string() || !t["language"]["code"].is_string() {
        Some("template name or language missing")
    } else if t["components"][0]["type"] != "body"
        || !t["components"][0]["parameters"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["type"] == "text" && p["text"].is_string()))
    {
        Some("body parameters are not text parameters")
    } else {
        None
    };
    if let Some(p) = problem {
        g.malformed.lock().unwrap().push(p.to_owned());
        return graph_error(StatusCode::BAD_REQUEST, 100, p);
    }
    let to = json["to"].as_str().unwrap_or_default().to_owned();
    let seen = {
        let mut r = g.received.lock().unwrap();
        r.push(json.clone());
        r.iter().filter(|m| m["to"] == to.as_str()).count()
    };
    if t["name"] == "no_such_template" {
        return graph_error(StatusCode::NOT_FOUND, 132001, "Template name does not exist in the translation");
    }
    if to == "15005550429" && seen == 1 {
        return graph_error(
            StatusCode::BAD_REQUEST,
            131056,
            "(Business Account, Consumer Account) pair rate limit hit",
        );
    }
    axum::Json(serde_json::json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": format!("wamid.HBgL{to}{seen}")}],
    }))
    .into_response()
}

/// A local server answering the WhatsApp Cloud API's messages endpoint, and its address.
async fn graph_server() -> (Arc<Graph>, String) {
    let graph = Arc::new(Graph::default());
    let router = axum::Router::new()
        .route("/{version}/{id}/messages", axum::routing::post(graph_messages))
        .with_state(graph.clone());
    (graph, serve(router).await)
}

async fn whatsapp_templates_are_sent_as_documented_and_go_to_verified_phones_only(backend: common::Backend) {
    let (graph, base) = graph_server().await;
    let Some(app) = TestApp::spawn_with(backend, |c| {
        fast(c);
        c.whatsapp_token = Some(ecom::config::Secret(WA_TOKEN.into()));
        c.whatsapp_phone_number_id = Some(WA_NUMBER_ID.into());
        c.whatsapp_api_url = format!("{base}/v21.0");
    })
    .await
    else {
        return;
    };
    let tenant = app.store("demo", "Demo").await;
    let call = |name: &str, params: &[&str]| {
        ecom_notify::TemplateCall {
            template: name.into(),
            language: "en_US".into(),
            parameters: params.iter().map(|p| (*p).to_owned()).collect(),
        }
        .to_row_text()
    };
    queue(&app, &tenant, ecom_notify::WHATSAPP, "+14155550100", &call("order_shipped", &["Pat", "#1001", "UPS 1Z999"]))
        .await;
    queue(&app, &tenant, ecom_notify::WHATSAPP, "+15005550429", &call("order_shipped", &["Sam", "#1002", "DHL 42"]))
        .await;
    queue(&app, &tenant, ecom_notify::WHATSAPP, "+15005550001", &call("no_such_template", &["x"])).await;

    // Only a verified phone gets messages: Pat has none yet, so nothing is queued.
    let pat = customer_id(&app, &tenant).await;
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let text = call("order_shipped", &["Pat", "#1003", "UPS 1"]);
    assert_eq!(
        ecom_notify::enqueue_text(&txn, tenant.id, pat, ecom_notify::WHATSAPP, "t", &text, None).await.unwrap(),
        None
    );
    ecom_store::channels::set_customer_phone(&txn, tenant.id, pat, Some("+447700900123"), None).await.unwrap();
    assert_eq!(
        ecom_notify::enqueue_text(&txn, tenant.id, pat, ecom_notify::WHATSAPP, "t", &text, None).await.unwrap(),
        None
    );
    ecom_store::channels::set_customer_phone(&txn, tenant.id, pat, Some("+447700900123"), Some(chrono::Utc::now()))
        .await
        .unwrap();
    assert!(
        ecom_notify::enqueue_text(&txn, tenant.id, pat, ecom_notify::WHATSAPP, "t", &text, None)
            .await
            .unwrap()
            .is_some()
    );
    txn.commit().await.unwrap();

    let rows = log_until(&app, "four WhatsApp messages settled", |r| settled(r, 4)).await;
    let ok = row(&rows, "+14155550100");
    assert_eq!((ok.status.as_str(), ok.provider_id.as_str()), ("sent", "wamid.HBgL141555501001"), "{ok:#?}");
    let retried = row(&rows, "+15005550429");
    assert_eq!((retried.status.as_str(), retried.attempts), ("sent", 2), "131056 is retried: {retried:#?}");
    let refused = row(&rows, "+15005550001");
    assert_eq!((refused.status.as_str(), refused.attempts), ("failed", 1), "{refused:#?}");
    assert!(refused.last_error.contains("132001"), "{refused:#?}");
    assert_eq!(row(&rows, "+447700900123").status, "sent");

    assert!(graph.malformed.lock().unwrap().is_empty(), "{:?}", graph.malformed.lock().unwrap());
    let received = graph.received.lock().unwrap().clone();
    let first = received.iter().find(|m| m["to"] == "14155550100").unwrap();
    assert_eq!(first["template"]["name"], "order_shipped");
    assert_eq!(first["template"]["language"]["code"], "en_US");
    let texts: Vec<&str> = first["template"]["components"][0]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Pat", "#1001", "UPS 1Z999"]);
}
backends!(whatsapp_templates_are_sent_as_documented_and_go_to_verified_phones_only);

// ---- Web Push ----

struct Pushed {
    name: String,
    authorization: String,
    body: Vec<u8>,
}

#[derive(Default)]
struct PushService {
    received: Mutex<Vec<Pushed>>,
    refused: Mutex<Vec<String>>,
    /// The origin the VAPID JWT must name as its audience.
    origin: Mutex<String>,
}

/// Checks `Authorization: vapid t=<JWT>, k=<key>` as RFC 8292 says: an ES256 JWT
/// signed by `k`, for this origin, expiring within a day.
fn check_vapid(authorization: &str, origin: &str) -> Result<(), String> {
    let rest = authorization.strip_prefix("vapid ").ok_or("not the vapid scheme")?;
    let mut t = None;
    let mut k = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("k", v)) => k = Some(v),
            _ => return Err(format!("unexpected parameter {part}")),
        }
    }
    let (t, k) = (t.ok_or("no t")?, k.ok_or("no k")?);
    let mut parts = t.split('.');
    let (h, c, s) =
        (parts.next().ok_or("no header")?, parts.next().ok_or("no claims")?, parts.next().ok_or("no signature")?);
    let header: serde_json::Value =
        serde_json::from_slice(&B64.decode(h).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    if header["alg"] != "ES256" {
        return Err(format!("alg is {}", header["alg"]));
    }
    let key = B64.decode(k).map_err(|e| e.to_string())?;
    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, key)
        .verify(format!("{h}.{c}").as_bytes(), &B64.decode(s).map_err(|e| e.to_string())?)
        .map_err(|_| "the JWT signature does not verify with k")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&B64.decode(c).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    if claims["aud"] != origin {
        return Err(format!("aud {} is not {origin}", claims["aud"]));
    }
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    let now = chrono::Utc::now().timestamp();
    if exp <= now || exp > now + 86_400 {
        return Err("exp is not within the next 24 hours".into());
    }
    if !claims["sub"].as_str().is_some_and(|s| s.starts_with("mailto:")) {
        return Err("sub is not a mailto: contact".into());
    }
    Ok(())
}

async fn push_endpoint(
    State(p): State<Arc<PushService>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let origin = p.origin.lock().unwrap().clone();
    let problem = if h("content-encoding") != "aes128gcm" {
        Some("Content-Encoding is not aes128gcm".to_owned())
    } else if h("ttl").parse::<u64>().is_err() {
        Some("no TTL".to_owned())
    } else {
        check_vapid(&h("authorization"), &origin).err()
    };
    if let Some(problem) = problem {
        p.refused.lock().unwrap().push(problem.clone());
        return (StatusCode::UNAUTHORIZED, problem).into_response();
    }
    p.received.lock().unwrap().push(Pushed {
        name: name.clone(),
        authorization: h("authorization"),
        body: body.to_vec(),
    });
    if name == "gone" {
        return (StatusCode::GONE, "push subscription has unsubscribed or expired.").into_response();
    }
    (StatusCode::CREATED, [("location", format!("{origin}/m/{name}-1"))]).into_response()
}

/// A browser's side of a push subscription: its P-256 key pair and auth secret.
struct Device {
    private: agreement::PrivateKey,
    public: Vec<u8>,
    auth: [u8; 16],
}

impl Device {
    fn new() -> Self {
        let private = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
        let public = private.compute_public_key().unwrap().as_ref().to_vec();
        Self { private, public, auth: rand::random() }
    }

    fn subscription(&self, endpoint: &str) -> serde_json::Value {
        serde_json::json!({"endpoint": endpoint, "expirationTime": null,
            "keys": {"p256dh": B64.encode(&self.public), "auth": B64.encode(self.auth)}})
    }

    /// RFC 8291 decryption, written here from the RFC with aws-lc-rs's own HKDF.
    fn decrypt(&self, body: &[u8]) -> String {
        struct Len(usize);
        impl hkdf::KeyType for Len {
            fn len(&self) -> usize {
                self.0
            }
        }
        let derive = |salt: &[u8], ikm: &[u8], info: &[u8], len: usize| {
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
            let mut out = vec![0u8; len];
            prk.expand(&[info], Len(len)).unwrap().fill(&mut out).unwrap();
            out
        };
        let salt = &body[..16];
        let rs = u32::from_be_bytes(body[16..20].try_into().unwrap());
        assert_eq!(rs, 4096);
        let idlen = body[20] as usize;
        let as_public = &body[21..21 + idlen];
        let mut record = body[21 + idlen..].to_vec();
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, as_public);
        let ecdh = agreement::agree(&self.private, peer, (), |s| Ok(s.to_vec())).unwrap();
        let mut key_info = b"WebPush: info\0".to_vec();
        key_info.extend_from_slice(&self.public);
        key_info.extend_from_slice(as_public);
        let ikm = derive(&self.auth, &ecdh, &key_info, 32);
        let cek = derive(salt, &ikm, b"Content-Encoding: aes128gcm\0", 16);
        let nonce = derive(salt, &ikm, b"Content-Encoding: nonce\0", 12);
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &cek).unwrap());
        let plain = key
            .open_in_place(aead::Nonce::try_assume_unique_for_key(&nonce).unwrap(), aead::Aad::empty(), &mut record)
            .expect("the payload decrypts with the subscription's private key");
        let end = plain.iter().rposition(|b| *b != 0).unwrap();
        assert_eq!(plain[end], 2, "a single (last) record ends with the 0x02 delimiter");
        String::from_utf8(plain[..end].to_vec()).unwrap()
    }
}

async fn post_json(
    browser: &Browser,
    host: &str,
    path: &str,
    csrf: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let resp =
        browser.client.post(browser.url(host, path)).header("x-csrf-token", csrf).json(body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

async fn web_push_reaches_staff_and_shoppers_signed_and_encrypted_and_410_removes_the_subscription(
    backend: common::Backend,
) {
    let service = Arc::new(PushService::default());
    let base = serve(
        axum::Router::new().route("/push/{name}", axum::routing::post(push_endpoint)).with_state(service.clone()),
    )
    .await;
    *service.origin.lock().unwrap() = base.clone();
    let Some(app) = TestApp::spawn_with(backend, |c| {
        fast(c);
        c.allow_private_network = true;
    })
    .await
    else {
        return;
    };
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    let host = "demo.localhost";

    // The owner turns on new-order alerts in the merchant panel.
    let owner = app.browser(&[]);
    owner.login(host, "/merchant", "owner@demo.test", PASSWORD).await;
    let home = owner.get(host, "/merchant").await;
    assert!(home.body.contains("Alert me on new orders on this device") && home.body.contains("/static/push.js"));
    let csrf = home.csrf();
    let key: serde_json::Value =
        owner.client.get(owner.url(host, "/merchant/push/key")).send().await.unwrap().json().await.unwrap();
    let public_key = key["publicKey"].as_str().unwrap().to_owned();
    assert_eq!(B64.decode(&public_key).unwrap().len(), 65, "an uncompressed P-256 point");
    let phone = Device::new();
    let (status, _) =
        post_json(&owner, host, "/merchant/push", &csrf, &phone.subscription(&format!("{base}/push/staff"))).await;
    assert_eq!(status, 201);
    // Without the CSRF token the same request is refused.
    let (status, _) =
        post_json(&owner, host, "/merchant/push", "nope", &phone.subscription(&format!("{base}/push/x"))).await;
    assert_eq!(status, 403);
    // Bad keys are refused, naming the field.
    let mut bad = phone.subscription(&format!("{base}/push/bad"));
    bad["keys"]["p256dh"] = "AAAA".into();
    let (status, err) = post_json(&owner, host, "/merchant/push", &csrf, &bad).await;
    assert_eq!((status, err["field"].as_str()), (422, Some("keys.p256dh")), "{err}");

    // The shopper turns on notifications on two devices; one of them will be gone.
    let shopper = app.browser(&[]);
    shopper.login(host, "/account", "pat@example.com", PASSWORD).await;
    let account = shopper.get(host, "/account").await;
    assert!(account.body.contains("Get notified on this device"));
    let csrf = account.csrf();
    let laptop = Device::new();
    let old_phone = Device::new();
    for (device, name) in [(&laptop, "laptop"), (&old_phone, "gone")] {
        let (status, body) =
            post_json(&shopper, host, "/account/push", &csrf, &device.subscription(&format!("{base}/push/{name}")))
                .await;
        assert_eq!(status, 201, "{body}");
    }
    assert!(shopper.get(host, "/account").await.body.contains("2 devices"));

    // Pat places an order while signed in.
    let pat = customer_id(&app, &tenant).await;
    let cart = app.checkout.add_to_cart(&tenant, None, Some(ecom_core::AccountId(pat)), variant, 1).await.unwrap();
    let details = CheckoutDetails {
        email: "pat@example.com".into(),
        phone: String::new(),
        address: common::address(),
        shipping_code: "standard".into(),
        discount_code: String::new(),
    };
    app.checkout.save_details(&tenant, cart, details).await.unwrap();
    let manual = PaymentChoice { provider: "manual".into(), token: String::new() };
    let PlaceOutcome::Placed { number, .. } = app.checkout.place_order(&tenant, cart, None, &manual).await.unwrap()
    else {
        panic!("not placed")
    };

    let rows = log_until(&app, "the push messages", |r| {
        r.iter().filter(|m| m.channel == "webpush").count() == 3
            && r.iter().filter(|m| m.channel == "webpush").all(|m| m.status != "pending")
    })
    .await;
    assert!(service.refused.lock().unwrap().is_empty(), "{:?}", service.refused.lock().unwrap());
    let received = service
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|p| (p.name.clone(), p.authorization.clone(), p.body.clone()))
        .collect::<Vec<_>>();
    let body_for =
        |name: &str| received.iter().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("nothing pushed to {name}"));

    let (_, authorization, body) = body_for("staff");
    assert!(authorization.ends_with(&format!("k={public_key}")), "signed with the key the browser subscribed with");
    let alert: serde_json::Value = serde_json::from_str(&phone.decrypt(body)).unwrap();
    assert_eq!(alert["title"], format!("New order #{number} · demo"));
    assert!(alert["body"].as_str().unwrap().contains("pat@example.com"), "{alert}");
    assert!(alert["url"].as_str().unwrap().ends_with(&format!("/merchant/orders/{number}")), "{alert}");

    let (_, _, body) = body_for("laptop");
    let update: serde_json::Value = serde_json::from_str(&laptop.decrypt(body)).unwrap();
    assert_eq!(update["title"], "demo", "the store's name");
    assert!(update["body"].as_str().unwrap().starts_with(&format!("Thanks! We have your order #{number} · ")));
    assert!(update["url"].as_str().unwrap().ends_with(&format!("/account/orders/{number}")), "{update}");
    // The device that is gone could not read the laptop's message.
    let (_, _, gone_body) = body_for("gone");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&old_phone.decrypt(gone_body)).unwrap()["body"],
        update["body"]
    );

    let sent: Vec<&Logged> = rows.iter().filter(|r| r.channel == "webpush" && r.status == "sent").collect();
    assert_eq!(sent.len(), 2, "{rows:#?}");
    assert!(sent.iter().any(|r| r.provider_id == format!("{base}/m/staff-1")), "the Location is the provider id");
    let failed: Vec<&Logged> = rows.iter().filter(|r| r.channel == "webpush" && r.status == "failed").collect();
    assert_eq!(failed.len(), 1, "{rows:#?}");
    assert!(failed[0].last_error.contains("410") && failed[0].last_error.contains("removed"), "{:#?}", failed[0]);
    assert_eq!(failed[0].attempts, 1, "410 is not retried");

    // The 410 removed that subscription; the laptop's stays.
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let left = ecom_store::channels::push_subscriptions_of(&txn, tenant.id, "customer", &[pat]).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(left.iter().map(|s| s.endpoint.as_str()).collect::<Vec<_>>(), [format!("{base}/push/laptop")]);
    assert!(left[0].last_used_at.is_some());

    // Unsubscribing removes the owner's device.
    let csrf = owner.get(host, "/merchant").await.csrf();
    let (status, _) = post_json(
        &owner,
        host,
        "/merchant/push/unsubscribe",
        &csrf,
        &serde_json::json!({"endpoint": format!("{base}/push/staff")}),
    )
    .await;
    assert_eq!(status, 200);
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    assert!(ecom_store::channels::staff_push_subscriptions(&txn, tenant.id).await.unwrap().is_empty());
    txn.commit().await.unwrap();

    // In production mode a loopback endpoint is refused at subscription time.
    let guarded = ecom_services::channels::PushSubscriptions::new(
        app.db.clone(),
        ecom_services::Outbound::new(false).unwrap(),
        ecom_notify::Vapid::new(app.db.clone(), None, "mailto:ops@example.com", common::SECRET.as_bytes()).unwrap(),
    );
    let sub: ecom_services::channels::SubscriptionJson =
        serde_json::from_value(laptop.subscription("https://127.0.0.1/push/x")).unwrap();
    let err = guarded.subscribe(tenant.id, "customer", pat, &sub).await.unwrap_err().to_string();
    assert!(err.contains("loopback"), "{err}");
    // …and the key it uses is the one kept in the database: the same the app serves.
    assert_eq!(guarded.public_key().await.unwrap(), public_key);

    // The generated key is kept sealed under ECOM_SECRET_KEY: the database alone does
    // not give it away, and another secret cannot open it.
    let vapid =
        |secret: &str| ecom_notify::Vapid::new(app.db.clone(), None, "mailto:ops@example.com", secret.as_bytes());
    let stored = || async {
        let txn = app.db.platform_txn().await.unwrap();
        let v = ecom_store::channels::platform_key(&txn, "vapid_private_key").await.unwrap().unwrap();
        txn.commit().await.unwrap();
        v
    };
    let sealed = stored().await;
    let opened = ecom_core::sealed::Sealer::new(common::SECRET.as_bytes(), "ecom vapid key")
        .open(sealed.strip_prefix("sealed:").expect("sealed"))
        .unwrap();
    assert!(!sealed.contains(&opened));
    let err = vapid("another-secret-key-that-is-long-enough-0123").unwrap().key().await.unwrap_err().to_string();
    assert!(err.contains("ECOM_SECRET_KEY"), "{err}");
    // A key stored in the clear (before sealing) still works, and is sealed when read.
    let txn = app.db.platform_txn().await.unwrap();
    ecom_store::channels::replace_platform_key(&txn, "vapid_private_key", &opened).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(vapid(common::SECRET).unwrap().key().await.unwrap().public_key(), public_key);
    let resealed = stored().await;
    assert!(resealed.starts_with("sealed:") && resealed != sealed && !resealed.contains(&opened), "{resealed}");
}
backends!(web_push_reaches_staff_and_shoppers_signed_and_encrypted_and_410_removes_the_subscription);

// ---- phone verification ----

async fn latest_code(app: &TestApp, phone: &str) -> String {
    let rows =
        log_until(app, "the code", |r| r.iter().any(|m| m.recipient == phone && m.template == "phone_code")).await;
    let text = &rows.iter().find(|m| m.recipient == phone && m.template == "phone_code").unwrap().body.body_text;
    text[..6].to_owned()
}

/// Moves the customer's code (and its sending time) back by `minutes`.
async fn age_code(app: &TestApp, tenant: &Tenant, minutes: i64) {
    use ecom_store::channels::phone_code::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let customer = customer_id(app, tenant).await;
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let code = ecom_store::channels::current_phone_code(&txn, tenant.id, customer).await;
    let code = code.unwrap().unwrap();
    Entity::update_many()
        .col_expr(Column::CreatedAt, Expr::value(code.created_at - chrono::Duration::minutes(minutes)))
        .col_expr(Column::ExpiresAt, Expr::value(code.expires_at - chrono::Duration::minutes(minutes)))
        .filter(Column::Id.eq(code.id))
        .exec(&txn)
        .await
        .unwrap();
    txn.commit().await.unwrap();
}

async fn a_phone_is_verified_by_a_code_with_expiry_and_five_tries(backend: common::Backend) {
    let Some(app) = TestApp::spawn_with(backend, fast).await else { return };
    let tenant = app.store("demo", "Demo").await;
    let host = "demo.localhost";
    let pat = app.browser(&[]);
    pat.login(host, "/account", "pat@example.com", PASSWORD).await;
    let page = pat.get(host, "/account").await;
    assert!(page.body.contains("Text messages are not set up on this platform"), "no SMS provider is configured");

    // A number that is not E.164 is refused by the form, and nothing is stored.
    let bad = pat.submit(host, "/account", "/account/phone", &[("phone", "0207 946 0958")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("country code"), "{}", bad.body);

    let sent = pat.submit(host, "/account", "/account/phone", &[("phone", "+44 7700 900123")]).await;
    assert_eq!((sent.status, sent.location()), (303, Some("/account?code=sent#phone")));
    let code = latest_code(&app, "+447700900123").await;
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    // Without a provider the code is filed in the dev mailbox, addressed to the number.
    common::mail_settled(&app.db).await;
    let mails = ecom_store::mailbox::list_all(&app.db, 10).await.unwrap();
    assert!(mails.iter().any(|m| m.to == "+447700900123" && m.body_text.contains(&code)), "{mails:#?}");
    let page = pat.get(host, "/account").await;
    assert!(page.body.contains("We texted a 6-digit code to <strong>+447700900123</strong>"));

    // Asking again at once is refused.
    let again = pat.submit(host, "/account", "/account/phone", &[("phone", "+447700900123")]).await;
    assert_eq!(again.status, 429);

    // Five wrong codes lock it; then even the right one is refused.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (0..5).rev() {
        let r = pat.submit(host, "/account", "/account/phone/verify", &[("code", wrong)]).await;
        assert_eq!(r.status, 422);
        if left > 0 {
            assert!(r.body.contains(&format!("Wrong code; {left} tr")), "{}", r.body);
        } else {
            assert!(r.body.contains("that was the last try"), "{}", r.body);
        }
    }
    let locked = pat.submit(host, "/account", "/account/phone/verify", &[("code", &code)]).await;
    assert!(locked.status == 422 && locked.body.contains("send a new code"), "{}", locked.body);

    // A new code (after the resend wait) that has expired is refused too.
    age_code(&app, &tenant, 2).await;
    pat.submit(host, "/account", "/account/phone", &[("phone", "+447700900123")]).await;
    age_code(&app, &tenant, 11).await;
    let code = {
        let rows = common::notification_log(&app.db, 50).await;
        rows.iter().find(|m| m.template == "phone_code").unwrap().body.body_text[..6].to_owned()
    };
    let expired = pat.submit(host, "/account", "/account/phone/verify", &[("code", &code)]).await;
    assert!(expired.status == 422 && expired.body.contains("expired"), "{}", expired.body);

    // A fresh code, entered right, verifies the phone.
    let sent = pat.submit(host, "/account", "/account/phone", &[("phone", "+447700900123")]).await;
    assert_eq!(sent.status, 303);
    let code = {
        let rows = common::notification_log(&app.db, 50).await;
        let codes: Vec<&Logged> = rows.iter().filter(|m| m.template == "phone_code").collect();
        assert_eq!(codes.len(), 3);
        codes.iter().max_by_key(|m| m.created_at).unwrap().body.body_text[..6].to_owned()
    };
    let ok = pat
        .submit(host, "/account", "/account/phone/verify", &[("code", &format!("{} {}", &code[..3], &code[3..]))])
        .await;
    assert_eq!((ok.status, ok.location()), (303, Some("/account?phone=verified#phone")));
    let page = pat.get(host, "/account?phone=verified").await;
    assert!(page.body.contains("Your phone number is verified") && page.body.contains("verified</span>"));
    let id = customer_id(&app, &tenant).await;
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    assert_eq!(
        ecom_store::channels::verified_phone(&txn, tenant.id, id).await.unwrap().as_deref(),
        Some("+447700900123")
    );
    txn.commit().await.unwrap();
    assert!(
        pat.submit(host, "/account", "/account/phone", &[("phone", "+447700900123")])
            .await
            .body
            .contains("verified already")
    );

    // Five codes to one number an hour: three went; after removing the number, two
    // more go and the sixth is refused.
    assert_eq!(pat.submit(host, "/account", "/account/phone/remove", &[]).await.status, 303);
    for _ in 0..2 {
        age_code_if_any(&app, &tenant).await;
        assert_eq!(pat.submit(host, "/account", "/account/phone", &[("phone", "+447700900123")]).await.status, 303);
    }
    age_code_if_any(&app, &tenant).await;
    let sixth = pat.submit(host, "/account", "/account/phone", &[("phone", "+447700900123")]).await;
    assert!(sixth.status == 429 && sixth.body.contains("an hour"), "{}", sixth.body);
}
backends!(a_phone_is_verified_by_a_code_with_expiry_and_five_tries);

async fn age_code_if_any(app: &TestApp, tenant: &Tenant) {
    let customer = customer_id(app, tenant).await;
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let has = ecom_store::channels::current_phone_code(&txn, tenant.id, customer).await.unwrap().is_some();
    txn.commit().await.unwrap();
    if has {
        age_code(app, tenant, 2).await;
    }
}

// ---- order updates on the phone channels, as routed ----

/// Places an order for `variant` as the signed-in `customer` (or a guest), paid by the
/// manual method; returns its number.
async fn place(app: &TestApp, tenant: &Tenant, variant: uuid::Uuid, customer: Option<uuid::Uuid>) -> i64 {
    let account = customer.map(ecom_core::AccountId);
    let cart = app.checkout.add_to_cart(tenant, None, account, variant, 1).await.unwrap();
    let details = CheckoutDetails {
        email: "pat@example.com".into(),
        phone: String::new(),
        address: common::address(),
        shipping_code: "standard".into(),
        discount_code: String::new(),
    };
    app.checkout.save_details(tenant, cart, details).await.unwrap();
    let manual = PaymentChoice { provider: "manual".into(), token: String::new() };
    let PlaceOutcome::Placed { number, .. } = app.checkout.place_order(tenant, cart, None, &manual).await.unwrap()
    else {
        panic!("not placed")
    };
    number
}

/// The shopper's rows of one order's `order.placed` event (found by its email's
/// subject), once there are `at_least` of them and the dispatcher settled them.
async fn rows_for_order(app: &TestApp, number: i64, at_least: usize) -> Vec<Logged> {
    let mark = format!("#{number} ");
    let event_of =
        |r: &[Logged]| r.iter().find(|m| m.channel == "email" && m.subject.contains(&mark)).and_then(|m| m.event_id);
    let mine = |r: &[Logged], event| {
        r.iter().filter(|m| m.event_id == Some(event) && m.template == "order_placed").cloned().collect::<Vec<_>>()
    };
    let rows = log_until(app, &format!("order {number}'s messages"), |r| {
        event_of(r).is_some_and(|e| {
            let m = mine(r, e);
            m.len() >= at_least && m.iter().all(|m| m.status != "pending")
        })
    })
    .await;
    mine(&rows, event_of(&rows).unwrap())
}

fn channels_of(rows: &[Logged]) -> Vec<&str> {
    let mut c: Vec<&str> = rows.iter().filter(|m| m.template == "order_placed").map(|m| m.channel.as_str()).collect();
    c.sort_unstable();
    c
}

async fn order_updates_reach_a_verified_phone_by_sms_and_whatsapp_when_the_shopper_asks(backend: common::Backend) {
    let (twilio, twilio_url) = twilio_server().await;
    let (graph, graph_url) = graph_server().await;
    let Some(app) = TestApp::spawn_with(backend, |c| {
        fast(c);
        twilio_at(c, twilio_url);
        c.whatsapp_token = Some(ecom::config::Secret(WA_TOKEN.into()));
        c.whatsapp_phone_number_id = Some(WA_NUMBER_ID.into());
        c.whatsapp_api_url = format!("{graph_url}/v21.0");
    })
    .await
    else {
        return;
    };
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    let host = "demo.localhost";
    let pat = customer_id(&app, &tenant).await;

    // Before Pat asks for anything, an order goes by email and to the inbox only,
    // even with a verified phone: text messages are opt-in.
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    ecom_store::channels::set_customer_phone(&txn, tenant.id, pat, Some("+447700900123"), Some(chrono::Utc::now()))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let first = place(&app, &tenant, variant, Some(pat)).await;
    assert_eq!(channels_of(&rows_for_order(&app, first, 2).await), ["email", "inapp"]);

    // The owner rewords the text message for a new order in the panel.
    let owner = app.browser(&[]);
    owner.login(host, "/merchant", "owner@demo.test", PASSWORD).await;
    let editor = "/merchant/settings/notifications/sms/order_placed";
    let saved = owner
        .submit(
            host,
            editor,
            editor,
            &[
                ("action", "save"),
                ("text", "{{ store.name }} has order {{ order.number }} ({{ order.total }}) {{ order.url }}"),
            ],
        )
        .await;
    assert!(saved.status == 303 || saved.status == 200, "{} {}", saved.status, saved.body);

    // Pat asks for text messages and WhatsApp for order updates, and keeps the inbox.
    let shopper = app.browser(&[]);
    shopper.login(host, "/account", "pat@example.com", PASSWORD).await;
    let prefs = shopper.get(host, "/account/notifications").await;
    let chosen = ["order_updates:sms", "order_updates:whatsapp", "order_updates:inapp"];
    let mut fields = vec![("_csrf", prefs.csrf())];
    fields.extend(chosen.iter().map(|c| ("pref", (*c).to_owned())));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = shopper.post(host, "/account/notifications", &fields).await;
    assert_eq!(r.status, 303, "{}", r.body);

    let second = place(&app, &tenant, variant, Some(pat)).await;
    let rows = rows_for_order(&app, second, 4).await;
    assert_eq!(channels_of(&rows), ["email", "inapp", "sms", "whatsapp"], "{rows:#?}");
    assert!(rows.iter().all(|m| m.status == "sent"), "{rows:#?}");
    let sms = rows.iter().find(|m| m.channel == "sms").unwrap();
    assert_eq!(sms.recipient, "+447700900123");
    assert!(sms.provider_id.starts_with("SM"), "{sms:#?}");
    assert!(twilio.malformed.lock().unwrap().is_empty(), "{:?}", twilio.malformed.lock().unwrap());
    let texts = twilio.received.lock().unwrap().clone();
    let (to, from, body) = texts.last().unwrap();
    assert_eq!((to.as_str(), from.as_str()), ("+447700900123", "+15005550006"));
    assert!(
        body.starts_with(&format!("demo has order {second} (")) && body.contains("/orders/"),
        "the store's wording: {body}"
    );

    assert!(graph.malformed.lock().unwrap().is_empty(), "{:?}", graph.malformed.lock().unwrap());
    let calls = graph.received.lock().unwrap().clone();
    let call = calls.last().unwrap();
    assert_eq!(call["to"], "447700900123");
    assert_eq!(call["template"]["name"], "order_placed", "the approved template of the message's name");
    assert_eq!(call["template"]["language"]["code"], tenant.locale.as_str().replace('-', "_"));
    let params: Vec<&str> = call["template"]["components"][0]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(&params[..2], ["demo", second.to_string().as_str()]);
    assert!(params[2].contains("/orders/"), "{params:?}");

    // Pat turns text messages off again: the next order goes by WhatsApp, not SMS.
    let prefs = shopper.get(host, "/account/notifications").await;
    let r = shopper
        .post(
            host,
            "/account/notifications",
            &[("_csrf", &prefs.csrf()), ("pref", "order_updates:whatsapp"), ("pref", "order_updates:inapp")],
        )
        .await;
    assert_eq!(r.status, 303);
    let third = place(&app, &tenant, variant, Some(pat)).await;
    assert_eq!(channels_of(&rows_for_order(&app, third, 3).await), ["email", "inapp", "whatsapp"]);

    // A guest order under Pat's address is in no account: email only.
    let guest = place(&app, &tenant, variant, None).await;
    assert_eq!(channels_of(&rows_for_order(&app, guest, 1).await), ["email"]);
    assert_eq!(twilio.received.lock().unwrap().len(), 1, "one text message in all");
    assert_eq!(graph.received.lock().unwrap().len(), 2, "two WhatsApp messages in all");

    // Marketing: Pat has proven the address, consents, and wants cart reminders by
    // text and WhatsApp too. A guest's cart under Pat's address (anyone can type it)
    // is reminded at that address only: never on Pat's phone or in Pat's inbox.
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let realm = Realm::Customer(tenant.id);
    let now = chrono::Utc::now();
    let token = ecom_store::tokens::Purpose::Verify;
    ecom_store::tokens::insert(
        &txn,
        realm,
        ecom_core::AccountId(pat),
        token,
        "pat-proof",
        now + chrono::Duration::hours(1),
    )
    .await
    .unwrap();
    assert!(ecom_store::tokens::consume(&txn, realm, token, "pat-proof", now).await.unwrap().is_some());
    ecom_store::marketing::record_consent(&txn, tenant.id, "pat@example.com", true, "account page", now).await.unwrap();
    // (The form above turned every box it did not list off, cart reminders too.)
    let reminders = ["email", "sms", "whatsapp", "inapp"].map(|c| ("abandoned_cart", c, true));
    ecom_store::marketing::set_preferences(&txn, tenant.id, pat, &reminders).await.unwrap();
    txn.commit().await.unwrap();
    let job = common::marketing_job(&app);
    let later = || chrono::Utc::now() + chrono::Duration::hours(5);
    common::ready_cart(&app, &tenant, variant, 1).await; // a guest's, with pat@example.com
    assert_eq!(job.run_once(later()).await.unwrap().reminded, 1);
    let reminded = |rows: &[Logged]| {
        let mut c: Vec<String> =
            rows.iter().filter(|m| m.template == "abandoned_cart").map(|m| m.channel.clone()).collect();
        c.sort();
        c
    };
    let rows = log_until(&app, "the guest cart's reminder", |r| !reminded(r).is_empty()).await;
    assert_eq!(reminded(&rows), ["email"], "{rows:#?}");
    assert_eq!(rows.iter().find(|m| m.template == "abandoned_cart").unwrap().recipient, "pat@example.com");
    // Pat's own cart, signed in: every channel Pat chose.
    app.checkout.add_to_cart(&tenant, None, Some(ecom_core::AccountId(pat)), variant, 1).await.unwrap();
    assert_eq!(job.run_once(later()).await.unwrap().reminded, 1);
    let rows = log_until(&app, "Pat's cart's reminders", |r| reminded(r).len() == 5).await;
    assert_eq!(reminded(&rows), ["email", "email", "inapp", "sms", "whatsapp"], "{rows:#?}");
    let sms = rows.iter().find(|m| m.template == "abandoned_cart" && m.channel == "sms").unwrap();
    assert_eq!(sms.recipient, "+447700900123");
}
backends!(order_updates_reach_a_verified_phone_by_sms_and_whatsapp_when_the_shopper_asks);

/// Settings that look like numbers stay as written: a sender number with its `+` and a
/// numeric WhatsApp phone number id (read as TOML-like literals they would be numbers).
#[test]
fn phone_numbers_and_numeric_ids_in_the_environment_stay_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::ecom_command()
        .arg("config")
        .current_dir(dir.path())
        .env("ECOM_TWILIO_ACCOUNT_SID", SID)
        .env("ECOM_TWILIO_AUTH_TOKEN", TOKEN)
        .env("ECOM_TWILIO_FROM", "+15005550006")
        .env("ECOM_WHATSAPP_TOKEN", WA_TOKEN)
        .env("ECOM_WHATSAPP_PHONE_NUMBER_ID", WA_NUMBER_ID)
        .env("ECOM_NOTIFY_SMS_PER_SEC", "5")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("+15005550006") && stdout.contains(WA_NUMBER_ID), "{stdout}");
    assert!(!stdout.contains(TOKEN) && !stdout.contains(WA_TOKEN), "secrets stay hidden: {stdout}");
}
