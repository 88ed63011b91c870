//! Configuration: defaults, then an optional `ecom.toml`, then `ECOM_*` environment
//! variables. Keys are flat, and a file key is its environment variable without the
//! `ECOM_` prefix, in lower case: `ECOM_DATABASE_URL` ⇔ `database_url`.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A secret that never prints.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "(unset)" } else { "(redacted)" })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

/// Every setting, with its default. Documented here; `ecom config` prints the
/// effective values with secrets hidden.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port to serve HTTP on.
    pub listen: SocketAddr,
    /// Where the SQLite database, the generated secret key and local files live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default `<data_dir>/ecom.db`.
    pub database_url: Option<Secret>,
    /// Pool size; default 1 on SQLite (one writer at a time anyway), 10 on PostgreSQL.
    pub database_max_connections: Option<u32>,
    /// Seconds to wait for a database connection.
    pub database_timeout_secs: u64,
    /// Stores live at `<slug>.<platform_domain>`; the super-admin panel at the domain itself.
    pub platform_domain: String,
    /// The scheme shoppers reach the platform with (behind a TLS-terminating proxy:
    /// `https`). With `https`, cookies are `Secure` and HSTS is sent.
    pub public_scheme: Scheme,
    /// Signs and encrypts cookies and tokens; at least 32 characters and the same on
    /// every node. Generated into `<data_dir>/secret.key` when unset.
    pub secret_key: Option<Secret>,
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `ecom=debug,info`.
    pub log_level: String,
    /// Rate limits on sign-in, sign-up and password reset. Turn off only for load tests.
    pub rate_limits: bool,
    /// Seconds a host-to-store answer is cached on a node.
    pub tenant_cache_ttl_secs: u64,
    /// Let requests to merchant-given addresses (image URLs in product imports,
    /// webhooks) reach loopback, private and link-local addresses. For development and
    /// tests only: in production it would open the platform's own network to merchants.
    pub allow_private_network: bool,
    /// Product images go to this S3 bucket when set (else `<data_dir>/media`). The
    /// bucket must exist; every node must use the same one.
    pub s3_bucket: Option<String>,
    /// An S3-compatible store's URL, e.g. `http://127.0.0.1:9000` (MinIO, Ceph, Garage,
    /// R2…), addressed path-style; unset or empty for AWS S3 itself.
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<Secret>,
    /// Allow a plain `http://` endpoint; required for one, refused otherwise.
    pub s3_allow_http: bool,
    /// Keys are stored under this prefix (`<prefix>/<store id>/…`), to share a bucket.
    pub s3_prefix: Option<String>,
    /// Stripe's secret API key (`sk_test_…`, `sk_live_…`, or a restricted `rk_…` key).
    /// When set, shoppers can pay by card through Stripe.
    pub stripe_secret_key: Option<Secret>,
    /// The signing secret (`whsec_…`) of the webhook endpoint created in Stripe for
    /// `https://<platform domain or store domain>/webhooks/stripe`; required with the key.
    pub stripe_webhook_secret: Option<Secret>,
    /// Stripe's API address. Only tests change it (plain `http://` is allowed for
    /// 127.0.0.1 and localhost only).
    pub stripe_api_base: String,
    /// GraphQL query cost points (a field costs 1, a page of N items N times its
    /// item) one client may spend per second on a store's Storefront API; bursts of
    /// ten seconds' worth are allowed. Clients are told their budget in
    /// `extensions.cost`. Each merchant API token or staff member: 500 per second.
    pub api_client_points_per_sec: u32,
    /// Cost points all clients of one store together may spend per second on its
    /// APIs, so one busy store cannot starve the others; bursts of ten seconds' worth.
    pub api_store_points_per_sec: u32,
    /// Serve GraphiQL on `GET` of the API endpoints; default on with `--demo` only.
    pub graphiql: Option<bool>,
    /// Attempts the bus makes to deliver an event to a consumer before the delivery
    /// goes to the dead letters (shown in the panels, retried from there).
    pub bus_max_attempts: u32,
    /// Milliseconds before the first retry of a failed delivery; each next retry waits
    /// twice as long (minus up to half, at random), up to `bus_backoff_max_ms`.
    pub bus_backoff_base_ms: u64,
    /// The longest wait between two attempts, in milliseconds.
    pub bus_backoff_max_ms: u64,
    /// How often an idle relay looks for new events, in milliseconds.
    pub bus_poll_ms: u64,
    /// Seconds a relay holds the deliveries it claimed; a node that dies mid-round
    /// leaves them to the others after this long.
    pub bus_lease_secs: u64,
    /// Run the bus relay in this process. Any number of nodes may run it (they share
    /// the work); turn it off on nodes that should only serve requests.
    pub bus_relay: bool,
    /// Where email goes: `smtp://host:port` (plain), `smtp://host:port?tls=starttls`,
    /// `smtps://host:port` (TLS), with `user:password@` to log in. Unset: the dev
    /// mailbox in `/admin/mailbox`.
    pub smtp_url: Option<Secret>,
    /// A PEM file of certificate authorities to trust for the SMTP server's TLS
    /// certificate beside the system's roots (a relay with a private CA).
    pub smtp_ca_file: Option<String>,
    /// The sender of every email; store mail shows the store's name with this address.
    /// Default `ECOM <no-reply@<platform_domain>>`.
    pub mail_from: Option<String>,
    /// Attempts to send a notification before it is marked failed (shown in the
    /// panels' notification logs, retried from there). Retries wait like the bus's
    /// (`bus_backoff_base_ms`, `bus_backoff_max_ms`).
    pub notify_max_attempts: u32,
    /// Emails per second one node may send (a provider's sending limit).
    pub notify_email_per_sec: u32,
    /// Text messages per second one node may send through Twilio (a long-code number
    /// takes about 1 a second, a Messaging Service or short code more).
    pub notify_sms_per_sec: u32,
    /// WhatsApp messages per second one node may send (the Cloud API's default
    /// throughput is 80 a second per business number).
    pub notify_whatsapp_per_sec: u32,
    /// Web Push messages per second one node may send (push services throttle abuse,
    /// not volume).
    pub notify_push_per_sec: u32,
    /// In-app items per second one node may file in the inboxes (a database write,
    /// a few hundred to a transaction; the cap keeps a flood from crowding out
    /// checkouts on a small database).
    pub notify_inapp_per_sec: u32,
    /// Days to keep what is done with (delivered bus and webhook deliveries, consumer
    /// receipts, sent notifications, the dev mailbox); 0 keeps them forever. Nothing
    /// waiting, failed or dead-lettered is pruned; idempotency keys go after 24 h.
    pub retention_days: u32,
    /// Run the webhook sender (POSTs merchants' webhook deliveries) in this process.
    /// Any number of nodes may run it; they share the work through leases.
    pub webhook_sender: bool,
    /// A webhook subscription whose attempts all failed for this many seconds (no
    /// success in between) is turned off and the store owner emailed.
    pub webhook_disable_after_secs: u64,
    /// Attempts per webhook delivery before it is given up (redeliverable by hand).
    pub webhook_max_attempts: u32,
    /// Milliseconds before the first retry of a failed webhook delivery; doubling,
    /// jittered, up to `webhook_backoff_max_ms`.
    pub webhook_backoff_base_ms: u64,
    /// The longest wait between two attempts of a webhook delivery, in milliseconds.
    pub webhook_backoff_max_ms: u64,
    /// Seconds a webhook receiver has to answer.
    pub webhook_timeout_secs: u64,
    /// RabbitMQ mode of the bus: `amqp://user:password@host:5672/%2f` (or `amqps://`).
    /// Unset: embedded mode (the relay delivers to the consumers in process). Every
    /// node must use the same broker and prefix.
    pub amqp_url: Option<Secret>,
    /// Prefix of the bus's exchanges and queues on the broker (`<prefix>.events`, …),
    /// so that several installations can share one broker; letters, digits, `.`, `-`
    /// and `_`, at most 50.
    pub amqp_prefix: String,
    /// Messages a consumer may hold unacknowledged (and handles at once), per node.
    pub amqp_prefetch: u16,
    /// SMS through Twilio: the account SID (`AC…`); with the auth token and sender.
    /// Unset: SMS (phone codes) go to the dev mailbox. See `config_channels.rs`.
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<Secret>,
    /// The sender: an E.164 number, or a Messaging Service SID (`MG…`).
    pub twilio_from: Option<String>,
    /// Twilio's API address; only tests change it (plain http on loopback only).
    pub twilio_api_url: String,
    /// WhatsApp Cloud API access token; with the phone number id. Unset: WhatsApp
    /// messages go to the dev mailbox.
    pub whatsapp_token: Option<Secret>,
    pub whatsapp_phone_number_id: Option<String>,
    /// The Graph API base with its version.
    pub whatsapp_api_url: String,
    /// Web Push: the VAPID private key (raw P-256, base64url). Unset: a key pair is
    /// generated once and kept in the database.
    pub vapid_private_key: Option<Secret>,
    /// The contact push services may use (`mailto:…` or `https://…`); default
    /// `mailto:no-reply@<platform_domain>`.
    pub vapid_subject: Option<String>,
    /// The DNS server custom-domain verification asks (`IP:port`, UDP then TCP);
    /// unset: the system's resolvers.
    pub dns_resolver: Option<String>,
    /// Seconds between two passes of the background re-check of pending custom
    /// domains (each domain waits longer between its own checks, for 72 hours).
    pub domain_check_secs: u64,
    /// A cart idle this long (with an email and lines, no order) gets one reminder, if
    /// the shopper agreed to marketing: `90m`, `4h`, `2d` or seconds.
    pub abandoned_cart_after: String,
    /// How often the marketing job (abandoned carts, back in stock) looks, in seconds;
    /// one node at a time runs it (a lease).
    pub marketing_poll_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./ecom-data"),
            database_url: None,
            database_max_connections: None,
            database_timeout_secs: 5,
            platform_domain: "localhost".into(),
            public_scheme: Scheme::Http,
            secret_key: None,
            log_format: LogFormat::Pretty,
            log_level: "info".into(),
            rate_limits: true,
            tenant_cache_ttl_secs: 30,
            allow_private_network: false,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_allow_http: false,
            s3_prefix: None,
            stripe_secret_key: None,
            stripe_webhook_secret: None,
            stripe_api_base: ecom_services::stripe::DEFAULT_API_BASE.into(),
            api_client_points_per_sec: 1_000,
            api_store_points_per_sec: 10_000,
            graphiql: None,
            bus_max_attempts: 8,
            bus_backoff_base_ms: 1_000,
            bus_backoff_max_ms: 600_000,
            bus_poll_ms: 500,
            bus_lease_secs: 60,
            bus_relay: true,
            smtp_url: None,
            smtp_ca_file: None,
            mail_from: None,
            notify_max_attempts: 8,
            notify_email_per_sec: 50,
            notify_sms_per_sec: 10,
            notify_whatsapp_per_sec: 80,
            notify_push_per_sec: 500,
            notify_inapp_per_sec: 5000,
            retention_days: 30,
            webhook_sender: true,
            webhook_disable_after_secs: 86_400,
            webhook_max_attempts: 48,
            webhook_backoff_base_ms: 10_000,
            webhook_backoff_max_ms: 3_600_000,
            webhook_timeout_secs: 10,
            amqp_url: None,
            amqp_prefix: "ecom".into(),
            amqp_prefetch: 128,
            twilio_account_sid: None,
            twilio_auth_token: None,
            twilio_from: None,
            twilio_api_url: "https://api.twilio.com".into(),
            whatsapp_token: None,
            whatsapp_phone_number_id: None,
            whatsapp_api_url: "https://graph.facebook.com/v21.0".into(),
            vapid_private_key: None,
            vapid_subject: None,
            dns_resolver: None,
            domain_check_secs: 30,
            abandoned_cart_after: "4h".into(),
            marketing_poll_secs: 60,
        }
    }
}

/// `90s`, `30m`, `4h`, `2d`, or a number of seconds.
fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let n: u64 = number.trim().parse().ok()?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(3600)?,
        'd' => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}

/// An optional string setting that is set to something (an empty value counts as unset).
pub(crate) fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// S3's bucket naming rules, in short: 3–63 lower-case letters, digits, dots and
/// hyphens, beginning and ending with a letter or digit.
fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        && !name.contains("..")
}

/// A configuration problem, naming the key and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

pub(crate) fn env_name(key: &str) -> String {
    format!("ECOM_{}", key.to_ascii_uppercase())
}

/// The settings that are text whatever they look like. Figment reads `ECOM_*` values
/// as TOML-like literals, so `ECOM_TWILIO_FROM=+15005550006` would become the number
/// 15005550006 (the `+` lost, then refused as "not a string") and a numeric WhatsApp
/// phone number id or password the same: these are taken from the environment as
/// written instead.
const TEXT_KEYS: &[&str] = &[
    "database_url",
    "platform_domain",
    "secret_key",
    "log_level",
    "stripe_secret_key",
    "stripe_webhook_secret",
    "stripe_api_base",
    "smtp_url",
    "smtp_ca_file",
    "mail_from",
    "amqp_url",
    "amqp_prefix",
    "twilio_account_sid",
    "twilio_auth_token",
    "twilio_from",
    "twilio_api_url",
    "whatsapp_token",
    "whatsapp_phone_number_id",
    "whatsapp_api_url",
    "vapid_private_key",
    "vapid_subject",
    "dns_resolver",
    "abandoned_cart_after",
];

/// [`TEXT_KEYS`] set in the environment, as written (`ECOM_` names, case as figment
/// takes them: any).
fn raw_text_env() -> std::collections::BTreeMap<String, String> {
    std::env::vars()
        .filter_map(|(name, value)| {
            let key = name.strip_prefix("ECOM_")?.to_ascii_lowercase();
            TEXT_KEYS.contains(&key.as_str()).then_some((key, value))
        })
        .collect()
}

impl Config {
    /// The DNS server for domain verification, when one is set (checked by `validate`).
    pub fn dns_resolver_addr(&self) -> Option<SocketAddr> {
        given(self.dns_resolver.as_deref()).and_then(|v| v.parse().ok())
    }

    /// Loads defaults ← `config_file` (if it exists, or must exist when `required`)
    /// ← `ECOM_*` variables, then checks the values.
    pub fn load(config_file: &Path, required: bool) -> Result<Self, ConfigError> {
        if required && !config_file.exists() {
            return Err(ConfigError(format!("the configuration file {} does not exist", config_file.display())));
        }
        let figment = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(config_file))
            .merge(Env::prefixed("ECOM_").ignore(&["config"]))
            .merge(Serialized::defaults(raw_text_env()));
        let config: Config = figment.extract().map_err(|errors| {
            let lines: Vec<String> = errors
                .into_iter()
                .map(|e| {
                    let key = e.path.join(".");
                    let from = match e.metadata.as_ref() {
                        Some(m) if m.name.contains("environment") => env_name(&key),
                        Some(m) => match &m.source {
                            Some(figment::Source::File(path)) => format!("`{key}` in {}", path.display()),
                            _ => format!("`{key}` in {}", m.name),
                        },
                        None => format!("`{key}`"),
                    };
                    let what = match &e.kind {
                        figment::error::Kind::UnknownField(field, _) => format!(
                            "unknown setting `{field}` ({}); see the configuration reference in the README",
                            env_name(field)
                        ),
                        kind => kind.to_string(),
                    };
                    if key.is_empty() { what } else { format!("{from}: {what}") }
                })
                .collect();
            ConfigError(lines.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, msg: &str| Err(ConfigError(format!("{}: {msg}", env_name(key))));
        if ecom_core::host::normalise_host(&self.platform_domain)
            .is_none_or(|h| h != self.platform_domain.to_ascii_lowercase())
        {
            return err(
                "platform_domain",
                "expected a host name such as localhost or shops.example.com, without scheme or port",
            );
        }
        if let Some(url) = &self.database_url
            && !(url.0.starts_with("sqlite:") || url.0.starts_with("postgres://") || url.0.starts_with("postgresql://"))
        {
            return err("database_url", "expected a URL starting with sqlite: or postgres://");
        }
        if self.database_max_connections == Some(0) {
            return err("database_max_connections", "expected at least 1");
        }
        if given(self.dns_resolver.as_deref()).is_some_and(|v| v.parse::<SocketAddr>().is_err()) {
            return err("dns_resolver", "expected a DNS server as IP:port, e.g. 127.0.0.1:53 or [::1]:53");
        }
        if !(1..=3600).contains(&self.domain_check_secs) {
            return err("domain_check_secs", "expected 1 to 3600 seconds");
        }
        if let Some(secret) = &self.secret_key
            && secret.0.len() < 32
        {
            return err("secret_key", "expected at least 32 characters (e.g. `openssl rand -hex 32`)");
        }
        if self.database_timeout_secs == 0 {
            return err("database_timeout_secs", "expected at least 1 second");
        }
        if self.log_level.parse::<tracing_subscriber::EnvFilter>().is_err() {
            return err("log_level", "expected a log filter such as info, debug or ecom=debug,warn");
        }
        if self.api_client_points_per_sec == 0 {
            return err("api_client_points_per_sec", "expected at least 1");
        }
        if self.api_store_points_per_sec < self.api_client_points_per_sec {
            return err("api_store_points_per_sec", "expected at least ECOM_API_CLIENT_POINTS_PER_SEC");
        }
        if !(1..=100).contains(&self.bus_max_attempts) {
            return err("bus_max_attempts", "expected 1 to 100");
        }
        if self.bus_backoff_base_ms == 0 {
            return err("bus_backoff_base_ms", "expected at least 1 millisecond");
        }
        if self.bus_backoff_max_ms < self.bus_backoff_base_ms {
            return err("bus_backoff_max_ms", "expected at least ECOM_BUS_BACKOFF_BASE_MS");
        }
        if !(1..=60_000).contains(&self.bus_poll_ms) {
            return err("bus_poll_ms", "expected 1 to 60000 milliseconds");
        }
        if !(4..=3600).contains(&self.bus_lease_secs) {
            return err("bus_lease_secs", "expected 4 to 3600 seconds");
        }
        if !(1..=100).contains(&self.notify_max_attempts) {
            return err("notify_max_attempts", "expected 1 to 100");
        }
        for (key, rate) in [
            ("notify_email_per_sec", self.notify_email_per_sec),
            ("notify_sms_per_sec", self.notify_sms_per_sec),
            ("notify_whatsapp_per_sec", self.notify_whatsapp_per_sec),
            ("notify_push_per_sec", self.notify_push_per_sec),
            ("notify_inapp_per_sec", self.notify_inapp_per_sec),
        ] {
            if !(1..=100_000).contains(&rate) {
                return err(key, "expected 1 to 100000");
            }
        }
        if parse_duration(&self.abandoned_cart_after).is_none_or(|d| d.as_secs() < 60 || d.as_secs() > 90 * 86_400) {
            return err("abandoned_cart_after", "expected a time from 1m to 90d, such as 90m, 4h or 2d");
        }
        if !(1..=86_400).contains(&self.marketing_poll_secs) {
            return err("marketing_poll_secs", "expected 1 to 86400 seconds");
        }
        if self.retention_days > 36_500 {
            return err("retention_days", "expected 0 (keep forever) to 36500 days");
        }
        if let Some(from) = &self.mail_from
            && ecom_notify::SmtpSettings::parse("smtp://localhost", from).is_err()
        {
            return err("mail_from", "expected an address such as ECOM <no-reply@shops.example.com>");
        }
        match self.smtp() {
            Some(Err(e)) => return Err(e),
            None if given(self.smtp_ca_file.as_deref()).is_some() => {
                return err("smtp_ca_file", "is set but ECOM_SMTP_URL is not: there is no SMTP server to trust it for");
            }
            _ => {}
        }
        if !(1..=30 * 86_400).contains(&self.webhook_disable_after_secs) {
            return err("webhook_disable_after_secs", "expected 1 to 2592000 seconds (30 days)");
        }
        if !(1..=200).contains(&self.webhook_max_attempts) {
            return err("webhook_max_attempts", "expected 1 to 200");
        }
        if self.webhook_backoff_base_ms == 0 {
            return err("webhook_backoff_base_ms", "expected at least 1 millisecond");
        }
        if self.webhook_backoff_max_ms < self.webhook_backoff_base_ms {
            return err("webhook_backoff_max_ms", "expected at least ECOM_WEBHOOK_BACKOFF_BASE_MS");
        }
        if !(1..=60).contains(&self.webhook_timeout_secs) {
            return err("webhook_timeout_secs", "expected 1 to 60 seconds");
        }
        self.validate_amqp()?;
        self.validate_channels()?;
        self.validate_s3()?;
        self.validate_stripe()
    }

    /// The sender of every email.
    pub fn mail_from(&self) -> String {
        match given(self.mail_from.as_deref()) {
            Some(from) => from.to_owned(),
            None => format!("ECOM <no-reply@{}>", self.platform_domain),
        }
    }

    /// SMTP, when `smtp_url` is set (checked by [`Config::validate`]).
    pub fn smtp(&self) -> Option<Result<ecom_notify::SmtpSettings, ConfigError>> {
        let url = given(self.smtp_url.as_ref().map(|s| s.0.as_str()))?;
        // The message describes the problem without repeating the URL (it may hold a
        // password).
        let settings = ecom_notify::SmtpSettings::parse(url, &self.mail_from())
            .map_err(|e| ConfigError(format!("{}: {e}", env_name("smtp_url"))));
        let Some(path) = given(self.smtp_ca_file.as_deref()) else { return Some(settings) };
        let in_file = |e: String| ConfigError(format!("{} ({path}): {e}", env_name("smtp_ca_file")));
        Some(settings.and_then(|s| {
            let pem = std::fs::read(path).map_err(|e| in_file(e.to_string()))?;
            s.trust(&pem).map_err(in_file)
        }))
    }

    /// The marketing job's settings (after [`Config::validate`] accepted them).
    pub fn marketing_settings(&self) -> ecom_notify::MarketingSettings {
        let mailto = self.mail_from();
        let mailto =
            mailto.rsplit_once('<').map_or(mailto.as_str(), |(_, addr)| addr.trim_end_matches('>')).trim().to_owned();
        ecom_notify::MarketingSettings {
            abandoned_after: parse_duration(&self.abandoned_cart_after)
                .unwrap_or(std::time::Duration::from_secs(4 * 3600)),
            poll: std::time::Duration::from_secs(self.marketing_poll_secs.max(1)),
            mailto,
        }
    }

    /// The notification dispatcher's pacing.
    pub fn dispatch_settings(&self) -> ecom_notify::DispatchSettings {
        ecom_notify::DispatchSettings {
            max_attempts: self.notify_max_attempts,
            backoff: self.relay_settings(),
            poll: std::time::Duration::from_millis(self.bus_poll_ms),
            ..ecom_notify::DispatchSettings::default()
        }
    }

    /// What the retention pruner keeps.
    pub fn retention_settings(&self) -> ecom_services::retention::RetentionSettings {
        ecom_services::retention::RetentionSettings {
            days: self.retention_days,
            ..ecom_services::retention::RetentionSettings::default()
        }
    }

    /// The webhook sender's pacing (it polls as often as the bus relay).
    pub fn webhook_settings(&self) -> ecom_services::webhooks::WebhookSettings {
        use std::time::Duration;
        ecom_services::webhooks::WebhookSettings {
            disable_after: Duration::from_secs(self.webhook_disable_after_secs),
            max_attempts: self.webhook_max_attempts,
            backoff_base: Duration::from_millis(self.webhook_backoff_base_ms),
            backoff_max: Duration::from_millis(self.webhook_backoff_max_ms),
            timeout: Duration::from_secs(self.webhook_timeout_secs),
            poll: Duration::from_millis(self.bus_poll_ms),
            ..ecom_services::webhooks::WebhookSettings::default()
        }
    }

    fn validate_amqp(&self) -> Result<(), ConfigError> {
        let err = |key: &str, msg: &str| Err(ConfigError(format!("{}: {msg}", env_name(key))));
        if let Some(url) = given(self.amqp_url.as_ref().map(|s| s.0.as_str()))
            && !ecom_bus::amqp::valid_url(url)
        {
            // The URL holds a password: name the key, never the value.
            return err("amqp_url", "expected a URL such as amqp://user:password@127.0.0.1:5672/%2f (or amqps://)");
        }
        let p = &self.amqp_prefix;
        if p.is_empty()
            || p.len() > 50
            || !p.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return err("amqp_prefix", "expected 1 to 50 letters, digits, `.`, `-` or `_`");
        }
        if self.amqp_prefetch == 0 {
            return err("amqp_prefetch", "expected 1 to 65535");
        }
        Ok(())
    }

    /// The RabbitMQ mode's settings when `ECOM_AMQP_URL` is set.
    pub fn amqp_settings(&self) -> Option<ecom_bus::AmqpSettings> {
        let url = given(self.amqp_url.as_ref().map(|s| s.0.as_str()))?;
        Some(ecom_bus::AmqpSettings {
            url: url.to_owned(),
            prefix: self.amqp_prefix.clone(),
            prefetch: self.amqp_prefetch,
            relay: self.relay_settings(),
        })
    }

    /// The bus relay's pacing.
    pub fn relay_settings(&self) -> ecom_bus::RelaySettings {
        ecom_bus::RelaySettings {
            max_attempts: self.bus_max_attempts,
            backoff_base: std::time::Duration::from_millis(self.bus_backoff_base_ms),
            backoff_max: std::time::Duration::from_millis(self.bus_backoff_max_ms),
            poll: std::time::Duration::from_millis(self.bus_poll_ms),
            lease: std::time::Duration::from_secs(self.bus_lease_secs),
            ..ecom_bus::RelaySettings::default()
        }
    }

    fn validate_stripe(&self) -> Result<(), ConfigError> {
        let err = |key: &str, msg: &str| Err(ConfigError(format!("{}: {msg}", env_name(key))));
        let key = given(self.stripe_secret_key.as_ref().map(|s| s.0.as_str()));
        let webhook = given(self.stripe_webhook_secret.as_ref().map(|s| s.0.as_str()));
        let base = self.stripe_api_base.trim().trim_end_matches('/');
        let rest = base.strip_prefix("https://").or_else(|| base.strip_prefix("http://"));
        let host = rest.unwrap_or_default();
        if rest.is_none()
            || host.is_empty()
            || host.contains(['/', '?', '#', '@'])
            || host.contains(char::is_whitespace)
            || host.starts_with(':')
        {
            return err("stripe_api_base", "expected a URL such as https://api.stripe.com, without a path");
        }
        if base.starts_with("http://") {
            let name = host
                .rsplit_once(':')
                .map_or(host, |(name, port)| if port.chars().all(|c| c.is_ascii_digit()) { name } else { host });
            if name != "127.0.0.1" && name != "localhost" {
                return err(
                    "stripe_api_base",
                    "plain http:// is allowed only for 127.0.0.1 or localhost (a test server); use https://",
                );
            }
        }
        let Some(key) = key else {
            if webhook.is_some() {
                return err(
                    "stripe_secret_key",
                    "expected the Stripe secret key: ECOM_STRIPE_WEBHOOK_SECRET is set, but Stripe stays off without a key",
                );
            }
            return Ok(());
        };
        let well_formed = |prefixes: &[&str], value: &str| {
            prefixes.iter().any(|p| value.strip_prefix(p).is_some_and(|rest| !rest.is_empty()))
                && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        if !well_formed(&["sk_test_", "sk_live_", "rk_test_", "rk_live_"], key) {
            return err(
                "stripe_secret_key",
                "expected a Stripe secret key starting with sk_test_, sk_live_ or rk_ (a publishable pk_ key does not work here)",
            );
        }
        match webhook {
            None => err(
                "stripe_webhook_secret",
                "expected the webhook signing secret (whsec_…) of the /webhooks/stripe endpoint: required with ECOM_STRIPE_SECRET_KEY",
            ),
            Some(w) if !well_formed(&["whsec_"], w) => {
                err("stripe_webhook_secret", "expected a webhook signing secret starting with whsec_")
            }
            Some(_) => Ok(()),
        }
    }

    /// The Stripe settings `(secret key, webhook secret, API base)` when Stripe is
    /// configured. Call after [`Config::validate`].
    pub fn stripe(&self) -> Option<(String, String, String)> {
        let key = given(self.stripe_secret_key.as_ref().map(|s| s.0.as_str()))?;
        let webhook = given(self.stripe_webhook_secret.as_ref().map(|s| s.0.as_str())).unwrap_or_default();
        Some((key.to_owned(), webhook.to_owned(), self.stripe_api_base.trim().trim_end_matches('/').to_owned()))
    }

    fn validate_s3(&self) -> Result<(), ConfigError> {
        let err = |key: &str, msg: &str| Err(ConfigError(format!("{}: {msg}", env_name(key))));
        let endpoint = given(self.s3_endpoint.as_deref());
        let Some(bucket) = given(self.s3_bucket.as_deref()) else {
            // S3 settings without a bucket would silently leave media on local disk.
            for (key, set) in [
                ("s3_endpoint", endpoint.is_some()),
                ("s3_access_key_id", given(self.s3_access_key_id.as_deref()).is_some()),
                ("s3_secret_access_key", given(self.s3_secret_access_key.as_ref().map(|s| s.0.as_str())).is_some()),
                ("s3_prefix", given(self.s3_prefix.as_deref()).is_some()),
            ] {
                if set {
                    return err(
                        "s3_bucket",
                        &format!(
                            "expected a bucket name: {} is set, but media stays on local disk without a bucket",
                            env_name(key)
                        ),
                    );
                }
            }
            return Ok(());
        };
        if !valid_bucket_name(bucket) {
            return err(
                "s3_bucket",
                "expected an S3 bucket name: 3–63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit",
            );
        }
        if given(self.s3_access_key_id.as_deref()).is_none() {
            return err("s3_access_key_id", "expected the access key id for the bucket set by ECOM_S3_BUCKET");
        }
        if given(self.s3_secret_access_key.as_ref().map(|s| s.0.as_str())).is_none() {
            return err("s3_secret_access_key", "expected the secret access key for the bucket set by ECOM_S3_BUCKET");
        }
        if self.s3_region.trim().is_empty()
            || !self.s3_region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return err(
                "s3_region",
                "expected a region name such as us-east-1 (any name for most S3-compatible stores)",
            );
        }
        if let Some(url) = endpoint {
            let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
            if rest.is_none_or(|host| host.is_empty() || host.starts_with('/') || host.contains(char::is_whitespace)) {
                return err("s3_endpoint", "expected a URL such as https://s3.example.com or http://127.0.0.1:9000");
            }
            if url.starts_with("http://") && !self.s3_allow_http {
                return err(
                    "s3_allow_http",
                    "the S3 endpoint is plain http://, which sends media unencrypted: set ECOM_S3_ALLOW_HTTP=true to allow it (or use https://)",
                );
            }
        }
        if let Some(prefix) = given(self.s3_prefix.as_deref()) {
            let ok = prefix.trim_matches('/').split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.!*'()".contains(&b))
            });
            if !ok {
                return err(
                    "s3_prefix",
                    "expected a key prefix such as media or shops/media: letters, digits and - _ . ! * ' ( ) between slashes",
                );
            }
        }
        Ok(())
    }

    /// The S3 settings for media, when a bucket is configured; `None` keeps media in
    /// `<data_dir>/media`. Call after [`Config::validate`].
    pub fn media_s3(&self) -> Option<ecom_media::S3Settings> {
        let bucket = given(self.s3_bucket.as_deref())?;
        Some(ecom_media::S3Settings {
            bucket: bucket.to_owned(),
            endpoint: given(self.s3_endpoint.as_deref()).map(str::to_owned),
            region: self.s3_region.trim().to_owned(),
            access_key_id: given(self.s3_access_key_id.as_deref()).unwrap_or_default().to_owned(),
            secret_access_key: self.s3_secret_access_key.as_ref().map(|s| s.0.trim().to_owned()).unwrap_or_default(),
            allow_http: self.s3_allow_http,
            prefix: given(self.s3_prefix.as_deref()).map(str::to_owned),
        })
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.0.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("ecom.db").display()),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url().starts_with("postgres")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut c = Config { platform_domain: "http://x".into(), ..Config::default() };
        assert!(c.validate().is_err_and(|e| e.0.contains("ECOM_PLATFORM_DOMAIN")));
        c.platform_domain = "localhost".into();
        c.secret_key = Some(Secret("short".into()));
        assert!(c.validate().is_err_and(|e| e.0.contains("ECOM_SECRET_KEY") && !e.0.contains("short")));
        assert_eq!(format!("{:?}", c.secret_key), "Some((redacted))");
    }

    #[test]
    fn mail_settings_are_checked_without_showing_the_password() {
        let e = |c: Config| c.validate().unwrap_err().to_string();
        let bad = e(Config {
            smtp_url: Some(Secret("smtp://ann:hunter2@mail.example.com:notaport".into())),
            ..Config::default()
        });
        assert!(bad.contains("ECOM_SMTP_URL") && !bad.contains("hunter2"), "{bad}");
        let bad =
            e(Config { smtp_url: Some(Secret("http://ann:hunter2@mail.example.com".into())), ..Config::default() });
        assert!(bad.contains("ECOM_SMTP_URL") && !bad.contains("hunter2"), "{bad}");
        assert!(e(Config { mail_from: Some("nobody".into()), ..Config::default() }).contains("ECOM_MAIL_FROM"));
        assert!(e(Config { notify_max_attempts: 0, ..Config::default() }).contains("ECOM_NOTIFY_MAX_ATTEMPTS"));
        assert!(e(Config { notify_email_per_sec: 0, ..Config::default() }).contains("ECOM_NOTIFY_EMAIL_PER_SEC"));
        assert!(e(Config { notify_sms_per_sec: 0, ..Config::default() }).contains("ECOM_NOTIFY_SMS_PER_SEC"));
        assert!(e(Config { retention_days: 40_000, ..Config::default() }).contains("ECOM_RETENTION_DAYS"));
        assert_eq!(Config { retention_days: 0, ..Config::default() }.retention_settings().days, 0);
        let ok = Config {
            smtp_url: Some(Secret("smtp://ann:hunter2@mail.example.com:587?tls=starttls".into())),
            ..Config::default()
        };
        ok.validate().unwrap();
        assert!(!format!("{ok:?}").contains("hunter2"));
        assert_eq!(ok.mail_from(), "ECOM <no-reply@localhost>");
        assert!(ok.smtp().unwrap().is_ok());
        assert!(Config::default().smtp().is_none());
    }

    #[test]
    fn domain_settings_are_checked() {
        let e = |c: Config| c.validate().err().map(|e| e.0).unwrap_or_default();
        assert!(
            e(Config { dns_resolver: Some("dns.example".into()), ..Config::default() }).contains("ECOM_DNS_RESOLVER")
        );
        assert!(e(Config { domain_check_secs: 0, ..Config::default() }).contains("ECOM_DOMAIN_CHECK_SECS"));
        let ok = Config { dns_resolver: Some("127.0.0.1:5353".into()), ..Config::default() };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.dns_resolver_addr(), Some(SocketAddr::from(([127, 0, 0, 1], 5353))));
    }

    #[test]
    fn bus_settings_are_checked() {
        let e = |c: Config| c.validate().err().map(|e| e.0).unwrap_or_default();
        assert!(e(Config { bus_max_attempts: 0, ..Config::default() }).contains("ECOM_BUS_MAX_ATTEMPTS"));
        assert!(e(Config { bus_backoff_base_ms: 0, ..Config::default() }).contains("ECOM_BUS_BACKOFF_BASE_MS"));
        assert!(e(Config { bus_backoff_max_ms: 10, ..Config::default() }).contains("ECOM_BUS_BACKOFF_MAX_MS"));
        assert!(e(Config { bus_poll_ms: 0, ..Config::default() }).contains("ECOM_BUS_POLL_MS"));
        assert!(e(Config { bus_lease_secs: 1, ..Config::default() }).contains("ECOM_BUS_LEASE_SECS"));
        assert!(
            e(Config { abandoned_cart_after: "soon".into(), ..Config::default() })
                .contains("ECOM_ABANDONED_CART_AFTER")
        );
        assert!(
            e(Config { abandoned_cart_after: "5s".into(), ..Config::default() }).contains("ECOM_ABANDONED_CART_AFTER")
        );
        assert_eq!(parse_duration("90m"), Some(std::time::Duration::from_secs(5400)));
        assert_eq!(parse_duration("7200"), Some(std::time::Duration::from_secs(7200)));
        assert!(e(Config { marketing_poll_secs: 0, ..Config::default() }).contains("ECOM_MARKETING_POLL_SECS"));
        assert!(
            e(Config { webhook_disable_after_secs: 0, ..Config::default() })
                .contains("ECOM_WEBHOOK_DISABLE_AFTER_SECS")
        );
        assert!(e(Config { webhook_max_attempts: 0, ..Config::default() }).contains("ECOM_WEBHOOK_MAX_ATTEMPTS"));
        assert!(e(Config { webhook_backoff_max_ms: 1, ..Config::default() }).contains("ECOM_WEBHOOK_BACKOFF_MAX_MS"));
        assert!(e(Config { webhook_timeout_secs: 0, ..Config::default() }).contains("ECOM_WEBHOOK_TIMEOUT_SECS"));
        let s = Config { bus_max_attempts: 3, ..Config::default() }.relay_settings();
        assert_eq!(s.max_attempts, 3);
    }

    #[test]
    fn amqp_settings_are_checked_and_the_url_hidden() {
        let e = |c: Config| c.validate().err().map(|e| e.0).unwrap_or_default();
        let url = |u: &str| Some(Secret(u.into()));
        assert!(Config::default().amqp_settings().is_none(), "embedded mode by default");
        assert!(Config { amqp_url: url(" "), ..Config::default() }.amqp_settings().is_none());
        let ok = Config { amqp_url: url("amqp://guest:s3cret-pw@127.0.0.1:5672/%2f"), ..Config::default() };
        ok.validate().unwrap();
        let s = ok.amqp_settings().unwrap();
        assert_eq!((s.prefix.as_str(), s.prefetch), ("ecom", 128));
        assert!(!format!("{ok:?}").contains("s3cret-pw"));
        assert!(!format!("{s:?}").contains("s3cret-pw"));
        Config { amqp_url: url("amqps://u:p@broker.example.com/prod"), ..Config::default() }.validate().unwrap();
        for bad in ["http://guest:s3cret-pw@127.0.0.1:5672", "s3cret-pw", "amqp://guest:s3cret-pw@:5672/%2f"] {
            let msg = e(Config { amqp_url: url(bad), ..Config::default() });
            assert!(msg.contains("ECOM_AMQP_URL") && !msg.contains("s3cret-pw"), "{bad}: {msg}");
        }
        for bad in ["", "has space", "a/b", &"x".repeat(51)] {
            assert!(e(Config { amqp_prefix: bad.into(), ..Config::default() }).contains("ECOM_AMQP_PREFIX"), "{bad:?}");
        }
        assert!(e(Config { amqp_prefetch: 0, ..Config::default() }).contains("ECOM_AMQP_PREFETCH"));
    }

    fn s3() -> Config {
        Config {
            s3_bucket: Some("ecom-media".into()),
            s3_endpoint: Some("https://s3.example.com".into()),
            s3_access_key_id: Some("AKIDEXAMPLE".into()),
            s3_secret_access_key: Some(Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into())),
            ..Config::default()
        }
    }

    fn s3_error(c: &Config) -> String {
        c.validate().err().map(|e| e.0).unwrap_or_default()
    }

    #[test]
    fn media_stays_local_unless_a_bucket_is_set() {
        let c = Config::default();
        assert!(c.media_s3().is_none());
        let c = Config { s3_bucket: Some(String::new()), ..Config::default() };
        assert!(c.validate().is_ok() && c.media_s3().is_none(), "an empty bucket counts as unset");
        let settings = s3().media_s3().unwrap_or_default();
        assert_eq!(settings.bucket, "ecom-media");
        assert_eq!(settings.endpoint.as_deref(), Some("https://s3.example.com"));
        assert_eq!(settings.region, "us-east-1");
        assert!(!settings.allow_http);
        let aws = Config { s3_endpoint: Some(String::new()), ..s3() };
        assert!(aws.validate().is_ok());
        assert_eq!(aws.media_s3().unwrap_or_default().endpoint, None, "an empty endpoint means AWS");
    }

    #[test]
    fn s3_settings_are_checked_and_name_their_key() {
        assert!(s3().validate().is_ok());
        let no_key = Config { s3_access_key_id: None, ..s3() };
        assert!(s3_error(&no_key).contains("ECOM_S3_ACCESS_KEY_ID"), "{}", s3_error(&no_key));
        let no_secret = Config { s3_secret_access_key: Some(Secret(String::new())), ..s3() };
        assert!(s3_error(&no_secret).contains("ECOM_S3_SECRET_ACCESS_KEY"));
        let http = Config { s3_endpoint: Some("http://127.0.0.1:9000".into()), ..s3() };
        assert!(s3_error(&http).starts_with("ECOM_S3_ALLOW_HTTP:"), "{}", s3_error(&http));
        let http_allowed = Config { s3_allow_http: true, ..http };
        assert!(http_allowed.validate().is_ok());
        assert!(http_allowed.media_s3().is_some_and(|s| s.allow_http));
        for bad in ["127.0.0.1:9000", "ftp://host", "https://", "http:///x"] {
            let c = Config { s3_endpoint: Some(bad.into()), s3_allow_http: true, ..s3() };
            assert!(s3_error(&c).starts_with("ECOM_S3_ENDPOINT:"), "{bad}: {}", s3_error(&c));
        }
        for bad in ["Media", "ab", "-media", "media-", "my_bucket", "a..b"] {
            let c = Config { s3_bucket: Some(bad.into()), ..s3() };
            assert!(s3_error(&c).starts_with("ECOM_S3_BUCKET:"), "{bad}");
        }
        let region = Config { s3_region: " ".into(), ..s3() };
        assert!(s3_error(&region).starts_with("ECOM_S3_REGION:"));
        for bad in ["a//b", "../x", "a b"] {
            let c = Config { s3_prefix: Some(bad.into()), ..s3() };
            assert!(s3_error(&c).starts_with("ECOM_S3_PREFIX:"), "{bad}");
        }
        let prefixed = Config { s3_prefix: Some("/shops/media/".into()), ..s3() };
        assert!(prefixed.validate().is_ok());
        // S3 settings without a bucket would silently store media locally.
        let orphan = Config { s3_bucket: None, ..s3() };
        let e = s3_error(&orphan);
        assert!(e.starts_with("ECOM_S3_BUCKET:") && e.contains("ECOM_S3_ENDPOINT"), "{e}");
    }

    #[test]
    fn the_s3_secret_never_prints() {
        let c = s3();
        let shown = format!("{c:#?}");
        assert!(shown.contains("(redacted)"), "{shown}");
        assert!(!shown.contains("wJalrXUtnFEMI"));
        assert!(!format!("{:?}", c.media_s3()).contains("wJalrXUtnFEMI"));
        assert!(s3_error(&Config { s3_bucket: Some("Bad".into()), ..s3() }).find("wJalr").is_none());
    }

    #[test]
    fn s3_keys_load_from_a_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("ecom.toml");
        let toml = "s3_bucket = \"shop-media\"\ns3_endpoint = \"http://127.0.0.1:9000\"\ns3_region = \"eu-west-3\"\n\
                    s3_access_key_id = \"id\"\ns3_secret_access_key = \"secret\"\ns3_prefix = \"media\"\n";
        std::fs::write(&file, toml).unwrap_or_else(|e| panic!("{e}"));
        let e = Config::load(&file, true).err().map(|e| e.0).unwrap_or_default();
        assert!(e.contains("ECOM_S3_ALLOW_HTTP"), "{e}");
        std::fs::write(&file, format!("{toml}s3_allow_http = true\n")).unwrap_or_else(|e| panic!("{e}"));
        let c = Config::load(&file, true).unwrap_or_else(|e| panic!("{e}"));
        let s = c.media_s3().unwrap_or_default();
        assert_eq!(
            (s.bucket.as_str(), s.region.as_str(), s.prefix.as_deref()),
            ("shop-media", "eu-west-3", Some("media"))
        );
        assert!(s.allow_http);
    }

    fn stripe() -> Config {
        Config {
            stripe_secret_key: Some(Secret("sk_test_51AbCdEfGhIjKlMnOp".into())),
            stripe_webhook_secret: Some(Secret("whsec_0123456789abcdef".into())),
            ..Config::default()
        }
    }

    #[test]
    fn stripe_is_off_unless_a_key_is_set() {
        assert!(Config::default().stripe().is_none());
        assert_eq!(Config::default().stripe_api_base, "https://api.stripe.com");
        let empty = Config { stripe_secret_key: Some(Secret(" ".into())), ..Config::default() };
        assert!(empty.validate().is_ok() && empty.stripe().is_none(), "an empty key counts as unset");
        let (key, webhook, base) = stripe().stripe().unwrap_or_default();
        assert_eq!(
            (key.as_str(), webhook.as_str(), base.as_str()),
            ("sk_test_51AbCdEfGhIjKlMnOp", "whsec_0123456789abcdef", "https://api.stripe.com")
        );
        for ok in ["sk_live_abc", "rk_test_abc", "rk_live_abc"] {
            let c = Config { stripe_secret_key: Some(Secret(ok.into())), ..stripe() };
            assert!(c.validate().is_ok(), "{ok}");
        }
    }

    #[test]
    fn stripe_settings_are_checked_and_name_their_key() {
        let error = |c: &Config| c.validate().err().map(|e| e.0).unwrap_or_default();
        assert!(stripe().validate().is_ok());
        for bad in ["pk_test_abc", "sk_test_", "sk_abc", "whsec_abc", "sk_test_abc def", "secret"] {
            let c = Config { stripe_secret_key: Some(Secret(bad.into())), ..stripe() };
            let e = error(&c);
            assert!(e.starts_with("ECOM_STRIPE_SECRET_KEY:"), "{bad}: {e}");
            assert!(!e.contains("abc"), "the bad key is not echoed: {e}");
        }
        let no_webhook = Config { stripe_webhook_secret: None, ..stripe() };
        assert!(error(&no_webhook).starts_with("ECOM_STRIPE_WEBHOOK_SECRET:"), "{}", error(&no_webhook));
        let bad_webhook = Config { stripe_webhook_secret: Some(Secret("sk_test_oops".into())), ..stripe() };
        assert!(
            error(&bad_webhook).starts_with("ECOM_STRIPE_WEBHOOK_SECRET:") && !error(&bad_webhook).contains("oops")
        );
        let orphan = Config { stripe_secret_key: None, ..stripe() };
        assert!(error(&orphan).starts_with("ECOM_STRIPE_SECRET_KEY:"), "{}", error(&orphan));
        for ok in ["http://127.0.0.1:12111", "http://localhost:8080/", "https://stripe-proxy.example.com"] {
            let c = Config { stripe_api_base: ok.into(), ..stripe() };
            assert!(c.validate().is_ok(), "{ok}: {}", error(&c));
        }
        let local = Config { stripe_api_base: "http://127.0.0.1:12111/".into(), ..stripe() };
        assert_eq!(local.stripe().unwrap_or_default().2, "http://127.0.0.1:12111");
        for bad in [
            "http://api.stripe.com",
            "http://10.0.0.5",
            "http://127.0.0.1.evil.com",
            "http://localhost@evil.com",
            "api.stripe.com",
            "https://",
            "https://api.stripe.com/v1",
            "ftp://api.stripe.com",
        ] {
            let c = Config { stripe_api_base: bad.into(), ..stripe() };
            assert!(error(&c).starts_with("ECOM_STRIPE_API_BASE:"), "{bad}: {}", error(&c));
        }
    }

    #[test]
    fn stripe_secrets_never_print() {
        let shown = format!("{:#?}", stripe());
        assert!(!shown.contains("sk_test_51AbCdEfGhIjKlMnOp") && !shown.contains("whsec_0123456789abcdef"), "{shown}");
        assert!(shown.contains("(redacted)"), "{shown}");
    }

    #[test]
    fn stripe_keys_load_from_the_environment_names() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("ecom.toml");
        std::fs::write(&file, "stripe_secret_key = \"sk_test_abc\"\n").unwrap_or_else(|e| panic!("{e}"));
        let e = Config::load(&file, true).err().map(|e| e.0).unwrap_or_default();
        assert!(e.contains("ECOM_STRIPE_WEBHOOK_SECRET"), "{e}");
        std::fs::write(&file, "stripe_secret_key = \"sk_test_abc\"\nstripe_webhook_secret = \"whsec_abc\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(Config::load(&file, true).is_ok_and(|c| c.stripe().is_some()));
        std::fs::write(&file, "stripe_key = \"sk_test_abc\"\n").unwrap_or_else(|e| panic!("{e}"));
        let e = Config::load(&file, true).err().map(|e| e.0).unwrap_or_default();
        assert!(e.contains("unknown setting `stripe_key`"), "{e}");
    }

    #[test]
    fn private_network_targets_are_refused_unless_allowed() {
        assert!(!Config::default().allow_private_network);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("ecom.toml");
        std::fs::write(&file, "allow_private_network = true\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(Config::load(&file, true).is_ok_and(|c| c.allow_private_network));
        std::fs::write(&file, "allow_private_network = \"sometimes\"\n").unwrap_or_else(|e| panic!("{e}"));
        let e = Config::load(&file, true).err().map(|e| e.0).unwrap_or_default();
        assert!(e.contains("allow_private_network"), "{e}");
    }
}
