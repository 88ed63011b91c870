//! Web Push alerts to the merchant: a new order to every staff device of the store
//! that asked for them ("Alert me on new orders on this device"). The shopper's own
//! devices are reached through routing, like their other channels.

use crate::{PushMessage, StoreEnv, push_row};
use ecom_bus::{Event, Topic};
use ecom_core::Tenant;
use ecom_store::channels::PushSubscriptionRow;
use ecom_store::notifications::Batch;
use ecom_store::orders::OrderRow;
use minijinja::Value;

/// Adds the staff push alerts `event` calls for to `out`, one per device in
/// `subscriptions` (the store's [`ecom_store::channels::staff_push_subscriptions`]).
/// `base` is the store's address; the text is the store's `push/new_order` wording.
#[allow(clippy::too_many_arguments)]
pub(crate) fn queue(
    out: &mut Batch,
    subscriptions: &[PushSubscriptionRow],
    tenant: &Tenant,
    base: &str,
    order: &OrderRow,
    event: &Event,
    env: &StoreEnv,
    ctx: &Value,
) {
    if event.topic != Topic::OrderPlaced || subscriptions.is_empty() {
        return;
    }
    let alert = PushMessage {
        title: format!("New order #{} · {}", order.number, tenant.name),
        body: env.render_text("push", "new_order", ctx).unwrap_or_default(),
        url: format!("{base}/merchant/orders/{}", order.number),
    };
    for sub in subscriptions {
        push_row(out, tenant.id, sub.id, "new_order_push", &alert, Some(event.id));
    }
}
