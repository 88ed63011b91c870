//! SMS through Twilio's Messages API, and the dev mailbox when no provider is set up.
//!
//! Twilio: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded
//! `To`, `From` (or `MessagingServiceSid` when the sender is an `MG…` service id) and
//! `Body`, HTTP Basic with the account SID and auth token. A 201 answer carries the
//! message's `sid`; an error answer carries Twilio's `code` and `message`. 429 and 5xx
//! are worth another try; any other 4xx is not (a bad number, an unverified sender).

use crate::{Channel, Outgoing, SendError};
use ecom_store::Db;
use std::fmt;
use std::time::Duration;

/// The channel kind of SMS rows; their recipient is an E.164 number.
pub const SMS: &str = "sms";

/// A phone number in E.164 form: `+`, a country code and the number, 8 to 15 digits,
/// with no leading zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// Accepts `+44 20 7946 0958`, `+1 (415) 555-0100`, `+14155550100`: spaces, dots,
    /// dashes and brackets are dropped; the `+` and country code are required.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        let Some(rest) = trimmed.strip_prefix('+') else {
            return Err("Start the number with + and the country code, e.g. +44 20 7946 0958.".into());
        };
        let digits: String = rest.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err("A phone number has only digits after the +, e.g. +44 20 7946 0958.".into());
        }
        if digits.starts_with('0') {
            return Err("The country code after the + cannot start with 0.".into());
        }
        if !(8..=15).contains(&digits.len()) {
            return Err("A phone number has 8 to 15 digits after the + (E.164).".into());
        }
        Ok(Self(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Twilio credentials and sender.
#[derive(Clone)]
pub struct TwilioSettings {
    /// `https://api.twilio.com`, or a loopback server in tests.
    pub api_url: String,
    /// `AC` and 32 hex digits.
    pub account_sid: String,
    pub auth_token: String,
    /// An E.164 number, or a Messaging Service SID (`MG…`).
    pub from: String,
}

impl fmt::Debug for TwilioSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSettings")
            .field("api_url", &self.api_url)
            .field("account_sid", &self.account_sid)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl TwilioSettings {
    /// Checks each value; errors name the setting (`account_sid`, `auth_token`,
    /// `from`, `api_url`) and never repeat the token.
    pub fn parse(
        api_url: &str,
        account_sid: &str,
        auth_token: &str,
        from: &str,
    ) -> Result<Self, (&'static str, String)> {
        let account_sid = account_sid.trim();
        if !is_sid(account_sid, "AC") {
            return Err(("account_sid", "expected AC followed by 32 hex digits".into()));
        }
        let auth_token = auth_token.trim();
        if auth_token.len() < 16 || auth_token.chars().any(char::is_whitespace) {
            return Err(("auth_token", "expected the account's auth token (32 characters)".into()));
        }
        let from = from.trim();
        if !is_sid(from, "MG") {
            Phone::parse(from)
                .map_err(|e| ("from", format!("expected an E.164 number or a Messaging Service SID (MG…): {e}")))?;
        }
        let api_url = api_url.trim().trim_end_matches('/');
        check_api_url(api_url).map_err(|e| ("api_url", e))?;
        Ok(Self {
            api_url: api_url.to_owned(),
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            from: from.to_owned(),
        })
    }
}

/// A provider's base address: https, or plain http on loopback (tests).
pub(crate) fn check_api_url(url: &str) -> Result<(), String> {
    let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| url.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/'])));
    let https = url.strip_prefix("https://").is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if https || local {
        Ok(())
    } else {
        Err("expected an https:// address (plain http only on 127.0.0.1 or localhost)".into())
    }
}

/// An HTTP client for providers: no proxy surprises, bounded waits.
pub(crate) fn provider_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("ECOM/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

/// Whether an HTTP status is worth another try: rate limited, or the provider's fault.
pub(crate) fn transient_status(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// SMS through Twilio.
pub struct TwilioChannel {
    settings: TwilioSettings,
    client: reqwest::Client,
}

impl TwilioChannel {
    pub fn new(settings: TwilioSettings) -> Result<Self, String> {
        Ok(Self { settings, client: provider_client()? })
    }
}

#[derive(serde::Deserialize)]
struct TwilioAnswer {
    sid: Option<String>,
    code: Option<i64>,
    message: Option<String>,
}

#[async_trait::async_trait]
impl Channel for TwilioChannel {
    fn kind(&self) -> &'static str {
        SMS
    }

    fn describe(&self) -> String {
        format!("Twilio at {} (account {})", self.settings.api_url, self.settings.account_sid)
    }

    async fn send(&self, m: &Outgoing) -> Result<String, SendError> {
        let to = Phone::parse(&m.to).map_err(|e| SendError::Permanent(format!("recipient number: {e}")))?;
        let s = &self.settings;
        let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", s.api_url, s.account_sid);
        let sender = if is_sid(&s.from, "MG") { "MessagingServiceSid" } else { "From" };
        let form = [("To", to.as_str()), (sender, s.from.as_str()), ("Body", m.text.as_str())];
        let response = self
            .client
            .post(url)
            .basic_auth(&s.account_sid, Some(&s.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("Twilio: {}", without_url(&e))))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let answer: Option<TwilioAnswer> = serde_json::from_str(&body).ok();
        if status.is_success() {
            return match answer.and_then(|a| a.sid) {
                Some(sid) if !sid.is_empty() => Ok(sid),
                _ => Err(SendError::Transient(format!("Twilio answered {status} without a message sid"))),
            };
        }
        let detail = match answer {
            Some(TwilioAnswer { code, message, .. }) => format!(
                "Twilio error {}: {}",
                code.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
                message.unwrap_or_default()
            ),
            None => format!("Twilio answered {status}"),
        };
        let detail = format!("{detail} (HTTP {})", status.as_u16());
        if transient_status(status) { Err(SendError::Transient(detail)) } else { Err(SendError::Permanent(detail)) }
    }
}

/// A reqwest error without its URL (which holds account ids and, for some providers,
/// tokens in query strings).
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    kind.to_owned()
}

/// SMS and WhatsApp without a provider: filed in the dev mailbox (the super-admin
/// panel's `/admin/mailbox`), addressed to the number, so codes can be read there in
/// development. Nothing reaches a phone.
pub struct DevTextChannel {
    db: Db,
    kind: &'static str,
}

impl DevTextChannel {
    pub fn new(db: Db, kind: &'static str) -> Self {
        Self { db, kind }
    }
}

#[async_trait::async_trait]
impl Channel for DevTextChannel {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn describe(&self) -> String {
        format!("the dev mailbox (/admin/mailbox): no {} provider is configured", self.kind)
    }

    async fn send(&self, m: &Outgoing) -> Result<String, SendError> {
        let subject = format!("{} to {}", self.kind.to_uppercase(), m.to);
        let stored = async {
            let txn = self.db.platform_txn().await?;
            let id = ecom_store::mailbox::insert(&txn, m.tenant, &m.to, &subject, &m.text).await?;
            txn.commit().await?;
            Ok::<_, ecom_store::StoreError>(id)
        };
        match stored.await {
            Ok(id) => Ok(format!("mailbox:{id}")),
            Err(e) => Err(SendError::Transient(format!("dev mailbox: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn phone_numbers_are_e164() {
        assert_eq!(Phone::parse(" +44 20 7946 0958 ").unwrap().as_str(), "+442079460958");
        assert_eq!(Phone::parse("+1 (415) 555-0100").unwrap().as_str(), "+14155550100");
        for bad in [
            "",
            "+",
            "0207946 0958",
            "+0 123456789",
            "+1234567",
            "+1234567890123456",
            "+1 415 CALL ME",
            "++14155550100",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn twilio_settings_are_checked_without_echoing_the_token() {
        let sid = "AC0123456789abcdef0123456789abcdef";
        assert!(
            TwilioSettings::parse("https://api.twilio.com", sid, "0123456789abcdef0123456789abcdef", "+14155550100")
                .is_ok()
        );
        assert!(
            TwilioSettings::parse(
                "http://127.0.0.1:9",
                sid,
                "0123456789abcdef0123456789abcdef",
                "MG0123456789abcdef0123456789abcdef"
            )
            .is_ok()
        );
        let (key, e) =
            TwilioSettings::parse("https://api.twilio.com", "AC12", "secret-token-123456", "+14155550100").unwrap_err();
        assert_eq!(key, "account_sid");
        assert!(!e.contains("secret-token"));
        assert_eq!(
            TwilioSettings::parse("https://api.twilio.com", sid, "short", "+14155550100").unwrap_err().0,
            "auth_token"
        );
        assert_eq!(
            TwilioSettings::parse("https://api.twilio.com", sid, "0123456789abcdef0123", "me").unwrap_err().0,
            "from"
        );
        assert_eq!(
            TwilioSettings::parse("http://api.twilio.com", sid, "0123456789abcdef0123", "+14155550100").unwrap_err().0,
            "api_url"
        );
    }
}
