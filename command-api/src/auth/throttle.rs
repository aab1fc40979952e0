//! Failed-login throttling per account and per source address: past `limit` failures inside
//! `window`, attempts are refused (429) until the oldest failure leaves the window. Kept in
//! memory per instance: behind a balancer the effective limit is at most `limit × instances`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_KEYS: usize = 100_000;

pub struct Throttle {
    limit: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit,
            window,
            failures: Mutex::default(),
        }
    }

    /// `Some(wait)` while `key` is blocked.
    pub fn blocked(&self, key: &str, now: Instant) -> Option<Duration> {
        let mut failures = self.failures.lock().ok()?;
        let list = failures.get_mut(key)?;
        while list
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            list.pop_front();
        }
        if list.len() < self.limit {
            return None;
        }
        list.front()
            .map(|oldest| self.window.saturating_sub(now.duration_since(*oldest)))
    }

    pub fn fail(&self, key: &str, now: Instant) {
        if let Ok(mut failures) = self.failures.lock() {
            if failures.len() >= MAX_KEYS {
                let window = self.window;
                failures.retain(|_, l| l.back().is_some_and(|t| now.duration_since(*t) < window));
            }
            let list = failures.entry(key.to_string()).or_default();
            list.push_back(now);
            while list.len() > self.limit {
                list.pop_front();
            }
        }
    }

    pub fn clear(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_oldest_failure_ages_out() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for i in 0..3 {
            assert_eq!(t.blocked("a", start), None);
            t.fail("a", start + Duration::from_secs(i));
        }
        let wait = t
            .blocked("a", start + Duration::from_secs(10))
            .expect("blocked");
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(t.blocked("b", start), None, "other keys are unaffected");
        assert_eq!(t.blocked("a", start + Duration::from_secs(61)), None);
    }

    #[test]
    fn success_clears_the_account() {
        let t = Throttle::new(1, Duration::from_secs(60));
        let now = Instant::now();
        t.fail("a", now);
        assert!(t.blocked("a", now).is_some());
        t.clear("a");
        assert_eq!(t.blocked("a", now), None);
    }
}
