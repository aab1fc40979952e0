//! Seed 003's surface (QNSP): all 180 routes in 13 services, each with the permission it
//! needs, the controls the document lists for it, the add-on it needs, its billable operation,
//! and where the document puts it under a base path it lists as `/v1` (vault, AI, audit), the
//! base path it also answers at. The authorization matrix, OpenAPI and metering cover every row
//! from the start; a row whose handler is not built yet answers 501 (`http::platform`).

use super::route::{controls, Route};
use aegis_identity::controls::Addon;
use aegis_identity::permissions::Permission;

/// One row of seed 003's route table.
#[derive(Debug, Clone, Copy)]
pub struct PlatformRoute {
    pub route: Route,
    /// The document's service, which the `entitlements` control checks the tenant's plan for.
    pub service: Addon,
    /// The base path the document names for a service it lists under `/v1` (`/vault/v1`):
    /// the route answers at both spellings.
    pub alias_base: Option<&'static str>,
    /// The document's one-line description.
    pub summary: &'static str,
}

impl PlatformRoute {
    /// The route's path under its alias base (`/vault/v1/versioned-secrets` for
    /// `/v1/versioned-secrets`).
    pub fn alias(&self) -> Option<String> {
        let base = self.alias_base?;
        let rest = self.route.path.strip_prefix("/v1")?;
        Some(format!("{base}{rest}"))
    }
}

/// Whether `path` (a matched route or a request path) is on seed 003's surface, which answers
/// in its own error shape and with rate-limit headers.
pub fn on_surface(path: &str) -> bool {
    const PREFIXES: [&str; 14] = [
        "/auth/",
        "/access/v1/",
        "/kms/v1/",
        "/vault/v1/",
        "/storage/v1/",
        "/observability/v1/",
        "/security/v1/",
        "/crypto/v1/",
        "/ai/v1/",
        "/tenant/v1/",
        "/search/v1/",
        "/billing/v1/",
        "/audit/v1/",
        "/v1/",
    ];
    PREFIXES.iter().any(|p| path.starts_with(p))
}

/// The row for a matched route at either of its spellings.
pub fn find(method: &str, path: &str) -> Option<&'static PlatformRoute> {
    PLATFORM.iter().find(|r| {
        r.route.method == method
            && (r.route.path == path
                || r.alias_base.is_some_and(|base| {
                    path.strip_prefix(base)
                        .is_some_and(|rest| r.route.path.strip_prefix("/v1") == Some(rest))
                }))
    })
}

#[allow(clippy::too_many_arguments)]
const fn p(
    method: &'static str,
    path: &'static str,
    permission: Permission,
    service: Addon,
    controls: u8,
    addon: Option<Addon>,
    meter: Option<&'static str>,
    alias_base: Option<&'static str>,
    summary: &'static str,
) -> PlatformRoute {
    let entitled = if controls & controls::ENTITLEMENTS != 0 {
        Some(service)
    } else {
        None
    };
    PlatformRoute {
        route: Route {
            method,
            path,
            permission,
            addons: [entitled, addon],
            meter,
            controls,
        },
        service,
        alias_base,
        summary,
    }
}

// One row per line, as the document's table reads.
#[rustfmt::skip]
pub const PLATFORM: &[PlatformRoute] = {
    use controls::*;
    use Addon::*;
    use Permission::*;
    &[
    p("POST", "/auth/risk/evaluate", RiskRead, Auth, AUDIT | METERING, None, Some("auth.risk_evaluation"), None, "Evaluate authentication risk score for a login attempt."),
    p("POST", "/auth/risk/policies", RiskManage, Auth, ENTITLEMENTS | AUDIT, None, None, None, "Create a risk-based authentication policy."),
    p("GET", "/auth/risk/policies", RiskRead, Auth, ENTITLEMENTS | AUDIT, None, None, None, "List all risk policies for the tenant."),
    p("POST", "/auth/risk/signals", RiskManage, Auth, AUDIT, None, None, None, "Report a threat signal for risk analysis."),
    p("GET", "/auth/risk/users/{userId}/signals", RiskRead, Auth, ENTITLEMENTS | AUDIT, None, None, None, "Get risk signals for a specific user."),
    p("GET", "/auth/risk/stats", RiskRead, Auth, ENTITLEMENTS | AUDIT, None, None, None, "Get risk statistics for the tenant."),
    p("POST", "/auth/federation/audit/query", FederationAuditRead, Auth, ENTITLEMENTS | AUDIT, None, None, None, "Query federated audit events across identity providers."),
    p("POST", "/auth/federation/audit/reports", FederationAuditManage, Auth, ENTITLEMENTS | AUDIT, None, None, None, "Generate a federation compliance report."),
    p("GET", "/auth/federation/audit/reports", FederationAuditRead, Auth, ENTITLEMENTS | AUDIT, None, None, None, "List federation audit reports."),
    p("GET", "/auth/federation/audit/reports/{reportId}", FederationAuditRead, Auth, ENTITLEMENTS | AUDIT, None, None, None, "Get a specific federation audit report."),
    p("GET", "/auth/federation/audit/cross-tenant", PlatformCrossTenant, Auth, ENTITLEMENTS | AUDIT, None, None, None, "Get cross-tenant federation activity."),
    p("POST", "/auth/federation/audit/events", FederationAuditManage, Auth, AUDIT, None, None, None, "Log a federation audit event."),
    p("POST", "/access/v1/simulate", AccessSimulate, Access, AUDIT, None, None, None, "Simulate a policy access request without making actual changes."),
    p("POST", "/access/v1/simulate/batch", AccessSimulate, Access, AUDIT, None, None, None, "Batch simulate multiple policy requests."),
    p("POST", "/access/v1/simulate/impact", AccessSimulate, Access, ENTITLEMENTS | AUDIT, None, Some("access.policy_simulation"), None, "Analyze the impact of a policy change before applying it."),
    p("GET", "/access/v1/simulate/history", AccessRead, Access, AUDIT, None, None, None, "Get simulation history."),
    p("POST", "/access/v1/jit/requests", JitRequest, Access, ENTITLEMENTS | AUDIT | METERING, None, Some("access.jit_request"), None, "Request just-in-time elevated access."),
    p("GET", "/access/v1/jit/requests", AccessRead, Access, AUDIT, None, None, None, "List JIT access requests."),
    p("POST", "/access/v1/jit/requests/{requestId}/process", JitApprove, Access, ENTITLEMENTS | AUDIT, None, None, None, "Approve or deny a JIT access request."),
    p("GET", "/access/v1/jit/grants/user/{userId}", AccessRead, Access, AUDIT, None, None, None, "Get active JIT grants for a user."),
    p("POST", "/access/v1/jit/check", AccessRead, Access, AUDIT, None, None, None, "Check if a principal has active JIT access."),
    p("POST", "/access/v1/jit/grants/{grantId}/revoke", JitApprove, Access, ENTITLEMENTS | AUDIT, None, None, None, "Revoke an active JIT grant."),
    p("POST", "/access/v1/jit/policies", JitApprove, Access, ENTITLEMENTS | AUDIT, None, None, None, "Create a JIT access policy."),
    p("GET", "/access/v1/jit/policies", AccessRead, Access, AUDIT, None, None, None, "List JIT policies."),
    p("GET", "/access/v1/jit/stats", AccessRead, Access, AUDIT, None, None, None, "Get JIT access statistics."),
    p("POST", "/access/v1/cross-tenant/overview", PlatformCrossTenant, Access, ENTITLEMENTS | AUDIT, None, None, None, "Get cross-tenant access overview."),
    p("POST", "/access/v1/cross-tenant/compare", PlatformCrossTenant, Access, ENTITLEMENTS | AUDIT, None, None, None, "Compare access policies across tenants."),
    p("POST", "/access/v1/cross-tenant/anomalies", PlatformCrossTenant, Access, ENTITLEMENTS | AUDIT, None, None, None, "Query access anomalies across tenants."),
    p("GET", "/access/v1/cross-tenant/graph", PlatformCrossTenant, Access, ENTITLEMENTS | AUDIT, None, None, None, "Get cross-tenant access graph visualization data."),
    p("GET", "/access/v1/cross-tenant/isolation-audit", PlatformCrossTenant, Access, ENTITLEMENTS | AUDIT, None, None, None, "Run tenant isolation audit."),
    p("GET", "/kms/v1/analytics/usage", KmsRead, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Query key usage analytics over time."),
    p("GET", "/kms/v1/analytics/applications", KmsRead, Kms, ENTITLEMENTS | AUDIT, None, None, None, "List applications consuming keys."),
    p("GET", "/kms/v1/analytics/keys/{keyId}/summary", KmsRead, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Get usage summary for a specific key."),
    p("POST", "/kms/v1/analytics/applications/record", KmsManage, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Record application usage of a key."),
    p("GET", "/kms/v1/analytics/alerts", KmsRead, Kms, ENTITLEMENTS | AUDIT, None, None, None, "List usage alerts."),
    p("POST", "/kms/v1/analytics/alerts/{alertId}/acknowledge", KmsManage, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Acknowledge a usage alert."),
    p("POST", "/kms/v1/analytics/alert-rules", KmsManage, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Create a usage alert rule."),
    p("GET", "/kms/v1/analytics/alert-rules", KmsRead, Kms, ENTITLEMENTS | AUDIT, None, None, None, "List usage alert rules."),
    p("PATCH", "/kms/v1/analytics/alert-rules/{ruleId}", KmsManage, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Update a usage alert rule."),
    p("DELETE", "/kms/v1/analytics/alert-rules/{ruleId}", KmsManage, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Delete a usage alert rule."),
    p("POST", "/kms/v1/byohsm/connections", KmsManage, Kms, ENTITLEMENTS | AUDIT, Some(Byohsm), None, None, "Register an external HSM connection."),
    p("GET", "/kms/v1/byohsm/connections", KmsRead, Kms, ENTITLEMENTS | AUDIT, Some(Byohsm), None, None, "List HSM connections."),
    p("GET", "/kms/v1/byohsm/connections/{connectionId}", KmsRead, Kms, ENTITLEMENTS | AUDIT, Some(Byohsm), None, None, "Get HSM connection details."),
    p("PATCH", "/kms/v1/byohsm/connections/{connectionId}", KmsManage, Kms, ENTITLEMENTS | AUDIT, Some(Byohsm), None, None, "Update an HSM connection."),
    p("DELETE", "/kms/v1/byohsm/connections/{connectionId}", KmsManage, Kms, ENTITLEMENTS | AUDIT, Some(Byohsm), None, None, "Delete an HSM connection."),
    p("POST", "/kms/v1/byohsm/connections/{connectionId}/validate", KmsManage, Kms, ENTITLEMENTS | AUDIT, Some(Byohsm), None, None, "Validate an HSM connection."),
    p("POST", "/kms/v1/byohsm/keys", KmsManage, Kms, ENTITLEMENTS | QUOTA | AUDIT | METERING, Some(Byohsm), Some("kms.hsm.key.create"), None, "Create a key on external HSM."),
    p("GET", "/kms/v1/byohsm/keys", KmsRead, Kms, ENTITLEMENTS | AUDIT, Some(Byohsm), None, None, "List keys on external HSMs."),
    p("POST", "/kms/v1/byohsm/wrap", KmsHsmUse, Kms, ENTITLEMENTS | QUOTA | AUDIT | METERING, Some(Byohsm), Some("kms.hsm.wrap"), None, "Wrap a key using external HSM."),
    p("POST", "/kms/v1/byohsm/unwrap", KmsHsmUse, Kms, ENTITLEMENTS | QUOTA | AUDIT | METERING, Some(Byohsm), Some("kms.hsm.unwrap"), None, "Unwrap a key using external HSM."),
    p("POST", "/kms/v1/byohsm/sign", KmsHsmUse, Kms, ENTITLEMENTS | QUOTA | AUDIT | METERING, Some(Byohsm), Some("kms.hsm.sign"), None, "Sign data using external HSM."),
    p("POST", "/kms/v1/byohsm/verify", KmsHsmUse, Kms, ENTITLEMENTS | AUDIT, Some(Byohsm), None, None, "Verify signature using external HSM."),
    p("GET", "/kms/v1/byohsm/connections/{connectionId}/operations", KmsRead, Kms, ENTITLEMENTS | AUDIT, Some(Byohsm), None, None, "List operations on an HSM connection."),
    p("POST", "/kms/v1/escrow/policies", KmsManage, Kms, ENTITLEMENTS | AUDIT, Some(KeyEscrow), None, None, "Create a key escrow policy."),
    p("GET", "/kms/v1/escrow/policies", KmsRead, Kms, ENTITLEMENTS | AUDIT, Some(KeyEscrow), None, None, "List key escrow policies."),
    p("GET", "/kms/v1/escrow/policies/{policyId}", KmsRead, Kms, ENTITLEMENTS | AUDIT, Some(KeyEscrow), None, None, "Get key escrow policy details."),
    p("PATCH", "/kms/v1/escrow/policies/{policyId}", KmsManage, Kms, ENTITLEMENTS | AUDIT, Some(KeyEscrow), None, None, "Update a key escrow policy."),
    p("POST", "/kms/v1/escrow/keys", KmsManage, Kms, ENTITLEMENTS | QUOTA | AUDIT | METERING, Some(KeyEscrow), Some("kms.escrow.create"), None, "Create a key escrow."),
    p("GET", "/kms/v1/escrow/keys", KmsRead, Kms, ENTITLEMENTS | AUDIT, Some(KeyEscrow), None, None, "List escrowed keys."),
    p("POST", "/kms/v1/escrow/recovery/initiate", KmsEscrowRecover, Kms, ENTITLEMENTS | AUDIT, Some(KeyEscrow), None, None, "Initiate key recovery from escrow."),
    p("POST", "/kms/v1/escrow/recovery/submit-share", KmsEscrowRecover, Kms, ENTITLEMENTS | AUDIT, Some(KeyEscrow), None, None, "Submit a recovery share."),
    p("POST", "/kms/v1/escrow/recovery/approve", KmsEscrowRecover, Kms, ENTITLEMENTS | AUDIT, Some(KeyEscrow), None, None, "Approve a key recovery request."),
    p("POST", "/kms/v1/escrow/recovery/execute", KmsEscrowRecover, Kms, ENTITLEMENTS | QUOTA | AUDIT | METERING, Some(KeyEscrow), Some("kms.escrow.recover"), None, "Execute key recovery."),
    p("GET", "/kms/v1/escrow/recovery/{requestId}", KmsRead, Kms, ENTITLEMENTS | AUDIT, Some(KeyEscrow), None, None, "Get recovery request details."),
    p("GET", "/kms/v1/escrow/audit", KmsRead, Kms, ENTITLEMENTS | AUDIT, Some(KeyEscrow), None, None, "Query escrow audit log."),
    p("GET", "/kms/v1/crypto-agility/algorithm-usage", KmsRead, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Get algorithm usage report."),
    p("GET", "/kms/v1/crypto-agility/migration-readiness", KmsRead, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Assess PQC migration readiness."),
    p("GET", "/kms/v1/crypto-agility/pqc-adoption", KmsRead, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Get PQC adoption metrics and trends."),
    p("GET", "/kms/v1/crypto-agility/compliance", KmsRead, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Generate cryptographic compliance report."),
    p("POST", "/kms/v1/crypto-agility/migration-plans", KmsManage, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Create a migration plan."),
    p("GET", "/kms/v1/crypto-agility/migration-plans", KmsRead, Kms, ENTITLEMENTS | AUDIT, None, None, None, "List migration plans."),
    p("GET", "/kms/v1/crypto-agility/migration-plans/{planId}", KmsRead, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Get migration plan details."),
    p("PATCH", "/kms/v1/crypto-agility/migration-plans/{planId}", KmsManage, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Update a migration plan."),
    p("GET", "/kms/v1/crypto-agility/risk-assessment", KmsRead, Kms, ENTITLEMENTS | AUDIT, None, None, None, "Get quantum risk assessment for algorithms."),
    p("POST", "/v1/dynamic-secrets/configs", DynamicSecretManage, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "Create a dynamic secret configuration."),
    p("GET", "/v1/dynamic-secrets/configs", DynamicSecretRead, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "List dynamic secret configurations."),
    p("POST", "/v1/dynamic-secrets/configs/{configId}/credentials", DynamicSecretIssue, Vault, ENTITLEMENTS | QUOTA | AUDIT | METERING, None, Some("vault.dynamic_secret_generate"), Some("/vault/v1"), "Generate dynamic credentials."),
    p("GET", "/v1/dynamic-secrets/configs/{configId}/leases", DynamicSecretRead, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "List dynamic secret leases."),
    p("POST", "/v1/dynamic-secrets/leases/{leaseId}/renew", DynamicSecretIssue, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "Renew dynamic secret lease."),
    p("POST", "/v1/dynamic-secrets/leases/{leaseId}/revoke", DynamicSecretManage, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "Revoke dynamic secret lease."),
    p("GET", "/v1/dynamic-secrets/stats", DynamicSecretRead, Vault, ENTITLEMENTS, None, None, Some("/vault/v1"), "Get dynamic secrets statistics."),
    p("POST", "/v1/leakage-detection/policies", LeakageManage, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "Create leakage detection policy."),
    p("GET", "/v1/leakage-detection/policies", LeakageRead, Vault, ENTITLEMENTS, None, None, Some("/vault/v1"), "List leakage detection policies."),
    p("GET", "/v1/leakage-detection/policies/{policyId}", LeakageRead, Vault, ENTITLEMENTS, None, None, Some("/vault/v1"), "Get leakage detection policy."),
    p("DELETE", "/v1/leakage-detection/policies/{policyId}", LeakageManage, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "Delete leakage detection policy."),
    p("POST", "/v1/leakage-detection/incidents", LeakageManage, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "Report leakage incident."),
    p("GET", "/v1/leakage-detection/incidents", LeakageRead, Vault, ENTITLEMENTS, None, None, Some("/vault/v1"), "List leakage incidents."),
    p("GET", "/v1/leakage-detection/incidents/{incidentId}", LeakageRead, Vault, ENTITLEMENTS, None, None, Some("/vault/v1"), "Get leakage incident."),
    p("PATCH", "/v1/leakage-detection/incidents/{incidentId}", LeakageManage, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "Update leakage incident."),
    p("POST", "/v1/leakage-detection/scan", LeakageScan, Vault, ENTITLEMENTS | QUOTA | AUDIT | METERING, None, Some("vault.leakage_scan"), Some("/vault/v1"), "Trigger leakage detection scan."),
    p("GET", "/v1/leakage-detection/scans/{scanId}", LeakageRead, Vault, ENTITLEMENTS, None, None, Some("/vault/v1"), "Get scan status."),
    p("GET", "/v1/leakage-detection/stats", LeakageRead, Vault, ENTITLEMENTS, None, None, Some("/vault/v1"), "Get leakage detection statistics."),
    p("POST", "/v1/leakage-detection/secrets/{secretId}/check", LeakageScan, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "Check secret for active leakage incidents."),
    p("POST", "/v1/versioned-secrets", CredentialUpdate, Vault, ENTITLEMENTS | QUOTA | AUDIT | METERING, None, Some("vault.secret_version_create"), Some("/vault/v1"), "Create new secret version."),
    p("GET", "/v1/versioned-secrets/{secretId}/history", CredentialRead, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "Get secret version history."),
    p("GET", "/v1/versioned-secrets/{secretId}/versions/{version}", CredentialValue, Vault, ENTITLEMENTS | QUOTA | AUDIT | METERING, None, Some("vault.secret_version_read"), Some("/vault/v1"), "Get specific secret version."),
    p("PATCH", "/v1/versioned-secrets/{secretId}/versions/{version}/state", CredentialRotate, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "Update secret version state."),
    p("POST", "/v1/versioned-secrets/{secretId}/rollback", CredentialRotate, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "Rollback to previous secret version."),
    p("POST", "/v1/versioned-secrets/{secretId}/compare", CredentialRead, Vault, ENTITLEMENTS, None, None, Some("/vault/v1"), "Compare two secret versions."),
    p("PUT", "/v1/versioned-secrets/{secretId}/retention-policy", CredentialDestroy, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "Set secret retention policy."),
    p("GET", "/v1/versioned-secrets/{secretId}/audit", CredentialRead, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "Get secret version audit log."),
    p("POST", "/v1/versioned-secrets/{secretId}/enforce-retention", CredentialDestroy, Vault, ENTITLEMENTS | AUDIT, None, None, Some("/vault/v1"), "Enforce retention policy on secret versions."),
    p("GET", "/v1/versioned-secrets/stats", CredentialRead, Vault, ENTITLEMENTS, None, None, Some("/vault/v1"), "Get versioned secrets statistics."),
    p("POST", "/storage/v1/classification/policies", StorageManage, Storage, ENTITLEMENTS | AUDIT, None, None, None, "Create data classification policy."),
    p("GET", "/storage/v1/classification/policies", StorageRead, Storage, ENTITLEMENTS, None, None, None, "List classification policies."),
    p("POST", "/storage/v1/classification/scans", StorageManage, Storage, ENTITLEMENTS | AUDIT, None, None, None, "Trigger classification scan."),
    p("GET", "/storage/v1/classification/stats", StorageRead, Storage, ENTITLEMENTS, None, None, None, "Get classification statistics."),
    p("POST", "/storage/v1/retention/policies", StorageManage, Storage, ENTITLEMENTS | AUDIT, None, None, None, "Create retention policy."),
    p("POST", "/storage/v1/retention/holds", StorageManage, Storage, ENTITLEMENTS | AUDIT, None, None, None, "Create legal hold."),
    p("POST", "/storage/v1/retention/holds/{holdId}/release", StorageManage, Storage, ENTITLEMENTS | AUDIT, None, None, None, "Release legal hold."),
    p("POST", "/storage/v1/replication/configurations", StorageManage, Storage, ENTITLEMENTS | AUDIT, None, None, None, "Create replication configuration."),
    p("GET", "/storage/v1/replication/status", StorageRead, Storage, ENTITLEMENTS, None, None, None, "Get replication status."),
    p("GET", "/storage/v1/replication/health", StorageRead, Storage, ENTITLEMENTS, None, None, None, "Get replication health."),
    p("POST", "/observability/v1/costs/allocations", ObservabilityManage, Observability, ENTITLEMENTS | AUDIT, None, None, None, "Record cost allocation."),
    p("GET", "/observability/v1/costs/allocations", ObservabilityRead, Observability, ENTITLEMENTS | AUDIT, None, None, None, "Query cost allocations."),
    p("POST", "/observability/v1/costs/budgets", ObservabilityManage, Observability, ENTITLEMENTS | AUDIT, None, None, None, "Create cost budget."),
    p("GET", "/observability/v1/costs/summary", ObservabilityRead, Observability, ENTITLEMENTS | AUDIT, None, None, None, "Get cost summary."),
    p("POST", "/observability/v1/anomaly-detection/rules", ObservabilityManage, Observability, ENTITLEMENTS | AUDIT, None, None, None, "Create anomaly detection rule."),
    p("GET", "/observability/v1/anomaly-detection/anomalies", ObservabilityRead, Observability, ENTITLEMENTS | AUDIT, None, None, None, "List detected anomalies."),
    p("POST", "/observability/v1/dashboards", ObservabilityManage, Observability, ENTITLEMENTS | AUDIT, None, None, None, "Create custom dashboard."),
    p("GET", "/observability/v1/dashboards", ObservabilityRead, Observability, ENTITLEMENTS | AUDIT, None, None, None, "List custom dashboards."),
    p("POST", "/security/v1/playbooks", SecurityManage, Security, ENTITLEMENTS | AUDIT, None, None, None, "Create automated response playbook."),
    p("POST", "/security/v1/playbooks/execute", SecurityManage, Security, ENTITLEMENTS | AUDIT | METERING, None, Some("security.playbook_execute"), None, "Execute automated response playbook."),
    p("POST", "/security/v1/attack-surface/analyze", SecurityRead, Security, ENTITLEMENTS | AUDIT | METERING, None, Some("security.attack_path_analysis"), None, "Analyze attack paths."),
    p("POST", "/security/v1/attack-surface/simulate", SecurityRead, Security, ENTITLEMENTS | AUDIT | METERING, None, Some("security.attack_simulation"), None, "Simulate attack scenario."),
    p("POST", "/security/v1/compliance/controls", SecurityManage, Security, ENTITLEMENTS | AUDIT, None, None, None, "Create compliance control."),
    p("POST", "/security/v1/compliance/assess", SecurityManage, Security, ENTITLEMENTS | AUDIT | METERING, None, Some("security.compliance_assessment"), None, "Run compliance assessment."),
    p("POST", "/crypto/v1/deprecation/policies", CryptoInventoryManage, Crypto, ENTITLEMENTS | AUDIT, None, None, None, "Create algorithm deprecation policy."),
    p("GET", "/crypto/v1/deprecation/affected-assets", CryptoInventoryRead, Crypto, ENTITLEMENTS | AUDIT, None, None, None, "List assets affected by deprecation policies."),
    p("GET", "/crypto/v1/deprecation/summary", CryptoInventoryRead, Crypto, ENTITLEMENTS | AUDIT, None, None, None, "Get deprecation summary."),
    p("POST", "/crypto/v1/hardware", CryptoInventoryManage, Crypto, ENTITLEMENTS | AUDIT, None, None, None, "Register crypto hardware device."),
    p("POST", "/crypto/v1/hardware/{hardwareId}/health", CryptoInventoryManage, Crypto, ENTITLEMENTS | AUDIT, None, None, None, "Record hardware health check."),
    p("GET", "/crypto/v1/hardware/summary", CryptoInventoryRead, Crypto, ENTITLEMENTS | AUDIT, None, None, None, "Get hardware inventory summary."),
    p("GET", "/crypto/v1/pqc-readiness/score", CryptoInventoryRead, Crypto, ENTITLEMENTS | AUDIT, None, None, None, "Calculate organization PQC readiness score."),
    p("GET", "/crypto/v1/pqc-readiness/recommendations", CryptoInventoryRead, Crypto, ENTITLEMENTS | AUDIT, None, None, None, "Get PQC readiness improvement recommendations."),
    p("POST", "/v1/registry/models", AiManage, Ai, ENTITLEMENTS | AUDIT, None, None, Some("/ai/v1"), "Register a new AI model."),
    p("POST", "/v1/registry/models/{id}/activate", AiManage, Ai, ENTITLEMENTS | AUDIT, None, None, Some("/ai/v1"), "Activate a model."),
    p("POST", "/v1/registry/models/{id}/deprecate", AiManage, Ai, ENTITLEMENTS | AUDIT, None, None, Some("/ai/v1"), "Deprecate a model."),
    p("POST", "/v1/registry/deployments", AiManage, Ai, ENTITLEMENTS | QUOTA | AUDIT | METERING, None, Some("ai.model_deploy"), Some("/ai/v1"), "Deploy a registered model."),
    p("GET", "/v1/costs/analytics", AiRead, Ai, ENTITLEMENTS | AUDIT, None, None, Some("/ai/v1"), "Get cost analytics."),
    p("GET", "/v1/costs/recommendations", AiRead, Ai, ENTITLEMENTS | AUDIT, None, None, Some("/ai/v1"), "List cost recommendations."),
    p("POST", "/v1/bias/evaluations", AiManage, Ai, ENTITLEMENTS | AUDIT, None, None, Some("/ai/v1"), "Create bias evaluation."),
    p("POST", "/v1/bias/evaluations/{id}/start", AiManage, Ai, ENTITLEMENTS | AUDIT, None, None, Some("/ai/v1"), "Start bias evaluation."),
    p("GET", "/v1/bias/summary", AiRead, Ai, ENTITLEMENTS | AUDIT, None, None, Some("/ai/v1"), "Get bias monitoring summary."),
    p("POST", "/v1/security/injection/patterns", AiManage, Ai, ENTITLEMENTS | AUDIT, None, None, Some("/ai/v1"), "Create injection detection pattern."),
    p("POST", "/v1/security/injection/analyze", AiRead, Ai, ENTITLEMENTS | AUDIT, None, None, Some("/ai/v1"), "Analyze prompt for injection attacks."),
    p("GET", "/v1/security/injection/stats", AiRead, Ai, ENTITLEMENTS | AUDIT, None, None, Some("/ai/v1"), "Get injection detection statistics."),
    p("POST", "/tenant/v1/health/snapshots", TenantHealthManage, Tenant, AUDIT, None, None, None, "Record tenant health snapshot."),
    p("GET", "/tenant/v1/health/current", TenantHealthRead, Tenant, AUDIT, None, None, None, "Get current health status."),
    p("GET", "/tenant/v1/health/trends", TenantHealthRead, Tenant, AUDIT, None, None, None, "Get health trends."),
    p("GET", "/tenant/v1/quotas/current", TenantHealthRead, Tenant, AUDIT, None, None, None, "Get current quota usage."),
    p("POST", "/tenant/v1/quotas/forecast", TenantHealthRead, Tenant, AUDIT, None, None, None, "Forecast quota usage."),
    p("POST", "/tenant/v1/onboarding/workflows", TenantHealthManage, Tenant, ENTITLEMENTS | AUDIT, None, None, None, "Create onboarding workflow."),
    p("POST", "/tenant/v1/onboarding/workflows/{workflowId}/action", TenantHealthManage, Tenant, ENTITLEMENTS | AUDIT, None, None, None, "Execute workflow action."),
    p("POST", "/tenant/v1/isolation/audits", TenantHealthManage, Tenant, ENTITLEMENTS | AUDIT, None, None, None, "Create isolation audit."),
    p("GET", "/tenant/v1/isolation/current-status", TenantHealthRead, Tenant, AUDIT, None, None, None, "Get current isolation status."),
    p("GET", "/search/v1/analytics/metrics", SearchRead, Search, ENTITLEMENTS | AUDIT, None, None, None, "Get aggregated analytics metrics."),
    p("GET", "/search/v1/analytics/quality", SearchRead, Search, ENTITLEMENTS | AUDIT, None, None, None, "Get search quality metrics."),
    p("POST", "/search/v1/synonyms", SearchManage, Search, ENTITLEMENTS | AUDIT, None, None, None, "Create synonym group."),
    p("POST", "/search/v1/synonyms/expand", SearchRead, Search, ENTITLEMENTS | AUDIT, None, None, None, "Expand term with synonyms."),
    p("GET", "/search/v1/health/current", SearchRead, Search, ENTITLEMENTS | AUDIT, None, None, None, "Get current index health status."),
    p("POST", "/search/v1/health/maintenance", SearchManage, Search, ENTITLEMENTS | AUDIT, None, None, None, "Schedule maintenance window."),
    p("POST", "/search/v1/isolation/verify", SearchRead, Search, ENTITLEMENTS | AUDIT, None, None, None, "Run isolation verification."),
    p("GET", "/billing/v1/analytics/revenue/summary", PlatformBilling, Billing, AUDIT, None, None, None, "Get revenue summary."),
    p("GET", "/billing/v1/analytics/revenue/by-service", PlatformBilling, Billing, AUDIT, None, None, None, "Get revenue breakdown by service."),
    p("GET", "/billing/v1/forecasting/usage/{tenantId}", BillingRead, Billing, ENTITLEMENTS | AUDIT, None, None, None, "Get usage forecast for tenant."),
    p("GET", "/billing/v1/forecasting/capacity/{tenantId}", BillingRead, Billing, ENTITLEMENTS | AUDIT, None, None, None, "Get capacity planning forecast."),
    p("POST", "/billing/v1/dunning/schedule", PlatformBilling, Billing, AUDIT, None, None, None, "Configure dunning schedule."),
    p("GET", "/billing/v1/dunning/failed-payments", PlatformBilling, Billing, AUDIT, None, None, None, "List failed payments."),
    p("POST", "/billing/v1/dunning/retry", PlatformBilling, Billing, AUDIT, None, None, None, "Retry failed payment."),
    p("POST", "/billing/v1/credits", PlatformBilling, Billing, AUDIT, None, None, None, "Create credit for tenant."),
    p("GET", "/billing/v1/credits/balance/{tenantId}", BillingRead, Billing, ENTITLEMENTS | AUDIT, None, None, None, "Get credit balance for tenant."),
    p("POST", "/billing/v1/promotions/redeem", BillingManage, Billing, AUDIT, None, None, None, "Redeem promotion code."),
    p("POST", "/v1/streaming/subscriptions", AuditManage, Audit, ENTITLEMENTS, None, None, Some("/audit/v1"), "Create streaming subscription for audit events."),
    p("GET", "/v1/streaming/events", AuditRead, Audit, ENTITLEMENTS, None, None, Some("/audit/v1"), "SSE endpoint for real-time audit event streaming."),
    p("GET", "/v1/streaming/metrics", AuditRead, Audit, ENTITLEMENTS, None, None, Some("/audit/v1"), "Get streaming metrics and statistics."),
    p("POST", "/v1/retention/policies", AuditRetention, Audit, ENTITLEMENTS | ADMIN, None, None, Some("/audit/v1"), "Create retention policy."),
    p("POST", "/v1/retention/cleanup", AuditRetention, Audit, ENTITLEMENTS | ADMIN | AUDIT, None, Some("audit.retention_cleanup"), Some("/audit/v1"), "Execute manual retention cleanup."),
    p("POST", "/v1/retention/preview", AuditRead, Audit, ENTITLEMENTS, None, None, Some("/audit/v1"), "Preview retention impact before cleanup."),
    p("GET", "/v1/retention/metrics", AuditRead, Audit, ENTITLEMENTS, None, None, Some("/audit/v1"), "Get retention metrics and statistics."),
    ]
};
