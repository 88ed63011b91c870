//! The notification delivery log: every message queued, with its channel, recipient,
//! template, status, attempts, provider id and last error. The super-admin panel lists
//! all stores' and the platform's (`/admin/notifications`), the merchant panel its
//! store's (`/merchant/notifications`); a failed message can be retried from either.

use crate::auth::SignedIn;
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use ecom_core::TenantId;
use ecom_store::notifications::{self as repo, NotificationRow};
use minijinja::{Value, context};
use std::collections::HashMap;
use uuid::Uuid;

const SHOWN: u64 = 200;

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn rows(list: &[NotificationRow], stores: &HashMap<Uuid, String>) -> Vec<Value> {
    list.iter()
        .map(|n| {
            context! {
                id => n.id.to_string(),
                store => n.tenant_id.map_or_else(|| "platform".to_owned(), |t| stores.get(&t).cloned().unwrap_or_default()),
                channel => n.channel.clone(),
                recipient => n.recipient.clone(),
                template => n.template.clone(),
                subject => n.subject.clone(),
                status => n.status.clone(),
                attempts => n.attempts,
                provider_id => n.provider_id.clone(),
                error => n.last_error.clone(),
                created_at => when(n.created_at),
                sent_at => n.sent_at.map(when),
                next_attempt_at => (n.status == repo::PENDING && n.attempts > 0).then(|| when(n.next_attempt_at)),
            }
        })
        .collect()
}

/// The log of one store (`Some`) or everything (`None`), with counts.
async fn log(state: &AppState, tenant: Option<TenantId>) -> WebResult<(Vec<NotificationRow>, u64, u64)> {
    let txn = match tenant {
        Some(t) => state.db.tenant_txn(t).await?,
        None => state.db.platform_txn().await?,
    };
    let (list, total) = repo::list(&txn, tenant, SHOWN).await?;
    let failed = repo::count_failed(&txn, tenant).await?;
    txn.commit().await.map_err(ecom_store::StoreError::from)?;
    Ok((list, total, failed))
}

async fn retry(state: &AppState, tenant: Option<TenantId>, id: Uuid) -> WebResult<()> {
    let txn = match tenant {
        Some(t) => state.db.tenant_txn(t).await?,
        None => state.db.platform_txn().await?,
    };
    let done = repo::retry(&txn, tenant, id, chrono::Utc::now()).await?;
    txn.commit().await.map_err(ecom_store::StoreError::from)?;
    if done {
        Ok(())
    } else {
        Err(WebError::BadRequest("That message is not failed (sent, or retried already).".into()))
    }
}

pub async fn admin_list(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    let (list, total, failed) = log(&state, None).await?;
    let mut stores = HashMap::new();
    for t in list.iter().filter_map(|n| n.tenant_id) {
        if let std::collections::hash_map::Entry::Vacant(e) = stores.entry(t)
            && let Some(found) = ecom_store::tenants::find_by_id(&state.db, TenantId(t)).await?
        {
            e.insert(found.slug.as_str().to_owned());
        }
    }
    let messages = rows(&list, &stores);
    Ok(page.page(
        "admin/notifications.html",
        context! { messages, total, failed, show_store => true, base => "/admin/notifications" },
    ))
}

pub async fn admin_retry(State(state): State<AppState>, page: SignedIn, Path(id): Path<Uuid>) -> WebResult<Response> {
    retry(&state, None, id).await?;
    tracing::info!(admin = %page.me.email, notification = %id, "failed notification retried");
    Ok(Redirect::to("/admin/notifications").into_response())
}

pub async fn merchant_list(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Analytics)?;
    let tenant = page.store()?;
    let (list, total, failed) = log(&state, Some(tenant.id)).await?;
    let messages = rows(&list, &HashMap::new());
    Ok(page.page(
        "merchant/notifications.html",
        context! { messages, total, failed, show_store => false, base => "/merchant/notifications" },
    ))
}

pub async fn merchant_retry(
    State(state): State<AppState>,
    page: SignedIn,
    Path(id): Path<Uuid>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Analytics)?;
    let tenant = page.store()?;
    retry(&state, Some(tenant.id), id).await?;
    page.audit(&state, "notification.retry", &format!("notification {id}"), "").await;
    Ok(Redirect::to("/merchant/notifications").into_response())
}
