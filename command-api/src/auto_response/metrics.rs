//! `acp_ar_rule_match_latency_seconds`: how long matching one event against a tenant's rules
//! takes, as a Prometheus histogram per tenant. Runs and pending approvals are counted from
//! the read model when `/metrics` is scraped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use uuid::Uuid;

/// Upper bounds in seconds: 10 µs to 100 ms.
pub const BUCKETS: [f64; 9] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.025, 0.1,
];

#[derive(Debug, Default, Clone)]
pub struct Histogram {
    /// Observations at or below each bucket's bound (cumulative, as exposed).
    pub counts: [u64; BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
}

#[derive(Debug, Default)]
pub struct MatchLatency(Mutex<HashMap<Uuid, Histogram>>);

impl MatchLatency {
    pub fn observe(&self, tenant: Uuid, took: Duration) {
        let secs = took.as_secs_f64();
        if let Ok(mut all) = self.0.lock() {
            let h = all.entry(tenant).or_default();
            for (bound, n) in BUCKETS.iter().zip(h.counts.iter_mut()) {
                if secs <= *bound {
                    *n += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    pub fn snapshot(&self) -> Vec<(Uuid, Histogram)> {
        self.0
            .lock()
            .map(|all| all.iter().map(|(t, h)| (*t, h.clone())).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let m = MatchLatency::default();
        let t = Uuid::from_u128(1);
        m.observe(t, Duration::from_micros(30));
        m.observe(t, Duration::from_millis(2));
        let (_, h) = &m.snapshot()[0];
        assert_eq!(h.count, 2);
        assert_eq!(h.counts[0], 0, "nothing at or below 10 µs");
        assert_eq!(h.counts[1], 1, "30 µs is within 50 µs");
        assert_eq!(h.counts[6], 2, "both within 5 ms");
    }
}
