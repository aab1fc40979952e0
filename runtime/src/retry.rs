//! Backoff between attempts at something that may fail for a while (a reactor's commit, a
//! webhook delivery): exponential, capped, with full jitter.

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Deliveries before the work is dead-lettered.
    pub max_attempts: i64,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: uniform in [0, min(max, base * 2^(attempt-1))], so retries of many failed
    /// messages spread out instead of arriving together.
    pub fn delay(&self, attempt: i64, rng: &mut impl Rng) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << (attempt.clamp(1, 20) - 1) as u32);
        let cap = exp.min(self.max);
        Duration::from_millis(rng.gen_range(0..=cap.as_millis() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempt in 1..=10 {
            let cap = (100u64 << (attempt - 1)).min(1000);
            for _ in 0..100 {
                assert!(p.delay(attempt, &mut rng).as_millis() as u64 <= cap);
            }
        }
    }

    #[test]
    fn jitter_spreads_retries() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(1000),
            max: Duration::from_secs(10),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let delays: std::collections::HashSet<_> = (0..50).map(|_| p.delay(3, &mut rng)).collect();
        assert!(
            delays.len() > 25,
            "jittered delays should differ, got {}",
            delays.len()
        );
    }
}
