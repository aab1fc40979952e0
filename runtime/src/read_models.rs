//! Read-your-writes for readers of the read models: a reader that holds a log position (or
//! takes the log's head) waits, bounded, until the projections it reads have applied it. The
//! projectors record each projection's position in `projector_checkpoints`.

use crate::Runtime;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// The lowest position every named projection has reached.
async fn min_position(pool: &PgPool, names: &[&str]) -> Result<(i64, bool), sqlx::Error> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let row: (Option<i64>, Option<bool>) = sqlx::query_as(
        "SELECT min(position), bool_or(status = 'halted') FROM projector_checkpoints WHERE name = ANY($1)",
    )
    .bind(&names)
    .fetch_one(pool)
    .await?;
    Ok((row.0.unwrap_or(0), row.1.unwrap_or(false)))
}

/// Why a reader that needs the read models at a position cannot read yet.
#[derive(Debug, thiserror::Error)]
pub enum Lagging {
    #[error("a read model this query needs is halted; see /readyz")]
    Halted,
    /// A position the log has not reached was never handed out: refused, not waited for.
    #[error(
        "Aegis-Min-Position {min} is beyond the log head {head}; send a position Aegis returned"
    )]
    Beyond { min: u64, head: u64 },
    #[error("the read model is at position {position}, not yet {min}; retry")]
    Behind { position: i64, min: u64 },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Log(#[from] aegis_streams::StoreError),
}

impl Runtime {
    /// Waits, for at most `AEGIS_MIN_POSITION_WAIT_MS`, until every projection in `names` has
    /// applied position `min`: read-your-writes for a reader that holds a position.
    pub async fn read_models_at(&self, names: &[&str], min: u64) -> Result<(), Lagging> {
        let seen = names.join(",");
        if self.applied_at(&seen) >= min {
            return Ok(());
        }
        let patience = Duration::from_millis(self.config.min_position_wait_ms);
        let deadline = Instant::now() + patience;
        let mut pause = Duration::from_millis(2);
        let mut first = true;
        loop {
            let (position, halted) = min_position(&self.pool, names).await?;
            if position as u64 >= min {
                self.saw_applied(seen, position as u64);
                return Ok(());
            }
            if halted {
                return Err(Lagging::Halted);
            }
            if first {
                let head = self.executor.store().head().await?;
                if min > head {
                    return Err(Lagging::Beyond { min, head });
                }
                first = false;
            }
            if Instant::now() >= deadline {
                return Err(Lagging::Behind { position, min });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// A position every projection in `names` is known to hold, without asking: what the
    /// last wait for them saw. A query that starts after this sees at least this position.
    pub fn read_models_hold(&self, names: &[&str]) -> u64 {
        self.applied_at(&names.join(","))
    }

    /// The highest position the projections named `seen` were seen to hold together.
    fn applied_at(&self, seen: &str) -> u64 {
        self.applied
            .lock()
            .ok()
            .and_then(|a| a.get(seen).copied())
            .unwrap_or(0)
    }

    fn saw_applied(&self, seen: String, position: u64) {
        if let Ok(mut a) = self.applied.lock() {
            let at = a.entry(seen).or_default();
            *at = (*at).max(position);
        }
    }

    /// Waits (as [`Runtime::read_models_at`]) until every projection in `names` holds what
    /// the log held when this was called: read-your-writes for a reader with no position of
    /// its own (a reactor, a scheduled report).
    pub async fn read_models_caught_up(&self, names: &[&str]) -> Result<(), Lagging> {
        let head = self.executor.store().head().await?;
        self.read_models_at(names, head).await
    }
}
