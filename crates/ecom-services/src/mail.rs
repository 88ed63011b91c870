//! Outgoing email. Messages are queued (`notifications`) in the caller's transaction and
//! sent by the notification dispatcher: over SMTP when `ECOM_SMTP_URL` is set, else into
//! the dev mailbox the super-admin panel lists.

use crate::Result;
use ecom_core::{Tenant, TenantId};
use ecom_notify::{AccountMessage, StoreEnv, StoreTemplates};
use ecom_store::{DatabaseTransaction, Db};
use std::sync::Arc;

/// Queues email. A message exists exactly when the change that caused it was
/// committed, and goes out after the commit, retried until the server takes it.
/// Account emails are written with the stores' templates (`with_templates`; the
/// built-in ones without).
#[derive(Clone, Default)]
pub struct Mailer {
    templates: Option<StoreTemplates>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("store_templates", &self.templates.is_some()).finish()
    }
}

/// A store's branding and wording for an account email, read before the email's
/// transaction opens (on SQLite the pool may have one connection).
pub(crate) struct AccountStyle {
    tenant: Tenant,
    env: Arc<StoreEnv>,
}

impl Mailer {
    /// Writes account emails with the stores' own templates (the ones the panel edits).
    pub fn with_templates(templates: StoreTemplates) -> Self {
        Self { templates: Some(templates) }
    }

    /// The store's style for account emails to `tenant`'s accounts; `None` for the
    /// platform's own accounts, which get plain text.
    pub(crate) async fn account_style(&self, db: &Db, tenant: Option<TenantId>) -> Result<Option<AccountStyle>> {
        let Some(id) = tenant else { return Ok(None) };
        let Some(tenant) = ecom_store::tenants::find_by_id(db, id).await? else { return Ok(None) };
        let env = match &self.templates {
            Some(t) => t.load(id).await?,
            None => Arc::new(StoreEnv::builtin()),
        };
        Ok(Some(AccountStyle { tenant, env }))
    }

    /// Queues account email `template` (`password_reset`, `verify_email`) in the
    /// store's branding and wording, or `plain` (subject, text) for platform accounts
    /// and should the template fail.
    pub(crate) async fn send_account(
        &self,
        txn: &DatabaseTransaction,
        style: Option<&AccountStyle>,
        template: &'static str,
        message: &AccountMessage<'_>,
        plain: (String, String),
    ) -> Result<()> {
        let tenant = style.map(|s| s.tenant.id);
        let rendered = style.and_then(|s| {
            let ctx = ecom_notify::account_context(&s.tenant, origin(message.link), message);
            s.env
                .render_email(template, &ctx)
                .inspect_err(|e| tracing::warn!(template, error = %e, "account email template failed; sent plain text"))
                .ok()
        });
        match rendered {
            Some(r) => self.send_rendered(txn, tenant, message.email, template, &r).await,
            None => self.send(txn, tenant, message.email, &plain.0, &plain.1).await,
        }
    }

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

/// The scheme and host of an absolute link (`http://demo.localhost:8080/account/x` →
/// `http://demo.localhost:8080`): the store's address, as account links start with it.
fn origin(link: &str) -> &str {
    let host_start = link.find("://").map_or(0, |i| i + 3);
    link[host_start..].find('/').map_or(link, |i| &link[..host_start + i])
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_origin_of_a_link_is_its_scheme_and_host() {
        assert_eq!(super::origin("http://demo.localhost:8080/account/reset?token=1"), "http://demo.localhost:8080");
        assert_eq!(super::origin("https://shop.example.com"), "https://shop.example.com");
    }
}
