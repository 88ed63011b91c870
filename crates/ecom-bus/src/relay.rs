//! The embedded relay: hands outbox events to the in-process consumers, at least once,
//! with per-consumer retries, exponential backoff and dead letters.
//!
//! Several processes may run it against one database. A round leases a batch of new
//! events (a conditional update of the outbox rows' `claimed_by`, `claimed_until`)
//! and hands each to every consumer of its topic; an (event, consumer) pair gets a
//! row in `bus_deliveries` only when its first attempt did not succeed (or was not
//! made), written in the transaction that marks the events fanned out and records
//! the round, so a success costs no delivery row at all. Rows are leased to one relay
//! the same way when they are due again, so two relays never attempt the same
//! delivery at once, and a relay that dies mid-round loses its leases and another
//! takes the events or deliveries up. Consumers' receipts turn the resulting
//! at-least-once delivery into exactly-once effects.
//!
//! Every node must run the same set of consumers (the same binary): an event is
//! fanned out once, to the consumers of the node that does it.

use crate::consumer::Consumer;
use crate::events::{Event, Topic};
use chrono::{DateTime, Utc};
use ecom_store::bus::{self as repo, DeliveryRow, OutboxRow};
use ecom_store::{Db, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
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
    /// New events leased, and due deliveries claimed, per round.
    pub batch: u64,
    /// How long a leased batch (events and deliveries) stays with its relay. An
    /// attempt starts only while half of it is left and is cut off (counted as failed)
    /// with a quarter left, so outcomes are recorded while the relay still holds them.
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

/// The bus gauges: `ecom_outbox_lag_seconds` (age of the oldest event not yet
/// published) and `ecom_bus_dead_letters` (how many wait in the panel). Sampled at
/// most every [`Gauges::EVERY`] while the relay is busy, and whenever it goes idle:
/// with a backlog on PostgreSQL, the oldest-unpublished query walks the index
/// entries of every event published since the last vacuum — 100–250 ms with a
/// million events in flight, measured — which, once a round, held up the rounds.
#[derive(Clone)]
pub(crate) struct Gauges {
    db: Db,
    last: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl Gauges {
    pub(crate) const EVERY: Duration = Duration::from_secs(5);

    pub(crate) fn new(db: Db) -> Self {
        Self { db, last: Arc::new(std::sync::Mutex::new(None)) }
    }

    /// Samples both gauges if `idle` or the last sample is [`Self::EVERY`] old.
    pub(crate) async fn sample(&self, idle: bool) -> Result<(), StoreError> {
        {
            let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !idle && last.is_some_and(|t| t.elapsed() < Self::EVERY) {
                return Ok(());
            }
            *last = Some(std::time::Instant::now());
        }
        let txn = self.db.platform_txn().await?;
        let oldest = repo::oldest_unpublished(&txn).await?;
        let dead = repo::count_dead_letters(&txn, None).await?;
        txn.commit().await?;
        let lag = oldest.map_or(0.0, |t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0);
        metrics::gauge!("ecom_outbox_lag_seconds").set(lag);
        metrics::gauge!("ecom_bus_dead_letters").set(dead as f64);
        Ok(())
    }
}

/// Where a relay's next lease of new events starts: after the last event it leased,
/// so that the pick does not walk the index entries of the events already fanned out
/// (PostgreSQL keeps them until vacuum: 100–450 ms a pick with a million events in
/// flight, measured). Back to the start when a pick comes back short and at least
/// every [`Cursor::RESTART`], so that an event whose transaction committed after later
/// ones' (its time is older), or that another relay leased and then lost, is taken
/// all the same.
#[derive(Clone)]
pub(crate) struct Cursor {
    /// The (time, id) to start after, and when the cursor last started from the beginning.
    at: Arc<std::sync::Mutex<(Option<Position>, std::time::Instant)>>,
}

/// An outbox event's place in (time, id) order.
type Position = (DateTime<Utc>, Uuid);

impl Cursor {
    pub(crate) const RESTART: Duration = Duration::from_secs(30);

    pub(crate) fn new() -> Self {
        Self { at: Arc::new(std::sync::Mutex::new((None, std::time::Instant::now()))) }
    }

    /// Where the next pick starts.
    pub(crate) fn get(&self) -> Option<Position> {
        let mut at = self.at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if at.1.elapsed() >= Self::RESTART {
            *at = (None, std::time::Instant::now());
        }
        at.0
    }

    /// The next pick starts from the beginning (events handed back, a round failed).
    pub(crate) fn restart(&self) {
        self.at.lock().unwrap_or_else(std::sync::PoisonError::into_inner).0 = None;
    }

    /// After a pick of up to `limit` that got `leased` (in (time, id) order).
    pub(crate) fn advance(&self, leased: &[OutboxRow], limit: u64) {
        let mut at = self.at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        at.0 = match leased.last() {
            Some(last) if leased.len() as u64 >= limit => Some((last.created_at, last.id)),
            _ => None,
        };
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub dispatched: usize,
    pub delivered: usize,
    pub retried: usize,
    pub dead_lettered: usize,
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
    gauges: Gauges,
    cursor: Cursor,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Relay {
    pub fn new(db: Db, consumers: Vec<Arc<dyn Consumer>>, settings: RelaySettings) -> Self {
        let id = format!("relay-{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
        let gauges = Gauges::new(db.clone());
        let (consumers, settings, id) = (Arc::new(consumers), Arc::new(settings), id.into());
        Self { db, consumers, settings, id, gauges, cursor: Cursor::new() }
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
                    self.cursor.restart();
                    true
                }
            };
            if idle {
                if let Err(e) = self.gauges.sample(true).await {
                    tracing::warn!(error = %e, "sampling the outbox lag failed");
                }
                tokio::time::sleep(self.settings.poll).await;
            }
        }
    }

    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// One round: samples the lag, leases a batch of new events and a batch of due
    /// deliveries (one transaction), hands them to their consumers — a batching
    /// consumer its events together, the others one by one, `concurrency` at a time —
    /// and records the outcomes (one transaction).
    pub async fn run_once(&self) -> Result<Round, BusError> {
        let mut round = Round::default();
        self.gauges.sample(false).await?;
        let Work { rows, fresh, dispatched, until, events } = self.claim().await?;
        round.dispatched = dispatched;
        if rows.is_empty() {
            return Ok(round);
        }
        let events = Arc::new(events);
        let mut results = Vec::with_capacity(rows.len());
        let mut skipped = Vec::new();
        // A batching consumer gets its deliveries together, in one task; the others'
        // go one by one, `concurrency` at a time.
        let mut batches: Vec<(Arc<dyn Consumer>, Vec<DeliveryRow>)> = Vec::new();
        let mut singles = Vec::new();
        for row in rows {
            if !events.contains_key(&row.event_id) {
                skipped.push(row);
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
                skipped.extend(rows);
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
                    skipped.push(row);
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
        let recorded = self.record(results, skipped, &fresh).await?;
        round.delivered = recorded.delivered;
        round.retried = recorded.retried;
        round.dead_lettered = recorded.dead_lettered;
        Ok(round)
    }

    /// Leases a batch of new events and makes their deliveries — one per consumer of
    /// the topic, in memory only; publishes at once the events no consumer wants —
    /// and claims a batch of due deliveries of this relay's consumers, with their
    /// events. One transaction.
    async fn claim(&self) -> Result<Work, BusError> {
        let now = Utc::now();
        let until = now.add_std(self.settings.lease);
        let names: Vec<&str> = self.consumers.iter().map(|c| c.name()).collect();
        let txn = self.db.platform_txn().await?;
        let leased =
            repo::claim_unpublished(&txn, &self.id, now, until, self.settings.batch, self.cursor.get()).await?;
        self.cursor.advance(&leased, self.settings.batch);
        let dispatched = leased.len();
        let mut rows = Vec::new();
        let mut fresh = Fresh::default();
        let mut unwanted = Vec::new();
        for event in &leased {
            let before = rows.len();
            match Topic::parse(&event.topic) {
                Ok(topic) => {
                    for c in self.consumers.iter().filter(|c| c.topics().contains(&topic)) {
                        rows.push(self.first_delivery(event, c.name(), now, until));
                    }
                }
                Err(e) => tracing::warn!(event = %event.id, error = %e, "outbox event not routed"),
            }
            if rows.len() == before {
                unwanted.push(event.id);
            } else {
                fresh.events.push(event.id);
            }
        }
        fresh.rows = rows.iter().map(|r| r.id).collect();
        repo::mark_published(&txn, &self.id, &unwanted, now).await?;
        let claimed = repo::claim_due(&txn, &names, &self.id, now, until, self.settings.batch).await?;
        let mut ids: Vec<Uuid> = claimed.iter().map(|r| r.event_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut events: HashMap<Uuid, OutboxRow> = leased.into_iter().map(|e| (e.id, e)).collect();
        ids.retain(|id| !events.contains_key(id));
        events.extend(repo::events(&txn, &ids).await?.into_iter().map(|e| (e.id, e)));
        txn.commit().await?;
        rows.extend(claimed);
        Ok(Work { rows, fresh, dispatched, until, events })
    }

    /// The first delivery of a leased event to a consumer, as its row would be if it
    /// were written, held by this relay.
    fn first_delivery(
        &self,
        event: &OutboxRow,
        consumer: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> DeliveryRow {
        DeliveryRow {
            id: Uuid::now_v7(),
            tenant_id: event.tenant_id,
            event_id: event.id,
            consumer: consumer.to_owned(),
            topic: event.topic.clone(),
            status: repo::PENDING.to_owned(),
            attempts: 0,
            next_attempt_at: now,
            claimed_by: self.id.to_string(),
            claimed_until: Some(until),
            last_error: String::new(),
            delivered_at: None,
            created_at: now,
        }
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

    /// Records a round's outcomes in one transaction. First the deliveries of the new
    /// events that did not succeed (or were not attempted) are written, held by this
    /// relay, so that from there they take the claimed ones' path: the events' locks,
    /// every success in one update (a first-time success has no row to update), each
    /// failure (retry or dead letter), leases given back for the deliveries not
    /// attempted. Then the new events are marked fanned out — and published when all
    /// their deliveries succeeded — and the claimed ones' events published if done.
    async fn record(&self, results: Vec<Outcome>, skipped: Vec<DeliveryRow>, fresh: &Fresh) -> Result<Round, BusError> {
        let mut round = Round::default();
        let now = Utc::now();
        let is_fresh = |row: &DeliveryRow| fresh.rows.contains(&row.id);
        let unfinished: Vec<&DeliveryRow> = results
            .iter()
            .filter(|(row, _, r)| r.is_err() && is_fresh(row))
            .map(|(row, _, _)| row)
            .chain(skipped.iter().filter(|row| is_fresh(row)))
            .collect();
        // Events with a delivery still to succeed.
        let open: HashSet<Uuid> = unfinished.iter().map(|r| r.event_id).collect();
        let mut events: Vec<Uuid> =
            results.iter().map(|(row, _, _)| row).filter(|row| !is_fresh(row)).map(|row| row.event_id).collect();
        let txn = self.db.platform_txn().await?;
        repo::add_held_deliveries(&txn, &unfinished).await?;
        repo::lock_events(&txn, &events).await?;
        let ok: Vec<&DeliveryRow> = results.iter().filter(|(_, _, r)| r.is_ok()).map(|(row, _, _)| row).collect();
        let ok_ids: Vec<Uuid> = ok.iter().filter(|row| !is_fresh(row)).map(|r| r.id).collect();
        let firsts = ok.len() - ok_ids.len();
        round.delivered = firsts + usize::try_from(repo::delivered(&txn, &ok_ids, &self.id, now).await?).unwrap_or(0);
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
                    // A dead letter is done with: the event may be published.
                    if is_fresh(&row) {
                        events.push(row.event_id);
                    }
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
        let skipped: Vec<Uuid> = skipped.iter().map(|r| r.id).collect();
        repo::LEASE.release(&txn, &self.id, &skipped).await?;
        let (done, partly): (Vec<Uuid>, Vec<Uuid>) = fresh.events.iter().copied().partition(|id| !open.contains(id));
        repo::mark_published(&txn, &self.id, &done, now).await?;
        repo::mark_dispatched(&txn, &self.id, &partly, now).await?;
        events.sort_unstable();
        events.dedup();
        repo::publish_done(&txn, &events, now).await?;
        txn.commit().await?;
        Ok(round)
    }
}

/// What a round attempts.
struct Work {
    /// The deliveries: those of the new events (not yet rows) and the due ones claimed.
    rows: Vec<DeliveryRow>,
    fresh: Fresh,
    /// New events leased, including those no consumer wants (already published).
    dispatched: usize,
    /// When the leases run out.
    until: DateTime<Utc>,
    /// The events of `rows`.
    events: HashMap<Uuid, OutboxRow>,
}

/// The new events of a round that some consumer wants, and their deliveries' ids.
#[derive(Default)]
struct Fresh {
    events: Vec<Uuid>,
    rows: HashSet<Uuid>,
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
