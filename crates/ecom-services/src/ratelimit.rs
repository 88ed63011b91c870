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
}

impl Limit {
    const ALL: [Limit; 5] =
        [Self::LoginPerIp, Self::LoginPerAccount, Self::SignupPerIp, Self::ResetPerIp, Self::ResetPerAccount];

    /// (burst, one more allowed every …)
    fn budget(self) -> (u32, Duration) {
        match self {
            Self::LoginPerIp => (20, Duration::from_secs(6)),
            Self::LoginPerAccount => (5, Duration::from_secs(60)),
            Self::SignupPerIp => (5, Duration::from_secs(60)),
            Self::ResetPerIp => (5, Duration::from_secs(60)),
            Self::ResetPerAccount => (3, Duration::from_secs(300)),
        }
    }
}

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// All the limiters of one app. Cheap to clone.
#[derive(Clone)]
pub struct RateLimits {
    limiters: Option<Arc<[Keyed; 5]>>,
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
