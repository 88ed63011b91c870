//! Rate limits on sign-in, sign-up and password reset, per client IP and per account.
//!
//! The counters live in this process. With several nodes behind a load balancer each
//! node counts on its own, so the effective limit is multiplied by the node count;
//! a Redis-backed store behind the same interface is the fix when that matters.

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// The limited actions and their budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    LoginPerIp,
    LoginPerAccount,
    SignupPerIp,
    ResetPerIp,
    ResetPerAccount,
    /// Staff invitations sent (and resent) by one store.
    InvitePerStore,
}

impl Limit {
    const ALL: [Limit; 6] = [
        Self::LoginPerIp,
        Self::LoginPerAccount,
        Self::SignupPerIp,
        Self::ResetPerIp,
        Self::ResetPerAccount,
        Self::InvitePerStore,
    ];

    /// (burst, one more allowed every …)
    fn budget(self) -> (u32, Duration) {
        match self {
            Self::LoginPerIp => (20, Duration::from_secs(6)),
            Self::LoginPerAccount => (5, Duration::from_secs(60)),
            Self::SignupPerIp => (5, Duration::from_secs(60)),
            Self::ResetPerIp => (5, Duration::from_secs(60)),
            Self::ResetPerAccount => (3, Duration::from_secs(300)),
            Self::InvitePerStore => (20, Duration::from_secs(180)),
        }
    }
}

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// All the limiters of one app. Cheap to clone.
#[derive(Clone)]
pub struct RateLimits {
    limiters: Option<Arc<[Keyed; 6]>>,
}

impl RateLimits {
    pub fn new(enabled: bool) -> Self {
        let limiters = enabled.then(|| {
            Arc::new(Limit::ALL.map(|l| {
                let (burst, period) = l.budget();
                let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
                let quota =
                    Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst);
                RateLimiter::keyed(quota)
            }))
        });
        Self { limiters }
    }

    /// Takes one attempt from `key`'s budget; `Err(seconds)` says how long to wait.
    pub fn check(&self, limit: Limit, key: &str) -> Result<(), u64> {
        let Some(limiters) = &self.limiters else {
            return Ok(());
        };
        let idx = Limit::ALL.iter().position(|l| *l == limit).unwrap_or(0);
        let limiter = &limiters[idx];
        limiter.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Drops counters that are back to full, so memory stays bounded by recent
    /// activity. Called periodically by a background task.
    pub fn prune(&self) {
        if let Some(limiters) = &self.limiters {
            for l in limiters.iter() {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_login_for_one_account_waits_about_a_minute() {
        let limits = RateLimits::new(true);
        for _ in 0..5 {
            assert_eq!(limits.check(Limit::LoginPerAccount, "ann@example.com"), Ok(()));
        }
        let wait = limits.check(Limit::LoginPerAccount, "ann@example.com");
        assert!(matches!(wait, Err(s) if (55..=60).contains(&s)), "{wait:?}");
        assert_eq!(limits.check(Limit::LoginPerAccount, "bob@example.com"), Ok(()));
        assert_eq!(RateLimits::new(false).check(Limit::LoginPerAccount, "x"), Ok(()));
    }
}

/// A leaky bucket's size and how fast it drains, in cost points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSize {
    /// Most points a bucket holds: the largest burst.
    pub capacity: f64,
    /// Points drained per second: the sustained rate.
    pub restore_per_sec: f64,
}

/// How full a bucket is after a request, as reported to API clients (the shape of
/// Shopify's `throttleStatus`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStatus {
    pub maximum_available: f64,
    pub currently_available: f64,
    pub restore_rate: f64,
}

#[derive(Debug)]
struct Bucket {
    /// Points in the bucket (used up) at `at`.
    level: f64,
    at: std::time::Instant,
}

/// Leaky buckets for API query cost, keyed by caller and by store: a request costing
/// `n` points goes through only when every bucket it is counted in has room for `n`,
/// and then fills each by `n`; buckets drain at their restore rate. As the login
/// limits, per node: several nodes each count their own share.
#[derive(Clone)]
pub struct CostBuckets {
    buckets: moka::sync::Cache<String, Arc<std::sync::Mutex<Bucket>>>,
}

impl Default for CostBuckets {
    fn default() -> Self {
        Self::new()
    }
}

impl CostBuckets {
    pub fn new() -> Self {
        // A bucket idle this long has drained; forgetting it changes nothing.
        Self {
            buckets: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(Duration::from_secs(15 * 60))
                .build(),
        }
    }

    /// Takes `cost` from every bucket in `keys` if all have room, else from none.
    /// Returns whether it was taken and the first (caller's) bucket's status after.
    pub fn take(&self, keys: &[(&str, BucketSize)], cost: f64) -> (bool, Option<ThrottleStatus>) {
        let now = std::time::Instant::now();
        let handles: Vec<_> = keys
            .iter()
            .map(|(key, size)| {
                let b = self
                    .buckets
                    .get_with((*key).to_owned(), || Arc::new(std::sync::Mutex::new(Bucket { level: 0.0, at: now })));
                (b, *size)
            })
            .collect();
        // Lock in key order so two requests sharing buckets cannot deadlock.
        let mut order: Vec<usize> = (0..handles.len()).collect();
        order.sort_by_key(|i| keys[*i].0);
        let mut guards: Vec<Option<std::sync::MutexGuard<'_, Bucket>>> = (0..handles.len()).map(|_| None).collect();
        for i in order {
            guards[i] = Some(handles[i].0.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        }
        let mut fits = true;
        for (guard, (_, size)) in guards.iter_mut().zip(&handles) {
            let Some(b) = guard.as_mut() else { continue };
            let drained = now.saturating_duration_since(b.at).as_secs_f64() * size.restore_per_sec;
            b.level = (b.level - drained).max(0.0);
            b.at = now;
            fits &= b.level + cost <= size.capacity;
        }
        if fits {
            for b in guards.iter_mut().flatten() {
                b.level += cost;
            }
        }
        let status =
            guards.first().and_then(Option::as_ref).zip(handles.first()).map(|(b, (_, size))| ThrottleStatus {
                maximum_available: size.capacity,
                currently_available: (size.capacity - b.level).max(0.0).floor(),
                restore_rate: size.restore_per_sec,
            });
        (fits, status)
    }
}

#[cfg(test)]
mod bucket_tests {
    use super::*;

    #[test]
    fn a_bucket_takes_up_to_its_capacity_then_drains() {
        let buckets = CostBuckets::new();
        let small = BucketSize { capacity: 100.0, restore_per_sec: 1000.0 };
        let (ok, status) = buckets.take(&[("a", small)], 60.0);
        assert!(ok);
        assert_eq!(status.map(|s| s.currently_available), Some(40.0));
        let (ok, _) = buckets.take(&[("a", small)], 60.0);
        assert!(!ok, "60 more do not fit in 40");
        std::thread::sleep(Duration::from_millis(60));
        assert!(buckets.take(&[("a", small)], 60.0).0, "drained at 1000/s");
    }

    #[test]
    fn a_request_must_fit_every_bucket_and_fills_all_or_none() {
        let buckets = CostBuckets::new();
        let caller = BucketSize { capacity: 100.0, restore_per_sec: 0.001 };
        let store = BucketSize { capacity: 150.0, restore_per_sec: 0.001 };
        assert!(buckets.take(&[("client-1", caller), ("store", store)], 100.0).0);
        // Another caller of the same store: its own bucket is empty, the store's is not.
        let (ok, status) = buckets.take(&[("client-2", caller), ("store", store)], 60.0);
        assert!(!ok, "the store's bucket has 50 left");
        assert_eq!(status.map(|s| s.currently_available), Some(100.0), "client-2's bucket untouched");
        assert!(buckets.take(&[("client-2", caller), ("store", store)], 50.0).0);
        // The noisy store does not touch another store.
        assert!(buckets.take(&[("client-3", caller), ("other-store", store)], 100.0).0);
    }
}
