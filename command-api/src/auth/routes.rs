//! The route table: every authenticated route, the one permission it needs, and seed 003's
//! controls it is subject to (the add-on it needs, the billable operation it meters). The
//! `authorize` middleware enforces it, the 403 body names the permission from it, and the
//! authorization matrix test is generated from it, so a route cannot skip any of them.

pub use super::route::Route;
pub use aegis_identity::controls::Addon;
pub use aegis_identity::permissions::Permission;

/// Routes anyone may call: probes, the API document and login.
pub const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("POST", "/api/v1/auth/login"),
];

/// Seed 004's GitOps routes: while `AEGIS_GITOPS_ENABLED` is off they answer 404 to anyone
/// allowed to call them, before their body is read.
pub const GITOPS: &[&str] = &[
    "/api/v1/argocd-endpoints",
    "/api/v1/argocd-endpoints/{id}",
    "/api/v1/argocd-endpoints/{id}/enabled",
    "/api/v1/argocd-endpoints/{id}/discovered-apps",
    "/api/v1/gitops-app-mappings",
    "/api/v1/gitops-app-mappings/{id}",
    "/api/v1/requests/{id}/gitops",
];

const fn r(method: &'static str, path: &'static str, permission: Permission) -> Route {
    Route {
        method,
        path,
        permission,
        addons: [None, None],
        meter: None,
        controls: 0,
    }
}

/// Every authenticated route: seed 000, 001 and 004's (`ROUTES`), then seed 003's.
pub fn all() -> impl Iterator<Item = &'static Route> {
    ROUTES
        .iter()
        .chain(super::platform_routes::PLATFORM.iter().map(|p| &p.route))
}

pub const ROUTES: &[Route] = {
    use Permission::*;
    &[
        // Metrics name every tenant: scraped on AEGIS_METRICS_ADDR, or here with a credential.
        r("GET", "/metrics", MetricsRead),
        r("POST", "/admin/tenants", TenantCreate),
        r("GET", "/admin/tenants", TenantRead),
        r(
            "PUT",
            "/admin/users/{id}/platform-admin",
            PlatformAdminGrant,
        ),
        r("GET", "/admin/tenants/{id}", TenantRead),
        r("PUT", "/admin/tenants/{id}/plan", TenantUpdate),
        r("POST", "/admin/tenants/{id}/destroy-key", TenantEraseKey),
        r("POST", "/incidents", IncidentOpen),
        r("GET", "/incidents", IncidentRead),
        r("GET", "/incidents/summary", IncidentRead),
        r("GET", "/incidents/{id}", IncidentRead),
        r("PATCH", "/incidents/{id}", IncidentUpdate),
        r("POST", "/api/v1/users", UserEdit).metered("user.create"),
        r("GET", "/api/v1/users", UserRead),
        r("GET", "/api/v1/users/{id}", UserRead),
        r("PATCH", "/api/v1/users/{id}", UserEdit),
        r("GET", "/api/v1/users/{id}/roles", UserRoleRead),
        r("POST", "/api/v1/roles", RoleEdit),
        r("GET", "/api/v1/roles", RoleRead),
        r("GET", "/api/v1/roles/{id}", RoleRead),
        r("PUT", "/api/v1/roles/{id}/permissions", RoleEdit),
        r("DELETE", "/api/v1/roles/{id}", RoleEdit),
        r("POST", "/api/v1/user-roles", UserRoleEdit),
        r("GET", "/api/v1/user-roles", UserRoleRead),
        r("DELETE", "/api/v1/user-roles/{id}", UserRoleEdit),
        r("GET", "/api/v1/permissions", PermissionRead),
        r("POST", "/api-keys", ApiKeyCreate).metered("api_key.create"),
        r("GET", "/api-keys", ApiKeyRead),
        r("GET", "/api-keys/{id}", ApiKeyRead),
        r("DELETE", "/api-keys/{id}", ApiKeyRevoke),
        r("POST", "/api/v1/agents", AgentMint).metered("agent.mint"),
        r("GET", "/api/v1/agents", AgentRead),
        r("POST", "/api/v1/agents/{id}/revoke", AgentRevoke),
        r("POST", "/api/v1/agents/{id}/quarantine", AgentQuarantine),
        r("POST", "/api/v1/agents/{id}/release", AgentQuarantine),
        r("POST", "/api/v1/agents/{id}/heartbeat", AgentSelf),
        r("PUT", "/api/v1/agents/{id}/public-key", AgentSelf),
        r("POST", "/api/v1/agents/{id}/dek", AgentSelf),
        r("POST", "/api/v1/agents/{id}/jobs/claim", AgentSelf),
        r(
            "POST",
            "/api/v1/agents/{id}/jobs/{job_id}/complete",
            AgentSelf,
        ),
        r("POST", "/api/v1/jobs", JobEnqueue),
        r("POST", "/api/v1/agents/{id}/secrets/bulk", AgentSelf),
        r("POST", "/api/v1/agents/{id}/wraps", AgentSelf),
        r("GET", "/api/v1/agents/{id}/wraps/{wrap_id}", AgentSelf),
        r("HEAD", "/api/v1/agents/{id}/wraps/{wrap_id}", AgentSelf),
        r("POST", "/api/v1/requests", SecretRequest),
        r("POST", "/api/v1/requests/read", SecretRequest),
        r("GET", "/api/v1/requests", RequestRead),
        r("GET", "/api/v1/requests/{id}", RequestRead),
        r("POST", "/api/v1/requests/{id}/approve", SecretApprove),
        r("POST", "/api/v1/requests/{id}/reject", SecretApprove),
        r("POST", "/api/v1/requests/{id}/cancel", SecretRequest),
        r("POST", "/api/v1/requests/{id}/break-glass", SecretRequest),
        r("GET", "/api/v1/requests/{id}/wraps", SecretRequest),
        r(
            "GET",
            "/api/v1/requests/{id}/wraps/{wrap_id}",
            SecretRequest,
        ),
        r("POST", "/api/v1/workflows", WorkflowEdit),
        r("GET", "/api/v1/workflows", WorkflowRead),
        r("GET", "/api/v1/workflows/{id}", WorkflowRead),
        r("PUT", "/api/v1/workflows/{id}", WorkflowEdit),
        r("DELETE", "/api/v1/workflows/{id}", WorkflowEdit),
        r("POST", "/api/v1/policies", PolicyEdit),
        r("GET", "/api/v1/policies", WorkflowRead),
        r("GET", "/api/v1/policies/{id}", WorkflowRead),
        r("PUT", "/api/v1/policies/{id}", PolicyEdit),
        r("DELETE", "/api/v1/policies/{id}", PolicyEdit),
        r("POST", "/api/v1/projects", ProjectEdit),
        r("GET", "/api/v1/projects", ProjectRead),
        r("GET", "/api/v1/projects/{id}", ProjectRead),
        r("PUT", "/api/v1/projects/{id}/status", ProjectEdit),
        r("GET", "/api/v1/projects/{id}/environments", ProjectRead),
        r("POST", "/api/v1/environments", ProjectEdit),
        r("GET", "/api/v1/environments", ProjectRead),
        r("GET", "/api/v1/environments/{id}", ProjectRead),
        r("DELETE", "/api/v1/environments/{id}", ProjectEdit),
        r("POST", "/api/v1/argocd-endpoints", IntegrationManage),
        r("GET", "/api/v1/argocd-endpoints", IntegrationRead),
        r(
            "GET",
            "/api/v1/argocd-endpoints/{id}/discovered-apps",
            IntegrationRead,
        ),
        r(
            "PUT",
            "/api/v1/argocd-endpoints/{id}/enabled",
            IntegrationManage,
        ),
        r("DELETE", "/api/v1/argocd-endpoints/{id}", IntegrationManage),
        r("POST", "/api/v1/gitops-app-mappings", IntegrationManage),
        r("GET", "/api/v1/gitops-app-mappings", IntegrationRead),
        r(
            "DELETE",
            "/api/v1/gitops-app-mappings/{id}",
            IntegrationManage,
        ),
        r("GET", "/api/v1/requests/{id}/gitops", RequestRead),
        r("GET", "/api/v1/secrets", SecretList),
        r("GET", "/api/v1/secrets/{id}", SecretList),
        r("GET", "/kill-switch", AgentRead),
        r("GET", "/dashboard/state", DashboardUse),
        r("PUT", "/dashboard/state", DashboardUse),
        r("POST", "/kill-switch/engage", KillSwitchOperate),
        r("POST", "/kill-switch/release", KillSwitchOperate),
        r("GET", "/api/v1/audit-events", AuditRead),
        r("GET", "/audit/log", AuditRead).needs(Addon::Vault),
        r("GET", "/audit/decisions", AuditRead),
        r("GET", "/audit/reconstruct", AuditRead),
        r("GET", "/events/stream", AuditRead),
        r("POST", "/threat-intel/ip", ThreatIntelLookup),
        r("POST", "/threat-intel/domain", ThreatIntelLookup),
        r("GET", "/threat-intel/summary", ThreatIntelLookup),
        r("POST", "/webhooks/config", IntegrationManage),
        r("GET", "/webhooks/config", IntegrationRead),
        r("GET", "/webhooks/config/{id}", IntegrationRead),
        r("PUT", "/webhooks/config/{id}", IntegrationManage),
        r("DELETE", "/webhooks/config/{id}", IntegrationManage),
        r("POST", "/webhooks/test/slack", IntegrationManage),
        r("GET", "/webhooks/dlq", IntegrationRead),
        r("POST", "/webhooks/dlq/{id}/replay", IntegrationManage),
        r("POST", "/siem/config", IntegrationManage),
        r("GET", "/siem/config", IntegrationRead),
        r("GET", "/siem/config/{id}", IntegrationRead),
        r("PUT", "/siem/config/{id}", IntegrationManage),
        r("DELETE", "/siem/config/{id}", IntegrationManage),
        r("POST", "/siem/test/splunk", IntegrationManage),
        r("POST", "/siem/test/datadog", IntegrationManage),
        r("POST", "/siem/push", SiemPush),
        r("GET", "/reports/scheduled", IntegrationRead),
        r("POST", "/reports/scheduled", IntegrationManage),
        r("GET", "/reports/scheduled/{id}", IntegrationRead),
        r("PUT", "/reports/scheduled/{id}", IntegrationManage),
        r("DELETE", "/reports/scheduled/{id}", IntegrationManage),
        r("POST", "/reports/scheduled/{id}/run", IntegrationManage),
        r("GET", "/reports/scheduled/{id}/runs", IntegrationRead),
        r(
            "GET",
            "/reports/scheduled/{id}/runs/{run_id}/download",
            IntegrationRead,
        ),
        r("GET", "/audit/export", AuditRead),
        r("GET", "/audit/public-key", AuditRead),
        r("GET", "/admin/projections", ProjectionRead),
        r(
            "POST",
            "/admin/projections/{name}/rebuild",
            ProjectionOperate,
        ),
        r("POST", "/admin/projections/{name}/skip", ProjectionOperate),
        r("GET", "/audit/verify", AuditRead),
        r("GET", "/api/v1/usage", UsageRead),
        r("POST", "/credentials", CredentialCreate).needs(Addon::Vault),
        r("GET", "/credentials", CredentialRead).needs(Addon::Vault),
        r("GET", "/credentials/{name}", CredentialRead).needs(Addon::Vault),
        r("PATCH", "/credentials/{name}", CredentialUpdate).needs(Addon::Vault),
        r("DELETE", "/credentials/{name}", CredentialRetire).needs(Addon::Vault),
        r("GET", "/credentials/{name}/value", CredentialValue).needs(Addon::Vault),
        r("POST", "/credentials/{name}/rotate", CredentialRotate).needs(Addon::Vault),
        r("POST", "/credentials/{name}/rollback", CredentialRotate).needs(Addon::Vault),
        r("POST", "/credentials/{name}/destroy", CredentialDestroy).needs(Addon::Vault),
        r("POST", "/credentials/{name}/test", CredentialTest).needs(Addon::Vault),
        r("GET", "/health/dashboard", CredentialRead).needs(Addon::Vault),
        r("GET", "/health/expiring", CredentialRead).needs(Addon::Vault),
        r("POST", "/health/check-all", CredentialTest).needs(Addon::Vault),
        r("GET", "/rotation/schedule", CredentialRead).needs(Addon::Vault),
        r("POST", "/credentials/{name}/apply", CredentialApply).needs(Addon::Vault),
        r("POST", "/auto-response/rules", AutoResponseEdit).needs(Addon::AutoResponse),
        r("GET", "/auto-response/rules", AutoResponseRead).needs(Addon::AutoResponse),
        r("GET", "/auto-response/rules/{id}", AutoResponseRead).needs(Addon::AutoResponse),
        r("PUT", "/auto-response/rules/{id}", AutoResponseEdit).needs(Addon::AutoResponse),
        r("DELETE", "/auto-response/rules/{id}", AutoResponseEdit).needs(Addon::AutoResponse),
        r(
            "GET",
            "/auto-response/rules/{id}/versions",
            AutoResponseRead,
        )
        .needs(Addon::AutoResponse),
        r("PUT", "/auto-response/rules/{id}/mode", AutoResponseEdit).needs(Addon::AutoResponse),
        r("POST", "/auto-response/simulate", AutoResponseSimulate).needs(Addon::AutoResponse),
        r("GET", "/auto-response/runs", AutoResponseRead).needs(Addon::AutoResponse),
        r("GET", "/auto-response/runs/{id}", AutoResponseRead).needs(Addon::AutoResponse),
        r("GET", "/auto-response/pending", AutoResponseRead).needs(Addon::AutoResponse),
        r("GET", "/auto-response/pending/{key}", AutoResponseRead).needs(Addon::AutoResponse),
        r(
            "POST",
            "/auto-response/pending/{key}/approve",
            AutoResponseApprove,
        )
        .needs(Addon::AutoResponse),
        r(
            "POST",
            "/auto-response/pending/{key}/reject",
            AutoResponseApprove,
        )
        .needs(Addon::AutoResponse),
        r("POST", "/sync/n8n", CredentialApply).needs(Addon::Vault),
    ]
};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Needs(Route),
    /// Not in the table: refused, so a route added without a line here fails closed.
    Undeclared,
}

pub fn access(method: &str, path: &str) -> Access {
    if PUBLIC.iter().any(|(m, p)| *m == method && *p == path) {
        return Access::Public;
    }
    ROUTES
        .iter()
        .find(|r| r.method == method && r.path == path)
        .or_else(|| super::platform_routes::find(method, path).map(|p| &p.route))
        .map_or(Access::Undeclared, |r| Access::Needs(*r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_identity::controls::BILLABLE;

    #[test]
    fn every_route_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for (m, p) in PUBLIC
            .iter()
            .copied()
            .chain(all().map(|r| (r.method, r.path)))
        {
            assert!(seen.insert((m, p)), "{m} {p} declared twice");
        }
        assert_eq!(access("GET", "/nope"), Access::Undeclared);
        assert_eq!(access("POST", "/api/v1/auth/login"), Access::Public);
    }

    #[test]
    fn seed_003_rows_are_found_at_both_spellings() {
        use super::super::platform_routes::PLATFORM;
        assert_eq!(PLATFORM.len(), 180, "the document's 180 routes");
        let Access::Needs(r) = access("GET", "/vault/v1/versioned-secrets/{secretId}/history")
        else {
            panic!("the /vault/v1 spelling is declared");
        };
        assert_eq!(r.path, "/v1/versioned-secrets/{secretId}/history");
        assert!(matches!(
            access("POST", "/ai/v1/registry/models"),
            Access::Needs(_)
        ));
        assert!(matches!(
            access("GET", "/audit/v1/streaming/events"),
            Access::Needs(_)
        ));
        // Only the services the document lists under /v1 have a second spelling.
        assert_eq!(access("POST", "/kms/v1/v1/byohsm/keys"), Access::Undeclared);
        assert_eq!(
            access("GET", "/vault/v1/streaming/events"),
            Access::Undeclared
        );
    }

    #[test]
    fn metered_operations_are_the_billable_ones() {
        let mut metered: Vec<&str> = all().filter_map(|r| r.meter).collect();
        metered.sort_unstable();
        let mut billable = BILLABLE.to_vec();
        billable.sort_unstable();
        assert_eq!(metered, billable);
    }
}
