//! Requests to addresses that merchants choose: image URLs in a product import now,
//! webhook targets later. Such a request must not become a way into the platform's
//! own network (server-side request forgery), so every address it connects to is
//! checked first: loopback, private, link-local (cloud metadata at 169.254.169.254
//! included), unspecified, multicast and other non-public addresses are refused.
//!
//! The check happens where the connection is made, not before it: host names are
//! resolved by [`Outbound`]'s own resolver, which refuses a name if any of its
//! addresses is not public and hands the checked addresses to the connector. A
//! second lookup that could answer differently (DNS rebinding) never happens.
//! Addresses written as IP literals skip DNS, so [`Outbound::check_url`] checks
//! them; redirects are followed by hand, each hop checked again. No proxy is used.
//!
//! `allow_private_network` (configuration) turns the refusal off, for development
//! and tests where everything runs on 127.0.0.1.

use bytes::Bytes;
use reqwest::Url;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// A whole fetch (connection, redirects, body) gives up after this long.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REDIRECTS: usize = 5;

/// An address that outbound requests may not reach, and what kind it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotPublic {
    pub addr: IpAddr,
    /// "loopback", "private", "link-local", …
    pub kind: &'static str,
}

impl fmt::Display for NotPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is a {} address", self.addr, self.kind)
    }
}

impl std::error::Error for NotPublic {}

/// Whether an address is on the public internet. Everything else is refused:
/// loopback, private (RFC 1918, fc00::/7), carrier-grade NAT, link-local
/// (169.254/16, fe80::/10), unspecified, multicast, broadcast, documentation and
/// reserved ranges; IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4) are
/// judged by that address.
pub fn check_public(addr: IpAddr) -> Result<(), NotPublic> {
    let kind = match addr {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    };
    match kind {
        None => Ok(()),
        Some(kind) => Err(NotPublic { addr, kind }),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) | (192, 168, _) => "private",
        (172, 16..=31, _) => "private",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "reserved",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_kind(v4);
    }
    match s {
        // The deprecated IPv4-compatible form (::a.b.c.d) and the rest of ::/96.
        [0, 0, 0, 0, 0, 0, _, _] => Some("reserved"),
        // NAT64 (64:ff9b::/96) reaches the IPv4 address it embeds.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => v4_kind(embedded(hi, lo)),
        [0x64, 0xff9b, 1, ..] => Some("private"),
        // 6to4 (2002::/16) likewise.
        [0x2002, hi, lo, ..] => v4_kind(embedded(hi, lo)),
        [0x100, 0, 0, 0, ..] => Some("reserved"),
        [0x2001, 0xdb8, ..] => Some("documentation"),
        [first, ..] if first & 0xfe00 == 0xfc00 => Some("private"),
        [first, ..] if first & 0xffc0 == 0xfe80 => Some("link-local"),
        [first, ..] if first & 0xffc0 == 0xfec0 => Some("private"),
        [first, ..] if first & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

/// Why a fetch failed, in words for the merchant who gave the address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("it is not an http:// or https:// address")]
    BadUrl,
    /// The address (or what the host name resolves to) is not public.
    #[error("{0}; only addresses on the public internet can be fetched")]
    Refused(String),
    #[error("the host {0} was not found")]
    UnknownHost(String),
    #[error("the server could not be reached")]
    Unreachable,
    #[error("the server answered {0}")]
    Status(String),
    #[error("it is larger than {} MB", .0 / 1024 / 1024)]
    TooLarge(usize),
    #[error("the server did not send it within {} s", FETCH_TIMEOUT.as_secs())]
    Timeout,
    #[error("it redirects more than {MAX_REDIRECTS} times")]
    TooManyRedirects,
    #[error("the download failed: {0}")]
    Failed(String),
}

/// Why the resolver refused a host name; found again in the error reqwest returns.
#[derive(Debug)]
enum ResolveError {
    Refused { host: String, why: NotPublic },
    NotFound { host: String },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { host, why } => write!(f, "{host} resolves to {}, a {} address", why.addr, why.kind),
            Self::NotFound { host } => write!(f, "{host} was not found"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// Whether a host name is `localhost` or under it: such names are the local machine
/// (RFC 6761) and are answered without asking DNS, which may not know them.
fn is_localhost(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Resolves names and refuses those with a non-public address; the addresses it
/// returns are the ones connected to.
struct GuardedResolver {
    allow_private: bool,
}

/// Resolves `host` as the guarded client does: `localhost` names are this machine, and
/// unless `allow_private`, a name with any non-public address is refused.
async fn resolve_checked(host: String, allow_private: bool) -> Result<Vec<SocketAddr>, ResolveError> {
    let addrs: Vec<SocketAddr> = if is_localhost(&host) {
        vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), SocketAddr::from((Ipv6Addr::LOCALHOST, 0))]
    } else {
        match tokio::net::lookup_host((host.as_str(), 0)).await {
            Ok(found) => found.collect(),
            Err(_) => Vec::new(),
        }
    };
    if addrs.is_empty() {
        return Err(ResolveError::NotFound { host });
    }
    if !allow_private && let Some(why) = addrs.iter().find_map(|a| check_public(a.ip()).err()) {
        return Err(ResolveError::Refused { host, why });
    }
    Ok(addrs)
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            match resolve_checked(host, allow_private).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(e) => Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

/// The HTTP client for merchant-chosen addresses. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    allow_private: bool,
}

impl fmt::Debug for Outbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbound").field("allow_private", &self.allow_private).finish_non_exhaustive()
    }
}

impl Outbound {
    /// `allow_private_network` lets requests reach non-public addresses (development
    /// and tests only).
    pub fn new(allow_private_network: bool) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver { allow_private: allow_private_network })
            // A proxy would resolve and connect on our behalf, unchecked.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(FETCH_TIMEOUT)
            .user_agent(concat!("ECOM/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Self { client, allow_private: allow_private_network })
    }

    pub fn allows_private_network(&self) -> bool {
        self.allow_private
    }

    /// The guarded client, for other kinds of request (webhook deliveries). Host
    /// names are checked as they are resolved; call [`Outbound::check_url`] on every
    /// URL first (IP literals skip the resolver), and follow no redirect unchecked
    /// (the client follows none).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Checks what can be checked before connecting: the scheme, and an address
    /// written as an IP literal.
    pub fn check_url(&self, url: &Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::BadUrl);
        }
        let ip = match url.host() {
            None => return Err(FetchError::BadUrl),
            Some(url::Host::Domain(_)) => return Ok(()),
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        };
        if self.allow_private {
            return Ok(());
        }
        check_public(ip).map_err(|why| FetchError::Refused(why.to_string()))
    }

    /// [`Outbound::check_url`], and for a host name also resolves it now and refuses it
    /// when any of its addresses is not public (unless private networks are allowed):
    /// for checking an address when it is saved. A request made later is checked
    /// again as it connects, since what a name resolves to can change.
    pub async fn check_target(&self, url: &Url) -> Result<(), FetchError> {
        self.check_url(url)?;
        let Some(url::Host::Domain(host)) = url.host() else { return Ok(()) };
        match resolve_checked(host.to_owned(), self.allow_private).await {
            Ok(_) => Ok(()),
            Err(e @ ResolveError::Refused { .. }) => Err(FetchError::Refused(e.to_string())),
            Err(ResolveError::NotFound { host }) => Err(FetchError::UnknownHost(host)),
        }
    }

    /// GETs `url` and returns its body, at most `max_bytes` of it (a larger body is
    /// refused while it streams, never buffered whole), following up to five
    /// redirects, all within [`FETCH_TIMEOUT`].
    pub async fn fetch(&self, url: &str, max_bytes: usize) -> Result<Bytes, FetchError> {
        let url = Url::parse(url.trim()).map_err(|_| FetchError::BadUrl)?;
        tokio::time::timeout(FETCH_TIMEOUT, self.fetch_following(url, max_bytes))
            .await
            .unwrap_or(Err(FetchError::Timeout))
    }

    /// GETs `url` connecting only to `addrs`, addresses the caller resolved itself
    /// (the domain check asks its own DNS resolver), each refused unless public (or
    /// private networks are allowed). No redirect is followed.
    pub async fn fetch_at(&self, url: &Url, addrs: &[IpAddr], max_bytes: usize) -> Result<Bytes, FetchError> {
        self.check_url(url)?;
        let Some(url::Host::Domain(host)) = url.host() else { return Err(FetchError::BadUrl) };
        if addrs.is_empty() {
            return Err(FetchError::UnknownHost(host.to_owned()));
        }
        if !self.allow_private
            && let Some(why) = addrs.iter().find_map(|a| check_public(*a).err())
        {
            return Err(FetchError::Refused(format!("{host} resolves to {}, a {} address", why.addr, why.kind)));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let targets: Vec<SocketAddr> = addrs.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver { allow_private: self.allow_private })
            .resolve_to_addrs(host, &targets)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("ECOM/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Failed(e.to_string()))?;
        let mut response = client.get(url.clone()).send().await.map_err(explain)?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().to_string()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(explain)? {
            if body.len() + chunk.len() > max_bytes {
                return Err(FetchError::TooLarge(max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }

    async fn fetch_following(&self, mut url: Url, max_bytes: usize) -> Result<Bytes, FetchError> {
        for _ in 0..=MAX_REDIRECTS {
            self.check_url(&url)?;
            let mut response = self.client.get(url.clone()).send().await.map_err(explain)?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(reqwest::header::LOCATION)
            {
                let location = location.to_str().map_err(|_| FetchError::BadUrl)?;
                url = url.join(location).map_err(|_| FetchError::BadUrl)?;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.to_string()));
            }
            if response.content_length().is_some_and(|n| n > max_bytes as u64) {
                return Err(FetchError::TooLarge(max_bytes));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(explain)? {
                if body.len() + chunk.len() > max_bytes {
                    return Err(FetchError::TooLarge(max_bytes));
                }
                body.extend_from_slice(&chunk);
            }
            return Ok(Bytes::from(body));
        }
        Err(FetchError::TooManyRedirects)
    }
}

/// A reqwest error as the merchant should read it: the resolver's refusal is found in
/// the error's sources.
pub(crate) fn explain(e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(resolve) = err.downcast_ref::<ResolveError>() {
            return match resolve {
                ResolveError::Refused { .. } => FetchError::Refused(resolve.to_string()),
                ResolveError::NotFound { host } => FetchError::UnknownHost(host.clone()),
            };
        }
        source = err.source();
    }
    if e.is_timeout() {
        FetchError::Timeout
    } else if e.is_connect() {
        FetchError::Unreachable
    } else {
        FetchError::Failed(e.without_url().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn only_public_addresses_pass() {
        for (addr, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("fc00::1", "private"),
            ("fd12:3456::1", "private"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:10.0.0.1", "private"),
            ("64:ff9b::7f00:1", "loopback"),
            ("2002:c0a8:0101::1", "private"),
            ("::127.0.0.1", "reserved"),
        ] {
            assert_eq!(check_public(ip(addr)), Err(NotPublic { addr: ip(addr), kind }), "{addr}");
        }
        for addr in
            ["8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "2606:4700::1", "2a00:1450::1", "::ffff:8.8.8.8"]
        {
            assert_eq!(check_public(ip(addr)), Ok(()), "{addr}");
        }
        let why = check_public(ip("169.254.169.254")).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(why, "169.254.169.254 is a link-local address");
    }

    #[test]
    fn localhost_names_are_the_local_machine() {
        assert!(is_localhost("localhost") && is_localhost("demo.localhost") && is_localhost("Shop.LOCALHOST."));
        assert!(!is_localhost("localhost.example.com") && !is_localhost("mylocalhost"));
    }

    /// A one-request-per-connection HTTP server on 127.0.0.1 that answers every
    /// request with `response`; returns its address.
    async fn serve(response: Vec<u8>) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    let _ = conn.write_all(&response).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        addr
    }

    fn http(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
        let mut out =
            format!("HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                .into_bytes();
        out.extend_from_slice(body);
        out
    }

    fn outbound(allow_private: bool) -> Outbound {
        Outbound::new(allow_private).unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn private_targets_are_refused_before_connecting() {
        let addr = serve(http("200 OK", "", b"secret")).await;
        let guarded = outbound(false);
        for url in [
            format!("http://127.0.0.1:{}/x", addr.port()),
            format!("http://localhost:{}/x", addr.port()),
            format!("http://demo.localhost:{}/x", addr.port()),
            format!("http://[::1]:{}/x", addr.port()),
            format!("http://2130706433:{}/x", addr.port()),
            "http://169.254.169.254/latest/meta-data/".to_owned(),
        ] {
            let e = guarded.fetch(&url, 1024).await;
            assert!(matches!(&e, Err(FetchError::Refused(_))), "{url}: {e:?}");
        }
        let e = guarded.fetch(&format!("http://demo.localhost:{}/x", addr.port()), 1024).await;
        assert_eq!(
            e.err().map(|e| e.to_string()).unwrap_or_default(),
            "demo.localhost resolves to 127.0.0.1, a loopback address; \
             only addresses on the public internet can be fetched"
        );
        let e = guarded.fetch(&format!("http://127.0.0.1:{}/x", addr.port()), 1024).await;
        assert_eq!(
            e.err().map(|e| e.to_string()).unwrap_or_default(),
            "127.0.0.1 is a loopback address; only addresses on the public internet can be fetched"
        );
        for bad in ["ftp://example.com/x.png", "not a url", "file:///etc/passwd"] {
            assert_eq!(guarded.fetch(bad, 1024).await, Err(FetchError::BadUrl), "{bad}");
        }
    }

    #[tokio::test]
    async fn fetches_follow_redirects_and_stop_at_the_size_limit() {
        let allowed = outbound(true);
        let ok = serve(http("200 OK", "Content-Type: text/plain\r\n", b"hello")).await;
        assert_eq!(allowed.fetch(&format!("http://127.0.0.1:{}/a", ok.port()), 1024).await, Ok(Bytes::from("hello")));
        assert_eq!(
            allowed.fetch(&format!("http://shop.localhost:{}/a", ok.port()), 1024).await,
            Ok(Bytes::from("hello")),
            "localhost names resolve to this machine"
        );
        let redirect = serve(http("302 Found", &format!("Location: http://127.0.0.1:{}/b\r\n", ok.port()), b"")).await;
        assert_eq!(allowed.fetch(&format!("http://127.0.0.1:{}/", redirect.port()), 1024).await, Ok("hello".into()));
        assert_eq!(
            allowed.fetch(&format!("http://127.0.0.1:{}/a", ok.port()), 4).await,
            Err(FetchError::TooLarge(4)),
            "a declared length over the limit"
        );
        // A body longer than it says (no Content-Length): cut off while streaming.
        let mut endless = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
        endless.extend(std::iter::repeat_n(b'x', 64 * 1024));
        let streaming = serve(endless).await;
        assert_eq!(
            allowed.fetch(&format!("http://127.0.0.1:{}/", streaming.port()), 1000).await,
            Err(FetchError::TooLarge(1000))
        );
        let missing = serve(http("404 Not Found", "", b"nope")).await;
        assert_eq!(
            allowed.fetch(&format!("http://127.0.0.1:{}/", missing.port()), 1024).await,
            Err(FetchError::Status("404 Not Found".into()))
        );
        // A loop of redirects ends.
        let looping = serve(http("301 Moved Permanently", "Location: /again\r\n", b"")).await;
        assert_eq!(
            allowed.fetch(&format!("http://127.0.0.1:{}/", looping.port()), 1024).await,
            Err(FetchError::TooManyRedirects)
        );
        // Every hop of a redirect goes through `check_url`, which a guarded client fails
        // for a loopback literal such as the one the redirect above points to.
        let target = Url::parse(&format!("http://127.0.0.1:{}/b", ok.port())).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(outbound(false).check_url(&target), Err(FetchError::Refused(_))));
        assert_eq!(allowed.check_url(&target), Ok(()));
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
            l.local_addr().unwrap_or_else(|e| panic!("{e}")).port()
        };
        assert_eq!(allowed.fetch(&format!("http://127.0.0.1:{closed}/"), 1024).await, Err(FetchError::Unreachable));
        assert_eq!(
            allowed.fetch("http://no-such-host.invalid/x.png", 1024).await,
            Err(FetchError::UnknownHost("no-such-host.invalid".into()))
        );
    }
}
