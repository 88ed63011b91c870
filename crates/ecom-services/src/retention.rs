//! The retention pruner: every so often one node (it takes the `retention` job lease)
//! deletes what is done and old — see [`ecom_store::retention`] — in small batches,
//! each in its own short transaction, so it never holds a long lock. `ecom serve` runs
//! it in the background; `ecom prune` runs one pass with progress output.

use chrono::{DateTime, Utc};
use ecom_store::retention::{self as repo, Part};
use ecom_store::{Db, StoreError};
use std::time::Duration;

/// The job's name in `job_leases`.
pub const JOB: &str = "retention";

/// How long the pruner keeps things.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// Delivered deliveries, receipts, sent notifications and the dev mailbox are kept
    /// this many days; 0 keeps them forever.
    pub days: u32,
    /// Idempotency keys are kept this long (24 h, as Stripe does), whatever `days` is.
    pub idempotency_keys: Duration,
    /// Rows deleted per transaction.
    pub batch: u64,
    /// Pause between batches, so requests get the database in between.
    pub pause: Duration,
    /// How often a pass runs in `ecom serve`.
    pub every: Duration,
    /// How long the job lease lasts; renewed after every batch.
    pub lease: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            days: 30,
            idempotency_keys: Duration::from_secs(24 * 3600),
            batch: 1_000,
            pause: Duration::from_millis(10),
            every: Duration::from_secs(3600),
            lease: Duration::from_secs(300),
        }
    }
}

impl RetentionSettings {
    /// The cutoff for `part` at `now`: rows older than it go; `None` keeps them.
    pub fn cutoff(&self, part: Part, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let keep = match part {
            Part::IdempotencyKeys => self.idempotency_keys,
            _ if self.days == 0 => return None,
            _ => Duration::from_secs(u64::from(self.days) * 86_400),
        };
        Some(now - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX))
    }
}

/// Why a pass did not run or stopped.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// Another node holds the job lease (it is pruning now).
    #[error("another node is pruning right now (the retention job lease is taken); try again in a few minutes")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ecom_store::DbErr> for PruneError {
    fn from(e: ecom_store::DbErr) -> Self {
        PruneError::Store(StoreError::Db(e))
    }
}

/// The pruner. Cheap to clone.
#[derive(Clone)]
pub struct Retention {
    db: Db,
    settings: RetentionSettings,
    id: String,
}

impl std::fmt::Debug for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retention").field("id", &self.id).field("days", &self.settings.days).finish()
    }
}

impl Retention {
    pub fn new(db: Db, settings: RetentionSettings) -> Self {
        let id = format!("prune-{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
        Self { db, settings, id }
    }

    async fn take_lease(&self) -> Result<bool, StoreError> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::MAX);
        let txn = self.db.platform_txn().await?;
        let held = ecom_store::lease::take_job(&txn, JOB, &self.id, now, until).await?;
        txn.commit().await?;
        Ok(held)
    }

    /// One pass over every part, if this node gets the job lease. `progress` hears
    /// each part's running total after every batch, and `done` once per part.
    /// Returns the rows deleted per part.
    pub async fn run_once(&self, mut progress: impl FnMut(Part, u64, bool)) -> Result<Vec<(Part, u64)>, PruneError> {
        if !self.take_lease().await? {
            return Err(PruneError::Busy);
        }
        let result = self.pass(&mut progress).await;
        let txn = self.db.platform_txn().await?;
        ecom_store::lease::release_job(&txn, JOB, &self.id).await?;
        txn.commit().await?;
        result
    }

    async fn pass(&self, progress: &mut impl FnMut(Part, u64, bool)) -> Result<Vec<(Part, u64)>, PruneError> {
        let now = Utc::now();
        let mut totals = Vec::new();
        for &part in Part::ALL {
            let Some(cutoff) = self.settings.cutoff(part, now) else { continue };
            let mut total = 0;
            loop {
                let txn = self.db.platform_txn().await?;
                let n = repo::prune_batch(&txn, part, cutoff, self.settings.batch).await?;
                txn.commit().await?;
                total += n;
                if n < self.settings.batch {
                    break;
                }
                progress(part, total, false);
                // Still ours? (A pass longer than the lease must not overlap another.)
                if !self.take_lease().await? {
                    return Err(PruneError::Busy);
                }
                tokio::time::sleep(self.settings.pause).await;
            }
            progress(part, total, true);
            totals.push((part, total));
        }
        Ok(totals)
    }

    /// Runs a pass every `every` (the first five minutes after start-up) until aborted.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(300).min(self.settings.every)).await;
            loop {
                match self.run_once(|_, _, _| {}).await {
                    Ok(totals) => {
                        let deleted: u64 = totals.iter().map(|(_, n)| n).sum();
                        if deleted > 0 {
                            let parts: Vec<String> = totals
                                .iter()
                                .filter(|(_, n)| *n > 0)
                                .map(|(p, n)| format!("{n} {}", p.label()))
                                .collect();
                            tracing::info!(deleted, parts = %parts.join(", "), "retention: pruned old rows");
                        }
                    }
                    Err(PruneError::Busy) => tracing::debug!("retention: another node is pruning"),
                    Err(e) => tracing::warn!(error = %e, "retention pass failed"),
                }
                tokio::time::sleep(self.settings.every).await;
            }
        })
    }
}
