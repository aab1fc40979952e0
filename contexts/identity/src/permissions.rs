//! The permission catalog and the built-in roles. Permissions are seed 004's dotted strings;
//! the catalog served at `GET /api/v1/permissions`, role validation, API key scopes and the
//! route table all read this one list.

use serde::Serialize;

macro_rules! catalog {
    ($($variant:ident = $name:literal, $grantable:literal, $doc:literal;)+) => {
        /// One thing a principal may do.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission { $($variant,)+ }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name,)+ }
            }

            pub fn description(self) -> &'static str {
                match self { $(Permission::$variant => $doc,)+ }
            }

            /// Whether a tenant may hand this permission to a role or an API key. Platform and
            /// internal permissions are never grantable inside a tenant.
            pub fn grantable(self) -> bool {
                match self { $(Permission::$variant => $grantable,)+ }
            }
        }
    };
}

catalog! {
    TenantCreate = "tenant.create", false, "Create tenants (platform admin)";
    TenantRead = "tenant.read", false, "List every tenant (platform admin)";
    TenantUpdate = "tenant.update", false, "Set a tenant's plan: add-ons, quotas, rate (platform admin)";
    TenantEraseKey = "tenant.erase_key", false, "Destroy a tenant's data key, crypto-shredding its secrets (platform admin)";
    IncidentOpen = "incident.open", false, "Open incidents (internal services)";
    IncidentRead = "incident.read", true, "Read incidents and their summary";
    IncidentUpdate = "incident.update", true, "Change an incident's status, assignee or actions";
    UserRead = "user.read", true, "List users and read one";
    UserEdit = "user.edit", true, "Create users, rename, disable and enable them";
    RoleRead = "role.read", true, "List roles and read one";
    RoleEdit = "role.edit", true, "Create and delete roles and set their permissions";
    UserRoleRead = "user_role.read", true, "List role assignments";
    UserRoleEdit = "user_role.edit", true, "Assign roles to users and remove assignments";
    PermissionRead = "permission.read", true, "Read the permission catalog";
    ApiKeyRead = "api_key.read", true, "List API keys (prefix and metadata, never the key)";
    ApiKeyCreate = "api_key.create", true, "Create API keys";
    ApiKeyRevoke = "api_key.revoke", true, "Revoke API keys";
    AgentRead = "agent.read", true, "List agents";
    AgentMint = "agent.mint", true, "Mint agents and their secrets";
    AgentRevoke = "agent.revoke", true, "Revoke agents";
    AgentQuarantine = "agent.quarantine", true, "Quarantine agents";
    AgentSelf = "agent.self", false, "Act as the agent itself (X-Agent-Secret)";
    JobEnqueue = "job.enqueue", true, "Enqueue jobs for agents (seed 004)";
    SecretList = "secret.list", true, "List the secrets agents discovered in their clusters (metadata, never values)";
    SecretRequest = "secret.request", true, "Ask to read or change a secret (an access request), cancel it, and retrieve what it was granted";
    SecretApprove = "secret.approve", true, "Approve and reject other people's access requests, and see every request";
    RequestRead = "request.read", true, "See access requests: one's own, and every request with secret.approve";
    WorkflowRead = "workflow.read", true, "Read approval workflows and the policies that pick them";
    WorkflowEdit = "workflow.edit", true, "Create, change and delete approval workflows";
    PolicyEdit = "policy.edit", true, "Create, change and delete the policies that pick a request's workflow";
    ProjectRead = "project.read", true, "Read projects and their environments";
    ProjectEdit = "project.edit", true, "Create projects and environments, archive projects, delete environments";
    AuditRead = "audit.read", true, "Read the audit log";
    UsageRead = "usage.read", true, "Read the tenant's metered usage and quotas";
    CredentialRead = "credential.read", true, "List vault credentials, their health and rotation schedule (never a value)";
    CredentialCreate = "credential.create", true, "Register vault credentials";
    CredentialUpdate = "credential.update", true, "Change a credential's settings or set a new value";
    CredentialRetire = "credential.retire", true, "Retire vault credentials";
    CredentialValue = "credential.value", true, "Read a credential's value (every read is audited)";
    CredentialRotate = "credential.rotate", true, "Rotate credentials and roll them back";
    CredentialTest = "credential.test", true, "Test credentials against their targets";
    CredentialDestroy = "credential.destroy", true, "Destroy every version of a credential (crypto-shredding)";
    AutoResponseRead = "auto_response.read", true, "Read auto-response rules, their versions and runs";
    AutoResponseEdit = "auto_response.edit", true, "Create, change, delete auto-response rules and set their mode";
    AutoResponseSimulate = "auto_response.simulate", true, "Replay history through a rule or a draft (no side effects)";
    AutoResponseApprove = "auto_response.approve", true, "Approve or reject auto-response actions waiting for approval";
    DashboardUse = "dashboard.use", true, "Read and save one's own dashboard state (saved filters)";
    ThreatIntelLookup = "threat_intel.lookup", true, "Enrich IPs and domains with threat intel and read the summary";
    KillSwitchOperate = "kill_switch.operate", true, "Engage and release the tenant's kill switch (refuses every agent)";
    IntegrationRead = "integration.read", true, "List webhooks, their dead letters, SIEM connections and scheduled reports with their runs (never a URL, key or token)";
    IntegrationManage = "integration.manage", true, "Create, change, delete and test webhooks, SIEM connections and scheduled reports; replay dead letters; run reports now";
    SiemPush = "siem.push", false, "Push events to the tenant's SIEMs (internal services)";
    CredentialApply = "credential.apply", true, "Apply credentials to n8n workflows and sync credentials from n8n";
    ProjectionRead = "projection.read", false, "See every projection's position, lag and health (platform admin)";
    ProjectionOperate = "projection.operate", false, "Rebuild projections and skip a halted one's bad commit (platform admin)";
    PlatformAdminGrant = "platform_admin.grant", false, "Make a user a platform admin, or take it back (platform admin)";
    MetricsRead = "metrics.read", false, "Scrape Prometheus metrics, which name every tenant (platform admin, internal)";
    // Seed 003 (QNSP): a read and a manage permission per service, and the few operations
    // that deserve their own (using an HSM key, recovering an escrowed key, issuing a dynamic
    // credential). Cross-tenant views and platform billing are the platform admin's.
    RiskRead = "risk.read", true, "Evaluate login risk and read risk policies, signals and stats";
    RiskManage = "risk.manage", true, "Create risk policies and report threat signals";
    FederationAuditRead = "federation_audit.read", true, "Query federated audit events and read their reports";
    FederationAuditManage = "federation_audit.manage", true, "Ingest federated audit events and generate reports";
    PlatformCrossTenant = "platform.cross_tenant", false, "See access and audit across tenants (platform admin)";
    AccessRead = "access.read", true, "Read access simulations, JIT requests, grants, policies and stats; check a JIT grant";
    AccessSimulate = "access.simulate", true, "Simulate access decisions and the impact of policy changes";
    JitRequest = "jit.request", true, "Request just-in-time access";
    JitApprove = "jit.approve", true, "Approve, deny and revoke just-in-time access and set JIT policies";
    KmsRead = "kms.read", true, "Read keys, KMS analytics, HSM connections, escrow policies and crypto agility";
    KmsManage = "kms.manage", true, "Create and change keys, alert rules, HSM connections, escrow policies and migration plans";
    KmsHsmUse = "kms.hsm.use", true, "Wrap, unwrap, sign and verify with keys in the tenant's HSM";
    KmsEscrowRecover = "kms.escrow.recover", true, "Take part in recovering an escrowed key";
    DynamicSecretRead = "dynamic_secret.read", true, "Read dynamic secret configurations, leases and stats (never a credential)";
    DynamicSecretManage = "dynamic_secret.manage", true, "Create dynamic secret configurations and revoke leases";
    DynamicSecretIssue = "dynamic_secret.issue", true, "Issue and renew dynamic credentials";
    LeakageRead = "leakage.read", true, "Read leakage policies, incidents, scans and stats";
    LeakageManage = "leakage.manage", true, "Create and delete leakage policies and report and triage leakage incidents";
    LeakageScan = "leakage.scan", true, "Scan repositories and URLs for leaked secrets";
    StorageRead = "storage.read", true, "Read classification stats and replication status";
    StorageManage = "storage.manage", true, "Set classification, retention, hold and replication policies";
    ObservabilityRead = "observability.read", true, "Read cost allocations, budgets, anomalies and dashboards";
    ObservabilityManage = "observability.manage", true, "Set cost allocations, budgets, anomaly rules and dashboards";
    SecurityRead = "security.read", true, "Analyse the attack surface and assess compliance";
    SecurityManage = "security.manage", true, "Create and run playbooks, simulate attacks, define compliance controls";
    CryptoInventoryRead = "crypto_inventory.read", true, "Read the crypto inventory: deprecations, hardware and PQC readiness";
    CryptoInventoryManage = "crypto_inventory.manage", true, "Set deprecation policies and register cryptographic hardware";
    AiRead = "ai.read", true, "Read AI costs, bias summaries and injection stats; analyse prompts";
    AiManage = "ai.manage", true, "Register, deploy and retire models; evaluate bias; add injection patterns";
    TenantHealthRead = "tenant_health.read", true, "Read the tenant's health, quotas, forecasts and isolation status";
    TenantHealthManage = "tenant_health.manage", true, "Take health snapshots, run onboarding workflows and isolation audits";
    SearchRead = "search.read", true, "Read search analytics and health; expand synonyms; verify isolation";
    SearchManage = "search.manage", true, "Set synonyms and run search maintenance";
    BillingRead = "billing.read", true, "Read the tenant's usage and capacity forecasts and credit balance";
    BillingManage = "billing.manage", true, "Redeem promotions";
    PlatformBilling = "platform.billing", false, "Read revenue across tenants, run dunning and grant credits (platform admin)";
    AuditManage = "audit.manage", true, "Subscribe to the audit event stream";
    AuditRetention = "audit.retention", true, "Set audit retention policies and run retention cleanup (administrators)";
}

/// Names the seeds use for scopes and permissions that are not the catalog's own, and what
/// each grants: seed 000's API-key scopes (`execute`, `read:audit`) and seed 004's
/// `integration.edit`. Seed 001's `noun:verb` spellings (`credential:rotate`) are read as the
/// catalog's `noun.verb` for every permission (see [`Permission::parse`]). The catalog's own
/// names are what Aegis answers with.
pub const ALIASES: &[Alias] = &[
    Alias {
        name: "execute",
        grants: &[
            Permission::IncidentRead,
            Permission::IncidentUpdate,
            Permission::AgentRead,
            Permission::AgentQuarantine,
            Permission::KillSwitchOperate,
            Permission::AutoResponseRead,
            Permission::AutoResponseSimulate,
            Permission::ThreatIntelLookup,
        ],
        description: "Seed 000's scope for automation that acts on incidents and agents: read and update incidents, quarantine agents, operate the kill switch, read and simulate rules, look up threat intel",
    },
    Alias {
        name: "read:audit",
        grants: &[Permission::AuditRead],
        description: "Seed 000's scope for reading the audit log",
    },
    Alias {
        name: "integration.edit",
        grants: &[Permission::IntegrationManage],
        description: "Seed 004's name for integration.manage",
    },
];

/// Another document's name for one or more permissions.
#[derive(Debug, Clone, Copy)]
pub struct Alias {
    pub name: &'static str,
    pub grants: &'static [Permission],
    pub description: &'static str,
}

impl Permission {
    /// A catalog name, or seed 001's spelling of it (`credential:rotate` for
    /// `credential.rotate`).
    pub fn parse(s: &str) -> Option<Permission> {
        let dotted = s.replacen(':', ".", 1);
        Permission::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s || p.as_str() == dotted)
    }

    fn bit(self) -> u128 {
        1 << (self as u32)
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of permissions as a bit set: checking one on every request is a mask test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions(u128);

impl Permissions {
    pub const NONE: Permissions = Permissions(0);

    pub fn of(list: &[Permission]) -> Self {
        Self(list.iter().fold(0, |acc, p| acc | p.bit()))
    }

    pub fn all() -> Self {
        Self::of(Permission::ALL)
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn union(self, other: Permissions) -> Self {
        Self(self.0 | other.0)
    }

    pub fn intersect(self, other: Permissions) -> Self {
        Self(self.0 & other.0)
    }

    pub fn without(self, p: Permission) -> Self {
        Self(self.0 & !p.bit())
    }

    pub fn is_subset(self, other: Permissions) -> bool {
        self.0 & !other.0 == 0
    }

    /// The first permission of `self` that `holder` lacks, if any: what a grant of `self` by
    /// `holder` would escalate to.
    pub fn first_outside(self, holder: Permissions) -> Option<Permission> {
        self.iter().find(|p| !holder.contains(*p))
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(move |p| self.contains(*p))
    }

    /// Every permission a tenant may grant.
    pub fn grantable() -> Self {
        Self::of(
            &Permission::ALL
                .iter()
                .copied()
                .filter(|p| p.grantable())
                .collect::<Vec<_>>(),
        )
    }

    /// Parses permission names and their aliases ([`ALIASES`]); the error names the first
    /// unknown or ungrantable one.
    pub fn parse_grantable<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let mut out = Permissions::NONE;
        for name in names {
            let name = name.as_ref();
            if let Some(alias) = ALIASES.iter().find(|a| a.name == name) {
                out = out.union(Permissions::of(alias.grants));
                continue;
            }
            match Permission::parse(name) {
                Some(p) if p.grantable() => out = out.union(Permissions::of(&[p])),
                Some(_) => return Err(format!("`{name}` cannot be granted inside a tenant")),
                None => return Err(format!("`{name}` is not a permission")),
            }
        }
        Ok(out)
    }

    pub fn names(self) -> Vec<String> {
        self.iter().map(|p| p.as_str().to_string()).collect()
    }
}

/// The roles every tenant has; they cannot be edited or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BuiltinRole {
    Admin,
    Security,
    Auditor,
}

impl BuiltinRole {
    pub const ALL: &'static [BuiltinRole] = &[
        BuiltinRole::Admin,
        BuiltinRole::Security,
        BuiltinRole::Auditor,
    ];

    /// Built-in roles are addressed by their name.
    pub fn id(self) -> &'static str {
        match self {
            BuiltinRole::Admin => "ADMIN",
            BuiltinRole::Security => "SECURITY",
            BuiltinRole::Auditor => "AUDITOR",
        }
    }

    pub fn parse(id: &str) -> Option<BuiltinRole> {
        BuiltinRole::ALL.iter().copied().find(|r| r.id() == id)
    }

    pub fn description(self) -> &'static str {
        match self {
            BuiltinRole::Admin => "Everything inside the tenant",
            BuiltinRole::Security => {
                "Reads, plus incident response, agent containment (quarantine, kill switch) and \
                 credential rotation"
            }
            BuiltinRole::Auditor => "Read-only, including the audit log",
        }
    }

    pub fn permissions(self) -> Permissions {
        use Permission::*;
        let reads = [
            IncidentRead,
            UserRead,
            RoleRead,
            UserRoleRead,
            PermissionRead,
            ApiKeyRead,
            AgentRead,
            AuditRead,
            UsageRead,
            CredentialRead,
            AutoResponseRead,
            ThreatIntelLookup,
            DashboardUse,
            IntegrationRead,
            RiskRead,
            FederationAuditRead,
            AccessRead,
            KmsRead,
            DynamicSecretRead,
            LeakageRead,
            StorageRead,
            ObservabilityRead,
            CryptoInventoryRead,
            AiRead,
            TenantHealthRead,
            SearchRead,
            BillingRead,
            SecretList,
            RequestRead,
            WorkflowRead,
            ProjectRead,
        ];
        match self {
            BuiltinRole::Admin => Permissions::grantable(),
            BuiltinRole::Security => Permissions::of(&reads).union(Permissions::of(&[
                IncidentUpdate,
                AgentRevoke,
                AgentQuarantine,
                KillSwitchOperate,
                CredentialRotate,
                CredentialTest,
                AutoResponseSimulate,
                SecurityRead,
                AccessSimulate,
                LeakageScan,
                SecretRequest,
                SecretApprove,
            ])),
            BuiltinRole::Auditor => Permissions::of(&reads),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_fits_the_bit_set_and_names_are_unique() {
        assert!(Permission::ALL.len() <= 128);
        let mut names: Vec<_> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Permission::ALL.len());
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
        }
    }

    #[test]
    fn the_seeds_names_are_read_as_what_they_grant() {
        let seed_000 = Permissions::parse_grantable(&["execute", "read:audit"]).unwrap();
        assert!(seed_000.contains(Permission::AuditRead));
        assert!(seed_000.contains(Permission::IncidentUpdate));
        assert!(
            !seed_000.contains(Permission::ApiKeyCreate),
            "execute grants no admin right"
        );
        assert_eq!(
            Permission::parse("credential:rotate"),
            Some(Permission::CredentialRotate)
        );
        assert_eq!(
            Permissions::parse_grantable(&["integration.edit"]).unwrap(),
            Permissions::of(&[Permission::IntegrationManage])
        );
        // Every alias grants only what a tenant may grant, and shadows no catalog name.
        for alias in ALIASES {
            assert!(alias.grants.iter().all(|p| p.grantable()), "{}", alias.name);
            assert_eq!(Permission::parse(alias.name), None, "{}", alias.name);
        }
        assert!(Permissions::parse_grantable(&["execute:everything"]).is_err());
    }

    #[test]
    fn builtin_roles_nest() {
        let admin = BuiltinRole::Admin.permissions();
        let security = BuiltinRole::Security.permissions();
        let auditor = BuiltinRole::Auditor.permissions();
        assert!(auditor.is_subset(security));
        assert!(security.is_subset(admin));
        assert!(!admin.contains(Permission::TenantCreate));
        assert!(!admin.contains(Permission::IncidentOpen));
        assert!(!auditor.contains(Permission::IncidentUpdate));
        assert!(security.contains(Permission::IncidentUpdate));
    }

    #[test]
    fn a_grant_names_the_first_permission_the_holder_lacks() {
        let security = BuiltinRole::Security.permissions();
        let admin = BuiltinRole::Admin.permissions();
        assert_eq!(security.first_outside(admin), None);
        assert_eq!(admin.first_outside(admin), None);
        let missing = admin.first_outside(security);
        assert!(missing.is_some_and(|p| !security.contains(p)));
        assert_eq!(Permissions::NONE.first_outside(Permissions::NONE), None);
    }

    #[test]
    fn only_grantable_permissions_parse_for_roles_and_keys() {
        assert!(Permissions::parse_grantable(&["incident.read", "audit.read"]).is_ok());
        assert!(Permissions::parse_grantable(&["tenant.create"])
            .unwrap_err()
            .contains("cannot be granted"));
        assert!(Permissions::parse_grantable(&["root"])
            .unwrap_err()
            .contains("not a permission"));
    }
}
