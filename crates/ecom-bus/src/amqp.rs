//! RabbitMQ mode of the bus (`ECOM_AMQP_URL`): the relay publishes outbox events to a
//! durable topic exchange and consumers read them from durable queues.
//!
//! Topology, under a name prefix (`ECOM_AMQP_PREFIX`, default `ecom`):
//!
//! - `<prefix>.events`: durable topic exchange; routing key = topic (`order.placed`).
//! - `<prefix>.<consumer>`: one durable queue per consumer, bound to its topics. Manual
//!   acks, prefetch `ECOM_AMQP_PREFETCH`. Its dead-letter exchange is `<prefix>.dlx`.
//! - `<prefix>.<consumer>.retry.<n>`: delay queues, one per retry level, each with a
//!   fixed `x-message-ttl` (the backoff of that level) and the consumer's queue as its
//!   dead-letter target. A failed message is republished to the level of its attempt and
//!   comes back when its TTL runs out. Per-level queues avoid per-message TTLs, which
//!   RabbitMQ only expires at the head of a queue (a long wait would hold back short
//!   ones behind it).
//! - `<prefix>.dlx` (direct) and `<prefix>.<consumer>.dead`: a message whose attempts
//!   ran out is rejected without requeue and goes there; a recorder reads that queue and
//!   writes the dead letter to `bus_dead_letters`, so the panels list it. Retry in the
//!   panel puts the delivery back to pending; the relay republishes it straight to that
//!   consumer's queue.
//!
//! Delivery guarantees: an outbox event is leased to one relay (`outbox.claimed_by`,
//! `claimed_until`, a conditional update), published persistent with publisher
//! confirms, and marked published only after the broker confirmed it. A crash or a
//! broker restart between the confirm and the mark publishes it again; a consumer is
//! acked only after its handler succeeded, so unacked messages come back after a
//! restart. Both make delivery at least once; consumers' receipts
//! ([`crate::Consumer::begin_once`]) make the effects exactly once.
//!
//! A supervisor keeps one connection: when it breaks (broker restart, network), every
//! task of the session stops, and it reconnects with backoff, declares the topology
//! again and resumes publishing and consuming.
//!
//! Changing a queue's arguments (e.g. `ECOM_BUS_BACKOFF_BASE_MS`, which sets the delay
//! queues' TTLs) on an existing topology makes the declaration fail (RabbitMQ refuses
//! to redeclare a queue with other arguments): delete the old delay queues, or use a
//! new prefix.

use crate::consumer::Consumer;
use crate::events::Event;
use crate::relay::RelaySettings;
use chrono::Utc;
use ecom_store::bus as repo;
use ecom_store::{Db, StoreError};
use futures_util::{StreamExt, TryStreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Header: which attempt of this consumer's delivery a message is (1 when absent).
const ATTEMPT: &str = "x-ecom-attempt";
/// Header: the store the event belongs to.
const TENANT: &str = "x-ecom-tenant";
/// Header: the message was handed back from a dead letter retried in the panel.
const REDRIVE: &str = "x-ecom-redrive";
/// At most this many delay queues per consumer; later attempts wait in the last.
const MAX_LEVELS: u32 = 16;
/// The relay publishes no more while a consumer's queue holds more than this many
/// relay batches of waiting messages ...
const BACKLOG_BATCHES: u64 = 4;
/// ... and looks again after this long.
const BACKLOG_WAIT: Duration = Duration::from_millis(50);

/// How the RabbitMQ mode connects and paces itself.
#[derive(Clone)]
pub struct AmqpSettings {
    /// `amqp://` or `amqps://` URL; may hold a password, so it never prints.
    pub url: String,
    /// Prefix of every exchange and queue name.
    pub prefix: String,
    /// Unacknowledged messages per consumer (and handled at once).
    pub prefetch: u16,
    /// Attempts, backoff, poll interval, batch size and lease, as in embedded mode.
    pub relay: RelaySettings,
}

impl std::fmt::Debug for AmqpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSettings")
            .field("url", &"(redacted)")
            .field("prefix", &self.prefix)
            .field("prefetch", &self.prefetch)
            .finish_non_exhaustive()
    }
}

impl AmqpSettings {
    fn exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    fn dlx(&self) -> String {
        format!("{}.dlx", self.prefix)
    }

    fn queue(&self, consumer: &str) -> String {
        format!("{}.{consumer}", self.prefix)
    }

    fn delay_queue(&self, consumer: &str, level: u32) -> String {
        format!("{}.{consumer}.retry.{level}", self.prefix)
    }

    fn dead_queue(&self, consumer: &str) -> String {
        format!("{}.{consumer}.dead", self.prefix)
    }

    /// Delay levels: one per retry, at most [`MAX_LEVELS`].
    fn levels(&self) -> u32 {
        self.relay.max_attempts.saturating_sub(1).min(MAX_LEVELS)
    }

    /// The wait of delay level `level` (≥ 1): the embedded mode's backoff without its
    /// jitter (a queue's TTL is fixed).
    fn level_ttl(&self, level: u32) -> Duration {
        let exp = level.saturating_sub(1).min(30);
        self.relay.backoff_base.saturating_mul(1u32 << exp).min(self.relay.backoff_max)
    }
}

/// Whether `url` is an `amqp://` or `amqps://` URL with a host that the client can use.
/// (The parser's own message would repeat the URL, password and all.)
pub fn valid_url(url: &str) -> bool {
    (url.starts_with("amqp://") || url.starts_with("amqps://"))
        && url.parse::<lapin::uri::AMQPUri>().is_ok_and(|u| !u.authority.host.is_empty())
}

/// Whether the bus is connected to the broker, for `/readyz`. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct BrokerStatus(Arc<AtomicBool>);

impl BrokerStatus {
    pub fn connected(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn set(&self, up: bool) {
        self.0.store(up, Ordering::SeqCst);
        metrics::gauge!("ecom_bus_broker_connected").set(if up { 1.0 } else { 0.0 });
    }
}

/// What went wrong talking to the broker or the database. Broker errors end the
/// session (the supervisor reconnects); the URL is never part of the message.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("message broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("message broker refused (nacked) a message")]
    Nacked,
    #[error("message broker cancelled the consumer of {0}")]
    Cancelled(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ecom_store::DbErr> for AmqpError {
    fn from(e: ecom_store::DbErr) -> Self {
        AmqpError::Store(StoreError::Db(e))
    }
}

/// The RabbitMQ-mode bus of one process: publisher, consumers, dead-letter recorders
/// and the supervisor that keeps them connected. Cheap to clone.
#[derive(Clone)]
pub struct AmqpBus {
    db: Db,
    consumers: Arc<Vec<Arc<dyn Consumer>>>,
    settings: Arc<AmqpSettings>,
    id: Arc<str>,
    status: BrokerStatus,
    rounds: Arc<AtomicU64>,
    published: Arc<AtomicU64>,
    gauges: crate::relay::Gauges,
    cursor: crate::relay::Cursor,
}

impl std::fmt::Debug for AmqpBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpBus").field("id", &self.id).field("prefix", &self.settings.prefix).finish_non_exhaustive()
    }
}

impl AmqpBus {
    pub fn new(db: Db, consumers: Vec<Arc<dyn Consumer>>, settings: AmqpSettings) -> Self {
        Self::with_status(db, consumers, settings, BrokerStatus::default())
    }

    /// [`Self::new`], reporting its connection to `status` (which `/readyz` reads).
    pub fn with_status(
        db: Db,
        consumers: Vec<Arc<dyn Consumer>>,
        settings: AmqpSettings,
        status: BrokerStatus,
    ) -> Self {
        let id = format!("amqp-{}-{}", std::process::id(), Uuid::now_v7().simple());
        Self {
            gauges: crate::relay::Gauges::new(db.clone()),
            cursor: crate::relay::Cursor::new(),
            db,
            consumers: Arc::new(consumers),
            settings: Arc::new(settings),
            id: id.into(),
            status,
            rounds: Arc::new(AtomicU64::new(0)),
            published: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Connected or not, for `/readyz`.
    pub fn status(&self) -> BrokerStatus {
        self.status.clone()
    }

    /// Outbox events this bus published and the broker confirmed (tests, benchmarks).
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::SeqCst)
    }

    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// The supervisor: runs sessions until the task is aborted, reconnecting with
    /// backoff (0.2 s doubling to 5 s) after a session ends.
    pub async fn run(self) {
        let mut failures: u32 = 0;
        loop {
            let mut connected = false;
            let result = self.session(&mut connected).await;
            self.status.set(false);
            if connected {
                failures = 0;
            }
            failures = failures.saturating_add(1);
            let wait = Duration::from_millis(200)
                .saturating_mul(1 << failures.min(5).saturating_sub(1))
                .min(Duration::from_secs(5));
            match result {
                Ok(()) => tracing::warn!(retry_in = ?wait, "message broker session ended; reconnecting"),
                Err(e) => tracing::warn!(error = %e, retry_in = ?wait, "message broker session failed; reconnecting"),
            }
            metrics::counter!("ecom_bus_broker_reconnects_total").increment(1);
            tokio::time::sleep(wait).await;
        }
    }

    /// One connection's life: declares the topology, then publishes and consumes until
    /// any part fails.
    async fn session(&self, connected: &mut bool) -> Result<(), AmqpError> {
        let conn = Connection::connect(&self.settings.url, ConnectionProperties::default()).await?;
        let setup = conn.create_channel().await?;
        declare(&setup, &self.settings, &self.consumers).await?;
        let publisher = conn.create_channel().await?;
        publisher.confirm_select(ConfirmSelectOptions::default()).await?;
        let mut tasks = tokio::task::JoinSet::new();
        for consumer in self.consumers.iter() {
            // A batching consumer reads its queue on two channels (two batches handled
            // at once), each handling one batch at a time, so that a batch is
            // acknowledged with one frame. Each channel may hold two batches: the next
            // arrives while one is handled (with one, the broker would send more only
            // after the ack, and the next batch would be the few that came in since).
            let (channels, prefetch) = if consumer.batches() {
                (2, self.settings.prefetch.saturating_mul(2))
            } else {
                (1, self.settings.prefetch)
            };
            for _ in 0..channels {
                let ch = conn.create_channel().await?;
                ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
                ch.confirm_select(ConfirmSelectOptions::default()).await?;
                let bus = self.clone();
                let worker = consumer.clone();
                tasks.spawn(async move { bus.consume(ch, worker).await });
            }
            let ch = conn.create_channel().await?;
            ch.basic_qos(self.settings.prefetch, BasicQosOptions::default()).await?;
            let bus = self.clone();
            let name = consumer.name();
            tasks.spawn(async move { bus.record_dead(ch, name).await });
        }
        let bus = self.clone();
        tasks.spawn(async move { bus.publish_loop(publisher).await });
        let _ = setup.close(200, "topology declared".into()).await;
        *connected = true;
        self.status.set(true);
        tracing::info!(prefix = %self.settings.prefix, consumers = self.consumers.len(), "connected to the message broker");
        let first = tasks.join_next().await;
        tasks.abort_all();
        let _ = conn.close(200, "session over".into()).await;
        match first {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "a message broker task failed");
                Ok(())
            }
            None => Ok(()),
        }
    }

    // ---- publishing ------------------------------------------------------------------------

    async fn publish_loop(self, ch: Channel) -> Result<(), AmqpError> {
        // Whether the last round published: only then can this relay have deepened a
        // queue, so an idle relay does not ask the broker for its queues every poll.
        let mut busy = false;
        loop {
            // The lag counts events not yet confirmed by the broker.
            if let Err(e) = self.gauges.sample(false).await {
                tracing::warn!(error = %e, "sampling the outbox lag failed");
            }
            // While a consumer's queue is deep, the backlog waits in the outbox, where
            // it costs a row, rather than in the broker: a classic queue's work per
            // message grows with its depth (messages are written to disk, paged out and
            // read back instead of handed on and forgotten). A million events at once
            // (SQLite, bench/results/notify.md): ~1,500/s with the backlog in the
            // broker, 1,903/s held back here.
            if busy && self.deepest_queue(&ch).await? > self.settings.relay.batch.saturating_mul(BACKLOG_BATCHES) {
                tokio::time::sleep(BACKLOG_WAIT).await;
                continue;
            }
            let published = match self.publish_round(&ch).await {
                Ok(n) => n,
                Err(AmqpError::Store(e)) => {
                    tracing::warn!(error = %e, "publishing outbox events: database error");
                    0
                }
                Err(e) => return Err(e),
            };
            let redriven = match self.redrive(&ch).await {
                Ok(n) => n,
                Err(AmqpError::Store(e)) => {
                    tracing::warn!(error = %e, "republishing retried dead letters: database error");
                    0
                }
                Err(e) => return Err(e),
            };
            busy = published > 0 || redriven > 0;
            if !busy {
                if let Err(e) = self.gauges.sample(true).await {
                    tracing::warn!(error = %e, "sampling the outbox lag failed");
                }
                tokio::time::sleep(self.settings.relay.poll).await;
            }
        }
    }

    /// The most messages waiting (ready, not yet handed to a consumer) in one of the
    /// consumers' queues.
    async fn deepest_queue(&self, ch: &Channel) -> Result<u64, AmqpError> {
        let mut deepest = 0;
        for consumer in self.consumers.iter() {
            deepest = deepest.max(u64::from(ready_messages(ch, &self.settings.queue(consumer.name())).await?));
        }
        Ok(deepest)
    }

    /// Leases a batch of unpublished events, publishes them, waits for the broker's
    /// confirms, and marks the confirmed ones published. Returns how many it marked.
    async fn publish_round(&self, ch: &Channel) -> Result<usize, AmqpError> {
        let token = format!("{}-{}", self.id, self.rounds.fetch_add(1, Ordering::SeqCst));
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(self.settings.relay.lease).unwrap_or(chrono::Duration::MAX);
        let txn = self.db.platform_txn().await?;
        let batch = self.settings.relay.batch;
        let rows = repo::claim_unpublished(&txn, &token, now, until, batch, self.cursor.get()).await?;
        self.cursor.advance(&rows, batch);
        txn.commit().await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let (confirmed, failure) = match self.publish_rows(ch, &rows).await {
            Ok(ids) => (ids, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let txn = self.db.platform_txn().await?;
        let marked = repo::mark_published(&txn, &token, &confirmed, Utc::now()).await?;
        // Whatever was not confirmed goes back at once, to this relay or another.
        let confirmed_ids: std::collections::HashSet<Uuid> = confirmed.iter().copied().collect();
        let unconfirmed: Vec<Uuid> = rows.iter().map(|r| r.id).filter(|id| !confirmed_ids.contains(id)).collect();
        repo::release_unpublished(&txn, &token, &unconfirmed).await?;
        if marked < rows.len() as u64 {
            self.cursor.restart();
        }
        txn.commit().await?;
        self.published.fetch_add(marked, Ordering::SeqCst);
        metrics::counter!("ecom_bus_published_total").increment(marked);
        if let Some(e) = failure {
            return Err(e);
        }
        if confirmed.len() < rows.len() {
            return Err(AmqpError::Nacked);
        }
        Ok(usize::try_from(marked).unwrap_or(usize::MAX))
    }

    /// Publishes the rows and returns the ids the broker confirmed (and those that can
    /// never be routed, which count as done, as in embedded mode).
    async fn publish_rows(&self, ch: &Channel, rows: &[repo::OutboxRow]) -> Result<Vec<Uuid>, AmqpError> {
        let exchange = self.settings.exchange();
        let mut done = Vec::with_capacity(rows.len());
        let mut confirms = Vec::with_capacity(rows.len());
        for row in rows {
            let event = match Event::from_outbox(row) {
                Ok(event) => event,
                Err(e) => {
                    tracing::warn!(event = %row.id, error = %e, "outbox event not routed");
                    done.push(row.id);
                    continue;
                }
            };
            let confirm = ch
                .basic_publish(
                    exchange.as_str().into(),
                    event.topic.as_str().into(),
                    BasicPublishOptions::default(),
                    event.to_json().as_bytes(),
                    properties(&event, 1, false),
                )
                .await?;
            confirms.push((row.id, confirm));
        }
        for (id, confirm) in confirms {
            if confirm.await?.is_ack() {
                done.push(id);
            } else {
                tracing::warn!(event = %id, "the message broker refused an event; it will be published again");
            }
        }
        Ok(done)
    }

    /// Republishes deliveries put back to pending (a dead letter retried in the panel,
    /// or a delivery left over from embedded mode) straight to their consumer's queue.
    async fn redrive(&self, ch: &Channel) -> Result<usize, AmqpError> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(self.settings.relay.lease).unwrap_or(chrono::Duration::MAX);
        let txn = self.db.platform_txn().await?;
        let names: Vec<&str> = self.consumers.iter().map(|c| c.name()).collect();
        let claimed = repo::claim_due(&txn, &names, &self.id, now, until, self.settings.relay.batch).await?;
        txn.commit().await?;
        let mut done = 0;
        for row in claimed {
            let txn = self.db.platform_txn().await?;
            let event_row = repo::event(&txn, row.event_id).await?;
            txn.commit().await?;
            let Some(event) = event_row.and_then(|r| Event::from_outbox(&r).ok()) else { continue };
            let confirm = ch
                .basic_publish(
                    "".into(),
                    self.settings.queue(&row.consumer).as_str().into(),
                    BasicPublishOptions::default(),
                    event.to_json().as_bytes(),
                    properties(&event, 1, true),
                )
                .await?
                .await?;
            if !confirm.is_ack() {
                return Err(AmqpError::Nacked);
            }
            let txn = self.db.platform_txn().await?;
            repo::lock_event(&txn, row.event_id).await?;
            repo::mark_queued(&txn, row.id, &self.id).await?;
            repo::publish_if_done(&txn, row.event_id, Utc::now()).await?;
            txn.commit().await?;
            tracing::info!(event = %row.event_id, consumer = %row.consumer, "retried dead letter handed back to the message broker");
            done += 1;
        }
        Ok(done)
    }

    // ---- consuming -------------------------------------------------------------------------

    async fn consume(self, ch: Channel, consumer: Arc<dyn Consumer>) -> Result<(), AmqpError> {
        let queue = self.settings.queue(consumer.name());
        let tag = format!("{}-{}", self.id, consumer.name());
        let stream = ch
            .basic_consume(queue.as_str().into(), tag.into(), BasicConsumeOptions::default(), FieldTable::default())
            .await?;
        let limit = usize::from(self.settings.prefetch.max(1));
        if consumer.batches() {
            // What has arrived, up to the prefetch, goes to the consumer together, one
            // batch after the other on this channel: a batch's successes are then
            // acknowledged together ([`AmqpBus::deliver_batch`]).
            stream
                .ready_chunks(limit)
                .map(|chunk| chunk.into_iter().collect::<Result<Vec<_>, _>>().map_err(AmqpError::from))
                .try_for_each(|deliveries| {
                    let (bus, ch, consumer) = (self.clone(), ch.clone(), consumer.clone());
                    async move { bus.deliver_batch(&ch, consumer, deliveries).await }
                })
                .await?;
        } else {
            stream
                .map_err(AmqpError::from)
                .try_for_each_concurrent(limit, |delivery| {
                    let (bus, ch, consumer) = (self.clone(), ch.clone(), consumer.clone());
                    async move { bus.deliver(&ch, consumer, delivery).await }
                })
                .await?;
        }
        Err(AmqpError::Cancelled(queue))
    }

    /// The event a message carries; a message that will never parse goes straight to
    /// the dead-letter queue, whose recorder logs and drops it (there is no store to
    /// file it under), and gives `None`.
    async fn event_of(
        &self,
        consumer: &dyn Consumer,
        delivery: &lapin::message::Delivery,
    ) -> Result<Option<Event>, AmqpError> {
        match Event::from_json(&String::from_utf8_lossy(&delivery.data)) {
            Ok(event) => Ok(Some(event)),
            Err(e) => {
                tracing::warn!(consumer = consumer.name(), error = %e, "malformed message from the broker");
                delivery.reject(BasicRejectOptions { requeue: false }).await?;
                Ok(None)
            }
        }
    }

    /// Runs a handler on a task of its own, so that a session ending under it (the
    /// broker went away, another part of the session failed) does not cut it off
    /// halfway: its transaction commits or rolls back whole, only the ack is lost, and
    /// the broker's redelivery meets the receipt. Only the lease stops it.
    async fn guarded<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, String> {
        let lease = self.settings.relay.lease;
        let mut handler = tokio::spawn(work);
        match tokio::time::timeout(lease, &mut handler).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => Err(format!("the consumer stopped: {e}")),
            Err(_) => {
                handler.abort();
                Err(format!("timed out after {lease:?}"))
            }
        }
    }

    /// Handles one message, then settles it ([`AmqpBus::settle`]).
    async fn deliver(
        &self,
        ch: &Channel,
        consumer: Arc<dyn Consumer>,
        delivery: lapin::message::Delivery,
    ) -> Result<(), AmqpError> {
        let Some(event) = self.event_of(&*consumer, &delivery).await? else { return Ok(()) };
        let result = {
            let (consumer, event) = (consumer.clone(), event.clone());
            self.guarded(async move { consumer.handle(&event).await.map_err(|e| e.to_string()) }).await.and_then(|r| r)
        };
        self.settle(ch, &*consumer, delivery, &event, result).await
    }

    /// Hands a batching consumer several messages together, then settles each by its
    /// own outcome.
    async fn deliver_batch(
        &self,
        ch: &Channel,
        consumer: Arc<dyn Consumer>,
        deliveries: Vec<lapin::message::Delivery>,
    ) -> Result<(), AmqpError> {
        let mut batch = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            if let Some(event) = self.event_of(&*consumer, &delivery).await? {
                batch.push((delivery, event));
            }
        }
        let events: Vec<Event> = batch.iter().map(|(_, e)| e.clone()).collect();
        let n = events.len();
        let worker = consumer.clone();
        let handled = self.guarded(async move { worker.handle_batch(&events).await }).await;
        let results = crate::consumer::batch_outcomes(consumer.name(), n, handled);
        // Failures are settled one by one (republished for a retry, or dead-lettered);
        // then one ack with `multiple` for the successes: it acknowledges every message
        // of this channel up to the last success not yet settled, which — the channel
        // handles one batch at a time, and everything before it has been settled — are
        // exactly this batch's successes. One frame instead of one per message.
        let mut last_success: Option<lapin::message::Delivery> = None;
        let mut successes = 0;
        for ((delivery, event), result) in batch.into_iter().zip(results) {
            match result {
                Ok(()) => {
                    self.succeeded(&delivery, &event, consumer.name()).await;
                    successes += 1;
                    if last_success.as_ref().is_none_or(|last| last.delivery_tag < delivery.delivery_tag) {
                        last_success = Some(delivery);
                    }
                }
                Err(error) => self.settle_failure(ch, &*consumer, delivery, &event, error).await?,
            }
        }
        if let Some(last) = last_success {
            last.ack(BasicAckOptions { multiple: true }).await?;
            metrics::counter!("ecom_bus_delivered_total", &[("consumer", consumer.name())]).increment(successes);
        }
        Ok(())
    }

    /// Settles a handled message: ack after success; on failure, republish to the delay
    /// queue of its attempt and ack; when attempts ran out, record the failure and
    /// reject it to the dead-letter queue.
    async fn settle(
        &self,
        ch: &Channel,
        consumer: &dyn Consumer,
        delivery: lapin::message::Delivery,
        event: &Event,
        result: Result<(), String>,
    ) -> Result<(), AmqpError> {
        match result {
            Ok(()) => {
                self.succeeded(&delivery, event, consumer.name()).await;
                delivery.ack(BasicAckOptions::default()).await?;
                metrics::counter!("ecom_bus_delivered_total", &[("consumer", consumer.name())]).increment(1);
                Ok(())
            }
            Err(error) => self.settle_failure(ch, consumer, delivery, event, error).await,
        }
    }

    /// What a success records besides its ack: a dead letter retried from the panel is
    /// marked delivered there.
    async fn succeeded(&self, delivery: &lapin::message::Delivery, event: &Event, consumer: &str) {
        let headers = delivery.properties.headers().clone().unwrap_or_default();
        if header_u32(&headers, REDRIVE).is_some_and(|v| v > 0)
            && let Err(e) = self.mark_redriven_delivered(event, consumer).await
        {
            // The effect is in (receipts dedupe it); only the panel's row is stale.
            tracing::warn!(event = %event.id, error = %e, "recording a retried delivery failed");
        }
    }

    /// Settles a failed message: republished to the delay queue of its attempt and
    /// acked, or, when its attempts ran out, recorded and rejected to the dead letters.
    async fn settle_failure(
        &self,
        ch: &Channel,
        consumer: &dyn Consumer,
        delivery: lapin::message::Delivery,
        event: &Event,
        error: String,
    ) -> Result<(), AmqpError> {
        let headers = delivery.properties.headers().clone().unwrap_or_default();
        let attempt = header_u32(&headers, ATTEMPT).unwrap_or(1).max(1);
        let redriven = header_u32(&headers, REDRIVE).is_some_and(|v| v > 0);
        let labels = [("consumer", consumer.name())];
        let error: String = error.chars().take(2000).collect();
        if attempt >= self.settings.relay.max_attempts {
            if let Err(e) = self.failed_for_good(event, consumer.name(), attempt, &error).await {
                // Could not record it: let the broker give it back, later.
                tracing::warn!(event = %event.id, error = %e, "recording a dead letter failed; requeued");
                tokio::time::sleep(self.settings.relay.poll).await;
                delivery.nack(BasicNackOptions { multiple: false, requeue: true }).await?;
                return Ok(());
            }
            tracing::warn!(event = %event.id, topic = %event.topic, consumer = consumer.name(),
                attempts = attempt, error = %error, "bus delivery dead-lettered");
            delivery.reject(BasicRejectOptions { requeue: false }).await?;
            metrics::counter!("ecom_bus_dead_lettered_total", &labels).increment(1);
        } else {
            let level = attempt.min(self.settings.levels()).max(1);
            let confirm = ch
                .basic_publish(
                    "".into(),
                    self.settings.delay_queue(consumer.name(), level).as_str().into(),
                    BasicPublishOptions::default(),
                    &delivery.data,
                    properties(event, attempt + 1, redriven),
                )
                .await?
                .await?;
            if !confirm.is_ack() {
                return Err(AmqpError::Nacked);
            }
            tracing::info!(event = %event.id, topic = %event.topic, consumer = consumer.name(), attempts = attempt,
                error = %error, retry_in = ?self.settings.level_ttl(level), "bus delivery failed; will retry");
            delivery.ack(BasicAckOptions::default()).await?;
            metrics::counter!("ecom_bus_retried_total", &labels).increment(1);
        }
        Ok(())
    }

    async fn mark_redriven_delivered(&self, event: &Event, consumer: &str) -> Result<(), AmqpError> {
        let txn = self.db.platform_txn().await?;
        repo::amqp_delivered(&txn, event.id, consumer, Utc::now()).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn failed_for_good(
        &self,
        event: &Event,
        consumer: &str,
        attempts: u32,
        error: &str,
    ) -> Result<(), AmqpError> {
        let txn = self.db.platform_txn().await?;
        let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
        repo::amqp_failed_for_good(
            &txn,
            event.tenant(),
            event.id,
            consumer,
            event.topic.as_str(),
            attempts,
            error,
            Utc::now(),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Reads a consumer's dead-letter queue and files each message in
    /// `bus_dead_letters` (once), then acks it.
    async fn record_dead(self, ch: Channel, consumer: &'static str) -> Result<(), AmqpError> {
        let queue = self.settings.dead_queue(consumer);
        let tag = format!("{}-{consumer}-dead", self.id);
        let mut stream = ch
            .basic_consume(queue.as_str().into(), tag.into(), BasicConsumeOptions::default(), FieldTable::default())
            .await?;
        while let Some(delivery) = stream.next().await {
            let delivery = delivery?;
            let text = String::from_utf8_lossy(&delivery.data);
            let Ok(event) = Event::from_json(&text) else {
                tracing::warn!(consumer, bytes = delivery.data.len(), "dropped a malformed dead-lettered message");
                delivery.ack(BasicAckOptions::default()).await?;
                continue;
            };
            let headers = delivery.properties.headers().clone().unwrap_or_default();
            let reason = match headers.inner().get("x-first-death-reason") {
                Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                Some(AMQPValue::ShortString(s)) => s.as_str().to_owned(),
                _ => "unknown".into(),
            };
            let fallback = format!("dead-lettered by the message broker ({reason})");
            match self.file_dead_letter(&event, consumer, &fallback).await {
                Ok(()) => {
                    delivery.ack(BasicAckOptions::default()).await?;
                }
                Err(e) => {
                    tracing::warn!(event = %event.id, error = %e, "filing a dead letter failed; requeued");
                    tokio::time::sleep(self.settings.relay.poll).await;
                    delivery.nack(BasicNackOptions { multiple: false, requeue: true }).await?;
                }
            }
        }
        Err(AmqpError::Cancelled(queue))
    }

    async fn file_dead_letter(&self, event: &Event, consumer: &str, fallback: &str) -> Result<(), AmqpError> {
        let txn = self.db.platform_txn().await?;
        repo::amqp_dead_letter(
            &txn,
            event.tenant(),
            event.id,
            consumer,
            event.topic.as_str(),
            fallback,
            event.data.clone(),
            Utc::now(),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}

/// Persistent, JSON, the event id as message id, the store and attempt in headers.
fn properties(event: &Event, attempt: u32, redriven: bool) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(TENANT.into(), AMQPValue::LongString(LongString::from(event.tenant_id.to_string())));
    headers.insert(ATTEMPT.into(), AMQPValue::LongUInt(attempt));
    if redriven {
        headers.insert(REDRIVE.into(), AMQPValue::LongUInt(1));
    }
    BasicProperties::default()
        .with_message_id(ShortString::from(event.id.to_string()))
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_type(ShortString::from(event.topic.as_str()))
        .with_headers(headers)
}

fn header_u32(headers: &FieldTable, key: &str) -> Option<u32> {
    match headers.inner().get(key)? {
        AMQPValue::ShortShortUInt(v) => Some(u32::from(*v)),
        AMQPValue::ShortUInt(v) => Some(u32::from(*v)),
        AMQPValue::LongUInt(v) => Some(*v),
        AMQPValue::ShortShortInt(v) => u32::try_from(*v).ok(),
        AMQPValue::ShortInt(v) => u32::try_from(*v).ok(),
        AMQPValue::LongInt(v) => u32::try_from(*v).ok(),
        AMQPValue::LongLongInt(v) => u32::try_from(*v).ok(),
        _ => None,
    }
}

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// Declares (idempotently) the exchanges and every consumer's queues and bindings.
async fn declare(ch: &Channel, s: &AmqpSettings, consumers: &[Arc<dyn Consumer>]) -> Result<(), AmqpError> {
    let durable_exchange = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    let durable_queue = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    ch.exchange_declare(s.exchange().as_str().into(), ExchangeKind::Topic, durable_exchange, FieldTable::default())
        .await?;
    ch.exchange_declare(s.dlx().as_str().into(), ExchangeKind::Direct, durable_exchange, FieldTable::default()).await?;
    for c in consumers {
        let queue = s.queue(c.name());
        let main_args =
            args(&[("x-dead-letter-exchange", text(&s.dlx())), ("x-dead-letter-routing-key", text(c.name()))]);
        ch.queue_declare(queue.as_str().into(), durable_queue, main_args).await?;
        for topic in c.topics() {
            ch.queue_bind(
                queue.as_str().into(),
                s.exchange().as_str().into(),
                topic.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        for level in 1..=s.levels() {
            let ttl = i64::try_from(s.level_ttl(level).as_millis()).unwrap_or(i64::MAX);
            let delay_args = args(&[
                ("x-message-ttl", AMQPValue::LongLongInt(ttl)),
                ("x-dead-letter-exchange", text("")),
                ("x-dead-letter-routing-key", text(&queue)),
            ]);
            ch.queue_declare(s.delay_queue(c.name(), level).as_str().into(), durable_queue, delay_args).await?;
        }
        let dead = s.dead_queue(c.name());
        ch.queue_declare(dead.as_str().into(), durable_queue, FieldTable::default()).await?;
        ch.queue_bind(
            dead.as_str().into(),
            s.dlx().as_str().into(),
            c.name().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    Ok(())
}

/// Deletes the exchanges and queues of `consumers` under the settings' prefix (tests,
/// and an operator retiring a prefix). Messages in them are lost.
pub async fn delete_topology(settings: &AmqpSettings, consumers: &[&str]) -> Result<(), AmqpError> {
    let conn = Connection::connect(&settings.url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    for c in consumers {
        let mut queues = vec![settings.queue(c), settings.dead_queue(c)];
        queues.extend((1..=MAX_LEVELS).map(|l| settings.delay_queue(c, l)));
        for q in queues {
            ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await?;
        }
    }
    ch.exchange_delete(settings.exchange().as_str().into(), ExchangeDeleteOptions::default()).await?;
    ch.exchange_delete(settings.dlx().as_str().into(), ExchangeDeleteOptions::default()).await?;
    let _ = conn.close(200, "topology deleted".into()).await;
    Ok(())
}

/// How many messages wait in a queue of `consumer` (`""` the main one, `"dead"` the
/// dead-letter one, `"retry.N"` a delay level); for tests and diagnostics.
pub async fn queue_depth(settings: &AmqpSettings, consumer: &str, which: &str) -> Result<u32, AmqpError> {
    let name =
        if which.is_empty() { settings.queue(consumer) } else { format!("{}.{which}", settings.queue(consumer)) };
    let conn = Connection::connect(&settings.url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let ready = ready_messages(&ch, &name).await;
    let _ = conn.close(200, "done".into()).await;
    ready
}

/// How many messages wait in a queue that exists (a passive declare: one for a queue
/// that does not closes the channel).
async fn ready_messages(ch: &Channel, queue: &str) -> Result<u32, AmqpError> {
    let q = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() },
            FieldTable::default(),
        )
        .await?;
    Ok(q.message_count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_attempts: u32) -> AmqpSettings {
        AmqpSettings {
            url: "amqp://guest:hunter2@127.0.0.1:5672/%2f".into(),
            prefix: "ecom".into(),
            prefetch: 32,
            relay: RelaySettings {
                max_attempts,
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_secs(1),
                ..RelaySettings::default()
            },
        }
    }

    #[test]
    fn delay_levels_double_and_are_capped() {
        let s = settings(8);
        assert_eq!(s.levels(), 7);
        let ttls: Vec<u128> = (1..=7).map(|l| s.level_ttl(l).as_millis()).collect();
        assert_eq!(ttls, [100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(settings(1).levels(), 0);
        assert_eq!(settings(100).levels(), MAX_LEVELS);
        assert_eq!(s.delay_queue("webhooks", 2), "ecom.webhooks.retry.2");
        assert_eq!(s.dead_queue("webhooks"), "ecom.webhooks.dead");
    }

    #[test]
    fn the_url_never_prints() {
        let shown = format!("{:?}", settings(3));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn attempt_headers_are_read_whatever_the_integer_type() {
        let t = args(&[(ATTEMPT, AMQPValue::LongLongInt(3)), ("other", text("x"))]);
        assert_eq!(header_u32(&t, ATTEMPT), Some(3));
        assert_eq!(header_u32(&t, "other"), None);
        assert_eq!(header_u32(&t, "missing"), None);
        let neg = args(&[(ATTEMPT, AMQPValue::LongInt(-1))]);
        assert_eq!(header_u32(&neg, ATTEMPT), None);
    }
}
