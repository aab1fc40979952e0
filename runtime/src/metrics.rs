//! What this process counts for Prometheus as it happens (a counter per instance; the scraper
//! sums): outbound calls' outcomes (`acp_webhook_delivery_total`, `acp_siem_push_total`) and
//! how long matching an event against a tenant's rules takes
//! (`acp_ar_rule_match_latency_seconds`). Counts read from the read models are computed when
//! `/metrics` is scraped, not here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use uuid::Uuid;

/// The counters the reactors keep and `/metrics` reads.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `acp_ar_rule_match_latency_seconds`, observed by the auto-response reactor.
    pub ar_latency: MatchLatency,
    /// `acp_webhook_delivery_total`, counted as deliveries end.
    pub deliveries: Outcomes,
    /// `acp_siem_push_total`, counted by event as pushes end.
    pub siem_pushes: Outcomes,
    /// `aegis_commands_shed_total`: commands answered 503 because as many as allowed were in
    /// flight.
    pub commands_shed: std::sync::atomic::AtomicU64,
    /// `aegis_connections_refused_total`: connections answered 503 and closed because as many
    /// as allowed were open.
    pub connections_refused: std::sync::atomic::AtomicU64,
}

impl Metrics {
    /// Counts a command turned away by the in-flight bound.
    pub fn overloaded(&self) {
        self.commands_shed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a connection turned away by the open-connection bound.
    pub fn connection_refused(&self) {
        self.connections_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Counts per (tenant, target, result).
#[derive(Debug, Default)]
pub struct Outcomes(Mutex<BTreeMap<(Uuid, &'static str, &'static str), u64>>);

impl Outcomes {
    pub fn add(&self, tenant: Uuid, target: &'static str, result: &'static str, n: u64) {
        if let Ok(mut all) = self.0.lock() {
            *all.entry((tenant, target, result)).or_default() += n;
        }
    }

    pub fn snapshot(&self) -> Vec<((Uuid, &'static str, &'static str), u64)> {
        self.0
            .lock()
            .map(|all| all.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default()
    }
}

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
