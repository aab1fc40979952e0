//! What authorization tells the decision log (`crate::access_log`): on a route carrying seed
//! 003's `audit` control, who asked for which route and path, whether it was let through
//! (`allowed`, whatever the handler then answered) or refused here (`denied`: a missing
//! permission, entitlement or quota), and the answer's status.

use super::route::{controls, Route};
use super::Principal;
use crate::access_log::{Decision, RequestId};
use crate::state::AppState;
use axum::http::request::Parts;
use axum::response::Response;

/// A request on an audited route, before its answer.
pub(super) struct Asked(Option<Decision>);

impl Asked {
    pub(super) fn new(route: &Route, parts: &Parts, principal: &Principal) -> Self {
        if route.controls & controls::AUDIT == 0 {
            return Asked(None);
        }
        // A platform caller acting in no tenant has no tenant's log to go to.
        let Some(tenant) = principal.tenant.or(principal.home) else {
            return Asked(None);
        };
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= 200)
                .map(str::to_string)
        };
        Asked(Some(Decision {
            at: chrono::Utc::now(),
            tenant: tenant.0,
            principal_kind: principal.kind.as_str().to_string(),
            principal: principal.subject.clone(),
            action: format!("{} {}", route.method, route.path),
            resource: parts.uri.path().chars().take(1000).collect(),
            decision: String::new(),
            status: 0,
            correlation_id: header("x-correlation-id"),
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
        }))
    }
}

async fn log(state: &AppState, asked: Asked, decision: &str, response: Response) -> Response {
    if let Some(mut d) = asked.0 {
        d.decision = decision.to_string();
        d.status = response.status().as_u16();
        state.access_log.record(d).await;
    }
    response
}

/// The request went on to its handler.
pub(super) async fn allowed(state: &AppState, asked: Asked, response: Response) -> Response {
    log(state, asked, "allowed", response).await
}

/// Authorization refused the request.
pub(super) async fn denied(state: &AppState, asked: Asked, response: Response) -> Response {
    log(state, asked, "denied", response).await
}
