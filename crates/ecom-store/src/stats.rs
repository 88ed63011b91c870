//! Platform-wide figures for the super-admin dashboard: orders per minute across all
//! stores, and the bus's health. Platform scope (they span tenants).

use crate::{Backend, Db, Result};
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};

/// Orders placed since `since`, per minute (`YYYY-MM-DD HH:MM`, UTC), all stores.
/// Grouped in the database, so the answer is cluster-wide and its size is the
/// number of minutes, not of orders.
pub async fn orders_per_minute(db: &Db, since: DateTime<Utc>) -> Result<Vec<(String, i64)>> {
    let minute = match db.backend() {
        Backend::Postgres => "to_char(placed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')",
        Backend::Sqlite => "strftime('%Y-%m-%d %H:%M', placed_at)",
    };
    let mut q = Query::select();
    q.from(Alias::new("orders"))
        .expr_as(Expr::cust(minute), Alias::new("minute"))
        .expr_as(Expr::col(Alias::new("id")).count(), Alias::new("n"))
        .and_where(Expr::col(Alias::new("placed_at")).gte(since))
        .group_by_col(Alias::new("minute"));
    let txn = db.platform_txn().await?;
    let rows = txn.query_all(&q).await?;
    txn.commit().await?;
    rows.iter()
        .map(|row| {
            let minute: Option<String> = row.try_get("", "minute")?;
            let n: i64 = row.try_get("", "n")?;
            Ok((minute.unwrap_or_default(), n))
        })
        .collect()
}

/// The bus right now: the age in seconds of the oldest event not yet published (0
/// when none waits) and how many dead letters wait in the panels.
pub async fn bus_health(db: &Db) -> Result<(f64, u64)> {
    let txn = db.platform_txn().await?;
    let oldest = crate::bus::oldest_unpublished(&txn).await?;
    let dead = crate::bus::count_dead_letters(&txn, None).await?;
    txn.commit().await?;
    let lag = oldest.map_or(0.0, |t| Ord::max((Utc::now() - t).num_milliseconds(), 0) as f64 / 1000.0);
    Ok((lag, dead))
}
