//! The event catalogue: every topic the platform publishes, its schema version, the
//! envelope consumers receive, and typed views of the data.
//!
//! A topic string that is not in the catalogue is refused when parsed, so a typo in a
//! producer shows up in tests instead of as an event nobody receives.

use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Every topic in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    OrderPlaced,
    OrderAuthorized,
    OrderPaid,
    OrderFulfilled,
    OrderPartiallyFulfilled,
    /// Shipped with a carrier and tracking number (`carrier`, `tracking_number` set).
    OrderShipped,
    /// The carrier reports the parcel on its last leg (`status` is `out_for_delivery`);
    /// from the merchant panel or a carrier update through the integrations API.
    OrderOutForDelivery,
    /// The parcel arrived (`status` is `delivered`).
    OrderDelivered,
    OrderCancelled,
    OrderExpired,
    OrderRefunded,
    OrderPartiallyRefunded,
    OrderReturnRequested,
    /// Returned goods arrived back (`return_status` is `received`); `returned` lists
    /// what came back and `restocked` whether it went back into stock.
    OrderReturnReceived,
    ProductCreated,
    ProductUpdated,
    InventoryLow,
    CustomerCreated,
}

impl Topic {
    /// Every topic, the order topics first.
    pub const ALL: &[Topic] = &[
        Topic::OrderPlaced,
        Topic::OrderAuthorized,
        Topic::OrderPaid,
        Topic::OrderFulfilled,
        Topic::OrderPartiallyFulfilled,
        Topic::OrderShipped,
        Topic::OrderOutForDelivery,
        Topic::OrderDelivered,
        Topic::OrderCancelled,
        Topic::OrderExpired,
        Topic::OrderRefunded,
        Topic::OrderPartiallyRefunded,
        Topic::OrderReturnRequested,
        Topic::OrderReturnReceived,
        Topic::ProductCreated,
        Topic::ProductUpdated,
        Topic::InventoryLow,
        Topic::CustomerCreated,
    ];

    /// Every order topic (their data is an [`OrderData`]): the first of [`Self::ALL`].
    pub const ORDERS: &[Topic] = Topic::ALL.split_at(14).0;

    pub const fn as_str(self) -> &'static str {
        match self {
            Topic::OrderPlaced => "order.placed",
            Topic::OrderAuthorized => "order.authorized",
            Topic::OrderPaid => "order.paid",
            Topic::OrderFulfilled => "order.fulfilled",
            Topic::OrderPartiallyFulfilled => "order.partially_fulfilled",
            Topic::OrderShipped => "order.shipped",
            Topic::OrderOutForDelivery => "order.out_for_delivery",
            Topic::OrderDelivered => "order.delivered",
            Topic::OrderCancelled => "order.cancelled",
            Topic::OrderExpired => "order.expired",
            Topic::OrderRefunded => "order.refunded",
            Topic::OrderPartiallyRefunded => "order.partially_refunded",
            Topic::OrderReturnRequested => "order.return_requested",
            Topic::OrderReturnReceived => "order.return_received",
            Topic::ProductCreated => "product.created",
            Topic::ProductUpdated => "product.updated",
            Topic::InventoryLow => "inventory.low",
            Topic::CustomerCreated => "customer.created",
        }
    }

    /// The current schema version of the topic's data. Bump it (and keep reading the
    /// old one) when a field changes meaning or goes away; adding a field is not a
    /// new version.
    pub const fn version(self) -> u32 {
        1
    }

    pub fn parse(s: &str) -> Result<Topic, EventError> {
        Topic::ALL.iter().copied().find(|t| t.as_str() == s).ok_or_else(|| EventError::UnknownTopic(s.to_owned()))
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Topic {
    type Err = EventError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::parse(s)
    }
}

impl Serialize for Topic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Topic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Topic::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("unknown topic {0:?}: not in the event catalogue")]
    UnknownTopic(String),
    #[error("{topic} version {version} is not supported (this build knows up to {known})")]
    UnsupportedVersion { topic: Topic, version: u32, known: u32 },
    #[error("malformed event: {0}")]
    Malformed(String),
}

/// What consumers receive: the envelope around one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: Uuid,
    pub topic: Topic,
    pub version: u32,
    pub tenant_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub data: serde_json::Value,
}

impl Event {
    /// Builds the envelope of an outbox row; refuses unknown topics and versions newer
    /// than this build understands.
    pub fn from_outbox(row: &ecom_store::bus::OutboxRow) -> Result<Event, EventError> {
        let topic = Topic::parse(&row.topic)?;
        let version = u32::try_from(row.version).map_err(|_| EventError::Malformed("negative version".into()))?;
        if version == 0 || version > topic.version() {
            return Err(EventError::UnsupportedVersion { topic, version, known: topic.version() });
        }
        Ok(Event {
            id: row.id,
            topic,
            version,
            tenant_id: row.tenant_id,
            occurred_at: row.created_at,
            data: row.payload.clone(),
        })
    }

    pub fn tenant(&self) -> TenantId {
        TenantId(self.tenant_id)
    }

    /// The envelope as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses an envelope (e.g. from a broker); unknown topics are refused.
    pub fn from_json(text: &str) -> Result<Event, EventError> {
        let e: Event = serde_json::from_str(text).map_err(|e| EventError::Malformed(e.to_string()))?;
        if e.version == 0 || e.version > e.topic.version() {
            return Err(EventError::UnsupportedVersion {
                topic: e.topic,
                version: e.version,
                known: e.topic.version(),
            });
        }
        Ok(e)
    }

    /// The data of an order event.
    pub fn order(&self) -> Result<OrderData, EventError> {
        if !Topic::ORDERS.contains(&self.topic) {
            return Err(EventError::Malformed(format!("{} is not an order event", self.topic)));
        }
        serde_json::from_value(self.data.clone()).map_err(|e| EventError::Malformed(format!("{}: {e}", self.topic)))
    }
}

/// The data of every `order.*` event (version 1): the order after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderData {
    pub order_id: Uuid,
    pub number: i64,
    pub status: String,
    pub payment_status: String,
    pub return_status: String,
    /// Minor units of `currency`.
    pub total: i64,
    pub refunded: i64,
    pub currency: String,
    pub email: String,
    #[serde(default)]
    pub carrier: String,
    #[serde(default)]
    pub tracking_number: String,
    /// The lines, on `order.placed` only.
    #[serde(default)]
    pub lines: Vec<OrderLineData>,
    /// What came back, on `order.return_received` only.
    #[serde(default)]
    pub returned: Vec<ReturnedLineData>,
    /// Whether the returned items went back into stock (`order.return_received`).
    #[serde(default)]
    pub restocked: bool,
}

/// One line of a return: how many of an order line came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReturnedLineData {
    pub line_id: Uuid,
    pub variant_id: Option<Uuid>,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLineData {
    pub variant_id: Uuid,
    pub quantity: u32,
}

/// `product.created`, `product.updated` (version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductData {
    pub product_id: Uuid,
    pub handle: String,
    pub title: String,
}

/// `inventory.low` (version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryLowData {
    pub variant_id: Uuid,
    pub sku: String,
    pub stock: i64,
}

/// `customer.created` (version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerData {
    pub customer_id: Uuid,
    pub email: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn topics_round_trip_and_unknown_ones_are_refused() {
        for t in Topic::ALL {
            assert_eq!(Topic::parse(t.as_str()).unwrap(), *t);
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(t.as_str()));
        }
        assert_eq!(Topic::ALL.len(), 18);
        for bad in ["", "order", "order.Placed", "order.placed ", "orders.placed"] {
            assert!(Topic::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Topic::ORDERS.iter().all(|t| t.as_str().starts_with("order.")));
    }

    #[test]
    fn envelopes_serialise_and_parse() {
        let e = Event {
            id: Uuid::now_v7(),
            topic: Topic::OrderPaid,
            version: 1,
            tenant_id: Uuid::now_v7(),
            occurred_at: Utc::now(),
            data: serde_json::json!({"order_id": Uuid::nil(), "number": 1001, "status": "paid",
                "payment_status": "paid", "return_status": "none", "total": 1250, "refunded": 0,
                "currency": "USD", "email": "pat@example.com"}),
        };
        let text = e.to_json();
        let back = Event::from_json(&text).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.order().unwrap().number, 1001);
        let unknown = text.replace("order.paid", "order.teleported");
        assert!(matches!(Event::from_json(&unknown), Err(EventError::Malformed(m)) if m.contains("unknown topic")));
        let future = text.replace("\"version\":1", "\"version\":9");
        assert!(matches!(Event::from_json(&future), Err(EventError::UnsupportedVersion { .. })));
    }
}
