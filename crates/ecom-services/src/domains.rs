//! Custom domains: a merchant adds one, proves it is theirs, and may make it the
//! store's primary address.
//!
//! Proof is either a DNS TXT record `_ecom-verify.<domain>` holding
//! `ecom-verify=<token>`, or an HTTP answer: the platform itself serves
//! `/.well-known/ecom-verify/<token>` for a pending domain's own host, so once the
//! domain points at the platform a GET of `http://<domain>/.well-known/ecom-verify/<token>`
//! comes back here and proves it. Both lookups go through [`TxtResolver`] (production:
//! hickory-resolver; tests: a DNS server on loopback via `ECOM_DNS_RESOLVER`), and the
//! HTTP fetch through [`Outbound`]'s address checks.
//!
//! Pending domains are re-checked in the background (leased, so several nodes share
//! the work) with growing waits for 72 hours; "Verify now" checks at once any time.

use crate::{Directory, Outbound, Result, ServiceError};
use chrono::{DateTime, Duration as Span, Utc};
use ecom_core::{Invalid, TenantId};
use ecom_store::Db;
use ecom_store::domains::{self as repo, DomainRow};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long the background re-check keeps trying a pending domain.
pub const RECHECK_FOR: Span = Span::hours(72);
/// The first background check, after the domain is added.
const FIRST_WAIT: Span = Span::minutes(1);
/// Waits double from [`FIRST_WAIT`] up to this.
const MAX_WAIT: Span = Span::hours(1);
/// A store may hold this many domains.
pub const MAX_DOMAINS: usize = 20;
/// The DNS name under the domain that holds the TXT record.
pub const TXT_LABEL: &str = "_ecom-verify";
/// The path prefix of the HTTP check.
pub const WELL_KNOWN: &str = "/.well-known/ecom-verify/";

/// DNS lookups for verification: TXT records, and the addresses the HTTP check
/// connects to.
#[async_trait::async_trait]
pub trait TxtResolver: Send + Sync {
    /// The TXT records of `name` (each record's strings joined), empty when there are none.
    async fn txt(&self, name: &str) -> std::result::Result<Vec<String>, String>;
    /// The IPv4 and IPv6 addresses of `name`, empty when there are none.
    async fn ips(&self, name: &str) -> std::result::Result<Vec<IpAddr>, String>;
}

/// [`TxtResolver`] over hickory-resolver: the system's name servers, or one given
/// server (`ECOM_DNS_RESOLVER=host:port`). Nothing is cached, so a record the merchant
/// just published is seen by the next check.
pub struct HickoryResolver {
    inner: hickory_resolver::TokioResolver,
}

impl HickoryResolver {
    /// `server`: one name server to ask (UDP, then TCP), else the system's.
    pub fn new(server: Option<std::net::SocketAddr>) -> std::result::Result<Self, String> {
        use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
        use hickory_resolver::net::runtime::TokioRuntimeProvider;
        let mut builder = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                hickory_resolver::Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => hickory_resolver::TokioResolver::builder_tokio()
                .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?,
        };
        let opts = builder.options_mut();
        opts.cache_size = 0;
        opts.timeout = Duration::from_secs(5);
        opts.attempts = 2;
        let inner = builder.build().map_err(|e| format!("cannot set up the DNS resolver: {e}"))?;
        Ok(Self { inner })
    }
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') { name.to_owned() } else { format!("{name}.") }
}

#[async_trait::async_trait]
impl TxtResolver for HickoryResolver {
    async fn txt(&self, name: &str) -> std::result::Result<Vec<String>, String> {
        use hickory_resolver::proto::rr::RData;
        match self.inner.txt_lookup(fqdn(name)).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(txt) => {
                        Some(txt.txt_data.iter().map(|part| String::from_utf8_lossy(part)).collect::<String>())
                    }
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(format!("the DNS lookup of {name} failed: {e}")),
        }
    }

    async fn ips(&self, name: &str) -> std::result::Result<Vec<IpAddr>, String> {
        match self.inner.lookup_ip(fqdn(name)).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(format!("the DNS lookup of {name} failed: {e}")),
        }
    }
}

/// Parses what a merchant typed as a domain: trimmed, lower case, no trailing dot,
/// international names as punycode (`bücher.example` → `xn--bcher-kva.example`), at
/// least two labels of letters, digits and inner hyphens, not an IP address, not the
/// platform domain or under it.
pub fn parse_domain(input: &str, platform_domain: &str) -> Result<String, Invalid> {
    const FIELD: &str = "domain";
    let raw = input.trim().trim_end_matches('.');
    if raw.is_empty() {
        return Err(Invalid::new(FIELD, "enter a domain, like shop.example.com"));
    }
    if raw.contains("://") || raw.contains('/') || raw.contains(':') || raw.contains('@') {
        return Err(Invalid::new(FIELD, "enter the domain alone, like shop.example.com (no http://, port or path)"));
    }
    let ascii =
        idna::domain_to_ascii(raw).map_err(|_| Invalid::new(FIELD, format!("\"{raw}\" is not a valid domain name")))?;
    let labels: Vec<&str> = ascii.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if ascii.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(Invalid::new(
            FIELD,
            format!("\"{raw}\" is not a valid domain name: use letters, digits and hyphens, like shop.example.com"),
        ));
    }
    if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) || ascii.parse::<IpAddr>().is_ok() {
        return Err(Invalid::new(FIELD, "enter a domain name, not an IP address"));
    }
    let platform = platform_domain.trim_end_matches('.').to_ascii_lowercase();
    if ascii == platform || ascii.ends_with(&format!(".{platform}")) || ascii == "localhost" {
        return Err(Invalid::new(
            FIELD,
            format!("{ascii} is part of the platform's own domain ({platform}); enter a domain you own"),
        ));
    }
    Ok(ascii)
}

/// A punycode domain as people read it (`xn--bcher-kva.example` → `bücher.example`).
pub fn unicode_name(domain: &str) -> String {
    idna::domain_to_unicode(domain).0
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    Verified {
        method: &'static str,
    },
    /// Not yet: why, for the merchant.
    NotYet(String),
}

/// The address the HTTP check asks for, as `http://<domain>[:port]`.
#[derive(Debug, Clone, Copy)]
pub struct HttpCheck {
    /// The port custom domains reach this platform on over plain HTTP (80 behind a
    /// proxy or on a public server; the listening port in development and tests).
    pub port: u16,
}

/// The custom-domain use cases. Cheap to clone.
#[derive(Clone)]
pub struct Domains {
    db: Db,
    directory: Directory,
    resolver: Arc<dyn TxtResolver>,
    outbound: Outbound,
    http: HttpCheck,
}

/// The value the TXT record or the HTTP file must hold.
pub fn expected_value(token: &str) -> String {
    format!("ecom-verify={token}")
}

impl Domains {
    pub fn new(
        db: Db,
        directory: Directory,
        resolver: Arc<dyn TxtResolver>,
        outbound: Outbound,
        http: HttpCheck,
    ) -> Self {
        Self { db, directory, resolver, outbound, http }
    }

    pub async fn list(&self, tenant: TenantId) -> Result<Vec<DomainRow>> {
        Ok(repo::list(&self.db, tenant).await?)
    }

    /// The URL the HTTP check fetches for a domain.
    pub fn http_url(&self, domain: &str, token: &str) -> String {
        match self.http.port {
            80 => format!("http://{domain}{WELL_KNOWN}{token}"),
            port => format!("http://{domain}:{port}{WELL_KNOWN}{token}"),
        }
    }

    /// Adds a domain, pending verification with a new token. Refused with a message
    /// naming the problem: not a domain, the platform's own, taken by another store,
    /// already this store's, too many.
    pub async fn add(&self, tenant: TenantId, input: &str, actor: &str) -> Result<DomainRow> {
        let domain = parse_domain(input, self.directory.platform_domain())?;
        match repo::owner_of(&self.db, &domain).await? {
            Some(owner) if owner == tenant => {
                return Err(Invalid::new("domain", format!("{domain} is already one of this store's domains")).into());
            }
            Some(_) => {
                return Err(Invalid::new("domain", format!("{domain} is already used by another store")).into());
            }
            None => {}
        }
        if repo::list(&self.db, tenant).await?.len() >= MAX_DOMAINS {
            return Err(Invalid::new("domain", format!("a store can have at most {MAX_DOMAINS} domains")).into());
        }
        let token = hex::encode(rand::random::<[u8; 16]>());
        let row =
            repo::add_pending(&self.db, tenant, &domain, &token, Utc::now() + FIRST_WAIT).await.map_err(
                |e| match e {
                    // Another store added it between the check and the insert.
                    ecom_store::StoreError::Conflict(_) => ServiceError::Invalid(Invalid::new(
                        "domain",
                        format!("{domain} is already used by another store"),
                    )),
                    other => other.into(),
                },
            )?;
        crate::audit::record(&self.db, tenant, actor, "domain.added", &domain, "pending verification").await?;
        Ok(row)
    }

    /// Checks a pending domain now (the merchant's "Verify now"); records the outcome.
    pub async fn verify_now(&self, tenant: TenantId, id: Uuid, actor: &str) -> Result<CheckOutcome> {
        let row = repo::get(&self.db, tenant, id).await?.ok_or(ServiceError::NotFound)?;
        if row.status == repo::VERIFIED {
            return Ok(CheckOutcome::Verified { method: "earlier" });
        }
        // A manual check does not end the background schedule; it keeps its place.
        let next = row.next_check_at;
        self.check_and_record(&row, next, actor).await
    }

    /// Runs both checks and writes the outcome; `next` is when the background looks
    /// again after a failure.
    async fn check_and_record(
        &self,
        row: &DomainRow,
        next: Option<DateTime<Utc>>,
        actor: &str,
    ) -> Result<CheckOutcome> {
        let tenant = TenantId(row.tenant_id);
        let outcome = self.check(row).await;
        match &outcome {
            CheckOutcome::Verified { method } => {
                if repo::mark_verified(&self.db, tenant, row.id).await? {
                    self.directory.invalidate();
                    crate::audit::record(
                        &self.db,
                        tenant,
                        actor,
                        "domain.verified",
                        &row.domain,
                        &format!("by {method}"),
                    )
                    .await?;
                    tracing::info!(tenant.id = %tenant, domain = %row.domain, method, "custom domain verified");
                }
            }
            CheckOutcome::NotYet(why) => repo::record_failure(&self.db, tenant, row.id, why, next).await?,
        }
        Ok(outcome)
    }

    /// Looks for the token in DNS, then over HTTP.
    pub async fn check(&self, row: &DomainRow) -> CheckOutcome {
        let expected = expected_value(&row.token);
        let txt_name = format!("{TXT_LABEL}.{}", row.domain);
        let dns = match self.resolver.txt(&txt_name).await {
            Ok(records) if records.iter().any(|r| r.trim() == expected) => {
                return CheckOutcome::Verified { method: "DNS TXT record" };
            }
            Ok(records) if records.iter().any(|r| r.trim().starts_with("ecom-verify=")) => {
                format!("the TXT record at {txt_name} holds another token (expected {expected})")
            }
            Ok(_) => format!("no TXT record {expected} at {txt_name}"),
            Err(e) => e,
        };
        let url = self.http_url(&row.domain, &row.token);
        let http = match self.http_check(&row.domain, &url, &expected).await {
            Ok(()) => return CheckOutcome::Verified { method: "HTTP" },
            Err(e) => e,
        };
        CheckOutcome::NotYet(format!("DNS: {dns}. HTTP: {http}."))
    }

    async fn http_check(&self, domain: &str, url: &str, expected: &str) -> std::result::Result<(), String> {
        let ips = self.resolver.ips(domain).await?;
        if ips.is_empty() {
            return Err(format!("{domain} has no address records yet"));
        }
        let parsed = reqwest::Url::parse(url).map_err(|_| format!("{url} is not a valid address"))?;
        let body = self.outbound.fetch_at(&parsed, &ips, 4096).await.map_err(|e| format!("{url}: {e}"))?;
        if String::from_utf8_lossy(&body).trim() == expected {
            Ok(())
        } else {
            Err(format!("{url} answered, but not with {expected} (does the domain point at this platform?)"))
        }
    }

    /// What the platform serves at `/.well-known/ecom-verify/<token>` for a request on
    /// `host`: the expected value when a domain of that name has that token.
    pub async fn well_known(&self, host: &str, token: &str) -> Result<Option<String>> {
        if token.len() != 32 || !token.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let Some(host) = ecom_core::host::normalise_host(host) else { return Ok(None) };
        Ok(repo::find_by_token(&self.db, token)
            .await?
            .filter(|row| row.domain == host)
            .map(|row| expected_value(&row.token)))
    }

    /// Makes a verified domain the primary one (links, sitemaps, emails use it, and the
    /// platform address redirects storefront pages to it), or, with `None`, goes back
    /// to the platform address.
    pub async fn set_primary(&self, tenant: TenantId, id: Option<Uuid>, actor: &str) -> Result<()> {
        let name = match id {
            Some(id) => {
                let row = repo::get(&self.db, tenant, id).await?.ok_or(ServiceError::NotFound)?;
                if row.status != repo::VERIFIED {
                    return Err(Invalid::new(
                        "domain",
                        format!("{} is not verified yet; verify it before making it primary", row.domain),
                    )
                    .into());
                }
                row.domain
            }
            None => String::new(),
        };
        if !repo::set_primary(&self.db, tenant, id).await? {
            return Err(ServiceError::NotFound);
        }
        self.directory.invalidate();
        let detail = if name.is_empty() { "platform address is primary again" } else { "primary domain" };
        crate::audit::record(&self.db, tenant, actor, "domain.primary", &name, detail).await?;
        Ok(())
    }

    pub async fn remove(&self, tenant: TenantId, id: Uuid, actor: &str) -> Result<()> {
        let row = repo::remove(&self.db, tenant, id).await?.ok_or(ServiceError::NotFound)?;
        self.directory.invalidate();
        let detail = if row.is_primary { "was primary" } else { "" };
        crate::audit::record(&self.db, tenant, actor, "domain.removed", &row.domain, detail).await?;
        Ok(())
    }

    /// One pass of the background re-check: leases due pending domains and checks
    /// each; returns how many were verified.
    pub async fn recheck_due(&self, node: &str) -> Result<usize> {
        let now = Utc::now();
        let due = repo::claim_due(&self.db, node, now, now + Span::minutes(2), 20).await?;
        let mut verified = 0;
        for row in due {
            let next = next_check(row.created_at, row.check_attempts + 1, now);
            match self.check_and_record(&row, next, "platform (background check)").await {
                Ok(CheckOutcome::Verified { .. }) => verified += 1,
                Ok(CheckOutcome::NotYet(_)) => {}
                Err(e) => tracing::warn!(domain = %row.domain, error = %e, "domain check failed"),
            }
        }
        Ok(verified)
    }

    /// Runs [`Domains::recheck_due`] every `every` until aborted.
    pub fn spawn(self, every: Duration) -> tokio::task::JoinHandle<()> {
        let node = format!("domains-{}", Uuid::now_v7().simple());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = self.recheck_due(&node).await {
                    tracing::warn!(error = %e, "background domain checks failed");
                }
            }
        })
    }
}

/// When to check again after `attempts` failed checks: waits double from a minute
/// up to an hour, and stop ([`None`]) 72 hours after the domain was added.
pub fn next_check(created_at: DateTime<Utc>, attempts: i32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let shift = u32::try_from(attempts.clamp(0, 12)).unwrap_or(0);
    let wait = (FIRST_WAIT * 2_i32.pow(shift)).min(MAX_WAIT);
    let at = now + wait;
    (at <= created_at + RECHECK_FOR).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_parsed_to_lower_case_punycode_and_refused_with_reasons() {
        assert_eq!(parse_domain(" Shop.Example.COM. ", "localhost").unwrap(), "shop.example.com");
        assert_eq!(parse_domain("bücher.example", "localhost").unwrap(), "xn--bcher-kva.example");
        for bad in ["", "example", "http://shop.example.com", "shop.example.com/x", "1.2.3.4", "-a.example.com"] {
            assert!(parse_domain(bad, "localhost").is_err(), "{bad:?} should be refused");
        }
        assert!(parse_domain("demo.ecom.example", "ecom.example").unwrap_err().message.contains("platform"));
        assert!(parse_domain("ecom.example", "ecom.example").is_err());
    }

    #[test]
    fn rechecks_back_off_and_stop_after_72_hours() {
        let t0 = Utc::now();
        assert_eq!(next_check(t0, 0, t0), Some(t0 + Span::minutes(1)));
        assert_eq!(next_check(t0, 3, t0), Some(t0 + Span::minutes(8)));
        assert_eq!(next_check(t0, 11, t0), Some(t0 + Span::hours(1)));
        assert_eq!(next_check(t0, 50, t0 + Span::hours(71) + Span::minutes(30)), None);
    }
}
