//! A real SMTP server (aiosmtpd, `tools/smtp_sink.py`) on a free loopback port, writing
//! what it receives to a temporary directory; killed on drop.

use serde_json::Value;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn sink_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/smtp_sink.py")
}

pub struct Sink {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Sink {
    /// Answers "try later" to the first `fail_first` messages. `None` (with a loud
    /// SKIPPED) when aiosmtpd is not installed; with `CI=true` a missing aiosmtpd fails
    /// the test instead.
    pub fn start(fail_first: u32) -> Option<Sink> {
        Self::spawn(&["--fail-first".to_owned(), fail_first.to_string()])
    }

    /// A sink that speaks TLS with `certificate`: STARTTLS (required before MAIL) or
    /// TLS from the first byte.
    pub fn start_tls(tls: Tls, certificate: &Certificate) -> Option<Sink> {
        let mode = match tls {
            Tls::StartTls => "starttls",
            Tls::Implicit => "implicit",
        };
        let path = |p: &Path| p.to_str().unwrap().to_owned();
        Self::spawn(&[
            "--tls".to_owned(),
            mode.to_owned(),
            "--cert".to_owned(),
            path(&certificate.cert),
            "--key".to_owned(),
            path(&certificate.key),
        ])
    }

    fn spawn(args: &[String]) -> Option<Sink> {
        let installed = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("aiosmtpd is not installed and CI=true: python3 -m pip install aiosmtpd");
            }
            eprintln!("SKIPPED: aiosmtpd is not installed (python3 -m pip install aiosmtpd); no SMTP test ran");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("python3")
            .arg(sink_script())
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .args(args)
            // The sink exits when its stdin closes, so it never outlives the test.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
        assert_eq!(ready.trim(), "READY", "the SMTP sink did not start");
        Some(Sink { child, dir, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        files
    }

    /// How many messages arrived so far (cheap: no parsing).
    pub fn received(&self) -> usize {
        self.files().len()
    }

    /// Every message received so far, parsed by Python's email package (subject,
    /// headers, parts).
    pub fn messages(&self) -> Vec<Value> {
        let files = self.files();
        if files.is_empty() {
            return Vec::new();
        }
        // One Python process for all of them: each start costs a good part of a second
        // on a busy machine.
        let out = Command::new("python3").arg(sink_script()).arg("--dump").args(&files).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits until `n` messages arrived and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            // Counted first, parsed once there: each parse is a Python process.
            if self.received() >= n {
                return self.messages();
            }
            assert!(start.elapsed() < Duration::from_secs(30), "{} of {n} messages arrived", self.received());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for a message whose subject contains `subject`.
    pub async fn wait_for_subject(&self, subject: &str) -> Value {
        let start = Instant::now();
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| m["subject"].as_str().unwrap().contains(subject)) {
                return m;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no message {subject:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a TLS sink secures its connections.
pub enum Tls {
    /// Plain at first; STARTTLS offered and required before MAIL.
    StartTls,
    /// TLS from the first byte (`smtps://`, port 465).
    Implicit,
}

/// A private certificate authority (made with the `openssl` command), as a company's
/// own mail relay would have.
pub struct Authority {
    dir: tempfile::TempDir,
}

/// A server certificate and its key, PEM files.
pub struct Certificate {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("the openssl command");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Authority {
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let subject = format!("/CN={name}");
        #[rustfmt::skip]
        openssl(dir.path(), &[
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", &subject,
        ]);
        Authority { dir }
    }

    /// The authority's certificate: what a client trusts.
    pub fn pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server certificate for 127.0.0.1 and localhost, signed by this authority.
    pub fn issue(&self) -> Certificate {
        let dir = self.dir.path();
        let n = std::fs::read_dir(dir).unwrap().count();
        let (key, csr, cert) = (format!("{n}.key"), format!("{n}.csr"), format!("{n}.pem"));
        #[rustfmt::skip]
        openssl(dir, &[
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", &key, "-out", &csr, "-subj", "/CN=localhost",
        ]);
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        #[rustfmt::skip]
        openssl(dir, &[
            "x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", &cert, "-days", "2", "-extfile", "ext.cnf",
        ]);
        Certificate { cert: dir.join(cert), key: dir.join(key) }
    }
}
