//! Webhooks out: merchants subscribe URLs to event topics; each event of their store
//! on one of those topics is POSTed to the URL as signed JSON, retried with backoff,
//! and every attempt is logged.
//!
//! Two halves, so that it works with whichever bus relay runs:
//! - [`Fanout`], a plain bus [`Consumer`] of every topic: in the transaction that
//!   holds its receipt for the event, it writes one delivery per active subscription
//!   that wants the topic (unique per subscription and event);
//! - the sender ([`Webhooks::run`]), started by `ecom serve` next to the relay: it
//!   leases due deliveries by a conditional update (several nodes may run it), POSTs
//!   them through the SSRF-guarded [`Outbound`] client, and records each attempt.
//!
//! Signing (the Stripe scheme, so receivers can refuse replays by age):
//! `X-Ecom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
//! The secret (`whsec_…`) is shown to the merchant once, at creation, and kept sealed
//! with AES-256-GCM under a key derived from the platform secret key.
//!
//! A subscription whose attempts have failed without a success in between for
//! [`WebhookSettings::disable_after`] is disabled, its pending deliveries stop, and
//! the store owner is emailed.

use crate::outbound::{FetchError, Outbound, explain};
use crate::{Mailer, Result, ServiceError};
use chrono::{DateTime, Utc};
use ecom_bus::{Consumer, ConsumerError, Event, Topic};
use ecom_core::{Invalid, StaffRole, TenantId};
use ecom_store::webhooks::{self as repo, DeliveryRow, SubscriptionRow};
use ecom_store::{Db, StoreError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;
use uuid::Uuid;

/// A store's subscriptions at most.
pub const MAX_SUBSCRIPTIONS: u64 = 50;
/// The longest callback URL accepted.
const MAX_URL_LEN: usize = 2000;
/// How much of a receiver's answer the log keeps.
pub const EXCERPT_BYTES: usize = 1024;
const SECRET_PREFIX: &str = "whsec_";

/// How the sender paces itself.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// A subscription failing (no success) for this long is disabled.
    pub disable_after: Duration,
    /// Attempts per delivery before it is given up (the merchant may redeliver it).
    pub max_attempts: u32,
    /// The first retry waits about this long; each next one twice as long (jittered).
    pub backoff_base: Duration,
    /// No retry waits longer than this.
    pub backoff_max: Duration,
    /// One request (connect, send, answer) gives up after this long.
    pub timeout: Duration,
    /// How long an idle sender sleeps.
    pub poll: Duration,
    /// Requests in flight at once per sender.
    pub concurrency: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            disable_after: Duration::from_secs(86_400),
            max_attempts: 48,
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(3_600),
            timeout: Duration::from_secs(10),
            poll: Duration::from_millis(500),
            concurrency: 8,
        }
    }
}

impl WebhookSettings {
    /// The wait after `attempts` failures: the bus relay's capped, jittered doubling.
    pub fn backoff(&self, attempts: u32) -> Duration {
        ecom_bus::RelaySettings {
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
            ..ecom_bus::RelaySettings::default()
        }
        .backoff(attempts)
    }

    /// How long a sender holds a delivery: the request's timeout and time to record it.
    fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(30)
    }
}

/// A subscription as the panel and the API show it (never its secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Subscription {
    pub id: Uuid,
    pub callback_url: String,
    pub topics: Vec<String>,
    /// `active` or `disabled`.
    pub status: String,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_reason: String,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_result: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl Subscription {
    pub fn is_active(&self) -> bool {
        self.status == repo::ACTIVE
    }
}

impl From<SubscriptionRow> for Subscription {
    fn from(r: SubscriptionRow) -> Self {
        Self {
            id: r.id,
            callback_url: r.callback_url,
            topics: r.topics.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
            status: r.status,
            failing_since: r.failing_since,
            disabled_reason: r.disabled_reason,
            last_attempt_at: r.last_attempt_at,
            last_result: r.last_result,
            created_by: r.created_by,
            created_at: r.created_at,
        }
    }
}

/// One delivery and its attempts, for the log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    pub id: Uuid,
    pub event_id: Uuid,
    pub topic: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: String,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub log: Vec<Attempt>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: String,
    pub latency_ms: i32,
    pub response_excerpt: String,
}

/// What one sender round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendRound {
    pub delivered: usize,
    pub retried: usize,
    pub failed: usize,
}

/// Subscriptions, deliveries and the sender. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    db: Db,
    outbound: Outbound,
    mailer: Mailer,
    /// Seals the signing secrets at rest.
    sealer: ecom_core::sealed::Sealer,
    settings: Arc<WebhookSettings>,
    id: Arc<str>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").field("id", &self.id).finish_non_exhaustive()
    }
}

/// `HMAC-SHA256(key, parts…)`.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of any length")
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The `X-Ecom-Signature` value of `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let ts = timestamp.to_string();
    let mac = hmac(secret.as_bytes(), &[ts.as_bytes(), b".", body.as_bytes()]);
    format!("t={ts},v1={}", hex::encode(mac))
}

fn invalid(field: &'static str, msg: impl Into<String>) -> ServiceError {
    Invalid::new(field, msg).into()
}

/// Parses topic names; at least one, each in the catalogue, no repeats.
pub fn parse_topics<S: AsRef<str>>(names: &[S]) -> Result<Vec<Topic>> {
    let mut topics = Vec::new();
    for n in names {
        let t = Topic::parse(n.as_ref().trim()).map_err(|e| invalid("topics", e.to_string()))?;
        if !topics.contains(&t) {
            topics.push(t);
        }
    }
    if topics.is_empty() {
        return Err(invalid("topics", "choose at least one topic"));
    }
    topics.sort();
    Ok(topics)
}

fn topics_text(topics: &[Topic]) -> String {
    topics.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")
}

async fn commit(txn: ecom_store::DatabaseTransaction) -> Result<()> {
    txn.commit().await.map_err(|e| ServiceError::from(StoreError::from(e)))
}

impl Webhooks {
    /// `secret_key` is the platform secret; the key that seals signing secrets is
    /// derived from it (so it must be the same on every node, as for cookies).
    pub fn new(db: Db, outbound: Outbound, mailer: Mailer, secret_key: &[u8], settings: WebhookSettings) -> Self {
        // The label predates the shared sealer; it must stay, or stored secrets would
        // no longer open.
        let sealer = ecom_core::sealed::Sealer::new(secret_key, "ecom webhook secrets");
        let id = format!("webhooks-{}-{}", std::process::id(), Uuid::now_v7().simple());
        Self { db, outbound, mailer, sealer, settings: Arc::new(settings), id: id.into() }
    }

    /// The bus consumer that turns events into deliveries.
    pub fn fanout(&self) -> Arc<dyn Consumer> {
        Arc::new(Fanout { db: self.db.clone() })
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    /// Checks a callback URL: `https://` (plain `http://` only when private networks
    /// are allowed, i.e. in development), no credentials in it, and an address on the
    /// public internet, resolved now.
    pub async fn check_callback(&self, raw: &str) -> Result<String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(invalid("callback_url", "give the URL to send events to"));
        }
        if raw.len() > MAX_URL_LEN {
            return Err(invalid("callback_url", format!("a URL of at most {MAX_URL_LEN} characters")));
        }
        let url = Url::parse(raw).map_err(|_| invalid("callback_url", "it is not a valid URL"))?;
        let private = self.outbound.allows_private_network();
        match url.scheme() {
            "https" => {}
            "http" if private => {}
            "http" => return Err(invalid("callback_url", "use an https:// URL")),
            _ => return Err(invalid("callback_url", "use an https:// URL")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("callback_url", "leave user names and passwords out of the URL"));
        }
        if url.fragment().is_some() {
            return Err(invalid("callback_url", "leave the #fragment out of the URL"));
        }
        self.outbound.check_target(&url).await.map_err(|e| match e {
            FetchError::Refused(why) => {
                invalid("callback_url", format!("refused: {why}; webhooks go to public addresses only"))
            }
            FetchError::UnknownHost(host) => invalid("callback_url", format!("the host {host} was not found")),
            other => invalid("callback_url", other.to_string()),
        })?;
        Ok(url.to_string())
    }

    /// Creates a subscription; returns it and its signing secret, which is shown once.
    pub async fn create<S: AsRef<str>>(
        &self,
        tenant: TenantId,
        callback_url: &str,
        topics: &[S],
        actor: &str,
    ) -> Result<(Subscription, String)> {
        let topics = parse_topics(topics)?;
        let url = self.check_callback(callback_url).await?;
        let secret = format!("{SECRET_PREFIX}{}", hex::encode(rand::random::<[u8; 24]>()));
        let sealed = self.sealer.seal(&secret);
        let txn = self.db.tenant_txn(tenant).await?;
        if repo::count_subscriptions(&txn, tenant).await? >= MAX_SUBSCRIPTIONS {
            return Err(invalid(
                "callback_url",
                format!("a store has at most {MAX_SUBSCRIPTIONS} webhook subscriptions; delete one first"),
            ));
        }
        let topics = topics_text(&topics);
        let row = repo::create_subscription(
            &txn,
            tenant,
            &repo::NewSubscription { callback_url: &url, topics: &topics, secret_sealed: &sealed, created_by: actor },
            Utc::now(),
        )
        .await?;
        ecom_store::orders::audit(&txn, tenant, actor, "webhook.created", &url, &format!("topics: {topics}")).await?;
        commit(txn).await?;
        Ok((row.into(), secret))
    }

    /// The store's subscriptions, oldest first, after the subscription `after`.
    pub async fn list(&self, tenant: TenantId, after: Option<Uuid>, limit: u64) -> Result<Vec<Subscription>> {
        let txn = self.db.tenant_txn(tenant).await?;
        let rows = repo::subscriptions(&txn, tenant, after, limit).await?;
        commit(txn).await?;
        Ok(rows.into_iter().map(Subscription::from).collect())
    }

    pub async fn get(&self, tenant: TenantId, id: Uuid) -> Result<Option<Subscription>> {
        let txn = self.db.tenant_txn(tenant).await?;
        let row = repo::subscription(&txn, tenant, id).await?;
        commit(txn).await?;
        Ok(row.map(Subscription::from))
    }

    /// Changes the URL and/or the topics (each checked as at creation).
    pub async fn update<S: AsRef<str>>(
        &self,
        tenant: TenantId,
        id: Uuid,
        callback_url: Option<&str>,
        topics: Option<&[S]>,
        actor: &str,
    ) -> Result<Subscription> {
        let topics = topics.map(parse_topics).transpose()?.map(|t| topics_text(&t));
        let url = match callback_url {
            Some(u) => Some(self.check_callback(u).await?),
            None => None,
        };
        let txn = self.db.tenant_txn(tenant).await?;
        if !repo::update_subscription(&txn, tenant, id, url.as_deref(), topics.as_deref()).await? {
            return Err(ServiceError::NotFound);
        }
        let row = repo::subscription(&txn, tenant, id).await?.ok_or(ServiceError::NotFound)?;
        let detail = format!("url: {}, topics: {}", row.callback_url, row.topics);
        ecom_store::orders::audit(&txn, tenant, actor, "webhook.updated", &row.callback_url, &detail).await?;
        commit(txn).await?;
        Ok(row.into())
    }

    /// Turns a subscription on or off. Turning it off stops its pending deliveries.
    pub async fn set_active(&self, tenant: TenantId, id: Uuid, active: bool, actor: &str) -> Result<Subscription> {
        let txn = self.db.tenant_txn(tenant).await?;
        let reason = format!("turned off by {actor}");
        if !repo::set_status(&txn, tenant, id, active, &reason).await? {
            return Err(ServiceError::NotFound);
        }
        if !active {
            repo::stop_pending(&txn, tenant, id, &reason).await?;
        }
        let row = repo::subscription(&txn, tenant, id).await?.ok_or(ServiceError::NotFound)?;
        let action = if active { "webhook.enabled" } else { "webhook.disabled" };
        ecom_store::orders::audit(&txn, tenant, actor, action, &row.callback_url, "").await?;
        commit(txn).await?;
        Ok(row.into())
    }

    /// Deletes a subscription and its log.
    pub async fn delete(&self, tenant: TenantId, id: Uuid, actor: &str) -> Result<()> {
        let txn = self.db.tenant_txn(tenant).await?;
        let row = repo::subscription(&txn, tenant, id).await?.ok_or(ServiceError::NotFound)?;
        repo::delete_subscription(&txn, tenant, id).await?;
        ecom_store::orders::audit(&txn, tenant, actor, "webhook.deleted", &row.callback_url, "").await?;
        commit(txn).await?;
        Ok(())
    }

    /// A subscription's newest deliveries with their attempts.
    pub async fn deliveries(&self, tenant: TenantId, subscription: Uuid, limit: u64) -> Result<Vec<Delivery>> {
        let txn = self.db.tenant_txn(tenant).await?;
        let rows = repo::deliveries(&txn, tenant, subscription, limit).await?;
        let ids: Vec<Uuid> = rows.iter().map(|d| d.id).collect();
        let attempts = if ids.is_empty() { Vec::new() } else { repo::attempts(&txn, tenant, &ids).await? };
        commit(txn).await?;
        let mut by_delivery: std::collections::HashMap<Uuid, Vec<Attempt>> = std::collections::HashMap::new();
        for a in attempts {
            by_delivery.entry(a.delivery_id).or_default().push(Attempt {
                at: a.at,
                status_code: a.status_code,
                error: a.error,
                latency_ms: a.latency_ms,
                response_excerpt: a.response_excerpt,
            });
        }
        Ok(rows
            .into_iter()
            .map(|d| Delivery {
                log: by_delivery.remove(&d.id).unwrap_or_default(),
                id: d.id,
                event_id: d.event_id,
                topic: d.topic,
                status: d.status,
                attempts: d.attempts,
                next_attempt_at: d.next_attempt_at,
                last_status_code: d.last_status_code,
                last_error: d.last_error,
                delivered_at: d.delivered_at,
                created_at: d.created_at,
            })
            .collect())
    }

    /// Queues a new attempt of a delivery now (the receiver gets the same event id, so
    /// it can tell a redelivery from a new event).
    pub async fn redeliver(&self, tenant: TenantId, subscription: Uuid, delivery: Uuid, actor: &str) -> Result<()> {
        let txn = self.db.tenant_txn(tenant).await?;
        let sub = repo::subscription(&txn, tenant, subscription).await?.ok_or(ServiceError::NotFound)?;
        if sub.status != repo::ACTIVE {
            return Err(invalid("subscription", "the subscription is off: turn it on first"));
        }
        if !repo::redeliver(&txn, tenant, subscription, delivery, Utc::now()).await? {
            // Either no such delivery here, or it is being sent at this moment.
            return Err(if repo::delivery_exists(&txn, tenant, subscription, delivery).await? {
                invalid("delivery", "it is being sent right now; look at the log again in a moment")
            } else {
                ServiceError::NotFound
            });
        }
        ecom_store::orders::audit(&txn, tenant, actor, "webhook.redelivered", &sub.callback_url, &delivery.to_string())
            .await?;
        commit(txn).await?;
        Ok(())
    }

    // ---- the sender ------------------------------------------------------------------------

    /// Runs rounds until the task is dropped or aborted; sleeps when idle.
    pub async fn run(self) {
        loop {
            let idle = match self.run_once().await {
                Ok(round) => round == SendRound::default(),
                Err(e) => {
                    tracing::warn!(error = %e, "webhook sender round failed");
                    true
                }
            };
            if idle {
                tokio::time::sleep(self.settings.poll).await;
            }
        }
    }

    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// One round: leases due deliveries and attempts them, up to `concurrency` at once,
    /// leasing more as each attempt finishes (so one slow receiver does not hold the
    /// others back), until nothing more is due and every attempt has finished.
    pub async fn run_once(&self) -> Result<SendRound> {
        let room = self.settings.concurrency.max(1);
        let mut round = SendRound::default();
        let mut tasks = tokio::task::JoinSet::new();
        let mut more = true;
        loop {
            if more && tasks.len() < room {
                let want = room - tasks.len();
                match self.claim(want).await {
                    Ok(claimed) => {
                        // Fewer than asked for: nothing else is due right now.
                        more = claimed.len() == want;
                        for row in claimed {
                            let me = self.clone();
                            tasks.spawn(async move { me.attempt(row).await });
                        }
                    }
                    Err(e) => {
                        // Let the attempts in flight finish and record themselves.
                        tracing::warn!(error = %e, "leasing webhook deliveries failed");
                        more = false;
                    }
                }
            }
            let Some(done) = tasks.join_next().await else { break };
            match done {
                Ok(Ok(Outcome::Delivered)) => round.delivered += 1,
                Ok(Ok(Outcome::Retry)) => round.retried += 1,
                Ok(Ok(Outcome::Failed)) => round.failed += 1,
                Ok(Ok(Outcome::LostLease)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "recording a webhook attempt failed"),
                Err(e) => tracing::warn!(error = %e, "a webhook attempt task failed"),
            }
        }
        Ok(round)
    }

    /// Leases up to `want` due deliveries to this sender.
    async fn claim(&self, want: usize) -> Result<Vec<DeliveryRow>> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(self.settings.lease()).unwrap_or(chrono::Duration::MAX);
        let txn = self.db.platform_txn().await?;
        let claimed = repo::LEASE.claim(&txn, &self.id, now, until, want as u64).await?;
        commit(txn).await?;
        Ok(claimed)
    }

    async fn attempt(&self, row: DeliveryRow) -> Result<Outcome> {
        let tenant = TenantId(row.tenant_id);
        let txn = self.db.tenant_txn(tenant).await?;
        let sub = repo::subscription(&txn, tenant, row.subscription_id).await?;
        commit(txn).await?;
        let Some(sub) = sub else { return Ok(Outcome::LostLease) };
        let started = Instant::now();
        let answer = if sub.status == repo::ACTIVE {
            match self.sealer.open(&sub.secret_sealed) {
                Ok(secret) => self.post(&sub, &row, &secret).await,
                // Not sent unsigned: logged as a failed attempt, retried like one.
                Err(_) => Answer::error("the signing secret cannot be opened (was ECOM_SECRET_KEY changed?)"),
            }
        } else {
            Answer::error("the subscription is off")
        };
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let ok = answer.status.is_some_and(|s| (200..300).contains(&s));
        let now = Utc::now();
        let attempts = u32::try_from(row.attempts).unwrap_or(0).saturating_add(1);
        let next = (!ok && attempts < self.settings.max_attempts && sub.status == repo::ACTIVE).then(|| {
            now + chrono::Duration::from_std(self.settings.backoff(attempts)).unwrap_or(chrono::Duration::MAX)
        });
        let result = match (answer.status, answer.error.as_str()) {
            (Some(code), _) => format!("{code} in {latency_ms} ms"),
            (None, error) => error.to_owned(),
        };
        let txn = self.db.tenant_txn(tenant).await?;
        let recorded = repo::record_attempt(
            &txn,
            &row,
            &self.id,
            &repo::NewAttempt {
                status_code: answer.status,
                error: &answer.error,
                latency_ms,
                response_excerpt: &answer.excerpt,
            },
            ok,
            next,
            now,
        )
        .await?;
        if !recorded {
            return Ok(Outcome::LostLease);
        }
        repo::note_result(&txn, tenant, sub.id, ok, &result, now).await?;
        let mut outcome = if ok {
            Outcome::Delivered
        } else if next.is_some() {
            Outcome::Retry
        } else {
            Outcome::Failed
        };
        if !ok && sub.status == repo::ACTIVE {
            let window = chrono::Duration::from_std(self.settings.disable_after).unwrap_or(chrono::Duration::MAX);
            let reason = format!(
                "every attempt failed for {} (last: {result}); turned off automatically",
                human(self.settings.disable_after)
            );
            if repo::disable_if_failing_since(&txn, tenant, sub.id, now - window, &reason).await? {
                self.tell_owner(&txn, tenant, &sub, &reason).await?;
                ecom_store::orders::audit(&txn, tenant, "platform", "webhook.disabled", &sub.callback_url, &reason)
                    .await?;
                metrics::counter!("ecom_webhook_subscriptions_disabled_total").increment(1);
                tracing::warn!(tenant.id = %tenant, subscription = %sub.id, "webhook subscription disabled after failing");
                outcome = Outcome::Failed;
            }
        }
        commit(txn).await?;
        let label = match outcome {
            Outcome::Delivered => "delivered",
            Outcome::Retry => "retry",
            Outcome::Failed => "failed",
            Outcome::LostLease => "lost_lease",
        };
        metrics::counter!("ecom_webhook_deliveries_total", "outcome" => label).increment(1);
        metrics::histogram!("ecom_webhook_latency_seconds").record(f64::from(latency_ms) / 1000.0);
        Ok(outcome)
    }

    /// POSTs one delivery; never fails, the answer says what happened.
    async fn post(&self, sub: &SubscriptionRow, row: &DeliveryRow, secret: &str) -> Answer {
        let Ok(url) = Url::parse(&sub.callback_url) else { return Answer::error("the URL is not valid") };
        if let Err(e) = self.outbound.check_url(&url) {
            return Answer::error(&e.to_string());
        }
        let ts = Utc::now().timestamp();
        let store = store_of(&row.body);
        let request = self
            .outbound
            .client()
            .post(url)
            .timeout(self.settings.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Ecom-Webhook-Id", row.event_id.to_string())
            .header("X-Ecom-Topic", row.topic.as_str())
            .header("X-Ecom-Store", store)
            .header("X-Ecom-Timestamp", ts.to_string())
            .header("X-Ecom-Signature", signature(secret, ts, &row.body))
            .body(row.body.clone());
        let work = async {
            let mut resp = request.send().await.map_err(explain)?;
            let status = resp.status().as_u16();
            let mut excerpt = Vec::new();
            // Only the start of the answer is kept; the rest is not read.
            while excerpt.len() < EXCERPT_BYTES {
                match resp.chunk().await {
                    Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                    Ok(None) | Err(_) => break,
                }
            }
            excerpt.truncate(EXCERPT_BYTES);
            Ok::<_, FetchError>((status, String::from_utf8_lossy(&excerpt).into_owned()))
        };
        match tokio::time::timeout(self.settings.timeout, work).await {
            Ok(Ok((status, excerpt))) => Answer { status: Some(i32::from(status)), error: String::new(), excerpt },
            Ok(Err(e)) => Answer::error(&e.to_string()),
            Err(_) => Answer::error(&format!("no answer within {} s", self.settings.timeout.as_secs_f64())),
        }
    }

    async fn tell_owner(
        &self,
        txn: &ecom_store::DatabaseTransaction,
        tenant: TenantId,
        sub: &SubscriptionRow,
        reason: &str,
    ) -> Result<()> {
        let staff = ecom_store::accounts::list_staff(txn, tenant).await?;
        let Some(owner) = staff.iter().find(|s| s.role == Some(StaffRole::Owner)).or(staff.first()) else {
            return Ok(());
        };
        let store = repo::store_names(txn, tenant).await?.map(|(_, name)| name).unwrap_or_default();
        let body = format!(
            "Hello,\n\nThe webhook subscription of {store} that sends events to\n\n  {url}\n\nwas turned off: {reason}.\n\n\
             Events since then were not sent. Fix the receiver, then turn the subscription back on in the merchant \
             panel (Settings → Webhooks) and redeliver the events it missed from its delivery log.\n",
            url = sub.callback_url
        );
        self.mailer.send(txn, Some(tenant), &owner.email, "A webhook subscription was turned off", &body).await
    }
}

/// `X-Ecom-Store`: the body's `store` field.
fn store_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("store").and_then(|s| s.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// A duration as people say it: "1 day", "2 h", "30 s".
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        86_400 => "a day".into(),
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// What a receiver answered.
struct Answer {
    status: Option<i32>,
    error: String,
    excerpt: String,
}

impl Answer {
    fn error(e: &str) -> Self {
        Self { status: None, error: e.chars().take(500).collect(), excerpt: String::new() }
    }
}

enum Outcome {
    Delivered,
    Retry,
    Failed,
    LostLease,
}

/// The bus consumer that writes one delivery per subscription wanting the event.
pub struct Fanout {
    db: Db,
}

impl Fanout {
    pub const NAME: &'static str = "webhooks";
}

/// The JSON body receivers get: `{id, topic, version, store, occurred_at, data}`.
pub fn body(event: &Event, store: &str) -> String {
    serde_json::json!({
        "id": event.id,
        "topic": event.topic,
        "version": event.version,
        "store": store,
        "occurred_at": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": event.data,
    })
    .to_string()
}

#[async_trait::async_trait]
impl Consumer for Fanout {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn topics(&self) -> &[Topic] {
        Topic::ALL
    }

    async fn handle(&self, event: &Event) -> std::result::Result<(), ConsumerError> {
        self.fan_out(event.tenant(), vec![event]).await
    }

    fn batches(&self) -> bool {
        true
    }

    async fn handle_batch(&self, events: &[Event]) -> Vec<std::result::Result<(), ConsumerError>> {
        ecom_bus::consumer::by_store(events, |tenant, group| self.fan_out(tenant, group)).await
    }
}

impl Fanout {
    /// One store's events: their receipts and a delivery per subscription wanting each,
    /// in one transaction; the subscriptions and the store's name are read once.
    async fn fan_out(&self, tenant: TenantId, events: Vec<&Event>) -> std::result::Result<(), ConsumerError> {
        let txn = self.db.tenant_txn(tenant).await?;
        let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        let fresh = ecom_store::bus::first_receipts(&txn, tenant, Self::NAME, &ids).await?;
        let subscriptions = repo::active_subscriptions(&txn, tenant).await?;
        let mut store = None;
        let now = Utc::now();
        for event in events.iter().filter(|e| fresh.contains(&e.id)) {
            let wanted: Vec<&SubscriptionRow> = subscriptions
                .iter()
                .filter(|s| s.topics.split(',').any(|t| t == event.topic.as_str()))
                // A subscription gets the events that happened after it was made,
                // however late the relay fans an older one out.
                .filter(|s| s.created_at <= event.occurred_at)
                .collect();
            if wanted.is_empty() {
                continue;
            }
            if store.is_none() {
                store = Some(repo::store_names(&txn, tenant).await?.map(|(slug, _)| slug).unwrap_or_default());
            }
            let body = body(event, store.as_deref().unwrap_or_default());
            for sub in wanted {
                repo::add_delivery(&txn, tenant, sub.id, event.id, event.topic.as_str(), &body, now).await?;
            }
        }
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_documented_scheme() {
        // HMAC-SHA256("whsec_test", "1700000000.{}"), computed independently with
        // Python's hmac module as in the README's verification example.
        let sig = signature("whsec_test", 1_700_000_000, "{}");
        assert_eq!(sig, "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91");
        assert_ne!(signature("whsec_other", 1_700_000_000, "{}"), sig);
        assert_ne!(signature("whsec_test", 1_700_000_001, "{}"), sig);
    }

    #[test]
    fn topics_are_checked() {
        assert_eq!(
            parse_topics(&["order.paid", "order.placed", "order.paid"]).ok(),
            Some(vec![Topic::OrderPlaced, Topic::OrderPaid])
        );
        assert!(parse_topics::<&str>(&[]).is_err());
        assert!(parse_topics(&["order.teleported"]).is_err());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(86_400)), "a day");
        assert_eq!(human(Duration::from_secs(7_200)), "2 h");
        assert_eq!(human(Duration::from_secs(2)), "2 s");
    }
}
