//! Signed audit checkpoints: at a fixed interval, the Merkle root over the hash of every event
//! appended since the last checkpoint is signed with Ed25519 and appended as an event. A
//! checkpoint commits to its whole range: anyone holding the public key can later prove an
//! exported event was in the log, unaltered, when the checkpoint was signed.
//!
//! Instances race harmlessly: the checkpoint aggregate accepts only the range right after the
//! last one, and the append's expected sequence lets one instance win.

use aegis_audit::{Checkpoint, CheckpointAggregate};
use aegis_kernel::Aggregate;
use aegis_runtime::command::{CommandContext, Executor};
use aegis_streams::merkle::{access_checkpoint_message, checkpoint_message, leaf, root};
use aegis_streams::provision::ACCESS_STREAM;
use aegis_streams::subject::PLATFORM_TENANT;
use aegis_streams::{AggregateRef, Metadata};
use async_nats::jetstream::stream::DirectGetErrorKind;
use ed25519_dalek::{Signer, SigningKey};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::sync::watch;

/// Hex of the first 8 bytes of SHA-256 of the public key.
pub fn key_id(key: &ed25519_dalek::VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

pub fn aggregate() -> AggregateRef {
    AggregateRef::new(
        PLATFORM_TENANT,
        CheckpointAggregate::CONTEXT,
        CheckpointAggregate::AGGREGATE,
        "log",
    )
    .unwrap_or_else(|_| unreachable!("constant, valid subject tokens"))
}

/// Signs the range after the last checkpoint up to the head, if there is one.
pub async fn checkpoint_once(
    executor: &Executor,
    key: &SigningKey,
) -> Result<Option<Checkpoint>, Box<dyn std::error::Error + Send + Sync>> {
    let agg = aggregate();
    let (covered, _) = executor.load::<CheckpointAggregate>(&agg).await?;
    let store = executor.store();
    let head = store.head().await?;
    if head <= covered {
        return Ok(None);
    }
    let mut leaves = Vec::new();
    let mut commits = Box::pin(
        store
            .read_range(vec!["aegis.evt.>".into()], covered + 1, Some(head))
            .await?,
    );
    while let Some(commit) = commits.next().await {
        leaves.extend(commit?.events.iter().map(|e| leaf(&e.hash)));
    }
    record(
        executor,
        key,
        &agg,
        covered + 1,
        head,
        &leaves,
        checkpoint_message,
    )
    .await
}

/// Signs the Merkle root of `leaves` for `from..=to` (the message `label` makes) and records
/// it on `agg`. Instances race harmlessly: the aggregate takes only the range right after
/// its last one.
async fn record(
    executor: &Executor,
    key: &SigningKey,
    agg: &AggregateRef,
    from: u64,
    to: u64,
    leaves: &[aegis_streams::merkle::Hash],
    label: fn(u64, u64, u64, &aegis_streams::merkle::Hash) -> Vec<u8>,
) -> Result<Option<Checkpoint>, Box<dyn std::error::Error + Send + Sync>> {
    let root = root(leaves);
    let count = leaves.len() as u64;
    let signature = key.sign(&label(from, to, count, &root));
    let checkpoint = Checkpoint {
        from,
        to,
        count,
        root: root.to_vec(),
        signature: signature.to_bytes().to_vec(),
        key_id: key_id(&key.verifying_key()),
    };
    let ctx = CommandContext {
        meta: Metadata::system("audit-checkpoints"),
        msg_id: None,
        if_match: None,
    };
    match executor
        .execute::<CheckpointAggregate>(agg, &checkpoint, &ctx, false)
        .await
    {
        Ok(_) => Ok(Some(checkpoint)),
        // Another instance signed this range first.
        Err(aegis_runtime::command::CommandError::Domain(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The aggregate the decision log's checkpoints are kept on: the same decider (each range
/// starts right after the last), its own id.
pub fn access_aggregate() -> AggregateRef {
    AggregateRef::new(
        PLATFORM_TENANT,
        CheckpointAggregate::CONTEXT,
        CheckpointAggregate::AGGREGATE,
        "access",
    )
    .unwrap_or_else(|_| unreachable!("constant, valid subject tokens"))
}

/// Batches one access checkpoint covers at most; the rest wait for the next interval.
const ACCESS_BATCHES: u64 = 10_000;

/// Signs the decision log's batches after the last access checkpoint: a leaf per batch (the
/// SHA-256 of its message), the root signed under its own label. Sequences the log's
/// retention already removed are skipped.
pub async fn access_checkpoint_once(
    executor: &Executor,
    key: &SigningKey,
) -> Result<Option<Checkpoint>, Box<dyn std::error::Error + Send + Sync>> {
    let agg = access_aggregate();
    let (covered, _) = executor.load::<CheckpointAggregate>(&agg).await?;
    let js = executor.store().jetstream();
    let mut stream = js.get_stream(ACCESS_STREAM).await?;
    let head = stream.info().await?.state.last_sequence;
    if head <= covered {
        return Ok(None);
    }
    let to = head.min(covered + ACCESS_BATCHES);
    let mut leaves = Vec::new();
    for seq in covered + 1..=to {
        match stream.direct_get(seq).await {
            Ok(m) => leaves.push(leaf(&Sha256::digest(&m.payload))),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    record(
        executor,
        key,
        &agg,
        covered + 1,
        to,
        &leaves,
        access_checkpoint_message,
    )
    .await
}

/// Runs until `stop`, one checkpoint per interval.
pub async fn run(
    executor: Executor,
    key: SigningKey,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; the first checkpoint comes one interval after start.
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match access_checkpoint_once(&executor, &key).await {
            Ok(Some(c)) => {
                tracing::info!(
                    from = c.from,
                    to = c.to,
                    batches = c.count,
                    "access checkpoint signed"
                )
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "access checkpoint not signed; retrying next interval")
            }
        }
        match checkpoint_once(&executor, &key).await {
            Ok(Some(c)) => {
                tracing::info!(
                    from = c.from,
                    to = c.to,
                    events = c.count,
                    "audit checkpoint signed"
                )
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "audit checkpoint not signed; retrying next interval")
            }
        }
    }
}
