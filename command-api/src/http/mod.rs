//! The HTTP surface: one router per bounded context, merged here with the probes.

mod admission;
pub mod audit;
pub mod auto_response;
pub mod broker;
pub mod connections;
pub mod exposition;
pub mod extract;
pub mod identity;
pub mod incidents;
pub mod integrations;
pub mod openapi;
pub mod paged;
pub mod platform;
pub mod probes;
pub mod reply;
pub mod subscriptions;
pub mod threat_intel;
pub mod vault;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::error::IntoApi;
use crate::state::AppState;
use aegis_identity::{TenantAggregate, TenantId};
use aegis_runtime::command::CommandContext;
use aegis_streams::subject::PLATFORM_TENANT;
use aegis_streams::AggregateRef;
use axum::Router;
use extract::CommandHeaders;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

/// Every route with its OpenAPI operation: the two cannot drift apart because they are
/// registered together.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(identity::router())
        .merge(broker::router())
        .merge(audit::router())
        .merge(incidents::router())
        .merge(vault::router())
        .merge(auto_response::router())
        .merge(subscriptions::router())
        .merge(threat_intel::router())
        .merge(integrations::router())
        .merge(probes::router())
        .merge(openapi::router())
}

/// The OpenAPI document of every route, seed 003's rows included.
pub fn api_spec() -> utoipa::openapi::OpenApi {
    let mut api = routes().split_for_parts().1;
    platform::document(&mut api);
    api
}

pub fn router(state: AppState) -> Router {
    let (router, mut api) = routes().split_for_parts();
    let planned = platform::router(&api);
    platform::document(&mut api);
    openapi::publish(api);
    router
        .merge(planned)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authorize,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admission::admit_commands,
        ))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::consistency::mark_stale,
        ))
        .layer(axum::middleware::from_fn(platform::surface))
        .with_state(state)
}

/// Builds what a command carries besides itself.
pub fn command_context(
    principal: &Principal,
    headers: &CommandHeaders,
    msg_id: Option<String>,
) -> CommandContext {
    principal.command_context(headers.request_id.clone(), msg_id, headers.if_match)
}

/// The address of an aggregate; contexts and types are constants, so this cannot fail for
/// a non-empty id.
pub fn aggregate<A: aegis_kernel::Aggregate>(
    tenant: uuid::Uuid,
    id: impl Into<String>,
) -> Result<AggregateRef, ApiError> {
    Ok(aegis_runtime::runtime::address::<A>(tenant, id)?)
}

/// Refuses a tenant-scoped request for a tenant that does not exist (404, as for any
/// resource the caller cannot see).
pub async fn ensure_tenant(state: &AppState, tenant: TenantId) -> Result<(), ApiError> {
    if state
        .known_tenants
        .lock()
        .map(|k| k.contains(&tenant.0))
        .unwrap_or(false)
    {
        return Ok(());
    }
    let agg = aggregate::<TenantAggregate>(tenant.0, tenant.0.to_string())?;
    let (found, _) = state
        .executor
        .load::<TenantAggregate>(&agg)
        .await
        .map_err(|e| e.into_api(|e| ApiError::internal(&e)))?;
    if found.is_none() {
        return Err(ApiError::not_found(format!("tenant not found: {tenant}")));
    }
    if let Ok(mut known) = state.known_tenants.lock() {
        known.insert(tenant.0);
    }
    Ok(())
}

/// The tenant that owns platform-wide aggregates such as tenant name claims.
pub fn platform_tenant() -> uuid::Uuid {
    PLATFORM_TENANT
}

/// Executes one command as `principal`, mapping the refusals every command shares; `domain`
/// maps the decider's own. A version mismatch at version 0 means the aggregate does not exist
/// in this tenant, which is a 404 however the caller got the id.
pub async fn execute<A: aegis_kernel::Aggregate>(
    state: &AppState,
    principal: &Principal,
    headers: &CommandHeaders,
    agg: &AggregateRef,
    command: &A::Command,
    assume_new: bool,
    domain: impl FnOnce(A::Error) -> ApiError,
) -> Result<aegis_runtime::command::Outcome<A::State>, ApiError> {
    let ctx = command_context(principal, headers, None);
    state
        .executor
        .execute::<A>(agg, command, &ctx, assume_new)
        .await
        .map_err(|e| match e {
            aegis_runtime::command::CommandError::VersionMismatch { current: 0 } => {
                ApiError::not_found("not found")
            }
            e => e.into_api(domain),
        })
}

/// The current state of an aggregate in the caller's tenant, from the log.
pub async fn current<A: aegis_kernel::Aggregate>(
    state: &AppState,
    tenant: TenantId,
    id: impl Into<String>,
) -> Result<(A::State, u64, u64), ApiError> {
    state
        .current::<A>(tenant.0, id)
        .await
        .map_err(|e| e.into_api(|e| ApiError::internal(&e)))
}
