//! The binary as an operator meets it: help, bad configuration, migrate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn ecom() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecom"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ECOM_") {
            cmd.env_remove(key);
        }
    }
    cmd
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
    assert!(dir.path().join("data/ecom.db-wal").exists() || {
        // WAL is a property of the file: check the header's read/write version bytes (2 = WAL).
        let header = std::fs::read(dir.path().join("data/ecom.db")).unwrap();
        header[18] == 2 && header[19] == 2
    });
    // Running it again is a no-op.
    assert!(ecom().current_dir(dir.path()).args(["migrate", "--data-dir", "data"]).output().unwrap().status.success());
}
