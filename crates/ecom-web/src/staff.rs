//! The team pages of the merchant panel (`/merchant/settings/staff`): members and
//! pending invitations, the invite form, a member's role and areas; and the page an
//! invited person opens from their email (`/merchant/invite?token=…`).

use crate::auth::{AreaCtx, ClientIp, SignedIn};
use crate::error::{WebError, WebResult};
use crate::session;
use crate::state::AppState;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::PrivateCookieJar;
use ecom_core::staff::{Access, Permission, Permissions};
use ecom_core::{AccountId, StaffRole};
use ecom_services::ServiceError;
use ecom_services::staff::InviteLookup;
use minijinja::{Value, context};
use serde::Deserialize;
use uuid::Uuid;

const TEAM: &str = "/merchant/settings/staff";

fn when(d: chrono::DateTime<chrono::Utc>) -> String {
    d.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn labels(areas: Permissions) -> Vec<&'static str> {
    areas.iter().map(Permission::label).collect()
}

/// The areas as the forms list them, with the chosen ones checked.
fn area_choices(checked: Permissions) -> Vec<Value> {
    Permission::ALL
        .iter()
        .map(|p| context! { name => p.as_str(), label => p.label(), covers => p.covers(), checked => checked.contains(*p) })
        .collect()
}

/// The roles `access` may hand out, as the forms list them.
fn role_choices(access: Access, chosen: StaffRole) -> Vec<Value> {
    [
        (StaffRole::Staff, "Staff", "only the areas ticked below"),
        (StaffRole::Admin, "Admin", "every area and the team, except owners and admins"),
        (StaffRole::Owner, "Owner", "everything, including owners, admins and handing over the store"),
    ]
    .into_iter()
    .filter(|(r, _, _)| access.may_manage(*r))
    .map(|(r, label, hint)| context! { name => r.as_str(), label, hint, checked => r == chosen })
    .collect()
}

fn access(page: &SignedIn) -> WebResult<Access> {
    page.require_team()?;
    page.me.access().ok_or_else(WebError::not_found)
}

fn link_base(state: &AppState, page_host: &str) -> String {
    format!("{}://{}/merchant/invite", state.config.public_scheme, page_host)
}

/// Sorts a refusal: bad input re-shows the form (422) with the message, too many
/// invites says when to retry (429), a permission the member lacks is the panel's
/// 403 page, anything else an error page.
fn refusal(page: &SignedIn, err: ServiceError) -> WebResult<(StatusCode, String)> {
    match err {
        ServiceError::Invalid(i) => Ok((StatusCode::UNPROCESSABLE_ENTITY, i.to_string())),
        ServiceError::RateLimited { retry_after_secs } => Ok((
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many invitations from this store for now. Try again in {retry_after_secs} s."),
        )),
        ServiceError::Unauthorized(m) => Err(page.denied(m)),
        other => Err(other.into()),
    }
}

fn with_status(resp: WebResult<Response>, status: StatusCode) -> WebResult<Response> {
    let mut resp = resp?;
    *resp.status_mut() = status;
    Ok(resp)
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "invited" => "Invitation sent.",
        "resent" => "Invitation sent again with a new link; the old link no longer works.",
        "revoked" => "Invitation revoked: its link no longer works.",
        "updated" => "Member updated.",
        "removed" => "Member removed: their sessions have ended.",
        "transferred" => "The store has a new owner; you are now an admin.",
        _ => return None,
    })
}

/// `GET /merchant/settings/staff`: members and pending invitations.
pub async fn team(State(state): State<AppState>, page: SignedIn, Query(q): Query<NoticeQuery>) -> WebResult<Response> {
    let me = access(&page)?;
    let tenant = page.store()?;
    let team = state.accounts.team(tenant.id).await?;
    let members: Vec<Value> = team
        .members
        .iter()
        .filter_map(|m| {
            let a = m.access()?;
            Some(context! {
                id => m.id.0.to_string(), email => m.email.clone(), name => m.name.clone(), role => a.role.as_str(),
                areas => labels(a.effective()), is_me => m.id == page.me.id,
                manageable => m.id != page.me.id && me.may_manage(a.role),
            })
        })
        .collect();
    let invitations: Vec<Value> = team
        .invitations
        .iter()
        .map(|i| {
            context! {
                id => i.id.to_string(), email => i.email.clone(), role => i.role.as_str(),
                areas => labels(if i.role == StaffRole::Staff { i.areas } else { Permissions::all() }),
                invited_by => i.invited_by.clone(), expires_at => when(i.expires_at), created_at => when(i.created_at),
                manageable => me.may_manage(i.role),
            }
        })
        .collect();
    Ok(page.page(
        "merchant/staff.html",
        context! { members, invitations, notice => notice(q.done.as_deref()), page_title => "Staff" },
    ))
}

fn invite_page(page: &SignedIn, me: Access, form: InviteFormValues, error: Option<String>) -> WebResult<Response> {
    let role = StaffRole::parse(&form.role).unwrap_or(StaffRole::Staff);
    Ok(page.page(
        "merchant/staff_invite.html",
        context! {
            email => form.email, roles => role_choices(me, role), areas => area_choices(form.areas), error,
            page_title => "Invite staff",
        },
    ))
}

#[derive(Default)]
struct InviteFormValues {
    email: String,
    role: String,
    areas: Permissions,
}

/// `GET /merchant/settings/staff/invite`: the invite form.
pub async fn invite_form(page: SignedIn) -> WebResult<Response> {
    let me = access(&page)?;
    invite_page(&page, me, InviteFormValues { role: "staff".into(), ..Default::default() }, None)
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

fn fields<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
}

/// `POST /merchant/settings/staff/invite` (`email`, `role`, one `area` per ticked area).
pub async fn invite(
    State(state): State<AppState>,
    page: SignedIn,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let me = access(&page)?;
    let tenant = page.store()?;
    let (email, role, areas) = (field(&pairs, "email"), field(&pairs, "role"), fields(&pairs, "area"));
    let base = link_base(&state, &page.ctx.host.0);
    match state.accounts.invite_staff(&page.me, &tenant, email, role, &areas, &base).await {
        Ok(_) => Ok(Redirect::to(&format!("{TEAM}?done=invited")).into_response()),
        Err(e) => {
            let (status, message) = refusal(&page, e)?;
            let chosen = areas.iter().filter_map(|a| Permission::parse(a).ok()).collect();
            let values = InviteFormValues { email: email.to_owned(), role: role.to_owned(), areas: chosen };
            with_status(invite_page(&page, me, values, Some(message)), status)
        }
    }
}

/// `POST /merchant/settings/staff/invites/{id}/{resend|revoke}`.
pub async fn invite_action(
    State(state): State<AppState>,
    page: SignedIn,
    Path((id, action)): Path<(Uuid, String)>,
) -> WebResult<Response> {
    access(&page)?;
    let tenant = page.store()?;
    let result = match action.as_str() {
        "resend" => state
            .accounts
            .resend_invite(&page.me, &tenant, id, &link_base(&state, &page.ctx.host.0))
            .await
            .map(|()| "resent"),
        "revoke" => state.accounts.revoke_invite(&page.me, &tenant, id).await.map(|()| "revoked"),
        _ => return Err(WebError::not_found()),
    };
    match result {
        Ok(done) => Ok(Redirect::to(&format!("{TEAM}?done={done}")).into_response()),
        Err(ServiceError::RateLimited { retry_after_secs }) => Err(WebError::RateLimited { retry_after_secs }),
        Err(ServiceError::Unauthorized(m)) => Err(page.denied(m)),
        Err(e) => Err(e.into()),
    }
}

async fn member_page(
    state: &AppState,
    page: &SignedIn,
    id: Uuid,
    chosen: Option<(StaffRole, Permissions)>,
    error: Option<String>,
) -> WebResult<Response> {
    let me = access(page)?;
    let tenant = page.store()?;
    let member = state.accounts.member(tenant.id, AccountId(id)).await?;
    let current = member.access().ok_or_else(WebError::not_found)?;
    let (role, areas) = chosen.unwrap_or((current.role, current.areas));
    let manageable = member.id != page.me.id && me.may_manage(current.role);
    Ok(page.page(
        "merchant/staff_member.html",
        context! {
            member => context! {
                id => id.to_string(), email => member.email.clone(), name => member.name.clone(),
                role => current.role.as_str(), areas => labels(current.effective()),
            },
            manageable, roles => role_choices(me, role), areas => area_choices(areas), error,
            can_transfer => manageable && me.role == StaffRole::Owner && current.role != StaffRole::Owner,
            page_title => "Staff member",
        },
    ))
}

/// `GET /merchant/settings/staff/{id}`: a member's role and areas.
pub async fn member(State(state): State<AppState>, page: SignedIn, Path(id): Path<Uuid>) -> WebResult<Response> {
    member_page(&state, &page, id, None, None).await
}

/// `POST /merchant/settings/staff/{id}` (`role`, one `area` per ticked area).
pub async fn update_member(
    State(state): State<AppState>,
    page: SignedIn,
    Path(id): Path<Uuid>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    access(&page)?;
    let tenant = page.store()?;
    let (role, areas) = (field(&pairs, "role"), fields(&pairs, "area"));
    match state.accounts.update_member(&page.me, &tenant, AccountId(id), role, &areas).await {
        Ok(()) => Ok(Redirect::to(&format!("{TEAM}?done=updated")).into_response()),
        Err(e) => {
            let (status, message) = refusal(&page, e)?;
            let chosen = StaffRole::parse(role)
                .map(|r| (r, areas.iter().filter_map(|a| Permission::parse(a).ok()).collect::<Permissions>()));
            with_status(member_page(&state, &page, id, chosen, Some(message)).await, status)
        }
    }
}

/// `POST /merchant/settings/staff/{id}/{remove|transfer}`.
pub async fn member_action(
    State(state): State<AppState>,
    page: SignedIn,
    Path((id, action)): Path<(Uuid, String)>,
) -> WebResult<Response> {
    access(&page)?;
    let tenant = page.store()?;
    let result = match action.as_str() {
        "remove" => state.accounts.remove_member(&page.me, &tenant, AccountId(id)).await.map(|()| "removed"),
        "transfer" => state.accounts.transfer_ownership(&page.me, &tenant, AccountId(id)).await.map(|()| "transferred"),
        _ => return Err(WebError::not_found()),
    };
    match result {
        Ok(done) => Ok(Redirect::to(&format!("{TEAM}?done={done}")).into_response()),
        Err(ServiceError::Unauthorized(m)) => Err(page.denied(m)),
        Err(e) => Err(e.into()),
    }
}

// ---- accepting -------------------------------------------------------------------

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn accept_page(state: &AppState, ctx: &AreaCtx, token: &str, error: Option<String>) -> WebResult<Response> {
    let tenant = ctx.tenant.as_ref().ok_or_else(WebError::not_found)?;
    match state.accounts.lookup_invite(tenant.id, token).await? {
        InviteLookup::Usable { invitation, existing_account } => {
            let areas = if invitation.role == StaffRole::Staff { invitation.areas } else { Permissions::all() };
            Ok(ctx.page(
                "merchant/invite_accept.html",
                context! {
                    token, email => invitation.email, role => invitation.role.as_str(), areas => labels(areas),
                    invited_by => invitation.invited_by.trim_start_matches("staff ").to_owned(),
                    expires_at => when(invitation.expires_at), existing_account, error,
                    page_title => "Join the team",
                },
            ))
        }
        InviteLookup::Gone => {
            let mut resp =
                ctx.page("merchant/invite_accept.html", context! { gone => true, page_title => "Join the team" });
            *resp.status_mut() = StatusCode::GONE;
            Ok(resp)
        }
    }
}

/// `GET /merchant/invite?token=…`: what the invitation offers, and the form to accept.
pub async fn accept_form(
    State(state): State<AppState>,
    ctx: AreaCtx,
    Query(q): Query<TokenQuery>,
) -> WebResult<Response> {
    accept_page(&state, &ctx, &q.token, None).await
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// `POST /merchant/invite`: makes the account, signs it in, and opens the panel.
pub async fn accept(
    State(state): State<AppState>,
    ctx: AreaCtx,
    ClientIp(ip): ClientIp,
    jar: PrivateCookieJar,
    Form(f): Form<AcceptForm>,
) -> WebResult<Response> {
    let tenant = ctx.tenant.clone().ok_or_else(WebError::not_found)?;
    match state.accounts.accept_invite(&tenant, &ip, &f.token, &f.name, &f.password).await {
        Ok(who) => Ok((session::start(&state, jar, &who), Redirect::to("/merchant?joined=1")).into_response()),
        Err(e) => {
            let (status, message) = match e {
                ServiceError::Invalid(i) => (StatusCode::UNPROCESSABLE_ENTITY, i.to_string()),
                ServiceError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.to_owned()),
                ServiceError::RateLimited { retry_after_secs } => {
                    (StatusCode::TOO_MANY_REQUESTS, format!("Too many attempts. Try again in {retry_after_secs} s."))
                }
                other => return Err(other.into()),
            };
            let mut resp = accept_page(&state, &ctx, &f.token, Some(message)).await?;
            if resp.status() == StatusCode::OK {
                *resp.status_mut() = status;
            }
            Ok(resp)
        }
    }
}
