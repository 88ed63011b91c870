//! Sign-up, sign-in, sign-out, password change and password reset, one set of
//! handlers for the three areas: `/account` (a store's customers), `/merchant` (a
//! store's staff) and `/admin` (platform admins on the platform host).

use crate::csrf::CsrfToken;
use crate::error::{WebError, WebResult};
use crate::session;
use crate::site::{HostHeader, resolve};
use crate::state::AppState;
use crate::templates::{render, ser};
use axum::extract::{ConnectInfo, Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::PrivateCookieJar;
use ecom_core::{Realm, Tenant};
use ecom_services::{ServiceError, Site};
use minijinja::{Value, context};
use serde::Deserialize;
use std::net::SocketAddr;

/// One of the three places people sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Account,
    Merchant,
    Admin,
}

impl Area {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "account" => Some(Self::Account),
            "merchant" => Some(Self::Merchant),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Self::Account => "/account",
            Self::Merchant => "/merchant",
            Self::Admin => "/admin",
        }
    }

    fn layout(self) -> &'static str {
        match self {
            Self::Account => "layout/store.html",
            Self::Merchant | Self::Admin => "layout/panel.html",
        }
    }

    fn audience(self) -> &'static str {
        match self {
            Self::Account => "customer",
            Self::Merchant => "merchant",
            Self::Admin => "admin",
        }
    }
}

/// The area a request is for, resolved against its host: `/account` and `/merchant`
/// need a store host, `/admin` the platform host.
pub struct AreaCtx {
    pub area: Area,
    pub realm: Realm,
    pub tenant: Option<Tenant>,
    pub host: HostHeader,
    csrf: String,
    /// On a store's panel: the operator viewing it read-only ("view as merchant").
    pub viewing_as: Option<String>,
}

impl FromRequestParts<AppState> for AreaCtx {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> WebResult<Self> {
        // The area is the first path segment: /account/…, /merchant/…, /admin/….
        let area = parts
            .uri
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .and_then(Area::parse)
            .ok_or_else(WebError::not_found)?;
        let csrf = parts.extensions.get::<CsrfToken>().map(|t| t.0.clone()).unwrap_or_default();
        let (site, host) = resolve(state, parts).await?;
        let mut viewing_as = None;
        let (realm, tenant) = match (area, site) {
            (Area::Admin, Site::Platform) => (Realm::Admin, None),
            (Area::Account, Site::Store(t)) => {
                if !t.is_open() {
                    return Err(WebError::StoreClosed { store_name: t.name });
                }
                (Realm::Customer(t.id), Some(*t))
            }
            (Area::Merchant, Site::Store(t)) => {
                // A suspended store's panel is read-only; signing in and out still work.
                let writes = !matches!(parts.method, http::Method::GET | http::Method::HEAD);
                let signing = ["/merchant/login", "/merchant/logout", "/merchant/forgot", "/merchant/reset"]
                    .contains(&parts.uri.path());
                let jar = PrivateCookieJar::<axum_extra::extract::cookie::Key>::from_request_parts(parts, state)
                    .await
                    .map_err(|_| WebError::Internal("cookie jar".into()))?;
                viewing_as = session::view_as(&jar, t.id);
                if viewing_as.is_some() && writes && parts.uri.path() != "/merchant/logout" {
                    return Err(WebError::Forbidden(
                        "Viewing as operator — read only: nothing can be changed from this view. Sign out to end it."
                            .into(),
                    ));
                }
                if !t.is_open() && writes && !signing {
                    return Err(WebError::Forbidden(format!(
                        "{} is suspended by the platform: the panel is read-only until the store is reopened.",
                        t.name
                    )));
                }
                (Realm::Staff(t.id), Some(*t))
            }
            _ => return Err(WebError::not_found()),
        };
        Ok(Self { area, realm, tenant, host, csrf, viewing_as })
    }
}

impl AreaCtx {
    pub fn site_name(&self) -> &str {
        self.tenant.as_ref().map_or("ECOM", |t| t.name.as_str())
    }

    /// Renders a page of this area with the shared context (layout, store, CSRF token).
    pub fn page(&self, template: &str, extra: Value) -> Response {
        render(
            template,
            context! {
                layout => self.area.layout(),
                area => self.area.path(),
                audience => self.area.audience(),
                site_name => self.site_name(),
                store => ser(&self.tenant),
                csrf => self.csrf.clone(),
                viewing_as => self.viewing_as.clone(),
                ..extra
            },
        )
        .into_response()
    }

    fn page_with_status(&self, status: StatusCode, template: &str, extra: Value) -> Response {
        let mut resp = self.page(template, extra);
        *resp.status_mut() = status;
        resp
    }

    /// A form page re-shown with the error a service gave; failures that are not the
    /// user's to fix become error pages.
    fn form_error(&self, template: &str, err: ServiceError, extra: Value) -> WebResult<Response> {
        let (status, message, retry) = match err {
            ServiceError::Invalid(i) => (StatusCode::UNPROCESSABLE_ENTITY, i.to_string(), None),
            ServiceError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.to_owned(), None),
            ServiceError::Conflict(what) => {
                (StatusCode::CONFLICT, format!("{what} is already taken. Sign in instead?"), None)
            }
            ServiceError::RateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many attempts. Try again in {retry_after_secs} s."),
                Some(retry_after_secs),
            ),
            other => return Err(other.into()),
        };
        let mut resp = self.page_with_status(status, template, context! { error => message, ..extra });
        if let Some(secs) = retry
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        Ok(resp)
    }

    fn url(&self, state: &AppState, path: &str) -> String {
        format!("{}://{}{}", state.config.public_scheme, self.host.0, path)
    }
}

/// The client's address, for per-IP rate limits.
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(Self(ip.unwrap_or_else(|| "unknown".into())))
    }
}

/// Where to go after signing in: only a path on this host, never another site.
fn safe_next(next: Option<&str>, area: Area) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && !n.contains("://") => {
            n.to_owned()
        }
        _ => area.path().to_owned(),
    }
}

/// Redirects to the area's sign-in page, coming back to `next` afterwards.
pub fn to_login(area: Area, next: &str) -> Response {
    let next: String = form_urlencoded_encode(next);
    Redirect::to(&format!("{}/login?next={next}", area.path())).into_response()
}

fn form_urlencoded_encode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|e| e.trim_start_matches('=').to_owned()).unwrap_or_default()
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

pub async fn login_form(ctx: AreaCtx, Query(q): Query<NextQuery>) -> Response {
    ctx.page("auth/login.html", context! { next => safe_next(q.next.as_deref(), ctx.area) })
}

pub async fn login(
    State(state): State<AppState>,
    ctx: AreaCtx,
    ClientIp(ip): ClientIp,
    jar: PrivateCookieJar,
    Form(f): Form<LoginForm>,
) -> WebResult<Response> {
    let next = safe_next(f.next.as_deref(), ctx.area);
    match state.accounts.sign_in(ctx.realm, &ip, &f.email, &f.password).await {
        Ok(who) => {
            let mut jar = session::start(&state, jar, &who);
            // A shopper's guest cart joins their saved cart.
            if let (ecom_core::Realm::Customer(_), Some(tenant)) = (ctx.realm, ctx.tenant.as_ref()) {
                let guest = crate::checkout::cart_cookie(&jar);
                if let Some(cart) = state.checkout.merge_at_login(tenant, guest, who.id).await? {
                    jar = crate::checkout::remember_cart(&state, jar, cart);
                }
            }
            Ok((jar, Redirect::to(&next)).into_response())
        }
        Err(e) => ctx.form_error("auth/login.html", e, context! { email => f.email, next }),
    }
}

pub async fn logout(ctx: AreaCtx, jar: PrivateCookieJar) -> Response {
    let target = if ctx.area == Area::Account { "/".to_owned() } else { format!("{}/login", ctx.area.path()) };
    let jar = if ctx.viewing_as.is_some() { session::end_view_as(jar) } else { jar };
    (session::end(jar, ctx.realm.kind()), Redirect::to(&target)).into_response()
}

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// `yes` when the marketing box was ticked.
    #[serde(default)]
    marketing: String,
}

/// Only shoppers sign themselves up here; merchants get their store through the
/// platform's onboarding, admins are created by the operator.
fn signup_allowed(ctx: &AreaCtx) -> WebResult<()> {
    if ctx.area == Area::Account { Ok(()) } else { Err(WebError::not_found()) }
}

pub async fn signup_form(ctx: AreaCtx) -> WebResult<Response> {
    signup_allowed(&ctx)?;
    Ok(ctx.page("auth/signup.html", context! {}))
}

pub async fn signup(
    State(state): State<AppState>,
    ctx: AreaCtx,
    ClientIp(ip): ClientIp,
    jar: PrivateCookieJar,
    Form(f): Form<SignupForm>,
) -> WebResult<Response> {
    signup_allowed(&ctx)?;
    match state.accounts.sign_up(ctx.realm, &ip, &f.email, &f.name, &f.password).await {
        Ok(who) => {
            if f.marketing == "yes"
                && let Some(tenant) = ctx.tenant.as_ref()
            {
                let link = ctx.url(&state, "/account/verify");
                crate::preferences::consent_at_signup(&state, tenant, &who, &link).await?;
            }
            Ok((session::start(&state, jar, &who), Redirect::to(ctx.area.path())).into_response())
        }
        Err(e) => ctx.form_error("auth/signup.html", e, context! { email => f.email, name => f.name }),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
}

pub async fn password_form(page: SignedIn) -> Response {
    page.page("auth/password.html", context! {})
}

pub async fn change_password(
    State(state): State<AppState>,
    ctx: AreaCtx,
    jar: PrivateCookieJar,
    Form(f): Form<PasswordForm>,
) -> WebResult<Response> {
    let Some(who) = session::claims(&jar, ctx.realm) else {
        return Ok(to_login(ctx.area, &format!("{}/password", ctx.area.path())));
    };
    match state.accounts.change_password(&who, &f.current, &f.new).await {
        Ok(renewed) => {
            Ok((session::start(&state, jar, &renewed), ctx.page("auth/password.html", context! { done => true }))
                .into_response())
        }
        Err(e) => ctx.form_error("auth/password.html", e, context! {}),
    }
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

pub async fn forgot_form(ctx: AreaCtx) -> Response {
    ctx.page("auth/forgot.html", context! {})
}

pub async fn forgot(
    State(state): State<AppState>,
    ctx: AreaCtx,
    ClientIp(ip): ClientIp,
    Form(f): Form<ForgotForm>,
) -> WebResult<Response> {
    let link = ctx.url(&state, &format!("{}/reset", ctx.area.path()));
    match state.accounts.request_reset(ctx.realm, &ip, &f.email, &link, ctx.site_name()).await {
        Ok(()) => Ok(ctx.page("auth/forgot.html", context! { sent_to => f.email.trim() })),
        Err(e) => ctx.form_error("auth/forgot.html", e, context! { email => f.email }),
    }
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

pub async fn reset_form(
    State(state): State<AppState>,
    ctx: AreaCtx,
    Query(q): Query<TokenQuery>,
) -> WebResult<Response> {
    let usable = q.token.len() == 64 && state.accounts.reset_token_usable(ctx.realm, &q.token).await?;
    if !usable {
        return Ok(ctx.page_with_status(StatusCode::GONE, "auth/reset.html", context! { expired => true }));
    }
    Ok(ctx.page("auth/reset.html", context! { token => q.token }))
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

pub async fn reset(
    State(state): State<AppState>,
    ctx: AreaCtx,
    jar: PrivateCookieJar,
    Form(f): Form<ResetForm>,
) -> WebResult<Response> {
    match state.accounts.reset_password(ctx.realm, &f.token, &f.password).await {
        Ok(who) => Ok((session::start(&state, jar, &who), Redirect::to(ctx.area.path())).into_response()),
        Err(ServiceError::Unauthorized(_)) => {
            Ok(ctx.page_with_status(StatusCode::GONE, "auth/reset.html", context! { expired => true }))
        }
        Err(e) => ctx.form_error("auth/reset.html", e, context! { token => f.token }),
    }
}

/// A page that needs a signed-in account of its area: the handler gets the area and
/// the account; anyone else is sent to the area's sign-in page and brought back after.
pub struct SignedIn {
    pub ctx: AreaCtx,
    pub me: ecom_store::accounts::Credential,
    /// Unread inbox items, for the header bell (customers and staff).
    pub unread: Option<u64>,
}

impl SignedIn {
    /// The store of a store-host area (the merchant panel, the customer account).
    pub fn store(&self) -> WebResult<Tenant> {
        self.ctx.tenant.clone().ok_or_else(WebError::not_found)
    }

    /// Renders a page of the area with the signed-in account as `me`.
    pub fn page(&self, template: &str, extra: Value) -> Response {
        self.ctx.page(
            template,
            context! { me => ser(&session::AccountView::from(&self.me)), inbox_unread => self.unread, ..extra },
        )
    }

    /// Refuses the request with a 403 page naming the missing area unless the
    /// signed-in member may use `area`: the one check every merchant panel page and
    /// action makes first (`page.require(Permission::Orders)?;`). Owners, admins and
    /// platform admins pass every check.
    pub fn require(&self, area: ecom_core::staff::Permission) -> WebResult<()> {
        match self.me.access() {
            Some(access) if !access.allows(area) => {
                Err(self.denied(&format!("You need the {} permission to do this — ask an owner.", area.label())))
            }
            _ => Ok(()),
        }
    }

    /// Refuses unless the member may manage the team (owners and admins).
    pub fn require_team(&self) -> WebResult<()> {
        match self.me.access() {
            Some(access) if !access.manages_team() => {
                Err(self.denied("You need to be an owner or an admin to manage the team — ask an owner."))
            }
            _ => Ok(()),
        }
    }

    /// The panel's 403 page with `message`.
    pub fn denied(&self, message: &str) -> WebError {
        let mut resp = self.page("merchant/forbidden.html", context! { message, page_title => "Not allowed" });
        *resp.status_mut() = StatusCode::FORBIDDEN;
        WebError::Page(Box::new(resp))
    }

    /// Writes an audit entry for a change this staff member made. The change has
    /// committed already, so a failure here is logged, not shown.
    pub async fn audit(&self, state: &AppState, action: &str, target: &str, detail: &str) {
        let Some(tenant) = self.ctx.tenant.as_ref() else { return };
        let actor = format!("staff {}", self.me.email);
        if let Err(e) = ecom_services::audit::record(&state.db, tenant.id, &actor, action, target, detail).await {
            tracing::error!(error = %e, action, target, "audit entry not written");
        }
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let ctx = AreaCtx::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        let jar = PrivateCookieJar::<axum_extra::extract::cookie::Key>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match session::current(state, &jar, ctx.realm).await {
            Ok(Some(me)) => {
                let who = match ctx.area {
                    Area::Account => Some(ecom_store::inbox::Recipient::Customer(me.id.0)),
                    Area::Merchant => Some(ecom_store::inbox::Recipient::Staff(me.id.0)),
                    Area::Admin => None,
                };
                let unread = match (who, ctx.tenant.as_ref()) {
                    // The stream counts for itself.
                    (Some(who), Some(t)) if !parts.uri.path().ends_with("/inbox/stream") => {
                        Some(crate::inbox::unread(state, t.id, who).await.map_err(IntoResponse::into_response)?)
                    }
                    _ => None,
                };
                Ok(Self { ctx, me, unread })
            }
            Ok(None) => match ctx.viewing_as.clone() {
                // An operator viewing the panel read-only sees it as the owner would.
                Some(operator) => Ok(Self {
                    ctx,
                    me: ecom_store::accounts::Credential {
                        id: ecom_core::AccountId(uuid::Uuid::nil()),
                        email: operator,
                        name: "Operator (read only)".into(),
                        password_hash: String::new(),
                        auth_version: 0,
                        role: Some(ecom_core::StaffRole::Owner),
                        areas: ecom_core::staff::Permissions::all(),
                    },
                    unread: None,
                }),
                None => Err(to_login(ctx.area, parts.uri.path())),
            },
            Err(e) => Err(e.into_response()),
        }
    }
}
