//! Discovered secrets: an agent reports what its cluster holds (`POST .../secrets/bulk`), and
//! operators search it (`GET /api/v1/secrets`). Metadata only: a body that carries a value is
//! refused, and the checksum an agent sends is never shown again.

use super::errors::broker_error;
use super::{json_object, own_agent};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json, MinPosition};
use crate::http::openapi::{AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::http::{command_context, ensure_tenant};
use crate::state::AppState;
use aegis_broker_services::discovery::{self, Item, Sync};
use aegis_broker_services::jobs::PROJECTION;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(bulk))
        .routes(routes!(list))
        .routes(routes!(get_one))
}

/// The most secrets one sync may list.
const MAX_ITEMS: usize = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    /// The cluster the agent runs in (1 to 253 characters).
    pub cluster_name: String,
    /// Where the secrets live, e.g. `kubernetes`, `vault`, `aws-secrets-manager`.
    pub provider_type: String,
    #[serde(default)]
    pub provider_config: Option<Value>,
    /// Up to 1,000 secrets; metadata only.
    pub items: Vec<BulkItem>,
    /// The items are everything the provider holds: what is not listed is marked gone.
    #[serde(default)]
    pub full_sync: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkItem {
    pub secret_ref: String,
    #[serde(default)]
    pub labels: Option<Value>,
    #[serde(default)]
    pub version: Option<String>,
    /// The agent's checksum of the value: kept only as a keyed MAC to tell a change, never
    /// shown.
    #[serde(default)]
    pub checksum: Option<String>,
    #[serde(default)]
    pub created_at_source: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at_source: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkDone {
    pub upserted_ids: Vec<Uuid>,
    pub count: usize,
    /// How many were new or different from what was known.
    pub changed: usize,
    /// How many a full sync marked gone.
    pub gone: usize,
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).with("field", field)
}

/// Report what the agent found in its cluster (200). Re-posting the same set changes
/// nothing; a secret seen different is a new observation; with `full_sync`, one no longer
/// listed is marked gone.
#[utoipa::path(post, path = "/api/v1/agents/{id}/secrets/bulk", tag = "secrets", security(("agent_secret" = [])),
    params(("id" = String, Path, description = "The agent's id (its own)")),
    request_body = BulkBody,
    responses(
        (status = 200, description = "Recorded", body = BulkDone),
        (status = 400, description = "A sync that cannot be recorded", body = ErrorBody),
        AuthErrors,
        BodyErrors,
    ))]
async fn bulk(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
    Json(body): Json<BulkBody>,
) -> Result<Response, ApiError> {
    let agent = own_agent(&principal, &raw)?;
    let tenant = principal.tenant()?;
    let cluster = body.cluster_name.trim().to_string();
    if cluster.is_empty() || cluster.len() > 253 {
        return Err(bad("cluster_name", "cluster_name is 1 to 253 characters"));
    }
    let provider = body.provider_type.trim().to_string();
    if provider.is_empty()
        || provider.len() > 64
        || !provider
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))
    {
        return Err(bad(
            "provider_type",
            "provider_type is 1 to 64 of a-z, 0-9, `_`, `-`",
        ));
    }
    if body.items.len() > MAX_ITEMS {
        return Err(bad(
            "items",
            format!("a sync lists at most {MAX_ITEMS} secrets"),
        ));
    }
    let provider_config = json_object("provider_config", body.provider_config)?.to_string();
    let mut items = Vec::with_capacity(body.items.len());
    let mut refs = std::collections::HashSet::new();
    for (i, it) in body.items.into_iter().enumerate() {
        let field = |f: &str| format!("items[{i}].{f}");
        if it.secret_ref.is_empty() || it.secret_ref.len() > 512 {
            return Err(bad(
                &field("secret_ref"),
                "secret_ref is 1 to 512 characters",
            ));
        }
        if !refs.insert(it.secret_ref.clone()) {
            return Err(bad(
                &field("secret_ref"),
                format!("`{}` is listed twice", it.secret_ref),
            ));
        }
        let labels = json_object(&field("labels"), it.labels)?.to_string();
        if labels.len() > 8 * 1024 {
            return Err(bad(&field("labels"), "labels weigh at most 8 KiB"));
        }
        items.push(Item {
            secret_ref: it.secret_ref,
            labels,
            version: it.version.unwrap_or_default().chars().take(200).collect(),
            checksum: it.checksum,
            created_at_source: it.created_at_source.map_or(0, |t| t.timestamp_millis()),
            updated_at_source: it.updated_at_source.map_or(0, |t| t.timestamp_millis()),
        });
    }
    ensure_tenant(&state, tenant).await?;
    let sync = Sync {
        cluster_name: cluster,
        provider_type: provider,
        provider_config,
        items,
        full: body.full_sync,
    };
    let ctx = || command_context(&principal, &headers, None);
    let done = discovery::sync(&state, ctx, tenant.0, agent, sync)
        .await
        .map_err(broker_error)?;
    Ok(Reply::body(
        StatusCode::OK,
        BulkDone {
            count: done.ids.len(),
            upserted_ids: done.ids,
            changed: done.changed,
            gone: done.gone,
        },
    )
    .into_response())
}

/// A discovered secret: metadata, never a value or a checksum.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct SecretView {
    pub id: Uuid,
    pub cluster_name: String,
    pub provider_type: String,
    pub secret_ref: String,
    pub provider_config: Value,
    pub labels: Value,
    pub version: String,
    pub created_at_source: Option<DateTime<Utc>>,
    pub updated_at_source: Option<DateTime<Utc>>,
    /// `present`, or `gone` once a full sync no longer listed it.
    pub status: String,
    /// How many different sightings were recorded.
    pub observations: i32,
    pub first_seen_at: DateTime<Utc>,
    /// When a sync last listed it.
    pub last_seen_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretList {
    pub items: Vec<SecretView>,
    pub total: i64,
}

const COLUMNS: &str = "s.id, s.cluster_name, s.provider_type, s.secret_ref, s.provider_config, s.labels, \
    s.version, s.created_at_source, s.updated_at_source, s.status, s.observations, s.first_seen_at, \
    p.last_seen_at";
const FROM: &str = "broker_secrets s LEFT JOIN broker_secret_presence p \
    ON p.tenant_id = s.tenant_id AND p.id = s.id";

/// The filters of `GET /api/v1/secrets`, from a query that may repeat `label`.
#[derive(Debug, Default)]
struct Filter {
    cluster_name: Option<String>,
    provider: Option<String>,
    ref_prefix: Option<String>,
    status: Option<String>,
    labels: serde_json::Map<String, Value>,
    limit: i64,
    offset: i64,
}

fn filter(raw: Option<&str>) -> Result<Filter, ApiError> {
    let mut f = Filter {
        limit: 100,
        ..Filter::default()
    };
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            "cluster_name" => f.cluster_name = Some(v),
            "provider" => f.provider = Some(v),
            "ref_prefix" => f.ref_prefix = Some(v),
            "status" if v == "present" || v == "gone" => f.status = Some(v),
            "status" => return Err(bad("status", "status is present or gone")),
            "label" => {
                let Some((key, value)) = v.split_once(':').filter(|(k, _)| !k.is_empty()) else {
                    return Err(bad("label", format!("label `{v}` is not key:value")));
                };
                f.labels
                    .insert(key.to_string(), Value::String(value.to_string()));
            }
            "limit" => {
                f.limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| bad("limit", "limit is 1 to 500"))?
            }
            "offset" => {
                f.offset = v
                    .parse()
                    .ok()
                    .filter(|n: &i64| *n >= 0)
                    .ok_or_else(|| bad("offset", "offset is 0 or more"))?
            }
            "tenant_id" => {}
            other => return Err(bad(other, format!("unknown filter `{other}`"))),
        }
    }
    Ok(f)
}

/// Search what agents discovered: `cluster_name`, `provider`, `ref_prefix`, `status`
/// (`present` | `gone`) and repeated `label=key:value` (all must hold), newest first.
#[utoipa::path(get, path = "/api/v1/secrets", tag = "secrets", security(("bearer" = [])),
    params(
        ("cluster_name" = Option<String>, Query), ("provider" = Option<String>, Query),
        ("ref_prefix" = Option<String>, Query), ("status" = Option<String>, Query),
        ("label" = Option<Vec<String>>, Query, description = "key:value, repeatable"),
        ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, description = "A page of discovered secrets", body = SecretList), AuthErrors))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    RawQuery(raw): RawQuery,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let f = filter(raw.as_deref())?;
    min.wait(&state, &[PROJECTION]).await?;
    let prefix = f.ref_prefix.map(|p| {
        format!(
            "{}%",
            p.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let wheres = "s.tenant_id = $1 AND ($2::text IS NULL OR s.cluster_name = $2) \
        AND ($3::text IS NULL OR s.provider_type = $3) AND ($4::text IS NULL OR s.secret_ref LIKE $4) \
        AND ($5::text IS NULL OR s.status = $5) AND s.labels @> $6";
    let labels = Value::Object(f.labels);
    let items: Vec<SecretView> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE {wheres} ORDER BY s.first_seen_at DESC, s.id LIMIT $7 OFFSET $8"
    ))
    .bind(tenant.0)
    .bind(&f.cluster_name)
    .bind(&f.provider)
    .bind(&prefix)
    .bind(&f.status)
    .bind(&labels)
    .bind(f.limit)
    .bind(f.offset)
    .fetch_all(&state.pool)
    .await?;
    let (total,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {FROM} WHERE {wheres}"))
        .bind(tenant.0)
        .bind(&f.cluster_name)
        .bind(&f.provider)
        .bind(&prefix)
        .bind(&f.status)
        .bind(&labels)
        .fetch_one(&state.pool)
        .await?;
    Ok(Reply::body(StatusCode::OK, SecretList { items, total }))
}

/// One discovered secret.
#[utoipa::path(get, path = "/api/v1/secrets/{id}", tag = "secrets", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The secret", body = SecretView),
        (status = 404, description = "Not a secret of this tenant", body = ErrorBody), AuthErrors))]
async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Path(raw): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let id = Uuid::parse_str(&raw).map_err(|_| ApiError::not_found("secret not found"))?;
    min.wait(&state, &[PROJECTION]).await?;
    let found: Option<SecretView> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE s.tenant_id = $1 AND s.id = $2"
    ))
    .bind(tenant.0)
    .bind(id)
    .fetch_optional(&state.pool)
    .await?;
    let found = found.ok_or_else(|| ApiError::not_found("secret not found"))?;
    Ok(Reply::body(StatusCode::OK, found))
}
