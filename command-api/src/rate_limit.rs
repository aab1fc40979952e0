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
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
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
}
