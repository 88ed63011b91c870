//! The integration bus. Embedded mode: the event catalogue ([`events`]), consumers
//! ([`consumer`]), the outbox relay ([`relay`]) and dead letters ([`dead_letters`]).
//!
//! Producers write events into the `outbox` table in the same transaction as the change
//! they describe (`ecom_store::orders::outbox`); the relay delivers them to in-process
//! consumers at least once, and consumers' receipts make the effects exactly once. RabbitMQ mode ([`amqp`]) relays the
//! same outbox through a broker to the same consumers.

pub mod amqp;
pub mod consumer;
pub mod dead_letters;
pub mod events;
pub mod relay;

pub use amqp::{AmqpBus, AmqpSettings, BrokerStatus};
pub use consumer::{Activity, Consumer, ConsumerError};
pub use dead_letters::{DeadLetters, Scope};
pub use events::{Event, EventError, Topic};
pub use relay::{BusError, Relay, RelaySettings, Round};
