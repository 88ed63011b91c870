//! The binary as an operator meets it: help, bad configuration, migrate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::spawn_server;
use std::process::Command;

fn ecom() -> Command {
    common::ecom_command()
}

#[test]
fn help_explains_each_command() {
    let out = ecom().arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    for cmd in ["serve", "migrate", "config"] {
        assert!(text.contains(cmd), "--help mentions {cmd}: {text}");
    }
    let serve = String::from_utf8(ecom().args(["serve", "--help"]).output().unwrap().stdout).unwrap();
    assert!(serve.contains("--demo") && serve.contains("--listen") && serve.contains("--data-dir"));
}

#[test]
fn a_bad_config_value_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("ECOM_DATABASE_MAX_CONNECTIONS", "lots"),
        ("ECOM_LISTEN", "not-an-address"),
        ("ECOM_PLATFORM_DOMAIN", "https://shop.example.com/"),
        ("ECOM_SECRET_KEY", "too-short"),
        ("ECOM_LOG_FORMAT", "xml"),
        ("ECOM_DATABASE_URL", "mysql://root@localhost/x"),
        ("ECOM_DATABSE_URL", "sqlite://typo.db"),
    ];
    for (key, value) in cases {
        let out = ecom().current_dir(dir.path()).env(key, value).arg("migrate").output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}={value} must fail: {stderr}");
        assert!(stderr.contains(key), "the message names {key}: {stderr}");
        if key == "ECOM_SECRET_KEY" {
            assert!(!stderr.contains(value), "a secret never appears in messages");
        }
    }
    let toml = dir.path().join("bad.toml");
    std::fs::write(&toml, "rate_limits = \"sometimes\"\n").unwrap();
    let out = ecom().current_dir(dir.path()).args(["--config", toml.to_str().unwrap(), "migrate"]).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("rate_limits") && stderr.contains("bad.toml"), "{stderr}");
    let missing = ecom().current_dir(dir.path()).args(["--config", "nope.toml", "migrate"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn migrate_creates_the_sqlite_database_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = ecom().current_dir(dir.path()).args(["migrate", "--data-dir", "data"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("data/ecom.db").exists());
    assert!(
        dir.path().join("data/ecom.db-wal").exists() || {
            // WAL is a property of the file: check the header's read/write version bytes (2 = WAL).
            let header = std::fs::read(dir.path().join("data/ecom.db")).unwrap();
            header[18] == 2 && header[19] == 2
        }
    );
    // Running it again is a no-op.
    assert!(ecom().current_dir(dir.path()).args(["migrate", "--data-dir", "data"]).output().unwrap().status.success());
}

#[test]
fn serve_logs_json_with_request_ids_and_stops_cleanly_on_sigterm() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, mut stderr) = spawn_server(dir.path(), &[], &[]);
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nx-request-id: req-abc-123\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.to_ascii_lowercase().contains("x-request-id: req-abc-123"), "the request id is echoed: {resp}");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let code = child.wait().unwrap();
    assert!(code.success(), "exits 0 after SIGTERM: {code:?}");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let request_line = rest
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["span"]["request_id"] == "req-abc-123")
        .unwrap_or_else(|| panic!("a log line carries the request id: {rest}"));
    assert_eq!(request_line["span"]["route"], "/healthz");
    assert!(rest.contains("shutting down"), "{rest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_products_checks_every_line_then_imports_all() {
    let dir = tempfile::tempdir().unwrap();
    let config = ecom::config::Config { data_dir: dir.path().join("data"), ..Default::default() };
    let db = ecom::open_database(&config).await.unwrap();
    ecom_store::tenants::create(
        &db,
        &ecom_store::tenants::NewTenant {
            slug: ecom_core::Slug::parse("demo").unwrap(),
            name: "Demo".into(),
            currency: ecom_core::Currency::parse("USD").unwrap(),
            locale: ecom_core::Locale::parse("en").unwrap(),
        },
    )
    .await
    .unwrap();
    db.connection().clone().close().await.unwrap();
    let csv = dir.path().join("products.csv");
    std::fs::write(
        &csv,
        "Handle,Title,Option1 Name,Option1 Value,Variant Price,Variant Inventory Qty,Status\n\
         mug,Enamel Mug,Color,White,12.00,5,active\n\
         mug,,,Blue,12.00,3,\n\
         bowl,Stoneware Bowl,,,18.50,2,active\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "Handle,Title,Variant Price\nplate,,9\ncup,Cup,nine\n").unwrap();
    let run = |args: &[&str]| ecom().current_dir(dir.path()).env("ECOM_DATA_DIR", "data").args(args).output().unwrap();

    let out = run(&["import", "products", "--store", "demo", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("line 2") && stderr.contains("line 3") && stderr.contains("nothing was imported"),
        "{stderr}"
    );

    let out = run(&["import", "products", "--store", "nope", csv.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store with the slug \"nope\""));

    let out = run(&["import", "products", "--store", "demo", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 created, 0 updated"));
    // Each imported product told the integrations, in the import's transaction.
    let db = ecom::open_database(&config).await.unwrap();
    let demo = ecom_store::tenants::find_by_slug(&db, "demo").await.unwrap().unwrap();
    let txn = db.tenant_txn(demo.id).await.unwrap();
    let events = ecom_store::orders::outbox_of(&txn, demo.id).await.unwrap();
    txn.commit().await.unwrap();
    db.connection().clone().close().await.unwrap();
    let created: Vec<_> = events.iter().filter(|e| e.topic == "product.created").collect();
    assert_eq!(created.len(), 2, "{events:?}");
    let out = run(&["export", "products", "--store", "demo"]);
    let exported = String::from_utf8(out.stdout).unwrap();
    assert!(exported.contains("mug,Enamel Mug") && exported.contains("bowl,Stoneware Bowl"), "{exported}");
}

/// Headless Chromium walks a demo store: home → collection → product → variant → cart →
/// checkout with a test card → confirmation → the order in the merchant panel;
/// checks the manifest, the service worker and installability, then stops the server
/// and expects the offline page (tools/browser/e2e.mjs).
#[test]
fn a_browser_walks_the_demo_store_installs_it_and_sees_the_offline_page() {
    let tools = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/browser");
    let ready =
        std::path::Path::new("/usr/bin/chromium").exists() && tools.join("node_modules/playwright-core").exists();
    if !ready {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: Chromium and tools/browser/node_modules are required (.ci/run installs them)"
        );
        eprintln!("SKIPPED: Chromium or playwright-core missing (apt-get install chromium; npm ci in tools/browser)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, _stderr) = spawn_server(dir.path(), &["--demo"], &[("ECOM_RATE_LIMITS", "false")]);
    let out = Command::new("node")
        .current_dir(&tools)
        .args(["e2e.mjs", &format!("http://{addr}"), &child.id().to_string()])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stdout.contains("all checks passed"), "{stdout}\n{stderr}");
}

/// `ecom store create/list/suspend/resume` as an operator's script runs them: clear
/// errors and a non-zero exit on failure; the owner is invited by email; a suspended
/// store's storefront is closed.
#[tokio::test]
async fn operators_open_list_suspend_and_resume_stores() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| ecom().current_dir(dir.path()).env("ECOM_DATA_DIR", "data").args(args).output().unwrap();
    let text = |out: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    let create = |slug: &'static str, email: &'static str| {
        run(&["store", "create", "--slug", slug, "--name", "Shoe Shed", "--owner-email", email])
    };

    let out = create("shoe-shed", "owner@shoes.example");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("created store shoe-shed (Shoe Shed) at http://shoe-shed.localhost:8080/"),
        "{}",
        text(&out)
    );
    for (out, expect) in [
        (create("shoe-shed", "other@shoes.example"), "\"shoe-shed\" is taken"),
        (create("admin", "a@b.example"), "reserved"),
        (create("Not A Slug!", "a@b.example"), "Slug: use only"),
        (create("boots", "not-an-email"), "Email"),
        (run(&["store", "suspend", "nope"]), "no store with the slug \"nope\""),
    ] {
        assert!(!out.status.success(), "{}", text(&out));
        assert!(text(&out).contains(expect), "expected {expect:?} in: {}", text(&out));
    }

    let list = run(&["store", "list"]);
    assert!(list.status.success());
    let listed = text(&list);
    assert!(listed.contains("shoe-shed") && listed.contains("active") && listed.contains("1 store(s)"), "{listed}");

    // The owner was invited: a link to choose a password, valid for days.
    let config = ecom::config::Config { data_dir: dir.path().join("data"), ..Default::default() };
    let db = ecom::open_database(&config).await.unwrap();
    let mails = ecom_store::mailbox::list_all(&db, 10).await.unwrap();
    let invite = mails.iter().find(|m| m.to == "owner@shoes.example").expect("an invitation");
    assert!(invite.subject.contains("Shoe Shed"), "{}", invite.subject);
    assert!(invite.body_text.contains("http://shoe-shed.localhost:8080/merchant/reset?token="), "{}", invite.body_text);
    db.connection().clone().close().await.unwrap();

    let out = run(&["store", "suspend", "shoe-shed"]);
    assert!(out.status.success() && text(&out).contains("shoe-shed is now suspended"), "{}", text(&out));
    assert!(text(&run(&["store", "list"])).contains("suspended"));
    let db = ecom::open_database(&config).await.unwrap();
    let tenant = ecom_store::tenants::find_by_slug(&db, "shoe-shed").await.unwrap().unwrap();
    assert!(!tenant.is_open(), "suspended stores are closed");
    let logged: Vec<String> =
        ecom_store::tenants::operator_audit(&db, 10).await.unwrap().into_iter().map(|(_, a)| a.action).collect();
    assert_eq!(logged, ["store.suspended", "store.created"], "operator actions are audited");
    db.connection().clone().close().await.unwrap();
    let out = run(&["store", "resume", "shoe-shed"]);
    assert!(out.status.success() && text(&out).contains("shoe-shed is now active"), "{}", text(&out));
}

/// On PostgreSQL, `ecom serve` warns at start when the server's autovacuum is off (the
/// queue tables bloat without it), and says nothing of it when it is on.
#[tokio::test]
async fn serve_warns_when_postgres_autovacuum_is_off() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = common::fresh_database(common::Backend::Postgres, dir.path()).await else { return };
    let (mut child, _addr, _stderr, before) =
        common::spawn_server_logged(dir.path(), &[], &[("ECOM_DATABASE_URL", url.as_str())]);
    let _ = child.kill();
    let _ = child.wait();
    let warned = before.iter().any(|v| {
        v["level"] == "WARN" && v["fields"]["message"].as_str().is_some_and(|m| m.contains("autovacuum is off"))
    });
    // The setting as the server has it, read apart from `ecom`.
    let mut admin = sqlx::PgConnection::connect(common::PG_ADMIN_URL).await.unwrap();
    let setting: String = sqlx::query_scalar("SHOW autovacuum").fetch_one(&mut admin).await.unwrap();
    assert_eq!(warned, setting == "off", "autovacuum = {setting}; the log before ready: {before:?}");
}
