//! m0018: staff roles and invitations. Staff members get the panel areas they may
//! use; invitations wait for the invited person to accept them.

use super::{DbBackend, STAFF_TABLES, at, created_at, enable_row_level_security, index, name, tenant_table, text};
use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;

pub(super) struct M0018Staff;

impl MigrationName for M0018Staff {
    fn name(&self) -> &str {
        "m0018_staff"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0018Staff {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // A member with the staff role works in these areas only (`catalog,orders`);
        // owners and admins have them all. Existing members are owners or staff made
        // by the operator; the latter had everything before, so they keep it.
        m.alter_table(Table::alter().table(name("staff")).add_column(text("areas", 200)).to_owned()).await?;
        m.get_connection()
            .execute_unprepared(
                "UPDATE staff SET areas = 'catalog,orders,customers,settings,analytics' WHERE role = 'staff'",
            )
            .await?;
        // An invitation: who, with what role and areas, by whom; only a SHA-256 of
        // the emailed token is kept. Accepted, revoked or expired ones stay as history.
        m.create_table(
            tenant_table("staff_invitations")
                .col(text("email", 254))
                .col(text("role", 20))
                .col(text("areas", 200))
                .col(text("token_hash", 64))
                .col(at("expires_at", false))
                .col(text("invited_by", 300))
                .col(created_at())
                .col(at("accepted_at", true))
                .col(at("revoked_at", true))
                .to_owned(),
        )
        .await?;
        m.create_index(index("staff_invitations", &["token_hash"], true)).await?;
        m.create_index(index("staff_invitations", &["tenant_id", "email"], false)).await?;
        if m.get_database_backend() == DbBackend::Postgres {
            enable_row_level_security(m, STAFF_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the staff migration cannot be reverted".into()))
    }
}
