//! Reading credentials and their values: from the log, or from the credential cache while the
//! log says nothing changed; every value read recorded before the value is used.

use crate::error::VaultError;
use aegis_kernel::Aggregate;
use aegis_runtime::command::{CommandContext, CommandError};
use aegis_runtime::keys::KeyError;
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_streams::StoreError;
use aegis_vault::credentials::Lifecycle;
use aegis_vault::reads::{CredentialReadAggregate, ValueRead};
use aegis_vault::{Credential, CredentialAggregate, CredentialError};
use uuid::Uuid;
use zeroize::Zeroizing;

/// A credential as value reads see it: from memory while the log says nothing changed
/// (see `aegis_runtime::directory`), else from the log.
pub async fn current(rt: &Runtime, tenant: Uuid, name: &str) -> Result<Credential, VaultError> {
    let agg = address::<CredentialAggregate>(tenant, name)
        .map_err(|e| VaultError::credential(name)(e.into()))?;
    rt.credentials
        .get::<CredentialAggregate>(&agg)
        .await
        .map_err(VaultError::credential(name))?
        .ok_or_else(|| VaultError::Missing(name.into()))
}

/// A credential of the tenant, from the log, with the position of its last commit and its
/// version.
pub async fn load(
    rt: &Runtime,
    tenant: Uuid,
    name: &str,
) -> Result<(Credential, u64, u64), VaultError> {
    let (found, position, version) = rt
        .current::<CredentialAggregate>(tenant, name)
        .await
        .map_err(VaultError::credential(name))?;
    let c = found.ok_or_else(|| VaultError::Missing(name.into()))?;
    Ok((c, position, version))
}

/// Opens `version` of the credential (the current one when `None`).
pub async fn open(
    rt: &Runtime,
    tenant: Uuid,
    c: &Credential,
    version: Option<u64>,
) -> Result<Zeroizing<String>, VaultError> {
    if c.lifecycle == Lifecycle::Destroyed {
        return Err(VaultError::key(&c.name)(KeyError::Shredded));
    }
    let v = match version {
        Some(n) => c.find(n).ok_or(VaultError::NoSuchVersion(n))?,
        None => c
            .current()
            .ok_or_else(|| VaultError::NoValue(c.name.clone()))?,
    };
    let clear = crate::keys::open_version(rt, tenant, c, v)
        .await
        .map_err(VaultError::key(&c.name))?;
    String::from_utf8(clear.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| VaultError::key(&c.name)(KeyError::Tampered))
}

/// The credential a value read opens, its read recorded first. The cached state (see
/// `current`) is confirmed against the log's last commit on the credential, in the same round
/// trip as the read record: an instance whose cache missed a destroy or a new version (a lost
/// invalidation, a reconnect) answers from the log, never from what it remembered. A read the
/// credential refuses (retired, destroyed, no value yet) is recorded as refused, and refused.
pub async fn for_value_read(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
) -> Result<Credential, VaultError> {
    let cached = current(rt, tenant, name).await?;
    if let Some(refusal) = refusal(&cached) {
        return Err(refused(rt, ctx, tenant, &cached, refusal).await);
    }
    let (fresh, recorded) = tokio::join!(
        load(rt, tenant, name),
        record_read(rt, ctx, tenant, &cached)
    );
    recorded?;
    let (fresh, _, _) = fresh?;
    if fresh.version() != cached.version() || fresh.lifecycle != cached.lifecycle {
        if let Ok(agg) = address::<CredentialAggregate>(tenant, name) {
            rt.credentials.invalidate(&agg.subject());
        }
        if let Some(refusal) = refusal(&fresh) {
            return Err(refused(rt, ctx, tenant, &fresh, refusal).await);
        }
        // What is served is the log's version: its read is recorded too.
        record_read(rt, ctx, tenant, &fresh).await?;
    }
    Ok(fresh)
}

/// Why a credential's value cannot be served, if it cannot.
fn refusal(c: &Credential) -> Option<VaultError> {
    match c.lifecycle {
        Lifecycle::Destroyed => Some(VaultError::key(&c.name)(KeyError::Shredded)),
        Lifecycle::Retired => Some(VaultError::credential(&c.name)(CommandError::Domain(
            CredentialError::NotActive(Lifecycle::Retired),
        ))),
        _ if c.current().is_none() => Some(VaultError::NoValue(c.name.clone())),
        _ => None,
    }
}

/// Records a refused read (seed 001's audit log shows it with `success: false`) and answers
/// the refusal, or why it could not be recorded.
async fn refused(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    c: &Credential,
    refusal: VaultError,
) -> VaultError {
    match record(rt, ctx, tenant, c, Some(refusal.to_string())).await {
        Ok(position) => VaultError::RefusedRead {
            refusal: Box::new(refusal),
            position,
        },
        Err(e) => e,
    }
}

/// Records one read of a credential's value, before the value is used or answered.
pub async fn record_read(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    c: &Credential,
) -> Result<(), VaultError> {
    record(rt, ctx, tenant, c, None).await.map(|_| ())
}

async fn record(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    c: &Credential,
    refused: Option<String>,
) -> Result<u64, VaultError> {
    record_version(rt, ctx, tenant, &c.name, c.version(), refused).await
}

/// Records one read of `version` of the credential `name` (refused, with why, when
/// `refused`), before the value is used or answered; the position it was recorded at.
/// Concurrent reads of the tenant share one commit (`aegis_runtime::records`).
pub async fn record_version(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
    version: u64,
    refused: Option<String>,
) -> Result<u64, VaultError> {
    let event = CredentialReadAggregate::encode(&ValueRead {
        name: name.to_string(),
        version,
        refused,
    });
    rt.record::<CredentialReadAggregate>(tenant, event, ctx.meta.clone())
        .await
        .map_err(|e| VaultError::Recording(CommandError::Store(StoreError::Nats(e.to_string()))))
}
