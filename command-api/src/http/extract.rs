//! Extractors that turn every kind of bad input into DESIGN.md's error body.

use crate::auth::Principal;
use crate::consistency::Speculation;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// JSON body: malformed → 400, wrong shape or unknown field → 422, too large → 413, not sent
/// as JSON → 415. No body at all is the empty object, whatever the Content-Type: a route
/// whose fields are all optional takes it, one with a required field names the field (422).
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime_type::Essence>().ok())
            .is_some_and(|m| m.is_json());
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!("request bodies are limited to {BODY_LIMIT} bytes"),
                    )
                } else {
                    ApiError::bad_request(r.body_text())
                }
            })?;
        // Only no body at all: white space alone, sent as JSON, is malformed JSON (400).
        if bytes.is_empty() || (!json && blank(&bytes)) {
            return axum::Json::<T>::from_bytes(b"{}")
                .map(|axum::Json(v)| Json(v))
                .map_err(json_rejection);
        }
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json",
            ));
        }
        // serde reads a struct from an array as readily as from an object; every body here is
        // an object, so anything else is refused before it can be read positionally.
        let first = bytes.iter().find(|b| !json_whitespace(b));
        if first.is_some_and(|b| *b != b'{') {
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
                    Ok(_) => ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "validation_failed",
                        "the body must be a JSON object",
                    ),
                    Err(e) => ApiError::bad_request(format!("malformed JSON: {e}")),
                },
            );
        }
        axum::Json::<T>::from_bytes(&bytes)
            .map(|axum::Json(v)| Json(v))
            .map_err(json_rejection)
    }
}

/// `application/json` or any `+json` type, parameters ignored.
mod mime_type {
    pub struct Essence(String);

    impl std::str::FromStr for Essence {
        type Err = ();
        fn from_str(s: &str) -> Result<Self, ()> {
            let essence = s
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            Ok(Essence(essence))
        }
    }

    impl Essence {
        pub fn is_json(&self) -> bool {
            self.0 == "application/json"
                || (self.0.starts_with("application/") && self.0.ends_with("+json"))
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let detail = r.body_text();
    match r {
        JsonRejection::JsonDataError(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        ),
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request(format!("malformed JSON: {detail}"))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request bodies are limited to {BODY_LIMIT} bytes"),
        ),
        other => ApiError::bad_request(other.body_text()),
    }
}

/// Query string: unknown parameters and unparsable values → 400.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|r: QueryRejection| ApiError::bad_request(r.body_text()))
    }
}

/// Refuses a text parameter longer than its documented maximum, or holding control
/// characters (which no id, name or action contains, and NUL which Postgres cannot store).
pub fn max_chars(field: &str, value: Option<&str>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ApiError::validation(
            field,
            format!("{field} must be at most {max} characters"),
        )),
        Some(v) if v.chars().any(char::is_control) => Err(ApiError::validation(
            field,
            format!("{field} must not contain control characters"),
        )),
        _ => Ok(()),
    }
}

/// Path parameter that must be a UUID: anything else is simply not found.
pub struct UuidPath(pub uuid::Uuid);

impl<S: Send + Sync> FromRequestParts<S> for UuidPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|r| ApiError::bad_request(r.body_text()))?;
        uuid::Uuid::parse_str(&raw)
            .map(UuidPath)
            .map_err(|_| ApiError::not_found(format!("no such resource: {raw}")))
    }
}

/// Headers a command may carry.
#[derive(Debug, Default, Clone)]
pub struct CommandHeaders {
    pub idempotency_key: Option<String>,
    /// `If-Match`: the version (ETag) the client read.
    pub if_match: Option<u64>,
    pub request_id: Option<String>,
}

/// Parses an ETag as we send it (`"3"`), tolerating a weak prefix or missing quotes.
pub fn parse_etag(raw: &str) -> Option<u64> {
    raw.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

impl<S: Send + Sync> FromRequestParts<S> for CommandHeaders {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let text = |name: &str| -> Result<Option<String>, ApiError> {
            parts
                .headers
                .get(name)
                .map(|v| {
                    v.to_str()
                        .map(str::to_string)
                        .map_err(|_| ApiError::bad_request(format!("{name} is not valid text")))
                })
                .transpose()
        };
        let if_match = text("if-match")?
            .map(|v| {
                parse_etag(&v).ok_or_else(|| {
                    ApiError::bad_request("If-Match must be an ETag this API sent, like \"3\"")
                })
            })
            .transpose()?;
        Ok(Self {
            idempotency_key: text("idempotency-key")?,
            if_match,
            request_id: text("x-request-id")?,
        })
    }
}

/// `Aegis-Min-Position`: the query waits (bounded) until its read models reached it.
pub struct MinPosition(Wait);

enum Wait {
    /// Read what the read models hold.
    Nothing,
    /// Wait until they hold this position.
    At(u64),
    /// A read without the header, served while its principal's last write is looked up
    /// (`crate::consistency::read`): note what the read models hold, wait for nothing.
    Speculative(Speculation),
}

/// Without the header, the caller's own last write (read-your-writes by default, see
/// `crate::consistency`); with it, exactly the position it names.
impl FromRequestParts<AppState> for MinPosition {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let sent = parts
            .headers
            .get("aegis-min-position")
            .map(|v| {
                v.to_str()
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "Aegis-Min-Position must be a stream position (an integer)",
                        )
                    })
            })
            .transpose()?;
        if let Some(at) = sent {
            return Ok(MinPosition::at(at));
        }
        if let Some(speculation) = parts.extensions.get::<Speculation>() {
            return Ok(MinPosition(Wait::Speculative(speculation.clone())));
        }
        let Some(principal) = parts.extensions.get::<Principal>() else {
            return Ok(MinPosition(Wait::Nothing));
        };
        let key = principal.position_key();
        Ok(MinPosition(
            match crate::consistency::implicit_position(state, &key).await {
                Some(at) => Wait::At(at),
                None => Wait::Nothing,
            },
        ))
    }
}

impl MinPosition {
    /// Wait for exactly this position.
    pub fn at(position: u64) -> Self {
        MinPosition(Wait::At(position))
    }

    /// Waits until every projection in `names` holds what the log held when this was called:
    /// read-your-writes for a reader with no position to send (a test route).
    pub async fn caught_up(state: &AppState, names: &[&str]) -> Result<(), ApiError> {
        Ok(state.read_models_caught_up(names).await?)
    }

    /// Waits until every projection in `names` has applied position N, or answers 503.
    pub async fn wait(&self, state: &AppState, names: &[&str]) -> Result<(), ApiError> {
        match &self.0 {
            Wait::Nothing => Ok(()),
            Wait::At(min) => Ok(state.read_models_at(names, *min).await?),
            Wait::Speculative(s) => {
                s.queried_at(state.read_models_hold(names));
                Ok(())
            }
        }
    }
}

/// For a field that may be left out (`None`: unchanged), set (`Some(Some(v))`) or `null`
/// (`Some(None)`: cleared); use with `#[serde(default, deserialize_with = ...)]`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// The four bytes JSON counts as white space (RFC 8259); `u8::is_ascii_whitespace` also
/// takes form feed, which JSON does not.
pub fn json_whitespace(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// An absent body: nothing, or only JSON white space.
pub fn blank(bytes: &[u8]) -> bool {
    bytes.iter().all(json_whitespace)
}

#[cfg(test)]
mod tests {
    use super::blank;

    #[test]
    fn only_jsons_own_white_space_makes_a_body_blank() {
        assert!(blank(b""));
        assert!(blank(b" \t\r\n"));
        assert!(!blank(b"\x0c"), "form feed is not JSON white space");
        assert!(!blank(b" {}"));
    }
}
