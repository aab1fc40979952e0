//! Read-your-writes by default (seed clients never send `Aegis-Min-Position`): every
//! successful answer that carries an `Aegis-Position` is remembered as its principal's last
//! write (`aegis_runtime::positions`), and a read without the header reflects that position.
//! A client that sends the header keeps full control.
//!
//! Looking the position up is a round trip to JetStream KV. A read by a principal who wrote
//! nothing recently should not pay it, so a `GET` runs its query while the position is looked
//! up ([`read`]): the query notes what its read models were known to hold when it started,
//! and its answer stands when that covers the principal's last write (always, for a principal
//! who wrote nothing). Otherwise the read runs again, waiting for the position first. A
//! principal who wrote through this instance moments ago waits first, as before: its read
//! would most likely have to run twice.

use crate::state::AppState;
use axum::body::Body;
use axum::body::HttpBody as _;
use axum::extract::Request;
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::{Arc, Mutex};

use aegis_runtime::positions::POSITION_HEADER;

/// Marks a read answered while the log is unreachable: the read models cannot have moved
/// since, so the answer may miss what was committed elsewhere just before.
pub const STALE_HEADER: &str = "aegis-stale";

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
    // Without a connection the lookup could only time out, and the read models cannot move
    // meanwhile: the read is served as it stands (marked stale by `mark_stale`).
    if log_unreachable(state) {
        return None;
    }
    match state.positions.last(principal).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the principal's last write position; reading without waiting");
            None
        }
    }
}

/// What a read served speculatively saw: for each wait its handler asked for, the position
/// its read models were known to hold when the query started.
#[derive(Clone, Default)]
pub struct Speculation(Arc<Mutex<Option<u64>>>);

impl Speculation {
    pub fn queried_at(&self, held: u64) {
        if let Ok(mut lowest) = self.0.lock() {
            *lowest = Some(lowest.map_or(held, |l| l.min(held)));
        }
    }

    /// The lowest position any of the read's queries was sure to see; `None` when it read no
    /// read model.
    fn lowest(&self) -> Option<u64> {
        self.0.lock().ok().and_then(|l| *l)
    }
}

/// Whether `req` (already authenticated as `principal`) is served by [`read`]: a `GET` or
/// `HEAD` with no body and no `Aegis-Min-Position`, by a principal who did not just write here.
pub fn speculates(state: &AppState, principal: &str, req: &Request) -> bool {
    (req.method() == Method::GET || req.method() == Method::HEAD)
        && !req.headers().contains_key("aegis-min-position")
        && (req.body().is_end_stream() || req.body().size_hint().exact() == Some(0))
        && !state.positions.wrote_recently(principal)
}

/// Serves a read while `principal`'s last write position is looked up; when the read's
/// queries may have missed that write, serves it again waiting for it.
pub async fn read(state: &AppState, principal: &str, mut req: Request, next: Next) -> Response {
    let again = copy(&req);
    let speculation = Speculation::default();
    req.extensions_mut().insert(speculation.clone());
    let (response, last) = tokio::join!(next.clone().run(req), implicit_position(state, principal));
    let Some(last) = last else { return response };
    match speculation.lowest() {
        Some(seen) if seen < last => {
            let mut again = again;
            again
                .headers_mut()
                .insert("aegis-min-position", HeaderValue::from(last));
            next.run(again).await
        }
        _ => response,
    }
}

/// A bodiless request as it arrived, with what the layers before added (its principal).
fn copy(req: &Request) -> Request {
    let mut again = Request::new(Body::empty());
    *again.method_mut() = req.method().clone();
    *again.uri_mut() = req.uri().clone();
    *again.version_mut() = req.version();
    *again.headers_mut() = req.headers().clone();
    *again.extensions_mut() = req.extensions().clone();
    again
}

/// Marks every successful read answered while this instance has no connection to NATS
/// (`Aegis-Stale: log-unreachable`): reads go on from Postgres through an outage of the log,
/// and the client knows they may be behind it.
pub async fn mark_stale(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut response = next.run(req).await;
    if read && response.status().is_success() && log_unreachable(&state) {
        response
            .headers_mut()
            .insert(STALE_HEADER, HeaderValue::from_static("log-unreachable"));
    }
    response
}

/// Whether this instance has no connection to NATS right now: the read models cannot move,
/// and a lookup on the log could only time out.
fn log_unreachable(state: &AppState) -> bool {
    state.nats.connection_state() != async_nats::connection::State::Connected
}
