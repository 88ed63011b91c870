//! The `notifications` bus consumer: order events become messages to the shopper
//! (email always, in-app and other channels as [`crate::routing`] says) and, for a new
//! order, emails to the store's owners and in-app items to all its staff; rendered and
//! queued in the transaction that also holds the consumer's receipt, so a redelivered
//! event queues nothing twice.

use crate::fanout::CustomerMessage;
use crate::format::{format_date, format_money};
use crate::routing::{self, Kind};
use crate::{EMAIL, INAPP, StoreTemplates};
use ecom_bus::{Consumer, ConsumerError, Event, Topic};
use ecom_core::{StaffRole, Tenant, TenantId};
use ecom_store::inbox::Recipient;
use ecom_store::notifications::{Batch, NewNotification};
use ecom_store::{Db, StoreError, orders};
use minijinja::{Value, context};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// How to write a store's public address (`http://demo.localhost:8080`), for links in
/// messages.
#[derive(Clone)]
pub struct StoreLinks(Arc<dyn Fn(&Tenant) -> String + Send + Sync>);

impl StoreLinks {
    pub fn new(f: impl Fn(&Tenant) -> String + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    pub fn base(&self, t: &Tenant) -> String {
        (self.0)(t).trim_end_matches('/').to_owned()
    }
}

/// The consumer.
pub struct Notifications {
    db: Db,
    links: StoreLinks,
    templates: StoreTemplates,
}

impl Notifications {
    pub const NAME: &'static str = "notifications";

    pub fn new(db: Db, links: StoreLinks) -> Self {
        Self { templates: StoreTemplates::new(db.clone()), db, links }
    }

    /// Shares the stores' templates (and their cache) with the panel that edits them.
    pub fn with_templates(mut self, templates: StoreTemplates) -> Self {
        self.templates = templates;
        self
    }
}

/// The shopper's template for each topic this consumer wants.
fn shopper_template(topic: Topic) -> Option<&'static str> {
    Some(match topic {
        Topic::OrderPlaced => "order_placed",
        Topic::OrderPaid => "order_paid",
        Topic::OrderShipped => "order_shipped",
        Topic::OrderOutForDelivery => "order_out_for_delivery",
        Topic::OrderDelivered => "order_delivered",
        Topic::OrderReturnReceived => "order_return_received",
        Topic::OrderCancelled => "order_cancelled",
        Topic::OrderRefunded | Topic::OrderPartiallyRefunded => "order_refunded",
        _ => return None,
    })
}

const TOPICS: &[Topic] = &[
    Topic::OrderPlaced,
    Topic::OrderPaid,
    Topic::OrderShipped,
    Topic::OrderOutForDelivery,
    Topic::OrderDelivered,
    Topic::OrderReturnReceived,
    Topic::OrderCancelled,
    Topic::OrderRefunded,
    Topic::OrderPartiallyRefunded,
];

fn failed(e: impl std::fmt::Display) -> ConsumerError {
    ConsumerError::failed(e.to_string())
}

impl Notifications {
    /// Handles events of one store together: one transaction holds every receipt and
    /// every message queued for them; the orders, their lines, the store's staff and
    /// devices and each customer's routing are read once, and the messages are written
    /// in multi-row inserts.
    async fn handle_store(&self, tenant: TenantId, events: Vec<&Event>) -> Result<(), ConsumerError> {
        // Read before the consumer's transaction opens: on SQLite the pool may have a
        // single connection.
        let Some(tenant) = ecom_store::tenants::find_by_id(&self.db, tenant).await? else { return Ok(()) };
        let store_templates = self.templates.load(tenant.id).await?;
        let mut work = Vec::with_capacity(events.len());
        for event in events {
            let Some(template) = shopper_template(event.topic) else { continue };
            work.push((event, template, event.order().map_err(failed)?.order_id));
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        let ids: Vec<Uuid> = work.iter().map(|(e, _, _)| e.id).collect();
        let fresh = ecom_store::bus::first_receipts(&txn, tenant.id, Self::NAME, &ids).await?;
        // Events applied before (a redelivery) queue nothing again.
        work.retain(|(e, _, _)| fresh.contains(&e.id));
        let mut order_ids: Vec<Uuid> = work.iter().map(|(_, _, id)| *id).collect();
        order_ids.sort_unstable();
        order_ids.dedup();
        // An order that is gone (its store was deleted) keeps the receipt and sends nothing.
        let orders: HashMap<Uuid, orders::OrderRow> =
            orders::orders_by_ids(&txn, tenant.id, &order_ids).await?.into_iter().map(|o| (o.id, o)).collect();
        let mut lines: HashMap<Uuid, Vec<orders::LineRow>> = HashMap::new();
        for line in orders::order_lines(&txn, tenant.id, &order_ids).await? {
            lines.entry(line.order_id).or_default().push(line);
        }
        let new_orders = work.iter().any(|(e, _, id)| e.topic == Topic::OrderPlaced && orders.contains_key(id));
        let (staff, staff_devices) = if new_orders {
            (
                ecom_store::accounts::list_staff(&txn, tenant.id).await?,
                ecom_store::channels::staff_push_subscriptions(&txn, tenant.id).await?,
            )
        } else {
            Default::default()
        };
        let base = self.links.base(&tenant);
        let mut routes: HashMap<(Uuid, String), (routing::Preferences, routing::Contacts)> = HashMap::new();
        let mut out = Batch::default();
        for (event, template, order_id) in work {
            let Some(order) = orders.get(&order_id) else { continue };
            let ctx = order_context(&tenant, &base, order, lines.get(&order_id).map_or(&[], Vec::as_slice), event);
            // The shopper: email always (transactional), other channels as routed. A
            // guest order goes to the typed address only (`routing::load`'s rule for
            // guests), which for order updates is the email: nothing to read.
            let guest;
            let (prefs, contacts) = match order.customer_id {
                Some(customer) => {
                    let key = (customer, order.email.clone());
                    if !routes.contains_key(&key) {
                        let route = routing::load(&txn, tenant.id, Some(customer), &order.email).await?;
                        routes.insert(key.clone(), route);
                    }
                    &routes[&key]
                }
                None => {
                    let email = Some(order.email.trim().to_owned()).filter(|e| !e.is_empty());
                    guest = (routing::Preferences::default(), routing::Contacts { email, ..Default::default() });
                    &guest
                }
            };
            let email = store_templates.render_email(template, &ctx).map_err(failed)?;
            let message = CustomerMessage {
                tenant: &tenant,
                base: &base,
                template,
                ctx: &ctx,
                env: &store_templates,
                email: &email,
                email_headers: Vec::new(),
                link: format!("/account/orders/{}", order.number),
                whatsapp: vec![
                    tenant.name.clone(),
                    order.number.to_string(),
                    format!("{base}/orders/{}", order.access_token),
                ],
                event_id: Some(event.id),
            };
            let channels = routing::channels(Kind::OrderUpdates, prefs, contacts);
            crate::fanout::queue(&mut out, contacts, &channels, &message);
            // The staff, for a new order: the owners by email, everyone in their inbox
            // and on the devices that asked for alerts.
            if event.topic == Topic::OrderPlaced {
                let rendered = store_templates.render_email("new_order", &ctx).map_err(failed)?;
                let first = crate::marketing::first_line(&rendered.text);
                let link = format!("/merchant/orders/{}", order.number);
                for staff in &staff {
                    let inbox = Recipient::Staff(staff.id.0).address();
                    let owner = staff.role == Some(StaffRole::Owner);
                    let rows = [
                        owner.then_some((
                            EMAIL,
                            staff.email.as_str(),
                            rendered.text.as_str(),
                            rendered.html.as_str(),
                            "",
                        )),
                        Some((INAPP, inbox.as_str(), first.as_str(), "", link.as_str())),
                    ];
                    for (channel, to, text, html, link) in rows.into_iter().flatten() {
                        out.push(NewNotification {
                            tenant: Some(tenant.id),
                            channel,
                            recipient: to,
                            template: "new_order",
                            event_id: Some(event.id),
                            subject: &rendered.subject,
                            body_text: text,
                            body_html: html,
                            headers: Vec::new(),
                            link,
                        });
                    }
                }
                crate::push_alerts::queue(
                    &mut out,
                    &staff_devices,
                    &tenant,
                    &base,
                    order,
                    event,
                    &store_templates,
                    &ctx,
                );
            }
        }
        out.write(&txn).await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Consumer for Notifications {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn topics(&self) -> &[Topic] {
        TOPICS
    }

    async fn handle(&self, event: &Event) -> Result<(), ConsumerError> {
        self.handle_store(event.tenant(), vec![event]).await
    }

    fn batches(&self) -> bool {
        true
    }

    async fn handle_batch(&self, events: &[Event]) -> Vec<Result<(), ConsumerError>> {
        ecom_bus::consumer::by_store(events, |tenant, group| self.handle_store(tenant, group)).await
    }
}

/// What the order templates see: the store (name, colours, logo), the order with
/// money and dates written for the store's locale (orders keep no locale of their
/// own), and links.
pub(crate) fn order_context(
    tenant: &Tenant,
    base: &str,
    order: &orders::OrderRow,
    lines: &[orders::LineRow],
    event: &Event,
) -> Value {
    let locale = tenant.locale.as_str();
    let currency = ecom_core::Currency::parse(&order.currency).unwrap_or(tenant.currency);
    let money = |minor: i64| format_money(minor, currency, locale);
    let returned = returned_lines(lines, event);
    let lines: Vec<Value> = lines
        .iter()
        .map(|l| {
            context! {
                title => l.title.clone(),
                variant => l.variant_title.clone(),
                sku => l.sku.clone(),
                quantity => l.quantity,
                unit_price => money(l.unit_price),
                total => money(l.unit_price.saturating_mul(i64::from(l.quantity))),
            }
        })
        .collect();
    let address: Option<ecom_core::checkout::Address> = serde_json::from_value(order.address.clone()).ok();
    let address_lines: Vec<String> = address
        .map(|a| {
            [
                a.name,
                a.line1,
                a.line2,
                format!("{} {} {}", a.postal_code, a.city, a.region).trim().to_owned(),
                a.country,
            ]
            .into_iter()
            .filter(|s| !s.trim().is_empty())
            .collect()
        })
        .unwrap_or_default();
    // Links are built here from checked parts only (the store's slug, the platform
    // domain, hex tokens, numbers, content-addressed file names), so they go into the
    // HTML as they are: escaping `/` as `&#x2f;` trips some mail clients' link detection.
    let link = Value::from_safe_string;
    context! {
        store => store_context(tenant, base),
        order => context! {
            number => order.number,
            url => link(format!("{base}/orders/{}", order.access_token)),
            admin_url => link(format!("{base}/merchant/orders/{}", order.number)),
            placed_on => format_date(order.placed_at, locale),
            email => order.email.clone(),
            lines,
            subtotal => money(order.subtotal),
            discount => (order.discount > 0).then(|| money(order.discount)),
            discount_code => order.discount_code.clone(),
            shipping => money(order.shipping),
            shipping_title => order.shipping_title.clone(),
            tax => money(order.tax),
            taxes_included => order.taxes_included,
            total => money(order.total),
            refunded => money(order.refunded),
            fully_refunded => order.refunded >= order.total,
            payment_status => order.payment_status.clone(),
            payment_provider => order.payment_provider.clone(),
            carrier => order.carrier.clone(),
            tracking_number => order.tracking_number.clone(),
            address => address_lines,
            returned,
            restocked => event.data.get("restocked").and_then(serde_json::Value::as_bool).unwrap_or(false),
        },
        today => format_date(event.occurred_at, locale),
    }
}

/// The store as message templates see it: name, address, brand colours, logo.
pub(crate) fn store_context(tenant: &Tenant, base: &str) -> Value {
    let color = tenant.brand.color_or_default();
    // Built from checked parts only (see `order_context`), so marked safe.
    let link = Value::from_safe_string;
    context! {
        name => tenant.name.clone(),
        url => link(base.to_owned()),
        color => color.hex(),
        ink => color.ink().hex(),
        link => color.on_white().hex(),
        logo_url => tenant.brand.logo.as_ref().map(|l| link(format!("{base}/media/{l}"))),
    }
}

/// What came back, on `order.return_received`: the lines' titles and quantities.
fn returned_lines(lines: &[orders::LineRow], event: &Event) -> Vec<Value> {
    let returned = event.order().map(|d| d.returned).unwrap_or_default();
    returned
        .iter()
        .filter_map(|r| {
            let l = lines.iter().find(|l| l.id == r.line_id)?;
            Some(context! { title => l.title.clone(), variant => l.variant_title.clone(), quantity => r.quantity })
        })
        .collect()
}
