//! Dead letters of the integration bus: the super-admin panel lists every store's
//! (`/admin/dead-letters`), the merchant panel its store's (`/merchant/dead-letters`,
//! with the store's bus activity); both can retry or discard one.

use crate::auth::SignedIn;
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use ecom_bus::{DeadLetters, Scope};
use ecom_store::bus::DeadLetterRow;
use minijinja::{Value, context};
use uuid::Uuid;

const SHOWN: u64 = 100;

fn bus_err(e: ecom_bus::BusError) -> WebError {
    WebError::Internal(e.to_string())
}

fn rows(letters: &[DeadLetterRow], stores: &std::collections::HashMap<Uuid, String>) -> Vec<Value> {
    letters
        .iter()
        .map(|l| {
            context! {
                id => l.id.to_string(),
                event_id => l.event_id.to_string(),
                store => stores.get(&l.tenant_id).cloned().unwrap_or_default(),
                consumer => l.consumer.clone(),
                topic => l.topic.clone(),
                error => l.error.clone(),
                attempts => l.attempts,
                dead_at => l.dead_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                payload => serde_json::to_string_pretty(&l.payload).unwrap_or_default(),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Retry,
    Discard,
}

fn action(s: &str) -> WebResult<Action> {
    match s {
        "retry" => Ok(Action::Retry),
        "discard" => Ok(Action::Discard),
        _ => Err(WebError::not_found()),
    }
}

async fn act(state: &AppState, scope: Scope, id: Uuid, what: Action) -> WebResult<()> {
    let letters = DeadLetters::new(state.db.clone());
    let done = match what {
        Action::Retry => letters.retry(scope, id).await,
        Action::Discard => letters.discard(scope, id).await,
    }
    .map_err(bus_err)?;
    if done {
        Ok(())
    } else {
        Err(WebError::BadRequest("That dead letter is gone: retried or discarded already.".into()))
    }
}

pub async fn admin_list(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    let (letters, total) = DeadLetters::new(state.db.clone()).list(Scope::Platform, SHOWN).await.map_err(bus_err)?;
    let mut stores = std::collections::HashMap::new();
    for l in &letters {
        if let std::collections::hash_map::Entry::Vacant(e) = stores.entry(l.tenant_id)
            && let Some(t) = ecom_store::tenants::find_by_id(&state.db, ecom_core::TenantId(l.tenant_id)).await?
        {
            e.insert(t.slug.as_str().to_owned());
        }
    }
    let letters = rows(&letters, &stores);
    Ok(page.page("admin/dead_letters.html", context! { letters, total, base => "/admin/dead-letters" }))
}

pub async fn admin_act(
    State(state): State<AppState>,
    page: SignedIn,
    Path((id, what)): Path<(Uuid, String)>,
) -> WebResult<Response> {
    let what = action(&what)?;
    act(&state, Scope::Platform, id, what).await?;
    tracing::info!(admin = %page.me.email, dead_letter = %id, action = ?what, "dead letter handled");
    Ok(Redirect::to("/admin/dead-letters").into_response())
}

pub async fn merchant_list(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Analytics)?;
    let tenant = page.store()?;
    let (letters, total) =
        DeadLetters::new(state.db.clone()).list(Scope::Store(tenant.id), SHOWN).await.map_err(bus_err)?;
    let letters = rows(&letters, &std::collections::HashMap::new());
    let since = (chrono::Utc::now() - chrono::Duration::days(6)).format("%Y-%m-%d").to_string();
    let txn = state.db.tenant_txn(tenant.id).await?;
    let activity = ecom_store::bus::activity(&txn, tenant.id, &since).await?;
    txn.commit().await.map_err(ecom_store::StoreError::from)?;
    let activity: Vec<Value> = activity.into_iter().map(|(day, topic, count)| context! { day, topic, count }).collect();
    Ok(page.page("merchant/dead_letters.html", context! { letters, total, activity, base => "/merchant/dead-letters" }))
}

pub async fn merchant_act(
    State(state): State<AppState>,
    page: SignedIn,
    Path((id, what)): Path<(Uuid, String)>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Analytics)?;
    let tenant = page.store()?;
    let what = action(&what)?;
    act(&state, Scope::Store(tenant.id), id, what).await?;
    let verb = match what {
        Action::Retry => "bus.dead_letter.retry",
        Action::Discard => "bus.dead_letter.discard",
    };
    page.audit(&state, verb, &format!("dead letter {id}"), "").await;
    Ok(Redirect::to("/merchant/dead-letters").into_response())
}
