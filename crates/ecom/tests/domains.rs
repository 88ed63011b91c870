//! Custom domains and the platform dashboard, on SQLite and PostgreSQL: a merchant adds
//! a domain (pending, not routing), verifies it by a DNS TXT record answered by a REAL
//! DNS server on loopback (UDP, `ECOM_DNS_RESOLVER`) or over HTTP through the domain
//! itself (its A record points at the app), makes it primary (links, sitemap, robots,
//! canonical, manifest and order emails use it; the platform address redirects
//! storefront pages), and the operator's dashboard shows requests, orders and the bus.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Browser, PASSWORD, TestApp, store_with_stock};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

const DOMAIN: &str = "shop.demo-outfitters.test";

/// A tiny authoritative DNS server on a loopback UDP port: answers TXT and A queries
/// from its tables, NXDOMAIN for names it does not know. Stops with the test's runtime.
#[derive(Clone, Default)]
struct Dns {
    txt: Arc<Mutex<HashMap<String, Vec<String>>>>,
    a: Arc<Mutex<HashMap<String, Ipv4Addr>>>,
}

impl Dns {
    async fn start() -> (Dns, SocketAddr) {
        let dns = Dns::default();
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let tables = dns.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else { return };
                let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
                let answer = tables.answer(&query);
                let _ = socket.send_to(&answer.to_vec().unwrap(), peer).await;
            }
        });
        (dns, addr)
    }

    fn answer(&self, query: &Message) -> Message {
        let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
        reply.metadata.message_type = MessageType::Response;
        reply.metadata.authoritative = true;
        reply.metadata.recursion_desired = query.metadata.recursion_desired;
        reply.metadata.recursion_available = true;
        reply.queries = query.queries.clone();
        let mut known = false;
        for q in &query.queries {
            let name = q.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
            if let Some(values) = self.txt.lock().unwrap().get(&name) {
                known = true;
                if q.query_type() == RecordType::TXT {
                    for v in values {
                        reply.answers.push(Record::from_rdata(
                            q.name().clone(),
                            1,
                            RData::TXT(TXT::new(vec![v.clone()])),
                        ));
                    }
                }
            }
            if let Some(ip) = self.a.lock().unwrap().get(&name) {
                known = true;
                if q.query_type() == RecordType::A {
                    reply.answers.push(Record::from_rdata(q.name().clone(), 1, RData::A(A(*ip))));
                }
            }
        }
        if !known {
            reply.metadata.response_code = ResponseCode::NXDomain;
        }
        reply
    }

    fn set_txt(&self, name: &str, value: &str) {
        self.txt.lock().unwrap().insert(name.to_owned(), vec![value.to_owned()]);
    }

    fn point_here(&self, name: &str) {
        self.a.lock().unwrap().insert(name.to_owned(), Ipv4Addr::LOCALHOST);
    }
}

/// An app whose domain checks ask `dns`; private addresses allowed (the HTTP check
/// connects to the app on 127.0.0.1).
async fn spawn(backend: common::Backend) -> Option<(TestApp, Dns)> {
    let (dns, addr) = Dns::start().await;
    let app = TestApp::spawn_with(backend, |c| {
        c.dns_resolver = Some(addr.to_string());
        c.allow_private_network = true;
        c.bus_poll_ms = 10;
    })
    .await?;
    Some((app, dns))
}

macro_rules! with_dns {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some((app, dns)) = super::spawn($crate::common::Backend::Sqlite).await {
                    super::$name(app, dns).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some((app, dns)) = super::spawn($crate::common::Backend::Postgres).await {
                    super::$name(app, dns).await;
                }
            }
        }
    };
}

async fn merchant(app: &TestApp, extra_hosts: &[&str]) -> Browser {
    let b = app.browser(extra_hosts);
    assert_eq!(b.login("demo.localhost", "/merchant", "owner@demo.test", PASSWORD).await.status, 303);
    b
}

const PAGE: &str = "/merchant/settings/domains";

async fn add(b: &Browser, domain: &str) -> common::Page {
    b.submit("demo.localhost", PAGE, PAGE, &[("domain", domain)]).await
}

async fn only_domain(app: &TestApp, tenant: &ecom_core::Tenant) -> ecom_store::domains::DomainRow {
    let rows = ecom_store::domains::list(&app.db, tenant.id).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.into_iter().next().unwrap()
}

/// The page's text with HTML escapes of `/` and `=` undone.
fn text(page: &common::Page) -> String {
    page.body.replace("&#x2f;", "/").replace("&#x3d;", "=")
}

async fn a_domain_verified_by_dns_txt_routes_only_once_verified(app: TestApp, dns: Dns) {
    let demo = app.store("demo", "Demo Outfitters").await;
    let b = merchant(&app, &[DOMAIN]).await;

    let added = add(&b, "  Shop.Demo-Outfitters.TEST. ").await;
    assert_eq!(added.status, 303, "{}", added.body);
    let row = only_domain(&app, &demo).await;
    assert_eq!((row.domain.as_str(), row.status.as_str()), (DOMAIN, "pending"));
    assert_eq!(row.token.len(), 32);
    let page = b.get("demo.localhost", PAGE).await;
    let body = text(&page);
    assert!(body.contains(&format!("_ecom-verify.{DOMAIN}")), "{body}");
    assert!(body.contains(&format!("ecom-verify={}", row.token)));
    assert!(body.contains(&format!("/.well-known/ecom-verify/{}", row.token)));
    assert!(body.contains("pending"));

    // Pending: the domain does not reach the store, and a TLS proxy asking whether
    // to get a certificate for it is told no.
    assert_eq!(b.get(DOMAIN, "/").await.status, 404);
    let ask = |domain: &str| {
        let b = &b;
        let url = b.url("localhost", &format!("/tls/ask?domain={domain}"));
        async move { b.client.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(ask(DOMAIN).await, 404);
    assert_eq!(ask("demo.localhost").await, 200, "a store's platform address");
    assert_eq!(ask("localhost").await, 200, "the platform itself");
    for not_ours in ["nobody.localhost", "example.com", "", "demo.localhost:443", "*.localhost", "a/b"] {
        assert_eq!(ask(not_ours).await, 404, "{not_ours:?}");
    }

    // The wrong token is refused, and the domain still does not route.
    dns.set_txt(&format!("_ecom-verify.{DOMAIN}"), "ecom-verify=0123456789abcdef0123456789abcdef");
    let verify = format!("{PAGE}/{}/verify", row.id);
    let refused = b.submit("demo.localhost", PAGE, &verify, &[]).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(text(&refused).contains("holds another token"), "{}", refused.body);
    assert_eq!(only_domain(&app, &demo).await.status, "pending");
    assert_eq!(b.get(DOMAIN, "/").await.status, 404);

    // The right token verifies it; the host cache is cleared, so it routes at once.
    dns.set_txt(&format!("_ecom-verify.{DOMAIN}"), &format!("ecom-verify={}", row.token));
    let ok = b.submit("demo.localhost", PAGE, &verify, &[]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location(), Some("/merchant/settings/domains?notice=verified"));
    let verified = only_domain(&app, &demo).await;
    assert_eq!(verified.status, "verified");
    assert!(verified.verified_at.is_some());
    let home = b.get(DOMAIN, "/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Demo Outfitters"));
    assert_eq!(ask(DOMAIN).await, 200, "verified: a certificate may be issued");

    // Removing it stops the routing at once; all of it is in the audit log.
    let removed = b.submit("demo.localhost", PAGE, &format!("{PAGE}/{}/delete", row.id), &[]).await;
    assert_eq!(removed.status, 303);
    assert_eq!(b.get(DOMAIN, "/").await.status, 404);
    assert_eq!(ask(DOMAIN).await, 404);
    let audit = b.get("demo.localhost", "/merchant/audit").await.body;
    for action in ["domain.added", "domain.verified", "domain.removed"] {
        assert!(audit.contains(action), "{action} audited: {audit}");
    }
    app.stop().await;
}
with_dns!(a_domain_verified_by_dns_txt_routes_only_once_verified);

async fn a_domain_pointing_here_is_verified_over_http(app: TestApp, dns: Dns) {
    let demo = app.store("demo", "Demo Outfitters").await;
    let b = merchant(&app, &[DOMAIN, "elsewhere.test"]).await;
    assert_eq!(add(&b, DOMAIN).await.status, 303);
    let row = only_domain(&app, &demo).await;
    let verify = format!("{PAGE}/{}/verify", row.id);

    // Nothing published yet: both ways are explained.
    let not_yet = b.submit("demo.localhost", PAGE, &verify, &[]).await;
    assert_eq!(not_yet.status, 422);
    let why = text(&not_yet);
    assert!(why.contains("DNS: no TXT record") && why.contains("HTTP:"), "{why}");

    // The platform serves the token for the domain's own host only.
    let file = format!("/.well-known/ecom-verify/{}", row.token);
    let served = b.get(DOMAIN, &file).await;
    assert_eq!((served.status, served.body.as_str()), (200, format!("ecom-verify={}", row.token).as_str()));
    assert_eq!(b.get("elsewhere.test", &file).await.status, 404);
    assert_eq!(b.get(DOMAIN, "/.well-known/ecom-verify/0123456789abcdef0123456789abcdef").await.status, 404);

    // Once the domain's A record points at the platform, the GET through it proves it.
    dns.point_here(DOMAIN);
    let ok = b.submit("demo.localhost", PAGE, &verify, &[]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(only_domain(&app, &demo).await.status, "verified");
    assert_eq!(b.get(DOMAIN, "/").await.status, 200);
    let audit = b.get("demo.localhost", "/merchant/audit").await.body;
    assert!(audit.contains("by HTTP"), "{audit}");
    app.stop().await;
}
with_dns!(a_domain_pointing_here_is_verified_over_http);

async fn the_primary_domain_is_used_in_links_and_the_platform_address_redirects(app: TestApp, _dns: Dns) {
    let (demo, variant) = store_with_stock(&app, "demo", 10).await;
    ecom_store::tenants::add_domain(&app.db, demo.id, DOMAIN, false).await.unwrap();
    let b = merchant(&app, &[DOMAIN]).await;
    let row = only_domain(&app, &demo).await;
    let port = app.addr.port();
    let primary = format!("http://{DOMAIN}:{port}");

    // Before: links use the address the page was asked on, and nothing redirects.
    assert_eq!(b.get("demo.localhost", "/products/wool-hat").await.status, 200);
    let made = b.submit("demo.localhost", PAGE, &format!("{PAGE}/{}/primary", row.id), &[]).await;
    assert_eq!(made.status, 303, "{}", made.body);
    assert!(only_domain(&app, &demo).await.is_primary);

    // Storefront pages on the platform address move to the primary domain, path and
    // query kept; the panel, the APIs and assets stay.
    let moved = b.get("demo.localhost", "/products/wool-hat?variant=1").await;
    assert_eq!(moved.status, 301);
    assert_eq!(moved.location(), Some(format!("{primary}/products/wool-hat?variant=1").as_str()));
    assert_eq!(
        b.get("demo.localhost", "/account/login").await.location(),
        Some(format!("{primary}/account/login").as_str())
    );
    assert_eq!(b.get("demo.localhost", "/merchant").await.status, 200);
    assert_eq!(b.get("demo.localhost", "/static/app.css").await.status, 200);
    let api = b
        .client
        .post(b.url("demo.localhost", "/graphql"))
        .json(&serde_json::json!({"query": "{ shop { name } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);

    // On the primary domain: canonical, Open Graph, sitemap, robots and manifest use it.
    let product = b.get(DOMAIN, "/products/wool-hat").await;
    assert_eq!(product.status, 200);
    let html = text(&product);
    assert!(html.contains(&format!("<link rel=\"canonical\" href=\"{primary}/products/wool-hat\">")), "{html}");
    assert!(html.contains(&format!("<meta property=\"og:url\" content=\"{primary}/products/wool-hat\">")));
    let sitemap = text(&b.get(DOMAIN, "/sitemap.xml").await);
    assert!(sitemap.contains(&format!("<loc>{primary}/products/wool-hat</loc>")), "{sitemap}");
    assert!(!sitemap.contains("demo.localhost"));
    let robots = b.get(DOMAIN, "/robots.txt").await.body;
    assert!(robots.contains(&format!("Sitemap: {primary}/sitemap.xml")), "{robots}");
    let manifest: serde_json::Value = serde_json::from_str(&b.get(DOMAIN, "/manifest.webmanifest").await.body).unwrap();
    assert_eq!(manifest["start_url"], format!("{primary}/"));
    assert_eq!(manifest["scope"], format!("{primary}/"));

    // The order email links to the order on the primary domain.
    let cart = common::ready_cart(&app, &demo, variant, 1).await;
    let manual = ecom_services::checkout::PaymentChoice { provider: "manual".into(), token: String::new() };
    let placed = app.checkout.place_order(&demo, cart, None, &manual).await.unwrap();
    assert!(matches!(placed, ecom_services::checkout::PlaceOutcome::Placed { .. }));
    let mail = wait_for_mail(&app, "order_placed").await;
    assert!(mail.body.body_text.contains(&format!("{primary}/orders/")), "{}", mail.body.body_text);
    assert!(!mail.body.body_text.contains("demo.localhost"), "{}", mail.body.body_text);

    // Back to the platform address: no redirect, links on the asked host again.
    let back = b.submit("demo.localhost", PAGE, &format!("{PAGE}/platform"), &[]).await;
    assert_eq!(back.status, 303);
    assert_eq!(b.get("demo.localhost", "/products/wool-hat").await.status, 200);
    let robots = b.get("demo.localhost", "/robots.txt").await.body;
    assert!(robots.contains(&format!("Sitemap: http://demo.localhost:{port}/sitemap.xml")), "{robots}");
    let audit = b.get("demo.localhost", "/merchant/audit").await.body;
    assert!(audit.contains("domain.primary"), "{audit}");
    app.stop().await;
}
with_dns!(the_primary_domain_is_used_in_links_and_the_platform_address_redirects);

async fn wait_for_mail(app: &TestApp, template: &str) -> common::Logged {
    let start = std::time::Instant::now();
    loop {
        let rows = common::notification_log(&app.db, 100).await;
        if let Some(row) = rows.into_iter().find(|r| r.template == template) {
            return row;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "no {template} email");
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
}

async fn taken_and_invalid_domains_are_refused_with_a_clear_message(app: TestApp, _dns: Dns) {
    let demo = app.store("demo", "Demo Outfitters").await;
    let acme = app.store("acme", "Acme").await;
    ecom_store::tenants::add_domain(&app.db, acme.id, "acme-shop.test", false).await.unwrap();
    let b = merchant(&app, &[]).await;
    for (input, message) in [
        ("", "enter a domain"),
        ("not a domain", "is not a valid domain name"),
        ("https://shop.example.com/", "enter the domain alone"),
        ("example", "is not a valid domain name"),
        ("10.0.0.1", "not an IP address"),
        ("shop.localhost", "part of the platform"),
        ("acme-shop.test", "already used by another store"),
    ] {
        let page = add(&b, input).await;
        assert_eq!(page.status, 422, "{input:?}: {}", page.body);
        assert!(text(&page).contains(message), "{input:?} → {message}: {}", page.body);
    }
    assert!(ecom_store::domains::list(&app.db, demo.id).await.unwrap().is_empty(), "nothing was added");

    // An international name is kept as punycode and shown as typed.
    assert_eq!(add(&b, "Bücher.Example").await.status, 303);
    assert_eq!(only_domain(&app, &demo).await.domain, "xn--bcher-kva.example");
    let page = b.get("demo.localhost", PAGE).await;
    assert!(page.body.contains("bücher.example"));
    let again = add(&b, "xn--bcher-kva.example").await;
    assert_eq!(again.status, 422);
    assert!(text(&again).contains("already one of this store"));
    // An unverified domain cannot be primary.
    let row = only_domain(&app, &demo).await;
    let refused = b.submit("demo.localhost", PAGE, &format!("{PAGE}/{}/primary", row.id), &[]).await;
    assert_eq!(refused.status, 422);
    assert!(text(&refused).contains("not verified yet"));
    // Another store's domain id is not found here.
    let theirs = ecom_store::domains::list(&app.db, acme.id).await.unwrap().remove(0);
    let other = b.submit("demo.localhost", PAGE, &format!("{PAGE}/{}/delete", theirs.id), &[]).await;
    assert_eq!(other.status, 404);
    assert_eq!(ecom_store::domains::list(&app.db, acme.id).await.unwrap().len(), 1);
    app.stop().await;
}
with_dns!(taken_and_invalid_domains_are_refused_with_a_clear_message);

async fn the_dashboard_shows_requests_orders_and_the_bus(app: TestApp, _dns: Dns) {
    let (demo, variant) = store_with_stock(&app, "demo", 10).await;
    app.admin("root@ecom.test").await;
    let shopper = app.browser(&[]);
    for _ in 0..5 {
        assert_eq!(shopper.get("demo.localhost", "/products/wool-hat").await.status, 200);
    }
    let cart = common::ready_cart(&app, &demo, variant, 1).await;
    let manual = ecom_services::checkout::PaymentChoice { provider: "manual".into(), token: String::new() };
    app.checkout.place_order(&demo, cart, None, &manual).await.unwrap();

    let admin = app.browser(&[]);
    assert_eq!(admin.login("localhost", "/admin", "root@ecom.test", PASSWORD).await.status, 303);
    let page = admin.get("localhost", "/admin").await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    for title in ["Requests per minute", "p99 latency", "Orders per minute", "Outbox lag", "Dead letters"] {
        assert!(body.contains(title), "{title}: {body}");
    }
    assert!(body.contains("one node") && body.contains("all stores, all nodes"));
    assert!(body.contains("1 node reported in this hour"), "{body}");
    assert!(body.contains("<svg class=\"chart chart-requests\""));
    // The figures: the 5 product pages and the sign-in requests counted by this node,
    // the one order from the database, no dead letters, the outbox sampled.
    let current = |id: &str| -> String {
        let marker = format!("data-chart=\"{id}\">");
        let start = body.find(&marker).unwrap_or_else(|| panic!("{id} figure")) + marker.len();
        body[start..].split('<').next().unwrap().trim().to_owned()
    };
    let highest = |title: &str| -> f64 {
        let marker = format!("{title} over the last 60 minutes: now ");
        let start = body.find(&marker).unwrap_or_else(|| panic!("{title} summary")) + marker.len();
        let rest = &body[start..];
        let from = rest.find("highest ").unwrap() + "highest ".len();
        rest[from..].split(['.', '"']).next().unwrap().trim().parse().unwrap()
    };
    assert!(highest("Requests per minute") >= 7.0, "{body}");
    assert_eq!(highest("Orders per minute"), 1.0, "{body}");
    assert_eq!(current("dead"), "0");
    assert!(current("latency").ends_with("ms") || current("latency").ends_with(" s"), "{}", current("latency"));
    assert!(current("outbox").ends_with(" s"));
    assert!(body.contains("chart-bar") && body.contains("/static/dashboard.js"));
    assert!(body.contains("demo.localhost"), "the newest stores are listed");

    // Another node writes its minute (as every node does every 15 s): 50 slow
    // requests. The charts add the nodes up; its slow requests set the p99.
    let now = chrono::Utc::now().timestamp().div_euclid(60);
    let mut buckets = vec![0u64; 14];
    buckets[10] = 50; // ≤ 2.5 s
    // (This minute and the next, in case the clock turns before the page is drawn.)
    let other: Vec<_> = [now, now + 1]
        .map(|minute| ecom_store::stats::TrafficMinute { minute, requests: 50, buckets: buckets.clone() })
        .into();
    ecom_store::stats::save_node_traffic(&app.db, "node-elsewhere", &other, now - 120).await.unwrap();
    let page = admin.get("localhost", "/admin").await;
    let body = &page.body;
    assert!(body.contains("all nodes") && body.contains("2 nodes reported in this hour"), "{body}");
    let marker = "Requests per minute over the last 60 minutes: now ";
    let start = body.find(marker).unwrap() + marker.len();
    let now_requests: f64 = body[start..].split([',', ' ']).next().unwrap().parse().unwrap();
    assert!(now_requests >= 50.0, "both nodes counted: {now_requests}");
    assert!(body.contains("p99 latency over the last 60 minutes: now 2.5 s"), "{body}");

    // The refresh fragment, for signed-in operators only.
    let fragment = admin.get("localhost", "/admin/dashboard/charts").await;
    assert_eq!(fragment.status, 200);
    assert!(fragment.body.contains("Orders per minute") && !fragment.body.contains("<html"));
    assert_eq!(app.browser(&[]).get("localhost", "/admin/dashboard/charts").await.status, 303);
    assert_eq!(shopper.get("localhost", "/static/dashboard.js").await.status, 200);
    app.stop().await;
}
with_dns!(the_dashboard_shows_requests_orders_and_the_bus);
