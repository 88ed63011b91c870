//! m0022: indexes that let the queues' claims stop after a batch however long the
//! backlog is.
//!
//! - The relay's fan-out and every lease claim (bus deliveries, notifications, webhook
//!   deliveries) take the oldest rows in (time, id) order. Their indexes held the time
//!   but not the id, so each claim sorted the whole backlog to find its batch: with
//!   a million events waiting, a round took a second on PostgreSQL and SQLite alike.
//!   The new indexes end with the id and replace the old ones. The outbox's "not yet
//!   fanned out" and "not yet published" are `IS NULL` tests, which PostgreSQL does not
//!   count as equalities when it orders by the next columns: those two are partial
//!   indexes over just the waiting events, in (time, id) order.
//! - Publishing an event asks whether it has a pending delivery left, for every event
//!   of a round; SQLite answered that from the (status, next attempt) index, reading
//!   every pending delivery once per event. (event, status) answers it directly.

use sea_orm_migration::prelude::*;

pub(super) struct M0022QueueIndexes;

impl MigrationName for M0022QueueIndexes {
    fn name(&self) -> &str {
        "m0022_queue_indexes"
    }
}

/// (table, old columns, new columns).
const REPLACED: &[(&str, &[&str], &[&str])] = &[
    ("bus_deliveries", &["status", "next_attempt_at"], &["status", "next_attempt_at", "id"]),
    ("notifications", &["status", "next_attempt_at"], &["status", "next_attempt_at", "id"]),
    ("webhook_deliveries", &["status", "next_attempt_at"], &["status", "next_attempt_at", "id"]),
];

fn drop(table: &str, cols: &[&str]) -> IndexDropStatement {
    Index::drop().name(format!("ix_{table}_{}", cols.join("_"))).table(super::name(table)).if_exists().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0022QueueIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, old, new) in REPLACED {
            m.create_index(super::index(table, new, false)).await?;
            m.drop_index(drop(table, old)).await?;
        }
        // The same statement on SQLite and PostgreSQL.
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS ix_outbox_undispatched ON outbox (created_at, id) WHERE dispatched_at IS NULL",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS ix_outbox_unpublished ON outbox (created_at, id) WHERE published_at IS NULL",
        )
        .await?;
        m.drop_index(drop("outbox", &["dispatched_at", "created_at"])).await?;
        m.create_index(super::index("bus_deliveries", &["event_id", "status"], false)).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(drop("bus_deliveries", &["event_id", "status"])).await?;
        m.create_index(super::index("outbox", &["dispatched_at", "created_at"], false)).await?;
        let db = m.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS ix_outbox_undispatched").await?;
        db.execute_unprepared("DROP INDEX IF EXISTS ix_outbox_unpublished").await?;
        for (table, old, new) in REPLACED {
            m.create_index(super::index(table, old, false)).await?;
            m.drop_index(drop(table, new)).await?;
        }
        Ok(())
    }
}
