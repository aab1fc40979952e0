//! Admission of HTTP commands: at most `AEGIS_MAX_COMMANDS_IN_FLIGHT` at once
//! (`crate::limits`), the rest answered at once.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Admits a command while fewer than the bound are in flight, else answers 503 with
/// `Retry-After`: under a burst, memory and latency stay bounded and the client knows to
/// come back. Reads are bounded by the database pool instead.
pub async fn admit_commands(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let Ok(_permit) = state.limits.commands.clone().try_acquire_owned() else {
        state.metrics.overloaded();
        return ApiError::unavailable(
            "the server is handling as many commands as it may; retry shortly",
            1,
        )
        .into_response();
    };
    next.run(request).await
}
