//! Consumers: what the relay delivers events to, and the processed-event record that
//! makes at-least-once delivery give exactly-once effects.

use crate::events::{Event, Topic};
use ecom_store::{DatabaseTransaction, Db, StoreError};

/// Why a consumer could not handle an event; the relay retries it later.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ConsumerError {
    pub fn failed(msg: impl Into<String>) -> Self {
        Self::Failed(msg.into())
    }
}

/// Something that reacts to events. `handle` may be called more than once for the same
/// event (delivery is at least once): make its effect idempotent, which
/// [`Consumer::begin_once`] does for effects kept in the database.
#[async_trait::async_trait]
pub trait Consumer: Send + Sync + 'static {
    /// A stable name: deliveries, receipts and dead letters are recorded under it.
    fn name(&self) -> &'static str;
    /// The topics it wants.
    fn topics(&self) -> &[Topic];
    async fn handle(&self, event: &Event) -> Result<(), ConsumerError>;

    /// Opens a transaction in the event's store that already holds this consumer's
    /// receipt for the event, or `None` when the event was applied before. Make the
    /// effect in the transaction and commit it: the receipt and the effect land
    /// together or not at all.
    async fn begin_once(&self, db: &Db, event: &Event) -> Result<Option<DatabaseTransaction>, ConsumerError> {
        once(db, self.name(), event).await
    }
}

/// [`Consumer::begin_once`] for code that is not a consumer.
pub async fn once(db: &Db, consumer: &str, event: &Event) -> Result<Option<DatabaseTransaction>, ConsumerError> {
    let txn = db.tenant_txn(event.tenant()).await?;
    if ecom_store::bus::first_receipt(&txn, event.tenant(), consumer, event.id).await? {
        Ok(Some(txn))
    } else {
        // Already applied: nothing to do; the transaction rolls back on drop.
        Ok(None)
    }
}

/// The store activity counter: counts every event per store, day and topic
/// (`store_activity`), shown on the merchant dashboard's bus page.
pub struct Activity {
    db: Db,
}

impl Activity {
    pub const NAME: &'static str = "activity";

    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl Consumer for Activity {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn topics(&self) -> &[Topic] {
        Topic::ALL
    }

    async fn handle(&self, event: &Event) -> Result<(), ConsumerError> {
        let Some(txn) = self.begin_once(&self.db, event).await? else { return Ok(()) };
        let day = event.occurred_at.format("%Y-%m-%d").to_string();
        ecom_store::bus::bump_activity(&txn, event.tenant(), &day, event.topic.as_str()).await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}
