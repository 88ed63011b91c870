//! The dispatcher: leases due notification rows, sends them through their channel and
//! records what happened.
//!
//! Any number of dispatchers (one per `ecom serve`) may share a database: a row is
//! leased to one by a conditional update (`claimed_by`, `claimed_until`), the same way
//! the bus relay leases deliveries, so two never send a message at once; one that dies
//! mid-send loses its lease and another picks the row up. No transaction is held while
//! a message is on the wire. A round claims a batch in one conditional update, sends it
//! `concurrency` at a time and records the outcomes in one transaction, so the database
//! sees three transactions per batch, not per message.

use crate::{Channel, Outgoing, SendError};
use chrono::{DateTime, Utc};
use ecom_store::notifications::{self as repo, BodyRow, NotificationRow};
use ecom_store::{Db, StoreError};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How the dispatcher paces itself.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Attempts per message before it is marked failed.
    pub max_attempts: u32,
    /// Retry waits: the bus relay's capped exponential backoff with jitter (only its
    /// `backoff_base` and `backoff_max` are used).
    pub backoff: ecom_bus::RelaySettings,
    /// How long to sleep when there was nothing to do.
    pub poll: Duration,
    /// Messages claimed per round.
    pub batch: u64,
    /// How long a claimed message stays with its dispatcher; a send that takes longer
    /// is abandoned and counted as a failed attempt.
    pub lease: Duration,
    /// Messages sent at once.
    pub concurrency: usize,
    /// Messages per second each channel may send from this process.
    pub per_channel_per_sec: u32,
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
            per_channel_per_sec: 50,
        }
    }
}

/// The channels messages go out on, by kind, each with its send-rate limit.
#[derive(Clone, Default)]
pub struct Channels {
    by_kind: HashMap<&'static str, (Arc<dyn Channel>, Arc<DefaultDirectRateLimiter>)>,
}

impl Channels {
    /// Adds (or replaces) the channel for its kind, limited to `per_sec` messages a second.
    pub fn with(mut self, channel: Arc<dyn Channel>, per_sec: u32) -> Self {
        let rate = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        let limiter = Arc::new(RateLimiter::direct(Quota::per_second(rate)));
        self.by_kind.insert(channel.kind(), (channel, limiter));
        self
    }

    /// One line per channel, for the start-up log.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.by_kind.iter().map(|(k, (c, _))| format!("{k}: {}", c.describe())).collect();
        lines.sort();
        lines
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
}

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

    /// Runs rounds until the task is dropped or aborted; sleeps when idle.
    pub async fn run(self) {
        loop {
            let idle = match self.run_once().await {
                Ok(round) => round.idle(),
                Err(e) => {
                    tracing::warn!(error = %e, "notification round failed");
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

    /// Runs rounds until one finds nothing due (at most `max_rounds`): for one-off
    /// commands that queued mail, and tests.
    pub async fn drain(&self, max_rounds: usize) -> Result<Round, StoreError> {
        let mut total = Round::default();
        for _ in 0..max_rounds {
            let r = self.run_once().await?;
            if r.idle() {
                break;
            }
            total.sent += r.sent;
            total.retried += r.retried;
            total.failed += r.failed;
        }
        Ok(total)
    }

    /// One round: claims a batch of due messages (one conditional update), sends them,
    /// `concurrency` at a time, and records the outcomes (one transaction).
    pub async fn run_once(&self) -> Result<Round, StoreError> {
        let mut round = Round::default();
        self.sample().await?;
        let (claimed, mut bodies, until) = self.claim().await?;
        if claimed.is_empty() {
            return Ok(round);
        }
        let senders = self.senders(&claimed).await?;
        let mut claimed = claimed.into_iter();
        let mut results = Vec::with_capacity(claimed.len());
        let mut skipped = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.len() < self.settings.concurrency.max(1) {
                let Some(row) = claimed.next() else { break };
                // Started only with half the lease left, and cut off before it ends,
                // so that the outcome is recorded while this dispatcher holds it.
                let left = (until - Utc::now()).to_std().unwrap_or_default();
                if left < self.settings.lease / 2 {
                    skipped.push(row.id);
                    continue;
                }
                let from_name = row.tenant_id.and_then(|t| senders.get(&t).cloned());
                let body = bodies.remove(&row.id);
                let me = self.clone();
                let limit = left.saturating_sub(self.settings.lease / 4);
                tasks.spawn(async move {
                    let result = me.send(&row, body, from_name, limit).await;
                    (row, result)
                });
            }
            let Some(done) = tasks.join_next().await else { break };
            match done {
                Ok(r) => results.push(r),
                Err(e) => tracing::warn!(error = %e, "a notification task failed"),
            }
        }
        let recorded = self.record(results, &skipped).await?;
        round.sent = recorded.sent;
        round.retried = recorded.retried;
        round.failed = recorded.failed;
        Ok(round)
    }

    /// `ecom_notifications_failed`: messages that failed for good, waiting in the logs.
    async fn sample(&self) -> Result<(), StoreError> {
        let txn = self.db.platform_txn().await?;
        let failed = repo::count_failed(&txn, None).await?;
        txn.commit().await?;
        metrics::gauge!("ecom_notifications_failed").set(failed as f64);
        Ok(())
    }

    /// Leases a batch of due messages (`batch`, or fewer when the send-rate limit
    /// could not get through them within half the lease) and reads their bodies.
    async fn claim(&self) -> Result<(Vec<NotificationRow>, HashMap<Uuid, BodyRow>, DateTime<Utc>), StoreError> {
        let now = Utc::now();
        let until = add(now, self.settings.lease);
        let by_rate = u64::from(self.settings.per_channel_per_sec.max(1)) * (self.settings.lease.as_secs() / 2).max(1);
        let limit = self.settings.batch.min(by_rate).max(self.settings.concurrency.max(1) as u64);
        let txn = self.db.platform_txn().await?;
        let claimed = repo::LEASE.claim(&txn, &self.id, now, until, limit).await?;
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

    /// Sends one message through its channel; the provider's id, or why not.
    async fn send(
        &self,
        row: &NotificationRow,
        body: Option<BodyRow>,
        from_name: Option<String>,
        limit: Duration,
    ) -> Result<String, SendError> {
        let Some((channel, limiter)) = self.channels.by_kind.get(row.channel.as_str()) else {
            return Err(SendError::Transient(format!("no {} channel is configured on this node", row.channel)));
        };
        let Some(body) = body else {
            return Err(SendError::Permanent("the message's body is missing".into()));
        };
        limiter.until_ready().await;
        let message = Outgoing {
            id: row.id,
            tenant: row.tenant_id.map(ecom_core::TenantId),
            from_name,
            to: row.recipient.clone(),
            subject: row.subject.clone(),
            headers: repo::headers_of(&body),
            text: body.body_text,
            html: body.body_html,
            link: row.link.clone(),
        };
        match tokio::time::timeout(limit, channel.send(&message)).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Transient(format!("timed out after {limit:?}"))),
        }
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

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
