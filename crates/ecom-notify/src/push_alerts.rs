//! Web Push alerts to the merchant: a new order to every staff device of the store
//! that asked for them ("Alert me on new orders on this device"). The shopper's own
//! devices are reached through routing, like their other channels.

use crate::{PushMessage, StoreEnv, enqueue_push};
use ecom_bus::{Event, Topic};
use ecom_core::Tenant;
use ecom_store::channels;
use ecom_store::{DatabaseTransaction, StoreError, orders::OrderRow};
use minijinja::Value;

/// Queues the staff push alerts `event` calls for, in the consumer's transaction.
/// `base` is the store's address; the text is the store's `push/new_order` wording.
pub(crate) async fn queue(
    txn: &DatabaseTransaction,
    tenant: &Tenant,
    base: &str,
    order: &OrderRow,
    event: &Event,
    env: &StoreEnv,
    ctx: &Value,
) -> Result<(), StoreError> {
    if event.topic != Topic::OrderPlaced {
        return Ok(());
    }
    let subscriptions = channels::staff_push_subscriptions(txn, tenant.id).await?;
    if subscriptions.is_empty() {
        return Ok(());
    }
    let alert = PushMessage {
        title: format!("New order #{} · {}", order.number, tenant.name),
        body: env.render_text("push", "new_order", ctx).unwrap_or_default(),
        url: format!("{base}/merchant/orders/{}", order.number),
    };
    for sub in subscriptions {
        enqueue_push(txn, tenant.id, sub.id, "new_order_push", &alert, Some(event.id)).await?;
    }
    Ok(())
}
