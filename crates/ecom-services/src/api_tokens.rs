//! API tokens: merchants' app tokens for the merchant GraphQL API (named, scoped,
//! revocable, every change audited) and customers' access tokens for the Storefront
//! API (issued at sign-in, expiring, revoked by a password change).
//!
//! A token is a prefix and 32 random bytes in base64url (`ecm_…` for apps, `ecs_…`
//! for customers, so a leaked one is easy to recognise); only its SHA-256 is stored.

use crate::accounts::SignedIn;
use crate::{Result, ServiceError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ecom_core::scope::Scopes;
use ecom_core::{AccountId, Invalid, Realm, TenantId};
use ecom_store::api_tokens::{self as repo, TokenRef, TokenRow};
use ecom_store::{Db, StoreError};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const APP: &str = "app";
const CUSTOMER: &str = "customer";
const APP_PREFIX: &str = "ecm_";
const CUSTOMER_PREFIX: &str = "ecs_";
/// How long a customer access token lives (Shopify's are similar).
pub const CUSTOMER_TOKEN_DAYS: i64 = 30;
/// A store's live app tokens at most.
const MAX_APP_TOKENS: usize = 50;

/// A merchant's app token as the panel lists it (never the token itself).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppToken {
    pub id: Uuid,
    pub name: String,
    pub scopes: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Who an app token speaks for.
#[derive(Debug, Clone)]
pub struct AppCaller {
    pub token_id: Uuid,
    pub name: String,
    pub scopes: Scopes,
}

#[derive(Clone)]
pub struct ApiTokens {
    db: Db,
}

fn new_token(prefix: &str) -> String {
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// Only strings shaped like our tokens reach the database.
fn plausible(token: &str, prefix: &str) -> bool {
    let t = token.trim();
    t.len() == prefix.len() + 43 && t.starts_with(prefix)
}

async fn commit(txn: ecom_store::DatabaseTransaction) -> Result<()> {
    txn.commit().await.map_err(|e| ServiceError::from(StoreError::from(e)))
}

impl ApiTokens {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    // ---- app tokens --------------------------------------------------------------------

    /// Creates an app token; returns its id and the token, which is shown once.
    pub async fn create_app_token(
        &self,
        tenant: TenantId,
        name: &str,
        scopes: &Scopes,
        actor: &str,
    ) -> Result<(Uuid, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Invalid::new("name", "give the token a name of 1 to 100 characters").into());
        }
        if scopes.is_empty() {
            return Err(Invalid::new("scopes", "choose at least one scope").into());
        }
        let txn = self.db.tenant_txn(tenant).await?;
        let live = repo::list(&txn, tenant, APP).await?.iter().filter(|t| t.revoked_at.is_none()).count();
        if live >= MAX_APP_TOKENS {
            return Err(
                Invalid::new("name", format!("a store has at most {MAX_APP_TOKENS} tokens; revoke one first")).into()
            );
        }
        let token = new_token(APP_PREFIX);
        let id = Uuid::now_v7();
        repo::insert(
            &txn,
            TokenRow {
                id,
                tenant_id: tenant.0,
                kind: APP.into(),
                name: name.into(),
                token_hash: hash(&token),
                scopes: scopes.to_string(),
                customer_id: None,
                auth_version: 0,
                created_by: actor.into(),
                created_at: Utc::now(),
                expires_at: None,
                last_used_at: None,
                revoked_at: None,
            },
        )
        .await?;
        ecom_store::orders::audit(&txn, tenant, actor, "api_token.created", name, &format!("scopes: {scopes}")).await?;
        commit(txn).await?;
        Ok((id, token))
    }

    /// The store's app tokens, newest first.
    pub async fn app_tokens(&self, tenant: TenantId) -> Result<Vec<AppToken>> {
        let txn = self.db.tenant_txn(tenant).await?;
        let rows = repo::list(&txn, tenant, APP).await?;
        commit(txn).await?;
        Ok(rows
            .into_iter()
            .map(|r| AppToken {
                id: r.id,
                name: r.name,
                scopes: r.scopes,
                created_by: r.created_by,
                created_at: r.created_at,
                last_used_at: r.last_used_at,
                revoked_at: r.revoked_at,
            })
            .collect())
    }

    /// Revokes an app token at once; `NotFound` when there is no live one with this id.
    pub async fn revoke_app_token(&self, tenant: TenantId, id: Uuid, actor: &str) -> Result<()> {
        let txn = self.db.tenant_txn(tenant).await?;
        let name = repo::list(&txn, tenant, APP).await?.into_iter().find(|t| t.id == id).map(|t| t.name);
        if !repo::revoke(&txn, tenant, APP, TokenRef::Id(id), Utc::now()).await? {
            return Err(ServiceError::NotFound);
        }
        ecom_store::orders::audit(&txn, tenant, actor, "api_token.revoked", &name.unwrap_or_default(), "").await?;
        commit(txn).await
    }

    /// The app behind a bearer token, if the token is live in this store.
    pub async fn app_for(&self, tenant: TenantId, token: &str) -> Result<Option<AppCaller>> {
        if !plausible(token, APP_PREFIX) {
            return Ok(None);
        }
        let now = Utc::now();
        let txn = self.db.tenant_txn(tenant).await?;
        let found = repo::live_by_hash(&txn, tenant, APP, &hash(token), now).await?;
        if let Some(row) = &found {
            repo::touch(&txn, tenant, row.id, now).await?;
        }
        commit(txn).await?;
        let Some(row) = found else { return Ok(None) };
        let scopes = Scopes::parse(&row.scopes)
            .map_err(|e| ServiceError::Internal(format!("token {} has bad scopes: {e}", row.id)))?;
        Ok(Some(AppCaller { token_id: row.id, name: row.name, scopes }))
    }

    // ---- customer access tokens ------------------------------------------------------------

    /// Issues an access token to a customer who has just signed in.
    pub async fn issue_customer_token(&self, who: &SignedIn) -> Result<(String, DateTime<Utc>)> {
        let Realm::Customer(tenant) = who.realm else {
            return Err(ServiceError::Internal("customer tokens are for customers".into()));
        };
        let token = new_token(CUSTOMER_PREFIX);
        let now = Utc::now();
        let expires = now + chrono::Duration::days(CUSTOMER_TOKEN_DAYS);
        let txn = self.db.tenant_txn(tenant).await?;
        repo::insert(
            &txn,
            TokenRow {
                id: Uuid::now_v7(),
                tenant_id: tenant.0,
                kind: CUSTOMER.into(),
                name: String::new(),
                token_hash: hash(&token),
                scopes: String::new(),
                customer_id: Some(who.id.0),
                auth_version: who.auth_version,
                created_by: String::new(),
                created_at: now,
                expires_at: Some(expires),
                last_used_at: None,
                revoked_at: None,
            },
        )
        .await?;
        commit(txn).await?;
        Ok((token, expires))
    }

    /// The customer session a token stands for, if it is live. The caller still checks
    /// it with `Accounts::current` (a password change since issue revokes it).
    pub async fn customer_for(&self, tenant: TenantId, token: &str) -> Result<Option<SignedIn>> {
        if !plausible(token, CUSTOMER_PREFIX) {
            return Ok(None);
        }
        let txn = self.db.tenant_txn(tenant).await?;
        let found = repo::live_by_hash(&txn, tenant, CUSTOMER, &hash(token), Utc::now()).await?;
        commit(txn).await?;
        Ok(found.and_then(|row| {
            Some(SignedIn {
                realm: Realm::Customer(tenant),
                id: AccountId(row.customer_id?),
                auth_version: row.auth_version,
            })
        }))
    }

    /// Ends a customer access token (sign-out); false when it was not live.
    pub async fn revoke_customer_token(&self, tenant: TenantId, token: &str) -> Result<bool> {
        if !plausible(token, CUSTOMER_PREFIX) {
            return Ok(false);
        }
        let txn = self.db.tenant_txn(tenant).await?;
        let done = repo::revoke(&txn, tenant, CUSTOMER, TokenRef::Hash(&hash(token)), Utc::now()).await?;
        commit(txn).await?;
        Ok(done)
    }
}
