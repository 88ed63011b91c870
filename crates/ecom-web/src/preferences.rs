//! What shoppers hear from the store: notification preferences and marketing consent
//! (`/account/notifications`), email confirmation for customers (`/account/verify`),
//! one-click unsubscribe (`/unsubscribe/{token}`, RFC 8058) and "email me when it's
//! back" (`/back-in-stock`). The rules live in `ecom_notify::routing` and
//! `ecom_notify::marketing`; this module is forms and pages.

use crate::auth::SignedIn;
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use crate::storefront::Shop;
use crate::templates::ser;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ecom_notify::marketing::{self, RestockAsked, RestockError};
use ecom_notify::routing;
use minijinja::context;
use serde::Deserialize;

/// How consent given or withdrawn is recorded.
pub const VIA_SIGNUP: &str = "sign-up checkbox";
pub const VIA_ACCOUNT: &str = "account page";
pub const VIA_ONE_CLICK: &str = "one-click unsubscribe (List-Unsubscribe-Post)";
pub const VIA_UNSUBSCRIBE_PAGE: &str = "unsubscribe link";

fn session(page: &SignedIn) -> ecom_services::accounts::SignedIn {
    ecom_services::accounts::SignedIn { realm: page.ctx.realm, id: page.me.id, auth_version: page.me.auth_version }
}

fn verify_link(state: &AppState, page: &SignedIn) -> String {
    format!("{}://{}/account/verify", state.config.public_scheme, page.ctx.host.0)
}

#[derive(Deserialize, Default)]
pub struct Flags {
    saved: Option<String>,
    verified: Option<String>,
    sent: Option<String>,
}

/// `GET /account/notifications`.
pub async fn form(State(state): State<AppState>, page: SignedIn, Query(f): Query<Flags>) -> WebResult<Response> {
    render(&state, &page, f, None).await
}

async fn render(state: &AppState, page: &SignedIn, f: Flags, error: Option<String>) -> WebResult<Response> {
    let tenant = page.store()?;
    let txn = state.db.tenant_txn(tenant.id).await?;
    let view = routing::view(&txn, tenant.id, page.me.id.0, &page.me.email).await?;
    txn.commit().await.map_err(ecom_store::StoreError::from)?;
    let verified = state.accounts.email_verified(&session(page)).await?;
    let channels: Vec<_> = routing::CHANNELS
        .iter()
        .map(|c| {
            let (label, note) = match *c {
                routing::EMAIL => ("Email", ""),
                routing::SMS => ("SMS", "needs a verified phone number"),
                routing::WHATSAPP => ("WhatsApp", "needs a verified phone number"),
                routing::PUSH => ("Push", "on devices where you allowed notifications"),
                _ => ("In-app", "your inbox on this site"),
            };
            context! { channel => *c, label, note }
        })
        .collect();
    Ok(page.page(
        "storefront/notifications.html",
        context! {
            page_title => "Notifications",
            prefs => ser(&view),
            channels,
            verified,
            saved => f.saved.is_some(),
            just_verified => f.verified.is_some(),
            verification_sent => f.sent.is_some(),
            error,
        },
    ))
}

/// `POST /account/notifications`: the checkboxes as `pref=kind:channel` pairs, and
/// `marketing=yes` for consent.
pub async fn save(
    State(state): State<AppState>,
    page: SignedIn,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let tenant = page.store()?;
    let checked: Vec<String> = pairs.iter().filter(|(k, _)| k == "pref").map(|(_, v)| v.clone()).collect();
    let consent = pairs.iter().any(|(k, v)| k == "marketing" && v == "yes");
    let txn = state.db.tenant_txn(tenant.id).await?;
    match routing::save(&txn, tenant.id, page.me.id.0, &page.me.email, &checked, consent, VIA_ACCOUNT).await {
        Ok(newly) => {
            txn.commit().await.map_err(ecom_store::StoreError::from)?;
            let mut target = "/account/notifications?saved=1".to_owned();
            if newly && !state.accounts.email_verified(&session(&page)).await? {
                state
                    .accounts
                    .send_verification(page.ctx.realm, page.me.id, &verify_link(&state, &page), &tenant.name)
                    .await?;
                target.push_str("&sent=1");
            }
            Ok(Redirect::to(&target).into_response())
        }
        Err(routing::SaveError::Invalid(message)) => {
            drop(txn);
            let mut resp = render(&state, &page, Flags::default(), Some(message)).await?;
            *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(resp)
        }
        Err(routing::SaveError::Store(e)) => Err(e.into()),
    }
}

/// After a shopper signed up with the marketing box ticked: consent recorded, and a
/// confirmation link sent (marketing email waits for it).
pub async fn consent_at_signup(
    state: &AppState,
    tenant: &ecom_core::Tenant,
    who: &ecom_services::accounts::SignedIn,
    link_base: &str,
) -> WebResult<()> {
    let txn = state.db.tenant_txn(tenant.id).await?;
    let Some(me) = ecom_store::accounts::find_by_id(&txn, who.realm, who.id).await? else {
        return Err(WebError::not_found());
    };
    ecom_store::marketing::record_consent(&txn, tenant.id, &me.email, true, VIA_SIGNUP, chrono::Utc::now()).await?;
    txn.commit().await.map_err(ecom_store::StoreError::from)?;
    state.accounts.send_verification(who.realm, who.id, link_base, &tenant.name).await?;
    Ok(())
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// `GET /account/verify?token=…`: the customer's email confirmation link.
pub async fn verify(State(state): State<AppState>, page: SignedIn, Query(q): Query<TokenQuery>) -> WebResult<Response> {
    match state.accounts.verify_email(page.ctx.realm, &q.token).await {
        Ok(id) if id == page.me.id => Ok(Redirect::to("/account/notifications?verified=1").into_response()),
        Ok(_) | Err(ecom_services::ServiceError::Unauthorized(_)) => {
            let mut resp = page.page(
                "storefront/notice.html",
                context! {
                    title => "This link has expired",
                    message => "This confirmation link has expired, was already used, or is for another account. Send a new one from your notification settings.",
                    back => "/account/notifications",
                },
            );
            *resp.status_mut() = StatusCode::GONE;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /account/verify/resend`.
pub async fn resend(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    let tenant = page.store()?;
    state.accounts.send_verification(page.ctx.realm, page.me.id, &verify_link(&state, &page), &tenant.name).await?;
    Ok(Redirect::to("/account/notifications?sent=1").into_response())
}

fn notice(
    shop: &Shop,
    state: &AppState,
    status: StatusCode,
    extra: minijinja::Value,
) -> impl std::future::Future<Output = WebResult<Response>> {
    let shop_page = shop.page(state, "storefront/notice.html", "/", extra);
    async move {
        let mut resp = shop_page.await?;
        *resp.status_mut() = status;
        Ok(resp)
    }
}

/// `GET /unsubscribe/{token}`: asks before unsubscribing (a link scanner's GET must
/// not unsubscribe anyone).
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    shop: Shop,
    Path(token): Path<String>,
) -> WebResult<Response> {
    let Some((tenant, email)) = state.signer.unsubscribe_of(&token) else { return bad_link(&shop, &state).await };
    if tenant != shop.tenant.id {
        return bad_link(&shop, &state).await;
    }
    notice(
        &shop,
        &state,
        StatusCode::OK,
        context! {
            title => "Unsubscribe",
            message => format!("Stop marketing email from {} to {email}? Order updates still reach you.", shop.tenant.name),
            action => format!("/unsubscribe/{token}"),
            button => "Unsubscribe",
        },
    )
    .await
}

async fn bad_link(shop: &Shop, state: &AppState) -> WebResult<Response> {
    notice(
        shop,
        state,
        StatusCode::NOT_FOUND,
        context! { title => "This link is not valid", message => "Use the link from the email as it came, or change what you get in your account's notification settings.", back => "/account/notifications" },
    )
    .await
}

/// `POST /unsubscribe/{token}`: the page's button, or a mail client's RFC 8058
/// one-click POST (`List-Unsubscribe=One-Click`, no cookie, no CSRF token: the signed
/// token is the authority).
pub async fn unsubscribe(
    State(state): State<AppState>,
    shop: Shop,
    Path(token): Path<String>,
    body: String,
) -> WebResult<Response> {
    let one_click = body.split('&').any(|p| p == "List-Unsubscribe=One-Click");
    let via = if one_click { VIA_ONE_CLICK } else { VIA_UNSUBSCRIBE_PAGE };
    match marketing::unsubscribe(&state.db, &state.signer, shop.tenant.id, &token, via).await? {
        Some(email) => {
            notice(
                &shop,
                &state,
                StatusCode::OK,
                context! {
                    title => "You are unsubscribed",
                    message => format!("{email} gets no more marketing email from {}. Order updates still reach you.", shop.tenant.name),
                    back => "/",
                },
            )
            .await
        }
        None => bad_link(&shop, &state).await,
    }
}

#[derive(Deserialize)]
pub struct RestockForm {
    #[serde(default)]
    variant: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    product: String,
}

/// `POST /back-in-stock`: from a sold-out product page.
pub async fn request_restock(
    State(state): State<AppState>,
    shop: Shop,
    axum::Form(f): axum::Form<RestockForm>,
) -> WebResult<Response> {
    let variant = uuid::Uuid::parse_str(f.variant.trim())
        .map_err(|_| WebError::BadRequest("variant: choose the option you want".into()))?;
    let customer = match shop.customer_id {
        Some(id) => {
            let txn = state.db.tenant_txn(shop.tenant.id).await?;
            let me = ecom_store::accounts::find_by_id(&txn, ecom_core::Realm::Customer(shop.tenant.id), id).await?;
            txn.commit().await.map_err(ecom_store::StoreError::from)?;
            me.map(|m| (m.id.0, m.email))
        }
        None => None,
    };
    let base = format!("{}://{}", state.config.public_scheme, shop.host.0);
    let back = if f.product.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !f.product.is_empty() {
        format!("/products/{}", f.product)
    } else {
        "/products".to_owned()
    };
    let outcome =
        marketing::request_back_in_stock(&state.db, &state.signer, &shop.tenant, &base, variant, customer, &f.email)
            .await;
    let (status, title, message) = match outcome {
        Ok(RestockAsked::Filed) => {
            (StatusCode::OK, "We will email you", "You will get one email when it is back in stock.".to_owned())
        }
        Ok(RestockAsked::ConfirmationSent) => (
            StatusCode::OK,
            "Check your email",
            format!(
                "We sent a link to {} — open it to confirm, and we will email you once when it is back.",
                f.email.trim()
            ),
        ),
        Ok(RestockAsked::AlreadyAsked) => {
            (StatusCode::OK, "You are on the list", "You asked already; you will hear once it is back.".to_owned())
        }
        Ok(RestockAsked::InStock) => {
            (StatusCode::OK, "It is in stock", "Good news: it is in stock right now.".to_owned())
        }
        Err(RestockError::Invalid(e)) => (StatusCode::UNPROCESSABLE_ENTITY, "Check the address", e.to_string()),
        Err(RestockError::NotFound) => return Err(WebError::not_found()),
        Err(RestockError::Store(e)) => return Err(e.into()),
    };
    notice(&shop, &state, status, context! { title, message, back }).await
}

/// `GET /back-in-stock/{token}`: a guest's confirmation link; asks before confirming.
pub async fn confirm_page(State(state): State<AppState>, shop: Shop, Path(token): Path<String>) -> WebResult<Response> {
    match state.signer.restock_of(&token) {
        Some((tenant, _)) if tenant == shop.tenant.id => {
            notice(
                &shop,
                &state,
                StatusCode::OK,
                context! {
                    title => "Confirm your request",
                    message => "Confirm that we may email you once when this product is back in stock.",
                    action => format!("/back-in-stock/{token}"),
                    button => "Yes, email me",
                },
            )
            .await
        }
        _ => bad_link(&shop, &state).await,
    }
}

/// `POST /back-in-stock/{token}`.
pub async fn confirm(State(state): State<AppState>, shop: Shop, Path(token): Path<String>) -> WebResult<Response> {
    if marketing::confirm_back_in_stock(&state.db, &state.signer, shop.tenant.id, &token).await? {
        notice(
            &shop,
            &state,
            StatusCode::OK,
            context! { title => "Confirmed", message => "We will email you once when it is back in stock.", back => "/products" },
        )
        .await
    } else {
        bad_link(&shop, &state).await
    }
}
