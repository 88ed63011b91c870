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
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, LockBehavior, LockType, OnConflict, Query};
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

    /// Still waiting, tested so that no index is used for it, for statements that name
    /// their rows by id. Without statistics SQLite's planner reckons an equality on
    /// `status` finds ~10 rows and a list of 500 ids 500, so it walked the (status, …)
    /// index, that is every waiting row, once per statement: 8–10 ms a statement with
    /// 50,000 events waiting, and more as the backlog grew. A function of the column
    /// (`COALESCE`; the column is never NULL) is a portable form of SQLite's unary `+`;
    /// PostgreSQL, which keeps statistics, takes the primary key either way.
    fn waiting(&self) -> Expr {
        Expr::expr(Func::coalesce([Expr::col(self.status), Expr::val("")])).eq(self.pending)
    }

    /// Rows among `ids` that worker `me` still holds (still waiting, leased to it):
    /// the condition of every write that records an outcome.
    pub fn held(&self, me: &str, ids: impl IntoIterator<Item = Uuid>) -> Condition {
        Condition::all().add(self.id.is_in(ids)).add(self.claimed_by.eq(me)).add(self.waiting())
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
            .filter(self.waiting())
            .filter(self.next_attempt_at.lte(now))
            .filter(self.free(now))
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
            .filter(self.waiting())
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

#[cfg(test)]
mod tests {
    use crate::{Db, DbOptions};
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryTrait, Statement};
    use std::time::Duration;

    async fn plan(db: &Db, stmt: Statement) -> String {
        let explain = Statement::from_sql_and_values(
            DbBackend::Sqlite,
            format!("EXPLAIN QUERY PLAN {}", stmt.sql),
            stmt.values.map(|v| v.0).unwrap_or_default(),
        );
        let rows = db.connection().query_all_raw(explain).await.unwrap();
        rows.iter().map(|r| r.try_get_by_index::<String>(3).unwrap()).collect::<Vec<_>>().join("; ")
    }

    /// Recording an outcome finds its rows by primary key on SQLite, however many rows
    /// wait: the planner must not take the status index for the `held` condition.
    #[tokio::test]
    async fn outcomes_are_recorded_through_the_primary_key_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("ecom-lease-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("ecom.db").display());
        let db =
            Db::connect(&DbOptions { url, max_connections: 1, acquire_timeout: Duration::from_secs(5) }).await.unwrap();
        db.migrate().await.unwrap();
        let ids: Vec<uuid::Uuid> = (0..500).map(|_| uuid::Uuid::now_v7()).collect();
        let held = [
            (
                "bus_deliveries",
                crate::bus::delivery::Entity::delete_many()
                    .filter(crate::bus::LEASE.held("me", ids.iter().copied()))
                    .build(DbBackend::Sqlite),
            ),
            (
                "notifications",
                crate::notifications::notification::Entity::update_many()
                    .col_expr(crate::notifications::notification::Column::ProviderId, Expr::value("x"))
                    .filter(crate::notifications::LEASE.held("me", ids.iter().copied()))
                    .build(DbBackend::Sqlite),
            ),
            (
                "webhook_deliveries",
                crate::webhooks::delivery::Entity::find()
                    .filter(crate::webhooks::LEASE.held("me", ids.iter().copied()))
                    .build(DbBackend::Sqlite),
            ),
        ];
        for (table, stmt) in held {
            let plan = plan(&db, stmt).await;
            assert!(plan.contains(&format!("sqlite_autoindex_{table}_1")), "{table}: {plan}");
        }
        // The claim's own pick does use the status index (that is what it is for).
        let pick = Query::select()
            .column(Alias::new("id"))
            .from(Alias::new("bus_deliveries"))
            .and_where(Expr::col(Alias::new("status")).eq("pending"))
            .to_owned();
        let pick = DbBackend::Sqlite.build(&pick);
        assert!(plan(&db, pick).await.contains("ix_bus_deliveries_status"));
        drop(db);
        std::fs::remove_dir_all(&dir).ok();
    }
}
