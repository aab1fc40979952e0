//! Aggregates read on every request (identity for authentication, credentials for value
//! reads), served from memory and kept honest by the log.
//!
//! A state is trusted once it was read from the log; any identity event on its subject,
//! observed through a plain NATS subscription on `aegis.evt.*.identity.>`, withdraws that trust
//! and the next request reads the log again. Commands executed by this instance update the
//! executor's cache as they append, so a revocation here is effective on the very next
//! request; other instances see it as soon as the event reaches them. Trust also lapses after
//! `TRUST_TTL`, which bounds staleness if the subscription ever misses a message (reconnects).

use crate::command::{CommandError, Executor};
use aegis_kernel::Aggregate;
use aegis_streams::AggregateRef;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const TRUST_TTL: Duration = Duration::from_secs(30);
const MAX_ENTRIES: usize = 100_000;
pub const IDENTITY_EVENTS: &str = "aegis.evt.*.identity.>";
/// Credentials, which every value read checks (a retire or destroy must stop reads at once).
pub const CREDENTIAL_EVENTS: &str = "aegis.evt.*.vault.credential.>";

#[derive(Default)]
struct Trust {
    /// Bumped by every event seen on a subject.
    epochs: HashMap<String, u64>,
    /// Subjects whose cached state was read from the log at a given epoch, and whether the log
    /// held nothing there (an aggregate never written, like a kill switch never engaged, has
    /// no cached state to peek at; its absence is what is trusted).
    trusted: HashMap<String, (u64, Instant, bool)>,
}

#[derive(Clone)]
pub struct Directory {
    executor: Executor,
    trust: Arc<Mutex<Trust>>,
}

impl Directory {
    pub fn new(executor: Executor) -> Self {
        Self {
            executor,
            trust: Arc::default(),
        }
    }

    /// The aggregate's state, from memory when trusted, else from the log.
    pub async fn get<A: Aggregate>(
        &self,
        agg: &AggregateRef,
    ) -> Result<A::State, CommandError<A::Error>> {
        let subject = agg.subject();
        // A poisoned lock only costs the cache: the log is read instead.
        let epoch = if let Ok(trust) = self.trust.lock() {
            let epoch = trust.epochs.get(&subject).copied().unwrap_or(0);
            let fresh = trust
                .trusted
                .get(&subject)
                .filter(|(e, at, _)| *e == epoch && at.elapsed() < TRUST_TTL);
            if let Some((_, _, empty)) = fresh {
                // A command of this instance may have written the subject since: its state is
                // in the executor's cache before the event comes back to withdraw trust.
                if let Some(state) = self.executor.peek::<A>(&subject) {
                    return Ok(state);
                }
                if *empty {
                    return Ok(A::State::default());
                }
            }
            epoch
        } else {
            u64::MAX
        };
        let (state, expected) = self.executor.load::<A>(agg).await?;
        if let Ok(mut trust) = self.trust.lock() {
            // An event that arrived while we read may be newer than what we read.
            if trust.epochs.get(&subject).copied().unwrap_or(0) == epoch {
                if trust.trusted.len() >= MAX_ENTRIES {
                    trust.trusted.clear();
                }
                let empty = expected.version == 0;
                trust
                    .trusted
                    .insert(subject, (epoch, Instant::now(), empty));
            }
        }
        Ok(state)
    }

    /// Withdraws trust in a subject's cached state.
    pub fn invalidate(&self, subject: &str) {
        if let Ok(mut trust) = self.trust.lock() {
            trust.trusted.remove(subject);
            if trust.epochs.len() >= MAX_ENTRIES {
                // Forgetting epochs is safe only together with all trust.
                trust.epochs.clear();
                trust.trusted.clear();
            }
            *trust.epochs.entry(subject.to_string()).or_default() += 1;
        }
    }

    /// Follows the events on `filter` until `stop`; every event withdraws trust in its subject.
    pub async fn follow(
        self,
        client: async_nats::Client,
        filter: &'static str,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), async_nats::SubscribeError> {
        let mut events = client.subscribe(filter).await?;
        loop {
            tokio::select! {
                msg = events.next() => match msg {
                    Some(msg) => self.invalidate(msg.subject.as_str()),
                    None => return Ok(()),
                },
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
        }
    }
}
