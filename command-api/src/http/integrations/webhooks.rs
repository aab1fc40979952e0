//! Webhook configs (seed 000's `POST /webhooks/config`, plus list, read, update, delete) and
//! `POST /webhooks/test/slack`. A URL, routing key or signing secret goes in and is never
//! given back: it is sealed before it reaches the log, and views show the host only. Every
//! URL passes the SSRF guard here and again at each delivery.

use super::fields::{checked_url, key_error, name, secrets_of};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json, MinPosition, Query, UuidPath};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::paged::page;
use crate::http::paged::TenantQuery;
use crate::http::reply::{Data, Paged, Reply};
use crate::http::{aggregate, current, ensure_tenant, execute};
use crate::state::AppState;
use aegis_integrations::webhooks::{secret_name, Command, Definition, Topic, Webhook, WebhookKind};
use aegis_integrations::{WebhookAggregate, WebhookError};
use aegis_integrations_services::webhooks::{self as wire, Secrets};
use aegis_projectors::integrations::IntegrationsProjection;
use aegis_projectors::Projection;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(detail, update, delete))
        .routes(routes!(test_slack))
}

pub(crate) fn webhook_error(e: WebhookError) -> ApiError {
    match e {
        WebhookError::NotFound => ApiError::not_found("webhook not found"),
        WebhookError::AlreadyExists => ApiError::conflict("the webhook already exists"),
        WebhookError::KindChanged => ApiError::validation("kind", e.to_string()),
        WebhookError::SecretsRaced => ApiError::conflict(e.to_string()).with("retry_after_ms", 0),
    }
}

/// A webhook config. Slack: `url` (the incoming-webhook URL). PagerDuty: `routing_key`
/// (`url` defaults to the Events API v2). Generic: `url`, and `signing_secret` (generated and
/// shown once when left out).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// 1 to 100 characters; a rule's `notify` may name it as its `channel`.
    pub name: String,
    pub kind: WebhookKind,
    pub url: Option<String>,
    pub routing_key: Option<String>,
    pub signing_secret: Option<String>,
    /// Default `incident.opened`, `incident.resolved`, `auto_response.notify`.
    pub topics: Option<Vec<Topic>>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// A change to a webhook: what is left out stays; a new `url`, `routing_key` or
/// `signing_secret` replaces the old one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    pub routing_key: Option<String>,
    pub signing_secret: Option<String>,
    pub topics: Option<Vec<Topic>>,
    pub enabled: Option<bool>,
}

fn topics(list: Option<Vec<Topic>>) -> Result<Vec<Topic>, ApiError> {
    let list = list.unwrap_or_else(Topic::defaults);
    if list.is_empty() {
        return Err(ApiError::validation("topics", "name at least one topic"));
    }
    let mut out: Vec<Topic> = Vec::new();
    for t in list {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub name: String,
    pub kind: WebhookKind,
    /// Where deliveries go; the URL itself is never shown (Slack's carries its token).
    pub host: String,
    pub topics: Vec<Topic>,
    pub enabled: bool,
    /// Bumped each time the URL, routing key or signing secret is replaced.
    pub secrets_version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A generic webhook's generated signing secret: in the create answer only, once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

fn view(w: &Webhook) -> WebhookView {
    WebhookView {
        id: w.id.clone(),
        name: w.definition.name.clone(),
        kind: w.definition.kind,
        host: w.definition.host.clone(),
        topics: w.definition.topics.clone(),
        enabled: w.definition.enabled,
        secrets_version: w.secrets.version,
        created_at: w.created_at,
        updated_at: w.updated_at,
        signing_secret: None,
    }
}

/// Save a webhook config (ADMIN). Its URL passes the SSRF guard now and at every delivery.
#[utoipa::path(post, path = "/webhooks/config", tag = "integrations", security(("bearer" = [])),
    params(params::Tenant), request_body = WebhookBody,
    responses((status = 201, description = "Saved; a generated signing secret is shown this once", body = Data<WebhookView>, headers(("ETag" = String))),
        AuthErrors, BodyErrors))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<WebhookBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let name = name(&body.name)?;
    let topics = topics(body.topics)?;
    let (secrets, generated) = secrets_of(
        body.kind,
        body.url.as_deref(),
        body.routing_key.as_deref(),
        body.signing_secret.as_deref(),
    )?;
    let host = checked_url(&state, &secrets.url).await?;
    ensure_tenant(&state, tenant).await?;
    let id = Uuid::now_v7().to_string();
    let sealed = secrets
        .seal(&state, tenant.0, &id, 1)
        .await
        .map_err(key_error)?;
    let agg = aggregate::<WebhookAggregate>(tenant.0, id)?;
    let outcome = execute::<WebhookAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Create {
            definition: Definition {
                name,
                kind: body.kind,
                host,
                topics,
                enabled: body.enabled.unwrap_or(true),
            },
            secrets: sealed,
        },
        true,
        webhook_error,
    )
    .await?;
    let w = outcome
        .state
        .ok_or_else(|| ApiError::internal(&WebhookError::NotFound))?;
    let mut v = view(&w);
    v.signing_secret = generated;
    Ok(Reply::data(StatusCode::CREATED, v).at(outcome.position, outcome.version))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WebhookQuery {
    pub kind: Option<WebhookKind>,
    pub enabled: Option<bool>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub host: String,
    pub topics: Vec<String>,
    pub enabled: bool,
    pub secrets_version: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The tenant's webhooks, newest first; never a URL, key or secret.
#[utoipa::path(get, path = "/webhooks/config", tag = "integrations", security(("bearer" = [])),
    params(WebhookQuery, params::Tenant, params::MinPosition),
    responses((status = 200, description = "A page of webhooks", body = Paged<WebhookRow>), AuthErrors,
        (status = 422, description = "Invalid filter or paging", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<WebhookQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = page(q.limit, q.offset)?;
    min.wait(&state, &[IntegrationsProjection::NAME]).await?;
    let kind = q.kind.map(|k| k.as_str().to_string());
    let (rows, total): (Vec<WebhookRow>, i64) =
        TenantQuery::new("webhooks", "tenant_id", tenant.0)
            .when(true, "NOT deleted")
            .eq_text("kind", kind.as_deref())
            .eq_bool("enabled", q.enabled)
            .page(
                &state.pool,
                "id, name, kind, host, topics, enabled, secret_version AS secrets_version, created_by, created_at, updated_at",
                "created_at DESC, id DESC",
                limit,
                offset,
            )
            .await?;
    Ok(Reply::body(
        StatusCode::OK,
        Paged {
            data: rows,
            total,
            limit,
            offset,
        },
    ))
}

pub(crate) async fn live(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<(Webhook, u64, u64), ApiError> {
    let tenant = principal.tenant()?;
    let (w, position, version) = current::<WebhookAggregate>(state, tenant, id.to_string()).await?;
    match w {
        Some(w) if !w.deleted => Ok((w, position, version)),
        _ => Err(ApiError::not_found("webhook not found")),
    }
}

/// One webhook (from the log).
#[utoipa::path(get, path = "/webhooks/config/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant),
    responses((status = 200, description = "The webhook", body = Data<WebhookView>, headers(("ETag" = String))),
        AuthErrors, (status = 404, description = "No such webhook", body = ErrorBody)))]
async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    UuidPath(id): UuidPath,
) -> Result<Reply, ApiError> {
    let (w, position, version) = live(&state, &principal, id).await?;
    Ok(Reply::data(StatusCode::OK, view(&w)).at(position, version))
}

/// Change a webhook; `If-Match` guards against overwriting a change you have not seen (409).
#[utoipa::path(put, path = "/webhooks/config/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant, params::IfMatch), request_body = WebhookPatch,
    responses((status = 200, description = "The webhook", body = Data<WebhookView>, headers(("ETag" = String))),
        AuthErrors, BodyErrors,
        (status = 404, description = "No such webhook", body = ErrorBody),
        (status = 409, description = "Stale If-Match", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
    Json(body): Json<WebhookPatch>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (w, _, _) = live(&state, &principal, id).await?;
    let kind = w.definition.kind;
    let mut definition = w.definition.clone();
    if let Some(n) = &body.name {
        definition.name = name(n)?;
    }
    if body.topics.is_some() {
        definition.topics = topics(body.topics)?;
    }
    if let Some(e) = body.enabled {
        definition.enabled = e;
    }
    let changes_secrets =
        body.url.is_some() || body.routing_key.is_some() || body.signing_secret.is_some();
    let sealed = if changes_secrets {
        let old = Secrets::open(&state, tenant.0, &w.id, &w.secrets)
            .await
            .map_err(key_error)?;
        let (secrets, _) = secrets_of(
            kind,
            Some(body.url.as_deref().unwrap_or(&old.url)),
            body.routing_key.as_deref().or(old.routing_key.as_deref()),
            body.signing_secret
                .as_deref()
                .or(old.signing_secret.as_deref()),
        )?;
        definition.host = checked_url(&state, &secrets.url).await?;
        Some(
            secrets
                .seal(&state, tenant.0, &w.id, w.secrets.version + 1)
                .await
                .map_err(key_error)?,
        )
    } else {
        None
    };
    let agg = aggregate::<WebhookAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<WebhookAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Update {
            definition,
            secrets: sealed,
        },
        false,
        webhook_error,
    )
    .await?;
    let w = outcome
        .state
        .ok_or_else(|| ApiError::not_found("webhook not found"))?;
    Ok(Reply::data(StatusCode::OK, view(&w)).at(outcome.position, outcome.version))
}

/// Delete a webhook: it receives nothing more; its history stays in the log and its key is
/// destroyed, so its URL and secrets can never be read again.
#[utoipa::path(delete, path = "/webhooks/config/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant),
    responses((status = 204, description = "Deleted"), AuthErrors,
        (status = 404, description = "No such webhook", body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
) -> Result<StatusCode, ApiError> {
    let tenant = principal.tenant()?;
    let agg = aggregate::<WebhookAggregate>(tenant.0, id.to_string())?;
    execute::<WebhookAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Delete,
        false,
        webhook_error,
    )
    .await?;
    state
        .keys
        .destroy_secret(tenant.0, &secret_name(&id.to_string()))
        .await
        .map_err(key_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Either a URL to try before saving it, or a saved Slack webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackTestBody {
    pub url: Option<String>,
    pub webhook_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlackTestResult {
    pub delivered: bool,
    /// The HTTP status Slack answered; absent when no answer came.
    pub upstream_status: Option<u16>,
    pub detail: String,
}

/// Send a test message to Slack and answer the status Slack returned (seed 000).
#[utoipa::path(post, path = "/webhooks/test/slack", tag = "integrations", security(("bearer" = [])),
    params(params::Tenant), request_body = SlackTestBody,
    responses((status = 200, description = "What Slack answered (a refusal by Slack is reported, not raised)", body = Data<SlackTestResult>),
        AuthErrors, BodyErrors,
        (status = 404, description = "No such webhook", body = ErrorBody)))]
async fn test_slack(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<SlackTestBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let url = match (body.url, body.webhook_id) {
        (Some(url), None) => {
            checked_url(&state, &url).await?;
            url
        }
        (None, Some(id)) => {
            let (w, _, _) = live(&state, &principal, id).await?;
            if w.definition.kind != WebhookKind::Slack {
                return Err(ApiError::validation(
                    "webhook_id",
                    "that webhook is not a Slack webhook",
                ));
            }
            Secrets::open(&state, tenant.0, &w.id, &w.secrets)
                .await
                .map_err(key_error)?
                .url
        }
        _ => {
            return Err(ApiError::validation(
                "url",
                "give either `url` or `webhook_id`",
            ))
        }
    };
    let attempt = wire::test_slack(&state, tenant.0, url, &principal.subject).await;
    let result = SlackTestResult {
        delivered: attempt.error().is_none(),
        upstream_status: attempt.status(),
        detail: attempt
            .error()
            .unwrap_or("Slack accepted the test message")
            .to_string(),
    };
    Ok(Reply::data(StatusCode::OK, result))
}
