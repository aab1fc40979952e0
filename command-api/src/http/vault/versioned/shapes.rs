//! The bodies of seed 003's versioned-secret routes, camelCase as the document writes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretWriteMetadata {
    /// Why, up to 500 characters.
    pub reason: Option<String>,
    /// Who the caller says made the change, up to 200 characters (the caller is recorded too).
    pub changed_by: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretWriteBody {
    /// The secret's name (created on first write) or a credential's id.
    pub secret_id: String,
    /// The value, up to 64 KiB; sealed before it is recorded, never stored in clear.
    pub value: String,
    pub metadata: Option<SecretWriteMetadata>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretVersionWritten {
    pub secret_id: String,
    pub version: u64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretVersionSummary {
    pub version: u64,
    /// `active`, `deprecated` or `destroyed`.
    pub state: String,
    pub created_at: DateTime<Utc>,
    /// Who wrote it.
    pub created_by: String,
    /// `reason`, `changedBy`, and `restoredFrom` for a rollback.
    pub metadata: Value,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretHistory {
    pub secret_id: String,
    pub versions: Vec<SecretVersionSummary>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretVersionValue {
    pub secret_id: String,
    pub version: u64,
    /// The value in clear. Not cached, not logged.
    pub value: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub metadata: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretStateBody {
    /// `deprecated` or `destroyed` (destroying shreds the version's key: irreversible).
    pub state: String,
    /// Up to 500 characters.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStateChanged {
    pub secret_id: String,
    pub version: u64,
    pub state: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRollbackBody {
    pub target_version: u64,
    /// Up to 500 characters.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRolledBack {
    pub secret_id: String,
    /// The version that now holds the restored value: history is never rewritten.
    pub new_version: u64,
    pub rolled_back_from: u64,
    pub rolled_back_to: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretCompareBody {
    pub version1: u64,
    pub version2: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretComparedVersion {
    pub version: u64,
    pub created_at: DateTime<Utc>,
    /// HMAC-SHA256 of the value under a key made for this comparison only: equal within
    /// one answer when the values are equal, and never the same across answers.
    pub hash: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretComparison {
    pub secret_id: String,
    pub version1: SecretComparedVersion,
    pub version2: SecretComparedVersion,
    pub different: bool,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRetentionBody {
    /// Keep at most this many versions that are not destroyed (1 to 10,000).
    pub max_versions: Option<u32>,
    /// Destroy versions this long after they were written (ISO 8601, e.g. `P90D`).
    pub delete_after: Option<String>,
    /// Apply the policy with every new version; otherwise only on `enforce-retention`.
    #[serde(default)]
    pub auto_destroy: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRetentionSet {
    pub secret_id: String,
    pub retention_policy: SecretRetentionBody,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRetentionEnforced {
    pub secret_id: String,
    /// Versions destroyed now (their keys destroyed).
    pub versions_deleted: usize,
    /// Versions not destroyed.
    pub versions_retained: usize,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretAuditEntry {
    pub event_id: String,
    /// `created`, `read`, `deprecated`, `destroyed` or `rollback`.
    pub action: String,
    pub version: u64,
    pub actor: String,
    pub timestamp: DateTime<Utc>,
    /// False for a refused read.
    pub success: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretAudit {
    pub secret_id: String,
    pub events: Vec<SecretAuditEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretsByState {
    pub active: i64,
    pub deprecated: i64,
    pub destroyed: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStats {
    pub total_secrets: i64,
    pub total_versions: i64,
    pub average_versions_per_secret: f64,
    pub by_state: SecretsByState,
}
