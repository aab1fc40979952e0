//! `GET /audit/reconstruct`: a resource as it was at a moment, folded from its own events by
//! the deciders' `evolve` (the code the command side runs), with the events that led there.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{max_chars, Query};
use crate::http::identity::{
    agents::AgentView, api_keys::KeyView, roles::RoleView, tenants::TenantView, users::UserView,
};
use crate::http::openapi::{params, AuthErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::state::AppState;
use aegis_identity::agents::AgentAggregate;
use aegis_identity::api_keys::ApiKeyAggregate;
use aegis_identity::roles::RoleAggregate;
use aegis_identity::usage::UsageAggregate;
use aegis_identity::users::UserAggregate;
use aegis_identity::TenantAggregate;
use aegis_incidents::IncidentAggregate;
use aegis_kernel::{occurred_at, Aggregate};
use aegis_streams::{AggregateRef, Expected, StoredCommit};
use aegis_vault::CredentialAggregate;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// How the API shows an aggregate's state: the same views its own routes answer with, so
/// nothing a route hides (password hashes, key digests) appears here either.
trait Reconstruct: Aggregate {
    fn view(tenant: Uuid, state: &Self::State) -> Value;
}

fn json_of(v: impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl Reconstruct for IncidentAggregate {
    fn view(_: Uuid, s: &Self::State) -> Value {
        s.as_ref().map_or(Value::Null, json_of)
    }
}
impl Reconstruct for UserAggregate {
    fn view(tenant: Uuid, s: &Self::State) -> Value {
        s.as_ref()
            .map_or(Value::Null, |u| json_of(UserView::of(tenant, u)))
    }
}
impl Reconstruct for RoleAggregate {
    fn view(_: Uuid, s: &Self::State) -> Value {
        s.as_ref().map_or(Value::Null, |r| {
            let mut v = json_of(RoleView::custom(r));
            v["deleted"] = json!(r.deleted);
            v
        })
    }
}
impl Reconstruct for ApiKeyAggregate {
    fn view(_: Uuid, s: &Self::State) -> Value {
        s.as_ref().map_or(Value::Null, |k| json_of(KeyView::of(k)))
    }
}
impl Reconstruct for AgentAggregate {
    fn view(_: Uuid, s: &Self::State) -> Value {
        s.as_ref()
            .map_or(Value::Null, |a| json_of(AgentView::of(a)))
    }
}
impl Reconstruct for TenantAggregate {
    fn view(_: Uuid, s: &Self::State) -> Value {
        s.as_ref()
            .map_or(Value::Null, |t| json_of(TenantView::of(t)))
    }
}
impl Reconstruct for UsageAggregate {
    fn view(_: Uuid, used: &u64) -> Value {
        json!({ "used": used })
    }
}

impl Reconstruct for CredentialAggregate {
    /// Settings and version history; each version's value only as `sealed` (the handler
    /// turns it into `shredded` once the credential's key is gone).
    fn view(_: Uuid, s: &Self::State) -> Value {
        s.as_ref().map_or(Value::Null, |c| {
            json!({
                "id": c.id,
                "name": c.name,
                "credential_type": c.credential_type,
                "provider": c.provider,
                "lifecycle": c.lifecycle,
                "description": c.settings.description,
                "expires_at": c.settings.expires_at,
                "rotation_enabled": c.settings.rotation_enabled,
                "rotation_strategy": c.settings.rotation_strategy,
                "rotator": c.settings.rotator.kind(),
                "tags": c.settings.tags,
                "metadata": c.settings.metadata,
                "version": c.version(),
                "versions": c.versions.iter().map(|v| json!({
                    "version": v.version,
                    "reason": v.reason,
                    "created_at": v.created_at,
                    "restored_from": v.restored_from,
                    "value": "sealed",
                })).collect::<Vec<_>>(),
            })
        })
    }
}

type Folder = fn(Uuid, &[StoredCommit]) -> Result<(Value, bool), ApiError>;

fn fold<A: Reconstruct>(tenant: Uuid, commits: &[StoredCommit]) -> Result<(Value, bool), ApiError> {
    let mut state = A::State::default();
    for env in commits.iter().flat_map(|c| &c.events) {
        state = A::evolve(state, &A::decode(env)?, env);
    }
    Ok((A::view(tenant, &state), !commits.is_empty()))
}

/// Every resource type reconstruct knows: its aggregate name, context and fold.
pub const RESOURCES: &[(&str, &str, Folder)] = &[
    (
        "incident",
        IncidentAggregate::CONTEXT,
        fold::<IncidentAggregate>,
    ),
    ("user", UserAggregate::CONTEXT, fold::<UserAggregate>),
    ("role", RoleAggregate::CONTEXT, fold::<RoleAggregate>),
    ("api_key", ApiKeyAggregate::CONTEXT, fold::<ApiKeyAggregate>),
    ("agent", AgentAggregate::CONTEXT, fold::<AgentAggregate>),
    ("tenant", TenantAggregate::CONTEXT, fold::<TenantAggregate>),
    ("usage", UsageAggregate::CONTEXT, fold::<UsageAggregate>),
    (
        "credential",
        CredentialAggregate::CONTEXT,
        fold::<CredentialAggregate>,
    ),
];

/// `<type>/<id>` of this tenant, as an address in the log.
pub fn resource(tenant: Uuid, raw: &str) -> Result<(AggregateRef, Folder), ApiError> {
    let unknown = || {
        ApiError::validation(
            "resource",
            format!(
                "resource must be <type>/<id> with type one of {}",
                RESOURCES.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
            ),
        )
    };
    let (kind, id) = raw.split_once('/').ok_or_else(unknown)?;
    let (name, context, fold) = RESOURCES.iter().find(|r| r.0 == kind).ok_or_else(unknown)?;
    if id.is_empty() {
        return Err(unknown());
    }
    let agg = AggregateRef::new(tenant, context, name, id)
        .map_err(|e| ApiError::validation("resource", e.to_string()))?;
    Ok((agg, *fold))
}

/// A credential's sealed values whose key is destroyed show as `shredded`: the log still
/// holds the ciphertext, and nothing can open it any more.
async fn shredded(state: &AppState, tenant: Uuid, view: &mut Value) -> Result<(), ApiError> {
    let (Some(id), Some(versions)) = (
        view.get("id").and_then(Value::as_str).map(str::to_string),
        view.get_mut("versions").and_then(Value::as_array_mut),
    ) else {
        return Ok(());
    };
    let held = state
        .keys
        .holds(tenant, &id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if !held {
        for v in versions.iter_mut() {
            v["value"] = json!("shredded");
        }
        view["shredded"] = json!(true);
    }
    Ok(())
}

/// A moment: a log position or an RFC 3339 time.
#[derive(Debug, Clone, Copy)]
pub enum Moment {
    Position(u64),
    Time(DateTime<Utc>),
}

impl Moment {
    pub fn parse(field: &str, raw: &str) -> Result<Moment, ApiError> {
        if let Ok(p) = raw.parse::<u64>() {
            return Ok(Moment::Position(p));
        }
        DateTime::parse_from_rfc3339(raw)
            .map(|t| Moment::Time(t.with_timezone(&Utc)))
            .map_err(|_| {
                ApiError::validation(
                    field,
                    format!("{field} must be a log position or an RFC 3339 time"),
                )
            })
    }

    fn includes(&self, commit: &StoredCommit) -> bool {
        match self {
            Moment::Position(p) => commit.position <= *p,
            Moment::Time(t) => commit.events.first().is_none_or(|e| occurred_at(e) <= *t),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReconstructQuery {
    /// `<type>/<id>`, e.g. `incident/0190…`; types: incident, user, role, api_key, agent,
    /// tenant, usage, credential (by name).
    #[param(max_length = 300)]
    pub resource: String,
    /// A log position or an RFC 3339 time; default now.
    #[param(max_length = 64)]
    pub as_of: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEvent {
    pub position: u64,
    pub index: usize,
    pub event_id: String,
    pub event_type: String,
    pub version: u64,
    pub actor_kind: String,
    pub actor: String,
    pub correlation_id: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reconstruction {
    pub resource: String,
    /// Whether the resource existed at that moment.
    pub exists: bool,
    /// Its state then, as its own routes show it; null before it existed.
    #[schema(value_type = Object)]
    pub state: Value,
    /// Version and log position of the last event folded.
    pub version: u64,
    pub position: u64,
    pub events: Vec<HistoryEvent>,
}

/// A resource as it was at a moment, with the events that made it so.
#[utoipa::path(get, path = "/audit/reconstruct", tag = "audit", security(("bearer" = [])),
    params(ReconstructQuery, params::Tenant),
    responses(
        (status = 200, description = "The state then and its history", body = Reconstruction),
        AuthErrors,
        (status = 404, description = "The resource has no history in this tenant", body = ErrorBody),
        (status = 422, description = "Unknown resource type or bad as_of", body = ErrorBody),
    ))]
pub(super) async fn reconstruct(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<ReconstructQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    max_chars("resource", Some(&q.resource), 300)?;
    max_chars("as_of", q.as_of.as_deref(), 64)?;
    let (agg, fold) = resource(tenant.0, &q.resource)?;
    let as_of = q
        .as_of
        .as_deref()
        .map(|r| Moment::parse("as_of", r))
        .transpose()?;
    let history = state.executor.store().load(&agg, Expected::NEW).await?;
    if history.commits.is_empty() {
        // Never existed in this tenant (another tenant's id included).
        return Err(ApiError::not_found(format!(
            "no history for {}",
            q.resource
        )));
    }
    let commits: Vec<StoredCommit> = history
        .commits
        .into_iter()
        .take_while(|c| as_of.is_none_or(|m| m.includes(c)))
        .collect();
    let (mut view, exists) = fold(tenant.0, &commits)?;
    shredded(&state, tenant.0, &mut view).await?;
    let events: Vec<HistoryEvent> = commits
        .iter()
        .flat_map(|c| {
            c.events.iter().enumerate().map(|(index, e)| {
                let actor = e.actor.clone().unwrap_or_default();
                HistoryEvent {
                    position: c.position,
                    index,
                    event_id: e.event_id.clone(),
                    event_type: e.event_type.clone(),
                    version: e.aggregate_version,
                    actor_kind: actor.kind,
                    actor: actor.subject,
                    correlation_id: e.correlation_id.clone(),
                    occurred_at: occurred_at(e),
                }
            })
        })
        .collect();
    Ok(Reply::body(
        StatusCode::OK,
        Reconstruction {
            resource: q.resource,
            exists: exists && !view.is_null(),
            state: view,
            version: events.last().map_or(0, |e| e.version),
            position: events.last().map_or(0, |e| e.position),
            events,
        },
    ))
}
