//! WhatsApp template messages through the WhatsApp Cloud API.
//!
//! `POST {base}/{phone_number_id}/messages` (the base carries the Graph API version,
//! `https://graph.facebook.com/v21.0`), `Authorization: Bearer <token>`, JSON
//! `{messaging_product: "whatsapp", to, type: "template", template: {name, language:
//! {code}, components: [{type: "body", parameters: [{type: "text", text}…]}]}}`. The
//! answer's `messages[0].id` is the provider id; an error answer is Graph's
//! `{error: {code, message, …}}`, mapped by [`is_transient_code`].
//!
//! A WhatsApp row's `body_text` holds the template call as JSON ([`TemplateCall`]):
//! business-initiated WhatsApp messages must be pre-approved templates, so the row
//! carries the template's name, language and body parameters, not free text.

use crate::sms::{Phone, check_api_url, provider_client, transient_status, without_url};
use crate::{Channel, Outgoing, SendError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The channel kind of WhatsApp rows; their recipient is an E.164 number.
pub const WHATSAPP: &str = "whatsapp";

/// What a WhatsApp row's `body_text` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateCall {
    /// The approved template's name in the WhatsApp Business account.
    pub template: String,
    /// Its language code (`en_US`, `de`).
    pub language: String,
    /// The body's `{{1}}`, `{{2}}`… in order.
    #[serde(default)]
    pub parameters: Vec<String>,
}

impl TemplateCall {
    /// The row text for this call.
    pub fn to_row_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct WhatsAppSettings {
    /// The Graph API base with its version, `https://graph.facebook.com/v21.0`.
    pub api_url: String,
    pub token: String,
    pub phone_number_id: String,
}

impl fmt::Debug for WhatsAppSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsAppSettings")
            .field("api_url", &self.api_url)
            .field("phone_number_id", &self.phone_number_id)
            .finish_non_exhaustive()
    }
}

impl WhatsAppSettings {
    /// Checks each value; errors name the setting (`token`, `phone_number_id`,
    /// `api_url`) and never repeat the token.
    pub fn parse(api_url: &str, token: &str, phone_number_id: &str) -> Result<Self, (&'static str, String)> {
        let token = token.trim();
        if token.len() < 20 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(("token", "expected a WhatsApp Cloud API access token".into()));
        }
        let id = phone_number_id.trim();
        if id.is_empty() || id.len() > 30 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(("phone_number_id", "expected the numeric phone number id from the WhatsApp manager".into()));
        }
        let api_url = api_url.trim().trim_end_matches('/');
        check_api_url(api_url).map_err(|e| ("api_url", e))?;
        Ok(Self { api_url: api_url.to_owned(), token: token.to_owned(), phone_number_id: id.to_owned() })
    }
}

/// Graph error codes worth another try: throttling (4, 80007, 130429 throughput,
/// 131056 pair rate limit) and the service's own trouble (1, 2, 131000, 131016).
pub fn is_transient_code(code: i64) -> bool {
    matches!(code, 1 | 2 | 4 | 80007 | 130429 | 131000 | 131016 | 131056)
}

pub struct WhatsAppChannel {
    settings: WhatsAppSettings,
    client: reqwest::Client,
}

impl WhatsAppChannel {
    pub fn new(settings: WhatsAppSettings) -> Result<Self, String> {
        Ok(Self { settings, client: provider_client()? })
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    messages: Vec<MessageId>,
    error: Option<GraphError>,
}

#[derive(Deserialize)]
struct MessageId {
    id: String,
}

#[derive(Deserialize)]
struct GraphError {
    code: Option<i64>,
    message: Option<String>,
}

#[async_trait::async_trait]
impl Channel for WhatsAppChannel {
    fn kind(&self) -> &'static str {
        WHATSAPP
    }

    fn describe(&self) -> String {
        format!("WhatsApp Cloud API at {} (number id {})", self.settings.api_url, self.settings.phone_number_id)
    }

    async fn send(&self, m: &Outgoing) -> Result<String, SendError> {
        let to = Phone::parse(&m.to).map_err(|e| SendError::Permanent(format!("recipient number: {e}")))?;
        let call: TemplateCall = serde_json::from_str(&m.text)
            .map_err(|e| SendError::Permanent(format!("the row does not hold a WhatsApp template call: {e}")))?;
        let parameters: Vec<serde_json::Value> =
            call.parameters.iter().map(|t| serde_json::json!({"type": "text", "text": t})).collect();
        let mut template = serde_json::json!({"name": call.template, "language": {"code": call.language}});
        if !parameters.is_empty() {
            template["components"] = serde_json::json!([{"type": "body", "parameters": parameters}]);
        }
        let body = serde_json::json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            // The Cloud API takes the number without its `+`.
            "to": to.as_str().trim_start_matches('+'),
            "type": "template",
            "template": template,
        });
        let url = format!("{}/{}/messages", self.settings.api_url, self.settings.phone_number_id);
        let response = self
            .client
            .post(url)
            .bearer_auth(&self.settings.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("WhatsApp: {}", without_url(&e))))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let answer: Option<Answer> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return match answer.and_then(|a| a.messages.into_iter().next()) {
                Some(MessageId { id }) if !id.is_empty() => Ok(id),
                _ => Err(SendError::Transient(format!("WhatsApp answered {status} without a message id"))),
            };
        }
        let (code, message) = match answer.and_then(|a| a.error) {
            Some(e) => (e.code, e.message.unwrap_or_default()),
            None => (None, String::new()),
        };
        let detail = format!(
            "WhatsApp error {}: {message} (HTTP {})",
            code.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
            status.as_u16()
        );
        if transient_status(status) || code.is_some_and(is_transient_code) {
            Err(SendError::Transient(detail))
        } else {
            Err(SendError::Permanent(detail))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn settings_are_checked() {
        let token = "EAAG-test-token-0123456789";
        assert!(WhatsAppSettings::parse("https://graph.facebook.com/v21.0", token, "106540352242922").is_ok());
        assert_eq!(WhatsAppSettings::parse("https://graph.facebook.com/v21.0", "short", "1").unwrap_err().0, "token");
        assert_eq!(
            WhatsAppSettings::parse("https://graph.facebook.com/v21.0", token, "+1555").unwrap_err().0,
            "phone_number_id"
        );
        assert_eq!(WhatsAppSettings::parse("ftp://x", token, "1").unwrap_err().0, "api_url");
        assert!(!format!("{:?}", WhatsAppSettings::parse("http://127.0.0.1:1", token, "1").unwrap()).contains(token));
    }

    #[test]
    fn rate_limits_are_transient_and_bad_templates_are_not() {
        assert!(is_transient_code(130429) && is_transient_code(131056));
        assert!(!is_transient_code(132001) && !is_transient_code(100) && !is_transient_code(190));
    }
}
