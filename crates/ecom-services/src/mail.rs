//! Outgoing email. Until the notifications work lands, every message goes to the dev
//! mailbox table, which the super-admin panel lists.

use crate::Result;
use ecom_core::TenantId;
use ecom_store::{DatabaseTransaction, mailbox};

/// Sends (for now: files) email. Messages are written in the caller's transaction, so
/// a message exists exactly when the change that caused it was committed.
#[derive(Clone, Debug, Default)]
pub struct Mailer;

impl Mailer {
    pub async fn send(
        &self,
        txn: &DatabaseTransaction,
        tenant: Option<TenantId>,
        to: &str,
        subject: &str,
        body_text: &str,
    ) -> Result<()> {
        mailbox::insert(txn, tenant, to, subject, body_text).await?;
        tracing::info!(tenant.id = tenant.map(|t| t.to_string()), subject, "email filed in the dev mailbox");
        Ok(())
    }
}
