//! The route table: every authenticated route and the one permission it needs. The
//! `authorize` middleware enforces it, the 403 body names the permission from it, and the
//! authorization matrix test is generated from it, so a route cannot skip any of the three.

pub use crate::domain::identity::permissions::Permission;

/// Routes anyone may call: probes, the API document and login.
pub const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("POST", "/api/v1/auth/login"),
];

pub const ROUTES: &[(&str, &str, Permission)] = {
    use Permission::*;
    &[
        ("POST", "/admin/tenants", TenantCreate),
        ("GET", "/admin/tenants", TenantRead),
        ("POST", "/incidents", IncidentOpen),
        ("GET", "/incidents", IncidentRead),
        ("GET", "/incidents/summary", IncidentRead),
        ("GET", "/incidents/{id}", IncidentRead),
        ("PATCH", "/incidents/{id}", IncidentUpdate),
        ("POST", "/api/v1/users", UserEdit),
        ("GET", "/api/v1/users", UserRead),
        ("GET", "/api/v1/users/{id}", UserRead),
        ("PATCH", "/api/v1/users/{id}", UserEdit),
        ("GET", "/api/v1/users/{id}/roles", UserRoleRead),
        ("POST", "/api/v1/roles", RoleEdit),
        ("GET", "/api/v1/roles", RoleRead),
        ("GET", "/api/v1/roles/{id}", RoleRead),
        ("PUT", "/api/v1/roles/{id}/permissions", RoleEdit),
        ("DELETE", "/api/v1/roles/{id}", RoleEdit),
        ("POST", "/api/v1/user-roles", UserRoleEdit),
        ("GET", "/api/v1/user-roles", UserRoleRead),
        ("DELETE", "/api/v1/user-roles/{id}", UserRoleEdit),
        ("GET", "/api/v1/permissions", PermissionRead),
        ("POST", "/api-keys", ApiKeyCreate),
        ("GET", "/api-keys", ApiKeyRead),
        ("GET", "/api-keys/{id}", ApiKeyRead),
        ("DELETE", "/api-keys/{id}", ApiKeyRevoke),
        ("POST", "/api/v1/agents", AgentMint),
        ("GET", "/api/v1/agents", AgentRead),
        ("POST", "/api/v1/agents/{id}/revoke", AgentRevoke),
        ("POST", "/api/v1/agents/{id}/quarantine", AgentQuarantine),
        ("POST", "/api/v1/agents/{id}/heartbeat", AgentSelf),
        ("GET", "/api/v1/audit-events", AuditRead),
        ("GET", "/audit/log", AuditRead),
    ]
};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Needs(Permission),
    /// Not in the table: refused, so a route added without a line here fails closed.
    Undeclared,
}

pub fn access(method: &str, path: &str) -> Access {
    if PUBLIC.iter().any(|(m, p)| *m == method && *p == path) {
        return Access::Public;
    }
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map_or(Access::Undeclared, |(_, _, perm)| Access::Needs(*perm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for (m, p) in PUBLIC
            .iter()
            .copied()
            .chain(ROUTES.iter().map(|(m, p, _)| (*m, *p)))
        {
            assert!(seen.insert((m, p)), "{m} {p} declared twice");
        }
        assert_eq!(access("GET", "/nope"), Access::Undeclared);
        assert_eq!(access("POST", "/api/v1/auth/login"), Access::Public);
    }
}
