//! Roles, role assignments and the permission catalog (seed 004). Built-in roles are listed
//! with the tenant's custom ones and cannot be changed.

use super::users::{is_active_admin, keep_an_admin, user_error, ADMIN_CHANGES};
use crate::auth::{grants, Principal};
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json, MinPosition, Query, UuidPath};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::paged::page;
use crate::http::paged::TenantQuery;
use crate::http::reply::{Data, Paged, Reply};
use crate::http::{aggregate, current, execute};
use crate::state::AppState;
use aegis_identity::permissions::{BuiltinRole, Permission, Permissions, ALIASES};
use aegis_identity::roles::{
    Command, NameCommand, Role, RoleAggregate, RoleError, RoleNameAggregate,
};
use aegis_identity::users::{Command as UserCommand, UserAggregate};
use aegis_identity::TenantId;
use aegis_projectors::identity::IdentityProjection;
use aegis_projectors::Projection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_role, list_roles))
        .routes(routes!(role_detail, delete_role))
        .routes(routes!(set_permissions))
        .routes(routes!(assign, list_assignments))
        .routes(routes!(unassign))
        .routes(routes!(user_roles))
        .routes(routes!(catalog))
}

fn role_error(e: RoleError) -> ApiError {
    match e {
        RoleError::NotFound => ApiError::not_found("role not found"),
        RoleError::AlreadyExists => ApiError::conflict("the role already exists"),
        RoleError::NameTaken(n) => {
            ApiError::conflict(format!("a role named `{n}` already exists")).with("field", "name")
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    /// `ADMIN`, `SECURITY`, `AUDITOR`, or a custom role's UUID.
    pub id: String,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub permissions: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl RoleView {
    fn builtin(r: BuiltinRole) -> Self {
        Self {
            id: r.id().into(),
            name: r.id().into(),
            description: r.description().into(),
            builtin: true,
            permissions: r.permissions().names(),
            created_at: None,
            updated_at: None,
        }
    }

    pub(crate) fn custom(r: &Role) -> Self {
        Self {
            id: r.id.to_string(),
            name: r.name.clone(),
            description: r.description.clone(),
            builtin: false,
            permissions: r.permissions.names(),
            created_at: Some(r.created_at),
            updated_at: Some(r.updated_at),
        }
    }
}

fn permissions(names: &[String]) -> Result<Permissions, ApiError> {
    Permissions::parse_grantable(names).map_err(|m| {
        ApiError::validation("permissions", m).with(
            "allowed",
            Permissions::grantable()
                .names()
                .into_iter()
                .map(serde_json::Value::from)
                .collect::<Vec<_>>(),
        )
    })
}

/// A role of this tenant by id: built-in, or a live custom role.
pub async fn find_role(
    state: &AppState,
    tenant: TenantId,
    id: &str,
) -> Result<(RoleView, u64, u64), ApiError> {
    if let Some(b) = BuiltinRole::parse(id) {
        return Ok((RoleView::builtin(b), 0, 0));
    }
    let uuid = Uuid::parse_str(id).map_err(|_| ApiError::not_found("role not found"))?;
    let (role, position, version) =
        current::<RoleAggregate>(state, tenant, uuid.to_string()).await?;
    role.filter(|r| !r.deleted)
        .map(|r| (RoleView::custom(&r), position, version))
        .ok_or_else(|| ApiError::not_found("role not found"))
}

fn builtin_refusal(id: &str) -> Result<(), ApiError> {
    match BuiltinRole::parse(id) {
        Some(_) => Err(ApiError::conflict(
            "built-in roles cannot be changed or deleted",
        )),
        None => Ok(()),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoleBody {
    /// 1 to 100 characters, unique in the tenant regardless of case.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// Permission names from `GET /api/v1/permissions`.
    pub permissions: Vec<String>,
}

/// Create a custom role.
#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", security(("bearer" = [])),
    params(params::Tenant), request_body = CreateRoleBody,
    responses(
        (status = 201, description = "Created", body = Data<RoleView>, headers(("Aegis-Position" = u64), ("ETag" = String))),
        AuthErrors,
        (status = 409, description = "The name is taken", body = ErrorBody),
        BodyErrors,
    ))]
async fn create_role(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<CreateRoleBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let name = super::users::display_name(Some(&body.name))?.unwrap_or_default();
    let raw = body.description.unwrap_or_default();
    let description = raw.trim().to_string();
    if raw.chars().count() > 1000 {
        return Err(ApiError::validation(
            "description",
            "description must be at most 1000 characters",
        ));
    }
    let perms = permissions(&body.permissions)?;
    grants::may_grant(&principal, perms)?;
    if BuiltinRole::ALL
        .iter()
        .any(|b| b.id().eq_ignore_ascii_case(&name))
    {
        return Err(role_error(RoleError::NameTaken(name)));
    }
    crate::http::ensure_tenant(&state, tenant).await?;
    let id = Uuid::now_v7();
    let claim = aggregate::<RoleNameAggregate>(tenant.0, name.to_lowercase())?;
    let (holder, _, _) = current::<RoleNameAggregate>(&state, tenant, name.to_lowercase()).await?;
    let holder_alive = match holder {
        Some((role, _)) => current::<RoleAggregate>(&state, tenant, role.to_string())
            .await?
            .0
            .is_some_and(|r| !r.deleted),
        None => false,
    };
    execute::<RoleNameAggregate>(
        &state,
        &principal,
        &headers,
        &claim,
        &NameCommand::Claim {
            role: id,
            name: name.clone(),
            holder_alive,
            now: Utc::now(),
        },
        false,
        role_error,
    )
    .await?;
    let agg = aggregate::<RoleAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<RoleAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Create {
            name,
            description,
            permissions: perms,
        },
        true,
        role_error,
    )
    .await?;
    let role = outcome
        .state
        .ok_or_else(|| ApiError::internal(&RoleError::NotFound))?;
    Ok(Reply::data(StatusCode::CREATED, RoleView::custom(&role))
        .at(outcome.position, outcome.version))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct RoleRow {
    id: Uuid,
    name: String,
    description: String,
    permissions: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Built-in roles first, then custom roles by name.
#[utoipa::path(get, path = "/api/v1/roles", tag = "roles", security(("bearer" = [])),
    params(PageQuery, params::Tenant, params::MinPosition),
    responses((status = 200, description = "Roles", body = Paged<RoleView>), AuthErrors,
        (status = 422, description = "Invalid paging or filter values", body = ErrorBody)))]
async fn list_roles(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<PageQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = page(q.limit, q.offset)?;
    min.wait(&state, &[IdentityProjection::NAME]).await?;
    let rows: Vec<RoleRow> = sqlx::query_as(
        "SELECT id, name, description, permissions, created_at, updated_at FROM roles \
         WHERE tenant_id = $1 ORDER BY lower(name), id",
    )
    .bind(tenant.0)
    .fetch_all(&state.pool)
    .await?;
    let all: Vec<RoleView> = BuiltinRole::ALL
        .iter()
        .map(|b| RoleView::builtin(*b))
        .chain(rows.into_iter().map(|r| RoleView {
            id: r.id.to_string(),
            name: r.name,
            description: r.description,
            builtin: false,
            permissions: r.permissions,
            created_at: Some(r.created_at),
            updated_at: Some(r.updated_at),
        }))
        .collect();
    let total = all.len() as i64;
    let data = all
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    Ok(Reply::body(
        StatusCode::OK,
        Paged {
            data,
            total,
            limit,
            offset,
        },
    ))
}

/// One role.
#[utoipa::path(get, path = "/api/v1/roles/{id}", tag = "roles", security(("bearer" = [])),
    params(("id" = String, Path, description = "Built-in role name or custom role UUID"), params::Tenant),
    responses(
        (status = 200, description = "The role", body = Data<RoleView>),
        AuthErrors,
        (status = 404, description = "No such role in this tenant", body = ErrorBody),
    ))]
async fn role_detail(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (view, position, version) = find_role(&state, tenant, &id).await?;
    let reply = Reply::data(StatusCode::OK, view);
    Ok(if version > 0 {
        reply.at(position, version)
    } else {
        reply
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPermissionsBody {
    /// The role's whole permission set after the change.
    pub permissions: Vec<String>,
}

/// Replace a custom role's permissions. Holders of the role gain or lose them at once.
#[utoipa::path(put, path = "/api/v1/roles/{id}/permissions", tag = "roles", security(("bearer" = [])),
    params(("id" = String, Path), params::Tenant, params::IfMatch), request_body = SetPermissionsBody,
    responses(
        (status = 200, description = "Updated", body = Data<RoleView>, headers(("Aegis-Position" = u64), ("ETag" = String))),
        AuthErrors,
        (status = 404, description = "No such role in this tenant", body = ErrorBody),
        (status = 409, description = "A built-in role, or a stale If-Match", body = ErrorBody),
        BodyErrors,
    ))]
async fn set_permissions(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(id): Path<String>,
    Json(body): Json<SetPermissionsBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    builtin_refusal(&id)?;
    let perms = permissions(&body.permissions)?;
    grants::may_grant(&principal, perms)?;
    let uuid = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("role not found"))?;
    // Its holders are acted on too: a role that grants more than the caller holds stays as it is.
    grants::may_act_on(
        &principal,
        grants::role_permissions(&state, tenant, &id).await?,
    )?;
    let agg = aggregate::<RoleAggregate>(tenant.0, uuid.to_string())?;
    let outcome = execute::<RoleAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::SetPermissions(perms),
        false,
        role_error,
    )
    .await?;
    let role = outcome
        .state
        .ok_or_else(|| ApiError::not_found("role not found"))?;
    Ok(Reply::data(StatusCode::OK, RoleView::custom(&role)).at(outcome.position, outcome.version))
}

/// Delete a custom role; its name becomes free and its assignments grant nothing.
#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "roles", security(("bearer" = [])),
    params(("id" = String, Path), params::Tenant),
    responses(
        (status = 204, description = "Deleted"),
        AuthErrors,
        (status = 404, description = "No such role in this tenant", body = ErrorBody),
        (status = 409, description = "A built-in role", body = ErrorBody),
    ))]
async fn delete_role(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = principal.tenant()?;
    builtin_refusal(&id)?;
    let uuid = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("role not found"))?;
    grants::may_act_on(
        &principal,
        grants::role_permissions(&state, tenant, &id).await?,
    )?;
    let agg = aggregate::<RoleAggregate>(tenant.0, uuid.to_string())?;
    let outcome = execute::<RoleAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Delete,
        false,
        role_error,
    )
    .await?;
    if let Some(role) = outcome.state {
        let claim = aggregate::<RoleNameAggregate>(tenant.0, role.name.to_lowercase())?;
        execute::<RoleNameAggregate>(
            &state,
            &principal,
            &headers,
            &claim,
            &NameCommand::Release { role: uuid },
            false,
            role_error,
        )
        .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    pub user_id: Uuid,
    /// Built-in role name or custom role UUID.
    pub role_id: String,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct AssignmentView {
    pub id: Uuid,
    pub user_id: Uuid,
    pub role_id: String,
    pub created_at: DateTime<Utc>,
}

/// Assign a role to a user. The user's tokens carry the new permissions on their next request.
#[utoipa::path(post, path = "/api/v1/user-roles", tag = "roles", security(("bearer" = [])),
    params(params::Tenant), request_body = AssignBody,
    responses(
        (status = 201, description = "Assigned", body = Data<AssignmentView>, headers(("Aegis-Position" = u64))),
        AuthErrors,
        (status = 404, description = "No such user or role in this tenant", body = ErrorBody),
        (status = 409, description = "The user already has the role", body = ErrorBody),
        BodyErrors,
    ))]
async fn assign(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<AssignBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (role, _, _) = find_role(&state, tenant, body.role_id.trim()).await?;
    grants::may_grant(
        &principal,
        grants::role_permissions(&state, tenant, &role.id).await?,
    )?;
    let (target, _, _) = current::<UserAggregate>(&state, tenant, body.user_id.to_string()).await?;
    let target = target.ok_or_else(|| ApiError::not_found("user not found"))?;
    grants::may_act_on(
        &principal,
        grants::user_permissions(&state, tenant, &target).await?,
    )?;
    let assignment = Uuid::now_v7();
    let agg = aggregate::<UserAggregate>(tenant.0, body.user_id.to_string())?;
    let outcome = execute::<UserAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &UserCommand::AssignRole {
            assignment,
            role_id: role.id.clone(),
        },
        false,
        user_error,
    )
    .await?;
    let created_at = outcome
        .state
        .as_ref()
        .and_then(|u| u.roles.iter().find(|r| r.id == assignment))
        .map_or_else(Utc::now, |r| r.assigned_at);
    Ok(Reply::data(
        StatusCode::CREATED,
        AssignmentView {
            id: assignment,
            user_id: body.user_id,
            role_id: role.id,
            created_at,
        },
    )
    .at(outcome.position, outcome.version))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AssignmentQuery {
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    pub user_id: Option<Uuid>,
    #[param(max_length = 100)]
    pub role_id: Option<String>,
}

/// Role assignments, filterable by user and role.
#[utoipa::path(get, path = "/api/v1/user-roles", tag = "roles", security(("bearer" = [])),
    params(AssignmentQuery, params::Tenant, params::MinPosition),
    responses((status = 200, description = "Assignments", body = Paged<AssignmentView>), AuthErrors,
        (status = 422, description = "Invalid paging or filter values", body = ErrorBody)))]
async fn list_assignments(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<AssignmentQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = page(q.limit, q.offset)?;
    crate::http::extract::max_chars("role_id", q.role_id.as_deref(), 100)?;
    min.wait(&state, &[IdentityProjection::NAME]).await?;
    let (rows, total): (Vec<AssignmentView>, i64) =
        TenantQuery::new("user_roles", "tenant_id", tenant.0)
            .eq_uuid("user_id", q.user_id)
            .eq_text("role_id", q.role_id.as_deref())
            .page(
                &state.pool,
                "id, user_id, role_id, created_at",
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

/// Remove a role assignment.
#[utoipa::path(delete, path = "/api/v1/user-roles/{id}", tag = "roles", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant, params::MinPosition),
    responses(
        (status = 204, description = "Removed"),
        AuthErrors,
        (status = 404, description = "No such assignment in this tenant", body = ErrorBody),
    ))]
async fn unassign(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    min: MinPosition,
    UuidPath(id): UuidPath,
) -> Result<StatusCode, ApiError> {
    let tenant = principal.tenant()?;
    // The assignment id names no aggregate; the read model says whose it is, and the user's
    // own history decides (an assignment already gone answers 404).
    min.wait(&state, &[IdentityProjection::NAME]).await?;
    let owner: Option<(Uuid,)> =
        sqlx::query_as("SELECT user_id FROM user_roles WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(id)
            .fetch_optional(&state.pool)
            .await?;
    let (user,) = owner.ok_or_else(|| ApiError::not_found("role assignment not found"))?;
    let (target, _, _) = current::<UserAggregate>(&state, tenant, user.to_string()).await?;
    let target = target.ok_or_else(|| ApiError::not_found("role assignment not found"))?;
    grants::may_act_on(
        &principal,
        grants::user_permissions(&state, tenant, &target).await?,
    )?;
    let _admins = ADMIN_CHANGES.lock().await;
    let demotes_admin = target
        .roles
        .iter()
        .any(|r| r.id == id && r.role_id == BuiltinRole::Admin.id());
    if demotes_admin && is_active_admin(&target) {
        keep_an_admin(&state, tenant, user).await?;
    }
    let agg = aggregate::<UserAggregate>(tenant.0, user.to_string())?;
    execute::<UserAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &UserCommand::UnassignRole { assignment: id },
        false,
        user_error,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The roles a user holds, with their permissions (read from the log).
#[utoipa::path(get, path = "/api/v1/users/{id}/roles", tag = "roles", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant),
    responses(
        (status = 200, description = "The user's roles", body = Data<Vec<RoleView>>),
        AuthErrors,
        (status = 404, description = "No such user in this tenant", body = ErrorBody),
    ))]
async fn user_roles(
    State(state): State<AppState>,
    principal: Principal,
    UuidPath(id): UuidPath,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (user, _, _) = current::<UserAggregate>(&state, tenant, id.to_string()).await?;
    let user = user.ok_or_else(|| ApiError::not_found("user not found"))?;
    let mut roles = Vec::new();
    for a in &user.roles {
        match find_role(&state, tenant, &a.role_id).await {
            Ok((view, _, _)) => roles.push(view),
            // A deleted custom role grants nothing and is not listed.
            Err(e) if e.status == StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Reply::data(StatusCode::OK, roles))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionView {
    pub name: &'static str,
    pub description: &'static str,
    /// Whether a tenant can grant it to a role or an API key.
    pub grantable: bool,
}

/// Another document's name for permissions, accepted wherever permissions are granted.
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasView {
    pub name: &'static str,
    /// The catalog permissions it stands for.
    pub grants: Vec<&'static str>,
    pub description: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Catalog {
    pub data: Vec<PermissionView>,
    /// Seed 000's scope names and seed 004's spellings; seed 001's `noun:verb` form of any
    /// permission (`credential:rotate`) is accepted as well.
    pub aliases: Vec<AliasView>,
}

/// The canonical permission catalog, with the other names it accepts (cacheable for 5
/// minutes).
#[utoipa::path(get, path = "/api/v1/permissions", tag = "roles", security(("bearer" = [])),
    responses((status = 200, description = "Every permission and alias", body = Catalog), AuthErrors))]
async fn catalog() -> Response {
    let data: Vec<PermissionView> = Permission::ALL
        .iter()
        .map(|p| PermissionView {
            name: p.as_str(),
            description: p.description(),
            grantable: p.grantable(),
        })
        .collect();
    let aliases = ALIASES
        .iter()
        .map(|a| AliasView {
            name: a.name,
            grants: a.grants.iter().map(|p| p.as_str()).collect(),
            description: a.description,
        })
        .collect();
    (
        [(header::CACHE_CONTROL, "private, max-age=300")],
        axum::Json(Catalog { data, aliases }),
    )
        .into_response()
}
