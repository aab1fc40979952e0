//! The command path after authentication: load the aggregate, decide, append, retry on a
//! sequence conflict. The same code serves HTTP and NATS requests.
//!
//! Folded state is cached with the aggregate's last stream sequence. A warm aggregate costs
//! one JetStream round trip (the append); the expected-sequence check on that append is what
//! proves the cache fresh, and a conflict reloads only the commits after the cached one.

use aegis_kernel::{Aggregate, DecodeError};
use aegis_streams::{
    AggregateRef, AppendError, EventStore, Expected, Metadata, StoreError, StoredCommit,
};
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A refused decision may become acceptable after a reload; past this many conflicts in a row
/// the caller is told to retry later rather than spin.
const MAX_ATTEMPTS: u32 = 24;
const CACHE_LIMIT: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// The decider refused the command.
    #[error(transparent)]
    Domain(E),
    /// The client's `If-Match` version is no longer the aggregate's version.
    #[error("the resource changed: it is at version {current}")]
    VersionMismatch { current: u64 },
    /// Too many concurrent writers on one aggregate.
    #[error("too many concurrent changes to this resource")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The aggregate's id cannot address a subject (empty, or not a subject token).
    #[error(transparent)]
    Address(#[from] aegis_streams::SubjectError),
}

/// What a command carries besides itself.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub meta: Metadata,
    /// `Nats-Msg-Id`: the same id within the duplicate window appends nothing.
    pub msg_id: Option<String>,
    /// The version the client last read (`If-Match`).
    pub if_match: Option<u64>,
}

impl CommandContext {
    /// What Aegis itself does, not on a caller's behalf (a reactor, the scheduler): actor
    /// `system:<subject>`, a fresh correlation id, no retry id and no version expectation.
    pub fn system(subject: &str) -> Self {
        Self::acting("system", subject, None)
    }

    /// What an actor's command carries, now: who acts, the correlation id it came with (a
    /// fresh one when none), the current trace; no retry id and no version expectation.
    pub fn acting(actor_kind: &str, actor_subject: &str, correlation_id: Option<String>) -> Self {
        Self {
            meta: aegis_streams::Metadata {
                actor_kind: actor_kind.into(),
                actor_subject: actor_subject.into(),
                correlation_id: correlation_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
                causation_id: String::new(),
                occurred_at: chrono::Utc::now(),
                trace_headers: aegis_streams::trace::current_trace_headers(),
            },
            msg_id: None,
            if_match: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Outcome<S> {
    pub state: S,
    /// Stream position of the commit (or of the aggregate's last commit when nothing changed).
    pub position: u64,
    pub version: u64,
    /// False when the decision produced no events, or the append was a duplicate.
    pub appended: bool,
}

#[derive(Clone)]
struct Cached {
    state: Arc<dyn Any + Send + Sync>,
    expected: Expected,
}

#[derive(Clone)]
pub struct Executor {
    store: EventStore,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

fn fold<A: Aggregate>(
    mut state: A::State,
    commits: &[StoredCommit],
) -> Result<A::State, DecodeError> {
    for commit in commits {
        for env in &commit.events {
            let event = A::decode(env)?;
            state = A::evolve(state, &event, env);
        }
    }
    Ok(state)
}

impl Executor {
    pub fn new(store: EventStore) -> Self {
        Self {
            store,
            cache: Arc::default(),
        }
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    fn cached<A: Aggregate>(&self, subject: &str) -> Option<(A::State, Expected)> {
        let cache = self.cache.lock().ok()?;
        let hit = cache.get(subject)?;
        let state = hit.state.downcast_ref::<A::State>()?.clone();
        Some((state, hit.expected))
    }

    fn remember<A: Aggregate>(&self, subject: String, state: &A::State, expected: Expected) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            let newer = cache
                .get(&subject)
                .is_none_or(|c| c.expected.last_seq <= expected.last_seq);
            if newer {
                cache.insert(
                    subject,
                    Cached {
                        state: Arc::new(state.clone()),
                        expected,
                    },
                );
            }
        }
    }

    /// The cached state of a subject, without asking the log whether it is still current.
    pub fn peek<A: Aggregate>(&self, subject: &str) -> Option<A::State> {
        self.cached::<A>(subject).map(|(state, _)| state)
    }

    /// The aggregate's current state, read through the cache and caught up from the log.
    pub async fn load<A: Aggregate>(
        &self,
        agg: &AggregateRef,
    ) -> Result<(A::State, Expected), CommandError<A::Error>> {
        let subject = agg.subject();
        let (state, expected) = self
            .cached::<A>(&subject)
            .unwrap_or((A::State::default(), Expected::NEW));
        let history = self.store.load(agg, expected).await?;
        if history.commits.is_empty() {
            return Ok((state, expected));
        }
        let state = fold::<A>(state, &history.commits)?;
        self.remember::<A>(subject, &state, history.expected);
        Ok((state, history.expected))
    }

    /// Decides and appends `command`. `assume_new` skips the first load for an aggregate the
    /// caller just minted an id for; if it did exist, the append conflicts and we reload.
    pub async fn execute<A: Aggregate>(
        &self,
        agg: &AggregateRef,
        command: &A::Command,
        ctx: &CommandContext,
        assume_new: bool,
    ) -> Result<Outcome<A::State>, CommandError<A::Error>> {
        let subject = agg.subject();
        let mut warm = if assume_new {
            Some((A::State::default(), Expected::NEW))
        } else {
            self.cached::<A>(&subject)
        };
        for attempt in 0..MAX_ATTEMPTS {
            // With If-Match the client's version is compared with a fresh read, never the cache.
            let (state, expected) = match warm.take() {
                Some(hit) if ctx.if_match.is_none() => hit,
                _ => self.load::<A>(agg).await?,
            };
            if let Some(v) = ctx.if_match {
                if v != expected.version {
                    return Err(CommandError::VersionMismatch {
                        current: expected.version,
                    });
                }
            }
            let events = A::decide(&state, command).map_err(CommandError::Domain)?;
            if events.is_empty() {
                return Ok(Outcome {
                    state,
                    position: expected.last_seq,
                    version: expected.version,
                    appended: false,
                });
            }
            let encoded = events.iter().map(A::encode).collect();
            match self
                .store
                .append(agg, &expected, encoded, &ctx.meta, ctx.msg_id.as_deref())
                .await
            {
                Ok(appended) if appended.duplicate => {
                    // An earlier attempt with this message id carried the command out. A create
                    // retried with a fresh id did so on another aggregate of this type: answer
                    // with that one, as the first attempt would have.
                    let original = appended
                        .commit
                        .events
                        .first()
                        .filter(|e| {
                            e.aggregate_id != agg.id
                                && e.aggregate_type == agg.aggregate
                                && e.tenant_id == agg.tenant.to_string()
                        })
                        .and_then(|e| {
                            AggregateRef::new(
                                agg.tenant,
                                agg.context,
                                agg.aggregate,
                                &e.aggregate_id,
                            )
                            .ok()
                        });
                    let (state, now) = self.load::<A>(original.as_ref().unwrap_or(agg)).await?;
                    return Ok(Outcome {
                        state,
                        position: appended.position,
                        version: now.version,
                        appended: false,
                    });
                }
                Ok(appended) => {
                    let state = fold::<A>(state, std::slice::from_ref(&appended.commit))?;
                    let now = appended.commit.expected_after();
                    self.remember::<A>(subject, &state, now);
                    return Ok(Outcome {
                        state,
                        position: appended.position,
                        version: now.version,
                        appended: true,
                    });
                }
                Err(AppendError::Conflict) => {
                    // Decide again on fresh state; with If-Match the next round answers 409.
                    tracing::debug!(%subject, attempt, "sequence conflict, deciding again on fresh state");
                    // Jittered pause so a crowd of writers on one aggregate spreads out.
                    let cap = 1u64 << attempt.min(5);
                    tokio::time::sleep(std::time::Duration::from_millis(
                        rand::random::<u64>() % (cap + 1),
                    ))
                    .await;
                }
                Err(AppendError::Store(e)) => return Err(e.into()),
            }
        }
        Err(CommandError::Contended)
    }
}
