//! Platform-wide figures for the super-admin dashboard: orders per minute across all
//! stores, the bus's health, and every node's requests per minute with their latency
//! (`node_traffic`). Platform scope (they span tenants).

use crate::{Backend, Db, Result};
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};

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

/// One node's requests in one minute, with the latency histogram's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficMinute {
    /// Minutes since the Unix epoch.
    pub minute: i64,
    pub requests: u64,
    pub buckets: Vec<u64>,
}

/// Writes `node`'s figures for these minutes (replacing what it wrote for them
/// before: they are running totals) and drops every node's rows from before
/// `keep_from` (a minute).
pub async fn save_node_traffic(db: &Db, node: &str, minutes: &[TrafficMinute], keep_from: i64) -> Result<()> {
    let table = Alias::new("node_traffic");
    let col = |c: &str| Alias::new(c);
    let now = Utc::now();
    let txn = db.platform_txn().await?;
    for m in minutes {
        let buckets = serde_json::to_string(&m.buckets).unwrap_or_else(|_| "[]".into());
        let mut insert = Query::insert();
        insert
            .into_table(table.clone())
            .columns([col("node"), col("minute"), col("requests"), col("buckets"), col("updated_at")])
            .values([
                node.into(),
                m.minute.into(),
                i64::try_from(m.requests).unwrap_or(i64::MAX).into(),
                buckets.into(),
                now.into(),
            ])
            .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?
            .on_conflict(
                OnConflict::columns([col("node"), col("minute")])
                    .update_columns([col("requests"), col("buckets"), col("updated_at")])
                    .to_owned(),
            );
        txn.execute(&insert).await?;
    }
    let mut prune = Query::delete();
    prune.from_table(table).and_where(Expr::col(col("minute")).lt(keep_from));
    txn.execute(&prune).await?;
    txn.commit().await?;
    Ok(())
}

/// Every node's figures from minute `from` on, summed per minute (histograms added
/// bucket by bucket), oldest first, and how many nodes reported in that time.
pub async fn cluster_traffic(db: &Db, from: i64) -> Result<(Vec<TrafficMinute>, usize)> {
    let mut q = Query::select();
    q.from(Alias::new("node_traffic"))
        .columns([Alias::new("node"), Alias::new("minute"), Alias::new("requests"), Alias::new("buckets")])
        .and_where(Expr::col(Alias::new("minute")).gte(from));
    let txn = db.platform_txn().await?;
    let rows = txn.query_all(&q).await?;
    txn.commit().await?;
    let mut nodes = std::collections::HashSet::new();
    let mut by_minute: std::collections::BTreeMap<i64, TrafficMinute> = std::collections::BTreeMap::new();
    for row in rows {
        let node: String = row.try_get("", "node")?;
        let minute: i64 = row.try_get("", "minute")?;
        let requests: i64 = row.try_get("", "requests")?;
        let buckets: String = row.try_get("", "buckets")?;
        let buckets: Vec<u64> = serde_json::from_str(&buckets).map_err(|e| crate::StoreError::Corrupt {
            table: "node_traffic",
            detail: format!("buckets of {node} at {minute}: {e}"),
        })?;
        nodes.insert(node);
        let sum = by_minute.entry(minute).or_insert_with(|| TrafficMinute { minute, ..TrafficMinute::default() });
        sum.requests = sum.requests.saturating_add(u64::try_from(requests).unwrap_or(0));
        if sum.buckets.len() < buckets.len() {
            sum.buckets.resize(buckets.len(), 0);
        }
        for (total, n) in sum.buckets.iter_mut().zip(buckets) {
            *total = total.saturating_add(n);
        }
    }
    Ok((by_minute.into_values().collect(), nodes.len()))
}
