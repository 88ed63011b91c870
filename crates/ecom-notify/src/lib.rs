//! Notifications: the channels a message goes out on, the templates that write it, the
//! queue's dispatcher, and the bus consumer that turns order events into messages.
//!
//! A message is rendered and queued (`notifications` table) in the transaction of the
//! change it tells about — by [`enqueue_email`] or the [`Notifications`] consumer — and
//! a [`Dispatcher`] (any number of them, on any nodes) leases due rows, sends them
//! through the row's [`Channel`], and records the outcome: sent with the provider's id,
//! retried later with backoff, or failed for good and shown in the panels' logs.
//!
//! Channel kinds: email over SMTP ([`SmtpChannel`]) when `ECOM_SMTP_URL` is set, else
//! into the dev mailbox ([`MailboxChannel`]); SMS through Twilio ([`TwilioChannel`]),
//! WhatsApp template messages through the Cloud API ([`WhatsAppChannel`]) — both into
//! the dev mailbox when no provider is configured ([`DevTextChannel`]) — Web Push
//! ([`WebPushChannel`]) and in-app ([`InAppChannel`]), filed in the account's inbox and
//! pushed to live listeners ([`InboxHub`]). SMS and WhatsApp rows go to verified phone
//! numbers only ([`enqueue_text`] refuses others). Which channels a message to a
//! customer takes is decided in one place, [`routing`]. Marketing mail (abandoned
//! carts, back in stock) is written by the [`MarketingJob`].

mod consumer;
mod dispatcher;
mod email;
mod fanout;
mod format;
pub mod inbox;
pub mod marketing;
mod push_alerts;
pub mod routing;
pub mod sms;
mod smtp;
pub mod store_templates;
mod templates;
pub mod webpush;
pub mod whatsapp;

pub use consumer::{Notifications, StoreLinks};
pub use dispatcher::{Channels, DispatchSettings, Dispatcher, Round};
pub use email::{MailboxChannel, SmtpChannel, SmtpSettings};
pub use format::{format_date, format_money};
pub use inbox::{InAppChannel, InboxHub};
pub use marketing::{LinkSigner, MarketingJob, MarketingSettings};
pub use sms::{DevTextChannel, Phone, SMS, TwilioChannel, TwilioSettings};
pub use store_templates::{AccountMessage, StoreEnv, StoreTemplates, account_context};
pub use templates::{Rendered, TemplateError, builtin_source, names as template_names, render};
pub use webpush::{PushMessage, Vapid, WEBPUSH, WebPushChannel};
pub use whatsapp::{TemplateCall, WHATSAPP, WhatsAppChannel, WhatsAppSettings};

use ecom_core::TenantId;
use ecom_store::DatabaseTransaction;

/// The channel kinds a notification row can name: this, [`INAPP`], [`SMS`],
/// [`WHATSAPP`] and [`WEBPUSH`].
pub const EMAIL: &str = "email";
/// The in-app inbox ([`InAppChannel`]).
pub const INAPP: &str = "inapp";

/// One rendered message, as a channel sends it. `Default` lets callers name only the
/// fields they use (`..Default::default()`).
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    /// The queue row's id (also used to make the email's `Message-ID`).
    pub id: uuid::Uuid,
    /// The store it is sent for; `None` for platform mail.
    pub tenant: Option<TenantId>,
    /// The sender's display name (the store's name), when not the platform's.
    pub from_name: Option<String>,
    /// An address, phone number or subscription, depending on the channel.
    pub to: String,
    pub subject: String,
    pub text: String,
    /// Empty for text-only messages.
    pub html: String,
    /// Extra headers for channels that have them (email: `List-Unsubscribe`, …).
    pub headers: Vec<(String, String)>,
    /// Where the message points, for channels that show a link (in-app).
    pub link: String,
}

/// Why a channel could not send a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth another try later: a refused or dropped connection, a timeout, a 4xx reply.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help: a 5xx reply, an invalid address.
    #[error("{0}")]
    Permanent(String),
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }
}

/// A way to reach people: sends one rendered message and returns the provider's id
/// for it.
#[async_trait::async_trait]
pub trait Channel: Send + Sync + 'static {
    /// The channel kind, as notification rows name it ([`EMAIL`], …).
    fn kind(&self) -> &'static str;
    /// For logs and the start-up banner: where messages go (never with credentials).
    fn describe(&self) -> String;
    async fn send(&self, message: &Outgoing) -> Result<String, SendError>;
    /// Whether the channel sends a batch at once ([`Channel::send_many`]) rather than
    /// one message at a time: in-app, which files a few hundred items in one
    /// transaction. The dispatcher hands such a channel chunks of its lane's round.
    fn batches(&self) -> bool {
        false
    }
    /// Sends `messages`; an outcome for each, in order. By default one after another.
    async fn send_many(&self, messages: &[Outgoing]) -> Vec<Result<String, SendError>> {
        let mut outcomes = Vec::with_capacity(messages.len());
        for m in messages {
            outcomes.push(self.send(m).await);
        }
        outcomes
    }
}

/// An email to queue.
#[derive(Debug, Clone)]
pub struct Email<'a> {
    pub to: &'a str,
    /// Which template wrote it; `plain` for text given by the caller.
    pub template: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    /// Empty for a text-only message.
    pub html: &'a str,
    /// The bus event that caused it, if any.
    pub event_id: Option<uuid::Uuid>,
}

/// Queues an email in the caller's transaction: it is sent when (and only if) the
/// transaction commits, by whichever dispatcher claims it first.
pub async fn enqueue_email(
    txn: &DatabaseTransaction,
    tenant: Option<TenantId>,
    email: &Email<'_>,
) -> Result<uuid::Uuid, ecom_store::StoreError> {
    ecom_store::notifications::enqueue(
        txn,
        ecom_store::notifications::NewNotification {
            tenant,
            channel: EMAIL,
            recipient: email.to,
            template: email.template,
            event_id: email.event_id,
            subject: email.subject,
            body_text: email.text,
            body_html: email.html,
            ..Default::default()
        },
    )
    .await
}

/// Queues an SMS (`text` is the message) or a WhatsApp message (`text` is a
/// [`TemplateCall`]'s JSON) to a customer, only when their phone is verified; returns
/// `None` (nothing queued) when it is not. `template` names the message for the logs.
pub async fn enqueue_text(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: uuid::Uuid,
    channel: &'static str,
    template: &str,
    text: &str,
    event_id: Option<uuid::Uuid>,
) -> Result<Option<uuid::Uuid>, ecom_store::StoreError> {
    let Some(phone) = ecom_store::channels::verified_phone(txn, tenant, customer).await? else { return Ok(None) };
    enqueue_to_number(txn, tenant, channel, &phone, template, text, event_id).await.map(Some)
}

/// Queues an SMS or WhatsApp message to a number the caller has checked (the phone
/// verification code goes to the number being verified).
pub async fn enqueue_to_number(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    channel: &'static str,
    phone: &str,
    template: &str,
    text: &str,
    event_id: Option<uuid::Uuid>,
) -> Result<uuid::Uuid, ecom_store::StoreError> {
    ecom_store::notifications::enqueue(
        txn,
        ecom_store::notifications::NewNotification {
            tenant: Some(tenant),
            channel,
            recipient: phone,
            template,
            event_id,
            subject: "",
            body_text: text,
            body_html: "",
            ..Default::default()
        },
    )
    .await
}

/// Adds a Web Push message to one subscription to `out`; returns its id.
pub fn push_row(
    out: &mut ecom_store::notifications::Batch,
    tenant: TenantId,
    subscription: uuid::Uuid,
    template: &str,
    message: &PushMessage,
    event_id: Option<uuid::Uuid>,
) -> uuid::Uuid {
    let title: String = message.title.chars().take(200).collect();
    out.push(ecom_store::notifications::NewNotification {
        tenant: Some(tenant),
        channel: WEBPUSH,
        recipient: &subscription.to_string(),
        template,
        event_id,
        subject: &title,
        body_text: &message.to_row_text(),
        body_html: "",
        ..Default::default()
    })
}
