//! Leakage scans: queued here, run by the leak-scan reactor, followed by id.

use super::refused;
use super::shapes::*;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json, MinPosition};
use crate::http::openapi::params;
use crate::http::platform::PlatformErrors;
use crate::http::reply::Reply;
use crate::http::{command_context, ensure_tenant};
use crate::state::AppState;
use aegis_projectors::vault::VaultProjection;
use aegis_projectors::Projection;
use aegis_vault::leakage::organization::{Host, Organization};
use aegis_vault::leakage::policy::TARGETS;
use aegis_vault::leakage::scan::ScanRequest;
use aegis_vault_services::leakage::{self, repository_url};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};

/// Queue a scan of git repositories (every blob of every commit) and pages. 202: the scan
/// runs in the background; follow it at `/scans/{scanId}`.
#[utoipa::path(post, path = "/v1/leakage-detection/scan", tag = "vault", security(("bearer" = [])),
    params(params::Tenant), request_body = LeakScanBody,
    responses((status = 202, description = "Queued", body = LeakScanQueued),
        PlatformErrors))]
pub(super) async fn scan(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<LeakScanBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    if let Some(t) = body.targets.iter().find(|t| !TARGETS.contains(&t.as_str())) {
        return Err(ApiError::validation(
            "targets",
            format!("target `{t}` is not one of github, gitlab, pastebin, s3, url"),
        ));
    }
    let git_target = body
        .targets
        .iter()
        .find(|t| *t == "github" || *t == "gitlab")
        .map(String::as_str);
    let repositories = body
        .scope
        .repositories
        .unwrap_or_default()
        .iter()
        .map(|r| repository_url(git_target, r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(refused)?;
    let organizations = organizations(
        &body.targets,
        body.scope.organizations.as_deref().unwrap_or_default(),
    )?;
    ensure_tenant(&state, tenant).await?;
    let ctx = command_context(&principal, &headers, None);
    let request = ScanRequest {
        targets: body.targets,
        repositories,
        urls: body.scope.urls.unwrap_or_default(),
        policy_ids: body.policy_ids.unwrap_or_default(),
        requested_by: principal.subject.to_string(),
        organizations,
    };
    let targets = request.total() as i64;
    let (scan_id, s, position) = leakage::queue_scan(&state, &ctx, tenant.0, request)
        .await
        .map_err(refused)?;
    Ok(Reply::body(
        StatusCode::ACCEPTED,
        LeakScanQueued {
            scan_id,
            status: s.status.as_str(),
            // A rough figure: a worker picks it up within a tick; a repository takes seconds.
            estimated_completion_at: s.queued_at + TimeDelta::seconds(15 * targets + 10),
        },
    )
    .at(position, 1))
}

/// `scope.organizations` under each git host the scan targets: every repository of each is
/// listed through that host's API when the scan runs.
fn organizations(targets: &[String], names: &[String]) -> Result<Vec<Organization>, ApiError> {
    if names.is_empty() {
        return Ok(vec![]);
    }
    let hosts: Vec<Host> = targets.iter().filter_map(|t| Host::parse(t)).collect();
    if hosts.is_empty() {
        return Err(ApiError::validation(
            "scope.organizations",
            "organizations are listed on a git host: add `github` or `gitlab` to targets",
        ));
    }
    let mut out = Vec::new();
    for name in names {
        for &host in &hosts {
            if !host.valid_name(name) {
                return Err(ApiError::validation(
                    "scope.organizations",
                    format!("`{name}` is not a {} organization name", host.as_str()),
                ));
            }
            out.push(Organization {
                host,
                name: name.clone(),
            });
        }
    }
    Ok(out)
}

#[utoipa::path(get, path = "/v1/leakage-detection/scans/{scanId}", tag = "vault", security(("bearer" = [])),
    params(("scanId" = String, Path, description = "The scan"), params::Tenant, params::MinPosition),
    responses((status = 200, description = "The scan", body = LeakScanView), PlatformErrors))]
pub(super) async fn get_scan(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Path(scan_id): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    type Row = (
        String,
        i32,
        i32,
        i32,
        i64,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        String,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT status, targets_total, targets_done, findings, bytes_scanned, started_at, completed_at, reason \
         FROM vault_leak_scans WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.0)
    .bind(&scan_id)
    .fetch_optional(&state.pool)
    .await?;
    let (status, total, done, findings, bytes, started_at, completed_at, reason) =
        row.ok_or_else(|| ApiError::not_found("scan not found"))?;
    let progress = match status.as_str() {
        "completed" => 100,
        _ if total == 0 => 0,
        _ => (done * 100 / total).min(100),
    };
    Ok(Reply::body(
        StatusCode::OK,
        LeakScanView {
            scan_id,
            status,
            progress,
            findings,
            bytes_scanned: bytes,
            started_at,
            completed_at,
            reason: (!reason.is_empty()).then_some(reason),
        },
    ))
}
