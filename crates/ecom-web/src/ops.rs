//! Operations endpoints: liveness, readiness, Prometheus metrics, static files.

use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Installs the process-wide metrics recorder once and returns its handle. The
/// `metrics` facade has one global recorder per process; apps built in the same
/// process (tests) share it.
pub fn install_metrics_recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then ours stays
            // unused and /metrics shows nothing, which the tests would catch.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            handle
        })
        .clone()
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

#[derive(serde::Deserialize)]
pub struct TlsAsk {
    #[serde(default)]
    domain: String,
}

/// `GET /tls/ask?domain=…`: whether a certificate may be issued for `domain` — the
/// platform's domain, an open store's address under it, or a store's verified custom
/// domain (200), anything else (404). A TLS-terminating proxy that issues certificates
/// on demand asks this first (Caddy's `on_demand_tls { ask … }`), so nobody can make it
/// request certificates for names that are not ours.
pub async fn tls_ask(State(state): State<AppState>, axum::extract::Query(q): axum::extract::Query<TlsAsk>) -> Response {
    use ecom_services::directory::Site;
    let domain = q.domain.trim().trim_end_matches('.');
    // A bare name only: no port, no path, no wildcard.
    let plain = !domain.is_empty()
        && domain.len() <= 253
        && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let ours = plain
        && match state.directory.resolve(domain).await {
            Ok(Site::Platform) => true,
            Ok(Site::Store(t)) => t.status == ecom_core::TenantStatus::Active,
            Ok(Site::Unknown | Site::Invalid) => false,
            Err(e) => {
                tracing::warn!(error = %e, "tls ask: directory lookup failed");
                return (StatusCode::SERVICE_UNAVAILABLE, "lookup failed\n").into_response();
            }
        };
    if ours { (StatusCode::OK, "ok\n").into_response() } else { (StatusCode::NOT_FOUND, "not ours\n").into_response() }
}

/// Ready when the database and media storage answer and, in RabbitMQ mode, the bus is
/// connected to the broker.
pub async fn readyz(State(state): State<AppState>) -> Response {
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(2);
    let (db, media) =
        tokio::join!(tokio::time::timeout(LIMIT, state.db.ping()), tokio::time::timeout(LIMIT, state.media.check()));
    let mut problems = Vec::new();
    match db {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            problems.push("database unreachable".to_owned());
        }
        Err(_) => problems.push("database did not answer within 2 s".to_owned()),
    }
    match media {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: media storage unreachable");
            problems.push("media storage unreachable".to_owned());
        }
        Err(_) => problems.push("media storage did not answer within 2 s".to_owned()),
    }
    if state.config.broker.as_ref().is_some_and(|b| !b.connected()) {
        problems.push("message broker unreachable".to_owned());
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", problems.join("\n"))).into_response()
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let pool = state.db.pool_stats();
    metrics::gauge!("db_pool_connections", "state" => "idle").set(f64::from(pool.idle));
    metrics::gauge!("db_pool_connections", "state" => "in_use").set(f64::from(pool.size.saturating_sub(pool.idle)));
    metrics::gauge!("db_pool_max_connections").set(f64::from(pool.max));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render()).into_response()
}

/// Static assets compiled into the binary. The ETag is the content hash, so a
/// browser revalidates cheaply after a deploy.
pub async fn static_file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let (body, content_type): (&'static str, &str) = match file.as_str() {
        "app.css" => (include_str!("../static/app.css"), "text/css; charset=utf-8"),
        "app.js" => (include_str!("../static/app.js"), "text/javascript; charset=utf-8"),
        "signup.js" => (include_str!("../static/signup.js"), "text/javascript; charset=utf-8"),
        "template-editor.js" => (include_str!("../static/template-editor.js"), "text/javascript; charset=utf-8"),
        "push.js" => (include_str!("../static/push.js"), "text/javascript; charset=utf-8"),
        "dashboard.js" => (include_str!("../static/dashboard.js"), "text/javascript; charset=utf-8"),
        "inbox.js" => (include_str!("../static/inbox.js"), "text/javascript; charset=utf-8"),
        _ => return crate::error::WebError::not_found().into_response(),
    };
    let etag = format!("\"{}\"", &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()))[..16]);
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
            (header::ETAG, etag),
        ],
        body,
    )
        .into_response()
}
