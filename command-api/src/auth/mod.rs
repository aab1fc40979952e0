//! Authentication into one `Principal`, and authorization against the route table.
//!
//! Credentials: a login JWT, an `acp_` API key or the bootstrap token in `Authorization:
//! Bearer`; an `acp_` key in `X-SecBeat-API-Key` (seed 002); an agent secret in
//! `X-Agent-Secret` (seed 004); the internal secret in `X-Internal-Secret` (seed 000). Every
//! credential presented must be valid, so a forged header never rides along on another's
//! authority. Secrets compare in constant time; no slow hash runs on the request path.

pub mod controls;
mod decisions;
pub mod grants;
pub mod passwords;
pub mod platform_routes;
pub mod route;
pub mod routes;
use aegis_runtime::tokens;

pub use routes::{access, Access, Addon, Permission, Route, PUBLIC, ROUTES};

use crate::error::ApiError;
use crate::error::IntoApi;
use crate::state::AppState;
use aegis_identity::agents::{AgentAggregate, AgentStatus};
use aegis_identity::api_keys::ApiKeyAggregate;
use aegis_identity::kill_switch::{self, KillSwitchAggregate};
use aegis_identity::permissions::Permissions;
use aegis_identity::users::{UserAggregate, UserStatus};
use aegis_identity::TenantId;
use aegis_kernel::Aggregate;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tokens::CredentialKind;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// Cross-tenant operator (seed 000's admin console): the bootstrap token.
    PlatformAdmin,
    /// Another Aegis service or a reactor (seed 000's "internal only").
    Internal,
    /// A tenant's user, by login JWT.
    User,
    /// A tenant's API key.
    ApiKey,
    /// A tenant's agent, by its secret.
    Agent,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::PlatformAdmin => "platform_admin",
            PrincipalKind::Internal => "internal",
            PrincipalKind::User => "user",
            PrincipalKind::ApiKey => "api_key",
            PrincipalKind::Agent => "agent",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// Who, within the kind: a user, key or agent id; `bootstrap` or `internal`.
    pub subject: String,
    /// The tenant the principal belongs to; none for platform admin and internal callers.
    pub home: Option<TenantId>,
    /// The tenant this request acts in: the home tenant, else `X-Tenant-ID`.
    pub tenant: Option<TenantId>,
    pub permissions: Permissions,
}

impl Principal {
    /// What a command this principal issues carries: its actor, the request's correlation id
    /// (a fresh one when it sent none), its retry id and the version it last read.
    pub fn command_context(
        &self,
        correlation_id: Option<String>,
        msg_id: Option<String>,
        if_match: Option<u64>,
    ) -> aegis_runtime::command::CommandContext {
        aegis_runtime::command::CommandContext {
            msg_id,
            if_match,
            ..aegis_runtime::command::CommandContext::acting(
                self.kind.as_str(),
                &self.subject,
                correlation_id,
            )
        }
    }

    /// Whose writes this principal's reads must reflect (`crate::consistency`).
    pub fn position_key(&self) -> String {
        aegis_runtime::positions::Positions::key(self.kind.as_str(), &self.subject)
    }

    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.permissions.contains(permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(permission.as_str()))
        }
    }

    /// The tenant this request acts in; tenant-scoped routes require it.
    pub fn tenant(&self) -> Result<TenantId, ApiError> {
        self.tenant
            .ok_or_else(|| ApiError::bad_request("the X-Tenant-ID header is required"))
    }

    /// A tenant-bound principal acts in its own tenant; `X-Tenant-ID`, when sent, must name it.
    fn acting_in(mut self, requested: Option<TenantId>) -> Result<Self, ApiError> {
        match (self.home, requested) {
            (Some(home), Some(r)) if home != r => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "tenant_mismatch",
                "X-Tenant-ID names another tenant than the credential's",
            )),
            (Some(home), _) => {
                self.tenant = Some(home);
                Ok(self)
            }
            (None, r) => {
                self.tenant = r;
                Ok(self)
            }
        }
    }

    fn platform(kind: PrincipalKind, subject: &str, permissions: Permissions) -> Self {
        Self {
            kind,
            subject: subject.into(),
            home: None,
            tenant: None,
            permissions,
        }
    }
}

/// Everything outside a tenant's reach belongs to platform admins and internal callers only.
pub fn platform_admin_permissions() -> Permissions {
    Permissions::all()
        .without(Permission::IncidentOpen)
        .without(Permission::AgentSelf)
        .without(Permission::SiemPush)
}

/// Internal callers (reactors, other services): incidents, containing agents (which
/// auto-response does), and pushing events to SIEMs.
pub fn internal_permissions() -> Permissions {
    Permissions::of(&[
        Permission::IncidentOpen,
        Permission::IncidentRead,
        Permission::IncidentUpdate,
        Permission::AgentRead,
        Permission::AgentQuarantine,
        Permission::AgentRevoke,
        Permission::SiemPush,
        Permission::MetricsRead,
    ])
}

/// Handlers read the principal the `authorize` middleware authenticated.
impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("missing credentials"))
    }
}

/// Authenticates and authorizes every matched route against the route table.
pub async fn authorize(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(path) = matched else {
        return next.run(req).await;
    };
    let route = match access(req.method().as_str(), path.as_str()) {
        Access::Public => return next.run(req).await,
        Access::Needs(route) => route,
        Access::Undeclared => {
            tracing::error!(method = %req.method(), path = path.as_str(), "route missing from the route table");
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this route declares no permission",
            )
            .into_response();
        }
    };
    let (mut parts, body) = req.into_parts();
    let principal = match authenticate(&parts, &state).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let decision = decisions::Asked::new(&route, &parts, &principal);
    if let Err(e) = principal.require(route.permission) {
        return decisions::denied(&state, decision, e.into_response()).await;
    }
    if !state.config.gitops_enabled && routes::GITOPS.contains(&path.as_str()) {
        return ApiError::not_found(
            "gitops integrations are turned off on this server (AEGIS_GITOPS_ENABLED)",
        )
        .into_response();
    }
    let meter = match controls::admit(&state, &principal, &route).await {
        Ok(meter) => meter,
        Err(e) => {
            let refused = controls::announce(&state, &principal, path.as_str(), e.into_response());
            return decisions::denied(&state, decision, refused).await;
        }
    };
    parts.extensions.insert(principal.clone());
    req = Request::from_parts(parts, body);
    let key = principal.position_key();
    let response = if crate::consistency::speculates(&state, &key, &req) {
        crate::consistency::read(&state, &key, req, next).await
    } else {
        next.run(req).await
    };
    if let Some(meter) = meter.filter(|_| response.status().is_success()) {
        controls::record(&state, &principal, meter).await;
    }
    if let Some(position) = crate::consistency::written(&response) {
        crate::consistency::remember(&state, &key, position).await;
    }
    let response = controls::announce(&state, &principal, path.as_str(), response);
    decisions::allowed(&state, decision, response).await
}

/// A credential or tenant header, sent at most once: with two copies, a proxy that reads the
/// last one and Aegis, which would read the first, could disagree about who is asking.
fn header<'a>(parts: &'a Parts, name: &str) -> Result<Option<&'a str>, ApiError> {
    if parts.headers.get_all(name).iter().nth(1).is_some() {
        return Err(ApiError::bad_request(format!(
            "the {name} header is sent more than once"
        )));
    }
    parts
        .headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request(format!("the {name} header is not valid text")))
        })
        .transpose()
}

fn eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let requested = header(parts, "x-tenant-id")?
        .map(|t| {
            Uuid::parse_str(t.trim())
                .map(TenantId)
                .map_err(|_| ApiError::bad_request("X-Tenant-ID must be a tenant UUID"))
        })
        .transpose()?;
    let config = &state.config;
    let internal = match header(parts, "x-internal-secret")? {
        Some(secret) => {
            let expected = config
                .internal_secret
                .as_ref()
                .map(|s| s.expose())
                .unwrap_or_default();
            if expected.is_empty() || !eq(secret, expected) {
                return Err(ApiError::unauthorized("invalid internal secret"));
            }
            Some(Principal::platform(
                PrincipalKind::Internal,
                "internal",
                internal_permissions(),
            ))
        }
        None => None,
    };
    let mut presented = Vec::new();
    if let Some(secret) = header(parts, "x-agent-secret")? {
        presented.push(agent(state, secret.trim()).await?);
    }
    if let Some(auth) = header(parts, "authorization")? {
        let Some(token) = auth.strip_prefix("Bearer ").map(str::trim) else {
            return Err(ApiError::unauthorized(
                "the Authorization header must be `Bearer <token>`",
            ));
        };
        presented.push(bearer(state, token).await?);
    }
    if let Some(key) = header(parts, "x-secbeat-api-key")? {
        presented.push(api_key(state, key.trim()).await?);
    }
    // Internal callers may forward a user's credential for context, never the other way round.
    let principal = match (internal, presented.len()) {
        (Some(internal), _) => internal,
        (None, 0) => {
            return Err(ApiError::unauthorized(
                "missing credentials: send Authorization: Bearer <token>",
            ))
        }
        (None, 1) => presented.remove(0),
        (None, _) => {
            return Err(ApiError::bad_request(
                "send one credential: Authorization, X-Agent-Secret or X-SecBeat-API-Key",
            ))
        }
    };
    principal.acting_in(requested)
}

async fn bearer(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    if tokens::is_api_key(token) {
        return api_key(state, token).await;
    }
    if token.matches('.').count() == 2 {
        return user(state, token).await;
    }
    let bootstrap = state
        .config
        .bootstrap_token
        .as_ref()
        .map(|s| s.expose())
        .unwrap_or_default();
    if bootstrap.is_empty() || !eq(token, bootstrap) {
        return Err(ApiError::unauthorized("invalid or expired token"));
    }
    Ok(Principal::platform(
        PrincipalKind::PlatformAdmin,
        "bootstrap",
        platform_admin_permissions(),
    ))
}

pub(crate) async fn lookup<A: Aggregate>(
    state: &AppState,
    tenant: Uuid,
    id: impl ToString,
) -> Result<A::State, ApiError> {
    let agg = aegis_runtime::runtime::address::<A>(tenant, id.to_string())?;
    state
        .directory
        .get::<A>(&agg)
        .await
        .map_err(|e| e.into_api(|e| ApiError::internal(&e)))
}

async fn user(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let claims = state
        .keyring
        .verify(token, chrono::Utc::now())
        .map_err(|e| ApiError::unauthorized(e.to_string()))?;
    let user = lookup::<UserAggregate>(state, claims.tid, claims.sub)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token's user does not exist"))?;
    if user.status != UserStatus::Active {
        return Err(ApiError::unauthorized("the account is disabled"));
    }
    if user.platform_admin {
        // Every cross-tenant right the bootstrap token has, acting in whichever tenant it
        // names (X-Tenant-ID); what it does is recorded under its own user id.
        return Ok(Principal::platform(
            PrincipalKind::PlatformAdmin,
            &user.id.to_string(),
            platform_admin_permissions(),
        ));
    }
    let permissions = grants::user_permissions(state, TenantId(claims.tid), &user).await?;
    Ok(Principal {
        kind: PrincipalKind::User,
        subject: user.id.to_string(),
        home: Some(TenantId(claims.tid)),
        tenant: None,
        permissions,
    })
}

pub(crate) async fn api_key(state: &AppState, key: &str) -> Result<Principal, ApiError> {
    let invalid = || ApiError::unauthorized("invalid API key");
    let (tenant, id) = tokens::parse(CredentialKind::ApiKey, key).ok_or_else(invalid)?;
    let found = lookup::<ApiKeyAggregate>(state, tenant, id)
        .await?
        .ok_or_else(invalid)?;
    if !tokens::same_digest(&state.keyring.digest(key), &found.digest) {
        return Err(invalid());
    }
    if found.revoked_at.is_some() {
        return Err(ApiError::unauthorized("the API key has been revoked"));
    }
    let creator = grants::creator_permissions(state, TenantId(tenant), &found.created_by).await?;
    Ok(Principal {
        kind: PrincipalKind::ApiKey,
        subject: id.to_string(),
        home: Some(TenantId(tenant)),
        tenant: None,
        permissions: found.scopes.intersect(creator),
    })
}

async fn agent(state: &AppState, secret: &str) -> Result<Principal, ApiError> {
    let invalid = || ApiError::unauthorized("invalid agent secret");
    let (tenant, id) = tokens::parse(CredentialKind::Agent, secret).ok_or_else(invalid)?;
    let found = lookup::<AgentAggregate>(state, tenant, id)
        .await?
        .ok_or_else(invalid)?;
    if !tokens::same_digest(&state.keyring.digest(secret), &found.digest) {
        return Err(invalid());
    }
    match found.status {
        AgentStatus::Active => {}
        AgentStatus::Revoked => return Err(ApiError::unauthorized("the agent has been revoked")),
        AgentStatus::Quarantined => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "agent_quarantined",
                "the agent is quarantined",
            ))
        }
    }
    let switch = lookup::<KillSwitchAggregate>(state, tenant, kill_switch::ID).await?;
    if switch.engaged {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "kill_switch_engaged",
            "the tenant's kill switch is engaged: every agent is refused until it is released",
        )
        .with("reason", switch.reason));
    }
    Ok(Principal {
        kind: PrincipalKind::Agent,
        subject: id.to_string(),
        home: Some(TenantId(tenant)),
        tenant: None,
        permissions: Permissions::of(&[Permission::AgentSelf]),
    })
}
