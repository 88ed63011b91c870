//! Sign-up, sign-in, password change and password reset for all three kinds of
//! account. The web layer turns the results into cookies; nothing here knows HTTP.

use crate::ratelimit::Limit;
use crate::{Mailer, RateLimits, Result, ServiceError, passwords};
use chrono::{Duration, Utc};
use ecom_core::{AccountId, Email, NewPassword, Realm};
use ecom_notify::AccountMessage;
use ecom_store::accounts::{self as repo, Credential, NewAccount};
use ecom_store::tokens::{self, Purpose};
use ecom_store::{DatabaseTransaction, Db};
use sha2::{Digest, Sha256};

/// How long a reset link works.
pub const RESET_TOKEN_TTL_MINUTES: i64 = 60;
/// How long a new owner's or staff member's "choose your password" link works.
pub const INVITE_TTL_DAYS: i64 = 7;

const BAD_LOGIN: &str = "That email and password do not match an account.";
const BAD_TOKEN: &str = "This reset link has expired or was already used. Ask for a new one.";
/// How long an email verification link works.
pub const VERIFY_TTL_DAYS: i64 = 7;
/// How long a one-time sign-in link works.
pub const SIGN_IN_LINK_MINUTES: i64 = 10;

/// Who is signed in, as a session records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub realm: Realm,
    pub id: AccountId,
    pub auth_version: i32,
}

/// The account use cases.
#[derive(Clone)]
pub struct Accounts {
    db: Db,
    limits: RateLimits,
    mailer: Mailer,
}

impl Accounts {
    pub fn new(db: Db, limits: RateLimits, mailer: Mailer) -> Self {
        Self { db, limits, mailer }
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    async fn txn(&self, realm: Realm) -> Result<DatabaseTransaction> {
        Ok(match realm.tenant() {
            Some(t) => self.db.tenant_txn(t).await?,
            None => self.db.platform_txn().await?,
        })
    }

    fn check(&self, limit: Limit, key: &str) -> Result<()> {
        self.limits.check(limit, key).map_err(|retry_after_secs| ServiceError::RateLimited { retry_after_secs })
    }

    /// Creates an account without rate limits or sign-in: for seeding, the CLI and
    /// store creation.
    pub async fn create(
        &self,
        realm: Realm,
        email: &Email,
        name: &str,
        password: &NewPassword,
        role: ecom_core::StaffRole,
    ) -> Result<AccountId> {
        let hash = passwords::hash(password.expose().to_owned()).await?;
        let txn = self.txn(realm).await?;
        let id = repo::insert(&txn, NewAccount { realm, email, name, password_hash: &hash, role }).await?;
        if let Realm::Customer(tenant) = realm {
            let data = ecom_bus::events::CustomerData { customer_id: id.0, email: email.as_str().to_owned() };
            let payload = serde_json::to_value(data).map_err(|e| crate::ServiceError::Internal(e.to_string()))?;
            ecom_store::orders::outbox(&txn, tenant, ecom_bus::Topic::CustomerCreated.as_str(), payload).await?;
        }
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(id)
    }

    /// A shopper creating their account in a store (or any realm that allows it).
    pub async fn sign_up(&self, realm: Realm, ip: &str, email: &str, name: &str, password: &str) -> Result<SignedIn> {
        self.check(Limit::SignupPerIp, ip)?;
        let email = Email::parse(email)?;
        let password = NewPassword::parse(password)?;
        let name = name.trim();
        if name.chars().count() > 200 {
            return Err(ecom_core::Invalid::new("name", "use at most 200 characters").into());
        }
        let id = self.create(realm, &email, name, &password, ecom_core::StaffRole::Staff).await?;
        Ok(SignedIn { realm, id, auth_version: 1 })
    }

    /// Checks an email and password. Unknown email and wrong password give the same
    /// answer after the same amount of work.
    pub async fn sign_in(&self, realm: Realm, ip: &str, email: &str, password: &str) -> Result<SignedIn> {
        self.check(Limit::LoginPerIp, ip)?;
        let Ok(email) = Email::parse(email) else {
            return Err(ServiceError::Unauthorized(BAD_LOGIN));
        };
        self.check(Limit::LoginPerAccount, &account_key(realm, &email))?;
        if password.len() > 4 * NewPassword::MAX_CHARS {
            return Err(ServiceError::Unauthorized(BAD_LOGIN));
        }
        let txn = self.txn(realm).await?;
        let found = repo::find_by_email(&txn, realm, &email).await?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        let Some(cred) = found else {
            passwords::verify_dummy(password.to_owned()).await?;
            return Err(ServiceError::Unauthorized(BAD_LOGIN));
        };
        if !passwords::verify(password.to_owned(), cred.password_hash.clone()).await? {
            tracing::info!(account.id = %cred.id, "failed sign-in");
            return Err(ServiceError::Unauthorized(BAD_LOGIN));
        }
        Ok(SignedIn { realm, id: cred.id, auth_version: cred.auth_version })
    }

    /// The account behind a session, if the session is still valid (the account exists
    /// and its password has not changed since the session was issued).
    pub async fn current(&self, session: &SignedIn) -> Result<Option<Credential>> {
        let txn = self.txn(session.realm).await?;
        let found = repo::find_by_id(&txn, session.realm, session.id).await?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(found.filter(|c| c.auth_version == session.auth_version))
    }

    /// Changes the password of a signed-in account after checking the current one;
    /// every other session of the account ends. Returns the refreshed session.
    pub async fn change_password(&self, session: &SignedIn, current: &str, new: &str) -> Result<SignedIn> {
        let Some(cred) = self.current(session).await? else {
            return Err(ServiceError::Unauthorized("Your session has ended. Sign in again."));
        };
        self.check(Limit::LoginPerAccount, &format!("{}:{}", session.realm.kind().as_str(), cred.email))?;
        let new = NewPassword::parse(new)?;
        if !passwords::verify(current.to_owned(), cred.password_hash).await? {
            return Err(ServiceError::Unauthorized("The current password is not right."));
        }
        let hash = passwords::hash(new.expose().to_owned()).await?;
        let txn = self.txn(session.realm).await?;
        let version =
            repo::set_password(&txn, session.realm, session.id, &hash).await?.ok_or(ServiceError::NotFound)?;
        tokens::void_all(&txn, session.realm, session.id, Utc::now()).await?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(SignedIn { auth_version: version, ..session.clone() })
    }

    /// Changes the signed-in account's name (1 to 200 characters, trimmed).
    pub async fn rename(&self, session: &SignedIn, name: &str) -> Result<()> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(ecom_core::Invalid::new("name", "enter 1 to 200 characters").into());
        }
        let txn = self.txn(session.realm).await?;
        if !repo::set_name(&txn, session.realm, session.id, name).await? {
            return Err(ServiceError::NotFound);
        }
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(())
    }

    /// Emails a one-time reset link when the email has an account. The answer is the
    /// same either way, so the form cannot be used to find out who has an account.
    /// `link_base` is the reset page's absolute URL; `?token=…` is appended.
    pub async fn request_reset(
        &self,
        realm: Realm,
        ip: &str,
        email: &str,
        link_base: &str,
        store_name: &str,
    ) -> Result<()> {
        self.check(Limit::ResetPerIp, ip)?;
        let email = Email::parse(email)?;
        self.check(Limit::ResetPerAccount, &account_key(realm, &email))?;
        let ttl = Duration::minutes(RESET_TOKEN_TTL_MINUTES);
        let valid_for = format!("{RESET_TOKEN_TTL_MINUTES} minutes");
        self.send_password_link(realm, &email, link_base, ttl, Some(("password_reset", &valid_for)), |name, token_link| {
            (
                format!("Reset your {store_name} password"),
                format!(
                    "Hello{name},\n\nSomeone asked to reset the password of your {store_name} account ({email}).\n\
                     To choose a new password, open this link within {RESET_TOKEN_TTL_MINUTES} minutes:\n\n{token_link}\n\n\
                     If it was not you, ignore this message; your password stays as it is.\n",
                ),
            )
        })
        .await
    }

    /// Welcomes a new store owner (or staff member) whose account has no password
    /// yet, with a link to choose one. Not rate limited: the operator or owner acts.
    pub async fn invite(&self, realm: Realm, email: &str, link_base: &str, store_name: &str) -> Result<()> {
        let email = Email::parse(email)?;
        let ttl = Duration::days(INVITE_TTL_DAYS);
        self.send_password_link(realm, &email, link_base, ttl, None, |_, token_link| {
            (
                format!("Your store {store_name} is ready"),
                format!(
                    "Hello,\n\n{store_name} has been opened for you, with you ({email}) as its owner.\n\
                     Choose your password with this link within {INVITE_TTL_DAYS} days, then sign in to your \
                     merchant panel:\n\n{token_link}\n\nIf the link has expired, ask for a new one with \
                     \"Forgot your password?\" on the sign-in page.\n",
                ),
            )
        })
        .await
    }

    /// Emails an account a one-time link to set its password; nothing happens for an
    /// address without an account. `message(name, link)` gives subject and body;
    /// `template` (its name and how long the link works), when given, writes a
    /// store account's email in the store's branding and wording instead.
    async fn send_password_link(
        &self,
        realm: Realm,
        email: &Email,
        link_base: &str,
        ttl: Duration,
        template: Option<(&'static str, &str)>,
        message: impl FnOnce(&str, &str) -> (String, String),
    ) -> Result<()> {
        let style = match template {
            Some(_) => self.mailer.account_style(&self.db, realm.tenant()).await?,
            None => None,
        };
        let txn = self.txn(realm).await?;
        if let Some(cred) = repo::find_by_email(&txn, realm, email).await? {
            let token = new_token();
            let expires = Utc::now() + ttl;
            tokens::insert(&txn, realm, cred.id, Purpose::Password, &token_hash(&token), expires).await?;
            let name = if cred.name.is_empty() { String::new() } else { format!(" {}", cred.name) };
            let link = format!("{link_base}?token={token}");
            let plain = message(&name, &link);
            match template {
                Some((template, valid_for)) => {
                    let m = AccountMessage { name: &cred.name, email: email.as_str(), link: &link, valid_for };
                    self.mailer.send_account(&txn, style.as_ref(), template, &m, plain).await?;
                }
                None => self.mailer.send(&txn, realm.tenant(), email.as_str(), &plain.0, &plain.1).await?,
            }
        }
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(())
    }

    /// Whether a reset token would still work (to decide between the form and an error).
    pub async fn reset_token_usable(&self, realm: Realm, token: &str) -> Result<bool> {
        let txn = self.txn(realm).await?;
        let ok = tokens::is_usable(&txn, realm, Purpose::Password, &token_hash(token), Utc::now()).await?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(ok)
    }

    /// Sets a new password with a reset token; the token and every other outstanding
    /// token of the account stop working, and so do existing sessions.
    pub async fn reset_password(&self, realm: Realm, token: &str, new: &str) -> Result<SignedIn> {
        let new = NewPassword::parse(new)?;
        let hash = passwords::hash(new.expose().to_owned()).await?;
        let now = Utc::now();
        let txn = self.txn(realm).await?;
        let Some(id) = tokens::consume(&txn, realm, Purpose::Password, &token_hash(token), now).await? else {
            return Err(ServiceError::Unauthorized(BAD_TOKEN));
        };
        let version = repo::set_password(&txn, realm, id, &hash).await?.ok_or(ServiceError::NotFound)?;
        tokens::void_all(&txn, realm, id, now).await?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(SignedIn { realm, id, auth_version: version })
    }
}

impl Accounts {
    /// Emails an account a link that proves the address is theirs.
    pub async fn send_verification(&self, realm: Realm, account: AccountId, link_base: &str, site: &str) -> Result<()> {
        let style = self.mailer.account_style(&self.db, realm.tenant()).await?;
        let txn = self.txn(realm).await?;
        let cred = repo::find_by_id(&txn, realm, account).await?.ok_or(ServiceError::NotFound)?;
        let token = new_token();
        let expires = Utc::now() + Duration::days(VERIFY_TTL_DAYS);
        tokens::insert(&txn, realm, account, Purpose::Verify, &token_hash(&token), expires).await?;
        let subject = format!("Confirm your email for {site}");
        let body = format!(
            "Hello{name},\n\nPlease confirm that {email} is your email address by opening this link within \
             {VERIFY_TTL_DAYS} days:\n\n{link_base}?token={token}\n\nIf you did not sign up for {site}, ignore this message.\n",
            name = if cred.name.is_empty() { String::new() } else { format!(" {}", cred.name) },
            email = cred.email,
        );
        let link = format!("{link_base}?token={token}");
        let valid_for = format!("{VERIFY_TTL_DAYS} days");
        let m = AccountMessage { name: &cred.name, email: &cred.email, link: &link, valid_for: &valid_for };
        self.mailer.send_account(&txn, style.as_ref(), "verify_email", &m, (subject, body)).await?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(())
    }

    /// Uses a verification link; the account's email counts as verified from now on.
    pub async fn verify_email(&self, realm: Realm, token: &str) -> Result<AccountId> {
        let txn = self.txn(realm).await?;
        let id = tokens::consume(&txn, realm, Purpose::Verify, &token_hash(token), Utc::now())
            .await?
            .ok_or(ServiceError::Unauthorized("This confirmation link has expired or was already used."))?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(id)
    }

    /// Whether the signed-in account has confirmed its email address.
    pub async fn email_verified(&self, session: &SignedIn) -> Result<bool> {
        let txn = self.txn(session.realm).await?;
        let verified = tokens::verified(&txn, session.realm, session.id).await?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(verified)
    }

    /// A one-time link token that signs the account in (on another host than the one
    /// the person is on, e.g. from the platform's sign-up to the new store's panel).
    pub async fn sign_in_token(&self, realm: Realm, account: AccountId) -> Result<String> {
        let token = new_token();
        let expires = Utc::now() + Duration::minutes(SIGN_IN_LINK_MINUTES);
        let txn = self.txn(realm).await?;
        tokens::insert(&txn, realm, account, Purpose::SignIn, &token_hash(&token), expires).await?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(token)
    }

    /// Signs in with a one-time link token (once, within its lifetime).
    pub async fn sign_in_with_token(&self, realm: Realm, token: &str) -> Result<SignedIn> {
        let txn = self.txn(realm).await?;
        let id = tokens::consume(&txn, realm, Purpose::SignIn, &token_hash(token), Utc::now()).await?.ok_or(
            ServiceError::Unauthorized(
                "This sign-in link has expired or was already used. Sign in with your password.",
            ),
        )?;
        let cred = repo::find_by_id(&txn, realm, id).await?.ok_or(ServiceError::NotFound)?;
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(SignedIn { realm, id, auth_version: cred.auth_version })
    }
}

fn account_key(realm: Realm, email: &Email) -> String {
    match realm.tenant() {
        Some(t) => format!("{}:{t}:{email}", realm.kind().as_str()),
        None => format!("{}:{email}", realm.kind().as_str()),
    }
}

pub(crate) fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
