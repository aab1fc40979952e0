//! A version's life (seed 003's versioned secrets): `active → deprecated → destroyed`, and the
//! retention policy that destroys old versions. A destroyed version's key is destroyed, so
//! only a version sealed under its own key can be destroyed alone; the current version never
//! is (write a new one first).

use aegis_kernel::duration::IsoDuration;
use aegis_kernel::Sealed;
use chrono::{DateTime, Utc};

word_enum!(VersionState {
    Active = "active",
    Deprecated = "deprecated",
    Destroyed = "destroyed",
});

/// How many versions a secret keeps, and for how long (`PUT .../retention-policy`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many versions that are not destroyed, the current one included.
    pub max_versions: Option<u32>,
    /// Destroy a version this long after it was written (ISO 8601, as sent).
    pub delete_after: Option<String>,
    /// Whether the policy is applied by itself when a new version is written; otherwise only
    /// on `enforce-retention`.
    pub auto_destroy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub version: u64,
    pub reason: String,
    pub trigger: String,
    pub restored_from: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub sealed: Sealed,
    pub state: VersionState,
    /// Who wrote it (the actor's subject).
    pub created_by: String,
    /// Who the writer says changed it (seed 003's `metadata.changedBy`), if it said.
    pub changed_by: String,
    /// Sealed under a key of its own, so it can be destroyed alone; versions written before
    /// per-version keys share the credential's key.
    pub own_key: bool,
}

/// Why a version cannot take the state asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionRefusal {
    #[error(
        "version {0} is the current version and cannot be destroyed; write a new version first"
    )]
    Current(u64),
    #[error("version {0} shares the credential's key (it was written before per-version keys) and cannot be destroyed alone; destroy the credential")]
    SharedKey(u64),
    #[error("version {version} is {from} and cannot become {to}")]
    Backwards {
        version: u64,
        from: VersionState,
        to: VersionState,
    },
}

/// Whether `v` may move to `to` while `current` is the credential's current version;
/// `Ok(false)` when it is already there (nothing to record).
pub fn may_become(v: &Version, current: u64, to: VersionState) -> Result<bool, VersionRefusal> {
    if v.state == to {
        return Ok(false);
    }
    match (v.state, to) {
        (VersionState::Destroyed, _) | (_, VersionState::Active) => {
            Err(VersionRefusal::Backwards {
                version: v.version,
                from: v.state,
                to,
            })
        }
        (_, VersionState::Destroyed) if v.version == current => {
            Err(VersionRefusal::Current(v.version))
        }
        (_, VersionState::Destroyed) if !v.own_key => Err(VersionRefusal::SharedKey(v.version)),
        _ => Ok(true),
    }
}

/// The versions `policy` destroys at `now`: beyond `max_versions` (oldest first) or older
/// than `delete_after`; never `current`, and only those that can be destroyed alone.
pub fn beyond(
    versions: &[Version],
    current: u64,
    policy: &Retention,
    now: DateTime<Utc>,
) -> Vec<u64> {
    let kept: Vec<&Version> = versions
        .iter()
        .filter(|v| v.state != VersionState::Destroyed)
        .collect();
    let excess = policy
        .max_versions
        .map_or(0, |max| kept.len().saturating_sub(max.max(1) as usize));
    let age = policy
        .delete_after
        .as_deref()
        .and_then(|d| IsoDuration::parse("deleteAfter", d).ok());
    kept.iter()
        .enumerate()
        .filter(|(i, v)| {
            let too_many = *i < excess;
            let too_old = age
                .and_then(|a| a.after(v.created_at))
                .is_some_and(|until| until <= now);
            (too_many || too_old) && v.version != current && v.own_key
        })
        .map(|(_, v)| v.version)
        .collect()
}
