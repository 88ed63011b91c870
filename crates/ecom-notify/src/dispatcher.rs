//! The dispatcher: leases due notification rows, sends them through their channel and
//! records what happened.
//!
//! Any number of dispatchers (one per `ecom serve`) may share a database: a row is
//! leased to one by a conditional update (`claimed_by`, `claimed_until`), the same way
//! the bus relay leases deliveries, so two never send a message at once; one that dies
//! mid-send loses its lease and another picks the row up. No transaction is held while
//! a message is on the wire.

use crate::{Channel, Outgoing, SendError};
use chrono::{DateTime, Utc};
use ecom_store::notifications::{self as repo};
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
            batch: 32,
            lease: Duration::from_secs(60),
            concurrency: 4,
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

enum Outcome {
    Sent,
    Retry,
    Failed,
    LostLease,
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

    /// One round: claims due messages and sends them, a few at a time.
    pub async fn run_once(&self) -> Result<Round, StoreError> {
        let mut round = Round::default();
        self.sample().await?;
        let mut claimed = self.claim().await?.into_iter();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.len() < self.settings.concurrency.max(1) {
                let Some(id) = claimed.next() else { break };
                let me = self.clone();
                tasks.spawn(async move { me.attempt(id).await });
            }
            let Some(done) = tasks.join_next().await else { break };
            match done {
                Ok(Ok(Outcome::Sent)) => round.sent += 1,
                Ok(Ok(Outcome::Retry)) => round.retried += 1,
                Ok(Ok(Outcome::Failed)) => round.failed += 1,
                Ok(Ok(Outcome::LostLease)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "recording a notification attempt failed"),
                Err(e) => tracing::warn!(error = %e, "a notification task failed"),
            }
        }
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

    /// Leases up to `concurrency` due messages whose channel this process has: a
    /// message leased beyond that would wait for a turn while its lease runs out.
    async fn claim(&self) -> Result<Vec<Uuid>, StoreError> {
        let now = Utc::now();
        let until = add(now, self.settings.lease);
        let txn = self.db.platform_txn().await?;
        let due = repo::due(&txn, now, self.settings.batch).await?;
        let mut claimed = Vec::new();
        for id in due {
            if claimed.len() >= self.settings.concurrency.max(1) {
                break;
            }
            if repo::claim(&txn, id, &self.id, now, until).await? {
                claimed.push(id);
            }
        }
        txn.commit().await?;
        Ok(claimed)
    }

    async fn attempt(&self, id: Uuid) -> Result<Outcome, StoreError> {
        let txn = self.db.platform_txn().await?;
        let row = repo::get(&txn, id).await?;
        txn.commit().await?;
        let Some(row) = row else { return Ok(Outcome::LostLease) };
        // Store mail is sent in the store's name, from the platform's address.
        let from_name = match row.tenant_id {
            Some(t) => ecom_store::tenants::find_by_id(&self.db, ecom_core::TenantId(t)).await?.map(|t| t.name),
            None => None,
        };
        let result = match self.channels.by_kind.get(row.channel.as_str()) {
            None => Err(SendError::Transient(format!("no {} channel is configured on this node", row.channel))),
            Some((channel, limiter)) => {
                limiter.until_ready().await;
                let message = Outgoing {
                    id: row.id,
                    tenant: row.tenant_id.map(ecom_core::TenantId),
                    from_name,
                    to: row.recipient.clone(),
                    subject: row.subject.clone(),
                    text: row.body_text.clone(),
                    html: row.body_html.clone(),
                    headers: repo::headers_of(&row),
                    link: row.link.clone(),
                };
                match tokio::time::timeout(self.settings.lease, channel.send(&message)).await {
                    Ok(r) => r,
                    Err(_) => Err(SendError::Transient(format!("timed out after {:?}", self.settings.lease))),
                }
            }
        };
        let labels = [("channel", row.channel.clone())];
        let now = Utc::now();
        let txn = self.db.platform_txn().await?;
        let outcome = match result {
            Ok(provider_id) => {
                if !repo::sent(&txn, id, &self.id, &provider_id, now).await? {
                    return Ok(Outcome::LostLease);
                }
                tracing::info!(notification = %id, channel = %row.channel, template = %row.template,
                    tenant.id = row.tenant_id.map(|t| t.to_string()), provider_id = %provider_id, "notification sent");
                metrics::counter!("ecom_notifications_sent_total", &labels).increment(1);
                Outcome::Sent
            }
            Err(e) => {
                let error: String = e.to_string().chars().take(2000).collect();
                let attempts = u32::try_from(row.attempts).unwrap_or(0).saturating_add(1);
                if !e.is_transient() || attempts >= self.settings.max_attempts {
                    if !repo::attempt_failed(&txn, id, &self.id, &error, None).await? {
                        return Ok(Outcome::LostLease);
                    }
                    tracing::warn!(notification = %id, channel = %row.channel, template = %row.template,
                        attempts, error = %error, "notification failed for good");
                    metrics::counter!("ecom_notifications_failed_total", &labels).increment(1);
                    Outcome::Failed
                } else {
                    let next = add(now, self.settings.backoff.backoff(attempts));
                    if !repo::attempt_failed(&txn, id, &self.id, &error, Some(next)).await? {
                        return Ok(Outcome::LostLease);
                    }
                    tracing::info!(notification = %id, channel = %row.channel, attempts, error = %error,
                        retry_at = %next, "notification not sent; will retry");
                    metrics::counter!("ecom_notifications_retried_total", &labels).increment(1);
                    Outcome::Retry
                }
            }
        };
        txn.commit().await?;
        Ok(outcome)
    }
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
