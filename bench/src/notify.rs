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
    {
        let (count, bytes, path) = (count.clone(), bytes.clone(), count_file.to_owned());
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

/// What the sink has received so far: (messages, bytes).
fn sink_count(count_file: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(count_file).unwrap_or_default();
    let mut parts = text.split_whitespace().map(|p| p.parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Writes `notifications` order events (copies of the store's real `order.placed` and
/// `order.paid` events, each of which makes one email to the shopper) into the outbox
/// in batches of 500 per transaction, then waits until the sink has counted that many
/// more messages. Prints JSON.
pub async fn notify_events(
    url: &str,
    store: &str,
    notifications: u64,
    count_file: &str,
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
    let (before, _) = sink_count(count_file);
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
            eprintln!("written {written} events; sink has {}", sink_count(count_file).0 - before);
            progress = Instant::now();
        }
    }
    let inserted = start.elapsed();
    let deadline = Duration::from_secs(timeout_secs);
    let mut first_seen: Option<Duration> = None;
    loop {
        let (now, _) = sink_count(count_file);
        let done = now.saturating_sub(before);
        if done > 0 && first_seen.is_none() {
            first_seen = Some(start.elapsed());
        }
        if done >= notifications {
            break;
        }
        if start.elapsed() > deadline {
            bail!("only {done} of {notifications} emails reached the sink after {timeout_secs} s");
        }
        if progress.elapsed() > Duration::from_secs(10) {
            eprintln!("sink has {done} of {notifications} ({:.0} s)", start.elapsed().as_secs_f64());
            progress = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = start.elapsed();
    let (after, bytes) = sink_count(count_file);
    let txn = db.platform_txn().await?;
    let pending = ecom_store::notifications::count_pending(&txn).await?;
    let failed = ecom_store::notifications::count_failed(&txn, None).await?;
    txn.commit().await?;
    let result = serde_json::json!({
        "notifications": notifications,
        "received": after - before,
        "bytes_received": bytes,
        "insert_secs": inserted.as_secs_f64(),
        "first_email_secs": first_seen.map(|d| d.as_secs_f64()),
        "total_secs": total.as_secs_f64(),
        "per_sec": notifications as f64 / total.as_secs_f64(),
        "still_pending": pending,
        "failed": failed,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
