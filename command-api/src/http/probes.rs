//! Probes and metrics: `/healthz` (alive), `/readyz` (per-check map; 503 when NATS,
//! Postgres or a projection is not fit to serve), `/metrics` (Prometheus text). Seed 001's
//! `/health` is the vault's (`http::vault::service_health`).

use crate::http::exposition::Exposition;
use crate::state::AppState;
use aegis_streams::{provision::events_stream_name, DLQ_STREAM};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::TryStreamExt;
use serde::Serialize;
use serde_json::{json, Map};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub service: String,
    pub version: String,
}

fn alive() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        service: "aegis".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Liveness probe.
#[utoipa::path(get, path = "/healthz", tag = "probes", responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> Json<Health> {
    alive()
}

#[derive(Serialize, ToSchema)]
pub struct CheckResult {
    /// ok | fail
    pub status: String,
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// ready | not_ready
    pub status: String,
    pub checks: std::collections::BTreeMap<String, CheckResult>,
}

/// Readiness: NATS, Postgres and every projection, each with its own result.
#[utoipa::path(get, path = "/readyz", tag = "probes", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "A check failed", body = Readiness),
))]
async fn readyz(State(state): State<AppState>) -> Response {
    let mut checks = Map::new();
    let mut ready = true;
    let mut record = |name: String, result: Result<(), String>| {
        ready &= result.is_ok();
        checks.insert(
            name,
            result.map_or_else(
                |e| json!({ "status": "fail", "error": e }),
                |()| json!({ "status": "ok" }),
            ),
        );
    };
    let nats = match state.nats.connection_state() {
        async_nats::connection::State::Connected => state
            .executor
            .store()
            .head()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        other => Err(format!("connection {other:?}")),
    };
    record("nats".into(), nats);
    let pg = sqlx::query("SELECT 1")
        .execute(&state.pool)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let pg_ok = pg.is_ok();
    record("postgres".into(), pg);
    if pg_ok {
        match aegis_projectors::checkpoint::all(&state.pool).await {
            Ok(cps) => {
                for cp in cps {
                    let result = if cp.halted() {
                        Err(format!(
                            "halted at position {}: {}",
                            cp.failed_position.unwrap_or_default(),
                            cp.error.unwrap_or_default()
                        ))
                    } else {
                        Ok(())
                    };
                    record(format!("projector:{}", cp.name), result);
                }
            }
            Err(e) => record("projectors".into(), Err(e.to_string())),
        }
    }
    // A background role restarting after a failure is not ready until it runs again.
    for (name, role) in state.supervision.snapshot() {
        let result = if role.running {
            Ok(())
        } else {
            Err(format!(
                "restarting after {} failure(s): {}",
                role.restarts,
                role.last_failure.unwrap_or_default()
            ))
        };
        record(format!("role:{name}"), result);
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "status": if ready { "ready" } else { "not_ready" }, "checks": checks })),
    )
        .into_response()
}

/// Seed 000's auto-response metrics: runs and pending approvals from the read model, match
/// latency from the reactor of this process.
async fn auto_response_metrics(state: &AppState, out: &mut Exposition) {
    out.family(
        "acp_ar_rule_runs_total",
        "counter",
        "Auto-response runs by rule and result (simulated, throttled and braked runs included).",
    );
    // A gated run counts once as `pending_approval`, then once more with its approval's end.
    let runs: Vec<(uuid::Uuid, uuid::Uuid, String, i64)> = sqlx::query_as(
        "SELECT tenant_id, rule_id, result, sum(n)::bigint FROM ( \
           SELECT tenant_id, rule_id, completed_result AS result, count(*) AS n FROM auto_response_runs \
           WHERE completed_result IS NOT NULL GROUP BY 1, 2, 3 \
           UNION ALL SELECT tenant_id, rule_id, result, count(*) FROM auto_response_approvals \
           WHERE result IS NOT NULL GROUP BY 1, 2, 3) AS counted GROUP BY 1, 2, 3",
    )
    .fetch_all(&state.pool)
    .await
    .unwrap_or_default();
    for (tenant, rule, result, n) in runs {
        out.sample(
            "acp_ar_rule_runs_total",
            &[
                ("tenant_id", &tenant.to_string()),
                ("rule_id", &rule.to_string()),
                ("result", &result),
            ],
            n as f64,
        );
    }
    out.family(
        "acp_ar_pending_approvals_size",
        "gauge",
        "Auto-response approvals waiting for a decision.",
    );
    let pending: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT tenant_id, count(*) FROM auto_response_approvals WHERE status = 'pending' GROUP BY 1",
    )
    .fetch_all(&state.pool)
    .await
    .unwrap_or_default();
    for (tenant, n) in pending {
        out.sample(
            "acp_ar_pending_approvals_size",
            &[("tenant_id", &tenant.to_string())],
            n as f64,
        );
    }
    const LATENCY: &str = "acp_ar_rule_match_latency_seconds";
    out.family(
        LATENCY,
        "histogram",
        "Time to match one event against the tenant's rules.",
    );
    for (tenant, h) in state.metrics.ar_latency.snapshot() {
        let tenant = tenant.to_string();
        for (bound, n) in aegis_runtime::metrics::BUCKETS.iter().zip(h.counts) {
            out.sample(
                &format!("{LATENCY}_bucket"),
                &[("tenant_id", &tenant), ("le", &bound.to_string())],
                n as f64,
            );
        }
        out.sample(
            &format!("{LATENCY}_bucket"),
            &[("tenant_id", &tenant), ("le", "+Inf")],
            h.count as f64,
        );
        out.sample(&format!("{LATENCY}_sum"), &[("tenant_id", &tenant)], h.sum);
        out.sample(
            &format!("{LATENCY}_count"),
            &[("tenant_id", &tenant)],
            h.count as f64,
        );
    }
}

/// `/metrics` alone, without credentials: what `AEGIS_METRICS_ADDR` serves to a local scraper.
pub fn metrics_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state(state)
}

/// Prometheus metrics. They name every tenant, so the API serves them to holders of
/// `metrics.read` (the internal secret, the platform admin); scrapers without credentials use
/// the loopback listener on `AEGIS_METRICS_ADDR`.
#[utoipa::path(get, path = "/metrics", tag = "probes", security(("bearer" = []), ("internal_secret" = [])),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"), crate::http::openapi::AuthErrors))]
async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = Exposition(String::new());
    let store = state.executor.store();
    let head = store.head().await.unwrap_or(0);
    out.family(
        "aegis_stream_head_position",
        "gauge",
        "Stream sequence of the newest commit in AEGIS_EVENTS.",
    );
    out.sample("aegis_stream_head_position", &[], head as f64);

    out.family(
        "acp_incidents_open_total",
        "gauge",
        "Incidents not yet resolved or closed.",
    );
    let open: Vec<(uuid::Uuid, String, i64)> = sqlx::query_as(
        "SELECT tenant_id, severity, count(*) FROM incidents WHERE status NOT IN ('resolved', 'closed') GROUP BY 1, 2",
    )
    .fetch_all(&state.pool)
    .await
    .unwrap_or_default();
    for (tenant, severity, n) in open {
        out.sample(
            "acp_incidents_open_total",
            &[("tenant_id", &tenant.to_string()), ("severity", &severity)],
            n as f64,
        );
    }

    out.family(
        "acp_api_keys_created_total",
        "counter",
        "API keys issued (revoked ones included).",
    );
    let keys: Vec<(uuid::Uuid, i64)> =
        sqlx::query_as("SELECT tenant_id, count(*) FROM api_keys GROUP BY 1")
            .fetch_all(&state.pool)
            .await
            .unwrap_or_default();
    for (tenant, n) in keys {
        out.sample(
            "acp_api_keys_created_total",
            &[("tenant_id", &tenant.to_string())],
            n as f64,
        );
    }

    auto_response_metrics(&state, &mut out).await;
    crate::http::broker::metrics(&state, &mut out).await;
    out.family(
        "aegis_access_log_lost_total",
        "counter",
        "Decision log records this instance could not queue (the log fell behind or stopped)",
    );
    out.sample(
        "aegis_access_log_lost_total",
        &[],
        state.access_log.lost() as f64,
    );
    out.family(
        "acp_siem_push_total",
        "counter",
        "Events pushed to SIEMs by outcome: delivered, failed (this instance)",
    );
    for ((tenant, target, result), n) in state.metrics.siem_pushes.snapshot() {
        out.sample(
            "acp_siem_push_total",
            &[
                ("tenant_id", &tenant.to_string()),
                ("target", target),
                ("result", result),
            ],
            n as f64,
        );
    }
    out.family(
        "acp_webhook_delivery_total",
        "counter",
        "Webhook deliveries by outcome: delivered, retried, dead_lettered (this instance)",
    );
    for ((tenant, target, result), n) in state.metrics.deliveries.snapshot() {
        out.sample(
            "acp_webhook_delivery_total",
            &[
                ("tenant_id", &tenant.to_string()),
                ("target", target),
                ("result", result),
            ],
            n as f64,
        );
    }
    out.family(
        "acp_threat_intel_lookup_total",
        "counter",
        "Threat-intel provider answers by result: ok, not_found, error, cached, not_configured, rate_limited.",
    );
    for (tenant, provider, result, n) in state.threat_intel.counts() {
        out.sample(
            "acp_threat_intel_lookup_total",
            &[
                ("tenant_id", &tenant.to_string()),
                ("provider", provider),
                ("result", result),
            ],
            n as f64,
        );
    }

    let cps = aegis_projectors::checkpoint::all(&state.pool)
        .await
        .unwrap_or_default();
    out.family(
        "aegis_projector_position",
        "gauge",
        "Last stream position a projection applied.",
    );
    for cp in &cps {
        out.sample(
            "aegis_projector_position",
            &[("projection", &cp.name)],
            cp.position as f64,
        );
    }
    out.family(
        "aegis_projector_lag_events",
        "gauge",
        "Commits in the log a projection has not applied yet.",
    );
    for cp in &cps {
        out.sample(
            "aegis_projector_lag_events",
            &[("projection", &cp.name)],
            head.saturating_sub(cp.position as u64) as f64,
        );
    }
    out.family(
        "aegis_projector_halted",
        "gauge",
        "1 when a projection stopped on an event it cannot apply.",
    );
    for cp in &cps {
        out.sample(
            "aegis_projector_halted",
            &[("projection", &cp.name)],
            if cp.halted() { 1.0 } else { 0.0 },
        );
    }
    out.family(
        "aegis_commands_shed_total",
        "counter",
        "Commands answered 503 because as many as allowed were in flight.",
    );
    out.sample(
        "aegis_commands_shed_total",
        &[],
        state
            .metrics
            .commands_shed
            .load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    out.family(
        "aegis_connections_refused_total",
        "counter",
        "HTTP connections answered 503 and closed because as many as allowed were open.",
    );
    out.sample(
        "aegis_connections_refused_total",
        &[],
        state
            .metrics
            .connections_refused
            .load(std::sync::atomic::Ordering::Relaxed) as f64,
    );

    let js = store.jetstream();
    out.family(
        "aegis_reactor_pending_events",
        "gauge",
        "Events a reactor's durable consumer has not yet received.",
    );
    out.family(
        "aegis_reactor_unacked_events",
        "gauge",
        "Events delivered to a reactor and not yet acknowledged.",
    );
    if let Ok(stream) = js.get_stream(events_stream_name()).await {
        if let Ok(consumers) = stream.consumers().try_collect::<Vec<_>>().await {
            for c in consumers.iter().filter(|c| c.config.durable_name.is_some()) {
                out.sample(
                    "aegis_reactor_pending_events",
                    &[("reactor", &c.name)],
                    c.num_pending as f64,
                );
                out.sample(
                    "aegis_reactor_unacked_events",
                    &[("reactor", &c.name)],
                    c.num_ack_pending as f64,
                );
            }
        }
    }
    out.family(
        "aegis_dlq_messages",
        "gauge",
        "Dead-lettered reactor work waiting in AEGIS_DLQ.",
    );
    if let Ok(mut dlq) = js.get_stream(DLQ_STREAM).await {
        if let Ok(info) = dlq.info().await {
            out.sample("aegis_dlq_messages", &[], info.state.messages as f64);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out.0,
    )
        .into_response()
}
