//! Read-your-writes by default (seed clients never send `Aegis-Min-Position`): every
//! successful answer that carries an `Aegis-Position` is remembered as its principal's last
//! write (`aegis_runtime::positions`), and a read without the header waits until the read
//! models it reads hold that position. A client that sends the header keeps full control.

use crate::state::AppState;
use axum::response::Response;

use aegis_runtime::positions::POSITION_HEADER;

/// The position an answer carries: what its principal wrote (a refusal carries one only when
/// it still recorded something, such as a failed rotation).
pub fn written(response: &Response) -> Option<u64> {
    response
        .headers()
        .get(POSITION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Records the position a successful write answered `principal` (its position key) with,
/// before the answer leaves: a read that follows it on any instance finds it.
pub async fn remember(state: &AppState, principal: &str, position: u64) {
    if let Err(e) = state.positions.wrote(principal, position).await {
        // The write itself is committed and answered; only the implicit wait of this
        // principal's next read on another instance is lost.
        tracing::warn!(error = %e, position, "could not record the principal's last write position");
    }
}

/// The position a read by `principal` (its position key) waits for when it sends none.
pub async fn implicit_position(state: &AppState, principal: &str) -> Option<u64> {
    match state.positions.last(principal).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the principal's last write position; reading without waiting");
            None
        }
    }
}
