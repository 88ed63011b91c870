//! The merchant panel's notification templates (`/merchant/settings/notifications`):
//! every message × channel, customised or default; an editor with a live preview (a
//! static script posts the fields to `…/preview` as the merchant types and shows the
//! answer in a sandboxed iframe), save (checked; refused with the part and line),
//! reset to the default, and a test send to the signed-in staff member. The rules live
//! in `ecom_notify::store_templates`.

use crate::auth::SignedIn;
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use crate::templates::ser;
use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use ecom_notify::store_templates::{self as st, CHANNELS, MESSAGES, Parts, TemplatesError};
use minijinja::context;
use serde::Deserialize;

const LIST: &str = "/merchant/settings/notifications";

/// The editor's page policy: the panel's, plus inline style attributes, which the
/// email preview in its `srcdoc` iframe (which inherits this policy) is written with.
/// Scripts stay blocked; the iframe is sandboxed without `allow-scripts` anyway.
const EDITOR_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data: https: http:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'";

fn channel_label(c: &str) -> &'static str {
    match c {
        "email" => "Email",
        "sms" => "SMS",
        "push" => "Push",
        "inapp" => "In-app",
        _ => "Other",
    }
}

pub async fn list(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    let rows = state.templates.list(tenant.id).await?;
    let channels: Vec<_> = CHANNELS.iter().map(|c| context! { code => *c, label => channel_label(c) }).collect();
    let messages: Vec<_> = MESSAGES
        .iter()
        .map(|m| {
            let cells: Vec<_> = CHANNELS
                .iter()
                .map(|c| {
                    let row = rows.iter().find(|r| r.channel == *c && r.name == m.name);
                    context! {
                        channel => *c, label => channel_label(c), customised => row.is_some(),
                        applies => m.channels().contains(c),
                        updated => row.map(|r| r.updated_at.format("%Y-%m-%d").to_string()),
                    }
                })
                .collect();
            context! { name => m.name, label => m.label, audience => m.audience, topic => m.topic.map_or("account", |t| t.as_str()), cells }
        })
        .collect();
    let customised = rows.len();
    Ok(page.page(
        "merchant/notification_templates.html",
        context! { messages, channels, customised, page_title => "Notification templates" },
    ))
}

fn known(channel: &str, name: &str) -> WebResult<&'static st::Message> {
    st::message(name).filter(|m| m.channels().contains(&channel)).ok_or_else(WebError::not_found)
}

/// The store's public address, for links in previews and test sends.
fn base(state: &AppState, page: &SignedIn) -> String {
    format!("{}://{}", state.config.public_scheme, page.ctx.host.0)
}

#[derive(Default)]
struct EditorState {
    parts: Parts,
    customised: bool,
    problem: Option<st::Problem>,
    notice: Option<String>,
}

async fn editor(state: &AppState, page: &SignedIn, channel: &str, name: &str, s: EditorState) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    let message = known(channel, name)?;
    let preview = state.templates.preview(&tenant, &base(state, page), channel, name, &s.parts).await;
    let (preview, preview_problem) = match preview {
        Ok(p) => (Some(p), None),
        Err(TemplatesError::Invalid(p)) => (None, Some(p)),
        Err(e) => return Err(templates_error(e)),
    };
    let failed = s.problem.is_some();
    let mut resp = page.page(
        "merchant/notification_template.html",
        context! {
            channel, channel_label => channel_label(channel), message => ser(message),
            email => channel == ecom_notify::EMAIL,
            parts => ser(&s.parts), customised => s.customised,
            problem => s.problem.as_ref().map(ser), notice => s.notice,
            preview => preview.as_ref().map(ser), preview_problem => preview_problem.as_ref().map(ser),
            staff_email => page.me.email.clone(),
            page_title => format!("{} · {}", message.label, channel_label(channel)),
        },
    );
    resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(EDITOR_CSP));
    if failed {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

fn templates_error(e: TemplatesError) -> WebError {
    match e {
        TemplatesError::Invalid(p) => WebError::BadRequest(p.to_string()),
        TemplatesError::Unknown(_) => WebError::not_found(),
        TemplatesError::Store(e) => e.into(),
    }
}

#[derive(Deserialize, Default)]
pub struct Done {
    #[serde(default)]
    saved: Option<String>,
    #[serde(default)]
    reset: Option<String>,
}

pub async fn edit_form(
    State(state): State<AppState>,
    page: SignedIn,
    Path((channel, name)): Path<(String, String)>,
    Query(done): Query<Done>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    known(&channel, &name)?;
    let (parts, customised) = state.templates.current(tenant.id, &channel, &name).await.map_err(templates_error)?;
    let notice = if done.saved.is_some() {
        Some("Saved. New messages use this version.".to_owned())
    } else if done.reset.is_some() {
        Some("Back to the default: new messages use the built-in version.".to_owned())
    } else {
        None
    };
    editor(&state, &page, &channel, &name, EditorState { parts, customised, problem: None, notice }).await
}

#[derive(Deserialize, Default)]
pub struct TemplateForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    html: String,
}

impl TemplateForm {
    fn parts(&self) -> Parts {
        Parts { subject: self.subject.clone(), text: self.text.clone(), html: self.html.clone() }
    }
}

pub async fn act(
    State(state): State<AppState>,
    page: SignedIn,
    Path((channel, name)): Path<(String, String)>,
    Form(f): Form<TemplateForm>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    let message = known(&channel, &name)?;
    let by = format!("staff {}", page.me.email);
    let base = base(&state, &page);
    let here = format!("{LIST}/{channel}/{name}");
    let customised =
        || async { state.templates.current(tenant.id, &channel, &name).await.map(|(_, c)| c).map_err(templates_error) };
    match f.action.as_str() {
        "save" => match state.templates.save(&tenant, &base, &channel, &name, &f.parts(), &by).await {
            Ok(()) => Ok(Redirect::to(&format!("{here}?saved=1")).into_response()),
            Err(TemplatesError::Invalid(problem)) => {
                let s = EditorState {
                    parts: f.parts(),
                    customised: customised().await?,
                    problem: Some(problem),
                    notice: None,
                };
                editor(&state, &page, &channel, &name, s).await
            }
            Err(e) => Err(templates_error(e)),
        },
        "reset" => {
            state.templates.reset(tenant.id, &channel, &name, &by).await.map_err(templates_error)?;
            Ok(Redirect::to(&format!("{here}?reset=1")).into_response())
        }
        "test" => {
            let to = page.me.email.clone();
            let (problem, notice) =
                match state.templates.send_test(&tenant, &base, &channel, &name, &f.parts(), &to).await {
                    Ok(_) => (None, Some(format!("A test of “{}” is on its way to {to}.", message.label))),
                    Err(TemplatesError::Invalid(p)) => (Some(p), None),
                    Err(e) => return Err(templates_error(e)),
                };
            let s = EditorState { parts: f.parts(), customised: customised().await?, problem, notice };
            editor(&state, &page, &channel, &name, s).await
        }
        _ => Err(WebError::BadRequest("Unknown action: save, test or reset.".into())),
    }
}

/// `POST …/preview`: the fields rendered with the sample order, as JSON for the
/// editor's script (`{subject, text, html, real_order}` or `{error: {part, message,
/// line}}`). Nothing is saved.
pub async fn preview(
    State(state): State<AppState>,
    page: SignedIn,
    Path((channel, name)): Path<(String, String)>,
    Form(f): Form<TemplateForm>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    known(&channel, &name)?;
    match state.templates.preview(&tenant, &base(&state, &page), &channel, &name, &f.parts()).await {
        Ok(p) => Ok(Json(serde_json::json!({
            "subject": p.subject, "text": p.text, "html": p.html, "real_order": p.real_order,
        }))
        .into_response()),
        Err(TemplatesError::Invalid(p)) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({ "error": { "part": p.part, "message": p.to_string(), "line": p.line } })),
        )
            .into_response()),
        Err(e) => Err(templates_error(e)),
    }
}
