//! The dispatcher: leases due notification rows, sends them through their channel and
//! records what happened.
//!
//! Any number of dispatchers (one per `ecom serve`) may share a database: a row is
//! leased to one by a conditional update (`claimed_by`, `claimed_until`), the same way
//! the bus relay leases deliveries, so two never send a message at once; one that dies
//! mid-send loses its lease and another picks the row up. No transaction is held while
//! a message is on the wire.
//!
//! A dispatcher runs one lane per channel it has. A lane's round claims a batch of its
//! own channel's due messages in one conditional update, sends them — `concurrency` at
//! a time, or, for a channel that takes a batch at once (in-app, which files a few
//! hundred items in one transaction), a chunk at a time — and records the outcomes in
//! one transaction: three transactions per batch, not per message. Lanes run side by
//! side, so a provider that is slow, down or held to a low send rate (texts at 10 a
//! second) delays its own messages and nobody else's. A message for a channel this
//! node does not have waits for a node that has it.

use crate::{Channel, Outgoing, SendError};
use chrono::{DateTime, Utc};
use ecom_store::notifications::{self as repo, BodyRow, NotificationRow};
use ecom_store::{Db, StoreError};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use uuid::Uuid;

/// How the dispatcher paces itself.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Attempts per message before it is marked failed.
    pub max_attempts: u32,
    /// Retry waits: the bus relay's capped exponential backoff with jitter (only its
    /// `backoff_base` and `backoff_max` are used).
    pub backoff: ecom_bus::RelaySettings,
    /// How long a lane sleeps when it had nothing to do.
    pub poll: Duration,
    /// Messages a lane claims per round.
    pub batch: u64,
    /// How long a claimed message stays with its dispatcher; a send that takes longer
    /// is abandoned and counted as a failed attempt.
    pub lease: Duration,
    /// Messages a lane sends at once (channels that send one at a time).
    pub concurrency: usize,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff: ecom_bus::RelaySettings::default(),
            poll: Duration::from_millis(500),
            batch: 1024,
            lease: Duration::from_secs(60),
            concurrency: 16,
        }
    }
}

/// Messages handed at once to a channel that takes batches ([`Channel::batches`]).
const SEND_CHUNK: usize = 500;

/// A channel with its send-rate limit.
#[derive(Clone)]
struct Lane {
    channel: Arc<dyn Channel>,
    limiter: Arc<DefaultDirectRateLimiter>,
    per_sec: NonZeroU32,
}

/// The channels messages go out on, by kind, each with its send-rate limit.
#[derive(Clone, Default)]
pub struct Channels {
    by_kind: HashMap<&'static str, Lane>,
}

impl Channels {
    /// Adds (or replaces) the channel for its kind, limited to `per_sec` messages a second.
    pub fn with(mut self, channel: Arc<dyn Channel>, per_sec: u32) -> Self {
        let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        let limiter = Arc::new(RateLimiter::direct(Quota::per_second(per_sec)));
        self.by_kind.insert(channel.kind(), Lane { channel, limiter, per_sec });
        self
    }

    /// One line per channel, for the start-up log.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> =
            self.by_kind.iter().map(|(k, lane)| format!("{k}: {}", lane.channel.describe())).collect();
        lines.sort();
        lines
    }

    fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = self.by_kind.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

impl Round {
    fn idle(&self) -> bool {
        *self == Round::default()
    }

    fn add(&mut self, other: Round) {
        self.sent += other.sent;
        self.retried += other.retried;
        self.failed += other.failed;
    }
}

/// A lane's claimed messages, their bodies, the names of their stores, and when the
/// lease on them ends.
struct Claimed {
    rows: Vec<NotificationRow>,
    bodies: HashMap<Uuid, BodyRow>,
    senders: HashMap<Uuid, String>,
    until: DateTime<Utc>,
}

/// What a lane's sending gave: an outcome per message attempted, and the messages it
/// did not get to (their leases are given back).
type Sent = (Vec<(NotificationRow, Result<String, SendError>)>, Vec<Uuid>);

/// The dispatcher. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    db: Db,
    channels: Channels,
    settings: Arc<DispatchSettings>,
    id: Arc<str>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Dispatcher {
    pub fn new(db: Db, channels: Channels, settings: DispatchSettings) -> Self {
        let id = format!("notify-{}-{}", std::process::id(), Uuid::now_v7().simple());
        Self { db, channels, settings: Arc::new(settings), id: id.into() }
    }

    /// Runs every lane, and the failed-message gauge, until the task is dropped or
    /// aborted (which ends the lanes with it). A lane that panics is started again;
    /// the messages it held go out once their lease runs out.
    pub async fn run(self) {
        let mut lanes = JoinSet::new();
        let mut kinds = HashMap::new();
        let start = |lanes: &mut JoinSet<()>, kinds: &mut HashMap<tokio::task::Id, &'static str>, kind| {
            let me = self.clone();
            kinds.insert(lanes.spawn(async move { me.run_lane(kind).await }).id(), kind);
        };
        for kind in self.channels.kinds() {
            start(&mut lanes, &mut kinds, kind);
        }
        let me = self.clone();
        lanes.spawn(async move {
            loop {
                if let Err(e) = me.sample().await {
                    tracing::warn!(error = %e, "counting failed notifications failed");
                }
                tokio::time::sleep(me.settings.poll.max(Duration::from_secs(1))).await;
            }
        });
        while let Some(ended) = lanes.join_next_with_id().await {
            let Err(e) = ended else { continue };
            let Some(kind) = kinds.remove(&e.id()) else {
                tracing::error!(error = %e, "the notification gauge stopped");
                continue;
            };
            tracing::error!(error = %e, channel = kind, "a notification lane stopped; starting it again");
            start(&mut lanes, &mut kinds, kind);
        }
    }

    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// One lane's rounds, for ever; sleeps when idle.
    async fn run_lane(&self, kind: &'static str) {
        loop {
            let idle = match self.lane_round(kind).await {
                Ok(round) => round.idle(),
                Err(e) => {
                    tracing::warn!(error = %e, channel = kind, "notification round failed");
                    true
                }
            };
            if idle {
                tokio::time::sleep(self.settings.poll).await;
            }
        }
    }

    /// Runs rounds until one finds nothing due (at most `max_rounds`): for one-off
    /// commands that queued mail, and tests.
    pub async fn drain(&self, max_rounds: usize) -> Result<Round, StoreError> {
        let mut total = Round::default();
        for _ in 0..max_rounds {
            let r = self.run_once().await?;
            if r.idle() {
                break;
            }
            total.add(r);
        }
        Ok(total)
    }

    /// One round of every lane, side by side.
    pub async fn run_once(&self) -> Result<Round, StoreError> {
        self.sample().await?;
        let mut lanes = JoinSet::new();
        for kind in self.channels.kinds() {
            let me = self.clone();
            lanes.spawn(async move { me.lane_round(kind).await });
        }
        let mut total = Round::default();
        let mut failure = None;
        while let Some(done) = lanes.join_next().await {
            match done {
                Ok(Ok(round)) => total.add(round),
                Ok(Err(e)) => failure = Some(e),
                Err(e) => tracing::error!(error = %e, "a notification round stopped"),
            }
        }
        failure.map_or(Ok(total), Err)
    }

    /// One round of the `kind` lane: claims a batch of its due messages (one
    /// conditional update), sends them and records the outcomes (one transaction).
    async fn lane_round(&self, kind: &'static str) -> Result<Round, StoreError> {
        let Some(lane) = self.channels.by_kind.get(kind) else { return Ok(Round::default()) };
        let (rows, bodies, until) = self.claim(kind, lane).await?;
        if rows.is_empty() {
            return Ok(Round::default());
        }
        let senders = self.senders(&rows).await?;
        let batch = Claimed { rows, bodies, senders, until };
        let (results, skipped) = if lane.channel.batches() {
            self.send_batches(lane, batch).await
        } else {
            self.send_each(lane, batch).await
        };
        self.record(results, &skipped).await
    }

    /// `ecom_notifications_failed`: messages that failed for good, waiting in the logs.
    async fn sample(&self) -> Result<(), StoreError> {
        let txn = self.db.platform_txn().await?;
        let failed = repo::count_failed(&txn, None).await?;
        txn.commit().await?;
        metrics::gauge!("ecom_notifications_failed").set(failed as f64);
        Ok(())
    }

    /// Leases a batch of the lane's due messages (`batch`, or fewer when its send-rate
    /// limit could not get through them within half the lease) and reads their bodies.
    async fn claim(
        &self,
        kind: &str,
        lane: &Lane,
    ) -> Result<(Vec<NotificationRow>, HashMap<Uuid, BodyRow>, DateTime<Utc>), StoreError> {
        let now = Utc::now();
        let until = add(now, self.settings.lease);
        let by_rate = u64::from(lane.per_sec.get()) * (self.settings.lease.as_secs() / 2).max(1);
        let limit = self.settings.batch.min(by_rate).max(self.settings.concurrency.max(1) as u64);
        let txn = self.db.platform_txn().await?;
        let claimed = repo::claim(&txn, kind, &self.id, now, until, limit).await?;
        let ids: Vec<Uuid> = claimed.iter().map(|r| r.id).collect();
        let bodies = repo::bodies(&txn, &ids).await?;
        txn.commit().await?;
        Ok((claimed, bodies, until))
    }

    /// Store mail is sent in the store's name, from the platform's address: the names
    /// of the stores in a batch, read once.
    async fn senders(&self, rows: &[NotificationRow]) -> Result<HashMap<Uuid, String>, StoreError> {
        let mut names = HashMap::new();
        for t in rows.iter().filter_map(|r| r.tenant_id) {
            if !names.contains_key(&t)
                && let Some(store) = ecom_store::tenants::find_by_id(&self.db, ecom_core::TenantId(t)).await?
            {
                names.insert(t, store.name);
            }
        }
        Ok(names)
    }

    /// How long a send may still take, or `None` when the lease has less than half
    /// left: a send starts only with half the lease left and is cut off before it
    /// ends, so that its outcome is recorded while this dispatcher holds the message.
    fn time_left(&self, until: DateTime<Utc>) -> Option<Duration> {
        let left = (until - Utc::now()).to_std().unwrap_or_default();
        (left >= self.settings.lease / 2).then(|| left.saturating_sub(self.settings.lease / 4))
    }

    /// Sends a lane's messages one by one, `concurrency` at a time.
    async fn send_each(&self, lane: &Lane, batch: Claimed) -> Sent {
        let Claimed { rows, mut bodies, senders, until } = batch;
        let mut claimed = rows.into_iter();
        let mut results = Vec::with_capacity(claimed.len());
        let mut skipped = Vec::new();
        let mut tasks = JoinSet::new();
        loop {
            while tasks.len() < self.settings.concurrency.max(1) {
                let Some(row) = claimed.next() else { break };
                let Some(limit) = self.time_left(until) else {
                    skipped.push(row.id);
                    continue;
                };
                let message = outgoing(&row, bodies.remove(&row.id), &senders);
                let lane = lane.clone();
                tasks.spawn(async move {
                    let result = match message {
                        Ok(m) => {
                            lane.limiter.until_ready().await;
                            within(limit, lane.channel.send(&m)).await
                        }
                        Err(e) => Err(e),
                    };
                    (row, result)
                });
            }
            let Some(done) = tasks.join_next().await else { break };
            match done {
                Ok(r) => results.push(r),
                Err(e) => tracing::warn!(error = %e, "a notification task failed"),
            }
        }
        (results, skipped)
    }

    /// Sends a lane's messages a chunk at a time, for a channel that takes batches.
    async fn send_batches(&self, lane: &Lane, batch: Claimed) -> Sent {
        let Claimed { rows, mut bodies, senders, until } = batch;
        let chunk = SEND_CHUNK.min(lane.per_sec.get() as usize);
        let mut results = Vec::with_capacity(rows.len());
        let mut skipped = Vec::new();
        let mut claimed = rows.into_iter().peekable();
        while claimed.peek().is_some() {
            let rows: Vec<NotificationRow> = claimed.by_ref().take(chunk).collect();
            let Some(limit) = self.time_left(until) else {
                skipped.extend(rows.iter().map(|r| r.id));
                continue;
            };
            let mut ready = Vec::with_capacity(rows.len());
            let mut messages = Vec::with_capacity(rows.len());
            for row in rows {
                match outgoing(&row, bodies.remove(&row.id), &senders) {
                    Ok(m) => {
                        ready.push(row);
                        messages.push(m);
                    }
                    Err(e) => results.push((row, Err(e))),
                }
            }
            let Some(n) = u32::try_from(messages.len()).ok().and_then(NonZeroU32::new) else { continue };
            // Never more than the limiter's burst (`chunk` is at most the rate).
            let _ = lane.limiter.until_n_ready(n).await;
            let mut outcomes = match tokio::time::timeout(limit, lane.channel.send_many(&messages)).await {
                Ok(outcomes) => outcomes.into_iter(),
                Err(_) => Vec::new().into_iter(),
            };
            for row in ready {
                let outcome = outcomes
                    .next()
                    .unwrap_or_else(|| Err(SendError::Transient(format!("no outcome within {limit:?}"))));
                results.push((row, outcome));
            }
        }
        (results, skipped)
    }

    /// Records a round's outcomes in one transaction: every success in one update per
    /// few hundred, each failure (retry or failed for good), and leases given back for
    /// the messages not attempted.
    async fn record(
        &self,
        results: Vec<(NotificationRow, Result<String, SendError>)>,
        skipped: &[Uuid],
    ) -> Result<Round, StoreError> {
        let mut round = Round::default();
        let now = Utc::now();
        let txn = self.db.platform_txn().await?;
        let sent: Vec<(Uuid, String)> =
            results.iter().filter_map(|(row, r)| r.as_ref().ok().map(|pid| (row.id, pid.clone()))).collect();
        round.sent = usize::try_from(repo::sent(&txn, &self.id, &sent, now).await?).unwrap_or(0);
        for (row, result) in results {
            let labels = [("channel", row.channel.clone())];
            let e = match result {
                Ok(provider_id) => {
                    tracing::debug!(notification = %row.id, channel = %row.channel, template = %row.template,
                        tenant.id = row.tenant_id.map(|t| t.to_string()), provider_id = %provider_id, "notification sent");
                    metrics::counter!("ecom_notifications_sent_total", &labels).increment(1);
                    continue;
                }
                Err(e) => e,
            };
            let error: String = e.to_string().chars().take(2000).collect();
            let attempts = u32::try_from(row.attempts).unwrap_or(0).saturating_add(1);
            if !e.is_transient() || attempts >= self.settings.max_attempts {
                if repo::attempt_failed(&txn, row.id, &self.id, &error, None).await? {
                    tracing::warn!(notification = %row.id, channel = %row.channel, template = %row.template,
                        attempts, error = %error, "notification failed for good");
                    metrics::counter!("ecom_notifications_failed_total", &labels).increment(1);
                    round.failed += 1;
                }
            } else {
                let next = add(now, self.settings.backoff.backoff(attempts));
                if repo::attempt_failed(&txn, row.id, &self.id, &error, Some(next)).await? {
                    tracing::info!(notification = %row.id, channel = %row.channel, attempts, error = %error,
                        retry_at = %next, "notification not sent; will retry");
                    metrics::counter!("ecom_notifications_retried_total", &labels).increment(1);
                    round.retried += 1;
                }
            }
        }
        repo::LEASE.release(&txn, &self.id, skipped).await?;
        txn.commit().await?;
        Ok(round)
    }
}

/// The message a queue row asks for, or why it cannot be sent.
fn outgoing(
    row: &NotificationRow,
    body: Option<BodyRow>,
    senders: &HashMap<Uuid, String>,
) -> Result<Outgoing, SendError> {
    let Some(body) = body else {
        return Err(SendError::Permanent("the message's body is missing".into()));
    };
    Ok(Outgoing {
        id: row.id,
        tenant: row.tenant_id.map(ecom_core::TenantId),
        from_name: row.tenant_id.and_then(|t| senders.get(&t).cloned()),
        to: row.recipient.clone(),
        subject: row.subject.clone(),
        headers: repo::headers_of(&body),
        text: body.body_text,
        html: body.body_html,
        link: row.link.clone(),
    })
}

/// A send cut off after `limit`.
async fn within(
    limit: Duration,
    send: impl std::future::Future<Output = Result<String, SendError>>,
) -> Result<String, SendError> {
    match tokio::time::timeout(limit, send).await {
        Ok(r) => r,
        Err(_) => Err(SendError::Transient(format!("timed out after {limit:?}"))),
    }
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
