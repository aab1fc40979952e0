//! What the workflow and policy routes share: their timestamps, their 404 and their 204.

use crate::error::ApiError;
use crate::http::reply::POSITION_HEADER;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

pub(super) fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Anything but a UUID names nothing (404).
pub(super) fn not_found_id(what: &str) -> ApiError {
    ApiError::not_found(format!("{what} not found"))
}

/// An edit seed 004 answers with 204; the position lets the editor read its own write.
pub(super) struct Edited(pub u64);

impl IntoResponse for Edited {
    fn into_response(self) -> Response {
        let mut r = StatusCode::NO_CONTENT.into_response();
        r.headers_mut().insert(
            HeaderName::from_static(POSITION_HEADER),
            HeaderValue::from(self.0),
        );
        r
    }
}
