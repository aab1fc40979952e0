//! Background roles under supervision: each runs as its own task; if it panics or ends
//! before shutdown, the failure is logged, the role is marked down (`/readyz` says so) and
//! it is started again after a backoff (doubling to 30 s, reset once it has run a minute).
//! Without this, one panic in a reactor would stop it for every tenant until a restart.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What `/readyz` shows of one role.
#[derive(Debug, Clone, Default)]
pub struct RoleHealth {
    pub running: bool,
    pub restarts: u32,
    pub last_failure: Option<String>,
}

/// Every supervised role's health, by name.
#[derive(Debug, Default)]
pub struct Supervision {
    roles: Mutex<BTreeMap<&'static str, RoleHealth>>,
}

impl Supervision {
    pub fn snapshot(&self) -> BTreeMap<&'static str, RoleHealth> {
        self.roles.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, name: &'static str, change: impl FnOnce(&mut RoleHealth)) {
        let mut roles = self.roles.lock().unwrap_or_else(|e| e.into_inner());
        change(roles.entry(name).or_default());
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// Runs the role `make` builds until `shutdown`, building it again whenever it fails.
pub fn supervise<F, Fut>(
    tasks: &mut JoinSet<()>,
    health: Arc<Supervision>,
    name: &'static str,
    mut shutdown: watch::Receiver<bool>,
    make: F,
) where
    F: Fn(watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tasks.spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        loop {
            health.update(name, |h| h.running = true);
            let started = Instant::now();
            let mut role = tokio::spawn(make(shutdown.clone()));
            let ended = tokio::select! {
                ended = &mut role => Some(ended),
                _ = stopped(&mut shutdown) => None,
            };
            let Some(ended) = ended else {
                // The role sees the same signal; it is given its own time to finish.
                let _ = role.await;
                return;
            };
            // A role also ends when its owner drops the signal without sending it (the
            // application dropped without a stop): that is a shutdown too, not a failure.
            if *shutdown.borrow() || shutdown.has_changed().is_err() {
                return;
            }
            let why = match ended {
                Ok(()) => "ended on its own".to_string(),
                Err(e) if e.is_panic() => "panicked".to_string(),
                Err(e) => e.to_string(),
            };
            if started.elapsed() >= HEALTHY_AFTER {
                backoff = FIRST_BACKOFF;
            }
            tracing::error!(role = name, why = %why, restart_in_ms = backoff.as_millis() as u64, "background role failed; restarting it");
            health.update(name, |h| {
                h.running = false;
                h.restarts += 1;
                h.last_failure = Some(why);
            });
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stopped(&mut shutdown) => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
}

/// Resolves once shutdown is signalled (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_role_that_panics_is_marked_down_and_started_again() {
        let health = Arc::new(Supervision::default());
        let (stop, rx) = watch::channel(false);
        let starts = Arc::new(AtomicU32::new(0));
        let mut tasks = JoinSet::new();
        let counted = starts.clone();
        supervise(&mut tasks, health.clone(), "flaky", rx, move |mut stop| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    panic!("the first run fails");
                }
                let _ = stop.wait_for(|s| *s).await;
            }
        });
        // Generous: the restart comes after 200 ms, but the suite runs this beside everything
        // else on two cores.
        let deadline = Instant::now() + Duration::from_secs(30);
        while starts.load(Ordering::SeqCst) < 2 {
            assert!(Instant::now() < deadline, "not restarted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let role = health.snapshot()["flaky"].clone();
        assert!(role.running);
        assert_eq!(role.restarts, 1);
        assert_eq!(role.last_failure.as_deref(), Some("panicked"));
        let _ = stop.send(true);
        while tasks.join_next().await.is_some() {}
        assert_eq!(
            starts.load(Ordering::SeqCst),
            2,
            "not restarted after shutdown"
        );
    }

    #[tokio::test]
    async fn a_dropped_signal_stops_roles_without_restarting_them() {
        let health = Arc::new(Supervision::default());
        let (stop, rx) = watch::channel(false);
        let starts = Arc::new(AtomicU32::new(0));
        let mut tasks = JoinSet::new();
        let counted = starts.clone();
        supervise(&mut tasks, health.clone(), "ticker", rx, move |mut stop| {
            counted.fetch_add(1, Ordering::SeqCst);
            // As the tickers do: return when the signal changes or goes away.
            async move {
                let _ = stop.changed().await;
            }
        });
        while starts.load(Ordering::SeqCst) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(stop);
        tokio::time::timeout(Duration::from_secs(10), async {
            while tasks.join_next().await.is_some() {}
        })
        .await
        .expect("the supervisor stops");
        assert_eq!(starts.load(Ordering::SeqCst), 1, "not restarted");
        assert_eq!(health.snapshot()["ticker"].restarts, 0);
    }
}
