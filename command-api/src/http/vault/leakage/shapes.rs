//! The bodies of seed 003's leakage-detection routes, camelCase as the document writes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeakPatternBody {
    /// `regex` (the first group, when there is one, is the secret), `keyword` (the value
    /// assigned to it) or `entropy` (the least bits per character, e.g. `4.5`).
    #[serde(rename = "type")]
    pub kind: String,
    pub pattern: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LeakActionsBody {
    /// `alert` (an incident only), `rotate` (the leaked secret rotated through the vault) or
    /// `revoke` (the leaked secret retired).
    pub on_detection: String,
    pub notification_channels: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LeakPolicyBody {
    pub name: String,
    pub description: Option<String>,
    pub secret_patterns: Vec<LeakPatternBody>,
    /// `github`, `gitlab`, `pastebin`, `s3` or `url`.
    pub scan_targets: Option<Vec<String>>,
    pub actions: Option<LeakActionsBody>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeakPolicyCreated {
    pub policy_id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeakPolicySummary {
    pub policy_id: String,
    pub name: String,
    pub enabled: bool,
    /// How many patterns it holds.
    pub secret_patterns: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeakPolicyList {
    pub policies: Vec<LeakPolicySummary>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeakPolicyView {
    pub policy_id: String,
    pub name: String,
    pub description: String,
    pub secret_patterns: Vec<Value>,
    pub scan_targets: Vec<String>,
    pub actions: Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LeakIncidentBody {
    /// The leaked secret: a credential's name or id.
    pub secret_id: String,
    pub source: String,
    pub location: String,
    /// When it was seen; now when left out.
    pub detected_at: Option<DateTime<Utc>>,
    pub severity: String,
    /// Any JSON object, at most 16 KiB.
    pub details: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeakIncidentCreated {
    pub incident_id: String,
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    /// `open`, `investigating`, `resolved` or `false_positive`.
    pub status: Option<String>,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: Option<String>,
    /// Detected at or after this time (ISO 8601).
    pub since: Option<DateTime<Utc>>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct LeakIncidentSummary {
    pub incident_id: String,
    /// The leaked secret's name; empty when the value matched none of the tenant's.
    pub secret_id: String,
    pub source: String,
    pub severity: String,
    pub status: String,
    pub detected_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeakIncidentList {
    pub incidents: Vec<LeakIncidentSummary>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct LeakIncidentView {
    pub incident_id: String,
    pub secret_id: String,
    pub source: String,
    pub location: String,
    pub severity: String,
    pub status: String,
    pub details: Value,
    /// What happened, oldest first: `detected`, `seen_again`, `rotated`, `revoked`,
    /// `action_failed`, `status_changed`.
    pub timeline: Value,
    pub resolution: String,
    pub notes: String,
    pub detected_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeakIncidentPatch {
    /// `investigating`, `resolved` or `false_positive`.
    pub status: String,
    pub resolution: Option<String>,
    pub notes: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeakIncidentUpdated {
    pub incident_id: String,
    pub status: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeakScanScope {
    /// Git repositories: http(s) clone URLs, or `owner/name` under a `github` or `gitlab`
    /// target. Every blob of every commit is read.
    pub repositories: Option<Vec<String>>,
    /// GitHub organizations or GitLab groups (full paths), under the scan's git targets:
    /// every repository each lists when the scan runs is cloned and read.
    pub organizations: Option<Vec<String>>,
    /// Pages read as they are (a paste, a gist's raw URL).
    pub urls: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LeakScanBody {
    /// `github`, `gitlab`, `pastebin`, `s3` or `url`: what the sources are (the incidents'
    /// `source`).
    pub targets: Vec<String>,
    pub scope: LeakScanScope,
    /// The policies whose patterns and actions apply; the built-in pack always applies.
    pub policy_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeakScanQueued {
    pub scan_id: String,
    pub status: &'static str,
    pub estimated_completion_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeakScanView {
    pub scan_id: String,
    /// `queued`, `running`, `completed` or `failed`.
    pub status: String,
    /// Percent of targets done.
    pub progress: i32,
    /// Leaked values found (one per value and target).
    pub findings: i32,
    pub bytes_scanned: i64,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Why the scan failed: which target could not be read.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeakBySeverity {
    pub critical: i64,
    pub high: i64,
    pub medium: i64,
    pub low: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeakStats {
    pub total_incidents: i64,
    pub open_incidents: i64,
    pub resolved_incidents: i64,
    pub by_severity: LeakBySeverity,
    pub by_source: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct LeakCheckIncident {
    pub incident_id: String,
    pub severity: String,
    pub source: String,
    pub detected_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeakCheck {
    pub secret_id: String,
    pub has_active_incidents: bool,
    pub incidents: Vec<LeakCheckIncident>,
}
