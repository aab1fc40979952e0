//! Projector checkpoints: position and health of each projection.

use sqlx::{PgExecutor, PgPool};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Checkpoint {
    pub name: String,
    pub position: i64,
    pub status: String,
    pub error: Option<String>,
    pub failed_position: Option<i64>,
}

impl Checkpoint {
    pub fn halted(&self) -> bool {
        self.status == "halted"
    }
}

pub async fn ensure(pool: &PgPool, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projector_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn get(db: impl PgExecutor<'_>, name: &str) -> Result<Option<Checkpoint>, sqlx::Error> {
    sqlx::query_as("SELECT name, position, status, error, failed_position FROM projector_checkpoints WHERE name = $1")
        .bind(name)
        .fetch_optional(db)
        .await
}

pub async fn all(pool: &PgPool) -> Result<Vec<Checkpoint>, sqlx::Error> {
    sqlx::query_as("SELECT name, position, status, error, failed_position FROM projector_checkpoints ORDER BY name")
        .fetch_all(pool)
        .await
}

pub async fn halt(
    pool: &PgPool,
    name: &str,
    position: u64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector_checkpoints SET status = 'halted', error = $2, failed_position = $3, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(error)
    .bind(position as i64)
    .execute(pool)
    .await?;
    Ok(())
}

/// Lets a halted projection pass the commit it halted on: true when it was halted at exactly
/// `position` (and now runs again from just after it).
pub async fn skip(pool: &PgPool, name: &str, position: u64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE projector_checkpoints SET status = 'running', error = NULL, failed_position = NULL, \
         position = $2, updated_at = now() WHERE name = $1 AND status = 'halted' AND failed_position = $2",
    )
    .bind(name)
    .bind(position as i64)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
