//! m0022: bus deliveries by (event, status). Publishing an event asks "has it a
//! pending delivery left?" for every event of a relay round; without this index SQLite
//! answered it from the (status, next attempt) index, reading every pending delivery
//! once per event: 43 ms a round with a backlog of 15,000, most of the relay's time.

use sea_orm_migration::prelude::*;

pub(super) struct M0022DeliveryEventStatus;

impl MigrationName for M0022DeliveryEventStatus {
    fn name(&self) -> &str {
        "m0022_delivery_event_status"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0022DeliveryEventStatus {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(super::index("bus_deliveries", &["event_id", "status"], false)).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop().name("ix_bus_deliveries_event_id_status").table(super::name("bus_deliveries")).to_owned(),
        )
        .await
    }
}
