//! Merchant self-service sign-up on the platform host (`/signup`, with a live address
//! check at `/signup/slug`), the one-time sign-in link that lands the new owner in their
//! store's panel (`/merchant/welcome`), and email confirmation (`/merchant/verify`).

use crate::auth::{AreaCtx, ClientIp, SignedIn};
use crate::csrf::CsrfToken;
use crate::error::{WebError, WebResult};
use crate::session;
use crate::state::AppState;
use crate::templates::{render, ser};
use axum::extract::{Extension, Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::PrivateCookieJar;
use ecom_services::{MerchantSignup, ServiceError, Site};
use minijinja::context;
use serde::Deserialize;

/// Languages offered on the sign-up form (any language tag is accepted).
const LOCALES: &[(&str, &str)] = &[
    ("en-US", "English (United States)"),
    ("en-GB", "English (United Kingdom)"),
    ("de-DE", "Deutsch (Deutschland)"),
    ("fr-FR", "Français (France)"),
    ("es-ES", "Español (España)"),
    ("it-IT", "Italiano (Italia)"),
    ("nl-NL", "Nederlands (Nederland)"),
    ("pt-BR", "Português (Brasil)"),
    ("sv-SE", "Svenska (Sverige)"),
    ("ja-JP", "日本語 (日本)"),
];

async fn platform_only(state: &AppState, parts_host: &str) -> WebResult<()> {
    match state.directory.resolve(parts_host).await? {
        Site::Platform => Ok(()),
        _ => Err(WebError::not_found()),
    }
}

fn host_of(headers: &axum::http::HeaderMap) -> String {
    headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned()
}

fn signup_page(state: &AppState, csrf: &str, form: &MerchantSignup, error: Option<(&str, String)>) -> Response {
    let currencies: Vec<&str> = ecom_core::Currency::codes().collect();
    let (field, message) = error.map_or((None, None), |(f, m)| (Some(f.to_owned()), Some(m)));
    render(
        "platform/signup.html",
        context! {
            csrf,
            platform_domain => state.directory.platform_domain(),
            currencies,
            locales => LOCALES.to_vec(),
            error => message,
            error_field => field,
            name => form.name.as_str(), email => form.email.as_str(),
            store_name => form.store_name.as_str(), slug => form.slug.as_str(),
            currency => if form.currency.is_empty() { "USD" } else { form.currency.as_str() },
            locale => if form.locale.is_empty() { "en-US" } else { form.locale.as_str() },
        },
    )
    .into_response()
}

/// `GET /signup`.
pub async fn signup_form(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Extension(CsrfToken(csrf)): Extension<CsrfToken>,
) -> WebResult<Response> {
    platform_only(&state, &host_of(&headers)).await?;
    Ok(signup_page(&state, &csrf, &MerchantSignup::default(), None))
}

/// `POST /signup`: opens the store, then offers the owner a one-time sign-in link
/// to its panel (sessions are per host, so the platform host cannot sign them in there).
pub async fn signup(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Extension(CsrfToken(csrf)): Extension<CsrfToken>,
    ClientIp(ip): ClientIp,
    Form(form): Form<MerchantSignup>,
) -> WebResult<Response> {
    let host = host_of(&headers);
    platform_only(&state, &host).await?;
    let port = host.rsplit_once(':').map(|(_, p)| format!(":{p}")).unwrap_or_default();
    let scheme = state.config.public_scheme.clone();
    let directory = state.directory.clone();
    let verify = |t: &ecom_core::Tenant| format!("{}/merchant/verify", directory.store_url(t, &scheme, &port));
    match state.directory.sign_up(&state.accounts, &ip, &form, verify).await {
        Ok(done) => {
            // A page with the link rather than a redirect: browsers refuse to follow a
            // form's redirect to another origin under `form-action 'self'`.
            let base = state.directory.store_url(&done.tenant, &scheme, &port);
            let panel = format!("{base}/merchant/welcome?token={}", done.sign_in_token);
            let page = render(
                "platform/signed_up.html",
                context! { store => ser(&done.tenant), panel, storefront => format!("{base}/"), email => form.email.trim() },
            );
            Ok(([(header::CACHE_CONTROL, "no-store")], page).into_response())
        }
        Err(ServiceError::Invalid(i)) => {
            let mut resp = signup_page(&state, &csrf, &form, Some((i.field, i.to_string())));
            *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(resp)
        }
        Err(ServiceError::Conflict(_)) => {
            let message = "That address was taken a moment ago; choose another.".to_owned();
            let mut resp = signup_page(&state, &csrf, &form, Some(("slug", message)));
            *resp.status_mut() = StatusCode::CONFLICT;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct SlugQuery {
    #[serde(default)]
    slug: String,
}

/// `GET /signup/slug?slug=…`: `{"available": bool, "message": "…"}` for the form's
/// live check.
pub async fn slug_check(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(q): Query<SlugQuery>,
) -> WebResult<Response> {
    platform_only(&state, &host_of(&headers)).await?;
    let slug = q.slug.trim().to_lowercase();
    let body = match state.directory.slug_problem(&slug).await? {
        None => serde_json::json!({
            "available": true,
            "message": format!("{slug}.{} is available", state.directory.platform_domain()),
        }),
        Some(problem) => serde_json::json!({ "available": false, "message": problem }),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response())
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// `GET /merchant/welcome?token=…`: the one-time sign-in link from sign-up.
pub async fn welcome(
    State(state): State<AppState>,
    ctx: AreaCtx,
    jar: PrivateCookieJar,
    Query(q): Query<TokenQuery>,
) -> WebResult<Response> {
    match state.accounts.sign_in_with_token(ctx.realm, &q.token).await {
        Ok(who) => Ok((session::start(&state, jar, &who), Redirect::to("/merchant?welcome=1")).into_response()),
        Err(ServiceError::Unauthorized(m)) => {
            let mut resp = ctx.page("auth/login.html", context! { error => m, next => "/merchant" });
            *resp.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /merchant/verify?token=…`: confirms the email address.
pub async fn verify(State(state): State<AppState>, ctx: AreaCtx, Query(q): Query<TokenQuery>) -> WebResult<Response> {
    match state.accounts.verify_email(ctx.realm, &q.token).await {
        Ok(_) => Ok(ctx.page("merchant/verified.html", context! { verified => true })),
        Err(ServiceError::Unauthorized(m)) => {
            let mut resp = ctx.page("merchant/verified.html", context! { verified => false, error => m });
            *resp.status_mut() = StatusCode::BAD_REQUEST;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /merchant/verify/resend`: another confirmation email.
pub async fn resend_verification(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    let tenant = page.store()?;
    let link = format!("{}://{}/merchant/verify", state.config.public_scheme, page.ctx.host.0);
    state.accounts.send_verification(page.ctx.realm, page.me.id, &link, &tenant.name).await?;
    Ok(Redirect::to("/merchant?sent=1").into_response())
}
