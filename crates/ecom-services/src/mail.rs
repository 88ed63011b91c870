//! Outgoing email. Messages are queued (`notifications`) in the caller's transaction and
//! sent by the notification dispatcher: over SMTP when `ECOM_SMTP_URL` is set, else into
//! the dev mailbox the super-admin panel lists.

use crate::Result;
use ecom_core::TenantId;
use ecom_store::DatabaseTransaction;

/// Queues email. A message exists exactly when the change that caused it was
/// committed, and goes out after the commit, retried until the server takes it.
#[derive(Clone, Debug, Default)]
pub struct Mailer;

impl Mailer {
    /// Queues a plain-text email (template `plain`).
    pub async fn send(
        &self,
        txn: &DatabaseTransaction,
        tenant: Option<TenantId>,
        to: &str,
        subject: &str,
        body_text: &str,
    ) -> Result<()> {
        self.send_email(
            txn,
            tenant,
            &ecom_notify::Email { to, template: "plain", subject, text: body_text, html: "", event_id: None },
        )
        .await
    }

    /// Queues a message rendered from the email templates (`ecom_notify::render`).
    pub async fn send_rendered(
        &self,
        txn: &DatabaseTransaction,
        tenant: Option<TenantId>,
        to: &str,
        template: &str,
        message: &ecom_notify::Rendered,
    ) -> Result<()> {
        self.send_email(
            txn,
            tenant,
            &ecom_notify::Email {
                to,
                template,
                subject: &message.subject,
                text: &message.text,
                html: &message.html,
                event_id: None,
            },
        )
        .await
    }

    /// Queues any email, with its HTML part, template name and causing event.
    pub async fn send_email(
        &self,
        txn: &DatabaseTransaction,
        tenant: Option<TenantId>,
        email: &ecom_notify::Email<'_>,
    ) -> Result<()> {
        let id = ecom_notify::enqueue_email(txn, tenant, email).await?;
        tracing::info!(tenant.id = tenant.map(|t| t.to_string()), notification = %id, template = email.template,
            "email queued");
        Ok(())
    }
}
