//! Single-shot wraps, the agent's side: it posts a value it fetched for a request it holds a
//! claimed job on (`POST .../wraps`), and fetches one once (`GET .../wraps/{wrap_id}`, the
//! patch flow). `HEAD` tells whether a wrap is there without retrieving it. Nothing here is
//! ever cached on the way (`Cache-Control: no-store`).

use super::errors::broker_error;
use super::own_agent;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::command_context;
use crate::http::extract::{CommandHeaders, Json};
use crate::http::openapi::{AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::state::AppState;
use aegis_broker::wraps::NewWrap;
use aegis_broker_services::wraps::{self, Envelope, EnvelopeCipher, NewPosting, Posted, Retrieved};
use aegis_broker_services::{requests, BrokerError};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;
use zeroize::Zeroizing;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_wrap))
        .routes(routes!(retrieve, peek))
        // Every answer, refusals included: nothing about a wrap is kept on the way.
        .layer(axum::middleware::map_response(no_store))
}

/// No `Debug`: the body carries a secret value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostWrapBody {
    /// The access request the value was fetched for; the agent must hold a claimed job
    /// carrying it.
    pub request_id: Uuid,
    /// The value's name in its provider (a Secret's key): 1 to 253 characters.
    pub key_name: String,
    /// The value, standard base64 (as secrets-bridge agents send it), protected by TLS alone.
    /// Exactly one of `value` and `envelope`.
    #[serde(default)]
    pub value: Option<String>,
    /// The value encrypted under a data key from `POST .../dek`.
    #[serde(default)]
    pub envelope: Option<EnvelopeBody>,
    /// Seconds the wrap waits to be retrieved: 600 unless given, at most 3,600.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// The value encrypted under a data key: `chacha20-poly1305` (the default) with the key id
/// (UTF-8) as associated data, or `aes-256-gcm` without, as secrets-bridge agents send it
/// (`dek_ciphertext` and `dek_kms_key_id` are accepted for `wrapped_dek` and `key_id`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeBody {
    /// `chacha20-poly1305` (default) or `aes-256-gcm`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// The data key's id, as `POST .../dek` gave it; when absent, the one sealed with the key.
    #[serde(default, alias = "dek_kms_key_id")]
    pub key_id: Option<String>,
    /// The data key's wrapped form, as `POST .../dek` gave it.
    #[serde(alias = "dek_ciphertext")]
    pub wrapped_dek: String,
    /// 12 bytes, standard base64, fresh for each envelope.
    pub nonce: String,
    /// Standard base64.
    pub ciphertext: String,
}

/// What a wrap is, never what it holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrapCreated {
    pub wrap_id: Uuid,
    pub request_id: String,
    pub key_name: String,
    pub byte_length: u64,
    /// HMAC-SHA256 of the value under a key of the tenant's (hex): tells values apart,
    /// reveals nothing without the key.
    pub content_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// The value, once.
#[derive(Serialize, ToSchema)]
pub struct WrapValue {
    pub wrap_id: Uuid,
    pub request_id: String,
    pub key_name: String,
    /// The value, standard base64.
    pub value: String,
    /// How the value was sealed at rest while it waited.
    pub algorithm: &'static str,
    pub byte_length: u64,
    pub content_hash: String,
}

impl WrapValue {
    /// The answer to the retrieval that got the value.
    pub(super) fn of(wrap_id: Uuid, got: &Retrieved) -> Self {
        let w = &got.wrap.new;
        WrapValue {
            wrap_id,
            request_id: w.request_id.clone(),
            key_name: w.key_name.clone(),
            value: STANDARD.encode(got.value.as_slice()),
            algorithm: "xchacha20-poly1305",
            byte_length: w.byte_length,
            content_hash: w.content_mac.clone(),
        }
    }
}

fn created(wrap_id: Uuid, w: &NewWrap) -> WrapCreated {
    WrapCreated {
        wrap_id,
        request_id: w.request_id.clone(),
        key_name: w.key_name.clone(),
        byte_length: w.byte_length,
        content_hash: w.content_mac.clone(),
        expires_at: DateTime::from_timestamp_millis(w.expires_at).unwrap_or_default(),
    }
}

pub(super) async fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn b64(field: &str, raw: &str) -> Result<Vec<u8>, ApiError> {
    STANDARD.decode(raw.trim()).map_err(|_| {
        ApiError::bad_request(format!("{field} is not standard base64")).with("field", field)
    })
}

/// Hand over a value fetched for an approved request, to be retrieved once.
#[utoipa::path(post, path = "/api/v1/agents/{id}/wraps", tag = "agents", security(("agent_secret" = [])),
    params(("id" = String, Path, description = "The agent's id (its own)")),
    request_body = PostWrapBody,
    responses(
        (status = 201, description = "Wrapped", body = WrapCreated, headers(("Aegis-Position" = u64))),
        (status = 400, description = "Neither or both of value and envelope, an envelope that does not open, a value over 64 KiB", body = ErrorBody),
        (status = 409, description = "The agent holds no claimed job carrying the request", body = ErrorBody),
        AuthErrors,
        BodyErrors,
    ))]
async fn post_wrap(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
    Json(body): Json<PostWrapBody>,
) -> Result<Response, ApiError> {
    let agent = own_agent(&principal, &raw)?;
    let tenant = principal.tenant()?;
    let key_name = body.key_name.trim().to_string();
    if key_name.is_empty() || key_name.chars().count() > 253 {
        return Err(
            ApiError::bad_request("key_name is required: 1 to 253 characters")
                .with("field", "key_name"),
        );
    }
    let posted = match (body.value, body.envelope) {
        (Some(v), None) => {
            let v = Zeroizing::new(v);
            Posted::Value(Zeroizing::new(b64("value", &v)?))
        }
        (None, Some(e)) => Posted::Envelope(Envelope {
            cipher: match e.algorithm.as_deref() {
                None | Some("chacha20-poly1305") => EnvelopeCipher::ChaCha20Poly1305,
                Some("aes-256-gcm") => EnvelopeCipher::Aes256Gcm,
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "envelope.algorithm `{other}` is not chacha20-poly1305 or aes-256-gcm"
                    ))
                    .with("field", "envelope.algorithm"))
                }
            },
            nonce: b64("envelope.nonce", &e.nonce)?,
            ciphertext: b64("envelope.ciphertext", &e.ciphertext)?,
            key_id: e.key_id,
            wrapped_dek: e.wrapped_dek,
        }),
        _ => {
            return Err(ApiError::bad_request(
                "exactly one of value and envelope is required",
            ))
        }
    };
    let ttl_secs = body.ttl_seconds.unwrap_or(wraps::DEFAULT_TTL_SECS);
    if ttl_secs == 0 || ttl_secs > wraps::MAX_TTL_SECS {
        return Err(
            ApiError::bad_request(format!("ttl_seconds is 1 to {}", wraps::MAX_TTL_SECS))
                .with("field", "ttl_seconds"),
        );
    }
    let ctx = command_context(&principal, &headers, None);
    let posting = NewPosting {
        request_id: body.request_id.to_string(),
        key_name,
        posted,
        ttl_secs,
    };
    let made = requests::post_wrap(&state, &ctx, tenant.0, agent, posting)
        .await
        .map_err(broker_error)?;
    tracing::info!(%tenant, %agent, wrap_id = %made.wrap_id, request_id = %made.wrap.request_id, byte_length = made.wrap.byte_length, "wrap created");
    Ok(
        Reply::body(StatusCode::CREATED, created(made.wrap_id, &made.wrap))
            .at(made.position, 1)
            .into_response(),
    )
}

fn wrap_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::bad_request(format!("`{raw}` is not a wrap id (a UUID)")))
}

/// Retrieve a value, once: the first retrieval gets it, every later one 410. Every attempt is
/// recorded (`wrap.retrieved.v1`, `wrap.denied.v1` with the reason).
#[utoipa::path(get, path = "/api/v1/agents/{id}/wraps/{wrap_id}", tag = "agents", security(("agent_secret" = [])),
    params(
        ("id" = String, Path, description = "The agent's id (its own)"),
        ("wrap_id" = String, Path, description = "The wrap's id"),
    ),
    responses(
        (status = 200, description = "The value, this once", body = WrapValue),
        (status = 404, description = "No such wrap", body = ErrorBody),
        (status = 409, description = "The agent holds no claimed job carrying the wrap's request", body = ErrorBody),
        (status = 410, description = "wrap already consumed, or wrap expired", body = ErrorBody),
        AuthErrors,
    ))]
async fn retrieve(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path((raw, raw_wrap)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let agent = own_agent(&principal, &raw)?;
    let tenant = principal.tenant()?;
    let id = wrap_id(&raw_wrap)?;
    let ctx = command_context(&principal, &headers, None);
    let got = match wraps::retrieve_as_agent(&state, &ctx, tenant.0, id, agent).await {
        Ok(got) => got,
        Err(e) => {
            if let BrokerError::WrapRefused { reason, .. } = &e {
                tracing::warn!(%tenant, %agent, wrap_id = %id, reason = reason.as_str(), "wrap retrieval refused");
            }
            return Err(broker_error(e));
        }
    };
    tracing::info!(%tenant, %agent, wrap_id = %id, "wrap retrieved");
    Ok(Reply::body(StatusCode::OK, WrapValue::of(id, &got))
        .at(got.position, 1)
        .into_response())
}

/// Whether a wrap is there to retrieve, without retrieving it: 200, 404, 409 or 410 as `GET`
/// would answer, no body, nothing consumed, nothing recorded.
#[utoipa::path(head, path = "/api/v1/agents/{id}/wraps/{wrap_id}", tag = "agents", security(("agent_secret" = [])),
    params(
        ("id" = String, Path, description = "The agent's id (its own)"),
        ("wrap_id" = String, Path, description = "The wrap's id"),
    ),
    responses(
        (status = 200, description = "There, unretrieved", headers(("Aegis-Wrap-Expires-At" = String), ("Aegis-Wrap-Byte-Length" = u64))),
        (status = 404, description = "No such wrap"),
        (status = 409, description = "The agent holds no claimed job carrying the wrap's request"),
        (status = 410, description = "Consumed or expired"),
        AuthErrors,
    ))]
async fn peek(
    State(state): State<AppState>,
    principal: Principal,
    Path((raw, raw_wrap)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let agent = own_agent(&principal, &raw)?;
    let tenant = principal.tenant()?;
    let id = wrap_id(&raw_wrap)?;
    let wrap = wraps::peek(&state, tenant.0, id, agent)
        .await
        .map_err(broker_error)?;
    let mut headers = HeaderMap::new();
    let expires = created(id, &wrap.new).expires_at.to_rfc3339();
    if let Ok(v) = HeaderValue::from_str(&expires) {
        headers.insert("aegis-wrap-expires-at", v);
    }
    headers.insert(
        "aegis-wrap-byte-length",
        HeaderValue::from(wrap.new.byte_length),
    );
    Ok((StatusCode::OK, headers).into_response())
}
