//! Failed-login throttling: past `limit` failures inside `window`, attempts on a key are
//! refused (429) until the oldest failure leaves the window. An attempt is reserved before
//! its password is checked and counts as a failure until it succeeds, so a burst of
//! concurrent guesses meets the limit like a sequence of them does.
//!
//! Kept in memory per instance: behind a balancer the effective limit is at most
//! `limit × instances`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
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

    /// The map even after a panic elsewhere: a throttle must not fail open, and a panic
    /// cannot leave a `HashMap` of timestamps inconsistent.
    fn map(&self) -> MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn prune(&self, list: &mut VecDeque<Instant>, now: Instant) {
        while list
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            list.pop_front();
        }
    }

    /// Reserves an attempt at `now`: `Err(wait)` while `key` is at its limit, else the
    /// attempt counts as a failure until [`Throttle::succeeded`] takes it back.
    pub fn reserve(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut failures = self.map();
        if failures.len() >= MAX_KEYS && !failures.contains_key(key) {
            let window = self.window;
            failures.retain(|_, l| l.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let list = failures.entry(key.to_string()).or_default();
        self.prune(list, now);
        if list.len() >= self.limit {
            let oldest = list.front().copied().unwrap_or(now);
            return Err(self
                .window
                .saturating_sub(now.duration_since(oldest))
                .max(Duration::from_secs(1)));
        }
        list.push_back(now);
        Ok(())
    }

    /// Failures (reserved attempts included) inside the window.
    pub fn recent(&self, key: &str, now: Instant) -> usize {
        let mut failures = self.map();
        let Some(list) = failures.get_mut(key) else {
            return 0;
        };
        self.prune(list, now);
        list.len()
    }

    /// Takes back the attempt reserved at `at`: it was not a failure.
    pub fn succeeded(&self, key: &str, at: Instant) {
        let mut failures = self.map();
        if let Some(list) = failures.get_mut(key) {
            if let Some(i) = list.iter().position(|t| *t == at) {
                list.remove(i);
            }
            if list.is_empty() {
                failures.remove(key);
            }
        }
    }

    pub fn clear(&self, key: &str) {
        self.map().remove(key);
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
            assert_eq!(t.reserve("a", start + Duration::from_secs(i)), Ok(()));
        }
        let wait = t
            .reserve("a", start + Duration::from_secs(10))
            .expect_err("blocked");
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(t.reserve("b", start), Ok(()), "other keys are unaffected");
        assert_eq!(t.reserve("a", start + Duration::from_secs(61)), Ok(()));
    }

    #[test]
    fn concurrent_attempts_are_counted_before_any_of_them_ends() {
        let t = Throttle::new(5, Duration::from_secs(60));
        let now = Instant::now();
        let admitted = (0..40).filter(|_| t.reserve("a", now).is_ok()).count();
        assert_eq!(admitted, 5);
    }

    #[test]
    fn a_success_takes_its_reservation_back() {
        let t = Throttle::new(1, Duration::from_secs(60));
        let now = Instant::now();
        t.reserve("a", now).expect("first");
        assert!(t.reserve("a", now).is_err());
        t.succeeded("a", now);
        assert_eq!(t.recent("a", now), 0);
        assert_eq!(t.reserve("a", now), Ok(()));
        t.clear("a");
        assert_eq!(t.recent("a", now), 0);
    }
}
