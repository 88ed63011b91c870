//! Leases by conditional update: the one way the queue tables (bus deliveries, webhook
//! deliveries, notifications) hand due rows to one worker at a time.
//!
//! A queue row has a status (`pending` while it waits for an attempt), a
//! `next_attempt_at`, and a lease: `claimed_by` (the worker) and `claimed_until`. A
//! worker claims a batch of due, lease-free rows in one conditional update; it then
//! records each outcome with a condition that it still holds the lease
//! ([`Lease::held`]), so a worker whose lease ran out (it was too slow, or its node
//! died) writes nothing and the worker that took the row over does.
//!
//! Several nodes may share the database. On PostgreSQL the batch is picked with
//! `FOR UPDATE SKIP LOCKED`, so concurrent claimers take different rows instead of
//! queueing on each other's row locks, and the update re-checks the lease condition;
//! on SQLite writers take turns, so the conditional update alone decides.

use crate::Result;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LockBehavior, LockType, OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

/// Which columns of a queue table hold its lease.
#[derive(Debug, Clone, Copy)]
pub struct Lease<E: EntityTrait> {
    pub id: E::Column,
    pub status: E::Column,
    /// The status of a row waiting for an attempt.
    pub pending: &'static str,
    pub next_attempt_at: E::Column,
    pub claimed_by: E::Column,
    pub claimed_until: E::Column,
}

impl<E: EntityTrait> Lease<E> {
    /// Nobody holds the row: never leased, given back, or the lease ran out.
    pub fn free(&self, now: DateTime<Utc>) -> Condition {
        Condition::any().add(self.claimed_until.is_null()).add(self.claimed_until.lt(now))
    }

    /// Waiting, due and free.
    pub fn due(&self, now: DateTime<Utc>) -> Condition {
        Condition::all().add(self.status.eq(self.pending)).add(self.next_attempt_at.lte(now)).add(self.free(now))
    }

    /// Rows among `ids` that worker `me` still holds (still waiting, leased to it):
    /// the condition of every write that records an outcome.
    pub fn held(&self, me: &str, ids: impl IntoIterator<Item = Uuid>) -> Condition {
        Condition::all().add(self.id.is_in(ids)).add(self.claimed_by.eq(me)).add(self.status.eq(self.pending))
    }

    /// Leases up to `limit` due rows, soonest due first, to worker `me` until `until`,
    /// and returns them. Each row goes to one worker.
    pub async fn claim(
        &self,
        txn: &DatabaseTransaction,
        me: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<E::Model>> {
        self.claim_where(txn, Condition::all(), me, now, until, limit).await
    }

    /// [`Lease::claim`] of the due rows that also match `only`.
    pub async fn claim_where(
        &self,
        txn: &DatabaseTransaction,
        only: Condition,
        me: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<E::Model>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut pick = E::find()
            .select_only()
            .column(self.id)
            .filter(self.due(now))
            .filter(only)
            .order_by_asc(self.next_attempt_at)
            .order_by_asc(self.id)
            .limit(limit);
        if txn.get_database_backend() == DbBackend::Postgres {
            pick = pick.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let ids: Vec<Uuid> = pick.into_tuple().all(txn).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let res = E::update_many()
            .col_expr(self.claimed_by, Expr::value(me))
            .col_expr(self.claimed_until, Expr::value(until))
            .filter(self.id.is_in(ids.clone()))
            .filter(self.due(now))
            .exec(txn)
            .await?;
        if res.rows_affected == 0 {
            return Ok(Vec::new());
        }
        // The rows this claim leased (on SQLite another process may have taken some
        // between the pick and the update).
        Ok(E::find()
            .filter(self.id.is_in(ids))
            .filter(self.claimed_by.eq(me))
            .filter(self.claimed_until.eq(until))
            .filter(self.status.eq(self.pending))
            .order_by_asc(self.next_attempt_at)
            .order_by_asc(self.id)
            .all(txn)
            .await?)
    }

    /// Gives back the leases `me` holds on `ids` without recording an attempt (the
    /// worker did not get to them), so that any worker may take them at once.
    pub async fn release(&self, txn: &DatabaseTransaction, me: &str, ids: &[Uuid]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let res = E::update_many()
            .col_expr(self.claimed_until, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(self.held(me, ids.iter().copied()))
            .exec(txn)
            .await?;
        Ok(res.rows_affected)
    }
}

/// Takes (or renews) the lease on a platform job (`job_leases`) for worker `me` until
/// `until`: true when `me` holds it now — nobody did, the holder's lease ran out, or
/// `me` already held it. One node at a time runs a job this way.
pub async fn take_job(
    txn: &DatabaseTransaction,
    job: &str,
    me: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool> {
    let table = Alias::new("job_leases");
    let (name, holder, held_until) = (Alias::new("name"), Alias::new("holder"), Alias::new("held_until"));
    let insert = Query::insert()
        .into_table(table.clone())
        .columns([name.clone(), holder.clone()])
        .values_panic([job.into(), "".into()])
        .on_conflict(OnConflict::column(name.clone()).do_nothing().to_owned())
        .to_owned();
    txn.execute(&insert).await?;
    let free = Condition::any()
        .add(Expr::col(held_until.clone()).is_null())
        .add(Expr::col(held_until.clone()).lt(now))
        .add(Expr::col(holder.clone()).eq(me));
    let take = Query::update()
        .table(table)
        .value(holder, me)
        .value(held_until, until)
        .and_where(Expr::col(name).eq(job))
        .cond_where(free)
        .to_owned();
    Ok(txn.execute(&take).await?.rows_affected() == 1)
}

/// Gives a job's lease back, if `me` holds it.
pub async fn release_job(txn: &DatabaseTransaction, job: &str, me: &str) -> Result<()> {
    let (name, holder, held_until) = (Alias::new("name"), Alias::new("holder"), Alias::new("held_until"));
    let stmt = Query::update()
        .table(Alias::new("job_leases"))
        .value(held_until, Option::<DateTime<Utc>>::None)
        .and_where(Expr::col(name).eq(job))
        .and_where(Expr::col(holder).eq(me))
        .to_owned();
    txn.execute(&stmt).await?;
    Ok(())
}
