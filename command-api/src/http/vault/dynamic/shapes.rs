//! The bodies of seed 003's dynamic-secret routes, camelCase as the document writes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DynamicBackend {
    /// `postgres` (the others the document names answer 501 until built).
    #[serde(rename = "type")]
    pub kind: String,
    /// `postgres://user:password@host:port/database`: a user that may create roles. Sealed at
    /// once; never shown again.
    pub connection_string: String,
    /// Accepted for the document's shape; a postgres backend takes all it needs from the URL.
    pub credentials: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DynamicTemplate {
    /// `{{name}}` (the config's name) and `{{random}}`; default `v_{{name}}_{{random}}`.
    pub username_template: Option<String>,
    /// SQL run for each new role, `;`-separated; `{{name}}` is the role, quoted.
    pub role_template: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DynamicTtl {
    /// ISO 8601, e.g. `PT1H`.
    pub default: String,
    /// ISO 8601, e.g. `PT24H`: no lease lives longer, renewals included.
    pub max: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DynamicConfigBody {
    pub name: String,
    /// `database`, `cloud_credentials`, `api_key` or `certificate`.
    #[serde(rename = "type")]
    pub kind: String,
    pub backend: DynamicBackend,
    pub template: Option<DynamicTemplate>,
    pub ttl: DynamicTtl,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DynamicConfigCreated {
    pub config_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DynamicConfigSummary {
    pub config_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub backend: String,
    pub active_leases: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DynamicConfigs {
    pub configs: Vec<DynamicConfigSummary>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IssueMetadata {
    pub purpose: Option<String>,
    pub requested_by: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    /// ISO 8601; the configuration's default when left out, never past its max.
    pub ttl: Option<String>,
    pub metadata: Option<IssueMetadata>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DynamicCredentials {
    pub username: String,
    /// Shown in this answer only; never recorded.
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedLease {
    pub lease_id: String,
    pub credentials: DynamicCredentials,
    pub expires_at: DateTime<Utc>,
    pub renewable: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaseSummary {
    pub lease_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Leases {
    pub leases: Vec<LeaseSummary>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    /// ISO 8601, from now; the configuration's default when left out.
    pub ttl: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRenewed {
    pub lease_id: String,
    /// Never past the lease's creation plus the configuration's max.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRevoked {
    pub lease_id: String,
    pub revoked_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DynamicByType {
    pub database: i64,
    pub cloud_credentials: i64,
    pub api_key: i64,
    pub certificate: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DynamicStats {
    pub total_configs: i64,
    pub active_leases: i64,
    pub expired_leases: i64,
    pub revoked_leases: i64,
    /// Configurations by type.
    pub by_type: DynamicByType,
}
