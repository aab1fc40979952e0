//! Users of a tenant (seed 004 has login but no user administration; these routes are what a
//! tenant ADMIN needs to have someone to log in): create, list, read, rename, disable.

use crate::auth::{grants, Principal};
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json, MinPosition, Query, UuidPath};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::paged::page;
use crate::http::paged::TenantQuery;
use crate::http::reply::{Data, Paged, Reply};
use crate::http::{aggregate, current, ensure_tenant, execute};
use crate::state::AppState;
use aegis_identity::users::{
    ClaimEmail, Command, Email, EmailOwner, User, UserAggregate, UserEmailAggregate, UserError,
    UserStatus,
};
use aegis_identity::TenantId;
use aegis_projectors::identity::IdentityProjection;
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
        .routes(routes!(detail, update))
        .routes(routes!(set_platform_admin))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformAdminBody {
    pub is_platform_admin: bool,
}

/// Make a user of the tenant (`X-Tenant-ID`) a platform admin, with every cross-tenant right
/// the bootstrap token has, or take it back (platform admin only; the change is an event in
/// the audit log, and so is everything the user does).
#[utoipa::path(put, path = "/admin/users/{id}/platform-admin", tag = "tenants", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant), request_body = PlatformAdminBody,
    responses((status = 200, description = "The user", body = Data<UserView>),
        AuthErrors, BodyErrors,
        (status = 404, description = "No such user in this tenant", body = ErrorBody)))]
async fn set_platform_admin(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
    Json(body): Json<PlatformAdminBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    ensure_tenant(&state, tenant).await?;
    let agg = aggregate::<UserAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<UserAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::SetPlatformAdmin(body.is_platform_admin),
        false,
        user_error,
    )
    .await?;
    let user = outcome
        .state
        .ok_or_else(|| ApiError::not_found("user not found"))?;
    Ok(Reply::data(StatusCode::OK, UserView::of(tenant.0, &user))
        .at(outcome.position, outcome.version))
}

pub fn user_error(e: UserError) -> ApiError {
    match e {
        UserError::NotFound => ApiError::not_found("user not found"),
        UserError::AlreadyExists => ApiError::conflict("the user already exists"),
        UserError::EmailTaken => {
            ApiError::conflict("an account with this email already exists").with("field", "email")
        }
        UserError::RoleAlreadyAssigned(role) => {
            ApiError::conflict(format!("the user already has role {role}")).with("role_id", role)
        }
        UserError::AssignmentNotFound => ApiError::not_found("role assignment not found"),
    }
}

/// A user as the API shows it: never the password hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub name: String,
    pub status: UserStatus,
    /// Ids of the roles assigned (built-in role names or custom role UUIDs).
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Holds every cross-tenant right (seed 000's `users.is_platform_admin`).
    pub is_platform_admin: bool,
}

impl UserView {
    pub fn of(tenant: Uuid, u: &User) -> Self {
        Self {
            id: u.id,
            tenant_id: tenant,
            email: u.email.clone(),
            name: u.name.clone(),
            status: u.status,
            roles: u.roles.iter().map(|r| r.role_id.clone()).collect(),
            created_at: u.created_at,
            is_platform_admin: u.platform_admin,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    /// The login name; unique within the tenant, compared without case.
    #[schema(max_length = 254)]
    pub email: String,
    /// 12 to 128 characters.
    #[schema(min_length = 12, max_length = 128)]
    pub password: String,
    /// Display name, up to 100 characters; defaults to the email.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name: Option<String>,
}

pub fn display_name(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let name = raw.trim();
    if name.is_empty() || raw.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "name",
            "name must be 1 to 100 characters without control characters",
        ));
    }
    Ok(Some(name.to_string()))
}

/// Create a user in the caller's tenant. Roles are assigned with `POST /api/v1/user-roles`.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    params(params::Tenant), request_body = CreateUserBody,
    responses(
        (status = 201, description = "Created", body = Data<UserView>,
            headers(("Aegis-Position" = u64), ("ETag" = String))),
        AuthErrors,
        (status = 404, description = "Unknown tenant", body = ErrorBody),
        (status = 409, description = "The email is taken", body = ErrorBody),
        BodyErrors,
    ))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<CreateUserBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let email = Email::parse(&body.email)
        .map_err(|m| ApiError::validation("email", format!("email {m}")))?;
    let count = body.password.chars().count();
    if !(12..=128).contains(&count) {
        return Err(ApiError::validation(
            "password",
            "password must be 12 to 128 characters",
        ));
    }
    let name = display_name(body.name.as_deref())?.unwrap_or_else(|| email.as_str().to_string());
    ensure_tenant(&state, tenant).await?;
    let password_hash = crate::auth::passwords::hash(body.password).await?;
    let id = Uuid::now_v7();
    let claim = aggregate::<UserEmailAggregate>(tenant.0, email.as_str())?;
    let (holder, _, _) = current::<UserEmailAggregate>(&state, tenant, email.as_str()).await?;
    let holder_alive = match holder {
        Some(h) => current::<UserAggregate>(&state, h.owner.tenant, h.owner.user.to_string())
            .await?
            .0
            .is_some(),
        None => false,
    };
    execute::<UserEmailAggregate>(
        &state,
        &principal,
        &headers,
        &claim,
        &ClaimEmail {
            owner: EmailOwner { tenant, user: id },
            holder_alive,
            now: Utc::now(),
        },
        false,
        user_error,
    )
    .await?;
    let agg = aggregate::<UserAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<UserAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Create {
            email,
            name,
            password_hash,
        },
        true,
        user_error,
    )
    .await?;
    let user = outcome
        .state
        .ok_or_else(|| ApiError::internal(&UserError::NotFound))?;
    tracing::info!(user = %user.id, tenant = %tenant, "user created");
    Ok(
        Reply::data(StatusCode::CREATED, UserView::of(tenant.0, &user))
            .at(outcome.position, outcome.version),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// Only users in this status.
    #[param(inline)]
    pub status: Option<UserStatus>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    #[schema(value_type = UserStatus)]
    pub status: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// Users of the tenant, newest first.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    params(UserQuery, params::Tenant, params::MinPosition),
    responses(
        (status = 200, description = "A page of users", body = Paged<UserRow>),
        AuthErrors,
        (status = 422, description = "Invalid paging values", body = ErrorBody),
        (status = 503, description = "Read model behind Aegis-Min-Position", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<UserQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = page(q.limit, q.offset)?;
    min.wait(&state, &[IdentityProjection::NAME]).await?;
    let status = q.status.map(UserStatus::as_str);
    let (rows, total): (Vec<UserRow>, i64) = TenantQuery::new("users", "tenant_id", tenant.0)
        .eq_text("status", status)
        .page(
            &state.pool,
            "id, email, name, status, version, created_at, updated_at, last_login_at",
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

/// One user, read from the log (always current).
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant),
    responses(
        (status = 200, description = "The user", body = Data<UserView>, headers(("ETag" = String))),
        AuthErrors,
        (status = 404, description = "No such user in this tenant", body = ErrorBody),
    ))]
async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    UuidPath(id): UuidPath,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (user, position, version) =
        current::<UserAggregate>(&state, tenant, id.to_string()).await?;
    let user = user.ok_or_else(|| ApiError::not_found("user not found"))?;
    Ok(Reply::data(StatusCode::OK, UserView::of(tenant.0, &user)).at(position, version))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name: Option<String>,
    /// `disabled` stops the user's tokens at once; `active` restores them.
    #[serde(default)]
    pub status: Option<UserStatus>,
}

/// Rename, disable or enable a user. `If-Match` guards against lost updates.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant, params::IfMatch), request_body = UpdateUserBody,
    responses(
        (status = 200, description = "Updated", body = Data<UserView>,
            headers(("Aegis-Position" = u64), ("ETag" = String))),
        AuthErrors,
        (status = 404, description = "No such user in this tenant", body = ErrorBody),
        (status = 409, description = "Stale If-Match", body = ErrorBody),
        BodyErrors,
    ))]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
    Json(body): Json<UpdateUserBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let name = display_name(body.name.as_deref())?;
    if principal.subject == id.to_string() && body.status == Some(UserStatus::Disabled) {
        return Err(ApiError::conflict("you cannot disable your own account"));
    }
    let (target, _, _) = current::<UserAggregate>(&state, tenant, id.to_string()).await?;
    let target = target.ok_or_else(|| ApiError::not_found("user not found"))?;
    grants::may_act_on(
        &principal,
        grants::user_permissions(&state, tenant, &target).await?,
    )?;
    let _admins = ADMIN_CHANGES.lock().await;
    if body.status == Some(UserStatus::Disabled) && is_active_admin(&target) {
        keep_an_admin(&state, tenant, id).await?;
    }
    let agg = aggregate::<UserAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<UserAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Update {
            name,
            status: body.status,
        },
        false,
        user_error,
    )
    .await?;
    let user = outcome
        .state
        .ok_or_else(|| ApiError::not_found("user not found"))?;
    if outcome.appended {
        tracing::info!(user = %id, tenant = %tenant, status = %user.status, "user updated");
    }
    Ok(Reply::data(StatusCode::OK, UserView::of(tenant.0, &user))
        .at(outcome.position, outcome.version))
}

/// Serializes this instance's changes that can remove an active ADMIN, so two of them cannot
/// each see the other's target as the remaining ADMIN. (Across instances the read model's
/// answer can still race by the projection lag; see the README's security section.)
pub static ADMIN_CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn is_active_admin(user: &User) -> bool {
    user.status == UserStatus::Active
        && user
            .roles
            .iter()
            .any(|r| r.role_id == aegis_identity::permissions::BuiltinRole::Admin.id())
}

/// Refuses a change that would leave the tenant without an active ADMIN: someone must always
/// be able to undo what any other user did. Candidates come from the caught-up read model and
/// each is confirmed from the log.
pub async fn keep_an_admin(
    state: &AppState,
    tenant: TenantId,
    leaving: Uuid,
) -> Result<(), ApiError> {
    MinPosition::caught_up(state, &[IdentityProjection::NAME]).await?;
    let others: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT DISTINCT u.id FROM users u JOIN user_roles r \
         ON r.tenant_id = u.tenant_id AND r.user_id = u.id \
         WHERE u.tenant_id = $1 AND u.status = 'active' AND r.role_id = 'ADMIN' AND u.id <> $2 \
         LIMIT 16",
    )
    .bind(tenant.0)
    .bind(leaving)
    .fetch_all(&state.pool)
    .await?;
    for (other,) in others {
        let (user, _, _) = current::<UserAggregate>(state, tenant, other.to_string()).await?;
        if user.as_ref().is_some_and(is_active_admin) {
            return Ok(());
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "last_admin",
        "this is the tenant's last active ADMIN: make another user ADMIN first",
    ))
}
