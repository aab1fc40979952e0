//! Value reads in the vault's read model: each read is a use of its credential
//! (`vault_credential_uses`, the credential's `last_used_at`). Reads are group-committed, so a
//! commit of reads is applied in two statements whatever its size, not two per read.

use crate::event::{decode, occurred_at, uuid};
use crate::runner::ProjectionError;
use aegis_schemas::vault::v1 as pb;
use aegis_streams::StoredCommit;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

const READ: &str = "credential.value_read.v1";

/// Whether every event of `commit` is a value read (the vault projection hands these here).
pub fn only_reads(commit: &StoredCommit) -> bool {
    !commit.events.is_empty() && commit.events.iter().all(|e| e.event_type == READ)
}

/// Applies a commit of value reads (see [`only_reads`]); a commit is one tenant's.
pub async fn apply(
    tx: &mut PgConnection,
    s: &str,
    commit: &StoredCommit,
) -> Result<(), ProjectionError> {
    let Some(first) = commit.events.first() else {
        return Ok(());
    };
    let tenant = uuid(&first.tenant_id)?;
    let (mut names, mut at, mut idx) = (Vec::new(), Vec::<DateTime<Utc>>::new(), Vec::new());
    for (i, env) in commit.events.iter().enumerate() {
        let m: pb::ValueRead = decode(env)?;
        names.push(m.name);
        at.push(occurred_at(env));
        idx.push(i as i32);
    }
    sqlx::query(&format!(
        "INSERT INTO vault_credential_uses{s} (tenant_id, name, used_at, position, idx) \
         SELECT $1, u.name, u.at, $2, u.idx \
         FROM UNNEST($3::text[], $4::timestamptz[], $5::int[]) AS u(name, at, idx)"
    ))
    .bind(tenant)
    .bind(commit.position as i64)
    .bind(&names)
    .bind(&at)
    .bind(&idx)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "UPDATE vault_credentials{s} AS c SET last_used_at = GREATEST(c.last_used_at, u.at) \
         FROM (SELECT name, max(at) AS at FROM UNNEST($2::text[], $3::timestamptz[]) AS r(name, at) \
               GROUP BY name) AS u \
         WHERE c.tenant_id = $1 AND c.name = u.name"
    ))
    .bind(tenant)
    .bind(&names)
    .bind(&at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
