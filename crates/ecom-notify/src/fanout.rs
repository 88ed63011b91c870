//! Queues one message to one customer on each channel [`crate::routing`] chose for it,
//! into the caller's [`Batch`] (written in its transaction): the email as rendered, the text channels (SMS, push,
//! in-app) in the store's wording for that channel ([`StoreEnv::render_text`]), and
//! WhatsApp as a call of the approved template of the same name.
//!
//! The order consumer and the marketing job both go through here, so every message
//! takes the same path from a routing decision to queue rows.

use crate::routing::{self, Contacts};
use crate::{PushMessage, Rendered, StoreEnv, TemplateCall};
use ecom_core::Tenant;
use ecom_store::inbox::Recipient;
use ecom_store::notifications::{Batch, NewNotification};
use minijinja::Value;
use uuid::Uuid;

/// One message, written for every channel it may take.
pub(crate) struct CustomerMessage<'a> {
    pub tenant: &'a Tenant,
    /// The store's address (`http://demo.localhost:8080`).
    pub base: &'a str,
    /// The message's name (`order_shipped`), which names its template on every channel.
    pub template: &'static str,
    pub ctx: &'a Value,
    /// The store's templates (or the built-in ones) for the text channels.
    pub env: &'a StoreEnv,
    pub email: &'a Rendered,
    /// Extra email headers (`List-Unsubscribe` on marketing).
    pub email_headers: Vec<(String, String)>,
    /// A path in the store the in-app item and a push click open (`/account/orders/1001`).
    pub link: String,
    /// The WhatsApp template's body parameters, `{{1}}`, `{{2}}`… in order.
    pub whatsapp: Vec<String>,
    /// The bus event that caused it, if any.
    pub event_id: Option<Uuid>,
}

impl CustomerMessage<'_> {
    /// The message on a text channel: the store's or built-in text for it, else the
    /// email's subject line.
    fn text(&self, channel: &str) -> String {
        self.env.render_text(channel, self.template, self.ctx).unwrap_or_else(|| self.email.subject.clone())
    }

    /// The in-app item's body: the store's in-app text when it wrote one, else the
    /// email's first line.
    fn inapp_text(&self) -> String {
        if self.env.is_customised(crate::INAPP, self.template) {
            self.text(crate::INAPP)
        } else {
            crate::marketing::first_line(&self.email.text)
        }
    }

    fn row<'r>(&'r self, channel: &'r str, recipient: &'r str, subject: &'r str, text: &'r str) -> NewNotification<'r> {
        NewNotification {
            tenant: Some(self.tenant.id),
            channel,
            recipient,
            template: self.template,
            event_id: self.event_id,
            subject,
            body_text: text,
            body_html: "",
            headers: Vec::new(),
            link: "",
        }
    }
}

/// WhatsApp's language code for a store locale: `en-US` → `en_US`.
fn whatsapp_language(locale: &str) -> String {
    locale.replace('-', "_")
}

/// Queues `m` on each of `channels` (routing's names) the contacts can be reached on;
/// returns how many rows were queued.
pub(crate) fn queue(out: &mut Batch, contacts: &Contacts, channels: &[&'static str], m: &CustomerMessage<'_>) -> usize {
    let before = out.len();
    for &channel in channels {
        match channel {
            routing::EMAIL => {
                let Some(to) = contacts.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) else { continue };
                out.push(NewNotification {
                    body_html: &m.email.html,
                    headers: m.email_headers.clone(),
                    ..m.row(crate::EMAIL, to, &m.email.subject, &m.email.text)
                });
            }
            routing::INAPP => {
                let Some(account) = contacts.account else { continue };
                let to = Recipient::Customer(account).address();
                let text = m.inapp_text();
                out.push(NewNotification { link: &m.link, ..m.row(crate::INAPP, &to, &m.email.subject, &text) });
            }
            routing::SMS => {
                let Some(phone) = contacts.verified_phone.as_deref() else { continue };
                out.push(m.row(crate::SMS, phone, "", &m.text(crate::SMS)));
            }
            routing::WHATSAPP => {
                let Some(phone) = contacts.verified_phone.as_deref() else { continue };
                let call = TemplateCall {
                    template: m.template.to_owned(),
                    language: whatsapp_language(m.tenant.locale.as_str()),
                    parameters: m.whatsapp.clone(),
                };
                out.push(m.row(crate::WHATSAPP, phone, "", &call.to_row_text()));
            }
            // Routing's `push` is the `webpush` row kind, one row per device.
            routing::PUSH => {
                if contacts.push_subscriptions.is_empty() {
                    continue;
                }
                let message = PushMessage {
                    title: m.tenant.name.clone(),
                    body: m.text("push"),
                    url: format!("{}{}", m.base, m.link),
                };
                for sub in &contacts.push_subscriptions {
                    crate::push_row(out, m.tenant.id, *sub, m.template, &message, m.event_id);
                }
            }
            _ => {}
        }
    }
    out.len() - before
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatsapp_languages_use_underscores() {
        assert_eq!(whatsapp_language("en-US"), "en_US");
        assert_eq!(whatsapp_language("de"), "de");
    }
}
