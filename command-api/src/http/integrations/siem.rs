//! SIEM connections (seed 000's `POST /siem/config`, plus list, read, update, delete),
//! `POST /siem/test/splunk` and `/siem/test/datadog`, and the internal `POST /siem/push`.
//! A token goes in and is never given back; views show the host, and the forwarder's
//! progress (checkpoint, lag, last error).

use super::fields::{checked_url, key_error, name, token};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json, MinPosition, Query, UuidPath};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::paged::page;
use crate::http::paged::TenantQuery;
use crate::http::reply::{Data, Paged, Reply};
use crate::http::{aggregate, current, ensure_tenant, execute};
use crate::state::AppState;
use aegis_integrations::siem::{secret_name, Command, Connection, Definition, SiemKind};
use aegis_integrations::{SiemAggregate, SiemError};
use aegis_integrations_services::siem::{
    datadog_url, push, ConnectionRow, SiemSecrets, CONNECTION_COLUMNS,
};
use aegis_projectors::integrations::IntegrationsProjection;
use aegis_projectors::Projection;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(detail, update, delete))
        .routes(routes!(test_splunk))
        .routes(routes!(test_datadog))
        .routes(routes!(push_now))
}

fn siem_error(e: SiemError) -> ApiError {
    match e {
        SiemError::NotFound => ApiError::not_found("SIEM connection not found"),
        SiemError::AlreadyExists => ApiError::conflict("the SIEM connection already exists"),
        SiemError::KindChanged => ApiError::validation("kind", e.to_string()),
        SiemError::SecretsRaced => ApiError::conflict(e.to_string()).with("retry_after_ms", 0),
    }
}

/// A SIEM connection. Splunk HEC: `url` (e.g. `https://splunk.example:8088`), `token`, and
/// optionally `index` and `sourcetype`. Datadog: `token` (the API key) and `site` (default
/// `datadoghq.com`); `url` overrides the intake the site names.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiemBody {
    pub name: String,
    pub kind: SiemKind,
    pub url: Option<String>,
    pub token: String,
    pub index: Option<String>,
    pub sourcetype: Option<String>,
    pub site: Option<String>,
    /// Forward only these contexts (`incidents`, `vault`, ...); default all.
    pub contexts: Option<Vec<String>>,
    /// Forward only these event types (`incident.opened.v1`, ...); default all.
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
    /// Forward the tenant's whole history first (default: from now on).
    pub backfill: Option<bool>,
}

/// A change: what is left out stays; a new `url` or `token` replaces the old one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiemPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    pub token: Option<String>,
    pub index: Option<String>,
    pub sourcetype: Option<String>,
    pub site: Option<String>,
    pub contexts: Option<Vec<String>>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

fn words(
    field: &str,
    list: Option<Vec<String>>,
    event_type: bool,
) -> Result<Vec<String>, ApiError> {
    let list = list.unwrap_or_default();
    if list.len() > 50 {
        return Err(ApiError::validation(field, "at most 50 values"));
    }
    for w in &list {
        let parts: Vec<&str> = w.split('.').collect();
        let ok = w.len() <= 100
            && parts.len() == if event_type { 3 } else { 1 }
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
        if !ok {
            return Err(ApiError::validation(
                field,
                format!(
                    "`{w}` is not a valid {}",
                    if event_type { "event type" } else { "context" }
                ),
            ));
        }
    }
    Ok(list)
}

fn short(field: &str, raw: Option<String>) -> Result<String, ApiError> {
    let v = raw.unwrap_or_default();
    if v.chars().count() > 100 || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ApiError::validation(
            field,
            format!("{field} must be at most 100 characters without spaces"),
        ));
    }
    Ok(v)
}

fn site(raw: Option<String>) -> Result<String, ApiError> {
    let s = raw.unwrap_or_else(|| "datadoghq.com".into());
    let ok = s.len() <= 100
        && s.split('.').count() >= 2
        && s.split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !ok {
        return Err(ApiError::validation(
            "site",
            "site must be a Datadog site such as datadoghq.com",
        ));
    }
    Ok(s.to_ascii_lowercase())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SiemView {
    pub id: String,
    pub name: String,
    pub kind: SiemKind,
    pub host: String,
    pub index: String,
    pub sourcetype: String,
    pub site: String,
    pub contexts: Vec<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub start_position: u64,
    pub secrets_version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view(c: &Connection) -> SiemView {
    let d = &c.definition;
    SiemView {
        id: c.id.clone(),
        name: d.name.clone(),
        kind: d.kind,
        host: d.host.clone(),
        index: d.index.clone(),
        sourcetype: d.sourcetype.clone(),
        site: d.site.clone(),
        contexts: d.contexts.clone(),
        event_types: d.event_types.clone(),
        enabled: d.enabled,
        start_position: d.start_position,
        secrets_version: c.secrets.version,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

/// Save a SIEM connection (ADMIN). Its forwarder starts within a second.
#[utoipa::path(post, path = "/siem/config", tag = "integrations", security(("bearer" = [])),
    params(params::Tenant), request_body = SiemBody,
    responses((status = 201, description = "Saved", body = Data<SiemView>, headers(("ETag" = String))),
        AuthErrors, BodyErrors))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<SiemBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let name = name(&body.name)?;
    let token = token("token", &body.token, 8)?;
    let (site, url) = match body.kind {
        SiemKind::Splunk => {
            if body.site.is_some() {
                return Err(ApiError::validation("site", "`site` is for Datadog"));
            }
            let url = body.url.ok_or_else(|| {
                ApiError::validation("url", "a Splunk connection needs its HEC url")
            })?;
            (String::new(), url)
        }
        SiemKind::Datadog => {
            let site = site(body.site)?;
            let url = body.url.unwrap_or_else(|| datadog_url(&site));
            (site, url)
        }
    };
    let host = checked_url(&state, &url).await?;
    let definition = Definition {
        name,
        kind: body.kind,
        host,
        index: short("index", body.index)?,
        sourcetype: short("sourcetype", body.sourcetype)?,
        site,
        contexts: words("contexts", body.contexts, false)?,
        event_types: words("event_types", body.event_types, true)?,
        enabled: body.enabled.unwrap_or(true),
        start_position: if body.backfill.unwrap_or(false) {
            1
        } else {
            state.executor.store().head().await? + 1
        },
    };
    ensure_tenant(&state, tenant).await?;
    let id = Uuid::now_v7().to_string();
    let sealed = SiemSecrets { url, token }
        .seal(&state, tenant.0, &id, 1)
        .await
        .map_err(key_error)?;
    let agg = aggregate::<SiemAggregate>(tenant.0, id)?;
    let outcome = execute::<SiemAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Create {
            definition,
            secrets: sealed,
        },
        true,
        siem_error,
    )
    .await?;
    let c = outcome
        .state
        .ok_or_else(|| ApiError::internal(&SiemError::NotFound))?;
    Ok(Reply::data(StatusCode::CREATED, view(&c)).at(outcome.position, outcome.version))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SiemQuery {
    pub kind: Option<SiemKind>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct SiemRow {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub host: String,
    pub enabled: bool,
    pub contexts: Vec<String>,
    pub event_types: Vec<String>,
    /// The last log position the SIEM acknowledged (null before the first push).
    pub checkpoint: Option<i64>,
    /// Events forwarded so far.
    pub forwarded: i64,
    /// The last push failure, cleared by the next success.
    pub last_error: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The tenant's SIEM connections with their forwarders' progress; never a URL or token.
#[utoipa::path(get, path = "/siem/config", tag = "integrations", security(("bearer" = [])),
    params(SiemQuery, params::Tenant, params::MinPosition),
    responses((status = 200, description = "A page of connections", body = Paged<SiemRow>), AuthErrors,
        (status = 422, description = "Invalid filter or paging", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<SiemQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = page(q.limit, q.offset)?;
    min.wait(&state, &[IntegrationsProjection::NAME]).await?;
    let kind = q.kind.map(|k| k.as_str().to_string());
    let (rows, total): (Vec<SiemRow>, i64) =
        TenantQuery::new("siem_connections c LEFT JOIN siem_checkpoints k ON k.connection_id = c.id", "c.tenant_id", tenant.0)
            .when(true, "NOT c.deleted")
            .eq_text("c.kind", kind.as_deref())
            .page(
                &state.pool,
                "c.id, c.name, c.kind, c.host, c.enabled, c.contexts, c.event_types, k.position AS checkpoint, coalesce(k.forwarded, 0) AS forwarded, k.last_error, k.last_success_at, c.created_at",
                "c.created_at DESC, c.id DESC",
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

async fn live(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<(Connection, u64, u64), ApiError> {
    let tenant = principal.tenant()?;
    let (c, position, version) = current::<SiemAggregate>(state, tenant, id.to_string()).await?;
    match c {
        Some(c) if !c.deleted => Ok((c, position, version)),
        _ => Err(ApiError::not_found("SIEM connection not found")),
    }
}

/// One connection (from the log).
#[utoipa::path(get, path = "/siem/config/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant),
    responses((status = 200, description = "The connection", body = Data<SiemView>, headers(("ETag" = String))),
        AuthErrors, (status = 404, description = "No such connection", body = ErrorBody)))]
async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    UuidPath(id): UuidPath,
) -> Result<Reply, ApiError> {
    let (c, position, version) = live(&state, &principal, id).await?;
    Ok(Reply::data(StatusCode::OK, view(&c)).at(position, version))
}

/// Change a connection; its forwarder restarts with the change, from its checkpoint.
#[utoipa::path(put, path = "/siem/config/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant, params::IfMatch), request_body = SiemPatch,
    responses((status = 200, description = "The connection", body = Data<SiemView>, headers(("ETag" = String))),
        AuthErrors, BodyErrors,
        (status = 404, description = "No such connection", body = ErrorBody),
        (status = 409, description = "Stale If-Match", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
    Json(body): Json<SiemPatch>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (c, _, _) = live(&state, &principal, id).await?;
    let mut d = c.definition.clone();
    if let Some(n) = &body.name {
        d.name = name(n)?;
    }
    if body.index.is_some() {
        d.index = short("index", body.index)?;
    }
    if body.sourcetype.is_some() {
        d.sourcetype = short("sourcetype", body.sourcetype)?;
    }
    if body.contexts.is_some() {
        d.contexts = words("contexts", body.contexts, false)?;
    }
    if body.event_types.is_some() {
        d.event_types = words("event_types", body.event_types, true)?;
    }
    if let Some(e) = body.enabled {
        d.enabled = e;
    }
    let new_site = match (d.kind, body.site) {
        (SiemKind::Splunk, Some(_)) => {
            return Err(ApiError::validation("site", "`site` is for Datadog"))
        }
        (_, Some(s)) => Some(site(Some(s))?),
        (_, None) => None,
    };
    let sealed = if body.url.is_some() || body.token.is_some() || new_site.is_some() {
        let old = SiemSecrets::open(&state, tenant.0, &c.id, &c.secrets)
            .await
            .map_err(key_error)?;
        if let Some(s) = &new_site {
            d.site = s.clone();
        }
        let url = match (body.url, &new_site) {
            (Some(u), _) => u,
            (None, Some(s)) => datadog_url(s),
            (None, None) => old.url,
        };
        let token = match body.token {
            Some(t) => token("token", &t, 8)?,
            None => old.token,
        };
        d.host = checked_url(&state, &url).await?;
        Some(
            SiemSecrets { url, token }
                .seal(&state, tenant.0, &c.id, c.secrets.version + 1)
                .await
                .map_err(key_error)?,
        )
    } else {
        None
    };
    let agg = aggregate::<SiemAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<SiemAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Update {
            definition: d,
            secrets: sealed,
        },
        false,
        siem_error,
    )
    .await?;
    let c = outcome
        .state
        .ok_or_else(|| ApiError::not_found("SIEM connection not found"))?;
    Ok(Reply::data(StatusCode::OK, view(&c)).at(outcome.position, outcome.version))
}

/// Delete a connection: its forwarder stops and its key is destroyed.
#[utoipa::path(delete, path = "/siem/config/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant),
    responses((status = 204, description = "Deleted"), AuthErrors,
        (status = 404, description = "No such connection", body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
) -> Result<StatusCode, ApiError> {
    let tenant = principal.tenant()?;
    let agg = aggregate::<SiemAggregate>(tenant.0, id.to_string())?;
    execute::<SiemAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Delete,
        false,
        siem_error,
    )
    .await?;
    state
        .keys
        .destroy_secret(tenant.0, &secret_name(&id.to_string()))
        .await
        .map_err(key_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which connection a test uses: the one named, else the tenant's oldest of that kind.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiemTestBody {
    pub connection_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PushResult {
    pub connection_id: Uuid,
    pub name: String,
    pub kind: SiemKind,
    pub delivered: bool,
    /// What the SIEM answered; absent when no answer came.
    pub upstream_status: Option<u16>,
    pub detail: String,
}

async fn rows(
    state: &AppState,
    tenant: Uuid,
    kind: Option<SiemKind>,
    id: Option<Uuid>,
) -> Result<Vec<ConnectionRow>, ApiError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {CONNECTION_COLUMNS} FROM siem_connections WHERE tenant_id = $1 AND NOT deleted \
         AND ($2::text IS NULL OR kind = $2) AND ($3::uuid IS NULL OR id = $3) \
         AND ($3::uuid IS NOT NULL OR enabled) ORDER BY created_at"
    ))
    .bind(tenant)
    .bind(kind.map(|k| k.as_str()))
    .bind(id)
    .fetch_all(&state.pool)
    .await?)
}

async fn push_to(state: &AppState, row: &ConnectionRow, events: &[Value]) -> PushResult {
    let kind = SiemKind::parse(&row.kind).unwrap_or(SiemKind::Splunk);
    let (delivered, status, detail) = match row.sink(state).await {
        Ok(sink) => {
            let a = push(state, &sink, events).await;
            (
                a.error().is_none(),
                a.status(),
                a.error().unwrap_or("delivered").to_string(),
            )
        }
        Err(e) => (false, None, e),
    };
    PushResult {
        connection_id: row.id,
        name: row.name.clone(),
        kind,
        delivered,
        upstream_status: status,
        detail,
    }
}

async fn test(
    state: &AppState,
    principal: &Principal,
    kind: SiemKind,
    body: SiemTestBody,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    // A connection saved a moment ago is found.
    MinPosition::caught_up(state, &[IntegrationsProjection::NAME]).await?;
    let id = body.connection_id;
    let found = rows(state, tenant.0, Some(kind), id).await?;
    let row = found
        .first()
        .ok_or_else(|| ApiError::not_found(format!("no {kind} connection to test")))?;
    let event = json!({
        "specversion": "1.0",
        "id": format!("test-{}", Uuid::now_v7()),
        "source": format!("/aegis/tenants/{}/integrations", tenant.0),
        "type": "siem.test",
        "time": Utc::now(),
        "data": { "message": format!("Aegis test event sent by {}", principal.subject) },
    });
    Ok(Reply::data(
        StatusCode::OK,
        push_to(state, row, &[event]).await,
    ))
}

/// Push one test event to the tenant's Splunk connection; answers what HEC said.
#[utoipa::path(post, path = "/siem/test/splunk", tag = "integrations", security(("bearer" = [])),
    params(params::Tenant), request_body(content = Option<SiemTestBody>),
    responses((status = 200, description = "What Splunk answered (a refusal is reported, not raised)", body = Data<PushResult>),
        AuthErrors, BodyErrors, (status = 404, description = "No Splunk connection", body = ErrorBody)))]
async fn test_splunk(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<SiemTestBody>,
) -> Result<Reply, ApiError> {
    test(&state, &principal, SiemKind::Splunk, body).await
}

/// Push one test event to the tenant's Datadog connection; answers what Datadog said.
#[utoipa::path(post, path = "/siem/test/datadog", tag = "integrations", security(("bearer" = [])),
    params(params::Tenant), request_body(content = Option<SiemTestBody>),
    responses((status = 200, description = "What Datadog answered (a refusal is reported, not raised)", body = Data<PushResult>),
        AuthErrors, BodyErrors, (status = 404, description = "No Datadog connection", body = ErrorBody)))]
async fn test_datadog(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<SiemTestBody>,
) -> Result<Reply, ApiError> {
    test(&state, &principal, SiemKind::Datadog, body).await
}

/// Events from another service, pushed at once to every enabled connection of the tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushBody {
    /// 1 to 100 JSON objects; each should carry an `id` the SIEM can dedupe on.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
}

/// Push events to the tenant's SIEMs now (internal services only, `X-Internal-Secret`).
#[utoipa::path(post, path = "/siem/push", tag = "internal", security(("internal_secret" = [])),
    params(params::Tenant), request_body = PushBody,
    responses((status = 200, description = "Each connection's outcome", body = Data<Vec<PushResult>>),
        AuthErrors, BodyErrors))]
async fn push_now(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<PushBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    if body.events.is_empty() || body.events.len() > 100 {
        return Err(ApiError::validation("events", "push 1 to 100 events"));
    }
    if body.events.iter().any(|e| !e.is_object()) {
        return Err(ApiError::validation(
            "events",
            "every event is a JSON object",
        ));
    }
    MinPosition::caught_up(&state, &[IntegrationsProjection::NAME]).await?;
    let mut out = Vec::new();
    for row in rows(&state, tenant.0, None, None).await? {
        out.push(push_to(&state, &row, &body.events).await);
    }
    Ok(Reply::data(StatusCode::OK, out))
}
