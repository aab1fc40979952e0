//! Per-tenant request rate: a token bucket per tenant holding up to two seconds of its rate.
//! In memory per instance, like the login throttle.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

const MAX_TENANTS: usize = 100_000;

struct Bucket {
    tokens: f64,
    at: Instant,
    /// The rate last taken at: what the tenant's plan allows.
    rate: f64,
}

/// What a tenant has left, as seed 003's `X-RateLimit-*` headers say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// The most requests the bucket holds (two seconds of the rate).
    pub limit: u64,
    /// Requests that would be admitted now.
    pub remaining: u64,
    /// Seconds until the bucket is full again.
    pub reset: u64,
}

#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

impl RateLimiter {
    /// Takes one token for `tenant` at `per_second`, or says how long until one is available.
    pub fn take(&self, tenant: Uuid, per_second: u32, now: Instant) -> Result<(), Duration> {
        let rate = f64::from(per_second.max(1));
        let burst = rate * 2.0;
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_TENANTS && !buckets.contains_key(&tenant) {
            buckets.retain(|_, b| now.duration_since(b.at) < Duration::from_secs(10));
        }
        let bucket = buckets.entry(tenant).or_insert(Bucket {
            tokens: burst,
            at: now,
            rate,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        bucket.rate = rate;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

impl RateLimiter {
    /// What `tenant` has left at `now`, if it was ever limited on this instance.
    pub fn allowance(&self, tenant: Uuid, now: Instant) -> Option<Allowance> {
        let buckets = self.buckets.lock().ok()?;
        let b = buckets.get(&tenant)?;
        let burst = b.rate * 2.0;
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        let tokens = (b.tokens + elapsed * b.rate).min(burst);
        Some(Allowance {
            limit: burst as u64,
            remaining: tokens.floor() as u64,
            reset: ((burst - tokens) / b.rate).ceil() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_two_seconds_then_the_rate() {
        let limiter = RateLimiter::default();
        let (t, other) = (Uuid::now_v7(), Uuid::now_v7());
        let start = Instant::now();
        for _ in 0..20 {
            assert!(limiter.take(t, 10, start).is_ok());
        }
        let wait = limiter.take(t, 10, start).expect_err("limited");
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(
            limiter.take(other, 10, start).is_ok(),
            "tenants are separate"
        );
        assert!(limiter
            .take(t, 10, start + Duration::from_millis(100))
            .is_ok());
        assert!(limiter
            .take(t, 10, start + Duration::from_millis(100))
            .is_err());
    }

    #[test]
    fn the_allowance_counts_down_and_says_when_it_is_full_again() {
        let limiter = RateLimiter::default();
        let (t, never) = (Uuid::now_v7(), Uuid::now_v7());
        let start = Instant::now();
        assert_eq!(limiter.allowance(never, start), None);
        for _ in 0..5 {
            limiter.take(t, 10, start).expect("admitted");
        }
        assert_eq!(
            limiter.allowance(t, start),
            Some(Allowance {
                limit: 20,
                remaining: 15,
                reset: 1
            })
        );
        assert_eq!(
            limiter.allowance(t, start + Duration::from_secs(3)),
            Some(Allowance {
                limit: 20,
                remaining: 20,
                reset: 0
            })
        );
    }
}
