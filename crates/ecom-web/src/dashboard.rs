//! The platform dashboard on the super-admin home: requests per minute and p99
//! latency of every node (each keeps an in-memory ring of per-minute counters and a
//! latency histogram and writes it to `node_traffic` every 15 s; the dashboard adds
//! the nodes' histograms up, so the p99 is the cluster's), orders per minute (all
//! stores, from the database), outbox lag and dead letters (from the bus tables,
//! sampled each minute on the node drawing the page). Charts are server-rendered SVG;
//! `dashboard.js` swaps in fresh ones every 10 s.

use crate::auth::SignedIn;
use crate::error::WebResult;
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use minijinja::context;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Minutes kept: two hours.
const KEEP: usize = 120;
/// Minutes shown.
const SHOWN: i64 = 60;
/// Latency bucket upper bounds in milliseconds; one more bucket counts the rest.
const BOUNDS_MS: [f64; 13] = [1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0];

#[derive(Debug, Clone, Default)]
struct Minute {
    /// Minutes since the Unix epoch.
    at: i64,
    requests: u64,
    buckets: [u64; BOUNDS_MS.len() + 1],
    outbox_lag_secs: Option<f64>,
    dead_letters: Option<u64>,
}

/// The 99th percentile of a minute's `requests` as the upper bound of the histogram
/// bucket it falls in (`None` without requests); above the last bound it is reported
/// as that bound.
fn p99_ms(requests: u64, buckets: &[u64]) -> Option<f64> {
    if requests == 0 {
        return None;
    }
    let rank = (requests as f64 * 0.99).ceil() as u64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(BOUNDS_MS.get(i).copied().unwrap_or(BOUNDS_MS[BOUNDS_MS.len() - 1]));
        }
    }
    None
}

/// This node's per-minute request series, and its name in `node_traffic`. Cheap to
/// clone; shared by every request.
#[derive(Clone)]
pub struct Traffic {
    ring: Arc<Mutex<VecDeque<Minute>>>,
    node: Arc<str>,
}

impl Default for Traffic {
    fn default() -> Self {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let node = format!("node-{}-{}", std::process::id(), &id[id.len() - 8..]);
        Self { ring: Arc::default(), node: node.into() }
    }
}

fn minute_now() -> i64 {
    Utc::now().timestamp().div_euclid(60)
}

impl Traffic {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the current minute's slot, opening it (and dropping the oldest) as
    /// time moves on.
    fn with_current(&self, f: impl FnOnce(&mut Minute)) {
        let now = minute_now();
        let Ok(mut ring) = self.ring.lock() else { return };
        if ring.back().is_none_or(|m| m.at != now) {
            if ring.len() >= KEEP {
                ring.pop_front();
            }
            ring.push_back(Minute { at: now, ..Minute::default() });
        }
        if let Some(slot) = ring.back_mut() {
            f(slot);
        }
    }

    /// Counts one request that took `elapsed`.
    pub fn record(&self, elapsed: Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        let bucket = BOUNDS_MS.iter().position(|b| ms <= *b).unwrap_or(BOUNDS_MS.len());
        self.with_current(|m| {
            m.requests += 1;
            m.buckets[bucket] += 1;
        });
    }

    /// Notes the bus's state for the current minute.
    pub fn record_bus(&self, outbox_lag_secs: f64, dead_letters: u64) {
        self.with_current(|m| {
            m.outbox_lag_secs = Some(outbox_lag_secs);
            m.dead_letters = Some(dead_letters);
        });
    }

    /// Every 15 s until aborted: writes this node's current and previous minute to
    /// `node_traffic` (and drops rows older than two hours), and every other tick
    /// samples the bus, so the charts have a point per minute even when nobody
    /// watches the dashboard.
    pub fn spawn_sampler(self, db: ecom_store::Db) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            for n in 0u64.. {
                tick.tick().await;
                if let Err(e) = self.flush(&db).await {
                    tracing::warn!(error = %e, "writing this node's traffic for the dashboard failed");
                }
                if n % 2 == 0 {
                    match ecom_store::stats::bus_health(&db).await {
                        Ok((lag, dead)) => self.record_bus(lag, dead),
                        Err(e) => tracing::warn!(error = %e, "sampling the bus for the dashboard failed"),
                    }
                }
            }
        })
    }

    /// Writes this node's current and previous minute to `node_traffic`.
    pub async fn flush(&self, db: &ecom_store::Db) -> Result<(), ecom_store::StoreError> {
        let now = minute_now();
        let minutes: Vec<ecom_store::stats::TrafficMinute> = {
            let ring = self.ring.lock().map(|r| r.clone()).unwrap_or_default();
            ring.iter()
                .filter(|m| m.at >= now - 1)
                .map(|m| ecom_store::stats::TrafficMinute {
                    minute: m.at,
                    requests: m.requests,
                    buckets: m.buckets.to_vec(),
                })
                .collect()
        };
        ecom_store::stats::save_node_traffic(db, &self.node, &minutes, now - KEEP as i64).await
    }

    /// The last [`SHOWN`] minutes, oldest first, with empty minutes filled in.
    fn last_hour(&self) -> Vec<Minute> {
        let now = minute_now();
        let ring = self.ring.lock().map(|r| r.clone()).unwrap_or_default();
        (now - SHOWN + 1..=now)
            .map(|at| ring.iter().find(|m| m.at == at).cloned().unwrap_or(Minute { at, ..Minute::default() }))
            .collect()
    }
}

/// One chart, ready for the template: an SVG polyline (or bars) in a 600×160 box.
#[derive(serde::Serialize)]
struct Chart {
    id: &'static str,
    title: &'static str,
    scope: &'static str,
    unit: &'static str,
    /// The latest value, formatted.
    current: String,
    /// The y axis' top, formatted.
    max: String,
    /// `x,y` pairs for a line.
    points: String,
    bars: Vec<Bar>,
    /// A sentence for screen readers.
    summary: String,
}

#[derive(serde::Serialize)]
struct Bar {
    x: f64,
    y: f64,
    height: f64,
}

const W: f64 = 600.0;
const H: f64 = 160.0;

fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "ms" if v >= 1000.0 => format!("{:.1} s", v / 1000.0),
        "ms" => format!("{v:.1} ms"),
        "s" => format!("{v:.1} s"),
        _ => format!("{}", v.round() as i64),
    }
}

/// A "nice" axis top: 1, 2 or 5 times a power of ten, at least `v`.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let pow = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * pow).find(|m| *m >= v).unwrap_or(10.0 * pow)
}

fn chart(
    id: &'static str,
    title: &'static str,
    scope: &'static str,
    unit: &'static str,
    values: &[Option<f64>],
    as_bars: bool,
) -> Chart {
    let top = nice_max(values.iter().flatten().copied().fold(0.0, f64::max));
    let n = values.len().max(1) as f64;
    let step = W / n;
    let y = |v: f64| H - (v / top).min(1.0) * H;
    let (mut points, mut bars) = (Vec::new(), Vec::new());
    for (i, v) in values.iter().enumerate() {
        let Some(v) = *v else { continue };
        let x = i as f64 * step;
        if as_bars {
            if v <= 0.0 {
                continue;
            }
            bars.push(Bar { x: x + step * 0.15, y: y(v), height: H - y(v) });
        } else {
            points.push(format!("{:.1},{:.1}", x + step / 2.0, y(v)));
        }
    }
    let current = values.iter().rev().flatten().next().map_or_else(|| "no data".to_owned(), |v| fmt_value(*v, unit));
    let peak = values.iter().flatten().copied().fold(0.0, f64::max);
    Chart {
        id,
        title,
        scope,
        unit,
        summary: format!("{title} over the last {SHOWN} minutes: now {current}, highest {}.", fmt_value(peak, unit)),
        current,
        max: fmt_value(top, unit),
        points: points.join(" "),
        bars,
    }
}

fn minute_key(at: i64) -> String {
    Utc.timestamp_opt(at * 60, 0)
        .single()
        .map(|t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// Every chart of the dashboard, from the nodes' traffic, this node's bus samples and
/// the database.
async fn charts_context(state: &AppState) -> WebResult<minijinja::Value> {
    let (lag, dead) = ecom_store::stats::bus_health(&state.db).await?;
    state.traffic.record_bus(lag, dead);
    // This node's latest counts first, so the page is up to date at least for it.
    state.traffic.flush(&state.db).await?;
    let minutes = state.traffic.last_hour();
    let first = minutes.first().map_or(0, |m| m.at);
    let since = Utc.timestamp_opt(first * 60, 0).single().unwrap_or_else(Utc::now);
    let orders = ecom_store::stats::orders_per_minute(&state.db, since).await?;
    let (cluster, nodes) = ecom_store::stats::cluster_traffic(&state.db, first).await?;
    let traffic_at = |at: i64| cluster.iter().find(|t| t.minute == at);
    let requests: Vec<Option<f64>> =
        minutes.iter().map(|m| Some(traffic_at(m.at).map_or(0.0, |t| t.requests as f64))).collect();
    let p99: Vec<Option<f64>> =
        minutes.iter().map(|m| traffic_at(m.at).and_then(|t| p99_ms(t.requests, &t.buckets))).collect();
    let scope: &'static str = if nodes > 1 { "all nodes" } else { "one node" };
    let orders: Vec<Option<f64>> = minutes
        .iter()
        .map(|m| {
            let key = minute_key(m.at);
            Some(orders.iter().find(|(k, _)| *k == key).map_or(0.0, |(_, n)| *n as f64))
        })
        .collect();
    let lags: Vec<Option<f64>> = minutes.iter().map(|m| m.outbox_lag_secs).collect();
    let deads: Vec<Option<f64>> = minutes.iter().map(|m| m.dead_letters.map(|d| d as f64)).collect();
    let charts = vec![
        chart("requests", "Requests per minute", scope, "", &requests, true),
        chart("latency", "p99 latency", scope, "ms", &p99, false),
        chart("orders", "Orders per minute", "all stores, all nodes", "", &orders, true),
        chart("outbox", "Outbox lag", "oldest unpublished event", "s", &lags, false),
        chart("dead", "Dead letters", "waiting in the panel", "", &deads, false),
    ];
    let updated = Utc::now().format("%H:%M:%S UTC").to_string();
    Ok(context! {
        charts => crate::templates::ser(&charts), updated, width => W, height => H, minutes => SHOWN, nodes,
    })
}

/// `/admin`: the dashboard, then the newest stores.
pub async fn home(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    let stores = ecom_store::tenants::list(&state.db, 10, 0).await?;
    let store_count = ecom_store::tenants::count(&state.db).await?;
    let port = page.ctx.host.0.rsplit_once(':').map(|(_, p)| format!(":{p}")).unwrap_or_default();
    let stores: Vec<_> = stores
        .iter()
        .map(|t| {
            context! {
                slug => t.slug.as_str(), name => t.name.clone(), status => t.status.as_str(),
                currency => t.currency.code(), locale => t.locale.as_str(),
                url => state.directory.store_url(t, &state.config.public_scheme, &port),
            }
        })
        .collect();
    let dash = charts_context(&state).await?;
    Ok(page.page("admin/home.html", context! { stores, store_count, page_title => "Platform", ..dash }))
}

/// `/admin/dashboard/charts`: the charts alone, for the 10-second refresh.
pub async fn charts(State(state): State<AppState>, _page: SignedIn) -> WebResult<Response> {
    let dash = charts_context(&state).await?;
    let mut resp = crate::templates::render("admin/_charts.html", dash).into_response();
    resp.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_is_the_bucket_bound_of_the_99th_percentile() {
        let t = Traffic::new();
        for _ in 0..98 {
            t.record(Duration::from_micros(800));
        }
        t.record(Duration::from_millis(40));
        t.record(Duration::from_millis(400));
        let last = t.last_hour().pop().unwrap();
        assert_eq!(last.requests, 100);
        assert_eq!(p99_ms(last.requests, &last.buckets), Some(50.0));
        assert_eq!(p99_ms(0, &[]), None);
        assert_eq!(nice_max(37.0), 50.0);
        assert_eq!(nice_max(0.0), 1.0);
    }
}
