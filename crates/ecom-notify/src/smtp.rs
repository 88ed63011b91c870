//! SMTP connections for [`crate::email::SmtpChannel`]: opened with `TCP_NODELAY` and
//! pooled, on lettre's SMTP client.
//!
//! Why not lettre's own transport: it opens its sockets with Nagle's algorithm on, and
//! writes a message's body and its closing `.` separately; the `.` then waits for the
//! server to acknowledge the body, which servers delay (40 ms on Linux), so every
//! message took at least 40 ms on an otherwise idle connection. Here the socket is
//! opened by us, with `TCP_NODELAY`, and handed to lettre's connection, which speaks
//! the protocol (EHLO, STARTTLS, AUTH, the message); implicit TLS (`smtps://`) is
//! tokio-rustls over that socket. Certificates are checked against the system's roots and
//! any authorities `ECOM_SMTP_CA_FILE` adds.

use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use rustls::pki_types::CertificateDer;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a connection is secured: as the URL's scheme and `tls=` say.
#[derive(Clone)]
enum Security {
    /// `smtp://`: plain.
    None,
    /// `smtp://…?tls=opportunistic`: STARTTLS when the server offers it.
    Opportunistic(TlsParameters),
    /// `smtp://…?tls=required` (or `starttls`): STARTTLS, or no connection.
    Required(TlsParameters),
    /// `smtps://`: TLS from the first byte, checked against the system's roots.
    Wrapper(Arc<rustls::ClientConfig>),
}

/// Where and how to connect, read from an SMTP URL in lettre's form
/// (`scheme://user:pass@host:port/ehlo-name?tls=…`), with lettre's default ports.
#[derive(Clone)]
pub(crate) struct Target {
    host: String,
    port: u16,
    security: Security,
    hello: ClientId,
    credentials: Option<Credentials>,
}

impl Target {
    /// `roots`: certificate authorities trusted beside the system's (a private relay's).
    pub(crate) fn parse(url: &str, roots: &[CertificateDer<'static>]) -> Result<Self, String> {
        let url = url::Url::parse(url).map_err(|e| e.to_string())?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or("no host")?;
        // `[::1]` in a URL, `::1` to connect to and to check a certificate against.
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let tls = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
        let params = || {
            let mut builder = TlsParameters::builder(host.clone());
            for root in roots {
                builder = builder.add_root_certificate(
                    lettre::transport::smtp::client::Certificate::from_der(root.to_vec())
                        .map_err(|e| format!("TLS: {e}"))?,
                );
            }
            builder.build().map_err(|e| format!("TLS: {e}"))
        };
        let (security, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => (Security::None, 25),
            ("smtp", Some("required" | "starttls")) => (Security::Required(params()?), 587),
            ("smtp", Some("opportunistic")) => (Security::Opportunistic(params()?), 587),
            ("smtps", None) => {
                let provider = rustls::crypto::CryptoProvider::get_default()
                    .cloned()
                    .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
                let verifier =
                    rustls_platform_verifier::Verifier::new_with_extra_roots(roots.iter().cloned(), provider.clone())
                        .map_err(|e| format!("TLS: {e}"))?;
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS: {e}"))?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
                    .with_no_client_auth();
                (Security::Wrapper(Arc::new(config)), 465)
            }
            (scheme, tls) => return Err(format!("scheme {scheme:?} with tls={tls:?} is not understood")),
        };
        let name = url.path().trim_matches('/');
        let hello = if name.is_empty() { ClientId::default() } else { ClientId::Domain(name.to_owned()) };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| "the user or password is not UTF-8 once percent-decoded".to_owned())
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(decode(url.username())?, decode(password)?)),
            None => None,
        };
        Ok(Self { port: url.port().unwrap_or(default_port), host, security, hello, credentials })
    }

    /// Opens a connection: TCP with `TCP_NODELAY`, TLS as asked, EHLO, AUTH.
    async fn connect(&self, timeout: Duration) -> Result<AsyncSmtpConnection, Failure> {
        let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .map_err(|_| Failure::Connect(std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out")))?
            .map_err(Failure::Connect)?;
        tcp.set_nodelay(true).map_err(Failure::Connect)?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Wrapper(config) => {
                // TLS before the greeting; lettre's connection then speaks SMTP inside it.
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| Failure::Connect(std::io::Error::other(e)))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(Failure::Connect)?;
                Box::new(Encrypted(tls))
            }
            _ => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await?;
        match &self.security {
            Security::Required(params) => conn.starttls(params.clone(), &self.hello).await?,
            Security::Opportunistic(params) if conn.can_starttls() => {
                conn.starttls(params.clone(), &self.hello).await?
            }
            _ => {}
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(conn)
    }
}

/// Why a message could not be sent: the socket would not connect, or lettre's client
/// (TLS, the server's replies) failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("connection: {0}")]
    Connect(std::io::Error),
    #[error(transparent)]
    Smtp(#[from] SmtpError),
}

impl Failure {
    /// A 5xx reply: trying again will not change it.
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(self, Failure::Smtp(e) if e.is_permanent())
    }
}

/// An implicit-TLS socket, as the stream lettre's connection takes.
#[derive(Debug)]
struct Encrypted(tokio_rustls::client::TlsStream<tokio::net::TcpStream>);

impl AsyncTokioStream for Encrypted {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for Encrypted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Encrypted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Idle connections, reused message after message. A connection idle for a while is
/// checked with NOOP before it is used (servers close idle ones); one idle too long is
/// closed. A connection that failed is never put back.
pub(crate) struct Pool {
    target: Target,
    timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

/// Reused without a check when idle for less than this.
const FRESH: Duration = Duration::from_secs(5);
/// Closed when idle for longer than this.
const STALE: Duration = Duration::from_secs(60);

impl Pool {
    pub(crate) fn new(target: Target, timeout: Duration, max_idle: usize) -> Self {
        Self { target, timeout, max_idle, idle: Mutex::new(Vec::new()) }
    }

    fn pop(&self) -> Option<(AsyncSmtpConnection, Instant)> {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()
    }

    async fn checkout(&self) -> Result<AsyncSmtpConnection, Failure> {
        while let Some((mut conn, since)) = self.pop() {
            let idle = since.elapsed();
            if idle > STALE {
                conn.abort().await;
                continue;
            }
            if idle < FRESH || conn.test_connected().await {
                return Ok(conn);
            }
        }
        self.target.connect(self.timeout).await
    }

    fn recycle(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push((conn, Instant::now()));
        }
    }

    /// Sends one message on a pooled (or new) connection; the server's reply.
    pub(crate) async fn send(&self, message: &lettre::Message) -> Result<Response, Failure> {
        let mut conn = self.checkout().await?;
        let sent = conn.send(message.envelope(), &message.formatted()).await?;
        self.recycle(conn);
        Ok(sent)
    }
}
