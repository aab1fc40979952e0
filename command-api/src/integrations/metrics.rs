//! `acp_webhook_delivery_total` and `acp_siem_push_total`: outcomes of outbound calls, counted
//! in this process as they happen (a Prometheus counter per instance; the scraper sums).

use std::collections::BTreeMap;
use std::sync::Mutex;
use uuid::Uuid;

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
