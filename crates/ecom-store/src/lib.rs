//! Persistence for ECOM: one schema and one set of migrations that run on SQLite and
//! PostgreSQL from the same code, and repositories that always take the tenant.
//!
//! Tenant isolation has two lines of defence: every repository query filters by
//! `tenant_id`, and on PostgreSQL every tenant table has a row-level security policy
//! that hides rows unless the transaction has set `ecom.tenant_id` (see [`Db::tenant_txn`]).

pub mod accounts;
pub mod api_tokens;
pub mod bus;
pub mod catalog;
pub mod channels;
mod db;
pub mod domains;
pub mod entities;
pub mod idempotency;
pub mod inbox;
pub mod lease;
pub mod mailbox;
pub mod marketing;
mod migration;
pub mod notification_templates;
pub mod notifications;
pub mod orders;
pub mod plans;
pub mod retention;
pub mod staff;
pub mod stats;
pub mod tenants;
pub mod themes;
pub mod tokens;
pub mod webhooks;

pub use db::{Backend, Db, DbOptions, PoolStats};
pub use migration::TENANT_TABLES;
pub use sea_orm::{DatabaseTransaction, DbErr, TransactionSession};

/// What can go wrong in the persistence layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; the string names what was taken.
    #[error("{0} is already taken")]
    Conflict(&'static str),
    /// A row read back from the database did not hold a valid value; a bug or a
    /// hand-edited row, never user input.
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
}

impl StoreError {
    /// Maps a unique-constraint violation to `Conflict(what)`, anything else to `Db`.
    pub(crate) fn conflict_or_db(err: sea_orm::DbErr, what: &'static str) -> Self {
        match err.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => Self::Conflict(what),
            _ => Self::Db(err),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
