//! The in-app channel and its live listeners.
//!
//! Sending an in-app message files it in the recipient's inbox (`inbox_items`) and
//! wakes whoever listens for that inbox (the account's and the panel's server-sent
//! event streams). Waking crosses nodes: on PostgreSQL the item is announced with
//! `pg_notify` in the transaction that files it (delivered on commit to every node's
//! `LISTEN`), and each node's [`InboxHub`] relays what its listener hears; on SQLite,
//! one node by nature, the hub is woken in process after the commit. Listeners also
//! look again every few seconds ([`InboxHub::RECHECK`]) in case a wake-up was lost (a
//! dropped `LISTEN` connection), so the worst case is a short delay, never a miss.

use crate::{Channel, INAPP, Outgoing, SendError};
use ecom_store::inbox::{self, NewItem, Recipient};
use ecom_store::{Backend, Db};
use sea_orm::{ConnectionTrait, Statement};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

/// The PostgreSQL notification channel items are announced on.
pub const PG_CHANNEL: &str = "ecom_inbox";

/// "Something new in this inbox".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    pub tenant: Uuid,
    pub recipient: Recipient,
}

impl Wake {
    fn payload(&self) -> String {
        format!("{}/{}", self.tenant, self.recipient.address())
    }

    fn parse(payload: &str) -> Option<Self> {
        let (tenant, recipient) = payload.split_once('/')?;
        Some(Self { tenant: Uuid::parse_str(tenant).ok()?, recipient: Recipient::parse(recipient)? })
    }
}

/// Fans inbox wake-ups out to this node's listeners. Cheap to clone.
#[derive(Clone)]
pub struct InboxHub {
    tx: broadcast::Sender<Wake>,
    closed: Arc<watch::Sender<bool>>,
}

impl Default for InboxHub {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for InboxHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxHub").field("listeners", &self.tx.receiver_count()).finish()
    }
}

impl InboxHub {
    /// How often a listener looks again without a wake-up.
    pub const RECHECK: Duration = Duration::from_secs(10);

    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        let (closed, _) = watch::channel(false);
        Self { tx, closed: Arc::new(closed) }
    }

    /// Every wake-up from now on (a listener filters for its own inbox).
    pub fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.tx.subscribe()
    }

    pub fn wake(&self, wake: Wake) {
        // No receiver is fine: nobody is looking at that inbox right now.
        let _ = self.tx.send(wake);
    }

    /// Ends every stream (server shutdown), so graceful shutdown does not wait for them.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Resolves once [`InboxHub::close`] was called.
    pub async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// On PostgreSQL, relays `NOTIFY ecom_inbox` from every node into this hub until
    /// the task is aborted; reconnects after a lost connection. Nothing on SQLite.
    pub fn listen(&self, db: &Db) -> Option<tokio::task::JoinHandle<()>> {
        if db.backend() != Backend::Postgres {
            return None;
        }
        let pool = db.connection().get_postgres_connection_pool().clone();
        let hub = self.clone();
        Some(tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(PG_CHANNEL).await {
                            tracing::warn!(error = %e, "inbox: LISTEN failed");
                        } else {
                            tracing::debug!("inbox: listening for other nodes' items");
                            loop {
                                match listener.recv().await {
                                    Ok(n) => {
                                        if let Some(w) = Wake::parse(n.payload()) {
                                            hub.wake(w);
                                        }
                                    }
                                    Err(e) => {
                                        tracing::warn!(error = %e, "inbox: LISTEN connection lost");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "inbox: cannot open the LISTEN connection"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }
}

/// The in-app channel: a notification row with recipient `customer:<id>` or
/// `staff:<id>` becomes an inbox item; its subject is the title, its text the body.
pub struct InAppChannel {
    db: Db,
    hub: InboxHub,
}

impl InAppChannel {
    pub fn new(db: Db, hub: InboxHub) -> Self {
        Self { db, hub }
    }
}

#[async_trait::async_trait]
impl Channel for InAppChannel {
    fn kind(&self) -> &'static str {
        INAPP
    }

    fn describe(&self) -> String {
        match self.db.backend() {
            Backend::Postgres => "the account inboxes, live over SSE (LISTEN/NOTIFY across nodes)".into(),
            _ => "the account inboxes, live over SSE".into(),
        }
    }

    async fn send(&self, m: &Outgoing) -> Result<String, SendError> {
        self.send_many(std::slice::from_ref(m))
            .await
            .pop()
            .unwrap_or_else(|| Err(SendError::Transient("inbox: no outcome".into())))
    }

    fn batches(&self) -> bool {
        true
    }

    /// Files the items one transaction per store, and wakes each inbox once.
    async fn send_many(&self, messages: &[Outgoing]) -> Vec<Result<String, SendError>> {
        let mut outcomes: Vec<Result<String, SendError>> = Vec::with_capacity(messages.len());
        let mut by_store: Vec<(ecom_core::TenantId, Vec<(usize, Recipient)>)> = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let addressed = match (m.tenant, Recipient::parse(&m.to)) {
                (None, _) => Err(SendError::Permanent("in-app messages belong to a store".into())),
                (Some(_), None) => {
                    Err(SendError::Permanent(format!("{:?} is not an inbox (customer:<id> or staff:<id>)", m.to)))
                }
                (Some(tenant), Some(recipient)) => {
                    match by_store.iter_mut().find(|(t, _)| *t == tenant) {
                        Some((_, items)) => items.push((i, recipient)),
                        None => by_store.push((tenant, vec![(i, recipient)])),
                    }
                    // Replaced below by the filing's outcome.
                    Err(SendError::Transient("inbox: not filed".into()))
                }
            };
            outcomes.push(addressed);
        }
        for (tenant, items) in by_store {
            match self.file(tenant, messages, &items).await {
                Ok((filed, wakes)) => {
                    if self.db.backend() != Backend::Postgres {
                        for w in wakes {
                            self.hub.wake(w);
                        }
                    }
                    for ((i, _), id) in items.iter().zip(filed) {
                        // Filed before by an attempt whose outcome was lost: the same item.
                        outcomes[*i] =
                            Ok(id.map_or_else(|| format!("inbox:{}", messages[*i].id), |id| format!("inbox:{id}")));
                    }
                }
                Err(e) => {
                    for (i, _) in &items {
                        outcomes[*i] = Err(SendError::Transient(format!("inbox: {e}")));
                    }
                }
            }
        }
        outcomes
    }
}

impl InAppChannel {
    /// Files one store's items in one transaction (a statement per hundred); on
    /// PostgreSQL announces each inbox that got one (delivered at commit). The new
    /// items' ids (`None`: filed before), and the inboxes to wake.
    async fn file(
        &self,
        tenant: ecom_core::TenantId,
        messages: &[Outgoing],
        items: &[(usize, Recipient)],
    ) -> Result<(Vec<Option<Uuid>>, Vec<Wake>), ecom_store::StoreError> {
        let new: Vec<NewItem<'_>> = items
            .iter()
            .map(|(i, recipient)| {
                let m = &messages[*i];
                NewItem {
                    recipient: *recipient,
                    notification_id: Some(m.id),
                    title: &m.subject,
                    body: &m.text,
                    link: &m.link,
                }
            })
            .collect();
        let txn = self.db.tenant_txn(tenant).await?;
        let filed = inbox::insert_many(&txn, tenant, &new).await?;
        let mut wakes: Vec<Wake> = Vec::new();
        for (item, id) in new.iter().zip(&filed) {
            let wake = Wake { tenant: tenant.0, recipient: item.recipient };
            if id.is_some() && !wakes.contains(&wake) {
                wakes.push(wake);
            }
        }
        if self.db.backend() == Backend::Postgres {
            for wake in &wakes {
                txn.execute_raw(Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    "SELECT pg_notify($1, $2)",
                    [PG_CHANNEL.into(), wake.payload().into()],
                ))
                .await?;
            }
        }
        txn.commit().await?;
        Ok((filed, wakes))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn wake_ups_survive_the_trip_through_pg_notify() {
        let w = Wake { tenant: Uuid::now_v7(), recipient: Recipient::Staff(Uuid::now_v7()) };
        assert_eq!(Wake::parse(&w.payload()), Some(w));
        assert_eq!(Wake::parse("nonsense"), None);
        assert_eq!(Wake::parse(&format!("{}/robot:{}", Uuid::nil(), Uuid::nil())), None);
    }
}
