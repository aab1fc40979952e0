//! `GET /audit/export`: the tenant's events in a range with the signed checkpoints that cover
//! them and an inclusion proof for each, verifiable offline (`aegis verify-audit`).
//! `GET /audit/public-key`: the key those checkpoints verify with.

use crate::audit_bundle::{Bundle, BundleCheckpoint, BundleEvent, FORMAT};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::Query;
use crate::http::openapi::{params, AuthErrors, ErrorBody};
use crate::http::reply::{Data, Reply};
use crate::state::AppState;
use aegis_audit::{Checkpoint, CheckpointAggregate};
use aegis_kernel::Aggregate;
use aegis_reactors::audit_checkpoints::{aggregate, key_id};
use aegis_schemas::Message;
use aegis_streams::merkle::{leaf, Tree};
use axum::extract::State;
use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The most events one bundle holds (`limit`'s ceiling and default); a longer range is
/// exported in pages, each naming where the next starts.
const MAX_EVENTS: usize = 100_000;
const DEFAULT_EVENTS: usize = 10_000;
/// The most log positions (every tenant's) one request reads: the cost of a page is bounded
/// by what the server scans, not only by what the caller owns.
const MAX_SCAN: u64 = 250_000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// First log position (default 1).
    #[param(minimum = 1)]
    pub from: Option<i64>,
    /// Last log position, inclusive (default: the last one checkpointed).
    #[param(minimum = 1)]
    pub to: Option<i64>,
    /// At most this many events in this page (1 to 100000, default 10000); whole
    /// checkpoints only, so a page may end early and `next_from` says where to go on.
    #[param(minimum = 1, maximum = 100000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKey {
    /// Base64 Ed25519 public key; pass it to `aegis verify-audit --public-key`.
    pub public_key: String,
    pub key_id: String,
}

/// The public key audit checkpoints are signed with.
#[utoipa::path(get, path = "/audit/public-key", tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "The checkpoint key", body = Data<PublicKey>), AuthErrors))]
pub(super) async fn public_key(State(state): State<AppState>) -> Reply {
    let key = state.audit_key.verifying_key();
    Reply::data(
        StatusCode::OK,
        PublicKey {
            public_key: B64.encode(key.as_bytes()),
            key_id: key_id(&key),
        },
    )
}

/// The tenant's events in a range, with signed checkpoints and inclusion proofs.
#[utoipa::path(get, path = "/audit/export", tag = "audit", security(("bearer" = [])),
    params(ExportQuery, params::Tenant),
    responses(
        (status = 200, description = "A bundle to verify offline", body = Bundle),
        AuthErrors,
        (status = 422, description = "A bad range, or more events than one bundle holds", body = ErrorBody),
    ))]
pub(super) async fn export(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<ExportQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let store = state.executor.store();
    let all = checkpoints(&state).await?;
    let sealed = all.last().map_or(0, |c| c.to);
    for (field, v) in [("from", q.from), ("to", q.to)] {
        if v.is_some_and(|v| v < 1) {
            return Err(ApiError::validation(
                field,
                format!("{field} must be a log position (1 or more)"),
            ));
        }
    }
    let from = q.from.map_or(1, |v| v as u64);
    let to = q.to.map_or(sealed, |v| v as u64);
    if to < from {
        return Err(ApiError::validation(
            "to",
            "the range ends before it starts",
        ));
    }
    let limit = match q.limit {
        None => DEFAULT_EVENTS,
        Some(l) if (1..=MAX_EVENTS as i64).contains(&l) => l as usize,
        Some(_) => {
            return Err(ApiError::validation(
                "limit",
                format!("limit must be 1 to {MAX_EVENTS}"),
            ))
        }
    };
    let prefix = format!("aegis.evt.{}.", tenant.0);
    let mut checkpoints = Vec::new();
    let mut events = Vec::new();
    let mut scanned = 0u64;
    let mut next_from = None;
    for c in all.iter().filter(|c| c.to >= from && c.from <= to) {
        // A page holds whole checkpoints; the first always fits, however large.
        if !checkpoints.is_empty()
            && (events.len() >= limit || scanned + (c.to - c.from + 1) > MAX_SCAN)
        {
            next_from = Some(c.from.max(from));
            break;
        }
        scanned += c.to - c.from + 1;
        let index = checkpoints.len();
        let mut leaves = Vec::with_capacity(c.count.min(MAX_SCAN) as usize);
        let mut mine = Vec::new();
        let mut commits = Box::pin(
            store
                .read_range(vec!["aegis.evt.>".into()], c.from, Some(c.to))
                .await?,
        );
        while let Some(commit) = commits.next().await {
            let commit = commit?;
            let wanted =
                commit.subject.starts_with(&prefix) && (from..=to).contains(&commit.position);
            for (i, env) in commit.events.iter().enumerate() {
                if wanted {
                    mine.push((commit.position, i, leaves.len(), env.clone()));
                }
                leaves.push(leaf(&env.hash));
            }
        }
        if events.len() + mine.len() > MAX_EVENTS {
            return Err(ApiError::validation(
                "to",
                format!(
                    "one checkpoint holds more than {MAX_EVENTS} of your events; narrow from/to"
                ),
            ));
        }
        // One tree per checkpoint and a proof walk per event, on the blocking pool: hashing
        // a large checkpoint must not hold an async worker.
        let proven = tokio::task::spawn_blocking(move || {
            let tree = Tree::new(leaves);
            mine.into_iter()
                .map(|(position, i, leaf_index, env)| {
                    bundle_event(&tree, index, position, i, leaf_index, env)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| ApiError::internal(&e))?;
        events.extend(proven);
        checkpoints.push(BundleCheckpoint {
            from: c.from,
            to: c.to,
            count: c.count,
            root: hex::encode(&c.root),
            signature: hex::encode(&c.signature),
            key_id: c.key_id.clone(),
        });
    }
    let unsealed = if to > sealed {
        store.count(vec![format!("{prefix}>")], sealed + 1).await?
    } else {
        0
    };
    Ok(Reply::body(
        StatusCode::OK,
        Bundle {
            format: FORMAT.into(),
            tenant_id: tenant.0.to_string(),
            public_key: B64.encode(state.audit_key.verifying_key().as_bytes()),
            checkpoints,
            events,
            unsealed,
            next_from,
        },
    ))
}

/// Every signed checkpoint, in order. The history grows by one event per interval for ever,
/// so it is kept in memory and only its new commits are read on each export.
async fn checkpoints(state: &AppState) -> Result<Vec<Checkpoint>, ApiError> {
    let mut known = state.checkpoints.lock().await;
    let (list, expected) = &mut *known;
    let newer = state.executor.store().load(&aggregate(), *expected).await?;
    for env in newer.commits.iter().flat_map(|c| &c.events) {
        list.push(CheckpointAggregate::decode(env)?);
    }
    *expected = newer.expected;
    Ok(list.clone())
}

/// One event of the bundle with its inclusion proof. Credential material (a password hash, a
/// key digest, a sealed value) never leaves: the envelope's `credential` is dropped (the hash
/// covers its digest, so the event still verifies), and an event written before the material
/// moved there, whose payload still holds it, leaves with its payload withheld: its hash still
/// proves into the signed checkpoint, and the verifier says which events it could not read.
fn bundle_event(
    tree: &Tree,
    checkpoint: usize,
    position: u64,
    index: usize,
    leaf_index: usize,
    mut env: aegis_schemas::envelope::v1::Envelope,
) -> BundleEvent {
    // The material itself never leaves; its digest, which the hash covers, does.
    env.credential.clear();
    let withheld = aegis_schemas::events::payload_has_credentials(&env.event_type, &env.payload);
    if withheld {
        env.payload.clear();
    }
    BundleEvent {
        position,
        index,
        checkpoint,
        leaf: leaf_index,
        proof: tree
            .proof(leaf_index)
            .unwrap_or_default()
            .iter()
            .map(hex::encode)
            .collect(),
        envelope: B64.encode(env.encode_to_vec()),
        payload_withheld: withheld,
    }
}
