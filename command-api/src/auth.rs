//! Authentication into one `Principal`, and the permission table.
//!
//! Credentials known so far: the bootstrap token (`Authorization: Bearer`, platform admin) and
//! the internal secret (`X-Internal-Secret`, service-to-service). Both compare in constant
//! time. `X-Tenant-ID` names the tenant a request acts in.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::domain::identity::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    TenantsCreate,
    TenantsRead,
    IncidentsOpen,
    IncidentsRead,
    IncidentsUpdate,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::TenantsCreate => "tenants:create",
            Permission::TenantsRead => "tenants:read",
            Permission::IncidentsOpen => "incidents:open",
            Permission::IncidentsRead => "incidents:read",
            Permission::IncidentsUpdate => "incidents:update",
        }
    }
}

/// Every route and the permission it needs: the one table the handlers, the 403 body and the
/// tests read.
pub const ROUTES: &[(&str, &str, Permission)] = &[
    ("POST", "/admin/tenants", Permission::TenantsCreate),
    ("GET", "/admin/tenants", Permission::TenantsRead),
    ("POST", "/incidents", Permission::IncidentsOpen),
    ("GET", "/incidents", Permission::IncidentsRead),
    ("GET", "/incidents/summary", Permission::IncidentsRead),
    ("GET", "/incidents/{id}", Permission::IncidentsRead),
    ("PATCH", "/incidents/{id}", Permission::IncidentsUpdate),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// Cross-tenant operator (seed 000's admin console).
    PlatformAdmin,
    /// Another Aegis service or a reactor (seed 000's "internal only").
    Internal,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::PlatformAdmin => "platform_admin",
            PrincipalKind::Internal => "internal",
        }
    }

    fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            PrincipalKind::PlatformAdmin => {
                &[TenantsCreate, TenantsRead, IncidentsRead, IncidentsUpdate]
            }
            PrincipalKind::Internal => &[IncidentsOpen, IncidentsRead, IncidentsUpdate],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub subject: String,
    /// From `X-Tenant-ID`.
    pub tenant: Option<TenantId>,
}

impl Principal {
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.kind.permissions().contains(&permission) {
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
}

fn eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn header<'a>(parts: &'a Parts, name: &str) -> Result<Option<&'a str>, ApiError> {
    parts
        .headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request(format!("the {name} header is not valid text")))
        })
        .transpose()
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let tenant = header(parts, "x-tenant-id")?
            .map(|t| {
                Uuid::parse_str(t.trim())
                    .map(TenantId)
                    .map_err(|_| ApiError::bad_request("X-Tenant-ID must be a tenant UUID"))
            })
            .transpose()?;
        let config = &state.config;
        // Every credential presented must be valid: a bad one next to a good one is refused,
        // so a stray or forged header can never ride along on another's authority.
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
                Some(Principal {
                    kind: PrincipalKind::Internal,
                    subject: "internal".into(),
                    tenant,
                })
            }
            None => None,
        };
        let bearer = match header(parts, "authorization")? {
            Some(auth) => {
                let Some(token) = auth.strip_prefix("Bearer ").map(str::trim) else {
                    return Err(ApiError::unauthorized(
                        "the Authorization header must be `Bearer <token>`",
                    ));
                };
                let bootstrap = config
                    .bootstrap_token
                    .as_ref()
                    .map(|s| s.expose())
                    .unwrap_or_default();
                if bootstrap.is_empty() || !eq(token, bootstrap) {
                    return Err(ApiError::unauthorized("invalid or expired token"));
                }
                Some(Principal {
                    kind: PrincipalKind::PlatformAdmin,
                    subject: "bootstrap".into(),
                    tenant,
                })
            }
            None => None,
        };
        // With both valid, the internal secret decides: internal callers may forward a user's
        // bearer for context, never the other way round.
        internal.or(bearer).ok_or_else(|| {
            ApiError::unauthorized("missing credentials: send Authorization: Bearer <token>")
        })
    }
}
