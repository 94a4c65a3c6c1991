//! A route's `rate_limit`, spent only by what verifies: the route's bucket is charged after the
//! signature check and before the request is queued, so unsigned junk never makes a genuine
//! delivery wait; the work of checking signatures is bounded per source instead, at ten times the
//! route's rate (a provider sending above that is refused by the route's bucket anyway).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use hookcatch::Reply;
use hookcatch::config::RateLimit;

/// How many times the route's rate one source may ask for a signature check.
const ATTEMPTS_PER_VERIFIED: NonZeroU32 = NonZeroU32::new(10).expect("ten is not zero");
/// Sources remembered before the idle ones are forgotten (a full bucket needs no memory).
const SOURCES_KEPT: usize = 10_000;

pub(crate) struct RouteLimit {
    verified: DefaultDirectRateLimiter,
    per_source: DefaultKeyedRateLimiter<String>,
}

impl RouteLimit {
    /// The limit `limit` describes, or none when it allows nothing to be counted.
    pub fn new(limit: &RateLimit) -> Option<RouteLimit> {
        let per_second = NonZeroU32::new(limit.per_second)?;
        let burst = NonZeroU32::new(limit.burst())?;
        let times = |n: NonZeroU32| n.saturating_mul(ATTEMPTS_PER_VERIFIED);
        Some(RouteLimit {
            verified: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
            per_source: RateLimiter::keyed(
                Quota::per_second(times(per_second)).allow_burst(times(burst)),
            ),
        })
    }

    /// Before the body is read: a 429 when `source` has asked for more checks than it may.
    pub fn attempt(&self, source: &str) -> Option<Reply> {
        if self.per_source.len() > SOURCES_KEPT {
            self.per_source.retain_recent();
        }
        let refused = self.per_source.check_key(&source.to_owned()).err()?;
        Some(too_many(
            refused.wait_time_from(DefaultClock::default().now()),
        ))
    }

    /// After the signature check, before queuing: a 429 when the route's verified budget is spent.
    pub fn admit(&self) -> Option<Reply> {
        let refused = self.verified.check().err()?;
        Some(too_many(
            refused.wait_time_from(DefaultClock::default().now()),
        ))
    }
}

/// A 429 whose `Retry-After` is `wait` in whole seconds, rounded up: a sender that honours it
/// finds a token when it returns.
fn too_many(wait: Duration) -> Reply {
    let mut refused = Reply::error(429, "rate_limited");
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    refused
        .headers
        .push(("retry-after".into(), seconds.max(1).to_string()));
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_spends_its_sources_attempts_never_the_routes_verified_budget() {
        let limit = RouteLimit::new(&RateLimit {
            per_second: 1,
            burst: Some(2),
        })
        .unwrap();
        // Twenty attempts from one source pass to the signature check, the next is refused there.
        for _ in 0..20 {
            assert!(limit.attempt("203.0.113.9").is_none());
        }
        let refused = limit
            .attempt("203.0.113.9")
            .expect("over ten times the burst");
        assert_eq!(refused.status, 429);
        // Another source, and the route's own budget, are untouched.
        assert!(limit.attempt("198.51.100.7").is_none());
        assert!(limit.admit().is_none());
        assert!(limit.admit().is_none());
        let over = limit.admit().expect("the burst of two is spent");
        assert!(
            over.headers
                .iter()
                .any(|(name, value)| name == "retry-after" && value == "1")
        );
    }
}
