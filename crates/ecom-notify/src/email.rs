//! The email channels: SMTP (lettre's client on our own pooled `TCP_NODELAY`
//! connections, [`crate::smtp`]; rustls) and the dev mailbox.

use crate::{Channel, EMAIL, Outgoing, SendError};
use ecom_store::Db;
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use std::time::Duration;

/// A parsed `ECOM_SMTP_URL` plus the sender. `Debug` hides the credentials.
#[derive(Clone)]
pub struct SmtpSettings {
    /// The URL in lettre's form (`tls=starttls` already mapped to `tls=required`).
    url: String,
    /// `host:port`, for logs.
    endpoint: String,
    pub from: Mailbox,
    pub timeout: Duration,
    /// Authorities trusted beside the system's ([`SmtpSettings::trust`]).
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings").field("endpoint", &self.endpoint).field("from", &self.from).finish()
    }
}

const URL_FORMS: &str = "expected smtp://host:port (plain), smtp://host:port?tls=starttls (or tls=required / \
                         tls=opportunistic) or smtps://host:port (TLS), with user:password@ before the host to log in";

impl SmtpSettings {
    /// Checks an SMTP URL and a From address. The error names what is wrong without
    /// repeating the URL, which may hold a password.
    pub fn parse(url: &str, from: &str) -> Result<Self, String> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").ok_or_else(|| URL_FORMS.to_owned())?;
        if scheme != "smtp" && scheme != "smtps" {
            return Err(format!("unknown scheme {scheme:?}: {URL_FORMS}"));
        }
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
        if host.is_empty() {
            return Err(format!("no host: {URL_FORMS}"));
        }
        if let Some((_, port)) = host_port.rsplit_once(':')
            && port.parse::<u16>().is_err()
        {
            return Err(format!("the port is not a number from 1 to 65535: {URL_FORMS}"));
        }
        let query = rest.split_once('?').map(|(_, q)| q).unwrap_or_default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("tls", "starttls" | "required" | "opportunistic")) if scheme == "smtp" => {}
                Some(("tls", v)) => return Err(format!("tls={v} is not understood here: {URL_FORMS}")),
                _ => return Err(format!("unknown parameter {:?}: {URL_FORMS}", pair.split('=').next())),
            }
        }
        let lettre_url = url.replace("tls=starttls", "tls=required");
        // The connection's own parse catches the rest (percent-encoding, TLS
        // parameters); its messages do not include the URL.
        crate::smtp::Target::parse(&lettre_url, &[]).map_err(|e| format!("{e}: {URL_FORMS}"))?;
        let from: Mailbox = from
            .trim()
            .parse()
            .map_err(|e| format!("{e}: expected an address such as ECOM <no-reply@shops.example.com>"))?;
        Ok(Self {
            url: lettre_url,
            endpoint: host_port.to_owned(),
            from,
            timeout: Duration::from_secs(30),
            roots: Vec::new(),
        })
    }

    /// Trusts the certificate authorities in `pem` (one or more PEM certificates, such as
    /// a company relay's private CA) beside the system's roots. Refused when there is
    /// no certificate in it, or when the URL does not ask for TLS (it would do nothing).
    pub fn trust(mut self, pem: &[u8]) -> Result<Self, String> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        if !self.url.starts_with("smtps:") && !self.url.contains("tls=") {
            return Err("the SMTP URL does not ask for TLS (smtps:// or ?tls=starttls), so a CA file would do nothing"
                .to_owned());
        }
        let roots = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("not a PEM certificate file: {e}"))?;
        if roots.is_empty() {
            return Err("no certificate (-----BEGIN CERTIFICATE-----) in it".to_owned());
        }
        crate::smtp::Target::parse(&self.url, &roots)?;
        self.roots = roots;
        Ok(self)
    }
}

/// Email over SMTP. Connections are pooled and reused between messages.
pub struct SmtpChannel {
    pool: crate::smtp::Pool,
    settings: SmtpSettings,
}

impl SmtpChannel {
    pub fn new(settings: SmtpSettings) -> Result<Self, String> {
        let target = crate::smtp::Target::parse(&settings.url, &settings.roots).map_err(|e| format!("SMTP: {e}"))?;
        // As many open connections as the dispatcher sends at once (its default
        // concurrency), each reused for message after message.
        let pool = crate::smtp::Pool::new(target, settings.timeout, 16);
        Ok(Self { pool, settings })
    }

    /// Builds the MIME message: multipart/alternative (text, then HTML) when there is
    /// HTML, else plain text.
    fn message(&self, m: &Outgoing) -> Result<lettre::Message, SendError> {
        let to: Mailbox = m.to.parse().map_err(|e| SendError::Permanent(format!("recipient address: {e}")))?;
        let mut from = self.settings.from.clone();
        if let Some(name) = m.from_name.as_deref().filter(|n| !n.trim().is_empty()) {
            from.name = Some(name.trim().to_owned());
        }
        let domain = self.settings.from.email.domain().to_owned();
        let mut builder = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(format!("<{}@{domain}>", m.id.simple())));
        for (name, value) in &m.headers {
            builder = builder.raw_header(extra_header(name, value)?);
        }
        let built = if m.html.is_empty() {
            builder.singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(m.text.clone()))
        } else {
            builder.multipart(MultiPart::alternative_plain_html(m.text.clone(), m.html.clone()))
        };
        built.map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))
    }
}

/// An extra header from the queue row. Names are ASCII tokens and values one line, so
/// nothing can be smuggled into the header block.
fn extra_header(name: &str, value: &str) -> Result<lettre::message::header::HeaderValue, SendError> {
    use lettre::message::header::{HeaderName, HeaderValue};
    let bad = || SendError::Permanent(format!("the extra header {name:?} is not a valid mail header"));
    if value.contains(['\r', '\n']) {
        return Err(bad());
    }
    let name = HeaderName::new_from_ascii(name.to_owned()).map_err(|_| bad())?;
    Ok(HeaderValue::new(name, value.to_owned()))
}

#[async_trait::async_trait]
impl Channel for SmtpChannel {
    fn kind(&self) -> &'static str {
        EMAIL
    }

    fn describe(&self) -> String {
        format!("SMTP at {}", self.settings.endpoint)
    }

    async fn send(&self, m: &Outgoing) -> Result<String, SendError> {
        let message = self.message(m)?;
        let message_id = format!("<{}@{}>", m.id.simple(), self.settings.from.email.domain());
        let timeout = self.settings.timeout;
        match tokio::time::timeout(timeout, self.pool.send(&message)).await {
            Ok(Ok(reply)) => {
                let text: Vec<&str> = reply.message().collect();
                Ok(format!("{message_id} {} {}", reply.code(), text.join(" ")).trim().chars().take(480).collect())
            }
            // A 5xx reply will not change by trying again; everything else (4xx,
            // refused or dropped connections, timeouts, TLS trouble) may.
            Ok(Err(e)) if e.is_permanent() => Err(SendError::Permanent(format!("SMTP server refused: {e}"))),
            Ok(Err(e)) => Err(SendError::Transient(format!("SMTP: {e}"))),
            Err(_) => Err(SendError::Transient(format!("SMTP: no answer within {timeout:?}"))),
        }
    }
}

/// Email without a transport: filed in the dev mailbox, which the super-admin panel
/// lists at `/admin/mailbox`.
pub struct MailboxChannel {
    db: Db,
}

impl MailboxChannel {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl Channel for MailboxChannel {
    fn kind(&self) -> &'static str {
        EMAIL
    }

    fn describe(&self) -> String {
        "the dev mailbox (/admin/mailbox); set ECOM_SMTP_URL to send email".into()
    }

    async fn send(&self, m: &Outgoing) -> Result<String, SendError> {
        let stored = async {
            let txn = self.db.platform_txn().await?;
            let id = ecom_store::mailbox::insert(&txn, m.tenant, &m.to, &m.subject, &m.text).await?;
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

    const FROM: &str = "ECOM <no-reply@localhost>";

    #[test]
    fn smtp_urls_in_every_documented_form_are_accepted() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://mail.example.com",
            "smtp://user:p%40ss@mail.example.com:587?tls=starttls",
            "smtp://mail.example.com:587?tls=required",
            "smtp://mail.example.com:587?tls=opportunistic",
            "smtps://user:secret@mail.example.com:465",
        ] {
            let s = SmtpSettings::parse(url, FROM).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(!format!("{s:?}").contains("secret"), "credentials hidden from Debug");
        }
    }

    #[test]
    fn bad_smtp_urls_are_refused_without_echoing_the_password() {
        for url in [
            "mail.example.com",
            "http://mail.example.com",
            "smtp://",
            "smtp://user:hunter2@:25",
            "smtp://user:hunter2@host:notaport",
            "smtp://host?tls=maybe",
            "smtps://host?tls=starttls",
            "smtp://host?verbose=1",
        ] {
            let e = SmtpSettings::parse(url, FROM).err().unwrap_or_else(|| panic!("{url} accepted"));
            assert!(!e.contains("hunter2"), "{e}");
        }
        assert!(SmtpSettings::parse("smtp://host", "not an address").is_err());
    }
}
