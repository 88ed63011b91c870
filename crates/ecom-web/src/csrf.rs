//! CSRF protection for every state-changing request.
//!
//! Each browser gets a random nonce in an HttpOnly cookie; forms carry
//! `HMAC(key, nonce | host)` in a hidden `_csrf` field (or an `x-csrf-token` header,
//! or a `_csrf` query parameter for multipart forms). A cross-site page can make the
//! browser send the cookie but cannot read it, so it cannot produce the token. As a
//! second line, a request whose `Origin` names another host is refused outright.

use crate::error::WebError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const COOKIE: &str = "ecom_csrf";
const FIELD: &str = "_csrf";
/// Form bodies larger than this are refused before parsing.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The token for this request, available to handlers that render forms.
#[derive(Clone, Debug)]
pub struct CsrfToken(pub String);

fn token_for(key: &[u8; 32], nonce: &str, host: &str) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(nonce.as_bytes());
    mac.update(b"|");
    mac.update(host.to_ascii_lowercase().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Adding to the cart is a form on cached product pages, which cannot carry a
/// per-browser token; a forged add-to-cart does no harm (nothing is bought), so it is
/// guarded by the Origin check alone, as Shopify's `/cart/add` is.
fn origin_only(path: &str) -> bool {
    // "Email me when it's back" is on the same cached pages; a forged one files a
    // request that a guest must still confirm from their mailbox.
    path == "/cart/add" || path == "/back-in-stock"
}

fn is_exempt(path: &str) -> bool {
    // Machine endpoints authenticate by token or signature, never by cookie: GraphQL
    // (cookies count there only on same-origin JSON), payment webhooks, integrations.
    // One-click unsubscribe (RFC 8058) is POSTed by mail providers without cookies; the
    // signed token in the path is its authority.
    path == "/graphql"
        || path.ends_with("/graphql")
        || path.starts_with("/webhooks/")
        || path.starts_with("/api/")
        || path.starts_with("/unsubscribe/")
}

fn forbidden(message: &str) -> Response {
    WebError::Forbidden(message.into()).into_response()
}

pub async fn protect(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(req.headers());
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
    let (nonce, fresh) = match jar.get(COOKIE).map(|c| c.value().to_owned()) {
        Some(n) if n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()) => (n, false),
        _ => (hex::encode(rand::random::<[u8; 16]>()), true),
    };
    let expected = token_for(&state.csrf_key, &nonce, &host);

    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut req = req;
    if unsafe_method && !is_exempt(req.uri().path()) {
        if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
            let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
            if origin != "null" && !origin_host.eq_ignore_ascii_case(&host) {
                return forbidden("This form was sent from another site, so it was refused.");
            }
        }
        if origin_only(req.uri().path()) {
            return next.run(req).await;
        }
        let (parts, body) = req.into_parts();
        let from_header = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let from_query = parts.uri.query().and_then(|q| form_urlencoded_value(q.as_bytes(), FIELD));
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        let (body, from_body) = if is_form {
            match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
                Ok(bytes) => {
                    let value = form_urlencoded_value(&bytes, FIELD);
                    (Body::from(bytes), value)
                }
                Err(_) => {
                    return WebError::BadRequest("The form is too large.".into()).into_response();
                }
            }
        } else {
            (body, None)
        };
        let supplied = from_header.or(from_query).or(from_body);
        if fresh || !supplied.is_some_and(|t| constant_time_eq(&t, &expected)) {
            return forbidden("This form has expired. Go back, reload the page and try again.");
        }
        req = Request::from_parts(parts, body);
    }
    req.extensions_mut().insert(CsrfToken(expected));
    let mut resp = next.run(req).await;
    if fresh {
        let cookie = format!(
            "{COOKIE}={nonce}; Path=/; HttpOnly; SameSite=Lax{}",
            if state.config.secure { "; Secure" } else { "" }
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// The first value of `key` in an `application/x-www-form-urlencoded` string.
fn form_urlencoded_value(data: &[u8], key: &str) -> Option<String> {
    serde_urlencoded_pairs(data).into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn serde_urlencoded_pairs(data: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(data).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_nonce_and_host() {
        let key = [7u8; 32];
        let t = token_for(&key, "abc", "demo.localhost:8080");
        assert_eq!(t, token_for(&key, "abc", "DEMO.localhost:8080"));
        assert_ne!(t, token_for(&key, "abd", "demo.localhost:8080"));
        assert_ne!(t, token_for(&key, "abc", "acme.localhost:8080"));
        assert!(constant_time_eq(&t, &t.clone()));
        assert!(!constant_time_eq(&t, "short"));
    }

    #[test]
    fn form_values_are_found_and_decoded() {
        assert_eq!(form_urlencoded_value(b"a=1&_csrf=x%20y", "_csrf"), Some("x y".into()));
        assert_eq!(form_urlencoded_value(b"a=1", "_csrf"), None);
        assert_eq!(form_urlencoded_value(b"%%%", "_csrf"), None);
    }
}
