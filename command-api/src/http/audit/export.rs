//! `GET /audit/export`: the tenant's events in a range with the signed checkpoints that cover
//! them and an inclusion proof for each, verifiable offline (`aegis verify-audit`).
//! `GET /audit/public-key`: the key those checkpoints verify with.

use crate::audit_bundle::{Bundle, BundleCheckpoint, BundleEvent, FORMAT};
use crate::audit_checkpoints::{aggregate, key_id};
use crate::auth::Principal;
use crate::domain::audit::CheckpointAggregate;
use crate::domain::Aggregate;
use crate::error::ApiError;
use crate::http::extract::Query;
use crate::http::openapi::{params, AuthErrors, ErrorBody};
use crate::http::reply::{Data, Reply};
use crate::state::AppState;
use aegis_schemas::Message;
use aegis_streams::merkle::{leaf, proof};
use aegis_streams::Expected;
use axum::extract::State;
use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The most events one bundle holds; a longer range is exported in parts.
const MAX_EVENTS: usize = 100_000;

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
    let history = store.load(&aggregate(), Expected::NEW).await?;
    let mut all = Vec::new();
    for env in history.commits.iter().flat_map(|c| &c.events) {
        all.push(CheckpointAggregate::decode(env)?);
    }
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
    let prefix = format!("aegis.evt.{}.", tenant.0);
    let mut checkpoints = Vec::new();
    let mut events = Vec::new();
    for c in all.iter().filter(|c| c.to >= from && c.from <= to) {
        let index = checkpoints.len();
        let mut leaves = Vec::with_capacity(c.count as usize);
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
                    mine.push((commit.position, i, leaves.len(), env.encode_to_vec()));
                }
                leaves.push(leaf(&env.hash));
            }
        }
        if events.len() + mine.len() > MAX_EVENTS {
            return Err(ApiError::validation(
                "to",
                format!("more than {MAX_EVENTS} events in the range; export it in parts"),
            ));
        }
        for (position, i, leaf_index, bytes) in mine {
            events.push(BundleEvent {
                position,
                index: i,
                checkpoint: index,
                leaf: leaf_index,
                proof: proof(&leaves, leaf_index)
                    .unwrap_or_default()
                    .iter()
                    .map(hex::encode)
                    .collect(),
                envelope: B64.encode(bytes),
            });
        }
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
        },
    ))
}
