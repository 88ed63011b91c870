//! Logging: readable lines on a terminal or JSON objects, each carrying the fields of
//! its request span (request id, route, host).

use crate::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

pub fn init(config: &Config) {
    let filter = std::env::var("RUST_LOG").ok().and_then(|f| f.parse::<EnvFilter>().ok()).unwrap_or_else(|| {
        EnvFilter::new(format!("{},sqlx=warn,sea_orm=warn,sea_orm_migration=warn", config.log_level))
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
