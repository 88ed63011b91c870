//! Stores' own notification templates: per message (`order_placed`, …) and channel, a
//! store may replace the built-in wording — subject, text and HTML for email, a text
//! for the other channels. Its versions are compiled over a clone of the built-in
//! environment (so they extend the same layout and include the same partials) with the
//! same sandbox: autoescaped HTML, strict undefined values, no loader (no file or
//! network access), a fuel budget and a recursion limit, so a template can neither
//! read anything nor hang the consumer.
//!
//! A template is checked when saved — it must compile and render against a sample
//! order without touching an unknown value — and refused with the part and line
//! otherwise. One that still fails at send time (an order far bigger than the sample)
//! falls back to the built-in template, so the shopper hears anyway.
//!
//! The consumer reads a store's set through [`StoreTemplates::load`], cached per store
//! for [`CACHE_TTL`] and dropped on this node when the store saves or resets one.

use crate::consumer::order_context;
use crate::templates::{self, Rendered};
use chrono::{DateTime, Utc};
use ecom_bus::{Event, Topic};
use ecom_core::{Tenant, TenantId};
use ecom_store::notification_templates::{self as repo, SaveTemplate, TemplateRow};
use ecom_store::{Db, StoreError, orders};
use minijinja::{Environment, Value};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The channels a template can be written for. Email has a subject, a text and an
/// HTML part; the others one text.
pub const CHANNELS: &[&str] = &["email", "sms", "push", "inapp"];

/// How long a node keeps a store's compiled templates. Saving drops them at once on
/// the node that saved; other nodes pick the change up within this time.
pub const CACHE_TTL: Duration = Duration::from_secs(30);

/// Longest subject, and longest text or HTML body, a store may save.
const MAX_SUBJECT: usize = 1_000;
/// (The panel's forms are at most 64 KB in all, encoded.)
const MAX_BODY: usize = 24 * 1024;

/// A message a store can reword: its template name, what it is for, and who gets it.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Message {
    pub name: &'static str,
    pub label: &'static str,
    /// `shopper` or `staff`.
    pub audience: &'static str,
    /// The event that sends it; `None` for account emails (password reset, email
    /// confirmation), sent when the shopper asks.
    pub topic: Option<Topic>,
}

impl Message {
    /// Whether this is an account email: sent by email only, with an account context
    /// (`account`, `link`, `valid_for`) instead of an order.
    pub const fn is_account(&self) -> bool {
        self.topic.is_none()
    }

    /// The channels it can be written for.
    pub const fn channels(&self) -> &'static [&'static str] {
        if self.is_account() { &["email"] } else { CHANNELS }
    }
}

/// Every message there is, in the order of an order's life.
pub const MESSAGES: &[Message] = &[
    Message { name: "order_placed", label: "Order confirmation", audience: "shopper", topic: Some(Topic::OrderPlaced) },
    Message { name: "order_paid", label: "Payment received", audience: "shopper", topic: Some(Topic::OrderPaid) },
    Message { name: "order_shipped", label: "Order shipped", audience: "shopper", topic: Some(Topic::OrderShipped) },
    Message {
        name: "order_out_for_delivery",
        label: "Out for delivery",
        audience: "shopper",
        topic: Some(Topic::OrderOutForDelivery),
    },
    Message {
        name: "order_delivered",
        label: "Order delivered",
        audience: "shopper",
        topic: Some(Topic::OrderDelivered),
    },
    Message {
        name: "order_cancelled",
        label: "Order cancelled",
        audience: "shopper",
        topic: Some(Topic::OrderCancelled),
    },
    Message { name: "order_refunded", label: "Refund", audience: "shopper", topic: Some(Topic::OrderRefunded) },
    Message {
        name: "order_return_received",
        label: "Return received",
        audience: "shopper",
        topic: Some(Topic::OrderReturnReceived),
    },
    Message {
        name: "new_order",
        label: "New order (to the owners)",
        audience: "staff",
        topic: Some(Topic::OrderPlaced),
    },
    Message { name: "password_reset", label: "Password reset link", audience: "shopper", topic: None },
    Message { name: "verify_email", label: "Email confirmation link", audience: "shopper", topic: None },
];

/// What an account email (`password_reset`, `verify_email`) tells.
#[derive(Debug, Clone, Copy)]
pub struct AccountMessage<'a> {
    /// The account holder's name; may be empty.
    pub name: &'a str,
    pub email: &'a str,
    /// The one-time link.
    pub link: &'a str,
    /// How long the link works, in words ("30 minutes", "7 days").
    pub valid_for: &'a str,
}

/// What account email templates see: the store, the account, the link and how long
/// it works. `base` is the store's address.
pub fn account_context(tenant: &Tenant, base: &str, m: &AccountMessage<'_>) -> Value {
    minijinja::context! {
        store => crate::consumer::store_context(tenant, base),
        account => minijinja::context! { name => m.name, email => m.email },
        // Built by the caller from the store's address and a hex token.
        link => Value::from_safe_string(m.link.to_owned()),
        valid_for => m.valid_for,
    }
}

/// The message called `name`.
pub fn message(name: &str) -> Option<&'static Message> {
    MESSAGES.iter().find(|m| m.name == name)
}

/// One part of a template as a store writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Parts {
    /// Email only.
    pub subject: String,
    pub text: String,
    /// Email only; empty sends a text-only email.
    pub html: String,
}

/// Why a store's template was refused: which part, minijinja's words, and the line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("{part_label}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
pub struct Problem {
    /// `subject`, `text` or `html`.
    pub part: &'static str,
    pub part_label: &'static str,
    pub message: String,
    pub line: Option<usize>,
}

/// What the panel and the consumer need from the store's templates.
#[derive(Debug, thiserror::Error)]
pub enum TemplatesError {
    /// The store's input; nothing was saved.
    #[error(transparent)]
    Invalid(#[from] Problem),
    #[error("unknown template {0}")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A store's templates, compiled: the built-in environment with its versions on top.
pub struct StoreEnv {
    env: Option<Environment<'static>>,
    customised: Vec<(String, String)>,
}

impl StoreEnv {
    /// The built-in templates only.
    pub fn builtin() -> Self {
        Self { env: None, customised: Vec::new() }
    }

    fn env(&self) -> &Environment<'static> {
        self.env.as_ref().unwrap_or_else(|| templates::env())
    }

    /// Whether the store has its own version of `name` on `channel`.
    pub fn is_customised(&self, channel: &str, name: &str) -> bool {
        self.customised.iter().any(|(c, n)| c == channel && n == name)
    }

    /// The email `name` in the store's wording, or the built-in one when the store's
    /// fails at run time (logged).
    pub fn render_email(&self, name: &str, ctx: &Value) -> Result<Rendered, templates::TemplateError> {
        if self.is_customised(crate::EMAIL, name) {
            match templates::render_in(self.env(), "email", name, ctx) {
                Ok(r) => return Ok(r),
                Err(e) => {
                    tracing::warn!(template = name, error = %e, "a store's email template failed; sent the built-in one")
                }
            }
        }
        templates::render(name, ctx)
    }

    /// The text of message `name` on a text channel (`sms`, `push`, `inapp`): the
    /// store's version, else the built-in `<channel>/<name>.txt`, else the email's
    /// subject line; `None` when there is none of these.
    pub fn render_text(&self, channel: &str, name: &str, ctx: &Value) -> Option<String> {
        let own = format!("{channel}/{name}.txt");
        if self.is_customised(channel, name) {
            match templates::render_one(self.env(), &own, ctx) {
                Ok(t) => return Some(t.trim().to_owned()),
                Err(e) => {
                    tracing::warn!(template = %own, error = %e, "a store's template failed; sent the built-in one")
                }
            }
        }
        let builtin = templates::env();
        let fallback = if builtin.get_template(&own).is_ok() { own } else { format!("email/{name}.subject.txt") };
        match templates::render_one(builtin, &fallback, ctx) {
            Ok(t) => Some(t.split_whitespace().collect::<Vec<_>>().join(" ")),
            Err(e) => {
                tracing::warn!(template = %fallback, error = %e, "built-in template failed");
                None
            }
        }
    }
}

/// The names a store's version of `name` takes in the environment, by part.
fn part_names(channel: &str, name: &str) -> Vec<(&'static str, &'static str, String)> {
    if channel == crate::EMAIL {
        vec![
            ("subject", "Subject", format!("email/{name}.subject.txt")),
            ("text", "Text version", format!("email/{name}.txt")),
            ("html", "HTML version", format!("email/{name}.html")),
        ]
    } else {
        vec![("text", "Text", format!("{channel}/{name}.txt"))]
    }
}

fn part_source<'a>(parts: &'a Parts, part: &str) -> &'a str {
    match part {
        "subject" => &parts.subject,
        "html" => &parts.html,
        _ => &parts.text,
    }
}

/// Adds a store's version of one template to `env`; the first part that does not
/// compile is the problem.
fn add_parts(env: &mut Environment<'static>, channel: &str, name: &str, parts: &Parts) -> Result<(), Problem> {
    for (part, label, template) in part_names(channel, name) {
        let source = part_source(parts, part).to_owned();
        env.add_template_owned(template, source).map_err(|e| Problem {
            part,
            part_label: label,
            message: e.detail().map_or_else(|| e.kind().to_string(), str::to_owned),
            line: e.line(),
        })?;
    }
    Ok(())
}

/// The built-in wording of `name` on `channel`, as the editor starts from.
pub fn default_parts(channel: &str, name: &str) -> Parts {
    let src = |t: String| templates::builtin_source(&t).unwrap_or_default();
    if channel == crate::EMAIL {
        Parts {
            subject: src(format!("email/{name}.subject.txt")).trim().to_owned(),
            text: src(format!("email/{name}.txt")),
            html: src(format!("email/{name}.html")),
        }
    } else {
        let own = src(format!("{channel}/{name}.txt"));
        let text = if own.is_empty() { src(format!("email/{name}.subject.txt")).trim().to_owned() } else { own };
        Parts { text, ..Parts::default() }
    }
}

/// What a preview or test send shows: the rendered message.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preview {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Whether a real order of the store was used (else a made-up one).
    pub real_order: Option<i64>,
}

/// Checks and renders a store's version of `name` on `channel` against `ctx`.
fn trial(channel: &str, name: &str, parts: &Parts, ctx: &Value) -> Result<Preview, Problem> {
    if parts.subject.len() > MAX_SUBJECT {
        return Err(Problem {
            part: "subject",
            part_label: "Subject",
            message: format!("at most {MAX_SUBJECT} characters"),
            line: None,
        });
    }
    for (part, label) in [("text", "Text"), ("html", "HTML version")] {
        if part_source(parts, part).len() > MAX_BODY {
            return Err(Problem { part, part_label: label, message: "at most 24 KB".into(), line: None });
        }
    }
    if channel == crate::EMAIL && parts.subject.trim().is_empty() {
        return Err(Problem { part: "subject", part_label: "Subject", message: "enter a subject".into(), line: None });
    }
    if parts.text.trim().is_empty() {
        let label = if channel == crate::EMAIL { "Text version" } else { "Text" };
        return Err(Problem {
            part: "text",
            part_label: label,
            message: "enter the text (every email has a plain-text version)".into(),
            line: None,
        });
    }
    let mut env = templates::env().clone();
    add_parts(&mut env, channel, name, parts)?;
    let mut out = Preview { subject: String::new(), text: String::new(), html: String::new(), real_order: None };
    for (part, label, template) in part_names(channel, name) {
        let rendered = templates::render_one(&env, &template, ctx).map_err(|e| {
            let err = e.source_error();
            let elsewhere = err.name().filter(|n| *n != template).map(|n| format!(" (in {n})")).unwrap_or_default();
            Problem {
                part,
                part_label: label,
                message: format!("{}{elsewhere}", err.detail().map_or_else(|| err.kind().to_string(), str::to_owned)),
                line: err.line(),
            }
        })?;
        match part {
            "subject" => out.subject = rendered.split_whitespace().collect::<Vec<_>>().join(" "),
            "html" => out.html = if rendered.trim().is_empty() { String::new() } else { rendered },
            _ => out.text = rendered.trim().to_owned() + "\n",
        }
    }
    Ok(out)
}

/// Stores' templates, with a per-store cache of the compiled sets. Cheap to clone
/// (one cache shared by the clones).
#[derive(Clone)]
pub struct StoreTemplates {
    db: Db,
    cache: moka::future::Cache<TenantId, Arc<StoreEnv>>,
}

impl StoreTemplates {
    pub fn new(db: Db) -> Self {
        Self { db, cache: moka::future::Cache::builder().max_capacity(10_000).time_to_live(CACHE_TTL).build() }
    }

    /// The store's templates, compiled; from the cache when it has them.
    pub async fn load(&self, tenant: TenantId) -> Result<Arc<StoreEnv>, StoreError> {
        let db = self.db.clone();
        self.cache
            .try_get_with(tenant, async move {
                let txn = db.tenant_txn(tenant).await?;
                let rows = repo::list(&txn, tenant).await?;
                txn.commit().await.map_err(StoreError::from)?;
                Ok::<_, StoreError>(Arc::new(compile(&rows)))
            })
            .await
            .map_err(|e| match Arc::try_unwrap(e) {
                Ok(e) => e,
                Err(shared) => StoreError::Corrupt { table: "notification_templates", detail: shared.to_string() },
            })
    }

    /// Drops the store's compiled set on this node (after a save or reset).
    pub async fn invalidate(&self, tenant: TenantId) {
        self.cache.invalidate(&tenant).await;
    }

    /// The store's saved versions.
    pub async fn list(&self, tenant: TenantId) -> Result<Vec<TemplateRow>, StoreError> {
        let txn = self.db.tenant_txn(tenant).await?;
        let rows = repo::list(&txn, tenant).await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(rows)
    }

    /// What the editor shows for `name` on `channel`: the store's version, or the
    /// built-in one (and whether it is the store's).
    pub async fn current(&self, tenant: TenantId, channel: &str, name: &str) -> Result<(Parts, bool), TemplatesError> {
        known(channel, name)?;
        let txn = self.db.tenant_txn(tenant).await?;
        let row = repo::get(&txn, tenant, channel, name).await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(match row {
            Some(r) => (Parts { subject: r.subject, text: r.body_text, html: r.body_html }, true),
            None => (default_parts(channel, name), false),
        })
    }

    /// Renders `parts` with the store's latest order (or a made-up one) without saving.
    pub async fn preview(
        &self,
        tenant: &Tenant,
        base: &str,
        channel: &str,
        name: &str,
        parts: &Parts,
    ) -> Result<Preview, TemplatesError> {
        known(channel, name)?;
        let (ctx, real) = self.sample(tenant, base, name).await?;
        let mut p = trial(channel, name, parts, &ctx)?;
        p.real_order = real;
        Ok(p)
    }

    /// Checks `parts` and saves them as the store's version; nothing is saved when
    /// they do not compile or render.
    #[allow(clippy::too_many_arguments)]
    pub async fn save(
        &self,
        tenant: &Tenant,
        base: &str,
        channel: &str,
        name: &str,
        parts: &Parts,
        by: &str,
    ) -> Result<(), TemplatesError> {
        known(channel, name)?;
        // Checked against the made-up order too: it has a discount, an address,
        // tracking and a return, so branches a real order skips are exercised.
        let (ctx, _) = self.sample(tenant, base, name).await?;
        trial(channel, name, parts, &ctx)?;
        trial(channel, name, parts, &made_up_context(tenant, base, name))?;
        let txn = self.db.tenant_txn(tenant.id).await?;
        let save = SaveTemplate {
            name,
            channel,
            subject: if channel == crate::EMAIL { parts.subject.trim() } else { "" },
            body_text: &parts.text,
            body_html: if channel == crate::EMAIL { &parts.html } else { "" },
            updated_by: by,
        };
        repo::save(&txn, tenant.id, &save).await?;
        orders::audit(&txn, tenant.id, by, "notification_template.save", &format!("{channel}/{name}"), "").await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.invalidate(tenant.id).await;
        Ok(())
    }

    /// Drops the store's version: the built-in one writes the message again.
    pub async fn reset(&self, tenant: TenantId, channel: &str, name: &str, by: &str) -> Result<bool, TemplatesError> {
        known(channel, name)?;
        let txn = self.db.tenant_txn(tenant).await?;
        let had = repo::reset(&txn, tenant, channel, name).await?;
        if had {
            orders::audit(&txn, tenant, by, "notification_template.reset", &format!("{channel}/{name}"), "").await?;
        }
        txn.commit().await.map_err(StoreError::from)?;
        self.invalidate(tenant).await;
        Ok(had)
    }

    /// Renders `parts` with the sample order and queues the result to `to` (the staff
    /// member asking) through the normal queue, subject marked as a test. A text
    /// channel's message goes as a plain-text email.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_test(
        &self,
        tenant: &Tenant,
        base: &str,
        channel: &str,
        name: &str,
        parts: &Parts,
        to: &str,
    ) -> Result<Uuid, TemplatesError> {
        let p = self.preview(tenant, base, channel, name, parts).await?;
        let subject = if channel == crate::EMAIL {
            format!("[Test] {}", p.subject)
        } else {
            format!("[Test] {} ({channel})", message(name).map_or(name, |m| m.label))
        };
        let txn = self.db.tenant_txn(tenant.id).await?;
        let id = crate::enqueue_email(
            &txn,
            Some(tenant.id),
            &crate::Email {
                to,
                template: name,
                subject: &subject,
                text: &p.text,
                html: if channel == crate::EMAIL { &p.html } else { "" },
                event_id: None,
            },
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(id)
    }

    /// The context a preview renders with: the store's latest order, or a made-up
    /// one when it has none yet.
    async fn sample(&self, tenant: &Tenant, base: &str, name: &str) -> Result<(Value, Option<i64>), StoreError> {
        if message(name).is_some_and(Message::is_account) {
            return Ok((made_up_context(tenant, base, name), None));
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        let filter = orders::OrderFilter { limit: 1, ..Default::default() };
        let (rows, _) = orders::list_orders(&txn, tenant.id, &filter).await?;
        let Some(order) = rows.into_iter().next() else {
            txn.commit().await.map_err(StoreError::from)?;
            return Ok((made_up_context(tenant, base, name), None));
        };
        let lines = orders::order_lines(&txn, tenant.id, &[order.id]).await?;
        txn.commit().await.map_err(StoreError::from)?;
        // A return of the first item, for the return message.
        let returned: Vec<serde_json::Value> = lines
            .first()
            .map(|l| serde_json::json!({ "line_id": l.id, "variant_id": l.variant_id, "quantity": 1 }))
            .into_iter()
            .collect();
        let event = sample_event(tenant.id, &order, returned, Utc::now());
        let number = order.number;
        Ok((order_context(tenant, base, &order, &lines, &event), Some(number)))
    }
}

fn known(channel: &str, name: &str) -> Result<(), TemplatesError> {
    if !message(name).is_some_and(|m| m.channels().contains(&channel)) {
        return Err(TemplatesError::Unknown(format!("{channel}/{name}")));
    }
    Ok(())
}

fn compile(rows: &[TemplateRow]) -> StoreEnv {
    if rows.is_empty() {
        return StoreEnv::builtin();
    }
    let mut env = templates::env().clone();
    let mut customised = Vec::new();
    for r in rows {
        let parts = Parts { subject: r.subject.clone(), text: r.body_text.clone(), html: r.body_html.clone() };
        // Checked when saved; one that no longer compiles (the built-in layout
        // changed under it) is skipped, and the built-in one serves.
        let mut trial = env.clone();
        match add_parts(&mut trial, &r.channel, &r.name, &parts) {
            Ok(()) => {
                env = trial;
                customised.push((r.channel.clone(), r.name.clone()));
            }
            Err(p) => tracing::warn!(template = %r.name, channel = %r.channel, problem = %p,
                "a stored notification template does not compile; the built-in one is used"),
        }
    }
    StoreEnv { env: Some(env), customised }
}

fn sample_event(
    tenant: TenantId,
    order: &orders::OrderRow,
    returned: Vec<serde_json::Value>,
    at: DateTime<Utc>,
) -> Event {
    Event {
        id: Uuid::nil(),
        topic: Topic::OrderReturnReceived,
        version: 1,
        tenant_id: tenant.0,
        occurred_at: at,
        data: serde_json::json!({
            "order_id": order.id, "number": order.number, "status": order.status,
            "payment_status": order.payment_status, "return_status": order.return_status,
            "total": order.total, "refunded": order.refunded, "currency": order.currency,
            "email": order.email, "returned": returned, "restocked": true,
        }),
    }
}

/// A realistic order for a store that has none yet: two items, a discount,
/// shipping, tax, an address, tracking, and one item returned; for an account email,
/// a made-up shopper and link.
fn made_up_context(tenant: &Tenant, base: &str, name: &str) -> Value {
    if message(name).is_some_and(Message::is_account) {
        let link = format!("{base}/account/{}?token=0123456789abcdef", name.replace('_', "-"));
        let valid_for = if name == "password_reset" { "60 minutes" } else { "7 days" };
        let m = AccountMessage { name: "Jamie Rivera", email: "jamie.rivera@example.com", link: &link, valid_for };
        return account_context(tenant, base, &m);
    }
    let now = Utc::now();
    let id = Uuid::nil();
    let unit = |major: i64| major * 10i64.pow(u32::from(tenant.currency.minor_units()));
    let lines = vec![
        made_up_line(id, 1, "Merino Wool Beanie", "Charcoal", "BEANIE-CH", unit(28), 2),
        made_up_line(id, 2, "Canvas Tote Bag", "", "TOTE-NAT", unit(19), 1),
    ];
    let subtotal = unit(28) * 2 + unit(19);
    let discount = subtotal / 10;
    let shipping = unit(5);
    let tax = (subtotal - discount) * 625 / 10_000;
    let order = orders::OrderRow {
        id,
        tenant_id: tenant.id.0,
        number: 1001,
        cart_id: id,
        access_token: "sample".into(),
        customer_id: None,
        email: "jamie.rivera@example.com".into(),
        phone: String::new(),
        address: serde_json::json!({
            "name": "Jamie Rivera", "line1": "42 Orchard Lane", "line2": "", "city": "Springfield",
            "region": "IL", "postal_code": "62704", "country": "US", "phone": ""
        }),
        shipping_code: "standard".into(),
        shipping_title: "Standard shipping".into(),
        currency: tenant.currency.code().to_owned(),
        subtotal,
        discount,
        shipping,
        tax,
        taxes_included: false,
        total: subtotal - discount + shipping + tax,
        refunded: 0,
        discount_code: "WELCOME10".into(),
        status: "shipped".into(),
        payment_status: "paid".into(),
        return_status: "none".into(),
        payment_provider: "manual".into(),
        carrier: "UPS".into(),
        tracking_number: "1Z999AA10123456784".into(),
        placed_at: now,
        expires_at: None,
        updated_at: now,
    };
    let returned = vec![serde_json::json!({ "line_id": lines[0].id, "variant_id": null, "quantity": 1 })];
    let event = sample_event(tenant.id, &order, returned, now);
    order_context(tenant, base, &order, &lines, &event)
}

fn made_up_line(
    order: Uuid,
    n: u128,
    title: &str,
    variant: &str,
    sku: &str,
    unit_price: i64,
    quantity: i32,
) -> orders::LineRow {
    orders::LineRow {
        id: Uuid::from_u128(n),
        tenant_id: Uuid::nil(),
        order_id: order,
        product_id: None,
        variant_id: None,
        title: title.into(),
        variant_title: variant.into(),
        sku: sku.into(),
        unit_price,
        quantity,
        fulfilled: quantity,
        weight_grams: 0,
        position: i32::try_from(n).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tenant() -> Tenant {
        Tenant {
            id: TenantId(Uuid::now_v7()),
            slug: ecom_core::Slug::parse("demo").unwrap(),
            name: "Demo <Shop>".into(),
            status: ecom_core::TenantStatus::Active,
            currency: ecom_core::Currency::parse("EUR").unwrap(),
            locale: ecom_core::Locale::parse("de-DE").unwrap(),
            brand: Default::default(),
            primary_domain: None,
        }
    }

    #[test]
    fn every_default_passes_its_own_check_with_the_made_up_order() {
        let t = tenant();
        for m in MESSAGES {
            for channel in m.channels() {
                let ctx = made_up_context(&t, "http://demo.localhost", m.name);
                let p = trial(channel, m.name, &default_parts(channel, m.name), &ctx)
                    .unwrap_or_else(|e| panic!("{channel}/{}: {e}", m.name));
                let what = if m.is_account() { "token=0123456789abcdef" } else { "1001" };
                assert!(p.text.contains(what), "{channel}/{}: {}", m.name, p.text);
                assert!(!p.text.contains("&lt;") && !p.text.contains("&amp;"), "{channel}/{}: {}", m.name, p.text);
            }
        }
        assert_eq!(message("password_reset").unwrap().channels(), ["email"]);
        assert!(known("sms", "password_reset").is_err() && known("email", "verify_email").is_ok());
        // Money follows the store's locale.
        let p = trial("email", "order_placed", &default_parts("email", "order_placed"), &made_up_context(&t, "", ""))
            .unwrap();
        assert!(p.text.contains("€") && p.text.contains(','), "{}", p.text);
    }

    #[test]
    fn bad_syntax_and_unknown_values_are_refused_with_the_part_and_line() {
        let t = tenant();
        let ctx = made_up_context(&t, "", "");
        let mut parts = default_parts("email", "order_shipped");
        parts.html = "<p>Hello</p>\n<p>{% if order.number %}</p>".into();
        let p = trial("email", "order_shipped", &parts, &ctx).unwrap_err();
        assert_eq!((p.part, p.line), ("html", Some(2)), "{p}");
        parts = default_parts("email", "order_shipped");
        parts.text = "Hi\n\n{{ order.nonsense }}".into();
        let p = trial("email", "order_shipped", &parts, &ctx).unwrap_err();
        assert_eq!((p.part, p.line), ("text", Some(3)), "{p}");
        assert!(p.to_string().starts_with("Text version, line 3:"), "{p}");
    }

    #[test]
    fn a_runaway_template_is_stopped() {
        let t = tenant();
        let ctx = made_up_context(&t, "", "");
        let parts = Parts {
            text: "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}".into(),
            ..Parts::default()
        };
        let started = std::time::Instant::now();
        assert!(trial("sms", "order_shipped", &parts, &ctx).is_err());
        assert!(started.elapsed() < Duration::from_secs(5));
        let recursive =
            Parts { text: "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}".into(), ..Parts::default() };
        assert!(trial("sms", "order_shipped", &recursive, &ctx).is_err());
    }

    #[test]
    fn a_stored_version_replaces_the_built_in_one_and_others_stay() {
        let t = tenant();
        let ctx = made_up_context(&t, "", "");
        let row = TemplateRow {
            id: Uuid::now_v7(),
            tenant_id: t.id.0,
            name: "order_shipped".into(),
            channel: "email".into(),
            subject: "Parcel {{ order.number }} left".into(),
            body_text: "Off it goes: {{ order.tracking_number }}".into(),
            body_html: String::new(),
            updated_by: "staff".into(),
            updated_at: Utc::now(),
        };
        let env = compile(&[row]);
        let r = env.render_email("order_shipped", &ctx).unwrap();
        assert_eq!(r.subject, "Parcel 1001 left");
        assert_eq!(r.text, "Off it goes: 1Z999AA10123456784\n");
        assert!(r.html.is_empty(), "text only");
        let paid = env.render_email("order_paid", &ctx).unwrap();
        assert_eq!(paid, templates::render("order_paid", &ctx).unwrap());
        assert!(env.render_text("sms", "order_shipped", &ctx).unwrap().contains("1001"));
    }
}
