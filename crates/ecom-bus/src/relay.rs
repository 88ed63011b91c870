//! The embedded relay: fans outbox events out to the in-process consumers and delivers
//! them, at least once, with per-consumer retries, exponential backoff and dead letters.
//!
//! Several processes may run it against one database. Fanning out is a conditional
//! update of `outbox.dispatched_at` in the transaction that creates the deliveries;
//! a delivery is leased to one relay (`claimed_by`, `claimed_until`) by a conditional
//! update, so two relays never attempt the same delivery at once, and a relay that
//! dies mid-attempt loses its lease and another picks the delivery up. Consumers'
//! receipts turn the resulting at-least-once delivery into exactly-once effects.
//!
//! Every node must run the same set of consumers (the same binary): an event is
//! fanned out once, to the consumers of the node that does it.

use crate::consumer::Consumer;
use crate::events::{Event, Topic};
use chrono::{DateTime, Utc};
use ecom_store::bus::{self as repo, DeliveryRow, OutboxRow};
use ecom_store::{Db, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// How the relay paces itself.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Attempts per delivery before it goes to the dead letters.
    pub max_attempts: u32,
    /// The first retry waits about this long; each next one twice as long.
    pub backoff_base: Duration,
    /// No retry waits longer than this.
    pub backoff_max: Duration,
    /// How long to sleep when there was nothing to do.
    pub poll: Duration,
    /// Events fanned out and deliveries attempted per round.
    pub batch: u64,
    /// How long a claimed batch stays with its relay. An attempt starts only while
    /// half of it is left and is cut off (counted as failed) with a quarter left, so
    /// outcomes are recorded while the relay still holds them.
    pub lease: Duration,
    /// Deliveries handed to consumers at once (each consumer's transaction holds a
    /// database connection; on SQLite there is one, shared with the requests).
    pub concurrency: usize,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
            poll: Duration::from_millis(500),
            batch: 1024,
            lease: Duration::from_secs(60),
            concurrency: 8,
        }
    }
}

impl RelaySettings {
    /// The wait before attempt `attempts + 1`, after `attempts` (≥ 1) failures: base ×
    /// 2^(attempts−1), capped, then jittered down by up to half so that a burst of
    /// failures does not retry in lockstep.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let full = self.backoff_base.saturating_mul(1u32 << exp).min(self.backoff_max);
        let jitter: f64 = rand::random::<f64>() * 0.5;
        full.mul_f64(1.0 - jitter)
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub dispatched: usize,
    pub delivered: usize,
    pub retried: usize,
    pub dead_lettered: usize,
    /// The round left new events in the outbox because the deliveries queue was full
    /// (see [`Relay::run_once`]); such a round is not idle.
    pub held_back: bool,
}

impl Round {
    fn idle(&self) -> bool {
        *self == Round::default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ecom_store::DbErr> for BusError {
    fn from(e: ecom_store::DbErr) -> Self {
        BusError::Store(StoreError::Db(e))
    }
}

/// A delivery attempted: its row, the event's payload (kept with a dead letter) and the
/// error, if it failed.
type Outcome = (DeliveryRow, serde_json::Value, Result<(), String>);

/// The relay. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    db: Db,
    consumers: Arc<Vec<Arc<dyn Consumer>>>,
    settings: Arc<RelaySettings>,
    id: Arc<str>,
    /// Full claims in a row since the last fan-out; 0 when the last claim was short.
    held_back: Arc<AtomicU32>,
}

/// At most this many rounds in a row hold the fan-out back, so new events still move
/// (at a fraction of the rate) while a backlog of due deliveries is worked off. With
/// up to one more consumer an event than this, the fan-out still adds no more
/// deliveries than the rounds between take.
const MAX_HELD_BACK: u32 = 8;

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Relay {
    pub fn new(db: Db, consumers: Vec<Arc<dyn Consumer>>, settings: RelaySettings) -> Self {
        let id = format!("relay-{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
        Self {
            db,
            consumers: Arc::new(consumers),
            settings: Arc::new(settings),
            id: id.into(),
            held_back: Arc::new(AtomicU32::new(0)),
        }
    }

    /// This relay's name in `claimed_by`.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn consumer(&self, name: &str) -> Option<&Arc<dyn Consumer>> {
        self.consumers.iter().find(|c| c.name() == name)
    }

    /// Runs rounds until the task is dropped or aborted; sleeps when idle.
    pub async fn run(self) {
        loop {
            let idle = match self.run_once().await {
                Ok(round) => round.idle(),
                Err(e) => {
                    tracing::warn!(error = %e, "bus relay round failed");
                    true
                }
            };
            if idle {
                tokio::time::sleep(self.settings.poll).await;
            }
        }
    }

    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// One round: samples the lag, fans out a batch of new events (one transaction),
    /// leases a batch of due deliveries (one conditional update), hands them to their
    /// consumers, `concurrency` at a time, and records the outcomes (one transaction).
    ///
    /// Backpressure: while the last claim came back full, the fan-out waits (for at
    /// most [`MAX_HELD_BACK`] rounds in a row). A round fans out a batch of events —
    /// a delivery per consumer each, three for an order — but works off one batch of
    /// deliveries, so without it a backlog in the outbox moves into the deliveries
    /// queue at three times the rate it leaves, and every claim, outcome write and
    /// publish check then pays for the pile. With it the due deliveries stay a few
    /// batches deep, and the events wait in the outbox, where waiting costs nothing.
    pub async fn run_once(&self) -> Result<Round, BusError> {
        let mut round = Round::default();
        self.sample().await?;
        let held = self.held_back.load(Ordering::Relaxed);
        let fan_out = held == 0 || held > MAX_HELD_BACK;
        if fan_out {
            round.dispatched = self.fan_out().await?;
        } else {
            round.held_back = true;
        }
        let (claimed, until, events) = self.claim().await?;
        let held = match claimed.len() as u64 >= self.settings.batch.max(1) {
            false => 0,
            true if fan_out => 1,
            true => held + 1,
        };
        self.held_back.store(held, Ordering::Relaxed);
        if claimed.is_empty() {
            return Ok(round);
        }
        let events = Arc::new(events);
        let mut results = Vec::with_capacity(claimed.len());
        let mut skipped = Vec::new();
        // A batching consumer gets its deliveries together, in one task; the others'
        // go one by one, `concurrency` at a time.
        let mut batches: Vec<(Arc<dyn Consumer>, Vec<DeliveryRow>)> = Vec::new();
        let mut singles = Vec::new();
        for row in claimed {
            if !events.contains_key(&row.event_id) {
                skipped.push(row.id);
                continue;
            }
            match self.consumer(&row.consumer) {
                Some(c) if c.batches() => match batches.iter_mut().find(|(b, _)| b.name() == c.name()) {
                    Some((_, rows)) => rows.push(row),
                    None => batches.push((c.clone(), vec![row])),
                },
                _ => singles.push(row),
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (consumer, rows) in batches {
            let Some(limit) = self.time_left(until) else {
                skipped.extend(rows.iter().map(|r| r.id));
                continue;
            };
            let (relay, events) = (self.clone(), events.clone());
            tasks.spawn(async move { relay.attempt_batch(&*consumer, rows, &events, limit).await });
        }
        let mut singles = singles.into_iter();
        loop {
            while tasks.len() < self.settings.concurrency.max(1) {
                let Some(row) = singles.next() else { break };
                let Some(limit) = self.time_left(until) else {
                    skipped.push(row.id);
                    continue;
                };
                let (relay, events) = (self.clone(), events.clone());
                tasks.spawn(async move {
                    let event = &events[&row.event_id];
                    let result = relay.attempt(&row, event, limit).await;
                    vec![(row, event.payload.clone(), result)]
                });
            }
            let Some(done) = tasks.join_next().await else { break };
            match done {
                Ok(r) => results.extend(r),
                Err(e) => tracing::warn!(error = %e, "a bus delivery task failed"),
            }
        }
        let recorded = self.record(results, &skipped).await?;
        round.delivered = recorded.delivered;
        round.retried = recorded.retried;
        round.dead_lettered = recorded.dead_lettered;
        Ok(round)
    }

    /// Sets `ecom_outbox_lag_seconds` (age of the oldest unpublished event) and
    /// `ecom_bus_dead_letters` (how many wait in the panel).
    async fn sample(&self) -> Result<(), BusError> {
        let txn = self.db.platform_txn().await?;
        let oldest = repo::oldest_unpublished(&txn).await?;
        let dead = repo::count_dead_letters(&txn, None).await?;
        txn.commit().await?;
        let lag = oldest.map_or(0.0, |t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0);
        metrics::gauge!("ecom_outbox_lag_seconds").set(lag);
        metrics::gauge!("ecom_bus_dead_letters").set(dead as f64);
        Ok(())
    }

    /// Fans a batch of new events out in one transaction: marks them dispatched, creates
    /// every (event, consumer) delivery in multi-row inserts, and publishes at once the
    /// events no consumer wants.
    async fn fan_out(&self) -> Result<usize, BusError> {
        let now = Utc::now();
        let txn = self.db.platform_txn().await?;
        let rows = repo::dispatch(&txn, now, self.settings.batch).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut pairs = Vec::new();
        let mut unwanted = Vec::new();
        for row in &rows {
            let before = pairs.len();
            match Topic::parse(&row.topic) {
                Ok(topic) => {
                    for c in self.consumers.iter().filter(|c| c.topics().contains(&topic)) {
                        pairs.push((row, c.name()));
                    }
                }
                Err(e) => tracing::warn!(event = %row.id, error = %e, "outbox event not routed"),
            }
            if pairs.len() == before {
                unwanted.push(row.id);
            }
        }
        repo::add_deliveries(&txn, &pairs, now).await?;
        // Published at once when no consumer wants it.
        repo::publish_done(&txn, &unwanted, now).await?;
        txn.commit().await?;
        Ok(rows.len())
    }

    /// Leases a batch of due deliveries of this relay's consumers and reads their events.
    async fn claim(&self) -> Result<(Vec<DeliveryRow>, DateTime<Utc>, HashMap<Uuid, OutboxRow>), BusError> {
        let now = Utc::now();
        let until = now.add_std(self.settings.lease);
        let names: Vec<&str> = self.consumers.iter().map(|c| c.name()).collect();
        let txn = self.db.platform_txn().await?;
        let claimed = repo::claim_due(&txn, &names, &self.id, now, until, self.settings.batch).await?;
        let mut ids: Vec<Uuid> = claimed.iter().map(|r| r.event_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let events = repo::events(&txn, &ids).await?.into_iter().map(|e| (e.id, e)).collect();
        txn.commit().await?;
        Ok((claimed, until, events))
    }

    /// How long an attempt may take, started now: `None` once less than half the lease
    /// is left, and cut off with a quarter left, so that its outcome is recorded while
    /// this relay still holds the deliveries.
    fn time_left(&self, until: DateTime<Utc>) -> Option<Duration> {
        let left = (until - Utc::now()).to_std().unwrap_or_default();
        (left >= self.settings.lease / 2).then(|| left.saturating_sub(self.settings.lease / 4))
    }

    /// Hands a batching consumer its events together; each delivery's outcome.
    async fn attempt_batch(
        &self,
        consumer: &dyn Consumer,
        rows: Vec<DeliveryRow>,
        events: &HashMap<Uuid, OutboxRow>,
        limit: Duration,
    ) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(rows.len());
        let (mut handed, mut parsed) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
        for row in rows {
            match Event::from_outbox(&events[&row.event_id]) {
                Ok(event) => {
                    handed.push(row);
                    parsed.push(event);
                }
                Err(e) => outcomes.push((row, Err(e.to_string()))),
            }
        }
        let handled = tokio::time::timeout(limit, consumer.handle_batch(&parsed))
            .await
            .map_err(|_| format!("timed out after {limit:?}"));
        let results = crate::consumer::batch_outcomes(consumer.name(), parsed.len(), handled);
        outcomes.extend(handed.into_iter().zip(results));
        outcomes
            .into_iter()
            .map(|(row, result)| {
                let payload = events[&row.event_id].payload.clone();
                (row, payload, result)
            })
            .collect()
    }

    /// Hands one event to one consumer; the error, if it failed.
    async fn attempt(&self, row: &DeliveryRow, event_row: &OutboxRow, limit: Duration) -> Result<(), String> {
        let Some(consumer) = self.consumer(&row.consumer).cloned() else {
            return Err(format!("no consumer {} on this node", row.consumer));
        };
        let event = Event::from_outbox(event_row).map_err(|e| e.to_string())?;
        match tokio::time::timeout(limit, consumer.handle(&event)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("timed out after {limit:?}")),
        }
    }

    /// Records a round's outcomes in one transaction: the events' locks, every success
    /// in one update, each failure (retry or dead letter), leases given back for the
    /// deliveries not attempted, and `published_at` for events now done.
    async fn record(&self, results: Vec<Outcome>, skipped: &[Uuid]) -> Result<Round, BusError> {
        let mut round = Round::default();
        let now = Utc::now();
        let mut events: Vec<Uuid> = results.iter().map(|(row, _, _)| row.event_id).collect();
        let txn = self.db.platform_txn().await?;
        repo::lock_events(&txn, &events).await?;
        let ok: Vec<&DeliveryRow> = results.iter().filter(|(_, _, r)| r.is_ok()).map(|(row, _, _)| row).collect();
        let ok_ids: Vec<Uuid> = ok.iter().map(|r| r.id).collect();
        round.delivered = usize::try_from(repo::delivered(&txn, &ok_ids, &self.id, now).await?).unwrap_or(0);
        for row in ok {
            metrics::counter!("ecom_bus_delivered_total", "consumer" => row.consumer.clone()).increment(1);
        }
        for (row, payload, result) in results {
            let Err(error) = result else { continue };
            let labels = [("consumer", row.consumer.clone())];
            let error: String = error.chars().take(2000).collect();
            let attempts = u32::try_from(row.attempts).unwrap_or(0).saturating_add(1);
            if attempts >= self.settings.max_attempts {
                if repo::dead(&txn, &row, &self.id, &error, payload, now).await? {
                    tracing::warn!(event = %row.event_id, topic = %row.topic, consumer = %row.consumer,
                        attempts, error = %error, "bus delivery dead-lettered");
                    metrics::counter!("ecom_bus_dead_lettered_total", &labels).increment(1);
                    round.dead_lettered += 1;
                }
            } else {
                let next = now.add_std(self.settings.backoff(attempts));
                if repo::failed(&txn, row.id, &self.id, &error, next).await? {
                    tracing::info!(event = %row.event_id, topic = %row.topic, consumer = %row.consumer,
                        attempts, error = %error, retry_at = %next, "bus delivery failed; will retry");
                    metrics::counter!("ecom_bus_retried_total", &labels).increment(1);
                    round.retried += 1;
                }
            }
        }
        repo::LEASE.release(&txn, &self.id, skipped).await?;
        events.sort_unstable();
        events.dedup();
        repo::publish_done(&txn, &events, now).await?;
        txn.commit().await?;
        Ok(round)
    }
}

/// For tests: runs rounds until one does nothing, at most `max_rounds`.
pub async fn drain(relay: &Relay, max_rounds: usize) -> Result<Round, BusError> {
    let mut total = Round::default();
    for _ in 0..max_rounds {
        let r = relay.run_once().await?;
        if r.idle() {
            break;
        }
        total.dispatched += r.dispatched;
        total.delivered += r.delivered;
        total.retried += r.retried;
        total.dead_lettered += r.dead_lettered;
    }
    Ok(total)
}

/// `DateTime` arithmetic with a std `Duration`.
trait AddStd {
    fn add_std(self, d: Duration) -> Self;
}

impl AddStd for DateTime<Utc> {
    fn add_std(self, d: Duration) -> Self {
        self + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let s = RelaySettings {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            ..RelaySettings::default()
        };
        for (attempts, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (40, 1000)] {
            for _ in 0..50 {
                let d = s.backoff(attempts).as_millis();
                assert!(d <= full && d >= full / 2, "attempt {attempts}: {d} ms, expected {}..={full}", full / 2);
            }
        }
    }
}
