//! The notification benchmark's two halves: a fast SMTP sink that counts what it
//! receives, and the driver that writes order events into the outbox and times until
//! the sink has every email they cause.

use anyhow::{Context, bail};
use ecom_store::{Db, DbOptions, tenants};
use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A minimal SMTP server (RFC 5321 commands lettre sends: EHLO/HELO, MAIL, RCPT, DATA,
/// RSET, NOOP, QUIT) that accepts every message, counts it, and writes the count to
/// `count_file` ten times a second. Messages are read to the end and thrown away. A
/// thread per connection (the dispatcher keeps a small pool of them open).
pub fn smtp_sink(listen: &str, count_file: &str) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let count = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    write_counts(count.clone(), bytes.clone(), count_file.to_owned());
    eprintln!("smtp sink listening on {listen}");
    for socket in listener.incoming() {
        let socket = socket?;
        let (count, bytes) = (count.clone(), bytes.clone());
        std::thread::spawn(move || {
            if let Err(e) = session(socket, &count, &bytes) {
                eprintln!("smtp sink: session ended: {e}");
            }
        });
    }
    Ok(())
}

fn session(socket: std::net::TcpStream, count: &AtomicU64, bytes: &AtomicU64) -> anyhow::Result<()> {
    socket.set_nodelay(true)?;
    let mut write = socket.try_clone()?;
    let mut read = BufReader::with_capacity(64 * 1024, socket);
    write.write_all(b"220 sink ESMTP ready\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 52428800\r\n",
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n")?;
                let mut size = 0u64;
                loop {
                    line.clear();
                    if read.read_line(&mut line)? == 0 {
                        bail!("connection closed inside DATA");
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    size += line.len() as u64;
                }
                let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                bytes.fetch_add(size, Ordering::Relaxed);
                write.write_all(format!("250 OK queued as {n}\r\n").as_bytes())?;
                continue;
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => b"502 not implemented\r\n",
        };
        write.write_all(reply)?;
    }
}

/// A minimal HTTP/1.1 server standing in for Twilio's Messages API: every `POST`
/// gets `201` and a JSON body with a message `sid`, and is counted (the count written
/// to `count_file` like the SMTP sink's). Keep-alive, `Content-Length` bodies only (what
/// the SMS channel sends); a thread per connection.
pub fn http_sink(listen: &str, count_file: &str) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let count = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    write_counts(count.clone(), bytes.clone(), count_file.to_owned());
    eprintln!("http sink listening on {listen}");
    for socket in listener.incoming() {
        let socket = socket?;
        let (count, bytes) = (count.clone(), bytes.clone());
        std::thread::spawn(move || {
            if let Err(e) = http_session(socket, &count, &bytes) {
                eprintln!("http sink: connection ended: {e}");
            }
        });
    }
    Ok(())
}

fn http_session(socket: std::net::TcpStream, count: &AtomicU64, bytes: &AtomicU64) -> anyhow::Result<()> {
    use std::io::Read;
    socket.set_nodelay(true)?;
    let mut write = socket.try_clone()?;
    let mut read = BufReader::with_capacity(64 * 1024, socket);
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let post = line.starts_with("POST ");
        let mut length = 0usize;
        loop {
            line.clear();
            if read.read_line(&mut line)? == 0 {
                bail!("connection closed inside the headers");
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().context("bad Content-Length")?;
            }
        }
        let mut body = vec![0u8; length];
        read.read_exact(&mut body)?;
        let (status, reply) = if post {
            let n = count.fetch_add(1, Ordering::Relaxed) + 1;
            bytes.fetch_add(length as u64, Ordering::Relaxed);
            ("201 Created", format!("{{\"sid\":\"SM{n:032x}\",\"status\":\"queued\"}}"))
        } else {
            ("405 Method Not Allowed", "{}".to_owned())
        };
        write.write_all(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                reply.len()
            )
            .as_bytes(),
        )?;
    }
}

/// Writes `messages bytes` to `path` ten times a second (through a rename, so a
/// reader never sees half a line).
fn write_counts(count: Arc<AtomicU64>, bytes: Arc<AtomicU64>, path: String) {
    std::thread::spawn(move || {
        let tmp = format!("{path}.tmp");
        loop {
            let line = format!("{} {}\n", count.load(Ordering::Relaxed), bytes.load(Ordering::Relaxed));
            if std::fs::write(&tmp, line).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

/// What the sink has received so far: (messages, bytes).
fn sink_count(count_file: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(count_file).unwrap_or_default();
    let mut parts = text.split_whitespace().map(|p| p.parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The count files of the sinks a run waits for.
pub struct Sinks {
    pub email: String,
    /// The HTTP sink taking SMS, when the run texts too.
    pub sms: Option<String>,
}

impl Sinks {
    /// (emails, texts) received so far.
    fn counts(&self) -> (u64, u64) {
        (sink_count(&self.email).0, self.sms.as_deref().map_or(0, |f| sink_count(f).0))
    }
}

/// The shopper the SMS run texts: a customer account with a verified phone that asked
/// for SMS order updates, owning every order of the store (whose events are copied).
async fn make_texting_shopper(db: &Db, tenant: ecom_core::TenantId) -> anyhow::Result<()> {
    use ecom_store::entities::order;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let realm = ecom_core::Realm::Customer(tenant);
    let email = ecom_core::Email::parse("texting@example.com")?;
    let txn = db.tenant_txn(tenant).await?;
    let id = match ecom_store::accounts::find_by_email(&txn, realm, &email).await? {
        Some(c) => c.id,
        None => {
            let new = ecom_store::accounts::NewAccount {
                realm,
                email: &email,
                name: "Texting Shopper",
                password_hash: "!",
                role: ecom_core::StaffRole::Staff,
            };
            ecom_store::accounts::insert(&txn, new).await?
        }
    };
    ecom_store::channels::set_customer_phone(&txn, tenant, id.0, Some("+15005550100"), Some(chrono::Utc::now()))
        .await?;
    ecom_store::marketing::set_preferences(&txn, tenant, id.0, &[("order_updates", "sms", true)]).await?;
    order::Entity::update_many()
        .col_expr(order::Column::CustomerId, Expr::value(Some(id.0)))
        .filter(order::Column::TenantId.eq(tenant.0))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Writes `notifications` order events (copies of the store's real `order.placed` and
/// `order.paid` events, each of which makes one email to the shopper, and with
/// `sinks.sms` also a text message) into the outbox in batches of 500 per transaction,
/// then waits until the sinks have counted that many more messages each. Prints JSON.
pub async fn notify_events(
    url: &str,
    store: &str,
    notifications: u64,
    sinks: &Sinks,
    timeout_secs: u64,
) -> anyhow::Result<()> {
    let db = Db::connect(&DbOptions { url: url.into(), max_connections: 2, acquire_timeout: Duration::from_secs(30) })
        .await?;
    let tenant =
        tenants::find_by_slug(&db, store).await?.with_context(|| format!("no store {store}: seed it first"))?;
    let txn = db.tenant_txn(tenant.id).await?;
    let templates: Vec<(String, serde_json::Value)> = ecom_store::orders::outbox_of(&txn, tenant.id)
        .await?
        .into_iter()
        .filter(|e| e.topic == "order.placed" || e.topic == "order.paid")
        .map(|e| (e.topic, e.payload))
        .collect();
    txn.commit().await?;
    if templates.is_empty() {
        bail!("the store has no order events to copy: place a few orders first");
    }
    if sinks.sms.is_some() {
        make_texting_shopper(&db, tenant.id).await?;
    }
    let texts = u64::from(sinks.sms.is_some());
    let before = sinks.counts();
    let done = |now: (u64, u64)| (now.0.saturating_sub(before.0), now.1.saturating_sub(before.1));
    let start = Instant::now();
    let mut written = 0u64;
    let mut progress = Instant::now();
    while written < notifications {
        let batch = (notifications - written).min(500);
        let txn = db.tenant_txn(tenant.id).await?;
        for i in 0..batch {
            let (topic, payload) = &templates[((written + i) as usize) % templates.len()];
            ecom_store::orders::outbox(&txn, tenant.id, topic, payload.clone()).await?;
        }
        txn.commit().await?;
        written += batch;
        if progress.elapsed() > Duration::from_secs(10) {
            let (emails, sms) = done(sinks.counts());
            eprintln!("written {written} events; sinks have {emails} emails, {sms} texts");
            progress = Instant::now();
        }
    }
    let inserted = start.elapsed();
    let deadline = Duration::from_secs(timeout_secs);
    let mut first_seen: Option<Duration> = None;
    loop {
        let (emails, sms) = done(sinks.counts());
        if emails + sms > 0 && first_seen.is_none() {
            first_seen = Some(start.elapsed());
        }
        if emails >= notifications && sms >= notifications * texts {
            break;
        }
        if start.elapsed() > deadline {
            bail!(
                "only {emails} emails and {sms} texts of {notifications} each reached the sinks after {timeout_secs} s"
            );
        }
        if progress.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "sinks have {emails} emails, {sms} texts of {notifications} ({:.0} s)",
                start.elapsed().as_secs_f64()
            );
            progress = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = start.elapsed();
    let (emails, sms) = done(sinks.counts());
    let bytes = sink_count(&sinks.email).1;
    let txn = db.platform_txn().await?;
    let pending = ecom_store::notifications::count_pending(&txn).await?;
    let failed = ecom_store::notifications::count_failed(&txn, None).await?;
    txn.commit().await?;
    let result = serde_json::json!({
        "notifications": notifications,
        "received": emails,
        "texts_received": sms,
        "bytes_received": bytes,
        "insert_secs": inserted.as_secs_f64(),
        "first_email_secs": first_seen.map(|d| d.as_secs_f64()),
        "total_secs": total.as_secs_f64(),
        "per_sec": (emails + sms) as f64 / total.as_secs_f64(),
        "still_pending": pending,
        "failed": failed,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
