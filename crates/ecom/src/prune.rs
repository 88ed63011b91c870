//! `ecom prune`: one retention pass now, with a progress line per batch.

use crate::config::Config;
use ecom_services::retention::{PruneError, Retention};
use std::io::Write;

/// Runs one pass of the retention pruner (`days` overrides `ECOM_RETENTION_DAYS`).
pub async fn prune_cli(config: &Config, days: Option<u32>) -> anyhow::Result<()> {
    let db = crate::open_database(config).await?;
    let mut settings = config.retention_settings();
    if let Some(days) = days {
        settings.days = days;
    }
    if settings.days == 0 {
        println!("retention: 0 days — deliveries, receipts, notifications and the mailbox are kept forever");
    } else {
        println!("retention: {} days; idempotency keys: 24 hours", settings.days);
    }
    let pruner = Retention::new(db, settings);
    let mut out = std::io::stdout();
    let totals = pruner
        .run_once(|part, total, done| {
            let end = if done { "\n" } else { "\r" };
            let _ = write!(out, "{:>10} {}{end}", total, part.label());
            let _ = out.flush();
        })
        .await
        .map_err(|e| match e {
            PruneError::Busy => anyhow::anyhow!("{e}"),
            PruneError::Store(e) => {
                anyhow::Error::new(e).context("pruning failed (what was deleted so far stays deleted)")
            }
        })?;
    let total: u64 = totals.iter().map(|(_, n)| n).sum();
    println!("pruned {total} row(s)");
    Ok(())
}
