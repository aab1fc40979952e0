//! The reactor runner: one durable pull consumer per reactor, at-least-once delivery.

use aegis_streams::{provision::events_stream_name, StoreError, StoredCommit};
use async_nats::jetstream::{self, consumer, AckKind};
use async_nats::HeaderMap;
use futures::StreamExt;
use std::future::Future;
use std::sync::Arc;
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
    /// How long one commit may take before JetStream delivers it again: longer than the
    /// slowest `handle` can legitimately run.
    fn ack_wait(&self) -> Duration {
        Duration::from_secs(30)
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
            // A new reactor reacts to what happens from now on, never to old history.
            deliver_policy: consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let lanes = reactor.lanes().max(1);
    let mut senders = Vec::with_capacity(lanes);
    let mut workers = tokio::task::JoinSet::new();
    if lanes > 1 {
        for _ in 0..lanes {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<jetstream::Message>(32);
            senders.push(tx);
            let (js, reactor) = (js.clone(), reactor.clone());
            workers.spawn(async move {
                while let Some(msg) = rx.recv().await {
                    process(&js, reactor.as_ref(), policy, msg).await?;
                }
                Ok::<(), Failure>(())
            });
        }
    }
    loop {
        let next = tokio::select! {
            m = messages.next() => m,
            _ = shutdown.changed() => {
                // Let each lane finish the commit in hand; what is queued is redelivered.
                drop(senders);
                let drained = async { while workers.join_next().await.is_some() {} };
                let _ = tokio::time::timeout(Duration::from_secs(10), drained).await;
                return Ok(());
            }
            Some(done) = workers.join_next(), if !workers.is_empty() => {
                done??;
                return Err("a reactor lane ended".into());
            }
        };
        let Some(msg) = next else {
            return Err("consumer ended".into());
        };
        let msg = msg?;
        if senders.is_empty() {
            process(js, reactor.as_ref(), policy, msg).await?;
            continue;
        }
        let lane = lane_of(&msg, senders.len());
        // A full lane holds this loop back: the tenant's lane is the backpressure.
        if senders[lane].send(msg).await.is_err() {
            return Err("a reactor lane stopped".into());
        }
    }
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
    msg: jetstream::Message,
) -> Result<(), Failure> {
    let (position, attempts) = {
        let info = msg.info()?;
        (info.stream_sequence, info.delivered)
    };
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
            dead_letter(js, reactor.name(), &msg, position, attempts, &e.0).await?;
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
