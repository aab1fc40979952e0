//! Commands as NATS requests on `aegis.cmd.>` (internal callers: reactors, other services).
//! A request is translated into the HTTP request it stands for and handled by the same
//! router, so authentication, validation, decision and answer are exactly the HTTP ones.
//!
//! Subjects: `aegis.cmd.admin.tenants.create`, `aegis.cmd.incidents.open`,
//! `aegis.cmd.incidents.update.<id>`, `aegis.cmd.agents.quarantine.<id>`,
//! `aegis.cmd.agents.revoke.<id>`. Headers carry the credentials (`X-Internal-Secret`,
//! `Authorization`, `X-Tenant-ID`) and `Idempotency-Key`, `If-Match`, `traceparent`. The reply
//! carries `Aegis-Status`, `Aegis-Position`, `ETag` and the JSON body.

use aegis_streams::subject::decode_token;
use async_nats::HeaderMap;
use axum::body::Body;
use axum::Router;
use futures::StreamExt;
use http_body_util::BodyExt;
use tokio::sync::watch;
use tower::ServiceExt;

pub const COMMAND_SUBJECTS: &str = "aegis.cmd.>";
pub const QUEUE_GROUP: &str = "aegis-command-api";

const FORWARDED: &[&str] = &[
    "authorization",
    "x-internal-secret",
    "x-tenant-id",
    "idempotency-key",
    "if-match",
    "x-request-id",
    "traceparent",
    "tracestate",
];

/// Maps a command subject to the HTTP method and path it stands for.
pub fn route(subject: &str) -> Option<(http::Method, String)> {
    let rest = subject.strip_prefix("aegis.cmd.")?;
    let tokens: Vec<&str> = rest.split('.').collect();
    match tokens.as_slice() {
        ["admin", "tenants", "create"] => Some((http::Method::POST, "/admin/tenants".into())),
        ["incidents", "open"] => Some((http::Method::POST, "/incidents".into())),
        ["incidents", "update", id] => Some((
            http::Method::PATCH,
            format!("/incidents/{}", decode_token(id).ok()?),
        )),
        ["agents", verb @ ("quarantine" | "revoke"), id] => Some((
            http::Method::POST,
            format!("/api/v1/agents/{}/{verb}", decode_token(id).ok()?),
        )),
        _ => None,
    }
}

fn reply_headers(status: u16, from: Option<&http::HeaderMap>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("Aegis-Status", status.to_string().as_str());
    if let Some(from) = from {
        for name in ["aegis-position", "etag", "idempotent-replayed"] {
            if let Some(v) = from.get(name).and_then(|v| v.to_str().ok()) {
                h.insert(name, v);
            }
        }
    }
    h
}

async fn handle(router: Router, msg: &async_nats::Message) -> (HeaderMap, bytes::Bytes) {
    let Some((method, path)) = route(msg.subject.as_str()) else {
        let body = serde_json::json!({ "error": "not_found", "message": format!("no command at {}", msg.subject) });
        return (reply_headers(404, None), body.to_string().into());
    };
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(headers) = &msg.headers {
        // NATS header names are case-sensitive; HTTP's are not. Match them as HTTP would.
        for (name, values) in headers.iter() {
            let lower = name.to_string().to_ascii_lowercase();
            if let (Some(known), Some(v)) =
                (FORWARDED.iter().find(|f| **f == lower), values.first())
            {
                builder = builder.header(*known, v.as_str());
            }
        }
    }
    let request = match builder.body(Body::from(msg.payload.clone())) {
        Ok(r) => r,
        Err(e) => {
            let body = serde_json::json!({ "error": "bad_request", "message": e.to_string() });
            return (reply_headers(400, None), body.to_string().into());
        }
    };
    let response = match router.oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (
        reply_headers(parts.status.as_u16(), Some(&parts.headers)),
        bytes,
    )
}

/// Serves command requests until `shutdown` turns true.
pub async fn serve(
    client: async_nats::Client,
    router: Router,
    limits: std::sync::Arc<tokio::sync::Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), async_nats::Error> {
    let mut requests = client
        .queue_subscribe(COMMAND_SUBJECTS, QUEUE_GROUP.into())
        .await?;
    loop {
        let msg = tokio::select! {
            m = requests.next() => m,
            _ = shutdown.changed() => return Ok(()),
        };
        let Some(msg) = msg else { return Ok(()) };
        // At most BRIDGE_IN_FLIGHT requests run at once; the next waits here, in the
        // subscription's bounded buffer, instead of as one more task.
        let Ok(turn) = limits.clone().acquire_owned().await else {
            return Ok(());
        };
        let (client, router) = (client.clone(), router.clone());
        tokio::spawn(async move {
            let _turn = turn;
            let Some(reply) = msg.reply.clone() else {
                return;
            };
            let (headers, body) = handle(router, &msg).await;
            if let Err(e) = client.publish_with_headers(reply, headers, body).await {
                tracing::warn!(error = %e, "could not answer a command request");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_map_to_their_http_routes() {
        assert_eq!(
            route("aegis.cmd.incidents.open"),
            Some((http::Method::POST, "/incidents".into()))
        );
        assert_eq!(
            route("aegis.cmd.incidents.update.0190-ab"),
            Some((http::Method::PATCH, "/incidents/0190-ab".into()))
        );
        assert_eq!(
            route("aegis.cmd.admin.tenants.create"),
            Some((http::Method::POST, "/admin/tenants".into()))
        );
        assert_eq!(
            route("aegis.cmd.agents.quarantine.0190-ab"),
            Some((
                http::Method::POST,
                "/api/v1/agents/0190-ab/quarantine".into()
            ))
        );
        assert_eq!(
            route("aegis.cmd.agents.revoke.0190-ab"),
            Some((http::Method::POST, "/api/v1/agents/0190-ab/revoke".into()))
        );
        assert_eq!(route("aegis.cmd.agents.release.x"), None);
        assert_eq!(route("aegis.cmd.incidents.delete.x"), None);
        assert_eq!(route("aegis.evt.incidents.open"), None);
    }
}
