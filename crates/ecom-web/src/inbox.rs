//! The notification centre: a customer's inbox at `/account/inbox`, a staff member's at
//! `/merchant/inbox`, each with a live stream of server-sent events
//! (`…/inbox/stream`) that the header bell (`static/inbox.js`) listens to. The pages
//! work without JavaScript; the stream only makes them live.
//!
//! Stream events: `unread` (`{"unread": n}`) first and whenever the count changes, and
//! `item` (`{"id", "title", "body", "link", "created_at", "unread"}`) for each new
//! message, with the item's id as the event id, so a reconnecting `EventSource` (which
//! sends `Last-Event-ID`) gets what it missed.

use crate::auth::{Area, SignedIn};
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use ecom_core::TenantId;
use ecom_store::inbox::{self as repo, InboxItem, Recipient};
use minijinja::{Value, context};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

const SHOWN: u64 = 100;

/// Whose inbox the signed-in account reads.
pub fn recipient(page: &SignedIn) -> Recipient {
    match page.ctx.area {
        Area::Merchant => Recipient::Staff(page.me.id.0),
        _ => Recipient::Customer(page.me.id.0),
    }
}

/// The unread count shown in the header bell, for a signed-in page of a store.
pub async fn unread(state: &AppState, tenant: TenantId, who: Recipient) -> WebResult<u64> {
    let txn = state.db.tenant_txn(tenant).await?;
    let n = repo::unread(&txn, tenant, who).await?;
    txn.commit().await.map_err(ecom_store::StoreError::from)?;
    Ok(n)
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn item_view(i: &InboxItem) -> Value {
    context! {
        id => i.id.to_string(),
        title => i.title.clone(),
        body => i.body.clone(),
        // Links are paths on this host, written by the channels; anything else is dropped.
        // What is left has no character HTML would need escaped, so it goes in as it is.
        link => safe_link(&i.link).map(Value::from_safe_string),
        created_at => when(i.created_at),
        unread => i.read_at.is_none(),
    }
}

fn safe_link(link: &str) -> Option<String> {
    let plain = link.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
    (plain && link.starts_with('/') && !link.starts_with("//") && link.len() <= 500).then(|| link.to_owned())
}

fn link_label(link: &str) -> &'static str {
    if link.contains("/orders/") {
        "View the order"
    } else if link.starts_with("/cart") {
        "Go to your cart"
    } else {
        "Open"
    }
}

/// `GET /account/inbox`, `GET /merchant/inbox`.
pub async fn page(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    let tenant = page.store()?;
    let who = recipient(&page);
    let txn = state.db.tenant_txn(tenant.id).await?;
    let list = repo::list(&txn, tenant.id, who, SHOWN).await?;
    let unread = repo::unread(&txn, tenant.id, who).await?;
    txn.commit().await.map_err(ecom_store::StoreError::from)?;
    let items: Vec<Value> = list.iter().map(|i| context! { label => link_label(&i.link), ..item_view(i) }).collect();
    let area = page.ctx.area.path();
    Ok(page.page(
        "inbox/inbox.html",
        context! { items, unread, page_title => "Inbox", stream => format!("{area}/inbox/stream") },
    ))
}

/// `POST /{area}/inbox/{id}/read`; `id` = `all` marks every item read.
pub async fn mark_read(State(state): State<AppState>, page: SignedIn, Path(id): Path<String>) -> WebResult<Response> {
    let tenant = page.store()?;
    let id = match id.as_str() {
        "all" => None,
        other => Some(Uuid::parse_str(other).map_err(|_| WebError::not_found())?),
    };
    let txn = state.db.tenant_txn(tenant.id).await?;
    let changed = repo::mark_read(&txn, tenant.id, recipient(&page), id, chrono::Utc::now()).await?;
    txn.commit().await.map_err(ecom_store::StoreError::from)?;
    if id.is_some() && changed == 0 {
        // Another account's item, or read already: nothing to tell apart for the user.
        tracing::debug!("inbox: nothing to mark read");
    }
    // Other open tabs hear the new count.
    state.inbox.wake(ecom_notify::inbox::Wake { tenant: tenant.id.0, recipient: recipient(&page) });
    Ok(Redirect::to(&format!("{}/inbox", page.ctx.area.path())).into_response())
}

/// `GET /account/inbox/stream`, `GET /merchant/inbox/stream`: server-sent events.
pub async fn stream(State(state): State<AppState>, page: SignedIn, headers: HeaderMap) -> WebResult<Response> {
    let tenant = page.store()?;
    let who = recipient(&page);
    // Subscribed before reading where to start, so nothing filed in between is missed.
    let wakes = state.inbox.subscribe();
    let resume =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|s| Uuid::parse_str(s.trim()).ok());
    let txn = state.db.tenant_txn(tenant.id).await?;
    let last = match resume {
        Some(id) => Some(id),
        None => repo::newest(&txn, tenant.id, who).await?,
    };
    txn.commit().await.map_err(ecom_store::StoreError::from)?;
    let listener = Listener {
        state,
        tenant: tenant.id,
        who,
        last,
        unread: None,
        wakes,
        pending: VecDeque::new(),
        started: false,
        recheck: ecom_notify::InboxHub::RECHECK,
    };
    let events =
        futures_util::stream::unfold(
            listener,
            |mut l| async move { l.next().await.map(|e| (Ok::<_, Infallible>(e), l)) },
        );
    let mut resp = Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response();
    // Proxies (nginx) must not buffer the stream.
    resp.headers_mut().insert("x-accel-buffering", axum::http::HeaderValue::from_static("no"));
    Ok(resp)
}

struct Listener {
    state: AppState,
    tenant: TenantId,
    who: Recipient,
    /// The newest item sent (or there when the stream began).
    last: Option<Uuid>,
    /// The count last sent.
    unread: Option<u64>,
    wakes: tokio::sync::broadcast::Receiver<ecom_notify::inbox::Wake>,
    pending: VecDeque<Event>,
    started: bool,
    recheck: Duration,
}

impl Listener {
    /// The next event, or `None` to end the stream (server shutdown, database trouble:
    /// the browser's `EventSource` reconnects by itself).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if self.started {
                tokio::select! {
                    () = self.state.inbox.closed() => return None,
                    r = self.wakes.recv() => match r {
                        Ok(w) if w.tenant == self.tenant.0 && w.recipient == self.who => {}
                        Ok(_) => continue,
                        // Missed some: look anyway.
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return None,
                    },
                    () = tokio::time::sleep(self.recheck) => {}
                }
            }
            self.started = true;
            if let Err(e) = self.look().await {
                tracing::warn!(error = %e, "inbox stream: reading the inbox failed; closing the stream");
                return None;
            }
        }
    }

    /// Queues events for items newer than the last one sent, and the count if it changed.
    async fn look(&mut self) -> Result<(), ecom_store::StoreError> {
        let txn = self.state.db.tenant_txn(self.tenant).await?;
        let items = repo::since(&txn, self.tenant, self.who, self.last, 50).await?;
        let unread = repo::unread(&txn, self.tenant, self.who).await?;
        txn.commit().await?;
        for i in &items {
            let data = serde_json::json!({
                "id": i.id,
                "title": i.title,
                "body": i.body,
                "link": safe_link(&i.link),
                "created_at": when(i.created_at),
                "unread": unread,
            });
            self.pending.push_back(Event::default().event("item").id(i.id.to_string()).data(data.to_string()));
            self.last = Some(i.id);
        }
        if self.unread != Some(unread) {
            self.unread = Some(unread);
            let data = serde_json::json!({ "unread": unread });
            self.pending.push_back(Event::default().event("unread").data(data.to_string()));
        }
        Ok(())
    }
}
