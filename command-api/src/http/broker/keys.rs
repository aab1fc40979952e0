//! An agent's keys: the X25519 wire key it registers (`PUT .../public-key`) and the data keys
//! it asks for (`POST .../dek`), sealed to that wire key when it has one.

use super::own_agent;
use crate::auth::{lookup, Principal};
use crate::error::ApiError;
use crate::error::IntoApi;
use crate::http::extract::{CommandHeaders, Json};
use crate::http::openapi::{AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::{Reply, POSITION_HEADER};
use crate::http::{aggregate, command_context, execute};
use crate::state::AppState;
use aegis_broker::requests::RequestError;
use aegis_broker::rules::RulesError;
use aegis_broker::tenancy::TenancyError;
use aegis_broker::wraps::{Refusal, WrapError};
use aegis_broker_services::deks::{self, Delivered};
use aegis_broker_services::wire::{self, WireKeyError};
use aegis_broker_services::BrokerError;
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

/// Every broker failure as an answer, in one place (jobs map their own decider's refusals
/// first).
pub(super) fn broker_error(e: BrokerError) -> ApiError {
    match e {
        BrokerError::WireKey(why) => ApiError::conflict(why),
        BrokerError::Key(k) => ApiError::unavailable(format!("the key store cannot wrap: {k}"), 1),
        BrokerError::Dek(c) => c.into_api(|d| ApiError::conflict(d.to_string())),
        BrokerError::Job(c) => c.into_api(|j| ApiError::conflict(j.to_string())),
        BrokerError::Discovery(c) => c.into_api(|d| ApiError::not_found(d.to_string())),
        BrokerError::Wrap(c) => c.into_api(|w| match w {
            WrapError::NotFound => ApiError::not_found(w.to_string()),
            WrapError::AlreadyExists => ApiError::conflict(w.to_string()),
        }),
        BrokerError::WrapRefused { reason, position } => {
            let message = BrokerError::WrapRefused { reason, position }.to_string();
            let (status, code) = match reason {
                Refusal::NotApproved => (StatusCode::CONFLICT, "request_not_approved"),
                Refusal::Consumed => (StatusCode::GONE, "wrap_consumed"),
                Refusal::Expired => (StatusCode::GONE, "wrap_expired"),
            };
            ApiError::new(status, code, message).recorded_at(position)
        }
        BrokerError::Request(c) => c.into_api(request_error),
        BrokerError::Rules(c) => c.into_api(rules_error),
        BrokerError::Tenancy(c) => c.into_api(tenancy_error),
        BrokerError::NotAnApprover(role) => ApiError::new(
            StatusCode::FORBIDDEN,
            "not_an_approver",
            BrokerError::NotAnApprover(role.clone()).to_string(),
        )
        .with("role", role),
        BrokerError::NotRequester => ApiError::new(
            StatusCode::FORBIDDEN,
            "not_requester",
            BrokerError::NotRequester.to_string(),
        ),
        BrokerError::BadEnvelope(why) => ApiError::bad_request(why),
        BrokerError::Lagging(l) => l.into(),
        BrokerError::Db(e) => e.into(),
        BrokerError::Busy => ApiError::unavailable(BrokerError::Busy.to_string(), 1),
    }
}

/// An access request's refusals, with seed 004's texts where the document's API has one.
fn request_error(e: RequestError) -> ApiError {
    let text = e.to_string();
    match e {
        RequestError::NotFound => ApiError::not_found(text),
        RequestError::AlreadyExists => ApiError::conflict(text),
        RequestError::NotPending(status) => ApiError::new(
            StatusCode::CONFLICT,
            "not_pending",
            "request is not pending",
        )
        .with("status", status),
        RequestError::NotApproved(status) => {
            ApiError::new(StatusCode::CONFLICT, "request_not_approved", text).with("status", status)
        }
        RequestError::SelfApproval => ApiError::new(StatusCode::FORBIDDEN, "self_approval", text),
        RequestError::NotRequester => ApiError::new(StatusCode::FORBIDDEN, "not_requester", text),
        RequestError::DuplicateVote => ApiError::new(StatusCode::CONFLICT, "duplicate_vote", text),
        RequestError::ReasonRequired | RequestError::BreakGlassReasonRequired => {
            ApiError::bad_request(text).with("field", "reason")
        }
        RequestError::NotBreakGlass => {
            ApiError::new(StatusCode::FORBIDDEN, "not_break_glass", text)
        }
        RequestError::JustificationRequired => {
            ApiError::bad_request(text).with("field", "justification")
        }
        RequestError::NoKeys => ApiError::bad_request(text).with("field", "keys"),
    }
}

/// The approval rules' refusals.
fn rules_error(e: RulesError) -> ApiError {
    let text = e.to_string();
    match e {
        RulesError::WorkflowNotFound | RulesError::PolicyNotFound => ApiError::not_found(text),
        RulesError::AlreadyExists(_) | RulesError::NameTaken { .. } => ApiError::conflict(text),
        RulesError::InUse(_) => ApiError::new(StatusCode::CONFLICT, "in_use", text),
        RulesError::TooMany(_) => ApiError::new(StatusCode::CONFLICT, "limit_reached", text),
        RulesError::UnknownWorkflow(_) => ApiError::bad_request(text).with("field", "workflow_id"),
        RulesError::Invalid { field, .. } => ApiError::bad_request(text).with("field", field),
    }
}

/// Projects' and environments' refusals.
fn tenancy_error(e: TenancyError) -> ApiError {
    let text = e.to_string();
    match e {
        TenancyError::ProjectNotFound | TenancyError::EnvironmentNotFound => {
            ApiError::not_found(text)
        }
        TenancyError::ProjectNameTaken(_) | TenancyError::EnvironmentNameTaken => {
            ApiError::conflict(text)
        }
        TenancyError::Archived => ApiError::new(StatusCode::CONFLICT, "archived", text),
        TenancyError::TooMany(_) => ApiError::new(StatusCode::CONFLICT, "limit_reached", text),
        TenancyError::Invalid { field, message } => {
            ApiError::bad_request(message).with("field", field)
        }
    }
}
