//! Dead-lettered webhook deliveries: `GET /webhooks/dlq` lists them, oldest first, and
//! `POST /webhooks/dlq/{id}/replay` delivers one again to its webhook as configured now (a
//! fixed URL or key takes effect). A delivered replay removes the dead letter; every replay
//! is recorded on the webhook, with who asked.

use super::webhooks::{live, webhook_error};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Query};
use crate::http::openapi::{params, AuthErrors, ErrorBody};
use crate::http::paged::page;
use crate::http::reply::{Data, Paged, Reply};
use crate::http::{aggregate, execute};
use crate::state::AppState;
use aegis_integrations::webhooks::{Command, Replay, Topic, WebhookKind};
use aegis_integrations::WebhookAggregate;
use aegis_integrations_services::dead_letters::{self, DeadLetter};
use aegis_integrations_services::webhooks::{deliver, Secrets, Target};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(replay))
}

fn stream_error(e: dead_letters::DeadLetterError) -> ApiError {
    ApiError::internal(&e)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterView {
    /// Its sequence in the dead-letter stream; replay it with this.
    pub id: u64,
    pub webhook_id: Uuid,
    pub webhook_name: String,
    pub kind: WebhookKind,
    pub topic: Topic,
    pub event_id: String,
    pub event_type: String,
    pub title: String,
    pub attempts: i64,
    /// The last failure (the receiver's status, a network error, or the SSRF guard).
    pub error: String,
    pub failed_at: DateTime<Utc>,
}

fn view(id: u64, d: DeadLetter) -> DeadLetterView {
    DeadLetterView {
        id,
        webhook_id: d.webhook_id,
        webhook_name: d.webhook_name,
        kind: d.kind,
        topic: d.notification.topic,
        event_id: d.notification.event_id,
        event_type: d.notification.event_type,
        title: d.notification.title,
        attempts: d.attempts,
        error: d.error,
        failed_at: d.failed_at,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// The tenant's dead-lettered deliveries, oldest first.
#[utoipa::path(get, path = "/webhooks/dlq", tag = "integrations", security(("bearer" = [])),
    params(DeadLetterQuery, params::Tenant),
    responses((status = 200, description = "A page of dead letters", body = Paged<DeadLetterView>), AuthErrors,
        (status = 422, description = "Invalid paging", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<DeadLetterQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = page(q.limit, q.offset)?;
    let (letters, total) = dead_letters::list(
        state.executor.store().jetstream(),
        tenant.0,
        limit as usize,
        offset as usize,
    )
    .await
    .map_err(stream_error)?;
    Ok(Reply::body(
        StatusCode::OK,
        Paged {
            data: letters.into_iter().map(|(id, d)| view(id, d)).collect(),
            total: total as i64,
            limit,
            offset,
        },
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayResult {
    pub id: u64,
    pub delivered: bool,
    pub attempts: i64,
    pub upstream_status: Option<u16>,
    pub detail: String,
}

/// Deliver a dead letter again, with the usual retries. Delivered: it leaves the list (200).
/// Failed again: it stays, and the answer says why (502).
#[utoipa::path(post, path = "/webhooks/dlq/{id}/replay", tag = "integrations", security(("bearer" = [])),
    params(("id" = u64, Path), params::Tenant),
    responses((status = 200, description = "Delivered", body = Data<ReplayResult>),
        AuthErrors,
        (status = 404, description = "No such dead letter, or its webhook was deleted", body = ErrorBody),
        (status = 502, description = "The receiver failed again; the dead letter stays", body = ErrorBody)))]
async fn replay(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let missing = || ApiError::not_found("no such dead letter");
    let id: u64 = id.parse().map_err(|_| missing())?;
    let js = state.executor.store().jetstream();
    let letter = dead_letters::get(js, tenant.0, id)
        .await
        .map_err(stream_error)?
        .ok_or_else(missing)?;
    let (w, _, _) = live(&state, &principal, letter.webhook_id)
        .await
        .map_err(|_| ApiError::not_found("the dead letter's webhook was deleted"))?;
    let secrets = Secrets::open(&state, tenant.0, &w.id, &w.secrets)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let target = Target {
        id: letter.webhook_id,
        name: w.definition.name.clone(),
        kind: w.definition.kind,
        secrets,
    };
    let n = &letter.notification;
    let (attempts, status, error) = match deliver(&state, tenant.0, &target, n).await {
        Some(d) => (
            d.attempts,
            d.outcome.status(),
            d.outcome.error().map(str::to_string),
        ),
        None => (0, None, None),
    };
    let detail = error.clone().unwrap_or_else(|| "delivered".to_string());
    let agg = aggregate::<WebhookAggregate>(tenant.0, w.id.clone())?;
    execute::<WebhookAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Own(Replay {
            dead_letter: id,
            event_id: n.event_id.clone(),
            topic: n.topic.as_str().to_string(),
            delivered: error.is_none(),
            detail: detail.clone(),
        }),
        false,
        webhook_error,
    )
    .await?;
    if let Some(e) = error {
        return Err(ApiError::new(StatusCode::BAD_GATEWAY, "upstream_error", e)
            .with("id", id)
            .with("attempts", attempts)
            .with("upstream_status", status));
    }
    dead_letters::remove(js, id).await.map_err(stream_error)?;
    Ok(Reply::data(
        StatusCode::OK,
        ReplayResult {
            id,
            delivered: true,
            attempts,
            upstream_status: status,
            detail,
        },
    ))
}
