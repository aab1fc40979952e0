//! Blue/green rebuild: replays the log from position 0 into fresh `<table>__rebuild` tables
//! while the live tables keep answering queries, then swaps them in one short transaction.
//!
//! The swap takes the projection's checkpoint row lock, which the live runner also takes for
//! every batch, so the two never interleave: the rebuild first catches up with whatever the
//! live runner applied meanwhile, renames the tables and moves the checkpoint to where the
//! rebuild stands. The live runner then skips commits at or below that checkpoint.

use crate::runner::{Projection, ProjectionError, ALL_EVENTS};
use aegis_streams::{EventStore, StoreError, StoredCommit};
use futures::StreamExt;
use sqlx::PgPool;

const SUFFIX: &str = "__rebuild";

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("the batch from position {position} cannot be applied: {source}")]
    Apply {
        position: u64,
        source: ProjectionError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildReport {
    /// Commits replayed into the fresh tables.
    pub commits: u64,
    /// Events among them.
    pub events: u64,
    /// The checkpoint the swapped-in tables stand at.
    pub position: u64,
}

/// Commits replayed per transaction during a rebuild.
const REBUILD_BATCH: usize = 5_000;

async fn apply_all<P: Projection>(
    tx: &mut sqlx::PgConnection,
    projection: &P,
    commits: &[StoredCommit],
) -> Result<(), RebuildError> {
    let position = commits.first().map_or(0, |c| c.position);
    projection
        .apply_many(tx, SUFFIX, commits)
        .await
        .map_err(|source| RebuildError::Apply { position, source })
}

/// Reads the log into batches in a task of its own, up to two batches ahead, so the next batch
/// is read and decoded while Postgres applies this one (read then apply in turn left each side
/// idle half the time). The task ends at the end of the range, at the first error, or when the
/// receiver is dropped.
fn read_ahead(
    commits: impl futures::Stream<Item = Result<StoredCommit, StoreError>> + Send + 'static,
) -> tokio::sync::mpsc::Receiver<Result<Vec<StoredCommit>, StoreError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let mut batches = Box::pin(commits.chunks(REBUILD_BATCH));
        while let Some(batch) = batches.next().await {
            let batch: Result<Vec<StoredCommit>, StoreError> = batch.into_iter().collect();
            let failed = batch.is_err();
            if tx.send(batch).await.is_err() || failed {
                break;
            }
        }
    });
    rx
}

/// Rebuilds projection `P` from the whole log, serving the old tables until the swap.
pub async fn rebuild<P: Projection>(
    pool: &PgPool,
    store: &EventStore,
    projection: &P,
) -> Result<RebuildReport, RebuildError> {
    crate::checkpoint::ensure(pool, P::NAME).await?;
    for table in P::TABLES {
        sqlx::query(&format!("DROP TABLE IF EXISTS {table}{SUFFIX}"))
            .execute(pool)
            .await?;
        sqlx::query(&format!(
            "CREATE TABLE {table}{SUFFIX} (LIKE {table} INCLUDING ALL)"
        ))
        .execute(pool)
        .await?;
    }
    let mut report = RebuildReport {
        commits: 0,
        events: 0,
        position: 0,
    };
    let head = store.head().await?;
    let mut batches = read_ahead(
        store
            .read_range(vec![ALL_EVENTS.into()], 1, Some(head))
            .await?,
    );
    while let Some(batch) = batches.recv().await {
        let batch = batch?;
        let mut tx = pool.begin().await?;
        apply_all(&mut tx, projection, &batch).await?;
        tx.commit().await?;
        report.commits += batch.len() as u64;
        report.events += batch.iter().map(|c| c.events.len() as u64).sum::<u64>();
        report.position = batch.last().map_or(report.position, |c| c.position);
    }

    let mut tx = pool.begin().await?;
    let (live,): (i64,) =
        sqlx::query_as("SELECT position FROM projector_checkpoints WHERE name = $1 FOR UPDATE")
            .bind(P::NAME)
            .fetch_one(&mut *tx)
            .await?;
    let live = live as u64;
    if live > report.position {
        // The live runner moved on while we replayed; take those commits too, under the lock.
        let rest: Vec<StoredCommit> = store
            .read_range(vec![ALL_EVENTS.into()], report.position + 1, Some(live))
            .await?
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        apply_all(&mut tx, projection, &rest).await?;
        report.commits += rest.len() as u64;
        report.events += rest.iter().map(|c| c.events.len() as u64).sum::<u64>();
        report.position = live;
    }
    for table in P::TABLES {
        sqlx::query(&format!("DROP TABLE {table}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {table}{SUFFIX} RENAME TO {table}"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "UPDATE projector_checkpoints SET position = $2, status = 'running', error = NULL, failed_position = NULL, \
         updated_at = now() WHERE name = $1",
    )
    .bind(P::NAME)
    .bind(report.position as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(
        projection = P::NAME,
        commits = report.commits,
        position = report.position,
        "rebuilt and swapped in"
    );
    Ok(report)
}

/// Rebuilds the projection called `name`; `None` when no projection has that name.
pub async fn rebuild_named(
    pool: &PgPool,
    store: &EventStore,
    name: &str,
) -> Option<Result<RebuildReport, RebuildError>> {
    use crate::audit::AuditProjection;
    use crate::identity::{IdentityProjection, TenantsProjection};
    use crate::incidents::IncidentsProjection;
    Some(match name {
        TenantsProjection::NAME => rebuild(pool, store, &TenantsProjection).await,
        IdentityProjection::NAME => rebuild(pool, store, &IdentityProjection).await,
        IncidentsProjection::NAME => rebuild(pool, store, &IncidentsProjection).await,
        AuditProjection::NAME => rebuild(pool, store, &AuditProjection).await,
        crate::auto_response::AutoResponseProjection::NAME => {
            rebuild(pool, store, &crate::auto_response::AutoResponseProjection).await
        }
        crate::integrations::IntegrationsProjection::NAME => {
            rebuild(pool, store, &crate::integrations::IntegrationsProjection).await
        }
        crate::vault::VaultProjection::NAME => {
            rebuild(pool, store, &crate::vault::VaultProjection).await
        }
        crate::broker::BrokerProjection::NAME => {
            rebuild(pool, store, &crate::broker::BrokerProjection).await
        }
        _ => return None,
    })
}
