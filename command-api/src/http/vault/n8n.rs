//! Seed 001's n8n routes: apply a credential to a workflow node, and sync the credentials
//! n8n's workflows use into the vault. The n8n connection is a vault credential (default
//! `n8n-api`): its value is the API key, its `base_url` metadata the instance.

use super::errors::credential_error;
use super::path_name;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::error::IntoApi;
use crate::http::extract::{max_chars, CommandHeaders, Json, MinPosition, Query};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::http::{aggregate, command_context, ensure_tenant, execute};
use crate::state::AppState;
use aegis_projectors::vault::VaultProjection;
use aegis_projectors::Projection;
use aegis_runtime::command::CommandError;
use aegis_schemas::vault::v1 as pb;
use aegis_vault::credentials::{Command, Lifecycle, NewCredential};
use aegis_vault::settings::MetaValue;
use aegis_vault::{CredentialAggregate, CredentialError, Settings};
use aegis_vault_services::n8n::{self, Client, N8nError, NodeCredential};
use aegis_vault_services::{for_value_read, load, open, VaultError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub const DEFAULT_CONNECTION: &str = "n8n-api";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(apply))
        .routes(routes!(sync))
}

fn n8n_error(e: N8nError) -> ApiError {
    match e {
        N8nError::NoSuchNode { .. } => ApiError::validation("node_name", e.to_string()),
        other => ApiError::new(StatusCode::BAD_GATEWAY, "upstream_error", other.to_string()),
    }
}

/// The tenant's n8n client, from its connection credential (whose read is audited like any).
async fn client(
    state: &AppState,
    ctx: &aegis_runtime::command::CommandContext,
    tenant: Uuid,
    connection: &str,
) -> Result<Client, ApiError> {
    let none = || {
        ApiError::validation(
            "connection",
            format!("no n8n connection: register a credential named `{connection}` whose value is the n8n API key and whose metadata holds `base_url`"),
        )
    };
    if super::body::name(connection).is_err() {
        return Err(none());
    }
    // The API key's read is recorded before it is opened (and a refused one as refused).
    let conn = for_value_read(state, ctx, tenant, connection)
        .await
        .map_err(|e| match e {
            VaultError::Missing(_) => none(),
            other => other.into(),
        })?;
    let base = conn.settings.metadata_text("base_url").ok_or_else(|| {
        ApiError::validation(
            "connection",
            format!("the credential `{connection}` has no `base_url` metadata"),
        )
    })?;
    let key = open(state, tenant, &conn, None).await?;
    Client::connect(state.config.egress(), base, &key)
        .await
        .map_err(n8n_error)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyBody {
    pub workflow_id: String,
    pub node_name: String,
    /// Who asked (seed 001: an agent's name); recorded in the audit log.
    pub requested_by: Option<String>,
    /// The n8n connection credential (default `n8n-api`).
    pub connection: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Applied {
    pub status: String,
    pub credential: String,
    pub workflow_id: String,
    pub node: String,
    /// The n8n credential created for this version of the value.
    pub provider_credential_id: String,
    pub applied_at: DateTime<Utc>,
}

/// Apply the current value to an n8n workflow node: creates an n8n credential holding it
/// (type from the `n8n_credential_type` metadata, default `httpHeaderAuth`) and points the
/// node at it.
#[utoipa::path(post, path = "/credentials/{name}/apply", tag = "vault", security(("bearer" = [])),
    params(("name" = String, Path, description = "The credential's name"), params::Tenant),
    request_body = ApplyBody,
    responses((status = 200, description = "Applied", body = Applied),
        AuthErrors, BodyErrors,
        (status = 404, description = "No such credential", body = ErrorBody),
        (status = 409, description = "Retired, or no value yet", body = ErrorBody),
        (status = 410, description = "Destroyed", body = ErrorBody),
        (status = 502, description = "n8n refused or failed", body = ErrorBody)))]
async fn apply(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(name): Path<String>,
    Json(body): Json<ApplyBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    path_name(&name)?;
    for (field, v) in [
        ("workflow_id", &body.workflow_id),
        ("node_name", &body.node_name),
    ] {
        if v.is_empty() {
            return Err(ApiError::validation(field, format!("{field} is required")));
        }
        max_chars(field, Some(v), 255)?;
    }
    max_chars("requested_by", body.requested_by.as_deref(), 255)?;
    // Recorded before the value is opened; a retired or destroyed credential's refusal is
    // recorded too (seed 001's audit log shows it with success false).
    let c = for_value_read(
        &state,
        &command_context(&principal, &headers, None),
        tenant.0,
        &name,
    )
    .await?;
    let value = open(&state, tenant.0, &c, None).await?;
    let n8n = client(
        &state,
        &command_context(&principal, &headers, None),
        tenant.0,
        body.connection.as_deref().unwrap_or(DEFAULT_CONNECTION),
    )
    .await?;
    let n8n_type = c
        .settings
        .metadata_text("n8n_credential_type")
        .unwrap_or("httpHeaderAuth");
    let data = n8n::credential_data(n8n_type, c.settings.metadata_text("n8n_field"), &value);
    let n8n_name = format!("{name} (aegis v{})", c.version());
    let id = n8n
        .create_credential(&n8n_name, n8n_type, data)
        .await
        .map_err(n8n_error)?;
    n8n.attach(
        &body.workflow_id,
        &body.node_name,
        &NodeCredential {
            id: id.clone(),
            name: n8n_name,
            credential_type: n8n_type.into(),
        },
    )
    .await
    .map_err(n8n_error)?;
    let agg = aggregate::<CredentialAggregate>(tenant.0, name.as_str())?;
    let outcome = execute::<CredentialAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::RecordApplied(pb::CredentialApplied {
            workflow_id: body.workflow_id.clone(),
            node_name: body.node_name.clone(),
            requested_by: body.requested_by.clone().unwrap_or_default(),
            provider_credential_id: id.clone(),
        }),
        false,
        credential_error(&name),
    )
    .await?;
    Ok(Reply::body(
        StatusCode::OK,
        Applied {
            status: "applied".into(),
            credential: name,
            workflow_id: body.workflow_id,
            node: body.node_name,
            provider_credential_id: id,
            applied_at: Utc::now(),
        },
    )
    .at(outcome.position, outcome.version))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SyncQuery {
    /// The n8n connection credential (default `n8n-api`).
    #[param(max_length = 128)]
    pub connection: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncedNew {
    pub name: String,
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncedUpdate {
    pub name: String,
    pub changes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncReply {
    pub synced: usize,
    pub new: Vec<SyncedNew>,
    pub updated: Vec<SyncedUpdate>,
    /// True when n8n had more workflow pages than one sync reads.
    pub truncated: bool,
    pub synced_at: DateTime<Utc>,
}

/// Register in the vault every credential n8n's workflows use (provider `n8n`, no value: n8n
/// never returns one), and refresh the description and type of those already registered.
#[utoipa::path(post, path = "/sync/n8n", tag = "vault", security(("bearer" = [])),
    params(SyncQuery, params::Tenant),
    responses((status = 200, description = "Synced", body = SyncReply),
        AuthErrors,
        (status = 409, description = "The connection has no value yet", body = ErrorBody),
        (status = 410, description = "The connection's value was destroyed", body = ErrorBody),
        (status = 422, description = "No n8n connection", body = ErrorBody),
        (status = 502, description = "n8n refused or failed", body = ErrorBody)))]
async fn sync(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    min: MinPosition,
    Query(q): Query<SyncQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    ensure_tenant(&state, tenant).await?;
    // What is already registered is read from the read model: as of the caller's last write.
    min.wait(&state, &[VaultProjection::NAME]).await?;
    let n8n = client(
        &state,
        &command_context(&principal, &headers, None),
        tenant.0,
        q.connection.as_deref().unwrap_or(DEFAULT_CONNECTION),
    )
    .await?;
    let (found, truncated) = n8n.referenced_credentials().await.map_err(n8n_error)?;
    let mut reply = SyncReply {
        synced: found.len(),
        new: Vec::new(),
        updated: Vec::new(),
        truncated,
        synced_at: Utc::now(),
    };
    for f in found {
        let known: Option<(String,)> = sqlx::query_as(
            "SELECT name FROM vault_credentials WHERE tenant_id = $1 AND provider = 'n8n' AND provider_credential_id = $2",
        )
        .bind(tenant.0)
        .bind(&f.id)
        .fetch_optional(&state.pool)
        .await?;
        let description = format!("n8n credential `{}` ({})", f.name, f.credential_type);
        match known {
            Some((name,)) => {
                let (c, _, _) = load(&state, tenant.0, &name).await?;
                let mut settings = c.settings.clone();
                let mut changes = Vec::new();
                if settings.description != description {
                    settings.description = description;
                    changes.push("description".to_string());
                }
                if settings.metadata_text("n8n_credential_type") != Some(f.credential_type.as_str())
                {
                    settings.metadata.insert(
                        "n8n_credential_type".into(),
                        MetaValue::text(f.credential_type.clone()),
                    );
                    changes.push("metadata".to_string());
                }
                if changes.is_empty() || c.lifecycle != Lifecycle::Active {
                    continue;
                }
                let agg = aggregate::<CredentialAggregate>(tenant.0, name.as_str())?;
                execute::<CredentialAggregate>(
                    &state,
                    &principal,
                    &headers,
                    &agg,
                    &Command::Update {
                        settings,
                        fields: changes.clone(),
                        value: None,
                        now: Utc::now(),
                    },
                    false,
                    credential_error(&name),
                )
                .await?;
                reply.updated.push(SyncedUpdate { name, changes });
            }
            None => {
                let plain = n8n::vault_name(&f.name, &f.id);
                let mut suffixed = plain.clone();
                suffixed.truncate(100);
                suffixed = format!(
                    "{suffixed}-{}",
                    n8n::vault_name("", &f.id).trim_start_matches("n8n-")
                );
                let credential_type: String = f
                    .credential_type
                    .to_lowercase()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .take(64)
                    .collect();
                // The log decides whether a name is free: the plain name first, then one
                // suffixed with the n8n id when another credential holds it.
                for (attempt, name) in [plain, suffixed].into_iter().enumerate() {
                    let id = format!("cred_{}", Uuid::now_v7().simple());
                    let agg = aggregate::<CredentialAggregate>(tenant.0, name.as_str())?;
                    let created = state
                        .executor
                        .execute::<CredentialAggregate>(
                            &agg,
                            &Command::Create {
                                credential: NewCredential {
                                    id: id.clone(),
                                    name: name.clone(),
                                    credential_type: if credential_type.is_empty() {
                                        "n8n".into()
                                    } else {
                                        credential_type.clone()
                                    },
                                    provider: "n8n".into(),
                                    settings: Settings {
                                        description: description.clone(),
                                        provider_credential_id: Some(f.id.clone()),
                                        metadata: [(
                                            "n8n_credential_type".to_string(),
                                            MetaValue::text(f.credential_type.clone()),
                                        )]
                                        .into(),
                                        ..Settings::default()
                                    },
                                },
                                value: None,
                            },
                            &command_context(&principal, &headers, None),
                            true,
                        )
                        .await;
                    match created {
                        Ok(_) => {
                            reply.new.push(SyncedNew { name, id });
                            break;
                        }
                        Err(CommandError::Domain(CredentialError::NameTaken)) => {
                            let (c, _, _) = load(&state, tenant.0, &name).await?;
                            // Registered by an earlier sync the read model has not caught up with.
                            if c.settings.provider_credential_id.as_deref() == Some(f.id.as_str()) {
                                break;
                            }
                            if attempt == 1 {
                                return Err(credential_error(&name)(CredentialError::NameTaken));
                            }
                        }
                        Err(e) => return Err(e.into_api(credential_error(&name))),
                    }
                }
            }
        }
    }
    Ok(Reply::body(StatusCode::OK, reply))
}
