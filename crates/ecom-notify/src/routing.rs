//! Which channels a message to a customer goes out on: the one place that reads the
//! customer's preferences, their verified contacts and their marketing consent.
//!
//! Rules:
//! - Transactional messages (order updates) always go by email when there is an
//!   address; the customer cannot turn that off. The other channels follow the
//!   preferences: in-app and push on unless turned off (push needs a device the
//!   customer allowed it on); SMS and WhatsApp only when the customer turned them on
//!   and has a verified phone number.
//! - Marketing messages (abandoned-cart reminders, back in stock, news) need consent
//!   that stands, and then go on each channel the customer left on (on by default once
//!   consent is given); email only to a verified address, SMS/WhatsApp only to a
//!   verified phone, push only with a subscription, in-app only to an account.
//!
//! [`load`] reads all of it in the caller's transaction; `crate::fanout` queues the
//! message on the channels [`channels`] returns.

use ecom_core::TenantId;
use ecom_store::{DatabaseTransaction, StoreError};
use std::collections::HashMap;
use uuid::Uuid;

pub const EMAIL: &str = crate::EMAIL;
pub const SMS: &str = crate::SMS;
pub const WHATSAPP: &str = crate::WHATSAPP;
pub const PUSH: &str = "push";
pub const INAPP: &str = crate::INAPP;

/// Every channel a customer can choose, in the order pages show them.
pub const CHANNELS: &[&str] = &[EMAIL, SMS, WHATSAPP, PUSH, INAPP];

/// What a message is about, as preferences name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Order placed, paid, shipped, cancelled, refunded: transactional.
    OrderUpdates,
    AbandonedCart,
    BackInStock,
    News,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::OrderUpdates, Kind::AbandonedCart, Kind::BackInStock, Kind::News];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::OrderUpdates => "order_updates",
            Kind::AbandonedCart => "abandoned_cart",
            Kind::BackInStock => "back_in_stock",
            Kind::News => "news",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub const fn is_marketing(self) -> bool {
        !matches!(self, Kind::OrderUpdates)
    }

    /// A name for pages.
    pub const fn label(self) -> &'static str {
        match self {
            Kind::OrderUpdates => "Order updates",
            Kind::AbandonedCart => "Reminders about items left in your cart",
            Kind::BackInStock => "Back-in-stock alerts",
            Kind::News => "News and offers",
        }
    }
}

/// How a customer can be reached, with what is proven about it.
#[derive(Debug, Clone, Default)]
pub struct Contacts {
    /// The address messages go to (the account's, or the one given at checkout).
    pub email: Option<String>,
    /// The customer used a confirmation link for that address.
    pub email_verified: bool,
    /// A store account: in-app messages have an inbox to go to.
    pub account: Option<Uuid>,
    /// A phone number proven by a one-time code: SMS and WhatsApp go only there.
    pub verified_phone: Option<String>,
    /// The devices the customer allowed push messages on (subscription ids).
    pub push_subscriptions: Vec<Uuid>,
}

/// A customer's explicit choices; anything not chosen takes the default.
#[derive(Debug, Clone, Default)]
pub struct Preferences {
    chosen: HashMap<(String, String), bool>,
    /// Marketing consent stands.
    pub marketing_consent: bool,
}

impl Preferences {
    pub fn new(chosen: impl IntoIterator<Item = (String, String, bool)>, marketing_consent: bool) -> Self {
        Self { chosen: chosen.into_iter().map(|(k, c, on)| ((k, c), on)).collect(), marketing_consent }
    }

    /// What the customer wants for this kind and channel, defaults included.
    pub fn wants(&self, kind: Kind, channel: &str) -> bool {
        if kind == Kind::OrderUpdates && channel == EMAIL {
            return true;
        }
        if let Some(on) = self.chosen.get(&(kind.as_str().to_owned(), channel.to_owned())) {
            return *on;
        }
        match channel {
            // Costly or intrusive channels only when asked for.
            SMS | WHATSAPP => false,
            _ => true,
        }
    }
}

/// The channels a message of `kind` goes out on, in [`CHANNELS`] order.
pub fn channels(kind: Kind, prefs: &Preferences, contacts: &Contacts) -> Vec<&'static str> {
    if kind.is_marketing() && !prefs.marketing_consent {
        return Vec::new();
    }
    CHANNELS
        .iter()
        .copied()
        .filter(|&channel| {
            let reachable = match channel {
                EMAIL => {
                    contacts.email.as_deref().is_some_and(|e| !e.trim().is_empty())
                        && (!kind.is_marketing() || contacts.email_verified)
                }
                SMS | WHATSAPP => contacts.verified_phone.is_some(),
                PUSH => !contacts.push_subscriptions.is_empty(),
                INAPP => contacts.account.is_some(),
                _ => false,
            };
            reachable && prefs.wants(kind, channel)
        })
        .collect()
}

/// Reads what routing needs about a store's customer in the caller's tenant
/// transaction: by account, or for a guest (`customer` is `None`) by the address alone.
///
/// A guest is not the account that may own the typed address: anyone can type an
/// address at checkout. So a guest's message goes to that address only. The account's
/// proof of the address (verified) and its opt-outs still count, as they are the
/// address owner's word, but its phone, devices and inbox are never used.
pub async fn load(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: Option<Uuid>,
    email: &str,
) -> Result<(Preferences, Contacts), StoreError> {
    let realm = ecom_core::Realm::Customer(tenant);
    let account = match customer {
        Some(id) => ecom_store::accounts::find_by_id(txn, realm, ecom_core::AccountId(id)).await?,
        None => match ecom_core::Email::parse(email) {
            Ok(e) => ecom_store::accounts::find_by_email(txn, realm, &e).await?,
            Err(_) => None,
        },
    };
    let address = match &account {
        Some(a) if customer.is_some() || email.trim().is_empty() => a.email.clone(),
        _ => email.trim().to_owned(),
    };
    let (chosen, verified) = match &account {
        Some(a) => (
            ecom_store::marketing::preferences(txn, tenant, a.id.0).await?,
            // Verified only when the proven address is the one written to.
            a.email.eq_ignore_ascii_case(&address) && ecom_store::tokens::verified(txn, realm, a.id).await?,
        ),
        None => (Vec::new(), false),
    };
    let consent = if address.is_empty() {
        false
    } else {
        ecom_store::marketing::consent(txn, tenant, &address).await?.is_some_and(|c| c.given())
    };
    // The account's own ways to reach its owner: only for the signed-in customer.
    let account = account.filter(|_| customer.is_some());
    let (verified_phone, push_subscriptions) = match &account {
        Some(a) => (
            ecom_store::channels::verified_phone(txn, tenant, a.id.0).await?,
            ecom_store::channels::push_subscriptions_of(txn, tenant, ecom_store::channels::OWNER_CUSTOMER, &[a.id.0])
                .await?
                .into_iter()
                .map(|s| s.id)
                .collect(),
        ),
        None => (None, Vec::new()),
    };
    let contacts = Contacts {
        email: (!address.is_empty()).then_some(address),
        email_verified: verified,
        account: account.map(|a| a.id.0),
        verified_phone,
        push_subscriptions,
    };
    Ok((Preferences::new(chosen, consent), contacts))
}

/// Whether the customer can change this choice (transactional email always goes).
pub fn is_locked(kind: Kind, channel: &str) -> bool {
    kind == Kind::OrderUpdates && channel == EMAIL
}

/// A customer's preferences page: each kind with each channel's state, and consent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PreferencesView {
    pub kinds: Vec<KindView>,
    pub consent: Option<ecom_store::marketing::Consent>,
    pub consent_given: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KindView {
    pub kind: &'static str,
    pub label: &'static str,
    pub marketing: bool,
    pub channels: Vec<ChannelView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ChannelView {
    pub channel: &'static str,
    pub on: bool,
    pub locked: bool,
}

pub async fn view(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: Uuid,
    email: &str,
) -> Result<PreferencesView, StoreError> {
    let chosen = ecom_store::marketing::preferences(txn, tenant, customer).await?;
    let consent = ecom_store::marketing::consent(txn, tenant, email).await?;
    let consent_given = consent.as_ref().is_some_and(|c| c.given());
    let prefs = Preferences::new(chosen, consent_given);
    let kinds = Kind::ALL
        .into_iter()
        .map(|kind| KindView {
            kind: kind.as_str(),
            label: kind.label(),
            marketing: kind.is_marketing(),
            channels: CHANNELS
                .iter()
                .map(|&channel| ChannelView {
                    channel,
                    on: prefs.wants(kind, channel),
                    locked: is_locked(kind, channel),
                })
                .collect(),
        })
        .collect();
    Ok(PreferencesView { kinds, consent, consent_given })
}

/// Saves the preferences form: `checked` holds `kind:channel` for every box ticked;
/// every other changeable box is off. `consent` is the marketing checkbox, recorded
/// with `via` when it changes. Returns whether consent was given just now. An unknown
/// `kind:channel` is refused (naming the field) and nothing changes.
pub async fn save(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: Uuid,
    email: &str,
    checked: &[String],
    consent: bool,
    via: &str,
) -> Result<bool, SaveError> {
    let mut on = std::collections::HashSet::new();
    for c in checked {
        let (kind, channel) = c.split_once(':').unwrap_or((c.as_str(), ""));
        let kind =
            Kind::parse(kind).ok_or_else(|| SaveError::Invalid(format!("pref: unknown message kind in {c:?}")))?;
        let channel = CHANNELS
            .iter()
            .copied()
            .find(|ch| *ch == channel)
            .ok_or_else(|| SaveError::Invalid(format!("pref: unknown channel in {c:?}")))?;
        on.insert((kind, channel));
    }
    let choices: Vec<(&str, &str, bool)> = Kind::ALL
        .into_iter()
        .flat_map(|k| CHANNELS.iter().map(move |&c| (k, c)))
        .filter(|(k, c)| !is_locked(*k, c))
        .map(|(k, c)| (k.as_str(), c, on.contains(&(k, c))))
        .collect();
    ecom_store::marketing::set_preferences(txn, tenant, customer, &choices).await?;
    let before = ecom_store::marketing::consent(txn, tenant, email).await?.is_some_and(|c| c.given());
    ecom_store::marketing::record_consent(txn, tenant, email, consent, via, chrono::Utc::now()).await?;
    Ok(consent && !before)
}

/// Why preferences were not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shopper() -> Contacts {
        Contacts {
            email: Some("pat@example.com".into()),
            email_verified: true,
            account: Some(Uuid::nil()),
            ..Default::default()
        }
    }

    #[test]
    fn order_updates_always_go_by_email_and_to_the_inbox_unless_turned_off() {
        let prefs = Preferences::new([("order_updates".into(), "email".into(), false)], false);
        assert_eq!(channels(Kind::OrderUpdates, &prefs, &shopper()), vec![EMAIL, INAPP], "email cannot be turned off");
        let off = Preferences::new([("order_updates".into(), "inapp".into(), false)], false);
        assert_eq!(channels(Kind::OrderUpdates, &off, &shopper()), vec![EMAIL]);
        let guest = Contacts { email: Some("g@example.com".into()), ..Default::default() };
        assert_eq!(channels(Kind::OrderUpdates, &Preferences::default(), &guest), vec![EMAIL]);
    }

    #[test]
    fn marketing_needs_consent_and_a_verified_address() {
        assert!(channels(Kind::AbandonedCart, &Preferences::default(), &shopper()).is_empty());
        let consented = Preferences::new([], true);
        assert_eq!(channels(Kind::AbandonedCart, &consented, &shopper()), vec![EMAIL, INAPP]);
        let unverified = Contacts { email_verified: false, ..shopper() };
        assert_eq!(channels(Kind::BackInStock, &consented, &unverified), vec![INAPP]);
        let no_news = Preferences::new([("news".into(), "email".into(), false)], true);
        assert_eq!(channels(Kind::News, &no_news, &shopper()), vec![INAPP]);
    }

    #[test]
    fn phone_channels_need_a_verified_phone_and_a_yes() {
        let phone = Contacts { verified_phone: Some("+15555550100".into()), ..shopper() };
        assert!(!channels(Kind::OrderUpdates, &Preferences::default(), &phone).contains(&SMS));
        let yes = Preferences::new([("order_updates".into(), "sms".into(), true)], false);
        assert!(channels(Kind::OrderUpdates, &yes, &phone).contains(&SMS));
        assert!(!channels(Kind::OrderUpdates, &yes, &shopper()).contains(&SMS));
    }
}
