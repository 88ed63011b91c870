//! Retention: deletes old rows that are done with — delivered bus deliveries and
//! consumers' receipts, delivered webhook deliveries with their attempts, sent
//! notifications, the dev mailbox, used idempotency keys — a batch at a time, so no
//! delete holds locks for long. Nothing waiting, failed or dead-lettered is ever
//! deleted: those stay until someone retries or discards them.
//!
//! Runs across stores in [`crate::Db::platform_txn`]. The outbox itself is kept: order
//! timelines and the merchant's bus page read it.

use crate::Result;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseTransaction};

/// What the pruner deletes, in the order it deletes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `bus_deliveries` delivered before the cutoff.
    BusDeliveries,
    /// `consumer_receipts` written before the cutoff whose delivery (if any) is done.
    Receipts,
    /// `webhook_deliveries` delivered before the cutoff, and their `webhook_attempts`.
    WebhookDeliveries,
    /// `notifications` sent before the cutoff.
    Notifications,
    /// `dev_mailbox` rows filed before the cutoff.
    Mailbox,
    /// `idempotency_keys` made before their own (24 h) cutoff.
    IdempotencyKeys,
}

impl Part {
    pub const ALL: &[Part] = &[
        Part::BusDeliveries,
        Part::Receipts,
        Part::WebhookDeliveries,
        Part::Notifications,
        Part::Mailbox,
        Part::IdempotencyKeys,
    ];

    /// For progress lines and logs.
    pub fn label(self) -> &'static str {
        match self {
            Part::BusDeliveries => "delivered bus deliveries",
            Part::Receipts => "consumer receipts",
            Part::WebhookDeliveries => "delivered webhook deliveries (with their attempts)",
            Part::Notifications => "sent notifications",
            Part::Mailbox => "dev mailbox messages",
            Part::IdempotencyKeys => "idempotency keys",
        }
    }
}

fn col(table: &str, c: &str) -> Expr {
    Expr::col((Alias::new(table), Alias::new(c)))
}

/// Ids of up to `limit` rows of `part` old enough to go.
fn pick(part: Part, cutoff: DateTime<Utc>, limit: Option<u64>) -> (&'static str, SelectStatement) {
    let mut q = Query::select();
    let table = match part {
        Part::BusDeliveries => {
            q.and_where(col("bus_deliveries", "status").eq("delivered"))
                .and_where(col("bus_deliveries", "delivered_at").lt(cutoff));
            "bus_deliveries"
        }
        Part::Receipts => {
            // A receipt stays while a delivery of its event to its consumer is not done
            // (waiting, or dead-lettered and perhaps retried later).
            let open = Query::select()
                .expr(Expr::val(1))
                .from(Alias::new("bus_deliveries"))
                .and_where(
                    col("bus_deliveries", "event_id").equals((Alias::new("consumer_receipts"), Alias::new("event_id"))),
                )
                .and_where(
                    col("bus_deliveries", "consumer").equals((Alias::new("consumer_receipts"), Alias::new("consumer"))),
                )
                .and_where(col("bus_deliveries", "status").ne("delivered"))
                .to_owned();
            q.and_where(col("consumer_receipts", "created_at").lt(cutoff)).and_where(Expr::exists(open).not());
            "consumer_receipts"
        }
        Part::WebhookDeliveries => {
            q.and_where(col("webhook_deliveries", "status").eq("delivered"))
                .and_where(col("webhook_deliveries", "delivered_at").lt(cutoff));
            "webhook_deliveries"
        }
        Part::Notifications => {
            q.and_where(col("notifications", "status").eq("sent"))
                .and_where(col("notifications", "sent_at").lt(cutoff));
            "notifications"
        }
        Part::Mailbox => {
            q.and_where(col("dev_mailbox", "created_at").lt(cutoff));
            "dev_mailbox"
        }
        Part::IdempotencyKeys => {
            q.and_where(col("idempotency_keys", "created_at").lt(cutoff));
            "idempotency_keys"
        }
    };
    q.column((Alias::new(table), Alias::new("id"))).from(Alias::new(table));
    if let Some(limit) = limit {
        q.limit(limit);
    }
    (table, q)
}

/// Deletes up to `limit` rows of `part` older than `cutoff`; returns how many went. Run
/// it in a transaction of its own, again and again until it returns less than `limit`.
pub async fn prune_batch(txn: &DatabaseTransaction, part: Part, cutoff: DateTime<Utc>, limit: u64) -> Result<u64> {
    let (table, ids) = pick(part, cutoff, Some(limit));
    if part == Part::WebhookDeliveries {
        // The attempts first: they point at their delivery.
        let ids: Vec<uuid::Uuid> = {
            let rows = txn.query_all(&ids).await?;
            rows.iter().map(|r| r.try_get_by_index::<uuid::Uuid>(0)).collect::<Result<_, _>>()?
        };
        if ids.is_empty() {
            return Ok(0);
        }
        let attempts = Query::delete()
            .from_table(Alias::new("webhook_attempts"))
            .and_where(Expr::col(Alias::new("delivery_id")).is_in(ids.iter().copied()))
            .to_owned();
        txn.execute(&attempts).await?;
        let deliveries = Query::delete()
            .from_table(Alias::new(table))
            .and_where(Expr::col(Alias::new("id")).is_in(ids.iter().copied()))
            .to_owned();
        return Ok(txn.execute(&deliveries).await?.rows_affected());
    }
    let delete = Query::delete()
        .from_table(Alias::new(table))
        .and_where(Expr::col(Alias::new("id")).in_subquery(ids))
        .to_owned();
    Ok(txn.execute(&delete).await?.rows_affected())
}

/// How many rows of `part` are old enough to go (for tests and the CLI's summary).
pub async fn count_prunable(txn: &DatabaseTransaction, part: Part, cutoff: DateTime<Utc>) -> Result<u64> {
    let (_, ids) = pick(part, cutoff, None);
    let count = Query::select().expr(Expr::cust("COUNT(*)")).from_subquery(ids, Alias::new("p")).to_owned();
    let row = txn.query_one(&count).await?;
    Ok(row.map(|r| r.try_get_by_index::<i64>(0)).transpose()?.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}
