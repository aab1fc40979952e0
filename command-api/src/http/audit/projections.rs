//! Operating the read side (platform admin): every projection's position, lag and health; a
//! blue/green rebuild that serves queries all the while; and the skip of the one commit a
//! halted projection cannot apply. Rebuild requests and skips are events, so they are audited
//! like every other change.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json};
use crate::http::openapi::{AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::{Data, Reply};
use crate::http::{aggregate, execute, platform_tenant};
use crate::state::{AppState, RebuildState};
use aegis_audit::{Command, ProjectionAggregate, ProjectionOpError};
use aegis_projectors::{checkpoint, PROJECTIONS};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionView {
    pub name: String,
    pub position: i64,
    /// Commits in the log this projection has not applied yet.
    pub lag: u64,
    /// `running` or `halted`.
    pub status: String,
    pub error: Option<String>,
    /// The commit a halted projection stopped on: what `skip` takes.
    pub failed_position: Option<i64>,
    /// The last rebuild started over the API on this instance.
    pub rebuild: Option<RebuildState>,
}

fn op_error(e: ProjectionOpError) -> ApiError {
    ApiError::conflict(e.to_string())
}

fn known(name: &str) -> Result<&'static str, ApiError> {
    PROJECTIONS
        .iter()
        .copied()
        .find(|p| *p == name)
        .ok_or_else(|| {
            ApiError::not_found(format!("no projection `{name}`"))
                .with("known", PROJECTIONS.to_vec())
        })
}

/// Every projection's position, lag and health.
#[utoipa::path(get, path = "/admin/projections", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Every projection", body = Data<Vec<ProjectionView>>), AuthErrors))]
pub(super) async fn list(State(state): State<AppState>) -> Result<Reply, ApiError> {
    let head = state.executor.store().head().await?;
    let cps = checkpoint::all(&state.pool).await?;
    let rebuilds = state.rebuilds.lock().map(|r| r.clone()).unwrap_or_default();
    let data: Vec<ProjectionView> = cps
        .into_iter()
        .map(|cp| ProjectionView {
            lag: head.saturating_sub(cp.position.max(0) as u64),
            rebuild: rebuilds.get(&cp.name).cloned(),
            name: cp.name,
            position: cp.position,
            status: cp.status,
            error: cp.error,
            failed_position: cp.failed_position,
        })
        .collect();
    Ok(Reply::data(StatusCode::OK, data))
}

/// Start a blue/green rebuild: the log is replayed into fresh tables while the live ones keep
/// answering, then swapped in. Progress shows in `GET /admin/projections`.
#[utoipa::path(post, path = "/admin/projections/{name}/rebuild", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses(
        (status = 202, description = "Started", body = Data<RebuildState>, headers(("Aegis-Position" = u64))),
        AuthErrors,
        (status = 404, description = "No such projection", body = ErrorBody),
        (status = 409, description = "A rebuild of it is already running", body = ErrorBody),
    ))]
pub(super) async fn rebuild(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(name): Path<String>,
) -> Result<Reply, ApiError> {
    let name = known(&name)?;
    let lease = aegis_runtime::leases::try_take(
        &state.config.database_url,
        aegis_runtime::leases::rebuild_key(name),
    )
    .await?
    .ok_or_else(|| {
        ApiError::conflict(format!(
            "a rebuild of `{name}` is already running on another instance"
        ))
    })?;
    let started = RebuildState {
        state: "running",
        started_at: Utc::now(),
        finished_at: None,
        commits: None,
        position: None,
        error: None,
    };
    {
        let mut rebuilds = state
            .rebuilds
            .lock()
            .map_err(|_| ApiError::conflict("rebuild bookkeeping unavailable; retry"))?;
        if rebuilds.get(name).is_some_and(|r| r.state == "running") {
            return Err(ApiError::conflict(format!(
                "a rebuild of `{name}` is already running"
            )));
        }
        rebuilds.insert(name.to_string(), started.clone());
    }
    let agg = aggregate::<ProjectionAggregate>(platform_tenant(), name)?;
    let outcome = match execute::<ProjectionAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::RequestRebuild,
        false,
        op_error,
    )
    .await
    {
        Ok(o) => o,
        Err(e) => {
            if let Ok(mut r) = state.rebuilds.lock() {
                r.remove(name);
            }
            return Err(e);
        }
    };
    let (pool, store, rebuilds) = (
        state.pool.clone(),
        state.executor.store().clone(),
        state.rebuilds.clone(),
    );
    tracing::info!(projection = name, "rebuild started");
    tokio::spawn(async move {
        // The rebuild runs as a task of its own so that a panic in it is reported as a
        // failure instead of leaving the state `running` for good; the lease lives until then.
        let work = tokio::spawn(async move {
            aegis_projectors::rebuild::rebuild_named(&pool, &store, name).await
        });
        let result = match work.await {
            Ok(result) => result.map(|r| r.map_err(|e| e.to_string())),
            Err(e) => Some(Err(format!("the rebuild stopped: {e}"))),
        };
        drop(lease);
        let finished = Utc::now();
        let update = |r: &mut RebuildState| {
            r.finished_at = Some(finished);
            match result {
                Some(Ok(report)) => {
                    tracing::info!(
                        projection = name,
                        commits = report.commits,
                        position = report.position,
                        "rebuild done"
                    );
                    r.state = "done";
                    r.commits = Some(report.commits);
                    r.position = Some(report.position);
                }
                Some(Err(e)) => {
                    tracing::error!(projection = name, error = %e, "rebuild failed");
                    r.state = "failed";
                    r.error = Some(e.to_string());
                }
                None => {
                    r.state = "failed";
                    r.error = Some("unknown projection".into());
                }
            }
        };
        if let Ok(mut all) = rebuilds.lock() {
            if let Some(r) = all.get_mut(name) {
                update(r);
            }
        }
    });
    Ok(Reply::data(StatusCode::ACCEPTED, started).at(outcome.position, outcome.version))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkipBody {
    /// The commit the projection halted on (its `failed_position`): naming it proves the
    /// operator skips what they looked at.
    #[schema(minimum = 1)]
    pub position: u64,
    /// Why, for the audit log (1 to 500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// Let a halted projection pass the one commit it cannot apply; recorded as an event.
#[utoipa::path(post, path = "/admin/projections/{name}/skip", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = SkipBody,
    responses(
        (status = 200, description = "Skipped; the projection runs again", body = Data<ProjectionView>, headers(("Aegis-Position" = u64))),
        AuthErrors,
        (status = 404, description = "No such projection", body = ErrorBody),
        (status = 409, description = "The projection is not halted at that position", body = ErrorBody),
        BodyErrors,
    ))]
pub(super) async fn skip(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(name): Path<String>,
    Json(body): Json<SkipBody>,
) -> Result<Reply, ApiError> {
    let name = known(&name)?;
    let reason = body.reason.trim().to_string();
    if reason.is_empty()
        || body.reason.chars().count() > 500
        || reason.chars().any(char::is_control)
    {
        return Err(ApiError::validation(
            "reason",
            "reason must be 1 to 500 characters without control characters",
        ));
    }
    let cp = checkpoint::get(&state.pool, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("projection `{name}` has not started")))?;
    if !cp.halted() || cp.failed_position != Some(body.position as i64) {
        return Err(ApiError::conflict(format!(
            "`{name}` is not halted at position {}",
            body.position
        ))
        .with("status", cp.status.clone())
        .with("failed_position", cp.failed_position));
    }
    let agg = aggregate::<ProjectionAggregate>(platform_tenant(), name)?;
    let outcome = execute::<ProjectionAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Skip {
            position: body.position,
            reason,
            error: cp.error.clone().unwrap_or_default(),
        },
        false,
        op_error,
    )
    .await?;
    if !checkpoint::skip(&state.pool, name, body.position).await? {
        return Err(ApiError::conflict(format!(
            "`{name}` changed meanwhile; it is no longer halted at {}",
            body.position
        )));
    }
    tracing::warn!(projection = name, position = body.position, actor = %principal.subject, "halted projection skipped a commit");
    let head = state.executor.store().head().await?;
    let cp = checkpoint::get(&state.pool, name)
        .await?
        .ok_or_else(|| ApiError::not_found("projection vanished"))?;
    Ok(Reply::data(
        StatusCode::OK,
        ProjectionView {
            lag: head.saturating_sub(cp.position.max(0) as u64),
            rebuild: None,
            name: cp.name,
            position: cp.position,
            status: cp.status,
            error: cp.error,
            failed_position: cp.failed_position,
        },
    )
    .at(outcome.position, outcome.version))
}
