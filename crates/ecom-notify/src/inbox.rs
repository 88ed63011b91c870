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
        let Some(tenant) = m.tenant else {
            return Err(SendError::Permanent("in-app messages belong to a store".into()));
        };
        let Some(recipient) = Recipient::parse(&m.to) else {
            return Err(SendError::Permanent(format!("{:?} is not an inbox (customer:<id> or staff:<id>)", m.to)));
        };
        let wake = Wake { tenant: tenant.0, recipient };
        let filed = async {
            let txn = self.db.tenant_txn(tenant).await?;
            let item =
                NewItem { recipient, notification_id: Some(m.id), title: &m.subject, body: &m.text, link: &m.link };
            let id = inbox::insert(&txn, tenant, &item).await?;
            if id.is_some() && self.db.backend() == Backend::Postgres {
                txn.execute_raw(Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    "SELECT pg_notify($1, $2)",
                    [PG_CHANNEL.into(), wake.payload().into()],
                ))
                .await
                .map_err(ecom_store::StoreError::from)?;
            }
            txn.commit().await.map_err(ecom_store::StoreError::from)?;
            Ok::<_, ecom_store::StoreError>(id)
        };
        match filed.await {
            Ok(id) => {
                if self.db.backend() != Backend::Postgres {
                    self.hub.wake(wake);
                }
                // Filed before by an attempt whose outcome was lost: the same item.
                Ok(id.map_or_else(|| format!("inbox:{}", m.id), |id| format!("inbox:{id}")))
            }
            Err(e) => Err(SendError::Transient(format!("inbox: {e}"))),
        }
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
