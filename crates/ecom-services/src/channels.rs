//! Phone verification by one-time code, and Web Push subscriptions: the use cases
//! behind the customer account's phone form and the "notify me on this device"
//! buttons of the account and the merchant panel.

use crate::{Outbound, Result, ServiceError};
use chrono::{DateTime, Duration, Utc};
use ecom_core::{Invalid, Tenant, TenantId};
use ecom_notify::{Phone, SMS, Vapid};
use ecom_store::Db;
use ecom_store::channels as repo;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A code works this long after it was sent.
pub const CODE_LIFETIME: Duration = Duration::minutes(10);
/// Wrong tries a code takes; then a new one must be sent.
pub const CODE_ATTEMPTS: i32 = 5;
/// The shortest wait between two codes to one customer.
pub const RESEND_AFTER: Duration = Duration::seconds(60);
/// Codes one number may be sent per hour by one store.
pub const CODES_PER_HOUR: u64 = 5;
/// The `template` of code messages in the queue (the resend limit counts them).
pub const CODE_TEMPLATE: &str = "phone_code";

/// What the account page shows about the customer's phone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhoneStatus {
    pub phone: Option<String>,
    pub verified: bool,
    /// A code was sent and can still be entered.
    pub code_waiting: bool,
    /// When the code was sent to (for the message on the page).
    pub code_phone: Option<String>,
    /// Whether an SMS provider is configured (else codes go to the dev mailbox).
    pub sms_provider: bool,
}

/// Phone numbers of customers and their verification.
#[derive(Clone)]
pub struct Phones {
    db: Db,
    sms_provider: bool,
}

fn hash_code(customer: Uuid, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{customer}:{code}").as_bytes()))
}

fn usable(code: &repo::PhoneCodeRow, now: DateTime<Utc>) -> bool {
    code.expires_at > now && code.attempts < CODE_ATTEMPTS
}

impl Phones {
    /// `sms_provider`: whether SMS goes to a real provider (shown on the page).
    pub fn new(db: Db, sms_provider: bool) -> Self {
        Self { db, sms_provider }
    }

    pub fn sms_provider(&self) -> bool {
        self.sms_provider
    }

    pub async fn status(&self, tenant: TenantId, customer: Uuid) -> Result<PhoneStatus> {
        let txn = self.db.tenant_txn(tenant).await?;
        let (phone, verified_at) = repo::customer_phone(&txn, tenant, customer).await?.ok_or(ServiceError::NotFound)?;
        let code = repo::current_phone_code(&txn, tenant, customer).await?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        let waiting = code.filter(|c| usable(c, Utc::now()));
        Ok(PhoneStatus {
            verified: verified_at.is_some() && phone.is_some(),
            phone,
            code_waiting: waiting.is_some(),
            code_phone: waiting.map(|c| c.phone),
            sms_provider: self.sms_provider,
        })
    }

    /// Sets the customer's phone (unverified) and texts it a new 6-digit code, through
    /// the queue, replacing any earlier code. Refused within a minute of the last code,
    /// and after five codes to the number in an hour.
    pub async fn send_code(&self, tenant: &Tenant, customer: Uuid, raw_phone: &str) -> Result<()> {
        let phone = Phone::parse(raw_phone).map_err(|e| Invalid::new("phone", e))?;
        let now = Utc::now();
        let txn = self.db.tenant_txn(tenant.id).await?;
        let (current, verified_at) =
            repo::customer_phone(&txn, tenant.id, customer).await?.ok_or(ServiceError::NotFound)?;
        if verified_at.is_some() && current.as_deref() == Some(phone.as_str()) {
            return Err(Invalid::new("phone", "This number is verified already.").into());
        }
        if let Some(last) = repo::current_phone_code(&txn, tenant.id, customer).await?
            && last.created_at + RESEND_AFTER > now
        {
            let wait = (last.created_at + RESEND_AFTER - now).num_seconds().max(1);
            return Err(ServiceError::RateLimited { retry_after_secs: u64::try_from(wait).unwrap_or(60) });
        }
        let sent =
            repo::phone_codes_sent_since(&txn, tenant.id, phone.as_str(), CODE_TEMPLATE, now - Duration::hours(1))
                .await?;
        if sent >= CODES_PER_HOUR {
            return Err(ServiceError::RateLimited { retry_after_secs: 3600 });
        }
        let code = format!("{:06}", rand::random_range(0..1_000_000u32));
        repo::set_customer_phone(&txn, tenant.id, customer, Some(phone.as_str()), None).await?;
        repo::replace_phone_code(
            &txn,
            tenant.id,
            customer,
            phone.as_str(),
            &hash_code(customer, &code),
            now,
            now + CODE_LIFETIME,
        )
        .await?;
        let text = format!("{code} is your {} verification code. It expires in 10 minutes.", tenant.name);
        ecom_notify::enqueue_to_number(&txn, tenant.id, SMS, phone.as_str(), CODE_TEMPLATE, &text, None).await?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(())
    }

    /// Checks a code: right, and the phone is verified; wrong, and one of the five
    /// tries is used up (the count is kept even though the answer is an error).
    pub async fn verify(&self, tenant: TenantId, customer: Uuid, code: &str) -> Result<()> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new("code", "Enter the 6-digit code from the text message.").into());
        }
        let now = Utc::now();
        let txn = self.db.tenant_txn(tenant).await?;
        let Some(row) = repo::current_phone_code(&txn, tenant, customer).await? else {
            return Err(Invalid::new("code", "No code is waiting; send a new one.").into());
        };
        if row.attempts >= CODE_ATTEMPTS {
            return Err(Invalid::new("code", "Too many wrong tries; send a new code.").into());
        }
        if row.expires_at <= now {
            return Err(Invalid::new("code", "This code has expired; send a new one.").into());
        }
        if hash_code(customer, &code) != row.code_hash {
            let tries = repo::count_phone_code_attempt(&txn, tenant, row.id).await?;
            txn.commit().await.map_err(ecom_store::StoreError::from)?;
            let left = CODE_ATTEMPTS - tries;
            return Err(if left <= 0 {
                Invalid::new("code", "Wrong code, and that was the last try; send a new code.")
            } else {
                Invalid::new("code", format!("Wrong code; {left} {} left.", if left == 1 { "try" } else { "tries" }))
            }
            .into());
        }
        repo::set_customer_phone(&txn, tenant, customer, Some(&row.phone), Some(now)).await?;
        repo::delete_phone_codes(&txn, tenant, customer).await?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(())
    }

    /// Forgets the customer's phone (and any code waiting).
    pub async fn remove(&self, tenant: TenantId, customer: Uuid) -> Result<()> {
        let txn = self.db.tenant_txn(tenant).await?;
        repo::set_customer_phone(&txn, tenant, customer, None, None).await?;
        repo::delete_phone_codes(&txn, tenant, customer).await?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(())
    }
}

/// A browser's push subscription as `PushSubscription.toJSON()` gives it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SubscriptionJson {
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub keys: SubscriptionKeys,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SubscriptionKeys {
    #[serde(default)]
    pub p256dh: String,
    #[serde(default)]
    pub auth: String,
}

/// Web Push subscriptions of customers and staff.
#[derive(Clone)]
pub struct PushSubscriptions {
    db: Db,
    outbound: Outbound,
    vapid: Vapid,
}

impl PushSubscriptions {
    pub fn new(db: Db, outbound: Outbound, vapid: Vapid) -> Self {
        Self { db, outbound, vapid }
    }

    /// The VAPID public key browsers subscribe with.
    pub async fn public_key(&self) -> Result<String> {
        Ok(self.vapid.key().await?.public_key().to_owned())
    }

    /// Saves a subscription for an account (`owner_kind` customer or staff). The
    /// endpoint must be an https address on the public internet (the webhooks'
    /// guard); the keys must be a P-256 point and a 16-byte secret.
    pub async fn subscribe(
        &self,
        tenant: TenantId,
        owner_kind: &str,
        account: Uuid,
        sub: &SubscriptionJson,
    ) -> Result<()> {
        let endpoint = sub.endpoint.trim();
        if endpoint.is_empty() || endpoint.len() > 2000 {
            return Err(Invalid::new("endpoint", "expected the push service address (up to 2000 characters)").into());
        }
        let url = reqwest::Url::parse(endpoint).map_err(|_| Invalid::new("endpoint", "not a URL"))?;
        if url.scheme() != "https" && !self.outbound.allows_private_network() {
            return Err(Invalid::new("endpoint", "push services are reached over https").into());
        }
        self.outbound.check_target(&url).await.map_err(|e| Invalid::new("endpoint", e.to_string()))?;
        ecom_notify::webpush::check_subscription_keys(&sub.keys.p256dh, &sub.keys.auth).map_err(|e| {
            let field = if e.starts_with("keys.auth") { "keys.auth" } else { "keys.p256dh" };
            Invalid::new(field, e.split_once(": ").map(|(_, m)| m.to_owned()).unwrap_or(e))
        })?;
        let txn = self.db.tenant_txn(tenant).await?;
        repo::save_push_subscription(
            &txn,
            tenant,
            &repo::NewPushSubscription {
                owner_kind,
                account_id: account,
                endpoint,
                p256dh: sub.keys.p256dh.trim(),
                auth: sub.keys.auth.trim(),
            },
        )
        .await?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(())
    }

    /// Removes the account's subscription for `endpoint`; nothing happens when there is none.
    pub async fn unsubscribe(&self, tenant: TenantId, owner_kind: &str, account: Uuid, endpoint: &str) -> Result<()> {
        let txn = self.db.tenant_txn(tenant).await?;
        repo::delete_push_subscription(&txn, tenant, owner_kind, account, endpoint.trim()).await?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(())
    }

    /// How many devices the account gets push messages on.
    pub async fn devices(&self, tenant: TenantId, owner_kind: &str, account: Uuid) -> Result<usize> {
        let txn = self.db.tenant_txn(tenant).await?;
        let n = repo::push_subscriptions_of(&txn, tenant, owner_kind, &[account]).await?.len();
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(n)
    }
}
