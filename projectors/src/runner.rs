//! The projector runner: reads the whole log in order from the projection's checkpoint, applies
//! each batch and the new checkpoint in one transaction, and halts on a commit it cannot apply.
//!
//! Every projection reads every commit (not only its own context) so its checkpoint reaches
//! every position, which is what `Aegis-Min-Position` waits for.

use crate::checkpoint;
use aegis_schemas::envelope::v1::Envelope;
use aegis_streams::{EventStore, StoredCommit};
use futures::StreamExt;
use sqlx::{PgConnection, PgPool};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

/// Largest batch applied in one transaction.
pub const BATCH: usize = 1_000;
pub const ALL_EVENTS: &str = "aegis.evt.>";

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("undecodable event: {0}")]
    Decode(String),
    /// The event does not fit the read model (e.g. a version gap): applying it would corrupt it.
    #[error("{0}")]
    Invariant(String),
}

impl ProjectionError {
    /// Transient failures are retried; anything else halts the projection.
    fn is_transient(&self) -> bool {
        matches!(
            self,
            ProjectionError::Db(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
            )
        )
    }
}

/// A read model folded from the log.
pub trait Projection: Send + Sync + 'static {
    const NAME: &'static str;
    /// Tables this projection owns; a rebuild fills `<table>__rebuild` and swaps them in.
    const TABLES: &'static [&'static str];

    /// Applies one commit to the tables named with `suffix` ("" for the live ones).
    fn apply(
        &self,
        tx: &mut PgConnection,
        suffix: &str,
        commit: &StoredCommit,
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send;

    /// Whether an event can change this projection's tables. A batch with none only moves the
    /// checkpoint, in one statement instead of a transaction.
    fn handles(&self, _event: &Envelope) -> bool {
        true
    }

    /// Applies commits in order. A projection overrides this to write a batch in fewer
    /// statements; the result must equal applying each commit with [`Projection::apply`].
    fn apply_many(
        &self,
        tx: &mut PgConnection,
        suffix: &str,
        commits: &[StoredCommit],
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send {
        async move {
            for commit in commits {
                self.apply(tx, suffix, commit).await?;
            }
            Ok(())
        }
    }
}

/// Locks the checkpoint row and returns the position it holds. The row lock serializes the
/// live runner with a rebuild's swap, which may move the checkpoint.
async fn lock_checkpoint(tx: &mut PgConnection, name: &str) -> Result<i64, sqlx::Error> {
    let (position,): (i64,) =
        sqlx::query_as("SELECT position FROM projector_checkpoints WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
    Ok(position)
}

async fn store_checkpoint(
    tx: &mut PgConnection,
    name: &str,
    position: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector_checkpoints SET position = $2, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(position)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Moves the checkpoint over commits that change nothing here; never backwards (a rebuild's
/// swap may have moved it further meanwhile).
async fn advance_checkpoint(pool: &PgPool, name: &str, position: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector_checkpoints SET position = $2, updated_at = now() \
         WHERE name = $1 AND position < $2 AND status = 'running'",
    )
    .bind(name)
    .bind(position)
    .execute(pool)
    .await?;
    Ok(())
}

/// Opens the batch transaction, locks the checkpoint row, and returns the commits of
/// `commits` (ordered by position) that come after it.
async fn begin_after_checkpoint<'c, P: Projection>(
    pool: &PgPool,
    commits: &'c [StoredCommit],
) -> Result<
    (
        sqlx::Transaction<'static, sqlx::Postgres>,
        i64,
        &'c [StoredCommit],
    ),
    (u64, ProjectionError),
> {
    let first = commits.first().map_or(0, |c| c.position);
    let mut tx = pool.begin().await.map_err(|e| (first, e.into()))?;
    let start = lock_checkpoint(&mut tx, P::NAME)
        .await
        .map_err(|e| (first, e.into()))?;
    let skip = commits.partition_point(|c| c.position as i64 <= start);
    Ok((tx, start, &commits[skip..]))
}

/// Applies `commits` (those after the stored checkpoint) and moves the checkpoint, in one
/// transaction. Returns the new position, or the failing position and its error. When the
/// batch fails for good, the commits before the failing one are applied and checkpointed
/// one by one, so the halt names exactly the commit that cannot be applied.
pub async fn apply_batch<P: Projection>(
    pool: &PgPool,
    projection: &P,
    commits: &[StoredCommit],
) -> Result<u64, (u64, ProjectionError)> {
    let first = commits.first().map_or(0, |c| c.position);
    let relevant = commits
        .iter()
        .flat_map(|c| &c.events)
        .any(|e| projection.handles(e));
    if !relevant {
        let Some(last) = commits.last().map(|c| c.position) else {
            return Ok(0);
        };
        advance_checkpoint(pool, P::NAME, last as i64)
            .await
            .map_err(|e| (first, e.into()))?;
        return Ok(last);
    }
    let (mut tx, start, todo) = begin_after_checkpoint::<P>(pool, commits).await?;
    let Some(last) = todo.last().map(|c| c.position) else {
        // End the transaction now: a dropped one rolls back only when its connection is next
        // used, and until then it would hold the checkpoint row lock a rebuild's swap waits for.
        tx.rollback().await.map_err(|e| (first, e.into()))?;
        return Ok(start as u64);
    };
    let span = tracing::info_span!(
        "project",
        projection = P::NAME,
        from = todo[0].position,
        to = last
    );
    aegis_streams::trace::adopt_parent(&span, todo.last().and_then(|c| c.traceparent.as_deref()));
    match projection
        .apply_many(&mut tx, "", todo)
        .instrument(span)
        .await
    {
        Ok(()) => {
            store_checkpoint(&mut tx, P::NAME, last as i64)
                .await
                .map_err(|e| (first, e.into()))?;
            tx.commit().await.map_err(|e| (first, e.into()))?;
            Ok(last)
        }
        Err(e) if e.is_transient() => {
            let _ = tx.rollback().await;
            Err((first, e))
        }
        Err(_) => {
            tx.rollback().await.map_err(|e| (first, e.into()))?;
            apply_one_by_one(pool, projection, todo).await
        }
    }
}

async fn apply_one_by_one<P: Projection>(
    pool: &PgPool,
    projection: &P,
    commits: &[StoredCommit],
) -> Result<u64, (u64, ProjectionError)> {
    let first = commits.first().map_or(0, |c| c.position);
    let (mut tx, start, todo) = begin_after_checkpoint::<P>(pool, commits).await?;
    let mut position = start;
    let mut failure = None;
    for commit in todo {
        let savepoint = sqlx::query("SAVEPOINT one").execute(&mut *tx).await;
        if let Err(e) = savepoint {
            return Err((commit.position, e.into()));
        }
        if let Err(e) = projection.apply(&mut tx, "", commit).await {
            let _ = sqlx::query("ROLLBACK TO SAVEPOINT one")
                .execute(&mut *tx)
                .await;
            failure = Some((commit.position, e));
            break;
        }
        position = commit.position as i64;
    }
    store_checkpoint(&mut tx, P::NAME, position)
        .await
        .map_err(|e| (first, e.into()))?;
    tx.commit().await.map_err(|e| (first, e.into()))?;
    match failure {
        Some(f) => Err(f),
        None => Ok(position as u64),
    }
}

/// Runs one projection until `shutdown` turns true.
pub async fn run<P: Projection>(
    pool: PgPool,
    store: EventStore,
    projection: Arc<P>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return;
        }
        match run_once(&pool, &store, projection.as_ref(), &mut shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(projection = P::NAME, error = %e, "projector interrupted; resuming from its checkpoint");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn run_once<P: Projection>(
    pool: &PgPool,
    store: &EventStore,
    projection: &P,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    checkpoint::ensure(pool, P::NAME).await?;
    let cp = checkpoint::get(pool, P::NAME)
        .await?
        .ok_or("checkpoint row vanished")?;
    if cp.halted() {
        // An operator has to look: wait until the halt is cleared (skip or rebuild).
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => return Err("projection is halted".into()),
            _ = shutdown.changed() => return Ok(()),
        }
    }
    let commits = store
        .subscribe(vec![ALL_EVENTS.into()], cp.position as u64 + 1)
        .await?;
    let mut batches = Box::pin(commits.ready_chunks(BATCH));
    loop {
        let batch = tokio::select! {
            b = batches.next() => b,
            _ = shutdown.changed() => return Ok(()),
        };
        let Some(batch) = batch else {
            return Err("event subscription ended".into());
        };
        let commits: Vec<StoredCommit> = batch.into_iter().collect::<Result<_, _>>()?;
        match apply_batch(pool, projection, &commits).await {
            Ok(position) => tracing::debug!(projection = P::NAME, position, "applied"),
            Err((_, e)) if e.is_transient() => return Err(e.into()),
            Err((position, e)) => {
                tracing::error!(projection = P::NAME, position, error = %e, "projection halted");
                checkpoint::halt(pool, P::NAME, position, &e.to_string()).await?;
                return Err(e.into());
            }
        }
    }
}
