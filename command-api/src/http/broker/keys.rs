//! An agent's keys: the X25519 wire key it registers (`PUT .../public-key`) and the data keys
//! it asks for (`POST .../dek`), sealed to that wire key when it has one.

use super::errors::broker_error;
use super::own_agent;
use crate::auth::{lookup, Principal};
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json};
use crate::http::openapi::{AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::{Reply, POSITION_HEADER};
use crate::http::{aggregate, command_context, execute};
use crate::state::AppState;
use aegis_broker_services::deks::{self, Delivered};
use aegis_broker_services::wire::{self, WireKeyError};
use aegis_identity::agents::{AgentAggregate, AgentError, Command};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_public_key))
        .routes(routes!(issue_dek))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyBody {
    /// The agent's X25519 public key: 32 bytes, standard base64.
    pub public_key: String,
    /// `x25519` (the default and the only one).
    #[serde(default)]
    pub public_key_algorithm: Option<String>,
}

fn wire_key_error(e: WireKeyError) -> ApiError {
    ApiError::bad_request(e.to_string()).with("field", "public_key")
}

/// Register (or replace) the agent's wire key. Data keys are sealed to it from then on.
/// Registering the same key again changes nothing.
#[utoipa::path(put, path = "/api/v1/agents/{id}/public-key", tag = "agents", security(("agent_secret" = [])),
    params(("id" = String, Path, description = "The agent's id (its own)")),
    request_body = PublicKeyBody,
    responses(
        (status = 204, description = "Registered"),
        (status = 400, description = "Not base64, not 32 bytes, a low-order point, another algorithm, or an id that is not a UUID", body = ErrorBody),
        AuthErrors,
        BodyErrors,
    ))]
async fn register_public_key(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
    Json(body): Json<PublicKeyBody>,
) -> Result<Response, ApiError> {
    let agent = own_agent(&principal, &raw)?;
    let tenant = principal.tenant()?;
    let key = wire::parse(&body.public_key, body.public_key_algorithm.as_deref())
        .map_err(wire_key_error)?;
    let agg = aggregate::<AgentAggregate>(tenant.0, agent.to_string())?;
    let outcome = execute::<AgentAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::RegisterWireKey {
            key,
            fingerprint: wire::fingerprint(&key),
        },
        false,
        |e| match e {
            AgentError::NotFound => ApiError::unauthorized("invalid agent secret"),
            other => ApiError::conflict(other.to_string()),
        },
    )
    .await?;
    state.directory.invalidate(&agg.subject());
    if outcome.appended {
        tracing::info!(%agent, %tenant, fingerprint = %wire::fingerprint(&key), "agent wire key registered");
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(POSITION_HEADER, outcome.position.to_string())],
    )
        .into_response())
}

/// A data key, and how it reached the agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct DekIssued {
    pub key_id: String,
    /// The data key wrapped under this agent's key in the tenant's hierarchy: send it back
    /// with what it encrypted; only this tenant can unwrap it, for this agent, under this id.
    pub wrapped_dek: String,
    /// The cipher the agent encrypts envelopes with (`algorithm: aes-256-gcm` in the envelope
    /// is accepted too).
    pub cipher: &'static str,
    /// secrets-bridge's names for the same answer: `algorithm` (`aes-256-gcm`, what its agents
    /// encrypt with), `ciphertext` (= `wrapped_dek`), `kms_key_id` (= `key_id`) and, only when
    /// the key travels in the clear, `plaintext` (= `dek`).
    pub algorithm: &'static str,
    pub ciphertext: String,
    pub kms_key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<String>,
    /// `hpke` (sealed to the registered wire key) or `clear` (no wire key: `dek` holds it).
    pub delivery: &'static str,
    /// The data key itself, base64, only when the agent has no wire key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dek: Option<String>,
    /// The data key sealed to the agent's wire key, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_dek: Option<SealedDek>,
}

/// RFC 9180 base mode: open with the wire key's private half, `info` as given and the key id
/// (UTF-8) as associated data.
#[derive(Debug, Serialize, ToSchema)]
pub struct SealedDek {
    pub suite: &'static str,
    /// HPKE `info`, UTF-8.
    pub info: String,
    /// The encapsulated key, base64.
    pub enc: String,
    /// The sealed data key, base64.
    pub ciphertext: String,
    /// Hex SHA-256 of the wire key it was sealed to.
    pub wire_key_fingerprint: String,
}

/// Issue a fresh 256-bit data key for wire envelopes. Recorded before it is answered; never
/// cached (`Cache-Control: no-store`).
#[utoipa::path(post, path = "/api/v1/agents/{id}/dek", tag = "agents", security(("agent_secret" = [])),
    params(("id" = String, Path, description = "The agent's id (its own)")),
    responses(
        (status = 201, description = "Issued", body = DekIssued),
        (status = 400, description = "An id that is not a UUID", body = ErrorBody),
        AuthErrors,
    ))]
async fn issue_dek(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let agent = own_agent(&principal, &raw)?;
    let tenant = principal.tenant()?;
    // Authentication read this agent a moment ago; the directory answers from memory.
    let found = lookup::<AgentAggregate>(&state, tenant.0, agent)
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid agent secret"))?;
    let ctx = command_context(&principal, &headers, None);
    let issued = deks::issue(&state, &ctx, tenant.0, agent, found.wire_key)
        .await
        .map_err(broker_error)?;
    let (delivery, dek, sealed_dek) = match issued.delivered {
        Delivered::Clear(key) => ("clear", Some(STANDARD.encode(key.as_ref())), None),
        Delivered::Sealed {
            enc,
            ciphertext,
            wire_key_fingerprint,
        } => (
            "hpke",
            None,
            Some(SealedDek {
                suite: deks::SUITE,
                info: String::from_utf8_lossy(deks::INFO).into_owned(),
                enc: STANDARD.encode(enc),
                ciphertext: STANDARD.encode(ciphertext),
                wire_key_fingerprint,
            }),
        ),
    };
    let body = DekIssued {
        algorithm: "aes-256-gcm",
        ciphertext: issued.wrapped.clone(),
        kms_key_id: issued.key_id.clone(),
        plaintext: dek.clone(),
        key_id: issued.key_id,
        wrapped_dek: issued.wrapped,
        cipher: deks::CIPHER,
        delivery,
        dek,
        sealed_dek,
    };
    let mut response = Reply::body(StatusCode::CREATED, body)
        .at(issued.position, 1)
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
