//! Successful answers: seed 000's `{"data": ...}` wrapper, with `Aegis-Position` (the log
//! position a client can pass back as `Aegis-Min-Position`) and `ETag` (the version for
//! `If-Match`). Also the idempotent execution of commands.

use crate::error::ApiError;
use crate::idempotency::{self, IdempotencyKey, StoredAnswer};
use crate::state::AppState;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::future::Future;

pub use aegis_runtime::positions::POSITION_HEADER;

/// Seed 000's wrapper around one resource.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// A page of resources, with how many matched in all.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Paged<T> {
    pub data: Vec<T>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub position: Option<u64>,
    pub version: Option<u64>,
}

impl Reply {
    pub fn data(status: StatusCode, data: impl serde::Serialize) -> Self {
        Self {
            status,
            body: json!({ "data": data }),
            position: None,
            version: None,
        }
    }

    /// A typed body, serialized as it stands.
    pub fn body(status: StatusCode, body: impl serde::Serialize) -> Self {
        let body = serde_json::to_value(body)
            .unwrap_or_else(|e| json!({ "error": "internal_error", "message": e.to_string() }));
        Self {
            status,
            body,
            position: None,
            version: None,
        }
    }

    pub fn at(mut self, position: u64, version: u64) -> Self {
        self.position = Some(position);
        self.version = Some(version);
        self
    }
}

fn set(response: &mut Response, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), v);
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(p) = self.position {
            set(&mut response, POSITION_HEADER, p.to_string());
        }
        if let Some(v) = self.version {
            set(&mut response, "etag", format!("\"{v}\""));
        }
        response
    }
}

/// Runs a command once per `Idempotency-Key`: a retry gets the first answer, with
/// `Idempotent-Replayed: true`. `run` receives the key to use as `Nats-Msg-Id` stem.
pub async fn idempotent<F, Fut>(
    state: &AppState,
    key: Option<IdempotencyKey>,
    run: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(Option<IdempotencyKey>) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
{
    if let Some(k) = &key {
        if let Some(answer) = idempotency::lookup(&state.idempotency, k).await? {
            let reply = Reply {
                status: StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK),
                body: answer.body,
                position: answer.position,
                version: answer
                    .etag
                    .as_deref()
                    .and_then(crate::http::extract::parse_etag),
            };
            let mut response = reply.into_response();
            set(&mut response, "idempotent-replayed", "true".into());
            return Ok(response);
        }
    }
    let reply = run(key.clone()).await?;
    if let Some(k) = &key {
        let answer = StoredAnswer {
            status: reply.status.as_u16(),
            body: reply.body.clone(),
            position: reply.position,
            etag: reply.version.map(|v| v.to_string()),
            fingerprint: k.fingerprint.clone(),
        };
        idempotency::remember(&state.idempotency, k, &answer).await;
    }
    Ok(reply.into_response())
}
