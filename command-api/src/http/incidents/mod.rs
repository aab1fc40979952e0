//! Incident routes (seed 000): open (internal only) and update here; list, detail and summary
//! in `queries`.

use super::extract::{CommandHeaders, Json, UuidPath};
use super::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use super::reply::{idempotent, Data, Reply};
use super::{aggregate, command_context, ensure_tenant};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::error::IntoApi;
use crate::idempotency::IdempotencyKey;
use crate::state::AppState;
use aegis_incidents::{
    Command, IncidentAggregate, IncidentError, IncidentId, NewIncident, Severity, Status,
};
use aegis_incidents_services::{OpenFailure, Opened};
use aegis_projectors::incidents::IncidentsProjection;
use aegis_projectors::Projection;
use aegis_runtime::command::CommandError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

mod queries;

pub use queries::{IncidentRow, Summary, SummaryReply};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queries::list, open))
        .routes(routes!(queries::summary))
        .routes(routes!(queries::detail, update))
}

/// The open incident that already holds the dedup key.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeduplicatedReply {
    pub data: IncidentRow,
    pub deduplicated: bool,
}

const READ_MODELS: &[&str] = &[IncidentsProjection::NAME];

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenBody {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    #[schema(value_type = Severity)]
    pub severity: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub dedup_key: Option<String>,
}

fn text(
    field: &str,
    value: Option<String>,
    max: usize,
    required: bool,
) -> Result<Option<String>, ApiError> {
    let value = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    match value {
        None if required => Err(ApiError::validation(field, format!("{field} is required"))),
        Some(v) if v.chars().count() > max => Err(ApiError::validation(
            field,
            format!("{field} must be at most {max} characters"),
        )),
        Some(v) if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            Err(ApiError::validation(
                field,
                format!("{field} must not contain control characters"),
            ))
        }
        v => Ok(v),
    }
}

fn severity(raw: &str) -> Result<Severity, ApiError> {
    Severity::parse(raw).ok_or_else(|| {
        ApiError::validation(
            "severity",
            format!("severity must be one of {}", names(Severity::ALL)),
        )
        .with("allowed", names_json(Severity::ALL))
    })
}

fn status(raw: &str) -> Result<Status, ApiError> {
    Status::parse(raw).ok_or_else(|| {
        ApiError::validation(
            "status",
            format!("status must be one of {}", names(Status::ALL)),
        )
        .with("allowed", names_json(Status::ALL))
    })
}

fn names<T: std::fmt::Display>(all: &[T]) -> String {
    all.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn names_json<T: std::fmt::Display>(all: &[T]) -> serde_json::Value {
    all.iter().map(|s| json!(s.to_string())).collect()
}

impl OpenBody {
    fn validate(self, id: IncidentId) -> Result<NewIncident, ApiError> {
        Ok(NewIncident {
            id,
            severity: severity(&self.severity)?,
            title: text("title", Some(self.title), 200, true)?.unwrap_or_default(),
            source: text("source", self.source, 100, false)?.unwrap_or_else(|| "api".into()),
            description: text("description", self.description, 10_000, false)?.unwrap_or_default(),
            agent_id: text("agent_id", self.agent_id, 200, false)?,
            dedup_key: text("dedup_key", self.dedup_key, 200, false)?,
        })
    }
}

fn incident_error(e: IncidentError) -> ApiError {
    match e {
        IncidentError::NotFound => ApiError::not_found("incident not found"),
        IncidentError::AlreadyExists => ApiError::conflict("incident already exists"),
        IncidentError::IllegalTransition { from, to, allowed } => ApiError::conflict(format!(
            "an incident cannot move from {from} to {to}; from {from} it can move to: {}",
            names(allowed)
        ))
        .with("current_status", from.as_str())
        .with("allowed", names_json(allowed)),
    }
}

/// Open an incident (internal only). A `dedup_key` held by an active incident returns that one.
#[utoipa::path(post, path = "/incidents", tag = "incidents", security(("internal_secret" = [])),
    params(params::Tenant, params::Idempotency), request_body = OpenBody,
    responses(
        (status = 201, description = "Opened", body = Data<IncidentRow>,
            headers(("Aegis-Position" = u64, description = "Log position of the commit"), ("ETag" = String))),
        (status = 200, description = "An active incident already holds the dedup key", body = DeduplicatedReply),
        AuthErrors,
        (status = 404, description = "Unknown tenant", body = ErrorBody),
        BodyErrors,
    ))]
async fn open(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<OpenBody>,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant()?;
    let fingerprint = serde_json::to_vec(&body).unwrap_or_default();
    let new = body.validate(IncidentId(Uuid::now_v7()))?;
    ensure_tenant(&state, tenant).await?;
    let key = headers
        .idempotency_key
        .as_deref()
        .map(|k| {
            IdempotencyKey::new(
                k,
                &["incidents.open", &tenant.to_string(), &principal.subject],
                &fingerprint,
            )
        })
        .transpose()?;
    let shared = state.clone();
    idempotent(&shared, key, |key| async move {
        let ctx = |purpose: &str| {
            command_context(
                &principal,
                &headers,
                key.as_ref().map(|k| k.msg_id(purpose)),
            )
        };
        match aegis_incidents_services::open(&state, ctx, tenant.0, new).await? {
            Opened::Deduplicated(existing) => {
                let mut reply = Reply::data(StatusCode::OK, &existing).at(0, existing.version);
                reply.body["deduplicated"] = true.into();
                reply.position = None;
                Ok(reply)
            }
            Opened::New(outcome) => {
                let incident = outcome
                    .state
                    .ok_or_else(|| ApiError::internal(&IncidentError::NotFound))?;
                Ok(
                    Reply::data(StatusCode::CREATED, incident)
                        .at(outcome.position, outcome.version),
                )
            }
        }
    })
    .await
}

impl From<OpenFailure> for ApiError {
    fn from(e: OpenFailure) -> Self {
        let unreachable_dedup = || {
            ApiError::conflict("the dedup key changed while it was being claimed; retry")
                .with("retry_after_ms", 50)
        };
        match e {
            OpenFailure::Incident(e) => e.into_api(incident_error),
            OpenFailure::Dedup(e) => e.into_api(|_| unreachable_dedup()),
            OpenFailure::Contended => {
                ApiError::conflict("too many concurrent opens with this dedup_key; retry")
                    .with("retry_after_ms", 100)
            }
        }
    }
}

/// Deserializes a present-but-null field as `Some(None)`, so `"assigned_to": null` unassigns.
fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    #[serde(default)]
    #[schema(value_type = Option<Status>)]
    pub status: Option<String>,
    /// A name to assign, or null to unassign.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub assigned_to: Option<Option<String>>,
    #[serde(default)]
    pub actions_taken: Option<Vec<String>>,
}

impl UpdateBody {
    fn validate(self) -> Result<Command, ApiError> {
        if self.status.is_none() && self.assigned_to.is_none() && self.actions_taken.is_none() {
            return Err(ApiError::validation(
                "body",
                "send at least one of status, assigned_to, actions_taken",
            ));
        }
        let status = self.status.as_deref().map(status).transpose()?;
        let assigned_to = match self.assigned_to {
            Some(a) => Some(text("assigned_to", a, 200, false)?),
            None => None,
        };
        let actions = self.actions_taken.unwrap_or_default();
        if actions.len() > 50 {
            return Err(ApiError::validation(
                "actions_taken",
                "at most 50 actions per update",
            ));
        }
        let actions_taken = actions
            .into_iter()
            .map(|a| text("actions_taken", Some(a), 1_000, true).map(Option::unwrap_or_default))
            .collect::<Result<_, _>>()?;
        Ok(Command::Update {
            status,
            assigned_to,
            actions_taken,
        })
    }
}

/// Change status (lifecycle), assignee, or append actions taken.
#[utoipa::path(patch, path = "/incidents/{id}", tag = "incidents", security(("bearer" = []), ("internal_secret" = [])),
    params(("id" = Uuid, Path), params::Tenant, params::Idempotency, params::IfMatch), request_body = UpdateBody,
    responses(
        (status = 200, description = "Updated", body = Data<IncidentRow>,
            headers(("Aegis-Position" = u64), ("ETag" = String))),
        AuthErrors,
        (status = 404, description = "No such incident in this tenant", body = ErrorBody),
        (status = 409, description = "Illegal transition (names the allowed ones) or stale If-Match", body = ErrorBody),
        BodyErrors,
    ))]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
    Json(body): Json<UpdateBody>,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant()?;
    let fingerprint = serde_json::to_vec(&body).unwrap_or_default();
    let command = body.validate()?;
    let key = headers
        .idempotency_key
        .as_deref()
        .map(|k| {
            IdempotencyKey::new(
                k,
                &[
                    "incidents.update",
                    &tenant.to_string(),
                    &id.to_string(),
                    &principal.subject,
                ],
                &fingerprint,
            )
        })
        .transpose()?;
    let shared = state.clone();
    idempotent(&shared, key, |key| async move {
        let agg = aggregate::<IncidentAggregate>(tenant.0, id.to_string())?;
        let ctx = command_context(
            &principal,
            &headers,
            key.as_ref().map(|k| k.msg_id("incident")),
        );
        let outcome = state
            .executor
            .execute::<IncidentAggregate>(&agg, &command, &ctx, false)
            .await
            .map_err(|e| match e {
                // An incident the tenant cannot see does not exist for it.
                CommandError::VersionMismatch { current: 0 } => {
                    ApiError::not_found("incident not found")
                }
                e => e.into_api(incident_error),
            })?;
        let incident = outcome
            .state
            .ok_or_else(|| ApiError::not_found("incident not found"))?;
        Ok(Reply::data(StatusCode::OK, incident).at(outcome.position, outcome.version))
    })
    .await
}
