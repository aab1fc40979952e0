//! Projects and environments (seed 004): what requests name and policies select on. A
//! project is archived, never deleted; an environment is deleted. Edited with `project.edit`,
//! read with `project.read`; shapes as the open-source secrets-bridge API's.

use super::errors::broker_error;
use super::rules_http::{millis, not_found_id, Edited};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json};
use crate::http::openapi::{AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::http::{command_context, ensure_tenant};
use crate::state::AppState;
use aegis_broker::tenancy::{Command, Environment, Project, Tenancy};
use aegis_broker_services::tenancy;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_project, list_projects))
        .routes(routes!(get_project))
        .routes(routes!(set_status))
        .routes(routes!(project_environments))
        .routes(routes!(create_environment, list_environments))
        .routes(routes!(get_environment, delete_environment))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectBody {
    pub name: String,
    #[serde(default)]
    pub owner_team_id: Option<String>,
    /// `active` (default) or `archived`.
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectView {
    pub id: Uuid,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub owner_team_id: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn project_view(id: Uuid, p: &Project) -> ProjectView {
    ProjectView {
        id,
        name: p.name.clone(),
        owner_team_id: p.owner_team_id.clone(),
        status: p.status.clone(),
        created_at: millis(p.created_at),
        updated_at: millis(p.updated_at),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentBody {
    pub project_id: Uuid,
    pub name: String,
    /// dev, staging, uat, prod or other (default).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentView {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn environment_view(id: Uuid, e: &Environment) -> EnvironmentView {
    EnvironmentView {
        id,
        project_id: e.project_id,
        name: e.name.clone(),
        kind: e.kind.clone(),
        created_at: millis(e.created_at),
        updated_at: millis(e.created_at),
    }
}

fn id_of(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| not_found_id(what))
}

async fn current(state: &AppState, principal: &Principal) -> Result<Tenancy, ApiError> {
    let tenant = principal.tenant()?;
    tenancy::get(state, tenant.0).await.map_err(broker_error)
}

async fn edit(
    state: &AppState,
    principal: &Principal,
    headers: &CommandHeaders,
    command: Command,
) -> Result<(Tenancy, u64), ApiError> {
    let tenant = principal.tenant()?;
    ensure_tenant(state, tenant).await?;
    let ctx = command_context(principal, headers, None);
    tenancy::edit(state, &ctx, tenant.0, command)
        .await
        .map_err(broker_error)
}

/// Create a project (201); its name is unique in the tenant.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", security(("bearer" = [])),
    request_body = ProjectBody,
    responses((status = 201, description = "Created", body = ProjectView),
        (status = 400, description = "No name, or an unknown status", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody), AuthErrors, BodyErrors))]
async fn create_project(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<ProjectBody>,
) -> Result<Reply, ApiError> {
    let id = Uuid::now_v7();
    let command = Command::CreateProject {
        id,
        name: body.name.trim().to_string(),
        owner_team_id: body.owner_team_id.unwrap_or_default(),
        status: body.status.unwrap_or_else(|| "active".into()),
    };
    let (t, position) = edit(&state, &principal, &headers, command).await?;
    let p = t.projects.get(&id).ok_or_else(|| not_found_id("project"))?;
    Ok(Reply::body(StatusCode::CREATED, project_view(id, p)).at(position, 1))
}

/// Every project, by name.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", security(("bearer" = [])),
    responses((status = 200, description = "The projects", body = [ProjectView]), AuthErrors))]
async fn list_projects(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Reply, ApiError> {
    let t = current(&state, &principal).await?;
    let mut all: Vec<ProjectView> = t
        .projects
        .iter()
        .map(|(id, p)| project_view(*id, p))
        .collect();
    all.sort_by_key(|p| p.name.to_lowercase());
    Ok(Reply::body(StatusCode::OK, all))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The project", body = ProjectView),
        (status = 404, description = "No such project", body = ErrorBody), AuthErrors))]
async fn get_project(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<Reply, ApiError> {
    let id = id_of(&raw, "project")?;
    let t = current(&state, &principal).await?;
    let p = t.projects.get(&id).ok_or_else(|| not_found_id("project"))?;
    Ok(Reply::body(StatusCode::OK, project_view(id, p)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// `active` or `archived`.
    pub status: String,
}

/// Archive a project or bring it back (204).
#[utoipa::path(put, path = "/api/v1/projects/{id}/status", tag = "projects", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = StatusBody,
    responses((status = 204, description = "Set"),
        (status = 400, description = "status must be active or archived", body = ErrorBody),
        (status = 404, description = "No such project", body = ErrorBody), AuthErrors, BodyErrors))]
async fn set_status(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
    Json(body): Json<StatusBody>,
) -> Result<Edited, ApiError> {
    let id = id_of(&raw, "project")?;
    let command = Command::SetStatus {
        id,
        status: body.status.trim().to_string(),
    };
    let (_, position) = edit(&state, &principal, &headers, command).await?;
    Ok(Edited(position))
}

/// A project's environments, by name.
#[utoipa::path(get, path = "/api/v1/projects/{id}/environments", tag = "projects", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "Its environments", body = [EnvironmentView]),
        (status = 404, description = "No such project", body = ErrorBody), AuthErrors))]
async fn project_environments(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<Reply, ApiError> {
    let id = id_of(&raw, "project")?;
    let t = current(&state, &principal).await?;
    if !t.projects.contains_key(&id) {
        return Err(not_found_id("project"));
    }
    Ok(Reply::body(StatusCode::OK, environments(&t, Some(id))))
}

fn environments(t: &Tenancy, project: Option<Uuid>) -> Vec<EnvironmentView> {
    let mut all: Vec<EnvironmentView> = t
        .environments
        .iter()
        .filter(|(_, e)| project.is_none_or(|p| e.project_id == p))
        .map(|(id, e)| environment_view(*id, e))
        .collect();
    all.sort_by_key(|e| (e.project_id, e.name.to_lowercase()));
    all
}

/// Create an environment in a project (201); its name is unique in the project.
#[utoipa::path(post, path = "/api/v1/environments", tag = "projects", security(("bearer" = [])),
    request_body = EnvironmentBody,
    responses((status = 201, description = "Created", body = EnvironmentView),
        (status = 400, description = "No name, or an unknown type", body = ErrorBody),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 409, description = "The name is taken in the project, or the project is archived", body = ErrorBody),
        AuthErrors, BodyErrors))]
async fn create_environment(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<EnvironmentBody>,
) -> Result<Reply, ApiError> {
    let id = Uuid::now_v7();
    let command = Command::CreateEnvironment {
        id,
        project_id: body.project_id,
        name: body.name.trim().to_string(),
        kind: body
            .kind
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "other".into()),
    };
    let (t, position) = edit(&state, &principal, &headers, command).await?;
    let e = t
        .environments
        .get(&id)
        .ok_or_else(|| not_found_id("environment"))?;
    Ok(Reply::body(StatusCode::CREATED, environment_view(id, e)).at(position, 1))
}

/// Every environment of every project.
#[utoipa::path(get, path = "/api/v1/environments", tag = "projects", security(("bearer" = [])),
    responses((status = 200, description = "The environments", body = [EnvironmentView]), AuthErrors))]
async fn list_environments(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Reply, ApiError> {
    let t = current(&state, &principal).await?;
    Ok(Reply::body(StatusCode::OK, environments(&t, None)))
}

#[utoipa::path(get, path = "/api/v1/environments/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The environment", body = EnvironmentView),
        (status = 404, description = "No such environment", body = ErrorBody), AuthErrors))]
async fn get_environment(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<Reply, ApiError> {
    let id = id_of(&raw, "environment")?;
    let t = current(&state, &principal).await?;
    let e = t
        .environments
        .get(&id)
        .ok_or_else(|| not_found_id("environment"))?;
    Ok(Reply::body(StatusCode::OK, environment_view(id, e)))
}

/// Delete an environment (204).
#[utoipa::path(delete, path = "/api/v1/environments/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such environment", body = ErrorBody), AuthErrors))]
async fn delete_environment(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
) -> Result<Edited, ApiError> {
    let id = id_of(&raw, "environment")?;
    let (_, position) = edit(
        &state,
        &principal,
        &headers,
        Command::DeleteEnvironment { id },
    )
    .await?;
    Ok(Edited(position))
}
