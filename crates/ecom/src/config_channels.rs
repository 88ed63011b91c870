//! The SMS, WhatsApp and Web Push settings: checked at start-up (a bad value names
//! its key, never a secret's value) and turned into the channels' settings.

use crate::config::{Config, ConfigError, env_name, given};

fn problem(key: &str, msg: &str) -> ConfigError {
    ConfigError(format!("{}: {msg}", env_name(key)))
}

impl Config {
    pub(crate) fn validate_channels(&self) -> Result<(), ConfigError> {
        self.twilio().transpose()?;
        self.whatsapp().transpose()?;
        let subject = self.vapid_subject();
        if !((subject.starts_with("mailto:") && subject.len() > 8)
            || (subject.starts_with("https://") && subject.len() > 9))
            || subject.chars().any(char::is_whitespace)
        {
            return Err(problem("vapid_subject", "expected mailto:you@example.com or an https:// address"));
        }
        if let Some(key) = given(self.vapid_private_key.as_ref().map(|s| s.0.as_str())) {
            ecom_notify::webpush::VapidKey::from_private(key, &subject)
                .map_err(|e| problem("vapid_private_key", &e))?;
        }
        Ok(())
    }

    /// Twilio, when any of its settings is given (then all three must be).
    pub fn twilio(&self) -> Option<Result<ecom_notify::TwilioSettings, ConfigError>> {
        let sid = given(self.twilio_account_sid.as_deref());
        let token = given(self.twilio_auth_token.as_ref().map(|s| s.0.as_str()));
        let from = given(self.twilio_from.as_deref());
        if sid.is_none() && token.is_none() && from.is_none() {
            return None;
        }
        let missing = [("twilio_account_sid", sid), ("twilio_auth_token", token), ("twilio_from", from)]
            .into_iter()
            .find(|(_, v)| v.is_none());
        if let Some((key, _)) = missing {
            return Some(Err(problem(key, "required with the other ECOM_TWILIO_* settings")));
        }
        Some(
            ecom_notify::TwilioSettings::parse(
                &self.twilio_api_url,
                sid.unwrap_or_default(),
                token.unwrap_or_default(),
                from.unwrap_or_default(),
            )
            .map_err(|(key, msg)| problem(&format!("twilio_{key}"), &msg)),
        )
    }

    /// The WhatsApp Cloud API, when its token or number id is given (then both).
    pub fn whatsapp(&self) -> Option<Result<ecom_notify::WhatsAppSettings, ConfigError>> {
        let token = given(self.whatsapp_token.as_ref().map(|s| s.0.as_str()));
        let id = given(self.whatsapp_phone_number_id.as_deref());
        match (token, id) {
            (None, None) => None,
            (None, Some(_)) => Some(Err(problem("whatsapp_token", "required with ECOM_WHATSAPP_PHONE_NUMBER_ID"))),
            (Some(_), None) => Some(Err(problem("whatsapp_phone_number_id", "required with ECOM_WHATSAPP_TOKEN"))),
            (Some(token), Some(id)) => Some(
                ecom_notify::WhatsAppSettings::parse(&self.whatsapp_api_url, token, id)
                    .map_err(|(key, msg)| problem(&format!("whatsapp_{key}"), &msg)),
            ),
        }
    }

    /// The VAPID contact.
    pub fn vapid_subject(&self) -> String {
        match given(self.vapid_subject.as_deref()) {
            Some(s) => s.to_owned(),
            None => format!("mailto:no-reply@{}", self.platform_domain),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::config::{Config, Secret};

    fn e(c: Config) -> String {
        c.validate().unwrap_err().to_string()
    }

    #[test]
    fn channel_settings_are_checked_by_key_without_printing_secrets() {
        let twilio = Config {
            twilio_account_sid: Some("AC0123456789abcdef0123456789abcdef".into()),
            twilio_auth_token: Some(Secret("hunter2-hunter2-hunter2".into())),
            twilio_from: Some("+14155550100".into()),
            ..Config::default()
        };
        assert!(twilio.validate().is_ok() && twilio.twilio().unwrap().is_ok());
        let msg = e(Config { twilio_from: None, ..twilio.clone() });
        assert!(msg.contains("ECOM_TWILIO_FROM"), "{msg}");
        let msg = e(Config { twilio_account_sid: Some("nope".into()), ..twilio.clone() });
        assert!(msg.contains("ECOM_TWILIO_ACCOUNT_SID") && !msg.contains("hunter2"), "{msg}");
        let msg = e(Config { twilio_api_url: "http://api.twilio.com".into(), ..twilio });
        assert!(msg.contains("ECOM_TWILIO_API_URL"), "{msg}");
        let msg =
            e(Config { whatsapp_token: Some(Secret("EAAG-secret-token-0123456789".into())), ..Config::default() });
        assert!(msg.contains("ECOM_WHATSAPP_PHONE_NUMBER_ID") && !msg.contains("EAAG"), "{msg}");
        let msg = e(Config { vapid_private_key: Some(Secret("not-a-key".into())), ..Config::default() });
        assert!(msg.contains("ECOM_VAPID_PRIVATE_KEY") && !msg.contains("not-a-key"), "{msg}");
        assert!(
            e(Config { vapid_subject: Some("ops@example.com".into()), ..Config::default() })
                .contains("ECOM_VAPID_SUBJECT")
        );
        assert!(Config::default().twilio().is_none() && Config::default().whatsapp().is_none());
    }
}
