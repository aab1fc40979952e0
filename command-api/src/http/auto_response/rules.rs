//! Auto-response rules (seed 000): create, list, read, update (a new version each time), read
//! any version, set the mode, delete. The rule language is checked on write and every refusal
//! names the path of the error (`match.any[1].severity.gt`, `actions[0].target`).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{max_chars, CommandHeaders, Json, MinPosition, Query, UuidPath};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::paged::page;
use crate::http::paged::TenantQuery;
use crate::http::reply::{Data, Paged, Reply};
use crate::http::{aggregate, current, ensure_tenant, execute};
use crate::state::AppState;
use aegis_auto_response::actions::Action;
use aegis_auto_response::matcher::{DefinitionError, Match};
use aegis_auto_response::rules::{Brake, Command, Definition, Mode, RuleVersion, Throttle};
use aegis_auto_response::{Rule, RuleAggregate, RuleError};
use aegis_projectors::auto_response::AutoResponseProjection;
use aegis_projectors::Projection;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(detail, update, delete))
        .routes(routes!(versions))
        .routes(routes!(set_mode))
}

fn rule_error(e: RuleError) -> ApiError {
    match e {
        RuleError::NotFound => ApiError::not_found("rule not found"),
        RuleError::AlreadyExists => ApiError::conflict("the rule already exists"),
    }
}

fn definition_error(e: DefinitionError) -> ApiError {
    ApiError::validation(&e.path, e.to_string())
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThrottleBody {
    /// Runs allowed per window; 0 turns the throttle off.
    pub max_runs: u32,
    /// 1 to 86400 seconds.
    pub window_secs: u32,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrakeBody {
    /// Distinct targets allowed per window; 0 turns the brake off.
    pub max_targets: u32,
    /// 1 to 86400 seconds.
    pub window_secs: u32,
}

/// A rule definition (seed 000's example is a valid one).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    /// 1 to 100 characters.
    pub name: String,
    pub description: Option<String>,
    /// The match language: field equality, `in`, numeric comparison, `glob`, `exists`,
    /// nested with `all` / `any` / `not`.
    #[serde(rename = "match")]
    #[schema(value_type = Object)]
    pub matcher: Value,
    /// `[{"type": "quarantine_agent", "target": "{event.agent_id}"}, ...]`
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
    /// Default `simulate`: a new rule proves itself before it acts.
    pub mode: Option<Mode>,
    pub approval_required: Option<bool>,
    pub throttle: Option<ThrottleBody>,
    /// The blast-radius brake; default 10 distinct targets per 300 s. Tripping it switches
    /// the rule to `simulate` and opens an incident.
    pub blast_radius: Option<BrakeBody>,
}

impl RuleBody {
    pub(crate) fn definition(&self) -> Result<Definition, ApiError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "name",
                "name must be 1 to 100 printable characters",
            ));
        }
        let description = self.description.clone().unwrap_or_default();
        max_chars("description", Some(&description), 1000)?;
        let throttle = match self.throttle {
            Some(t) if t.max_runs > 0 && !(1..=86_400).contains(&t.window_secs) => {
                return Err(ApiError::validation(
                    "throttle.window_secs",
                    "throttle.window_secs must be between 1 and 86400",
                ))
            }
            Some(t) => Throttle {
                max_runs: t.max_runs,
                window_secs: t.window_secs,
            },
            None => Throttle::default(),
        };
        let brake = match self.blast_radius {
            Some(b) if b.max_targets > 0 && !(1..=86_400).contains(&b.window_secs) => {
                return Err(ApiError::validation(
                    "blast_radius.window_secs",
                    "blast_radius.window_secs must be between 1 and 86400",
                ))
            }
            Some(b) => Brake {
                max_targets: b.max_targets,
                window_secs: b.window_secs,
            },
            None => Brake::default(),
        };
        Ok(Definition {
            name: name.to_string(),
            description,
            matcher: Match::parse(&self.matcher).map_err(definition_error)?,
            actions: Action::parse_all(&self.actions).map_err(definition_error)?,
            approval_required: self.approval_required.unwrap_or(false),
            throttle,
            brake,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub version: u32,
    #[serde(rename = "match")]
    #[schema(value_type = Object)]
    pub matcher: Value,
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
    pub mode: Mode,
    /// Why the mode was last set (a tripped brake says so here).
    pub mode_reason: String,
    pub approval_required: bool,
    pub throttle: ThrottleBody,
    pub blast_radius: BrakeBody,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn version_view(r: &Rule, v: &RuleVersion) -> RuleView {
    let d = &v.definition;
    RuleView {
        id: r.id.clone(),
        name: d.name.clone(),
        description: d.description.clone(),
        version: v.version,
        matcher: d.matcher.to_json(),
        actions: Value::Array(d.actions.iter().map(Action::to_json).collect()),
        mode: r.mode,
        mode_reason: r.mode_reason.clone(),
        approval_required: d.approval_required,
        throttle: ThrottleBody {
            max_runs: d.throttle.max_runs,
            window_secs: d.throttle.window_secs,
        },
        blast_radius: BrakeBody {
            max_targets: d.brake.max_targets,
            window_secs: d.brake.window_secs,
        },
        created_by: v.created_by.clone(),
        created_at: v.created_at,
        updated_at: r.updated_at,
    }
}

fn view(r: &Rule) -> Result<RuleView, ApiError> {
    r.current()
        .map(|v| version_view(r, v))
        .ok_or_else(|| ApiError::internal(&RuleError::NotFound))
}

/// The most rules (of any mode, deleted ones aside) a tenant holds.
pub const MAX_RULES: i64 = 100;

/// Create a rule (version 1). New rules default to `simulate`.
#[utoipa::path(post, path = "/auto-response/rules", tag = "auto-response", security(("bearer" = [])),
    params(params::Tenant), request_body = RuleBody,
    responses((status = 201, description = "Created", body = Data<RuleView>, headers(("ETag" = String))),
        AuthErrors, BodyErrors,
        (status = 409, description = "The tenant holds the most rules it may", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<RuleBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let definition = body.definition()?;
    ensure_tenant(&state, tenant).await?;
    // Every event of the tenant is matched against every rule: the count bounds the cost.
    MinPosition::caught_up(&state, &[AutoResponseProjection::NAME]).await?;
    TenantQuery::new("auto_response_rules", "tenant_id", tenant.0)
        .when(true, "NOT deleted")
        .at_most(&state.pool, MAX_RULES, "rules")
        .await?;
    let id = Uuid::now_v7();
    let agg = aggregate::<RuleAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<RuleAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Create {
            definition,
            mode: body.mode.unwrap_or(Mode::Simulate),
        },
        true,
        rule_error,
    )
    .await?;
    let rule = outcome
        .state
        .ok_or_else(|| ApiError::internal(&RuleError::NotFound))?;
    Ok(Reply::data(StatusCode::CREATED, view(&rule)?).at(outcome.position, outcome.version))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RuleQuery {
    pub mode: Option<Mode>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct RuleRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub version: i32,
    #[serde(rename = "match")]
    #[sqlx(rename = "match")]
    #[schema(value_type = Object)]
    pub matcher: Value,
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
    pub mode: String,
    pub approval_required: bool,
    pub throttle_max_runs: i32,
    pub throttle_window_secs: i32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The tenant's rules (the version in force of each), newest first.
#[utoipa::path(get, path = "/auto-response/rules", tag = "auto-response", security(("bearer" = [])),
    params(RuleQuery, params::Tenant, params::MinPosition),
    responses((status = 200, description = "A page of rules", body = Paged<RuleRow>), AuthErrors,
        (status = 422, description = "Invalid filter or paging", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<RuleQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = page(q.limit, q.offset)?;
    min.wait(&state, &[AutoResponseProjection::NAME]).await?;
    let mode = q.mode.map(|m| m.as_str().to_string());
    let (rows, total): (Vec<RuleRow>, i64) =
        TenantQuery::new("auto_response_rules", "tenant_id", tenant.0)
            .when(true, "NOT deleted")
            .eq_text("mode", mode.as_deref())
            .page(
                &state.pool,
                "id, name, description, version, match, actions, mode, approval_required, throttle_max_runs, throttle_window_secs, created_by, created_at, updated_at",
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

async fn live(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<(Rule, u64, u64), ApiError> {
    let tenant = principal.tenant()?;
    let (rule, position, version) = current::<RuleAggregate>(state, tenant, id.to_string()).await?;
    match rule {
        Some(r) if !r.deleted => Ok((r, position, version)),
        _ => Err(ApiError::not_found("rule not found")),
    }
}

/// One rule, its version in force (from the log).
#[utoipa::path(get, path = "/auto-response/rules/{id}", tag = "auto-response", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant),
    responses((status = 200, description = "The rule", body = Data<RuleView>, headers(("ETag" = String))),
        AuthErrors, (status = 404, description = "No such rule", body = ErrorBody)))]
async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    UuidPath(id): UuidPath,
) -> Result<Reply, ApiError> {
    let (rule, position, version) = live(&state, &principal, id).await?;
    Ok(Reply::data(StatusCode::OK, view(&rule)?).at(position, version))
}

/// Replace the definition: a new version; the old ones stay readable. `If-Match` guards
/// against overwriting a change you have not seen (409).
#[utoipa::path(put, path = "/auto-response/rules/{id}", tag = "auto-response", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant, params::IfMatch), request_body = RuleBody,
    responses((status = 200, description = "The new version", body = Data<RuleView>, headers(("ETag" = String))),
        AuthErrors, BodyErrors,
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 409, description = "Stale If-Match", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
    Json(body): Json<RuleBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let definition = body.definition()?;
    if body.mode.is_some() {
        return Err(ApiError::validation(
            "mode",
            "change the mode with PUT /auto-response/rules/{id}/mode, so it is its own record",
        ));
    }
    let agg = aggregate::<RuleAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<RuleAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Update(definition),
        false,
        rule_error,
    )
    .await?;
    let rule = outcome
        .state
        .ok_or_else(|| ApiError::not_found("rule not found"))?;
    Ok(Reply::data(StatusCode::OK, view(&rule)?).at(outcome.position, outcome.version))
}

/// Delete a rule: it stops matching; its history stays in the log. Deleting again answers
/// the same.
#[utoipa::path(delete, path = "/auto-response/rules/{id}", tag = "auto-response", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant),
    responses((status = 204, description = "Deleted"), AuthErrors,
        (status = 404, description = "No such rule", body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
) -> Result<StatusCode, ApiError> {
    let tenant = principal.tenant()?;
    let agg = aggregate::<RuleAggregate>(tenant.0, id.to_string())?;
    execute::<RuleAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Delete,
        false,
        rule_error,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every version of a rule, oldest first: what ran when is always answerable.
#[utoipa::path(get, path = "/auto-response/rules/{id}/versions", tag = "auto-response", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant),
    responses((status = 200, description = "The versions", body = Data<Vec<RuleView>>),
        AuthErrors, (status = 404, description = "No such rule", body = ErrorBody)))]
async fn versions(
    State(state): State<AppState>,
    principal: Principal,
    UuidPath(id): UuidPath,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (rule, _, _) = current::<RuleAggregate>(&state, tenant, id.to_string()).await?;
    let rule = rule.ok_or_else(|| ApiError::not_found("rule not found"))?;
    let all: Vec<RuleView> = rule
        .versions
        .iter()
        .map(|v| version_view(&rule, v))
        .collect();
    Ok(Reply::data(StatusCode::OK, all))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModeBody {
    pub mode: Mode,
    /// Why, for the audit log; up to 500 characters.
    pub reason: Option<String>,
}

/// Set a rule's mode: `active` acts, `simulate` records what it would do, `disabled` rests.
#[utoipa::path(put, path = "/auto-response/rules/{id}/mode", tag = "auto-response", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant, params::IfMatch), request_body = ModeBody,
    responses((status = 200, description = "The rule", body = Data<RuleView>),
        AuthErrors, BodyErrors,
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 409, description = "Stale If-Match", body = ErrorBody)))]
async fn set_mode(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
    Json(body): Json<ModeBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let reason = body.reason.unwrap_or_default();
    max_chars("reason", Some(&reason), 500)?;
    let agg = aggregate::<RuleAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<RuleAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::SetMode {
            mode: body.mode,
            reason,
        },
        false,
        rule_error,
    )
    .await?;
    let rule = outcome
        .state
        .ok_or_else(|| ApiError::not_found("rule not found"))?;
    Ok(Reply::data(StatusCode::OK, view(&rule)?).at(outcome.position, outcome.version))
}
