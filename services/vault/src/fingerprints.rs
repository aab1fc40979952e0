//! Keyed fingerprints of the tenant's own secret versions (and of the passwords of its dynamic
//! credentials, kept under their lease), so a leaked value is named without
//! opening the vault: each version's value is MACed (HMAC-SHA256) under a key of the tenant's
//! (`mac.leak`, wrapped under the tenant's key) when it is sealed, and a scan MACs each
//! candidate the same way and looks it up. The fingerprint is only useful with the key,
//! which never leaves this process; the table is an index the vault keeps, not a read
//! model, and nothing outward shows it.
//!
//! Written before the version's event is appended: a write that then fails leaves a
//! fingerprint of a version that never existed, which a lookup ignores (it joins the
//! versions the read model holds).

use aegis_runtime::keys::{Key, KeyError};
use aegis_runtime::Runtime;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use uuid::Uuid;

const PURPOSE: &str = "leak";

pub type Fingerprint = [u8; 32];

/// The tenant's fingerprint key.
pub async fn key(rt: &Runtime, tenant: Uuid) -> Result<Key, KeyError> {
    rt.keys.mac_key(tenant, PURPOSE).await
}

/// The fingerprint of `value` under `key`.
pub fn of(key: &Key, value: &[u8]) -> Fingerprint {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_ref()).expect("HMAC takes keys of any length");
    mac.update(value);
    mac.finalize().into_bytes().into()
}

/// Records the fingerprints of one version's value (as written, and trimmed when that
/// differs: a value pasted into a file rarely keeps its trailing newline). Best effort: the
/// write it belongs to goes on without it, and says so in the log.
pub async fn remember(rt: &Runtime, tenant: Uuid, credential_id: &str, version: u64, value: &[u8]) {
    let key = match key(rt, tenant).await {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(%tenant, credential_id, version, error = %e, "no leak fingerprint for this version: the key is unavailable");
            return;
        }
    };
    let mut prints = vec![of(&key, value)];
    let trimmed = value.trim_ascii();
    if trimmed.len() != value.len() && !trimmed.is_empty() {
        prints.push(of(&key, trimmed));
    }
    for fp in prints {
        let stored = sqlx::query(
            "INSERT INTO vault_leak_fingerprints (tenant_id, fingerprint, credential_id, version) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(fp.as_slice())
        .bind(credential_id)
        .bind(version as i64)
        .execute(&rt.pool)
        .await;
        if let Err(e) = stored {
            tracing::warn!(%tenant, credential_id, version, error = %e, "no leak fingerprint for this version: the index could not be written");
        }
    }
}

/// Which secret version a fingerprint belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// The credential's name (what the vault's routes address it by), or the lease's id.
    pub name: String,
    pub version: u64,
    /// A dynamic credential's password: `name` is its lease.
    pub lease: bool,
}

/// Every fingerprint of the tenant's versions that exist, the newest version first when two
/// versions share a value.
pub async fn index(rt: &Runtime, tenant: Uuid) -> Result<HashMap<Fingerprint, Known>, sqlx::Error> {
    let rows: Vec<(Vec<u8>, String, i64)> = sqlx::query_as(
        "SELECT f.fingerprint, c.name, f.version FROM vault_leak_fingerprints f \
         JOIN vault_credentials c ON c.tenant_id = f.tenant_id AND c.id = f.credential_id \
         JOIN vault_credential_versions v ON v.tenant_id = c.tenant_id AND v.name = c.name \
              AND v.version = f.version \
         WHERE f.tenant_id = $1 ORDER BY f.version",
    )
    .bind(tenant)
    .fetch_all(&rt.pool)
    .await?;
    let leases: Vec<(Vec<u8>, String)> = sqlx::query_as(
        "SELECT f.fingerprint, l.id FROM vault_leak_fingerprints f \
         JOIN vault_dynamic_leases l ON l.tenant_id = f.tenant_id AND l.id = f.credential_id \
         WHERE f.tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(&rt.pool)
    .await?;
    let versions = rows
        .into_iter()
        .map(|(fp, name, version)| (fp, name, version.max(0) as u64, false));
    let passwords = leases.into_iter().map(|(fp, id)| (fp, id, 0, true));
    Ok(versions
        .chain(passwords)
        .filter_map(|(fp, name, version, lease)| {
            let fp: Fingerprint = fp.try_into().ok()?;
            Some((
                fp,
                Known {
                    name,
                    version,
                    lease,
                },
            ))
        })
        .collect())
}
