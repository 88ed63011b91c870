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
        }
    }
}

/// A configuration problem, naming the key and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

fn env_name(key: &str) -> String {
    format!("ECOM_{}", key.to_ascii_uppercase())
}

impl Config {
    /// Loads defaults ← `config_file` (if it exists, or must exist when `required`)
    /// ← `ECOM_*` variables, then checks the values.
    pub fn load(config_file: &Path, required: bool) -> Result<Self, ConfigError> {
        if required && !config_file.exists() {
            return Err(ConfigError(format!("the configuration file {} does not exist", config_file.display())));
        }
        let figment = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(config_file))
            .merge(Env::prefixed("ECOM_").ignore(&["config"]));
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
        Ok(())
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
}
