//! The vault's work beyond one decision: sealing and opening values, rotating through a
//! lease, proving values against their targets. HTTP handlers and the rotation reactor share
//! it, so a scheduled rotation is the same code path as `POST /credentials/{name}/rotate`.

pub use aegis_vault_services::{n8n, rotators, scram};
pub mod scheduler;

use crate::command::CommandContext;
use crate::domain::incidents::{IncidentId, NewIncident, Severity};
use crate::domain::vault::credentials::{Command, Lifecycle, NewVersion};
use crate::domain::vault::{Credential, CredentialAggregate, CredentialError};
use crate::error::ApiError;
use crate::error::IntoApi;
use crate::http::aggregate;
use crate::keys::KeyError;
use crate::state::AppState;
use aegis_streams::Metadata;
use chrono::{DateTime, Utc};
use std::time::Instant;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Seed 001's 404 for a credential the tenant does not have.
pub fn missing(name: &str) -> ApiError {
    ApiError::not_found(format!("Credential not found: {name}"))
}

/// Maps the credential decider's refusals to seed 001's error bodies.
pub fn credential_error(name: &str) -> impl FnOnce(CredentialError) -> ApiError + '_ {
    move |e| match e {
        CredentialError::NotFound => missing(name),
        CredentialError::NameTaken => {
            ApiError::bad_request("Credential name already exists").with("credential", name)
        }
        CredentialError::NotActive(l) => {
            ApiError::conflict(format!("the credential is {l}")).with("credential", name)
        }
        CredentialError::Rotating { retry_after_ms } => {
            ApiError::conflict("Credential is currently being rotated")
                .with("retry_after_ms", retry_after_ms)
                .with("credential", name)
        }
        e @ CredentialError::VersionRaced { .. } => ApiError::conflict(e.to_string())
            .with("retry_after_ms", 100)
            .with("credential", name),
        e @ CredentialError::NoSuchRotation(_) => ApiError::conflict(e.to_string()),
        e @ (CredentialError::NoSuchVersion(_) | CredentialError::NoValue) => {
            ApiError::validation("version", e.to_string())
        }
    }
}

pub fn key_error(name: &str, e: KeyError) -> ApiError {
    match e {
        KeyError::Shredded => ApiError::new(
            axum::http::StatusCode::GONE,
            "gone",
            format!("the values of `{name}` were destroyed (crypto-shredded) and cannot be read"),
        ),
        KeyError::TenantErased => ApiError::new(
            axum::http::StatusCode::GONE,
            "gone",
            "this tenant's data key was destroyed: no value can be read or sealed for it",
        ),
        other => ApiError::internal(&other),
    }
}

/// A system actor's command context (the rotation reactor).
pub fn system_context(subject: &str) -> CommandContext {
    CommandContext {
        meta: Metadata {
            actor_kind: "system".into(),
            actor_subject: subject.into(),
            correlation_id: Uuid::now_v7().to_string(),
            causation_id: String::new(),
            occurred_at: Utc::now(),
            trace_headers: aegis_streams::trace::current_trace_headers(),
        },
        msg_id: None,
        if_match: None,
    }
}

/// Follows tenant key destructions until `stop`: another instance's erasure drops this
/// instance's cached keys of that tenant, so nothing it sealed opens here either.
pub async fn follow_tenant_keys(
    keys: crate::keys::KeyStore,
    client: async_nats::Client,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), async_nats::SubscribeError> {
    use futures::StreamExt;
    let mut events = client.subscribe("aegis.evt.*.vault.tenant_key.>").await?;
    loop {
        tokio::select! {
            msg = events.next() => match msg {
                Some(msg) => {
                    let tenant = msg.subject.as_str().split('.').nth(2).and_then(|t| Uuid::parse_str(t).ok());
                    if let Some(t) = tenant {
                        keys.forget_tenant(t);
                    }
                }
                None => return Ok(()),
            },
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
    }
}

/// A credential as value reads see it: from memory while the log says nothing changed
/// (see `auth::directory`), else from the log.
pub async fn current(state: &AppState, tenant: Uuid, name: &str) -> Result<Credential, ApiError> {
    let agg = aggregate::<CredentialAggregate>(tenant, name)?;
    state
        .credentials
        .get::<CredentialAggregate>(&agg)
        .await
        .map_err(|e| e.into_api(|e| ApiError::internal(&e)))?
        .ok_or_else(|| missing(name))
}

/// A credential of the tenant, from the log; 404 in seed 001's words when there is none.
pub async fn load(
    state: &AppState,
    tenant: Uuid,
    name: &str,
) -> Result<(Credential, u64, u64), ApiError> {
    let agg = aggregate::<CredentialAggregate>(tenant, name)?;
    let (found, expected) = state
        .executor
        .load::<CredentialAggregate>(&agg)
        .await
        .map_err(|e| e.into_api(|e| ApiError::internal(&e)))?;
    let c = found.ok_or_else(|| missing(name))?;
    Ok((c, expected.last_seq, expected.version))
}

/// Opens `version` of the credential (the current one when `None`).
pub async fn open(
    state: &AppState,
    tenant: Uuid,
    c: &Credential,
    version: Option<u64>,
) -> Result<Zeroizing<String>, ApiError> {
    if c.lifecycle == Lifecycle::Destroyed {
        return Err(key_error(&c.name, KeyError::Shredded));
    }
    let v = match version {
        Some(n) => c.find(n).ok_or_else(|| {
            ApiError::validation("version", format!("version {n} does not exist"))
        })?,
        None => c.current().ok_or_else(|| {
            ApiError::conflict("the credential has no value yet")
                .with("credential", c.name.as_str())
        })?,
    };
    let clear = state
        .keys
        .open(tenant, &c.id, v.version, &v.sealed)
        .await
        .map_err(|e| key_error(&c.name, e))?;
    String::from_utf8(clear.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| ApiError::internal(&KeyError::Tampered))
}

/// The credential a value read opens, its read recorded first. The cached state (see
/// `current`) is confirmed against the log's last commit on the credential, in the same round
/// trip as the read record: an instance whose cache missed a destroy or a new version (a lost
/// invalidation, a reconnect) answers from the log, never from what it remembered.
pub async fn for_value_read(
    state: &AppState,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
) -> Result<Credential, ApiError> {
    let cached = current(state, tenant, name).await?;
    let (fresh, recorded) = tokio::join!(
        load(state, tenant, name),
        record_read(state, ctx, tenant, &cached)
    );
    recorded?;
    let (fresh, _, _) = fresh?;
    if fresh.version() != cached.version() || fresh.lifecycle != cached.lifecycle {
        if let Ok(agg) = aggregate::<CredentialAggregate>(tenant, name) {
            state.credentials.invalidate(&agg.subject());
        }
        // What is served is the log's version: its read is recorded too.
        record_read(state, ctx, tenant, &fresh).await?;
    }
    Ok(fresh)
}

/// Records one read of a credential's value, before the value is used or answered.
pub async fn record_read(
    state: &AppState,
    ctx: &CommandContext,
    tenant: Uuid,
    c: &Credential,
) -> Result<(), ApiError> {
    use crate::domain::vault::reads::{CredentialReadAggregate, ValueRead};
    let read = aggregate::<CredentialReadAggregate>(
        tenant,
        CredentialReadAggregate::id(&c.name, Uuid::now_v7()),
    )?;
    state
        .executor
        .execute::<CredentialReadAggregate>(
            &read,
            &ValueRead {
                name: c.name.clone(),
                version: c.version(),
            },
            ctx,
            true,
        )
        .await
        .map_err(|e| e.into_api(|e| ApiError::internal(&e)))?;
    Ok(())
}

/// What a completed rotation answers (seed 001).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Rotated {
    pub status: &'static str,
    pub credential: String,
    pub previous_version: u64,
    pub new_version: u64,
    pub duration_ms: u64,
    pub rotated_at: DateTime<Utc>,
}

/// Rotates `name`: takes the lease (409 while another rotation holds it), gets the next value
/// from the rotator, seals and records it. A failure leaves the old version active, records
/// the failure and opens an incident.
pub async fn rotate(
    state: &AppState,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
    trigger: &str,
    reason: &str,
) -> Result<(Rotated, u64), ApiError> {
    let started = Instant::now();
    let agg = aggregate::<CredentialAggregate>(tenant, name)?;
    let rotation = Uuid::now_v7().to_string();
    let start = state
        .executor
        .execute::<CredentialAggregate>(
            &agg,
            &Command::StartRotation {
                id: rotation.clone(),
                trigger: trigger.into(),
                reason: reason.into(),
                now: Utc::now(),
            },
            ctx,
            false,
        )
        .await
        .map_err(|e| e.into_api(credential_error(name)))?;
    let c = start.state.ok_or_else(|| missing(name))?;
    let previous = c.version();
    let current = match c.current() {
        Some(_) => Some(open(state, tenant, &c, None).await?),
        None => None,
    };
    let next = rotators::next_value(
        state.config.egress(),
        &c.settings.rotator,
        name,
        current.as_deref().map(|s| s.as_str()),
    )
    .await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let next = match next {
        Ok(v) => v,
        Err(e) => {
            let error = e.to_string();
            tracing::warn!(credential = %name, %tenant, error = %error, "rotation failed; the old version stays active");
            let failed = state
                .executor
                .execute::<CredentialAggregate>(
                    &agg,
                    &Command::FailRotation {
                        id: rotation,
                        error: error.clone(),
                        duration_ms,
                    },
                    ctx,
                    false,
                )
                .await;
            if let Err(e) = failed {
                tracing::error!(credential = %name, error = %e, "could not record the failed rotation");
            }
            let incident = open_rotation_incident(state, ctx, tenant, &c, &error).await;
            let mut err = ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "rotation_failed",
                format!("rotation of `{name}` failed; version {previous} stays active: {error}"),
            )
            .with("credential", name)
            .with("active_version", previous);
            if let Some(id) = incident {
                err = err.with("incident_id", id.to_string());
            }
            return Err(err);
        }
    };
    let version = previous + 1;
    let sealed = state
        .keys
        .seal(tenant, &c.id, version, next.as_bytes())
        .await
        .map_err(|e| key_error(name, e))?;
    let done = state
        .executor
        .execute::<CredentialAggregate>(
            &agg,
            &Command::AddVersion {
                version: NewVersion {
                    version,
                    reason: "rotation".into(),
                    trigger: trigger.into(),
                    restored_from: None,
                    duration_ms,
                    sealed,
                    rotation_id: Some(rotation),
                },
                now: Utc::now(),
            },
            ctx,
            false,
        )
        .await
        .map_err(|e| e.into_api(credential_error(name)))?;
    tracing::info!(credential = %name, %tenant, previous, version, duration_ms, trigger, "credential rotated");
    Ok((
        Rotated {
            status: "rotated",
            credential: name.into(),
            previous_version: previous,
            new_version: version,
            duration_ms,
            rotated_at: Utc::now(),
        },
        done.position,
    ))
}

/// One incident per credential version whose rotation fails: its id is derived from both, so
/// a retried or rescheduled failure finds the incident already open.
async fn open_rotation_incident(
    state: &AppState,
    ctx: &CommandContext,
    tenant: Uuid,
    c: &Credential,
    error: &str,
) -> Option<IncidentId> {
    let id = IncidentId(crate::domain::derived_id(
        "aegis/rotation-failed/v1",
        &[
            tenant.as_bytes(),
            c.id.as_bytes(),
            &c.version().to_be_bytes(),
        ],
    ));
    crate::http::incidents::open_once(
        state,
        ctx,
        tenant,
        NewIncident {
            id,
            title: format!("Credential rotation failed: {}", c.name),
            severity: Severity::High,
            source: "vault".into(),
            description: format!(
                "Rotating `{}` failed and version {} stays active. Error: {error}",
                c.name,
                c.version()
            ),
            agent_id: None,
            dedup_key: None,
        },
    )
    .await
}
