//! m0021: each node's requests per minute with their latency histogram, so the
//! platform dashboard shows the whole cluster, not the node that drew it.

use super::{at, name, text};
use sea_orm_migration::prelude::*;

pub(super) struct M0021NodeTraffic;

impl MigrationName for M0021NodeTraffic {
    fn name(&self) -> &str {
        "m0021_node_traffic"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0021NodeTraffic {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Platform rows (no tenant, no row-level security). One per node and minute,
        // rewritten with the node's running totals while the minute lasts, so a
        // repeated write is harmless; `buckets` is the latency histogram's counts as a
        // JSON array. Kept two hours.
        m.create_table(
            Table::create()
                .table(name("node_traffic"))
                .if_not_exists()
                .col(text("node", 100))
                .col(ColumnDef::new(name("minute")).big_integer().not_null())
                .col(ColumnDef::new(name("requests")).big_integer().not_null().default(0))
                .col(ColumnDef::new(name("buckets")).text().not_null().default("[]"))
                .col(at("updated_at", false))
                .primary_key(Index::create().col(name("node")).col(name("minute")))
                .to_owned(),
        )
        .await?;
        m.create_index(super::index("node_traffic", &["minute"], false)).await?;
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the node traffic migration cannot be reverted".into()))
    }
}
