//! Leakage policies: what to look for, where, and what a finding triggers.

use super::shapes::*;
use super::{refused, word, SEVERITIES};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{max_chars, CommandHeaders, Json, MinPosition};
use crate::http::openapi::params;
use crate::http::platform::PlatformErrors;
use crate::http::reply::Reply;
use crate::http::{command_context, ensure_tenant};
use crate::state::AppState;
use aegis_integrations_services::notify::unknown_webhooks;
use aegis_projectors::vault::VaultProjection;
use aegis_projectors::Projection;
use aegis_vault::leakage::policy::NewPolicy;
use aegis_vault::leakage::{LeakSeverity, OnDetection, Pattern, PatternKind};
use aegis_vault_services::leakage;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Create a policy. Every pattern is compiled now: a bad one is 400 and nothing is made.
#[utoipa::path(post, path = "/v1/leakage-detection/policies", tag = "vault", security(("bearer" = [])),
    params(params::Tenant), request_body = LeakPolicyBody,
    responses((status = 201, description = "Created", body = LeakPolicyCreated), PlatformErrors))]
pub(super) async fn create_policy(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<LeakPolicyBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    max_chars("description", body.description.as_deref(), 2000)?;
    let mut patterns = Vec::with_capacity(body.secret_patterns.len());
    for (i, p) in body.secret_patterns.iter().enumerate() {
        patterns.push(Pattern {
            kind: word(
                &format!("secretPatterns[{i}].type"),
                &p.kind,
                PatternKind::parse,
                "regex, keyword, entropy",
            )?,
            pattern: p.pattern.clone(),
            severity: word(
                &format!("secretPatterns[{i}].severity"),
                &p.severity,
                LeakSeverity::parse,
                SEVERITIES,
            )?,
        });
    }
    let (on_detection, channels) = match body.actions {
        Some(a) => (
            word(
                "actions.onDetection",
                &a.on_detection,
                OnDetection::parse,
                "alert, rotate, revoke",
            )?,
            a.notification_channels.unwrap_or_default(),
        ),
        None => (OnDetection::Alert, vec![]),
    };
    if channels.len() > 20 || channels.iter().any(|c| c.is_empty() || c.len() > 200) {
        return Err(ApiError::validation(
            "actions.notificationChannels",
            "at most 20 channels, each 1 to 200 characters",
        ));
    }
    ensure_tenant(&state, tenant).await?;
    // A channel is a webhook of the tenant's, by name: a misspelt one would tell nobody.
    let unknown = unknown_webhooks(&state, tenant.0, &channels)
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot read the webhooks: {e}"), 1))?;
    if let Some(name) = unknown.first() {
        return Err(ApiError::validation(
            "actions.notificationChannels",
            format!("`{name}` names no webhook of this tenant (see POST /webhooks/config)"),
        ));
    }
    let ctx = command_context(&principal, &headers, None);
    let policy = NewPolicy {
        name: body.name,
        description: body.description.unwrap_or_default(),
        patterns,
        scan_targets: body.scan_targets.unwrap_or_default(),
        on_detection,
        notification_channels: channels,
    };
    let (id, p, position) = leakage::create_policy(&state, &ctx, tenant.0, policy)
        .await
        .map_err(refused)?;
    Ok(Reply::body(
        StatusCode::CREATED,
        LeakPolicyCreated {
            policy_id: id,
            name: p.new.name,
            created_at: p.created_at,
        },
    )
    .at(position, 1))
}

/// The tenant's policies, newest first.
#[utoipa::path(get, path = "/v1/leakage-detection/policies", tag = "vault", security(("bearer" = [])),
    params(params::Tenant, params::MinPosition),
    responses((status = 200, description = "The policies", body = LeakPolicyList), PlatformErrors))]
pub(super) async fn list_policies(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    let rows: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT id, name, jsonb_array_length(patterns) FROM vault_leak_policies \
         WHERE tenant_id = $1 ORDER BY created_at DESC, id LIMIT 1000",
    )
    .bind(tenant.0)
    .fetch_all(&state.pool)
    .await?;
    Ok(Reply::body(
        StatusCode::OK,
        LeakPolicyList {
            policies: rows
                .into_iter()
                .map(|(policy_id, name, n)| LeakPolicySummary {
                    policy_id,
                    name,
                    enabled: true,
                    secret_patterns: n.max(0) as usize,
                })
                .collect(),
        },
    ))
}

#[utoipa::path(get, path = "/v1/leakage-detection/policies/{policyId}", tag = "vault", security(("bearer" = [])),
    params(("policyId" = String, Path, description = "The policy"), params::Tenant, params::MinPosition),
    responses((status = 200, description = "The policy", body = LeakPolicyView), PlatformErrors))]
pub(super) async fn get_policy(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Path(policy_id): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    type Row = (String, String, Value, Vec<String>, Value, DateTime<Utc>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT name, description, patterns, scan_targets, actions, created_at FROM vault_leak_policies \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.0)
    .bind(&policy_id)
    .fetch_optional(&state.pool)
    .await?;
    let (name, description, patterns, scan_targets, actions, created_at) =
        row.ok_or_else(|| ApiError::not_found("leakage policy not found"))?;
    Ok(Reply::body(
        StatusCode::OK,
        LeakPolicyView {
            policy_id,
            name,
            description,
            secret_patterns: patterns.as_array().cloned().unwrap_or_default(),
            scan_targets,
            actions,
            created_at,
        },
    ))
}

#[utoipa::path(delete, path = "/v1/leakage-detection/policies/{policyId}", tag = "vault", security(("bearer" = [])),
    params(("policyId" = String, Path, description = "The policy"), params::Tenant),
    responses((status = 204, description = "Deleted"), PlatformErrors))]
pub(super) async fn delete_policy(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(policy_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = principal.tenant()?;
    let ctx = command_context(&principal, &headers, None);
    leakage::delete_policy(&state, &ctx, tenant.0, &policy_id)
        .await
        .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}
