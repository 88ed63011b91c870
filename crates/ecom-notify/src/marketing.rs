//! Marketing messages: abandoned-cart reminders and back-in-stock alerts, written by a
//! scheduled job, each with a one-click unsubscribe (RFC 8058), and the signed links
//! that unsubscribe and confirm without signing in.
//!
//! The job runs in every `ecom serve`, but only the holder of its lease (`job_leases`)
//! works a round, and each cart or request is marked done by a conditional update in
//! the transaction that queues its messages, so no message is queued twice even when
//! leases overlap.

use crate::consumer::store_context;
use crate::fanout::CustomerMessage;
use crate::routing::{self, Kind};
use crate::{StoreEnv, StoreLinks, templates};
use chrono::{DateTime, Utc};
use ecom_core::{Tenant, TenantId};
use ecom_store::{DatabaseTransaction, Db, StoreError, marketing as repo};
use hmac::{Hmac, Mac};
use minijinja::{Value, context};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Signs and checks the tokens of links that work without signing in. A token is
/// `<base64url data>.<hex HMAC>` over a purpose and the data, so a token made for one
/// purpose never works for another, and nobody without the platform secret can make one.
#[derive(Clone)]
pub struct LinkSigner {
    key: Arc<[u8; 32]>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner")
    }
}

/// Unsubscribe from a store's marketing: data `<tenant id>|<email>`.
pub const UNSUBSCRIBE: &str = "unsubscribe";
/// Confirm a guest's back-in-stock request: data `<tenant id>|<request id>`.
pub const RESTOCK: &str = "restock";

impl LinkSigner {
    /// Derives its own key from the platform secret.
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = Self::hmac(secret);
        mac.update(b"ecom link signing key");
        Self { key: Arc::new(mac.finalize().into_bytes().into()) }
    }

    fn hmac(key: &[u8]) -> Hmac<Sha256> {
        let Ok(mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
            unreachable!("HMAC accepts keys of any length")
        };
        mac
    }

    fn mac(&self, purpose: &str, data: &str) -> Hmac<Sha256> {
        let mut mac = Self::hmac(self.key.as_slice());
        mac.update(purpose.as_bytes());
        mac.update(b"\n");
        mac.update(data.as_bytes());
        mac
    }

    pub fn sign(&self, purpose: &str, data: &str) -> String {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data);
        format!("{encoded}.{}", hex::encode(self.mac(purpose, data).finalize().into_bytes()))
    }

    /// The data of a token signed for `purpose`, or `None` for anything else.
    pub fn verify(&self, purpose: &str, token: &str) -> Option<String> {
        use base64::Engine;
        if token.len() > 1024 {
            return None;
        }
        let (encoded, sig) = token.split_once('.')?;
        let data = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
        let sig = hex::decode(sig).ok()?;
        // `verify_slice` compares in constant time.
        self.mac(purpose, &data).verify_slice(&sig).ok()?;
        Some(data)
    }

    pub fn unsubscribe_token(&self, tenant: TenantId, email: &str) -> String {
        self.sign(UNSUBSCRIBE, &format!("{}|{}", tenant.0, email.trim().to_ascii_lowercase()))
    }

    /// The store and address of an unsubscribe token.
    pub fn unsubscribe_of(&self, token: &str) -> Option<(TenantId, String)> {
        let data = self.verify(UNSUBSCRIBE, token)?;
        let (tenant, email) = data.split_once('|')?;
        Some((TenantId(Uuid::parse_str(tenant).ok()?), email.to_owned()))
    }

    pub fn restock_token(&self, tenant: TenantId, request: Uuid) -> String {
        self.sign(RESTOCK, &format!("{}|{request}", tenant.0))
    }

    pub fn restock_of(&self, token: &str) -> Option<(TenantId, Uuid)> {
        let data = self.verify(RESTOCK, token)?;
        let (tenant, id) = data.split_once('|')?;
        Some((TenantId(Uuid::parse_str(tenant).ok()?), Uuid::parse_str(id).ok()?))
    }
}

/// The `List-Unsubscribe` pair of headers (RFC 2369 + RFC 8058 one-click) for a
/// marketing message: the signed https link first, then a mailto.
pub fn unsubscribe_headers(unsubscribe_url: &str, mailto: &str) -> Vec<(String, String)> {
    vec![
        ("List-Unsubscribe".into(), format!("<{unsubscribe_url}>, <mailto:{mailto}?subject=unsubscribe>")),
        ("List-Unsubscribe-Post".into(), "List-Unsubscribe=One-Click".into()),
    ]
}

/// How the marketing job behaves.
#[derive(Debug, Clone)]
pub struct MarketingSettings {
    /// A cart idle this long (with an email and lines, no order) gets its reminder.
    pub abandoned_after: Duration,
    /// How often the job looks.
    pub poll: Duration,
    /// The mailbox named in `List-Unsubscribe`'s mailto (the sender's address).
    pub mailto: String,
}

impl Default for MarketingSettings {
    fn default() -> Self {
        Self {
            abandoned_after: Duration::from_secs(4 * 3600),
            poll: Duration::from_secs(60),
            mailto: "no-reply@localhost".into(),
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JobRound {
    /// Carts that got a reminder (on at least one channel).
    pub reminded: usize,
    /// Back-in-stock requests answered and closed.
    pub restocked: usize,
}

/// The scheduled job. Cheap to clone.
#[derive(Clone)]
pub struct MarketingJob {
    db: Db,
    links: StoreLinks,
    signer: LinkSigner,
    settings: Arc<MarketingSettings>,
    id: Arc<str>,
}

impl std::fmt::Debug for MarketingJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarketingJob").field("id", &self.id).finish_non_exhaustive()
    }
}

const LEASE: &str = "marketing";
const BATCH: u64 = 200;

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(sea_orm::DbErr::Custom(e.to_string()))
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn sub(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl MarketingJob {
    pub fn new(db: Db, links: StoreLinks, signer: LinkSigner, settings: MarketingSettings) -> Self {
        let id = format!("marketing-{}-{}", std::process::id(), Uuid::now_v7().simple());
        Self { db, links, signer, settings: Arc::new(settings), id: id.into() }
    }

    /// Works a round whenever this node holds the lease, until aborted.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.leased_round(Utc::now()).await {
                    Ok(Some(r)) if r != JobRound::default() => {
                        tracing::info!(reminded = r.reminded, restocked = r.restocked, "marketing messages queued");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "marketing round failed"),
                }
                tokio::time::sleep(self.settings.poll).await;
            }
        })
    }

    /// A round if this node gets (or keeps) the lease; `None` when another node has it.
    pub async fn leased_round(&self, now: DateTime<Utc>) -> Result<Option<JobRound>, StoreError> {
        let until = add(now, self.settings.poll.saturating_mul(3).max(Duration::from_secs(30)));
        let txn = self.db.platform_txn().await?;
        let mine = ecom_store::lease::take_job(&txn, LEASE, &self.id, now, until).await?;
        txn.commit().await?;
        if !mine {
            return Ok(None);
        }
        self.run_once(now).await.map(Some)
    }

    /// One round, lease or not (tests, one-off commands): reminders for carts idle
    /// since before `now - abandoned_after`, alerts for requests whose variant has stock.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<JobRound, StoreError> {
        let mut round = JobRound::default();
        let txn = self.db.platform_txn().await?;
        let carts = repo::abandoned_carts(&txn, sub(now, self.settings.abandoned_after), BATCH).await?;
        let requests = repo::restocked(&txn, BATCH).await?;
        txn.commit().await?;
        let mut tenants: std::collections::HashMap<Uuid, Option<Tenant>> = std::collections::HashMap::new();
        for cart in carts {
            let Some(tenant) = self.tenant(&mut tenants, cart.tenant_id).await? else { continue };
            if self.remind(&tenant, &cart, now).await? {
                round.reminded += 1;
            }
        }
        for request in requests {
            let Some(tenant) = self.tenant(&mut tenants, request.tenant_id).await? else { continue };
            if self.restock(&tenant, &request, now).await? {
                round.restocked += 1;
            }
        }
        Ok(round)
    }

    async fn tenant(
        &self,
        cache: &mut std::collections::HashMap<Uuid, Option<Tenant>>,
        id: Uuid,
    ) -> Result<Option<Tenant>, StoreError> {
        if let Some(t) = cache.get(&id) {
            return Ok(t.clone());
        }
        let found = ecom_store::tenants::find_by_id(&self.db, TenantId(id)).await?.filter(|t| t.is_open());
        cache.insert(id, found.clone());
        Ok(found)
    }

    /// One cart's reminder. The cart is marked in the same transaction whether or not
    /// anything goes out (no consent, no verified address): it is considered once.
    async fn remind(
        &self,
        tenant: &Tenant,
        cart: &repo::cart_reminder::Model,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        if !repo::mark_reminded(&txn, tenant.id, cart.id, now).await? {
            return Ok(false);
        }
        // The order may have been placed since the list was read.
        if ecom_store::orders::order_by_cart(&txn, tenant.id, cart.id).await?.is_some() {
            txn.commit().await?;
            return Ok(false);
        }
        let (prefs, contacts) = routing::load(&txn, tenant.id, cart.customer_id, &cart.email).await?;
        let channels = routing::channels(Kind::AbandonedCart, &prefs, &contacts);
        if channels.is_empty() {
            txn.commit().await?;
            return Ok(false);
        }
        let mut lines = Vec::new();
        let mut count = 0i64;
        for (variant, quantity) in ecom_store::orders::cart_lines(&txn, tenant.id, cart.id).await? {
            if let Some(v) = repo::variant_info(&txn, tenant.id, variant).await? {
                count += i64::from(quantity);
                lines.push(context! { title => v.product_title, variant => v.variant_title, quantity });
            }
        }
        let base = self.links.base(tenant);
        let message = Message {
            kind: Kind::AbandonedCart,
            template: "abandoned_cart",
            ctx: context! { cart_url => Value::from_safe_string(format!("{base}/cart")), lines, count },
            inapp_link: "/cart".into(),
            whatsapp: vec![format!("{base}/cart")],
        };
        self.queue(&txn, tenant, &base, &contacts, &channels, &message).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// One back-in-stock request: answered once, then closed. A request waits while
    /// its address is not proven (a guest who has not used the confirmation link, a
    /// customer who has not verified their email and has no inbox).
    async fn restock(
        &self,
        tenant: &Tenant,
        request: &repo::RestockRequest,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if request.confirmed_at.is_none() {
            return Ok(false);
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        let (mut prefs, mut contacts) = routing::load(&txn, tenant.id, request.customer_id, &request.email).await?;
        // Asking for this one message is consent to it, unless marketing was turned
        // down after the request was made.
        let withdrawn_since = repo::consent(&txn, tenant.id, &request.email)
            .await?
            .and_then(|c| c.withdrawn_at)
            .is_some_and(|w| w > request.created_at && !prefs.marketing_consent);
        if withdrawn_since {
            repo::close_restock(&txn, tenant.id, request.id, now).await?;
            txn.commit().await?;
            return Ok(false);
        }
        prefs.marketing_consent = true;
        if request.customer_id.is_none() {
            // A guest's confirmation link proved the address.
            contacts.email_verified = true;
        }
        let channels = routing::channels(Kind::BackInStock, &prefs, &contacts);
        let Some(v) = repo::variant_info(&txn, tenant.id, request.variant_id).await? else {
            repo::close_restock(&txn, tenant.id, request.id, now).await?;
            txn.commit().await?;
            return Ok(false);
        };
        // Email the customer wants but cannot have yet (unverified address): wait.
        let email_waits = prefs.wants(Kind::BackInStock, crate::EMAIL)
            && contacts.email.is_some()
            && !channels.contains(&crate::EMAIL);
        if channels.is_empty() || email_waits || v.stock <= 0 {
            txn.commit().await?;
            return Ok(false);
        }
        if !repo::close_restock(&txn, tenant.id, request.id, now).await? {
            return Ok(false);
        }
        let base = self.links.base(tenant);
        let message = Message {
            kind: Kind::BackInStock,
            template: "back_in_stock",
            ctx: context! { product => context! {
                title => v.product_title.clone(),
                variant => v.variant_title,
                url => Value::from_safe_string(format!("{base}/products/{}", v.handle)),
            } },
            inapp_link: format!("/products/{}", v.handle),
            whatsapp: vec![v.product_title.clone(), format!("{base}/products/{}", v.handle)],
        };
        self.queue(&txn, tenant, &base, &contacts, &channels, &message).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Queues a marketing message on each routed channel, in the caller's transaction.
    async fn queue(
        &self,
        txn: &DatabaseTransaction,
        tenant: &Tenant,
        base: &str,
        contacts: &routing::Contacts,
        channels: &[&'static str],
        message: &Message,
    ) -> Result<(), StoreError> {
        let email = contacts.email.clone().unwrap_or_default();
        let token = self.signer.unsubscribe_token(tenant.id, &email);
        let unsubscribe_url = format!("{base}/unsubscribe/{token}");
        let ctx = context! {
            store => store_context(tenant, base),
            unsubscribe_url => Value::from_safe_string(unsubscribe_url.clone()),
            ..message.ctx.clone()
        };
        let rendered = templates::render_marketing(message.template, &ctx).map_err(failed)?;
        let env = StoreEnv::builtin();
        let out = CustomerMessage {
            tenant,
            base,
            template: message.template,
            ctx: &ctx,
            env: &env,
            email: &rendered,
            email_headers: unsubscribe_headers(&unsubscribe_url, &self.settings.mailto),
            link: message.inapp_link.clone(),
            whatsapp: [vec![tenant.name.clone()], message.whatsapp.clone()].concat(),
            event_id: None,
        };
        let mut batch = ecom_store::notifications::Batch::default();
        crate::fanout::queue(&mut batch, contacts, channels, &out);
        batch.write(txn).await?;
        tracing::debug!(kind = message.kind.as_str(), tenant.id = %tenant.id, "marketing message queued");
        Ok(())
    }
}

struct Message {
    kind: Kind,
    template: &'static str,
    ctx: Value,
    /// A path in the store for the in-app item and a push click.
    inapp_link: String,
    /// WhatsApp body parameters after the store's name.
    whatsapp: Vec<String>,
}

pub(crate) fn first_line(text: &str) -> String {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().to_owned()
}

/// Withdraws the marketing consent a signed unsubscribe token names, if it is for this
/// store; returns the address. `via` records how (one-click POST, the page's button).
pub async fn unsubscribe(
    db: &Db,
    signer: &LinkSigner,
    tenant: TenantId,
    token: &str,
    via: &str,
) -> Result<Option<String>, StoreError> {
    let Some((for_tenant, email)) = signer.unsubscribe_of(token) else { return Ok(None) };
    if for_tenant != tenant {
        return Ok(None);
    }
    let txn = db.tenant_txn(tenant).await?;
    repo::record_consent(&txn, tenant, &email, false, via, Utc::now()).await?;
    txn.commit().await?;
    tracing::info!(tenant.id = %tenant, via, "marketing unsubscribed");
    Ok(Some(email))
}

/// The outcome of asking to hear when a variant is back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestockAsked {
    /// Filed; the shopper hears once it is back.
    Filed,
    /// Filed; a guest first confirms their address with the link just emailed.
    ConfirmationSent,
    /// They had asked already.
    AlreadyAsked,
    /// The variant is in stock: nothing to wait for.
    InStock,
}

/// Why a back-in-stock request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RestockError {
    #[error("{0}")]
    Invalid(ecom_core::Invalid),
    #[error("there is no such product")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// "Email me when it's back", by a signed-in customer (their account's address) or a
/// guest (the address given, confirmed by a link before anything else is sent).
pub async fn request_back_in_stock(
    db: &Db,
    signer: &LinkSigner,
    tenant: &Tenant,
    base: &str,
    variant: Uuid,
    customer: Option<(Uuid, String)>,
    email: &str,
) -> Result<RestockAsked, RestockError> {
    let (customer_id, address) = match customer {
        Some((id, email)) => (Some(id), email),
        None => {
            let e = ecom_core::Email::parse(email).map_err(RestockError::Invalid)?;
            (None, e.as_str().to_owned())
        }
    };
    let txn = db.tenant_txn(tenant.id).await?;
    let Some(v) = repo::variant_info(&txn, tenant.id, variant).await? else { return Err(RestockError::NotFound) };
    if v.product_status != "active" {
        return Err(RestockError::NotFound);
    }
    if v.stock > 0 {
        return Ok(RestockAsked::InStock);
    }
    let confirmed = customer_id.is_some();
    let Some(id) = repo::request_restock(&txn, tenant.id, variant, customer_id, &address, confirmed).await? else {
        return Ok(RestockAsked::AlreadyAsked);
    };
    let outcome = if confirmed {
        RestockAsked::Filed
    } else {
        let link = format!("{base}/back-in-stock/{}", signer.restock_token(tenant.id, id));
        let title = if v.variant_title.is_empty() {
            v.product_title.clone()
        } else {
            format!("{} ({})", v.product_title, v.variant_title)
        };
        let text = format!(
            "Hello,\n\nSomeone (we hope you) asked {store} to email {address} once {title} is back in stock.\n\
             To confirm, open this link:\n\n{link}\n\nIf it was not you, ignore this message: nothing more will be sent.\n",
            store = tenant.name,
        );
        crate::enqueue_email(
            &txn,
            Some(tenant.id),
            &crate::Email {
                to: &address,
                template: "back_in_stock_confirm",
                subject: &format!("Confirm: tell me when {title} is back — {}", tenant.name),
                text: &text,
                html: "",
                event_id: None,
            },
        )
        .await?;
        RestockAsked::ConfirmationSent
    };
    txn.commit().await.map_err(StoreError::from)?;
    Ok(outcome)
}

/// Confirms a guest's request with the token of its link; false for a bad, foreign or
/// used token.
pub async fn confirm_back_in_stock(
    db: &Db,
    signer: &LinkSigner,
    tenant: TenantId,
    token: &str,
) -> Result<bool, StoreError> {
    let Some((for_tenant, id)) = signer.restock_of(token) else { return Ok(false) };
    if for_tenant != tenant {
        return Ok(false);
    }
    let txn = db.tenant_txn(tenant).await?;
    let done = repo::confirm_restock(&txn, tenant, id, Utc::now()).await?;
    txn.commit().await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signed_links_work_for_their_purpose_only_and_cannot_be_forged() {
        let signer = LinkSigner::new(b"a secret that is long enough for the tests");
        let tenant = TenantId(Uuid::now_v7());
        let token = signer.unsubscribe_token(tenant, " Pat@Example.com ");
        assert_eq!(signer.unsubscribe_of(&token), Some((tenant, "pat@example.com".into())));
        assert_eq!(signer.verify(RESTOCK, &token), None, "another purpose");
        let other = LinkSigner::new(b"another secret, as long as the first one");
        assert_eq!(other.unsubscribe_of(&token), None);
        let (data, sig) = token.split_once('.').unwrap();
        let forged = format!("{data}x.{sig}");
        assert_eq!(signer.unsubscribe_of(&forged), None);
        assert_eq!(signer.unsubscribe_of("nonsense"), None);
        assert_eq!(signer.unsubscribe_of(""), None);
        let request = Uuid::now_v7();
        assert_eq!(signer.restock_of(&signer.restock_token(tenant, request)), Some((tenant, request)));
    }

    #[test]
    fn marketing_mail_carries_the_one_click_headers() {
        let h = unsubscribe_headers("https://demo.example/unsubscribe/abc.def", "no-reply@example.com");
        assert_eq!(
            h[0].1,
            "<https://demo.example/unsubscribe/abc.def>, <mailto:no-reply@example.com?subject=unsubscribe>"
        );
        assert_eq!(h[1], ("List-Unsubscribe-Post".into(), "List-Unsubscribe=One-Click".into()));
    }
}
