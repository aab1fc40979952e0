//! Layered configuration: defaults, then a TOML file (`AEGIS_CONFIG`, else `aegis.toml` when
//! present), then the environment. Secrets are typed so they never print.

use base64::Engine;
use serde::Deserialize;
use std::net::SocketAddr;

/// A value that must never reach a log line.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http_addr: SocketAddr,
    /// Where `/metrics` is served without credentials (`AEGIS_METRICS_ADDR`, loopback by
    /// default; `off` serves it only on the API, to holders of `metrics.read`). Metrics name
    /// every tenant, so this listener belongs on a private interface.
    pub metrics_addr: Option<SocketAddr>,
    pub nats_url: String,
    pub database_url: String,
    pub master_key: Option<Secret>,
    /// Master keys being rotated out (`AEGIS_MASTER_KEY_PREVIOUS`, comma separated): still
    /// accepted to unwrap, never used to wrap; `aegis rewrap` moves everything off them.
    pub previous_master_keys: Vec<Secret>,
    pub bootstrap_token: Option<Secret>,
    pub internal_secret: Option<Secret>,
    pub egress_allow: Vec<String>,
    /// Refuse every outbound call a tenant can aim (`AEGIS_EGRESS_OFF=1`): for air-gapped
    /// deployments, and for fuzzing, which must never reach the network.
    pub egress_off: bool,
    pub otlp_endpoint: Option<String>,
    pub stream_replicas: usize,
    /// How long a stopping process waits for its work to finish (`AEGIS_SHUTDOWN_GRACE_SECS`, 10).
    pub shutdown_grace_secs: u64,
    /// HTTP commands handled at once; past it, 503 (`AEGIS_MAX_COMMANDS_IN_FLIGHT`, 512).
    pub max_commands_in_flight: usize,
    /// HTTP connections open at once; past it, 503 and closed (`AEGIS_MAX_CONNECTIONS`, 1024).
    pub max_connections: usize,
    /// How long a query with `Aegis-Min-Position` waits for the read model.
    pub min_position_wait_ms: u64,
    /// Delivery attempts before a reactor's work goes to the dead-letter stream.
    pub reactor_max_attempts: i64,
    /// The key id new login tokens are signed with (`AEGIS_JWT_KID`).
    pub jwt_kid: String,
    /// Key ids still accepted after a rotation, until their tokens expire
    /// (`AEGIS_JWT_RETIRED_KIDS`, comma separated).
    pub jwt_retired_kids: Vec<String>,
    /// Lifetime of a login token (`AEGIS_JWT_TTL_SECS`).
    pub jwt_ttl_secs: i64,
    /// Requests per second per tenant when its plan names none (`AEGIS_TENANT_RATE_LIMIT`;
    /// 0 turns the default limit off).
    pub tenant_rate_limit: u32,
    /// Ed25519 seed (base64, 32 bytes) that signs audit checkpoints
    /// (`AEGIS_AUDIT_SIGNING_KEY`); derived from the root secret when unset.
    pub audit_signing_key: Option<Secret>,
    /// Seconds between signed audit checkpoints (`AEGIS_AUDIT_CHECKPOINT_SECS`).
    pub audit_checkpoint_secs: u64,
    /// Seconds between passes of the vault's rotation and expiry reactor
    /// (`AEGIS_VAULT_TICK_SECS`).
    pub vault_tick_secs: u64,
    /// How long an auto-response approval waits before it expires
    /// (`AEGIS_AR_APPROVAL_TTL_SECS`, default one day).
    pub ar_approval_ttl_secs: u64,
    /// Seconds between passes that expire overdue approvals (`AEGIS_AR_TICK_SECS`).
    pub ar_tick_secs: u64,
    /// The most a leak scan takes from one repository, on disk while it clones and in blobs
    /// read after (`AEGIS_LEAK_MAX_REPOSITORY_MB`, 512).
    pub leak_max_repository_mb: u64,
    /// Where a leak scan lists an organization's repositories (`AEGIS_GITHUB_API_URL`,
    /// `https://api.github.com`; `AEGIS_GITLAB_API_URL`, `https://gitlab.com/api/v4`).
    pub github_api_url: String,
    pub gitlab_api_url: String,
    /// How long an agent holds a job it claimed (`AEGIS_BROKER_JOB_LEASE_SECS`, 30), and how
    /// many claims a job gets before it expires (`AEGIS_BROKER_JOB_MAX_ATTEMPTS`, 5).
    pub broker_job_lease_secs: u64,
    pub broker_job_max_attempts: u32,
    /// Seed 004's GitOps integrations (Argo CD endpoints, app mappings): their routes answer
    /// 404 unless this is on (`AEGIS_GITOPS_ENABLED=1`).
    pub gitops_enabled: bool,
    /// How often a watched Argo CD application is polled after a mapped patch executes
    /// (`AEGIS_GITOPS_POLL_MS`, 15 s), and how long it is watched (`AEGIS_GITOPS_TIMEOUT_SECS`, 600).
    pub gitops_poll_ms: u64,
    pub gitops_timeout_secs: u64,
    /// Threat-intel providers (seed 000): keys (`AEGIS_ABUSEIPDB_API_KEY`,
    /// `AEGIS_SHODAN_API_KEY`) and base URLs (`AEGIS_ABUSEIPDB_URL`, `AEGIS_SHODAN_URL`).
    pub abuseipdb_api_key: Option<Secret>,
    pub abuseipdb_url: String,
    pub shodan_api_key: Option<Secret>,
    pub shodan_url: String,
    /// Provider calls a tenant may cause per minute (`AEGIS_THREAT_INTEL_PER_MINUTE`).
    pub threat_intel_per_minute: usize,
    /// Attempts per webhook delivery before it is dead-lettered (`AEGIS_WEBHOOK_ATTEMPTS`).
    pub webhook_attempts: i64,
    /// The first retry's backoff ceiling in ms, doubling per attempt up to 30 s, with full
    /// jitter (`AEGIS_WEBHOOK_BACKOFF_MS`).
    pub webhook_backoff_ms: u64,
    /// How often the SIEM supervisor looks for new, changed or removed connections
    /// (`AEGIS_SIEM_TICK_MS`).
    pub siem_tick_ms: u64,
    /// How often due scheduled reports are looked for (`AEGIS_REPORTS_TICK_MS`).
    pub reports_tick_ms: u64,
    /// The account nkey seed (`SA...`) whose public key nats.conf names as the auth callout
    /// issuer (`AEGIS_NATS_AUTH_SEED`); when set, Aegis answers the callout and hands each
    /// tenant's subscribers credentials for that tenant's subjects only.
    pub nats_auth_seed: Option<Secret>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8010)),
            metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            nats_url: "nats://127.0.0.1:4222".into(),
            database_url: "postgres://postgres@127.0.0.1:5432/aegis".into(),
            master_key: None,
            previous_master_keys: Vec::new(),
            bootstrap_token: None,
            internal_secret: None,
            egress_allow: Vec::new(),
            egress_off: false,
            otlp_endpoint: None,
            stream_replicas: 1,
            shutdown_grace_secs: 10,
            max_commands_in_flight: 512,
            max_connections: 1024,
            min_position_wait_ms: 5_000,
            reactor_max_attempts: 5,
            jwt_kid: "k1".into(),
            jwt_retired_kids: Vec::new(),
            jwt_ttl_secs: 3600,
            tenant_rate_limit: 1000,
            audit_signing_key: None,
            audit_checkpoint_secs: 60,
            vault_tick_secs: 60,
            ar_approval_ttl_secs: 86_400,
            ar_tick_secs: 10,
            leak_max_repository_mb: 512,
            github_api_url: "https://api.github.com".into(),
            gitlab_api_url: "https://gitlab.com/api/v4".into(),
            broker_job_lease_secs: 30,
            gitops_enabled: false,
            gitops_poll_ms: 15_000,
            gitops_timeout_secs: 600,
            broker_job_max_attempts: 5,
            abuseipdb_api_key: None,
            abuseipdb_url: "https://api.abuseipdb.com/api/v2".into(),
            shodan_api_key: None,
            shodan_url: "https://api.shodan.io".into(),
            threat_intel_per_minute: 60,
            webhook_attempts: 5,
            webhook_backoff_ms: 500,
            siem_tick_ms: 1000,
            reports_tick_ms: 15_000,
            nats_auth_seed: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("{name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

fn invalid(name: &'static str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.to_string(),
    }
}

impl Config {
    /// The master key's bytes; `validate` proved them 32 long when set.
    pub fn master_key_bytes(&self) -> Option<Vec<u8>> {
        self.master_key.as_ref().and_then(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(k.expose().trim())
                .ok()
        })
    }

    /// The SSRF guard's allow list, or `None` when outbound calls are off.
    pub fn egress(&self) -> Option<&[String]> {
        (!self.egress_off).then_some(self.egress_allow.as_slice())
    }

    /// The previous master keys' bytes; `validate` proved each 32 long.
    pub fn previous_master_key_bytes(&self) -> Vec<Vec<u8>> {
        self.previous_master_keys
            .iter()
            .filter_map(|k| {
                base64::engine::general_purpose::STANDARD
                    .decode(k.expose().trim())
                    .ok()
            })
            .collect()
    }

    /// The audit checkpoint signing seed: configured, else derived from the master key.
    pub fn audit_signing_seed(&self, master: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let configured = self.audit_signing_key.as_ref().and_then(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(k.expose().trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        });
        configured.unwrap_or_else(|| {
            let mut mac = <hmac::SimpleHmac<sha2::Sha256> as Mac>::new_from_slice(master)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            mac.update(b"aegis/audit-signing/v1");
            mac.finalize().into_bytes().into()
        })
    }

    /// Defaults, then the file, then the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let path = std::env::var("AEGIS_CONFIG").ok().or_else(|| {
            std::path::Path::new("aegis.toml")
                .exists()
                .then(|| "aegis.toml".to_string())
        });
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse { path, source })?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        config.validate()?;
        Ok(config)
    }

    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("AEGIS_HTTP_ADDR") {
            self.http_addr = v.parse().map_err(|e| invalid("AEGIS_HTTP_ADDR", e))?;
        }
        if let Some(v) = get("AEGIS_METRICS_ADDR") {
            self.metrics_addr = match v.trim() {
                "" | "off" => None,
                addr => Some(addr.parse().map_err(|e| invalid("AEGIS_METRICS_ADDR", e))?),
            };
        }
        if let Some(v) = get("NATS_URL") {
            self.nats_url = v;
        }
        if let Some(v) = get("DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = get("AEGIS_MASTER_KEY") {
            self.master_key = Some(Secret(v));
        }
        if let Some(v) = get("AEGIS_MASTER_KEY_PREVIOUS") {
            self.previous_master_keys = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Secret::new)
                .collect();
        }
        if let Some(v) = get("AEGIS_BOOTSTRAP_TOKEN") {
            self.bootstrap_token = Some(Secret(v));
        }
        if let Some(v) = get("AEGIS_INTERNAL_SECRET") {
            self.internal_secret = Some(Secret(v));
        }
        if let Some(v) = get("AEGIS_EGRESS_ALLOW") {
            self.egress_allow = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(v) = get("AEGIS_EGRESS_OFF") {
            self.egress_off = matches!(v.trim(), "1" | "true" | "yes");
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            self.otlp_endpoint = Some(v);
        }
        if let Some(v) = get("AEGIS_JWT_KID") {
            self.jwt_kid = v.trim().to_string();
        }
        if let Some(v) = get("AEGIS_JWT_RETIRED_KIDS") {
            self.jwt_retired_kids = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(v) = get("AEGIS_JWT_TTL_SECS") {
            self.jwt_ttl_secs = v.parse().map_err(|e| invalid("AEGIS_JWT_TTL_SECS", e))?;
        }
        if let Some(v) = get("AEGIS_TENANT_RATE_LIMIT") {
            self.tenant_rate_limit = v
                .parse()
                .map_err(|e| invalid("AEGIS_TENANT_RATE_LIMIT", e))?;
        }
        if let Some(v) = get("AEGIS_AUDIT_SIGNING_KEY") {
            self.audit_signing_key = Some(Secret(v));
        }
        if let Some(v) = get("AEGIS_AUDIT_CHECKPOINT_SECS") {
            self.audit_checkpoint_secs = v
                .parse()
                .map_err(|e| invalid("AEGIS_AUDIT_CHECKPOINT_SECS", e))?;
        }
        if let Some(v) = get("AEGIS_VAULT_TICK_SECS") {
            self.vault_tick_secs = v.parse().map_err(|e| invalid("AEGIS_VAULT_TICK_SECS", e))?;
        }
        if let Some(v) = get("AEGIS_AR_APPROVAL_TTL_SECS") {
            self.ar_approval_ttl_secs = v
                .parse()
                .map_err(|e| invalid("AEGIS_AR_APPROVAL_TTL_SECS", e))?;
        }
        if let Some(v) = get("AEGIS_AR_TICK_SECS") {
            self.ar_tick_secs = v.parse().map_err(|e| invalid("AEGIS_AR_TICK_SECS", e))?;
        }
        if let Some(v) = get("AEGIS_LEAK_MAX_REPOSITORY_MB") {
            self.leak_max_repository_mb = v
                .parse()
                .map_err(|e| invalid("AEGIS_LEAK_MAX_REPOSITORY_MB", e))?;
        }
        if let Some(v) = get("AEGIS_GITOPS_ENABLED") {
            self.gitops_enabled = matches!(v.trim(), "1" | "true" | "yes");
        }
        if let Some(v) = get("AEGIS_BROKER_JOB_LEASE_SECS") {
            self.broker_job_lease_secs = v
                .parse()
                .map_err(|e| invalid("AEGIS_BROKER_JOB_LEASE_SECS", e))?;
        }
        if let Some(v) = get("AEGIS_BROKER_JOB_MAX_ATTEMPTS") {
            self.broker_job_max_attempts = v
                .parse()
                .map_err(|e| invalid("AEGIS_BROKER_JOB_MAX_ATTEMPTS", e))?;
        }
        if let Some(v) = get("AEGIS_GITHUB_API_URL") {
            self.github_api_url = v.trim_end_matches('/').to_string();
        }
        if let Some(v) = get("AEGIS_GITLAB_API_URL") {
            self.gitlab_api_url = v.trim_end_matches('/').to_string();
        }
        if let Some(v) = get("AEGIS_ABUSEIPDB_API_KEY").filter(|v| !v.is_empty()) {
            self.abuseipdb_api_key = Some(Secret(v));
        }
        if let Some(v) = get("AEGIS_SHODAN_API_KEY").filter(|v| !v.is_empty()) {
            self.shodan_api_key = Some(Secret(v));
        }
        if let Some(v) = get("AEGIS_ABUSEIPDB_URL") {
            self.abuseipdb_url = v;
        }
        if let Some(v) = get("AEGIS_SHODAN_URL") {
            self.shodan_url = v;
        }
        if let Some(v) = get("AEGIS_THREAT_INTEL_PER_MINUTE") {
            self.threat_intel_per_minute = v
                .parse()
                .map_err(|e| invalid("AEGIS_THREAT_INTEL_PER_MINUTE", e))?;
        }
        if let Some(v) = get("AEGIS_WEBHOOK_ATTEMPTS") {
            self.webhook_attempts = v
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=20).contains(n))
                .ok_or_else(|| invalid("AEGIS_WEBHOOK_ATTEMPTS", "expected 1 to 20"))?;
        }
        if let Some(v) = get("AEGIS_WEBHOOK_BACKOFF_MS") {
            self.webhook_backoff_ms = v
                .parse()
                .map_err(|e| invalid("AEGIS_WEBHOOK_BACKOFF_MS", e))?;
        }
        if let Some(v) = get("AEGIS_GITOPS_POLL_MS") {
            self.gitops_poll_ms = v.parse().map_err(|e| invalid("AEGIS_GITOPS_POLL_MS", e))?;
        }
        if let Some(v) = get("AEGIS_GITOPS_TIMEOUT_SECS") {
            let secs = v
                .parse()
                .map_err(|e| invalid("AEGIS_GITOPS_TIMEOUT_SECS", e))?;
            self.gitops_timeout_secs = secs;
        }
        if let Some(v) = get("AEGIS_SIEM_TICK_MS") {
            self.siem_tick_ms = v.parse().map_err(|e| invalid("AEGIS_SIEM_TICK_MS", e))?;
        }
        if let Some(v) = get("AEGIS_REPORTS_TICK_MS") {
            self.reports_tick_ms = v.parse().map_err(|e| invalid("AEGIS_REPORTS_TICK_MS", e))?;
        }
        if let Some(v) = get("AEGIS_NATS_AUTH_SEED").filter(|v| !v.is_empty()) {
            self.nats_auth_seed = Some(Secret(v));
        }
        if let Some(v) = get("AEGIS_SHUTDOWN_GRACE_SECS") {
            let secs = v
                .parse()
                .map_err(|e| invalid("AEGIS_SHUTDOWN_GRACE_SECS", e))?;
            self.shutdown_grace_secs = secs;
        }
        if let Some(v) = get("AEGIS_MAX_COMMANDS_IN_FLIGHT") {
            let n = v
                .parse()
                .map_err(|e| invalid("AEGIS_MAX_COMMANDS_IN_FLIGHT", e))?;
            self.max_commands_in_flight = n;
        }
        if let Some(v) = get("AEGIS_MAX_CONNECTIONS") {
            self.max_connections = v.parse().map_err(|e| invalid("AEGIS_MAX_CONNECTIONS", e))?;
        }
        if let Some(v) = get("AEGIS_STREAM_REPLICAS") {
            self.stream_replicas = v.parse().map_err(|e| invalid("AEGIS_STREAM_REPLICAS", e))?;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let previous = self.previous_master_keys.iter();
        for (name, key) in self
            .master_key
            .iter()
            .map(|k| ("AEGIS_MASTER_KEY", k))
            .chain(previous.map(|k| ("AEGIS_MASTER_KEY_PREVIOUS", k)))
        {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(key.expose().trim())
                .map_err(|e| invalid(name, format!("not base64: {e}")))?;
            if bytes.len() != 32 {
                return Err(invalid(
                    name,
                    format!("must decode to 32 bytes, got {}", bytes.len()),
                ));
            }
        }
        if let Some(key) = &self.audit_signing_key {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(key.expose().trim())
                .map_err(|e| invalid("AEGIS_AUDIT_SIGNING_KEY", format!("not base64: {e}")))?;
            if bytes.len() != 32 {
                return Err(invalid(
                    "AEGIS_AUDIT_SIGNING_KEY",
                    format!("must decode to 32 bytes, got {}", bytes.len()),
                ));
            }
        }
        if self.ar_approval_ttl_secs == 0 {
            return Err(invalid("AEGIS_AR_APPROVAL_TTL_SECS", "must be at least 1"));
        }
        if self.audit_checkpoint_secs == 0 {
            return Err(invalid("AEGIS_AUDIT_CHECKPOINT_SECS", "must be at least 1"));
        }
        for (name, secret) in [
            ("AEGIS_BOOTSTRAP_TOKEN", &self.bootstrap_token),
            ("AEGIS_INTERNAL_SECRET", &self.internal_secret),
        ] {
            if secret.as_ref().is_some_and(|s| s.expose().len() < 16) {
                return Err(invalid(name, "must be at least 16 characters"));
            }
        }
        if self.jwt_kid.is_empty() || self.jwt_kid.len() > 64 {
            return Err(invalid("AEGIS_JWT_KID", "must be 1 to 64 characters"));
        }
        if !(60..=86_400).contains(&self.jwt_ttl_secs) {
            return Err(invalid(
                "AEGIS_JWT_TTL_SECS",
                "must be between 60 and 86400 seconds",
            ));
        }
        if !(1..=5).contains(&self.stream_replicas) {
            return Err(invalid("AEGIS_STREAM_REPLICAS", "must be between 1 and 5"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
