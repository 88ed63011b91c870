//! m0024: the notification queue is claimed per channel.
//!
//! The dispatcher runs one lane per channel (email, SMS, WhatsApp, Web Push, in-app),
//! each claiming only its own channel's due rows, so that a slow or rate-limited
//! provider holds up its own messages and nobody else's. A lane's claim asks for
//! `status = 'pending' AND channel = ?` in (next attempt, id) order; the old index,
//! (status, next attempt, id), would have walked every other channel's due rows to
//! find it — a million waiting texts between every email claim and its batch. The
//! new index puts the channel second, and replaces the old one: every other reader
//! of the old one (the pending and failed counts) is served by its `status` prefix.

use sea_orm_migration::prelude::*;

pub(super) struct M0024NotificationLanes;

impl MigrationName for M0024NotificationLanes {
    fn name(&self) -> &str {
        "m0024_notification_lanes"
    }
}

const OLD: &[&str] = &["status", "next_attempt_at", "id"];
const NEW: &[&str] = &["status", "channel", "next_attempt_at", "id"];

fn drop(cols: &[&str]) -> IndexDropStatement {
    Index::drop()
        .name(format!("ix_notifications_{}", cols.join("_")))
        .table(super::name("notifications"))
        .if_exists()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0024NotificationLanes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(super::index("notifications", NEW, false)).await?;
        m.drop_index(drop(OLD)).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(super::index("notifications", OLD, false)).await?;
        m.drop_index(drop(NEW)).await
    }
}
