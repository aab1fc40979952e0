//! What a workflow and a policy hold, what they accept, and how a policy's selector matches
//! a request.

use super::RulesError;
use aegis_schemas::broker::v1 as pb;
use uuid::Uuid;

/// The most workflows and policies a tenant keeps: the rules are one aggregate, read whole.
pub const MAX_WORKFLOWS: usize = 200;
pub const MAX_POLICIES: usize = 500;
/// The most approvers a workflow may ask for.
const MAX_APPROVERS: u32 = 25;
/// The longest any lifetime may be: a year.
const MAX_TTL_SECONDS: i64 = 366 * 24 * 3600;
const MAX_CHANNELS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    pub name: String,
    pub description: String,
    /// 0 approves a request on submission.
    pub min_approvers: u32,
    /// The role an approver must hold; empty: anyone with `secret.approve`.
    pub approver_role_id: String,
    pub wrap_ttl_created_seconds: i64,
    pub wrap_ttl_approved_seconds: i64,
    pub wrap_ttl_claimed_seconds: i64,
    pub request_ttl_seconds: i64,
    pub require_justification: bool,
    pub allow_self_approval: bool,
    /// Webhook ids notified of the workflow's requests.
    pub notification_channels: Vec<String>,
    pub is_default: bool,
    pub enabled: bool,
    /// Who may bypass the approvals, with a mandatory reason.
    pub break_glass_user_ids: Vec<Uuid>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> RulesError {
    RulesError::Invalid {
        field,
        message: message.into(),
    }
}

fn name_ok(field: &'static str, name: &str) -> Result<(), RulesError> {
    if name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(invalid(field, "1 to 200 characters, no control characters"));
    }
    Ok(())
}

impl Workflow {
    pub fn validate(&self) -> Result<(), RulesError> {
        name_ok("name", &self.name)?;
        if self.description.len() > 2000 {
            return Err(invalid("description", "at most 2000 bytes"));
        }
        if self.min_approvers > MAX_APPROVERS {
            return Err(invalid(
                "min_approvers",
                format!("0 to {MAX_APPROVERS} (0 approves on submission)"),
            ));
        }
        for (field, v) in [
            ("wrap_ttl_created_seconds", self.wrap_ttl_created_seconds),
            ("wrap_ttl_approved_seconds", self.wrap_ttl_approved_seconds),
            ("wrap_ttl_claimed_seconds", self.wrap_ttl_claimed_seconds),
            ("request_ttl_seconds", self.request_ttl_seconds),
        ] {
            if !(1..=MAX_TTL_SECONDS).contains(&v) {
                return Err(invalid(
                    field,
                    "a positive number of seconds, at most a year",
                ));
            }
        }
        if self.notification_channels.len() > MAX_CHANNELS
            || self
                .notification_channels
                .iter()
                .any(|c| Uuid::parse_str(c).is_err())
        {
            return Err(invalid(
                "notification_channels",
                format!("at most {MAX_CHANNELS} webhook ids"),
            ));
        }
        if self.break_glass_user_ids.len() > MAX_APPROVERS as usize {
            return Err(invalid(
                "break_glass_user_ids",
                format!("at most {MAX_APPROVERS} users"),
            ));
        }
        if self.approver_role_id.len() > 64 || self.approver_role_id.chars().any(char::is_control) {
            return Err(invalid("approver_role_id", "a role's id"));
        }
        Ok(())
    }

    pub fn to_pb(&self) -> pb::Workflow {
        pb::Workflow {
            name: self.name.clone(),
            description: self.description.clone(),
            min_approvers: self.min_approvers,
            approver_role_id: self.approver_role_id.clone(),
            wrap_ttl_created_seconds: self.wrap_ttl_created_seconds,
            wrap_ttl_approved_seconds: self.wrap_ttl_approved_seconds,
            wrap_ttl_claimed_seconds: self.wrap_ttl_claimed_seconds,
            request_ttl_seconds: self.request_ttl_seconds,
            require_justification: self.require_justification,
            allow_self_approval: self.allow_self_approval,
            notification_channels: self.notification_channels.clone(),
            is_default: self.is_default,
            enabled: self.enabled,
            break_glass_user_ids: self
                .break_glass_user_ids
                .iter()
                .map(Uuid::to_string)
                .collect(),
        }
    }

    pub fn from_pb(m: pb::Workflow) -> Self {
        Self {
            name: m.name,
            description: m.description,
            min_approvers: m.min_approvers,
            approver_role_id: m.approver_role_id,
            wrap_ttl_created_seconds: m.wrap_ttl_created_seconds,
            wrap_ttl_approved_seconds: m.wrap_ttl_approved_seconds,
            wrap_ttl_claimed_seconds: m.wrap_ttl_claimed_seconds,
            request_ttl_seconds: m.request_ttl_seconds,
            require_justification: m.require_justification,
            allow_self_approval: m.allow_self_approval,
            notification_channels: m.notification_channels,
            is_default: m.is_default,
            enabled: m.enabled,
            // Written only as UUIDs; anything else is dropped, never widened.
            break_glass_user_ids: m
                .break_glass_user_ids
                .iter()
                .filter_map(|u| Uuid::parse_str(u).ok())
                .collect(),
        }
    }
}

/// Which requests a policy applies to; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub project_id: Option<String>,
    pub environment: Option<String>,
    pub provider_type: Option<String>,
    pub secret_ref_prefix: Option<String>,
}

/// What a request asks about, as a selector sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub project_id: String,
    pub environment: String,
    pub provider_type: String,
    pub secret_ref: String,
}

impl Selector {
    pub fn matches(&self, t: &Target) -> bool {
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        is(&self.project_id, &t.project_id)
            && is(&self.environment, &t.environment)
            && is(&self.provider_type, &t.provider_type)
            && self
                .secret_ref_prefix
                .as_deref()
                .is_none_or(|p| t.secret_ref.starts_with(p))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub selector: Selector,
    pub workflow_id: Uuid,
    pub priority: i32,
    pub enabled: bool,
}

impl Policy {
    pub fn validate(&self) -> Result<(), RulesError> {
        name_ok("name", &self.name)?;
        let s = &self.selector;
        for v in [
            &s.project_id,
            &s.environment,
            &s.provider_type,
            &s.secret_ref_prefix,
        ]
        .into_iter()
        .flatten()
        {
            if v.is_empty() || v.len() > 512 {
                return Err(invalid(
                    "selector",
                    "a selector's values are 1 to 512 bytes (leave a key out to match anything)",
                ));
            }
        }
        Ok(())
    }

    pub fn to_pb(&self) -> pb::Policy {
        let s = &self.selector;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        pb::Policy {
            name: self.name.clone(),
            selector: Some(pb::PolicySelector {
                project_id: text(&s.project_id),
                environment: text(&s.environment),
                provider_type: text(&s.provider_type),
                target_ref_prefix: text(&s.secret_ref_prefix),
            }),
            workflow_id: self.workflow_id.to_string(),
            priority: self.priority,
            enabled: self.enabled,
        }
    }

    pub fn from_pb(m: pb::Policy) -> Result<Self, uuid::Error> {
        let s = m.selector.unwrap_or_default();
        let some = |v: String| (!v.is_empty()).then_some(v);
        Ok(Self {
            name: m.name,
            selector: Selector {
                project_id: some(s.project_id),
                environment: some(s.environment),
                provider_type: some(s.provider_type),
                secret_ref_prefix: some(s.target_ref_prefix),
            },
            workflow_id: Uuid::parse_str(&m.workflow_id)?,
            priority: m.priority,
            enabled: m.enabled,
        })
    }
}
