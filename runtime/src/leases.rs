//! Leases across instances: Postgres session advisory locks on a connection of their own, so
//! a lease ends with its holder (dropping the connection, or the process dying, releases it).
//! SIEM forwarders, scheduled-report slots and projection rebuilds each run on one instance.

use sha2::{Digest, Sha256};
use sqlx::Connection;

/// The lock key of `purpose` for `id`: the first 8 bytes of a SHA-256 over both, so two ids
/// that share a prefix (UUIDv7s made in the same millisecond) never share a lock.
pub fn key(purpose: &str, id: &[u8]) -> i64 {
    let digest = Sha256::new()
        .chain_update(purpose.as_bytes())
        .chain_update([0])
        .chain_update(id)
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The lease one projection's rebuild holds: a rebuild drops and refills a shadow table, so
/// two at once (on two instances, or the API and `aegis rebuild`) would destroy each other's
/// work.
pub fn rebuild_key(projection: &str) -> i64 {
    key("rebuild", projection.as_bytes())
}

/// A held lease; released when dropped.
pub struct Lease {
    _session: sqlx::PgConnection,
}

/// Takes the lease `key` if nobody holds it: `None` when another session does.
pub async fn try_take(database_url: &str, key: i64) -> Result<Option<Lease>, sqlx::Error> {
    let mut session = sqlx::PgConnection::connect(database_url).await?;
    let (taken,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut session)
        .await?;
    Ok(taken.then_some(Lease { _session: session }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sharing_a_prefix_get_different_keys() {
        let a = uuid::Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
        let b = uuid::Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0002);
        assert_ne!(key("siem", a.as_bytes()), key("siem", b.as_bytes()));
        assert_ne!(key("siem", a.as_bytes()), key("report", a.as_bytes()));
        assert_eq!(key("siem", a.as_bytes()), key("siem", a.as_bytes()));
    }
}
