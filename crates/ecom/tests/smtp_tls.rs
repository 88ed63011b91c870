//! Email over TLS, as `ECOM_SMTP_URL` asks for it: STARTTLS (`?tls=starttls`,
//! `?tls=opportunistic`) and TLS from the first byte (`smtps://`), to a REAL SMTP server
//! on loopback (aiosmtpd, `tools/smtp_sink.py`) holding a certificate from a private
//! authority, the way a company's own relay would. The client trusts that authority
//! through `ECOM_SMTP_CA_FILE` (beside the system's roots), read by the configuration
//! as `ecom serve` reads it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::smtp::{Authority, Sink, Tls};
use ecom::config::{Config, Secret};
use ecom_notify::{Channel, Outgoing, SendError, SmtpChannel};

fn config(url: &str, ca_file: Option<&std::path::Path>) -> Config {
    Config {
        smtp_url: Some(Secret(url.to_owned())),
        smtp_ca_file: ca_file.map(|p| p.to_str().unwrap().to_owned()),
        ..Config::default()
    }
}

/// The channel `ecom serve` builds from this URL, trusting `authority`.
fn channel(url: &str, authority: &Authority) -> SmtpChannel {
    let config = config(url, Some(&authority.pem()));
    config.validate().unwrap();
    SmtpChannel::new(config.smtp().unwrap().unwrap()).unwrap()
}

#[tokio::test]
async fn the_ca_file_setting_is_checked_at_start_up() {
    let authority = Authority::new("ECOM test mail authority");
    let error = |c: Config| c.validate().unwrap_err().to_string();
    let missing = std::path::Path::new("/nonexistent/ca.pem");
    let e = error(config("smtps://127.0.0.1:465", Some(missing)));
    assert!(e.contains("ECOM_SMTP_CA_FILE (/nonexistent/ca.pem): No such file"), "{e}");
    let not_pem = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_pem.path(), "hello").unwrap();
    let e = error(config("smtps://127.0.0.1:465", Some(not_pem.path())));
    assert!(e.contains("no certificate"), "{e}");
    let e = error(config("smtp://127.0.0.1:25", Some(&authority.pem())));
    assert!(e.contains("does not ask for TLS"), "{e}");
    let e = error(Config { smtp_ca_file: Some(authority.pem().to_str().unwrap().into()), ..Config::default() });
    assert!(e.contains("ECOM_SMTP_URL is not"), "{e}");
    config("smtp://127.0.0.1:587?tls=starttls", Some(&authority.pem())).validate().unwrap();
}

fn message(subject: &str) -> Outgoing {
    Outgoing {
        id: uuid::Uuid::new_v4(),
        to: "pat@example.com".into(),
        subject: subject.into(),
        text: "Your order is confirmed.".into(),
        html: "<p>Your order is <b>confirmed</b>.</p>".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn starttls_urls_send_over_tls_and_a_plain_url_is_refused_by_a_server_that_requires_it() {
    let ca = Authority::new("ECOM test mail authority");
    let Some(sink) = Sink::start_tls(Tls::StartTls, &ca.issue()) else { return };
    let port = sink.port();

    let id = channel(&format!("smtp://127.0.0.1:{port}?tls=starttls"), &ca)
        .send(&message("over STARTTLS"))
        .await
        .expect("sent over STARTTLS");
    assert!(id.contains("queued as sink-1"), "{id}");
    channel(&format!("smtp://127.0.0.1:{port}?tls=opportunistic"), &ca)
        .send(&message("over opportunistic STARTTLS"))
        .await
        .expect("sent: the server offers STARTTLS, so it is used");

    let messages = sink.wait_for(2).await;
    for m in &messages {
        assert_eq!(m["tls"], "TLSv1.3", "{m}");
        assert_eq!(m["content_type"], "multipart/alternative");
    }
    assert_eq!(messages[0]["subject"], "over STARTTLS");
    assert_eq!(messages[1]["subject"], "over opportunistic STARTTLS");

    // `smtp://` without `tls=` never upgrades: this server refuses the mail for good.
    let err = SmtpChannel::new(config(&format!("smtp://127.0.0.1:{port}"), None).smtp().unwrap().unwrap())
        .unwrap()
        .send(&message("in the clear"))
        .await
        .unwrap_err();
    assert!(matches!(&err, SendError::Permanent(e) if e.contains("STARTTLS")), "{err:?}");
    assert_eq!(sink.received(), 2, "nothing arrived in the clear");
}

#[tokio::test]
async fn smtps_urls_send_over_tls_from_the_first_byte() {
    let ca = Authority::new("ECOM test mail authority");
    let Some(sink) = Sink::start_tls(Tls::Implicit, &ca.issue()) else { return };
    let port = sink.port();
    let id = channel(&format!("smtps://127.0.0.1:{port}"), &ca).send(&message("over TLS")).await.expect("sent");
    assert!(id.contains("queued as sink-1"), "{id}");
    // A second message reuses the pooled TLS connection.
    channel(&format!("smtps://127.0.0.1:{port}"), &ca).send(&message("again")).await.expect("sent");
    let messages = sink.wait_for(2).await;
    assert!(messages.iter().all(|m| m["tls"] == "TLSv1.3"), "{messages:?}");
    assert_eq!(messages[0]["subject"], "over TLS");
    let part = messages[0]["parts"].as_array().unwrap();
    assert_eq!(part[1]["content_type"], "text/html");
    assert!(part[1]["body"].as_str().unwrap().contains("<b>confirmed</b>"));
}

#[tokio::test]
async fn a_certificate_from_an_authority_nobody_trusts_is_refused_and_nothing_is_sent() {
    let ca = Authority::new("ECOM test mail authority");
    let stranger = Authority::new("Someone else");
    let Some(starttls) = Sink::start_tls(Tls::StartTls, &stranger.issue()) else { return };
    let Some(implicit) = Sink::start_tls(Tls::Implicit, &stranger.issue()) else { return };
    for url in [
        format!("smtp://127.0.0.1:{}?tls=starttls", starttls.port()),
        format!("smtp://127.0.0.1:{}?tls=opportunistic", starttls.port()),
        format!("smtps://127.0.0.1:{}", implicit.port()),
    ] {
        let err = channel(&url, &ca).send(&message("must not arrive")).await.unwrap_err();
        // Transient: the operator may fix the relay's certificate, and the queue
        // keeps the message until then.
        assert!(err.is_transient(), "{url}: {err:?}");
        assert!(err.to_string().to_lowercase().contains("certificate"), "{url}: {err}");
    }
    assert_eq!((starttls.received(), implicit.received()), (0, 0));
}
