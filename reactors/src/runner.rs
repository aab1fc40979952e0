//! The reactor runner: one durable pull consumer per reactor, at-least-once delivery.

use aegis_streams::{provision::events_stream_name, StoreError, StoredCommit};
use async_nats::jetstream::{self, consumer, AckKind};
use async_nats::HeaderMap;
use futures::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

use crate::RetryPolicy;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReactorError(pub String);

/// Something that acts on events.
pub trait Reactor: Send + Sync + 'static {
    /// Durable consumer name; also names its dead letters (`aegis.dlq.<name>.<tenant>`).
    fn name(&self) -> &'static str;
    /// Subjects it reacts to.
    fn filters(&self) -> Vec<String>;
    fn handle(
        &self,
        commit: &StoredCommit,
    ) -> impl Future<Output = Result<(), ReactorError>> + Send;
    /// How long a delivery may go without word from this instance (an ack, or the progress
    /// heartbeat the runner sends every third of it while the commit is queued or handled)
    /// before JetStream hands it to another instance: how long a crashed instance delays its
    /// work. It does not bound how long `handle` may run.
    fn ack_wait(&self) -> Duration {
        Duration::from_secs(10)
    }
    /// How many tenants' commits are handled at once. Commits of one tenant always go to the
    /// same lane, in order; with more than one lane, one tenant's slow or heavy work delays
    /// only the tenants that share its lane, not every tenant.
    fn lanes(&self) -> usize {
        1
    }
}

pub mod dlq_headers {
    pub const REACTOR: &str = "Aegis-Reactor";
    pub const ERROR: &str = "Aegis-Error";
    pub const ATTEMPTS: &str = "Aegis-Attempts";
    pub const POSITION: &str = "Aegis-Position";
    pub const SUBJECT: &str = "Aegis-Subject";
}

async fn dead_letter(
    js: &jetstream::Context,
    reactor: &str,
    msg: &jetstream::Message,
    position: u64,
    attempts: i64,
    error: &str,
) -> Result<(), StoreError> {
    let tenant = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(aegis_streams::headers::TENANT))
        .map(|v| v.as_str().to_string())
        .unwrap_or_else(|| "unknown".into());
    let mut headers = HeaderMap::new();
    headers.insert(dlq_headers::REACTOR, reactor);
    headers.insert(
        dlq_headers::ERROR,
        error.replace(['\r', '\n'], " ").as_str(),
    );
    headers.insert(dlq_headers::ATTEMPTS, attempts.to_string().as_str());
    headers.insert(dlq_headers::POSITION, position.to_string().as_str());
    headers.insert(dlq_headers::SUBJECT, msg.subject.as_str());
    // One dead letter per (reactor, position), however often this runs.
    headers.insert("Nats-Msg-Id", format!("{reactor}:{position}").as_str());
    js.publish_with_headers(
        format!("aegis.dlq.{reactor}.{tenant}"),
        headers,
        msg.payload.clone(),
    )
    .await
    .map_err(StoreError::nats)?
    .await
    .map_err(StoreError::nats)?;
    Ok(())
}

/// Runs `reactor` until `shutdown` turns true.
pub async fn run<R: Reactor>(
    js: jetstream::Context,
    reactor: Arc<R>,
    policy: RetryPolicy,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match run_once(&js, &reactor, policy, &mut shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(reactor = reactor.name(), error = %e, "reactor consumer interrupted; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// How long a stopping runner lets each lane finish the commit in hand.
const DRAIN: Duration = Duration::from_secs(5);

/// Commits fetched per pull request.
const PREFETCH: usize = 32;

/// Commits delivered and not yet settled, across every instance (JetStream's
/// `max_ack_pending`): the bound on what lanes hold, and the backpressure on a slow reactor.
const IN_HAND: i64 = 256;

/// The deliveries this runner holds and has not settled (queued in a lane or being handled),
/// by position. JetStream hears of each every third of the ack wait, so work that takes long
/// is never handed to another instance while this one lives, and a crash hands it over
/// within one ack wait.
#[derive(Clone, Default)]
struct InHand(Arc<Mutex<HashMap<u64, jetstream::Message>>>);

impl InHand {
    /// Holds a delivery; false for a redelivery of a commit already held (the one held
    /// settles it).
    fn take(&self, position: u64, msg: &jetstream::Message) -> bool {
        let Ok(mut held) = self.0.lock() else {
            return true;
        };
        if held.contains_key(&position) {
            return false;
        }
        held.insert(position, msg.clone());
        true
    }

    fn settle(&self, position: u64) {
        if let Ok(mut held) = self.0.lock() {
            held.remove(&position);
        }
    }

    fn all(&self) -> Vec<jetstream::Message> {
        self.0
            .lock()
            .map(|h| h.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Tells JetStream, every `every`, that each held commit is still being worked on.
    async fn heartbeat(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for msg in self.all() {
                if let Err(e) = msg.ack_with(AckKind::Progress).await {
                    tracing::debug!(error = %e, "progress ack not sent");
                }
            }
        }
    }

    /// Gives every held commit back for immediate redelivery (to another instance, when this
    /// one is stopping).
    async fn give_back(&self) {
        let held = self
            .0
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        for msg in held.into_values() {
            let _ = msg.ack_with(AckKind::Nak(None)).await;
        }
    }
}

async fn run_once<R: Reactor>(
    js: &jetstream::Context,
    reactor: &Arc<R>,
    policy: RetryPolicy,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), Failure> {
    let stream = js.get_stream(events_stream_name()).await?;
    // Create or update: a reactor whose filters grew in a new release takes the new subjects
    // from where its consumer stands (the deliver policy applies to a new one only).
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(reactor.name().to_string()),
            filter_subjects: reactor.filters(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: reactor.ack_wait(),
            max_ack_pending: IN_HAND,
            // A new reactor reacts to what happens from now on, never to old history.
            deliver_policy: consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(PREFETCH)
        .messages()
        .await?;
    let in_hand = InHand::default();
    let mut beats = tokio::task::JoinSet::new();
    beats.spawn(in_hand.clone().heartbeat(reactor.ack_wait() / 3));
    let stopping = Arc::new(AtomicBool::new(false));
    // Every lane, even a single one, works apart from this loop, which only hands out: so
    // every delivery is in hand (and heard of) the moment it arrives, never waiting unheard
    // in the fetch buffer behind a slow commit. JetStream's `max_ack_pending` bounds what
    // the lanes hold.
    let lanes = reactor.lanes().max(1);
    let mut senders = Vec::with_capacity(lanes);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..lanes {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, jetstream::Message)>();
        senders.push(tx);
        let (js, reactor) = (js.clone(), reactor.clone());
        let (in_hand, stopping) = (in_hand.clone(), stopping.clone());
        workers.spawn(async move {
            while let Some((position, msg)) = rx.recv().await {
                if stopping.load(Ordering::SeqCst) {
                    // Queued, not begun: another instance takes it now rather than after
                    // the ack wait.
                    msg.ack_with(AckKind::Nak(None)).await?;
                } else {
                    let done = process(&js, reactor.as_ref(), policy, position, &msg).await;
                    done?;
                }
                in_hand.settle(position);
            }
            Ok::<(), Failure>(())
        });
    }
    loop {
        let next = tokio::select! {
            m = messages.next() => m,
            _ = shutdown.changed() => break,
            Some(done) = workers.join_next(), if !workers.is_empty() => {
                done??;
                return Err("a reactor lane ended".into());
            }
        };
        let Some(msg) = next else {
            return Err("consumer ended".into());
        };
        let msg = msg?;
        let position = msg.info()?.stream_sequence;
        if !in_hand.take(position, &msg) {
            tracing::debug!(
                reactor = reactor.name(),
                position,
                "redelivery of a commit in hand"
            );
            continue;
        }
        let lane = lane_of(&msg, senders.len());
        if senders[lane].send((position, msg)).is_err() {
            return Err("a reactor lane stopped".into());
        }
    }
    // Stopping. No more pulls first: what is given back must go to another instance, not
    // to this one's fetch on its way out.
    drop(messages);
    stopping.store(true, Ordering::SeqCst);
    drop(senders);
    let drained = async { while workers.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(DRAIN, drained).await;
    workers.abort_all();
    in_hand.give_back().await;
    Ok(())
}

/// A commit's lane: a hash of its tenant, so one tenant's commits stay in order.
fn lane_of(msg: &jetstream::Message, lanes: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let tenant = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(aegis_streams::headers::TENANT))
        .map(|v| v.as_str().to_string())
        .unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tenant.hash(&mut h);
    (h.finish() % lanes as u64) as usize
}

/// Handles one delivery: ack after success, a jittered retry after a failure, the dead-letter
/// stream once attempts run out.
async fn process<R: Reactor>(
    js: &jetstream::Context,
    reactor: &R,
    policy: RetryPolicy,
    position: u64,
    msg: &jetstream::Message,
) -> Result<(), Failure> {
    let attempts = msg.info()?.delivered;
    let commit = {
        use aegis_schemas::Message;
        aegis_schemas::envelope::v1::Commit::decode(msg.payload.as_ref())
            .map(|c| StoredCommit {
                position,
                subject: msg.subject.to_string(),
                events: c.events,
                traceparent: msg
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(aegis_streams::headers::TRACEPARENT))
                    .map(|v| v.as_str().to_string()),
            })
            .map_err(|e| ReactorError(format!("undecodable commit: {e}")))
    };
    let span = tracing::info_span!("react", reactor = reactor.name(), position, attempts);
    aegis_streams::trace::adopt_parent(
        &span,
        commit.as_ref().ok().and_then(|c| c.traceparent.as_deref()),
    );
    let outcome = match &commit {
        Ok(c) => reactor.handle(c).instrument(span.clone()).await,
        Err(e) => Err(ReactorError(e.0.clone())),
    };
    match outcome {
        Ok(()) => msg.ack().await?,
        Err(e) if attempts >= policy.max_attempts => {
            tracing::error!(parent: &span, error = %e, "attempts exhausted; dead-lettered");
            dead_letter(js, reactor.name(), msg, position, attempts, &e.0).await?;
            msg.ack_with(AckKind::Term).await?;
        }
        Err(e) => {
            let delay = policy.delay(attempts, &mut rand::thread_rng());
            tracing::warn!(parent: &span, error = %e, retry_in_ms = delay.as_millis() as u64, "reaction failed; will retry");
            msg.ack_with(AckKind::Nak(Some(delay))).await?;
        }
    }
    Ok(())
}
