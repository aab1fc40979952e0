//! The one place errors become HTTP: DESIGN.md's body `{"error": "<code>", "message": "...", ...}`.
//! Infrastructure failures are logged once with their cause and answered opaquely.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra fields merged into the body (`required_permission`, `retry_after_ms`, ...).
    pub extra: Map<String, Value>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// The log position of what the failed request still recorded (a failed rotation records
    /// its failure): sent as `Aegis-Position`, so the caller's next read reflects it.
    pub position: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: Map::new(),
            retry_after: None,
            position: None,
        }
    }

    /// Marks the refusal as having recorded something at `position`.
    pub fn recorded_at(mut self, position: Option<u64>) -> Self {
        self.position = position;
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A well-formed request whose values are not acceptable; `field` names the culprit.
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
        .with("field", field)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(required_permission: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs the `{required_permission}` permission"),
        )
        .with("required_permission", required_permission)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// Adds `Retry-After` (seconds) and `retry_after_ms` to the answer.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self.with("retry_after_ms", secs * 1000)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn unavailable(message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// Logs the cause chain once and answers 500 without details.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the request could not be completed",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("error".into(), json!(self.code));
        body.insert("message".into(), json!(self.message));
        body.extend(self.extra);
        let mut response = (self.status, axum::Json(Value::Object(body))).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if let Some(p) = self.position {
            response.headers_mut().insert(
                aegis_runtime::positions::POSITION_HEADER,
                HeaderValue::from(p),
            );
        }
        response
    }
}

/// Seed 003's error body for an answer in DESIGN's shape: `{statusCode, error, message,
/// details, requestId, timestamp}`, where `error` is the status's name in capitals and
/// `details` holds DESIGN's machine code as `code` with the error's other fields, so one
/// machine code exists on every surface.
pub fn platform_body(
    status: StatusCode,
    mut aegis: Map<String, Value>,
    request_id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Value {
    let code = aegis.remove("error").unwrap_or(Value::Null);
    let message = aegis.remove("message").unwrap_or(Value::Null);
    let mut details = Map::new();
    details.insert("code".into(), code);
    details.extend(aegis);
    let name = status
        .canonical_reason()
        .unwrap_or("ERROR")
        .to_ascii_uppercase()
        .replace([' ', '-'], "_");
    json!({
        "statusCode": status.as_u16(),
        "error": name,
        "message": message,
        "details": details,
        "requestId": request_id,
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
}

impl From<aegis_streams::StoreError> for ApiError {
    fn from(e: aegis_streams::StoreError) -> Self {
        match e {
            // The log did not answer (a lost server, a leader election, a timeout). Without a
            // connection nothing was sent; a publish that went out and timed out may still be
            // stored, which a retry with the same Idempotency-Key answers without applying it
            // twice.
            aegis_streams::StoreError::Nats(ref why) => {
                tracing::warn!(error = %why, "the event log did not answer");
                ApiError::unavailable(
                    "the event log is unavailable; retry shortly with the same Idempotency-Key",
                    1,
                )
            }
            // Corruption is named, not hidden behind a 500: the resource cannot be served until
            // an operator repairs the log (`GET /audit/verify` finds the same position).
            aegis_streams::StoreError::Decode {
                position,
                ref reason,
            } => {
                tracing::error!(position, reason = %reason, "a commit on the log does not decode");
                ApiError::unavailable(
                    format!(
                        "the event log holds a commit that does not decode at position {position}"
                    ),
                    30,
                )
                .with("position", position)
            }
            other => Self::internal(&other),
        }
    }
}

impl From<aegis_runtime::read_models::Lagging> for ApiError {
    fn from(e: aegis_runtime::read_models::Lagging) -> Self {
        use aegis_runtime::read_models::Lagging::*;
        match e {
            Halted => ApiError::unavailable(e.to_string(), 30),
            Beyond { head, .. } => ApiError::bad_request(e.to_string()).with("head", head),
            Behind { position, .. } => {
                ApiError::unavailable(e.to_string(), 1).with("position", position)
            }
            Database(e) => e.into(),
            Log(e) => e.into(),
        }
    }
}

impl From<aegis_streams::SubjectError> for ApiError {
    fn from(e: aegis_streams::SubjectError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        // The database did not answer, or said "not now" (restarting, unreachable, every
        // connection busy, a session ended by a shutdown).
        if aegis_projectors::runner::transient(&e) {
            tracing::warn!(error = %e, "the database did not answer");
            return ApiError::unavailable("the database is unavailable; retry shortly", 1);
        }
        Self::internal(&e)
    }
}

impl From<aegis_kernel::DecodeError> for ApiError {
    fn from(e: aegis_kernel::DecodeError) -> Self {
        Self::internal(&e)
    }
}

/// Maps what every command can fail with to HTTP; the domain refusal is mapped by the
/// caller's `F`.
pub trait IntoApi<E> {
    fn into_api(self, domain: impl FnOnce(E) -> ApiError) -> ApiError;
}

impl<E: std::error::Error + Send + Sync + 'static> IntoApi<E>
    for aegis_runtime::command::CommandError<E>
{
    fn into_api(self, domain: impl FnOnce(E) -> ApiError) -> ApiError {
        use aegis_runtime::command::CommandError::*;
        match self {
            Domain(e) => domain(e),
            VersionMismatch { current } => ApiError::conflict(format!(
                "the resource changed since you read it; it is now at version {current}"
            ))
            .with("current_version", current),
            Contended => ApiError::conflict("too many concurrent changes to this resource; retry")
                .with("retry_after_ms", 100),
            Store(e) => e.into(),
            Decode(e) => ApiError::internal(&e),
            Address(e) => ApiError::bad_request(e.to_string()),
        }
    }
}

#[cfg(test)]
mod platform_tests {
    use super::*;

    #[test]
    fn seed_003_bodies_name_the_status_and_keep_the_machine_code() {
        let aegis =
            json!({"error": "entitlement_required", "message": "needs kms", "entitlement": "kms"});
        let Value::Object(aegis) = aegis else {
            unreachable!()
        };
        let at = "2026-11-30T12:00:00Z".parse().expect("time");
        let body = platform_body(StatusCode::UNPROCESSABLE_ENTITY, aegis, "req-1", at);
        assert_eq!(
            body,
            json!({
                "statusCode": 422,
                "error": "UNPROCESSABLE_ENTITY",
                "message": "needs kms",
                "details": {"code": "entitlement_required", "entitlement": "kms"},
                "requestId": "req-1",
                "timestamp": "2026-11-30T12:00:00.000Z",
            })
        );
    }
}
