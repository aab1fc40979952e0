//! Seed 003's versioned secrets: a credential seen through another door. A write to a name
//! the tenant does not have creates it (Vault KV v2 style); every version keeps who wrote it
//! and why; a version is read (audited before the value leaves), deprecated or destroyed (its
//! key destroyed, so the ciphertext the log keeps can never be opened); a rollback writes the
//! old value as a new version; two versions are compared without either value leaving; a
//! retention policy destroys old versions.

use crate::access::{current, load, record_version};
use crate::keys::{destroy_version, open_version, seal_version};
use crate::VaultError;
use aegis_runtime::command::{CommandContext, CommandError, Outcome};
use aegis_runtime::keys::{KeyError, Sealed};
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_vault::credentials::{Command, Lifecycle, NewCredential, NewVersion};
use aegis_vault::versions::{Retention, Version, VersionState};
use aegis_vault::{Credential, CredentialAggregate, CredentialError, Settings};
use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

/// What a write says about itself (seed 003's `metadata`).
#[derive(Debug, Clone, Default)]
pub struct WriteNote {
    pub reason: Option<String>,
    pub changed_by: Option<String>,
}

async fn execute(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
    command: &Command,
    assume_new: bool,
) -> Result<Outcome<Option<Credential>>, VaultError> {
    let agg = address::<CredentialAggregate>(tenant, name)
        .map_err(|e| VaultError::credential(name)(e.into()))?;
    rt.executor
        .execute::<CredentialAggregate>(&agg, command, ctx, assume_new)
        .await
        .map_err(VaultError::credential(name))
}

/// A credential as a command left it: where its commit is, and its version (its ETag).
pub struct Written {
    pub credential: Credential,
    pub position: u64,
    pub version: u64,
}

fn written(outcome: Outcome<Option<Credential>>, name: &str) -> Result<Written, VaultError> {
    let credential = outcome
        .state
        .ok_or_else(|| VaultError::Missing(name.into()))?;
    Ok(Written {
        credential,
        position: outcome.position,
        version: outcome.version,
    })
}

/// A version written by hand (not a rotation), sealed under its own key.
fn new_version(version: u64, reason: String, changed_by: String, sealed: Sealed) -> NewVersion {
    NewVersion {
        version,
        reason,
        trigger: String::new(),
        restored_from: None,
        duration_ms: 0,
        sealed,
        rotation_id: None,
        changed_by,
        own_key: true,
    }
}

/// Writes `value` as the next version of `name`, creating the credential when the tenant
/// has none of that name. Answers the credential as written and the commit's position.
///
/// Two writers without `If-Match` both land, one after the other, as Vault KV v2 does: the
/// one that lost the race for the version number (or for creating the secret) writes again
/// on top. Both sealed under the same key, so the lost attempt leaves nothing behind.
pub async fn write(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
    value: &str,
    note: WriteNote,
) -> Result<Written, VaultError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match write_once(rt, ctx, tenant, name, value, note.clone()).await {
            Err(VaultError::Credential {
                error:
                    CommandError::Domain(
                        CredentialError::NameTaken | CredentialError::VersionRaced { .. },
                    ),
                ..
            }) if attempt < RACE_ATTEMPTS => {
                // A random pause, growing with each lost race, spreads the writers out.
                let ms = rand::thread_rng().gen_range(0..=5 * u64::from(attempt));
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            done => return done,
        }
    }
}

/// How many times a write that lost a race to another writer is tried in all (sixteen
/// writers at once all land).
const RACE_ATTEMPTS: u32 = 16;

async fn write_once(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
    value: &str,
    note: WriteNote,
) -> Result<Written, VaultError> {
    let reason = note.reason.unwrap_or_else(|| "update".into());
    let changed_by = note.changed_by.unwrap_or_default();
    match load(rt, tenant, name).await {
        Ok((c, _, _)) => {
            let version = c.version() + 1;
            let sealed = seal_version(rt, tenant, &c.id, version, value.as_bytes())
                .await
                .map_err(VaultError::key(name))?;
            let command = Command::AddVersion {
                version: new_version(version, reason, changed_by, sealed),
                now: Utc::now(),
            };
            let after = written(execute(rt, ctx, tenant, name, &command, false).await?, name)?;
            // A policy that destroys by itself may have destroyed older versions.
            shred(rt, tenant, &c, &after.credential).await?;
            Ok(after)
        }
        Err(VaultError::Missing(_)) => {
            let id = format!("cred_{}", Uuid::now_v7().simple());
            let sealed = seal_version(rt, tenant, &id, 1, value.as_bytes())
                .await
                .map_err(VaultError::key(name))?;
            let command = Command::Create {
                credential: NewCredential {
                    id,
                    name: name.to_string(),
                    credential_type: "secret".into(),
                    provider: "versioned".into(),
                    settings: Settings::default(),
                },
                value: Some(new_version(1, reason, changed_by, sealed)),
            };
            written(execute(rt, ctx, tenant, name, &command, false).await?, name)
        }
        Err(e) => Err(e),
    }
}

/// One version of `name` and its value, the read recorded before the value is opened. A
/// version that cannot be served (destroyed, or its credential destroyed) is recorded as a
/// refused read and refused.
///
/// As `for_value_read` does, the credential comes from memory and is confirmed against the
/// log in the same round trip as the read record: what is served is always the log's state,
/// and a read costs one wait on the log rather than two.
pub async fn read(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
    version: u64,
) -> Result<(Credential, Version, Zeroizing<String>), VaultError> {
    let cached = current(rt, tenant, name).await?;
    // A version newer than memory (an invalidation still on its way) is looked up in the log.
    let cached = match cached.find(version) {
        Some(_) => cached,
        None => load(rt, tenant, name).await?.0,
    };
    if shredded(&cached, version)? {
        return Err(refused_version(rt, ctx, tenant, name, version).await);
    }
    let (fresh, recorded) = tokio::join!(
        load(rt, tenant, name),
        record_version(rt, ctx, tenant, name, version, None)
    );
    recorded?;
    let (c, _, _) = fresh?;
    let v = c
        .find(version)
        .cloned()
        .ok_or(VaultError::NoSuchVersion(version))?;
    if c.lifecycle != cached.lifecycle || cached.find(version).map(|v| v.state) != Some(v.state) {
        if let Ok(agg) = address::<CredentialAggregate>(tenant, name) {
            rt.credentials.invalidate(&agg.subject());
        }
        if shredded(&c, version)? {
            return Err(refused_version(rt, ctx, tenant, name, version).await);
        }
    }
    let clear = open_version(rt, tenant, &c, &v)
        .await
        .map_err(VaultError::key(name))?;
    let text = String::from_utf8(clear.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| VaultError::key(name)(KeyError::Tampered))?;
    Ok((c, v, text))
}

/// Whether `version` of the credential can never be opened again (it or its credential is
/// destroyed); an unknown version is an error of its own.
fn shredded(c: &Credential, version: u64) -> Result<bool, VaultError> {
    let v = c.find(version).ok_or(VaultError::NoSuchVersion(version))?;
    Ok(c.lifecycle == Lifecycle::Destroyed || v.state == VersionState::Destroyed)
}

/// Records a refused read of a shredded version and answers the refusal, or why it could not
/// be recorded.
async fn refused_version(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
    version: u64,
) -> VaultError {
    let refusal = VaultError::key(name)(KeyError::Shredded);
    match record_version(rt, ctx, tenant, name, version, Some(refusal.to_string())).await {
        Ok(position) => VaultError::RefusedRead {
            refusal: Box::new(refusal),
            position,
        },
        Err(e) => e,
    }
}

/// Moves one version to `state`; destroying it destroys its key, after the change is
/// recorded (a retry of an interrupted destroy finishes it).
pub async fn set_state(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
    version: u64,
    state: VersionState,
    reason: String,
) -> Result<Written, VaultError> {
    let command = Command::SetVersionState {
        version,
        state,
        reason,
    };
    let done = written(execute(rt, ctx, tenant, name, &command, false).await?, name)?;
    if state == VersionState::Destroyed {
        destroy_version(rt, tenant, &done.credential, version)
            .await
            .map_err(VaultError::key(name))?;
    }
    Ok(done)
}

/// Writes the value of `target` as a new version. A destroyed target is refused: its value
/// is gone.
pub async fn rollback(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
    target: u64,
    reason: Option<String>,
) -> Result<(Written, u64), VaultError> {
    let (c, _, _) = load(rt, tenant, name).await?;
    let from = c.version();
    if c.lifecycle == Lifecycle::Destroyed {
        return Err(VaultError::key(name)(KeyError::Shredded));
    }
    let v = c.find(target).ok_or(VaultError::NoSuchVersion(target))?;
    if target == from {
        return Err(VaultError::AlreadyCurrent(target));
    }
    if v.state == VersionState::Destroyed {
        return Err(VaultError::credential(name)(CommandError::Domain(
            CredentialError::VersionDestroyed(target),
        )));
    }
    let clear = open_version(rt, tenant, &c, v)
        .await
        .map_err(VaultError::key(name))?;
    let version = from + 1;
    let sealed = seal_version(rt, tenant, &c.id, version, &clear)
        .await
        .map_err(VaultError::key(name))?;
    let command = Command::AddVersion {
        version: NewVersion {
            restored_from: Some(target),
            ..new_version(
                version,
                reason.unwrap_or_else(|| "rollback".into()),
                String::new(),
                sealed,
            )
        },
        now: Utc::now(),
    };
    let done = written(execute(rt, ctx, tenant, name, &command, false).await?, name)?;
    Ok((done, from))
}

/// Two versions compared without either value leaving: each value's HMAC under a key made
/// for this comparison only, so the digests show whether the values differ and nothing that
/// could be matched anywhere else.
pub struct Compared {
    pub first: (Version, String),
    pub second: (Version, String),
    pub different: bool,
}

pub async fn compare(
    rt: &Runtime,
    tenant: Uuid,
    name: &str,
    first: u64,
    second: u64,
) -> Result<(Credential, Compared), VaultError> {
    let (c, _, _) = load(rt, tenant, name).await?;
    let mut key = Zeroizing::new([0u8; 32]);
    rand::thread_rng().fill_bytes(key.as_mut());
    let digest = |clear: &[u8]| -> Result<String, VaultError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_ref())
            .map_err(|_| VaultError::key(name)(KeyError::Tampered))?;
        mac.update(clear);
        Ok(hex::encode(mac.finalize().into_bytes()))
    };
    let mut out = Vec::with_capacity(2);
    for n in [first, second] {
        let v = c.find(n).cloned().ok_or(VaultError::NoSuchVersion(n))?;
        if v.state == VersionState::Destroyed || c.lifecycle == Lifecycle::Destroyed {
            return Err(VaultError::credential(name)(CommandError::Domain(
                CredentialError::VersionDestroyed(n),
            )));
        }
        let clear = open_version(rt, tenant, &c, &v)
            .await
            .map_err(VaultError::key(name))?;
        let d = digest(&clear)?;
        out.push((v, d));
    }
    let second = out.pop().ok_or(VaultError::NoSuchVersion(second))?;
    let first = out.pop().ok_or(VaultError::NoSuchVersion(first))?;
    let different = first.1 != second.1;
    Ok((
        c,
        Compared {
            first,
            second,
            different,
        },
    ))
}

pub async fn set_retention(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
    policy: Retention,
) -> Result<Written, VaultError> {
    written(
        execute(rt, ctx, tenant, name, &Command::SetRetention(policy), false).await?,
        name,
    )
}

/// Applies the retention policy now: the versions it destroyed, after their keys are gone,
/// and the credential after it.
pub async fn enforce_retention(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
) -> Result<(Written, Vec<u64>), VaultError> {
    let (before, _, _) = load(rt, tenant, name).await?;
    let command = Command::EnforceRetention { now: Utc::now() };
    let done = written(execute(rt, ctx, tenant, name, &command, false).await?, name)?;
    let destroyed = shred(rt, tenant, &before, &done.credential).await?;
    Ok((done, destroyed))
}

/// Destroys the keys of the versions `after` holds destroyed and `before` did not: the
/// change is recorded, and now the values go.
async fn shred(
    rt: &Runtime,
    tenant: Uuid,
    before: &Credential,
    after: &Credential,
) -> Result<Vec<u64>, VaultError> {
    let destroyed: Vec<u64> = after
        .versions
        .iter()
        .filter(|v| v.state == VersionState::Destroyed)
        .filter(|v| {
            before
                .find(v.version)
                .is_some_and(|b| b.state != VersionState::Destroyed)
        })
        .map(|v| v.version)
        .collect();
    for version in &destroyed {
        destroy_version(rt, tenant, after, *version)
            .await
            .map_err(VaultError::key(&after.name))?;
    }
    Ok(destroyed)
}
