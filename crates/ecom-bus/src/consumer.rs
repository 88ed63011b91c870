//! Consumers: what the relay delivers events to, and the processed-event record that
//! makes at-least-once delivery give exactly-once effects.

use crate::events::{Event, Topic};
use ecom_core::TenantId;
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

    /// Whether the relay should hand this consumer its claimed events together, in
    /// [`Consumer::handle_batch`], rather than one by one, several at once.
    fn batches(&self) -> bool {
        false
    }

    /// Handles several events (of any stores, in no particular order); one outcome per
    /// event, in their order. A consumer that batches does in a few statements what
    /// `handle` does per event, and keeps one event's failure from failing the others.
    async fn handle_batch(&self, events: &[Event]) -> Vec<Result<(), ConsumerError>> {
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            results.push(self.handle(event).await);
        }
        results
    }

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

/// What a batching consumer's [`Consumer::handle_batch`] gave for `n` events, as each
/// event's outcome: its own, or, when the batch failed as a whole (`Err`: timed out, the
/// task stopped) or gave the wrong number of outcomes, the same error for every event.
pub fn batch_outcomes(
    consumer: &str,
    n: usize,
    handled: Result<Vec<Result<(), ConsumerError>>, String>,
) -> Vec<Result<(), String>> {
    match handled {
        Ok(r) if r.len() == n => r.into_iter().map(|r| r.map_err(|e| e.to_string())).collect(),
        Ok(r) => vec![Err(format!("{consumer} gave {} outcomes for {n} events", r.len())); n],
        Err(e) => vec![Err(e); n],
    }
}

/// The batching consumers' shape of [`Consumer::handle_batch`]: groups `events` by
/// store and hands each group to `store` (one transaction per store, in the consumer);
/// a group that fails is retried event by event, so that one bad event fails alone.
pub async fn by_store<'e, F, Fut>(events: &'e [Event], store: F) -> Vec<Result<(), ConsumerError>>
where
    F: Fn(TenantId, Vec<&'e Event>) -> Fut,
    Fut: std::future::Future<Output = Result<(), ConsumerError>>,
{
    let mut groups: Vec<(TenantId, Vec<usize>)> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        match groups.iter_mut().find(|(t, _)| *t == event.tenant()) {
            Some((_, idx)) => idx.push(i),
            None => groups.push((event.tenant(), vec![i])),
        }
    }
    let mut results: Vec<Option<Result<(), ConsumerError>>> = events.iter().map(|_| None).collect();
    for (tenant, idx) in groups {
        let group: Vec<&Event> = idx.iter().map(|&i| &events[i]).collect();
        match store(tenant, group).await {
            Ok(()) => idx.iter().for_each(|&i| results[i] = Some(Ok(()))),
            Err(e) if idx.len() == 1 => results[idx[0]] = Some(Err(e)),
            Err(e) => {
                tracing::info!(tenant.id = %tenant, events = idx.len(), error = %e,
                    "a batch of events failed together; handling them one by one");
                for &i in &idx {
                    results[i] = Some(store(tenant, vec![&events[i]]).await);
                }
            }
        }
    }
    results.into_iter().map(|r| r.unwrap_or_else(|| Err(ConsumerError::failed("not handled")))).collect()
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

    /// Counts one store's events: their receipts and one counter update per day and
    /// topic, in one transaction.
    async fn count(&self, tenant: TenantId, events: Vec<&Event>) -> Result<(), ConsumerError> {
        let txn = self.db.tenant_txn(tenant).await?;
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id).collect();
        let fresh = ecom_store::bus::first_receipts(&txn, tenant, Self::NAME, &ids).await?;
        let mut counts: std::collections::BTreeMap<(String, &str), i64> = Default::default();
        for event in events.iter().filter(|e| fresh.contains(&e.id)) {
            let day = event.occurred_at.format("%Y-%m-%d").to_string();
            *counts.entry((day, event.topic.as_str())).or_default() += 1;
        }
        for ((day, topic), n) in counts {
            ecom_store::bus::add_activity(&txn, tenant, &day, topic, n).await?;
        }
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
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
        self.count(event.tenant(), vec![event]).await
    }

    fn batches(&self) -> bool {
        true
    }

    async fn handle_batch(&self, events: &[Event]) -> Vec<Result<(), ConsumerError>> {
        by_store(events, |tenant, group| self.count(tenant, group)).await
    }
}
