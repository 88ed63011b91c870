//! Web Push alerts from order events: a new order to every staff device of the store
//! that asked for them ("Alert me on new orders on this device"), and the shopper's
//! order placed / shipped to their own devices.

use crate::{PushMessage, enqueue_push};
use ecom_bus::{Event, Topic};
use ecom_core::Tenant;
use ecom_store::channels::{self, OWNER_CUSTOMER};
use ecom_store::{DatabaseTransaction, StoreError, orders::OrderRow};

/// Queues the push messages `event` calls for, in the consumer's transaction.
/// `base` is the store's address.
pub(crate) async fn queue(
    txn: &DatabaseTransaction,
    tenant: &Tenant,
    base: &str,
    order: &OrderRow,
    event: &Event,
) -> Result<(), StoreError> {
    let currency = ecom_core::Currency::parse(&order.currency).unwrap_or(tenant.currency);
    let total = crate::format_money(order.total, currency, tenant.locale.as_str());
    if event.topic == Topic::OrderPlaced {
        let alert = PushMessage {
            title: format!("New order #{} · {}", order.number, tenant.name),
            body: format!("{total} from {}", if order.email.is_empty() { "a guest" } else { order.email.as_str() }),
            url: format!("{base}/merchant/orders/{}", order.number),
        };
        for sub in channels::staff_push_subscriptions(txn, tenant.id).await? {
            enqueue_push(txn, tenant.id, sub.id, "new_order_push", &alert, Some(event.id)).await?;
        }
    }
    let shopper = match event.topic {
        Topic::OrderPlaced => Some(("order_placed_push", format!("Thanks! We have your order #{}", order.number))),
        Topic::OrderShipped => Some(("order_shipped_push", format!("Order #{} is on its way", order.number))),
        _ => None,
    };
    if let (Some((template, title)), Some(customer)) = (shopper, order.customer_id) {
        let body = if event.topic == Topic::OrderShipped && !order.tracking_number.is_empty() {
            format!("{} tracking {}", order.carrier, order.tracking_number).trim().to_owned()
        } else {
            format!("{} · {total}", tenant.name)
        };
        let message = PushMessage { title, body, url: format!("{base}/orders/{}", order.access_token) };
        for sub in channels::push_subscriptions_of(txn, tenant.id, OWNER_CUSTOMER, &[customer]).await? {
            enqueue_push(txn, tenant.id, sub.id, template, &message, Some(event.id)).await?;
        }
    }
    Ok(())
}
