//! The projector runner: reads the whole log in order from the projection's checkpoint, applies
//! each batch and the new checkpoint in one transaction, and halts on a commit it cannot apply.
//!
//! Every projection sees every commit (not only its own context) so its checkpoint reaches
//! every position, which is what `Aegis-Min-Position` waits for. One reader serves them all:
//! the log is read and decoded once per batch, and a batch with nothing for a projection only
//! moves its checkpoint.

use crate::checkpoint;
use aegis_schemas::envelope::v1::Envelope;
use aegis_streams::{EventStore, StoreError, StoredCommit};
use futures::StreamExt;
use sqlx::{PgConnection, PgPool};
use std::future::Future;
use std::pin::Pin;
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
        matches!(self, ProjectionError::Db(e) if transient(e))
    }
}

/// Whether a database error says "not now" rather than "never": the server is unreachable,
/// restarting or shutting down (it ends every session with 57P01 `admin_shutdown`), out of
/// resources, or a transaction lost a serialization race. Work is retried on these; anything
/// else is a fault to report.
pub fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Classes 08 (connection), 53 (insufficient resources), 57 (operator
            // intervention); 40001 serialization failure, 40P01 deadlock.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57")
                || code == "40001"
                || code == "40P01"
        }),
        _ => false,
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

/// Moves the checkpoints of every projection in `names` over commits that change nothing in
/// them, never backwards (a rebuild's swap may have moved one further meanwhile), in one
/// statement: most batches concern two or three projections, and a statement
/// (and a commit) per idle projection per batch cost PostgreSQL more than the work itself.
async fn advance_checkpoints(
    conn: &mut PgConnection,
    names: &[&'static str],
    position: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector_checkpoints SET position = $2, updated_at = now() \
         WHERE name = ANY($1) AND position < $2 AND status = 'running'",
    )
    .bind(names)
    .bind(position)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether any event of `commits` can change `projection`'s tables.
fn concerns<P: Projection>(projection: &P, commits: &[StoredCommit]) -> bool {
    commits
        .iter()
        .flat_map(|c| &c.events)
        .any(|e| projection.handles(e))
}

/// Opens the batch transaction, locks the checkpoint row, and returns the commits of
/// `commits` (ordered by position) that come after it.
async fn begin_after_checkpoint<'t, 'c, P: Projection>(
    conn: &'t mut PgConnection,
    commits: &'c [StoredCommit],
) -> Result<
    (
        sqlx::Transaction<'t, sqlx::Postgres>,
        i64,
        &'c [StoredCommit],
    ),
    (u64, ProjectionError),
> {
    let first = commits.first().map_or(0, |c| c.position);
    let mut tx = <PgConnection as sqlx::Connection>::begin(conn)
        .await
        .map_err(|e| (first, e.into()))?;
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
    conn: &mut PgConnection,
    projection: &P,
    commits: &[StoredCommit],
) -> Result<u64, (u64, ProjectionError)> {
    let first = commits.first().map_or(0, |c| c.position);
    if !concerns(projection, commits) {
        let Some(last) = commits.last().map(|c| c.position) else {
            return Ok(0);
        };
        advance_checkpoints(conn, &[P::NAME], last as i64)
            .await
            .map_err(|e| (first, e.into()))?;
        return Ok(last);
    }
    let (mut tx, start, todo) = begin_after_checkpoint::<P>(conn, commits).await?;
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
            apply_one_by_one(conn, projection, todo).await
        }
    }
}

async fn apply_one_by_one<P: Projection>(
    conn: &mut PgConnection,
    projection: &P,
    commits: &[StoredCommit],
) -> Result<u64, (u64, ProjectionError)> {
    let first = commits.first().map_or(0, |c| c.position);
    let (mut tx, start, todo) = begin_after_checkpoint::<P>(conn, commits).await?;
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

/// The new position of a batch, or the failing position and why.
pub type BatchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<u64, (u64, ProjectionError)>> + Send + 'a>>;

/// A projection of any type, so one runner can drive several.
pub trait AnyProjection: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Whether any event of `commits` can change this projection's tables.
    fn concerned(&self, commits: &[StoredCommit]) -> bool;
    fn apply_batch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        commits: &'a [StoredCommit],
    ) -> BatchFuture<'a>;
}

impl<P: Projection> AnyProjection for P {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn concerned(&self, commits: &[StoredCommit]) -> bool {
        concerns(self, commits)
    }

    fn apply_batch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        commits: &'a [StoredCommit],
    ) -> BatchFuture<'a> {
        Box::pin(apply_batch(conn, self, commits))
    }
}

/// What ends one subscription.
enum Flow {
    Stop,
    /// A halted projection was cleared (skip or rebuild): subscribe again to include it.
    Resubscribe,
}

/// Runs `projections` until `shutdown` turns true. The log is read and decoded once, from the
/// lowest checkpoint, and each batch goes to every projection, each in its own transaction
/// with its own checkpoint; a projection that halts drops out while the others go on.
pub async fn run(
    pool: PgPool,
    store: EventStore,
    projections: Vec<Arc<dyn AnyProjection>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return;
        }
        match run_once(&pool, &store, &projections, &mut shutdown).await {
            Ok(Flow::Stop) => return,
            Ok(Flow::Resubscribe) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, "projectors interrupted; resuming from their checkpoints");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn run_once(
    pool: &PgPool,
    store: &EventStore,
    projections: &[Arc<dyn AnyProjection>],
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Flow, Box<dyn std::error::Error + Send + Sync>> {
    // Each active projection applies its batches on a connection of its own, and the idle
    // ones' checkpoints move on one more, all held for as long as this subscription lasts: a
    // pooled connection cost two more round trips per batch (sqlx tests one when it is taken
    // and again when it is given back), about a fifth of the projectors' CPU per command
    // (`scripts/bench`, a profile of the projectors' own process). A connection that fails
    // ends the subscription; the next one connects afresh.
    let options = pool.connect_options();
    let connect = || async { <PgConnection as sqlx::Connection>::connect_with(&options).await };
    let mut idle_conn = connect().await?;
    let mut active: Vec<(Arc<dyn AnyProjection>, PgConnection)> = Vec::new();
    let mut halted = Vec::new();
    let mut from = u64::MAX;
    for p in projections {
        checkpoint::ensure(pool, p.name()).await?;
        let cp = checkpoint::get(pool, p.name())
            .await?
            .ok_or("checkpoint row vanished")?;
        if cp.halted() {
            // An operator has to look: it rejoins once the halt is cleared (skip or rebuild).
            halted.push(p.name());
        } else {
            from = from.min(cp.position as u64 + 1);
            active.push((p.clone(), connect().await?));
        }
    }
    let mut recheck = tokio::time::interval(Duration::from_secs(1));
    recheck.tick().await;
    if active.is_empty() {
        loop {
            tokio::select! {
                _ = recheck.tick() => if cleared(pool, &halted).await? { return Ok(Flow::Resubscribe) },
                _ = shutdown.changed() => return Ok(Flow::Stop),
            }
        }
    }
    let commits = store.subscribe(vec![ALL_EVENTS.into()], from).await?;
    let mut batches = Box::pin(commits.ready_chunks(BATCH));
    loop {
        let batch = tokio::select! {
            b = batches.next() => b,
            _ = recheck.tick(), if !halted.is_empty() => {
                if cleared(pool, &halted).await? {
                    return Ok(Flow::Resubscribe);
                }
                continue;
            }
            _ = shutdown.changed() => return Ok(Flow::Stop),
        };
        let Some(batch) = batch else {
            return Err("event subscription ended".into());
        };
        // The commits up to one that does not decode are applied; that one halts them all, at its
        // position: every projection reads every commit, and none may pass over it silently.
        let mut commits: Vec<StoredCommit> = Vec::with_capacity(batch.len());
        let mut corrupt = None;
        for c in batch {
            match c {
                Ok(c) => commits.push(c),
                Err(StoreError::Decode { position, reason }) => {
                    corrupt = Some((position, reason));
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        // The projections the batch concerns apply it; the others only move their checkpoints,
        // all in one statement.
        let (concerned, idle): (Vec<_>, Vec<_>) =
            active.iter_mut().partition(|(p, _)| p.concerned(&commits));
        if let (Some(last), false) = (commits.last(), idle.is_empty()) {
            let names: Vec<&'static str> = idle.iter().map(|(p, _)| p.name()).collect();
            advance_checkpoints(&mut idle_conn, &names, last.position as i64).await?;
        }
        let names: Vec<&'static str> = concerned.iter().map(|(p, _)| p.name()).collect();
        let results = futures::future::join_all(
            concerned
                .into_iter()
                .map(|(p, conn)| p.apply_batch(conn, &commits)),
        )
        .await;
        let mut failed = Vec::new();
        for (name, result) in names.into_iter().zip(results) {
            match result {
                Ok(position) => tracing::debug!(projection = name, position, "applied"),
                Err((_, e)) if e.is_transient() => return Err(e.into()),
                Err((position, e)) => {
                    tracing::error!(projection = name, position, error = %e, "projection halted");
                    checkpoint::halt(pool, name, position, &e.to_string()).await?;
                    failed.push(name);
                }
            }
        }
        if !failed.is_empty() {
            active.retain(|(p, _)| !failed.contains(&p.name()));
            halted.extend(failed);
            if active.is_empty() {
                return Ok(Flow::Resubscribe);
            }
        }
        if let Some((position, reason)) = corrupt {
            let why = format!("the commit does not decode: {reason}");
            for (p, _) in &active {
                tracing::error!(projection = p.name(), position, error = %why, "projection halted");
                checkpoint::halt(pool, p.name(), position, &why).await?;
            }
            return Ok(Flow::Resubscribe);
        }
    }
}

/// Whether any of the halted projections has been cleared.
async fn cleared(pool: &PgPool, halted: &[&'static str]) -> Result<bool, sqlx::Error> {
    for name in halted {
        if checkpoint::get(pool, name)
            .await?
            .is_some_and(|cp| !cp.halted())
        {
            return Ok(true);
        }
    }
    Ok(false)
}
