//! Seed 003's platform controls, per tenant: entitlements (add-ons), quotas on billable
//! operations, and the request rate. A tenant's plan is part of the tenant aggregate.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An add-on a tenant may be entitled to; routes that need one name it in the route table.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Addon {
    /// The credential vault (seed 001), including its audit log surface.
    Vault,
    /// The edge manager (seed 002).
    Edge,
    /// Auto-response rules (seed 000).
    AutoResponse,
    /// Threat-intel enrichment (seed 000).
    ThreatIntel,
    // Seed 003's services, each an entitlement its routes marked `entitlements` check.
    /// Risk-based authentication and federated audit (`/auth`).
    Auth,
    /// Access simulation, JIT access, cross-tenant access views (`/access/v1`).
    Access,
    /// Keys and their analytics, crypto agility (`/kms/v1`).
    Kms,
    /// Classification, retention and replication of stored data (`/storage/v1`).
    Storage,
    /// Costs, anomalies and dashboards (`/observability/v1`).
    Observability,
    /// Playbooks, attack surface and compliance (`/security/v1`).
    Security,
    /// The crypto inventory and PQC readiness (`/crypto/v1`).
    Crypto,
    /// The AI model registry, costs, bias and prompt-injection defence (`/ai/v1`).
    Ai,
    /// The tenant's health, quotas, onboarding and isolation (`/tenant/v1`).
    Tenant,
    /// Search analytics, synonyms and health (`/search/v1`).
    Search,
    /// Usage forecasts, credits and promotions (`/billing/v1`).
    Billing,
    /// Audit streaming and retention (`/audit/v1`).
    Audit,
    /// Seed 003's add-on: keys in the tenant's own HSM.
    Byohsm,
    /// Seed 003's add-on: key escrow and M-of-N recovery.
    #[serde(rename = "key-escrow")]
    KeyEscrow,
}

impl Addon {
    pub const ALL: &'static [Addon] = &[
        Addon::Vault,
        Addon::Edge,
        Addon::AutoResponse,
        Addon::ThreatIntel,
        Addon::Auth,
        Addon::Access,
        Addon::Kms,
        Addon::Storage,
        Addon::Observability,
        Addon::Security,
        Addon::Crypto,
        Addon::Ai,
        Addon::Tenant,
        Addon::Search,
        Addon::Billing,
        Addon::Audit,
        Addon::Byohsm,
        Addon::KeyEscrow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Addon::Vault => "vault",
            Addon::Edge => "edge",
            Addon::AutoResponse => "auto_response",
            Addon::ThreatIntel => "threat_intel",
            Addon::Auth => "auth",
            Addon::Access => "access",
            Addon::Kms => "kms",
            Addon::Storage => "storage",
            Addon::Observability => "observability",
            Addon::Security => "security",
            Addon::Crypto => "crypto",
            Addon::Ai => "ai",
            Addon::Tenant => "tenant",
            Addon::Search => "search",
            Addon::Billing => "billing",
            Addon::Audit => "audit",
            Addon::Byohsm => "byohsm",
            Addon::KeyEscrow => "key-escrow",
        }
    }

    pub fn parse(s: &str) -> Option<Addon> {
        Addon::ALL.iter().copied().find(|a| a.as_str() == s)
    }
}

/// Operations that are metered (one usage event per success) and may carry a quota.
pub const BILLABLE: &[&str] = &[
    "user.create",
    "api_key.create",
    "agent.mint",
    // Seed 003's nineteen.
    "auth.risk_evaluation",
    "access.policy_simulation",
    "access.jit_request",
    "kms.hsm.key.create",
    "kms.hsm.wrap",
    "kms.hsm.unwrap",
    "kms.hsm.sign",
    "kms.escrow.create",
    "kms.escrow.recover",
    "vault.dynamic_secret_generate",
    "vault.leakage_scan",
    "vault.secret_version_create",
    "vault.secret_version_read",
    "security.playbook_execute",
    "security.attack_path_analysis",
    "security.attack_simulation",
    "security.compliance_assessment",
    "ai.model_deploy",
    "audit.retention_cleanup",
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub addons: Vec<Addon>,
    /// Billable operation → most runs per calendar month (UTC).
    pub quotas: BTreeMap<String, u64>,
    /// Requests per second; `None` is the server's default.
    pub requests_per_second: Option<u32>,
}

impl Plan {
    pub fn entitled(&self, addon: Addon) -> bool {
        self.addons.contains(&addon)
    }

    /// Validates names from outside: unknown add-ons or operations are refused, not ignored.
    pub fn parse(
        addons: &[String],
        quotas: &BTreeMap<String, u64>,
        requests_per_second: Option<u32>,
    ) -> Result<Plan, (&'static str, String)> {
        let mut parsed = Vec::new();
        for a in addons {
            let addon = Addon::parse(a).ok_or(("addons", format!("`{a}` is not an add-on")))?;
            if !parsed.contains(&addon) {
                parsed.push(addon);
            }
        }
        parsed.sort();
        for op in quotas.keys() {
            if !BILLABLE.contains(&op.as_str()) {
                return Err(("quotas", format!("`{op}` is not a billable operation")));
            }
        }
        if requests_per_second == Some(0) {
            return Err(("requests_per_second", "must be at least 1".into()));
        }
        Ok(Plan {
            addons: parsed,
            quotas: quotas.clone(),
            requests_per_second,
        })
    }
}

/// The metering period of an instant: its calendar month, UTC (`2026-11`).
pub fn period(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_refuse_unknown_names_and_dedupe_addons() {
        let plan = Plan::parse(
            &["vault".into(), "edge".into(), "vault".into()],
            &BTreeMap::from([("agent.mint".to_string(), 3)]),
            Some(10),
        )
        .expect("valid");
        assert_eq!(plan.addons, vec![Addon::Vault, Addon::Edge]);
        assert!(plan.entitled(Addon::Vault) && !plan.entitled(Addon::ThreatIntel));
        assert_eq!(
            Plan::parse(&["gold".into()], &BTreeMap::new(), None)
                .unwrap_err()
                .0,
            "addons"
        );
        assert_eq!(
            Plan::parse(
                &[],
                &BTreeMap::from([("incident.read".to_string(), 1)]),
                None
            )
            .unwrap_err()
            .0,
            "quotas"
        );
        assert!(Plan::parse(&[], &BTreeMap::new(), Some(0)).is_err());
    }

    #[test]
    fn the_period_is_the_utc_month() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-30T23:59:59-02:00")
            .expect("time")
            .with_timezone(&chrono::Utc);
        assert_eq!(period(at), "2026-12");
    }
}
