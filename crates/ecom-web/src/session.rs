//! Sessions in encrypted, authenticated cookies (AES-256-GCM via the cookie crate's
//! private jar). No server-side store: any node with the same secret can serve any
//! request. Each area has its own cookie, scoped by path, and the cookie names the
//! realm (kind and store) it was issued for, so a cookie carried to another store's
//! host (or another area) is simply not a session there.

use crate::error::WebResult;
use crate::state::AppState;
use axum_extra::extract::PrivateCookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use ecom_core::{AccountId, AccountKind, Realm};
use ecom_services::accounts::SignedIn;
use ecom_store::accounts::Credential;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Payload {
    realm: Realm,
    id: AccountId,
    v: i32,
    /// Expiry, seconds since the epoch; checked on the server, not left to the browser.
    exp: i64,
}

/// Cookie name, path and lifetime per area.
fn cookie_spec(kind: AccountKind) -> (&'static str, &'static str, i64) {
    match kind {
        AccountKind::Customer => ("ecom_customer", "/", 30 * 24 * 3600),
        AccountKind::Staff => ("ecom_staff", "/merchant", 12 * 3600),
        AccountKind::Admin => ("ecom_admin", "/admin", 8 * 3600),
    }
}

/// Adds the session cookie for a signed-in account.
pub fn start(state: &AppState, jar: PrivateCookieJar, who: &SignedIn) -> PrivateCookieJar {
    let (name, path, ttl) = cookie_spec(who.realm.kind());
    let payload =
        Payload { realm: who.realm, id: who.id, v: who.auth_version, exp: chrono::Utc::now().timestamp() + ttl };
    let value = serde_json::to_string(&payload).unwrap_or_default();
    let cookie = Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure)
        .max_age(time_duration(ttl))
        .build();
    jar.add(cookie)
}

/// Removes the session cookie of an area.
pub fn end(jar: PrivateCookieJar, kind: AccountKind) -> PrivateCookieJar {
    let (name, path, _) = cookie_spec(kind);
    jar.remove(Cookie::build(name).path(path))
}

fn time_duration(secs: i64) -> cookie::time::Duration {
    cookie::time::Duration::seconds(secs)
}

/// The session's claims for `realm`, if the cookie is valid, unexpired and for this realm.
pub fn claims(jar: &PrivateCookieJar, realm: Realm) -> Option<SignedIn> {
    let (name, _, _) = cookie_spec(realm.kind());
    let cookie = jar.get(name)?;
    let p: Payload = serde_json::from_str(cookie.value()).ok()?;
    (p.realm == realm && p.exp > chrono::Utc::now().timestamp()).then_some(SignedIn {
        realm: p.realm,
        id: p.id,
        auth_version: p.v,
    })
}

/// The signed-in account for `realm`, checked against the database (it still exists
/// and its password has not changed since).
pub async fn current(state: &AppState, jar: &PrivateCookieJar, realm: Realm) -> WebResult<Option<Credential>> {
    let Some(who) = claims(jar, realm) else {
        return Ok(None);
    };
    Ok(state.accounts.current(&who).await?)
}

/// What templates may show of an account.
#[derive(Serialize)]
pub struct AccountView {
    pub email: String,
    pub name: String,
    pub role: Option<&'static str>,
    /// The panel areas this account may use (every area for owners, admins and
    /// platform admins): the navigation shows only these.
    pub areas: Vec<&'static str>,
    /// Whether the account may manage the store's team.
    pub team: bool,
}

impl From<&Credential> for AccountView {
    fn from(c: &Credential) -> Self {
        let access = c.access();
        let areas = access.map_or_else(ecom_core::staff::Permissions::all, |a| a.effective());
        Self {
            email: c.email.clone(),
            name: c.name.clone(),
            role: c.role.map(|r| r.as_str()),
            areas: areas.names(),
            team: access.is_some_and(|a| a.manages_team()),
        }
    }
}

/// An operator's read-only view of a store's panel ("view as merchant").
#[derive(Serialize, Deserialize)]
struct ViewAsPayload {
    tenant: ecom_core::TenantId,
    operator: String,
    exp: i64,
}

const VIEW_AS_COOKIE: &str = "ecom_viewas";

/// Adds the read-only view cookie for `tenant` (the store's host only).
pub fn start_view_as(
    state: &AppState,
    jar: PrivateCookieJar,
    tenant: ecom_core::TenantId,
    operator: &str,
) -> PrivateCookieJar {
    let ttl = ecom_services::view_as::SESSION_TTL_SECS;
    let payload = ViewAsPayload { tenant, operator: operator.to_owned(), exp: chrono::Utc::now().timestamp() + ttl };
    let value = serde_json::to_string(&payload).unwrap_or_default();
    let cookie = Cookie::build((VIEW_AS_COOKIE, value))
        .path("/merchant")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure)
        .max_age(time_duration(ttl))
        .build();
    jar.add(cookie)
}

/// The operator viewing `tenant`'s panel read-only, while the view lasts.
pub fn view_as(jar: &PrivateCookieJar, tenant: ecom_core::TenantId) -> Option<String> {
    let p: ViewAsPayload = serde_json::from_str(jar.get(VIEW_AS_COOKIE)?.value()).ok()?;
    (p.tenant == tenant && p.exp > chrono::Utc::now().timestamp()).then_some(p.operator)
}

/// Ends a read-only view.
pub fn end_view_as(jar: PrivateCookieJar) -> PrivateCookieJar {
    jar.remove(Cookie::build(VIEW_AS_COOKIE).path("/merchant"))
}
