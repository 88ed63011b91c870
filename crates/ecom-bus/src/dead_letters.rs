//! Dead letters: deliveries whose attempts ran out, for the super-admin panel (all
//! stores) and the merchant panel (one store): list, retry, discard.

use crate::relay::BusError;
use chrono::Utc;
use ecom_core::TenantId;
use ecom_store::bus::{self as repo, DeadLetterRow};
use ecom_store::{DatabaseTransaction, Db};
use uuid::Uuid;

/// Whose dead letters: the operator sees every store's, a merchant their store's only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Platform,
    Store(TenantId),
}

impl Scope {
    fn tenant(self) -> Option<TenantId> {
        match self {
            Scope::Platform => None,
            Scope::Store(t) => Some(t),
        }
    }
}

/// The dead-letter service. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DeadLetters {
    db: Db,
}

impl DeadLetters {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    async fn txn(&self, scope: Scope) -> Result<DatabaseTransaction, BusError> {
        Ok(match scope {
            Scope::Platform => self.db.platform_txn().await?,
            Scope::Store(t) => self.db.tenant_txn(t).await?,
        })
    }

    /// The newest `limit` dead letters in scope, and how many there are in all.
    pub async fn list(&self, scope: Scope, limit: u64) -> Result<(Vec<DeadLetterRow>, u64), BusError> {
        let txn = self.txn(scope).await?;
        let rows = repo::dead_letters(&txn, scope.tenant(), limit).await?;
        let total = repo::count_dead_letters(&txn, scope.tenant()).await?;
        txn.commit().await?;
        Ok((rows, total))
    }

    /// Puts the delivery back in the queue with its attempts reset; false when there is
    /// no such dead letter in scope.
    pub async fn retry(&self, scope: Scope, id: Uuid) -> Result<bool, BusError> {
        let txn = self.txn(scope).await?;
        let done = repo::requeue(&txn, scope.tenant(), id, Utc::now()).await?;
        txn.commit().await?;
        if done {
            metrics::counter!("ecom_bus_dead_letters_retried_total").increment(1);
        }
        Ok(done)
    }

    /// Drops the dead letter; the event stays undelivered to that consumer.
    pub async fn discard(&self, scope: Scope, id: Uuid) -> Result<bool, BusError> {
        let txn = self.txn(scope).await?;
        let done = repo::discard(&txn, scope.tenant(), id).await?;
        txn.commit().await?;
        Ok(done)
    }
}
