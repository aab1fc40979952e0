//! Which protobuf message each event type carries, and its payload as JSON: what rules match
//! against and what subscribers read, for every context, without per-event code. Proto field
//! names are kept (`agent_id`, not `agentId`) and bytes are base64, as proto3 JSON has it.

use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MessageDescriptor, ReflectMessage, SerializeOptions,
};
use std::sync::OnceLock;

/// Every event type in the log and its message. A test in aegis-command-api keeps this list
/// equal to the event types the deciders write.
pub const EVENTS: &[(&str, &str)] = &[
    ("tenant.created.v1", "aegis.identity.v1.TenantCreated"),
    (
        "tenant.name_claimed.v1",
        "aegis.identity.v1.TenantNameClaimed",
    ),
    ("tenant.plan_set.v1", "aegis.identity.v1.TenantPlanSet"),
    ("user.created.v1", "aegis.identity.v1.UserCreated"),
    (
        "user.status_changed.v1",
        "aegis.identity.v1.UserStatusChanged",
    ),
    ("user.renamed.v1", "aegis.identity.v1.UserRenamed"),
    (
        "user.role_assigned.v1",
        "aegis.identity.v1.UserRoleAssigned",
    ),
    (
        "user.role_unassigned.v1",
        "aegis.identity.v1.UserRoleUnassigned",
    ),
    (
        "user.email_claimed.v1",
        "aegis.identity.v1.UserEmailClaimed",
    ),
    ("user.logged_in.v1", "aegis.identity.v1.UserLoggedIn"),
    ("user.login_failed.v1", "aegis.identity.v1.UserLoginFailed"),
    (
        "user.platform_admin_set.v1",
        "aegis.identity.v1.UserPlatformAdminSet",
    ),
    ("role.created.v1", "aegis.identity.v1.RoleCreated"),
    (
        "role.permissions_set.v1",
        "aegis.identity.v1.RolePermissionsSet",
    ),
    ("role.deleted.v1", "aegis.identity.v1.RoleDeleted"),
    ("role.name_claimed.v1", "aegis.identity.v1.RoleNameClaimed"),
    (
        "role.name_released.v1",
        "aegis.identity.v1.RoleNameReleased",
    ),
    ("api_key.created.v1", "aegis.identity.v1.ApiKeyCreated"),
    ("api_key.revoked.v1", "aegis.identity.v1.ApiKeyRevoked"),
    ("agent.minted.v1", "aegis.identity.v1.AgentMinted"),
    (
        "agent.wire_key_registered.v1",
        "aegis.identity.v1.AgentWireKeyRegistered",
    ),
    ("dek.issued.v1", "aegis.broker.v1.DekIssued"),
    ("job.enqueued.v1", "aegis.broker.v1.JobEnqueued"),
    (
        "discovered_secret.observed.v1",
        "aegis.broker.v1.SecretObserved",
    ),
    (
        "discovered_secret.changed.v1",
        "aegis.broker.v1.SecretObserved",
    ),
    ("discovered_secret.gone.v1", "aegis.broker.v1.SecretGone"),
    ("job.claimed.v1", "aegis.broker.v1.JobClaimed"),
    ("job.completed.v1", "aegis.broker.v1.JobCompleted"),
    ("job.expired.v1", "aegis.broker.v1.JobExpired"),
    ("wrap.created.v1", "aegis.broker.v1.WrapCreated"),
    ("wrap.retrieved.v1", "aegis.broker.v1.WrapRetrieved"),
    ("wrap.denied.v1", "aegis.broker.v1.WrapDenied"),
    ("wrap.expired.v1", "aegis.broker.v1.WrapExpired"),
    ("wrap.key_destroyed.v1", "aegis.broker.v1.WrapKeyDestroyed"),
    ("request.submitted.v1", "aegis.broker.v1.RequestSubmitted"),
    ("request.vote_cast.v1", "aegis.broker.v1.RequestVoteCast"),
    ("request.approved.v1", "aegis.broker.v1.RequestApproved"),
    ("request.rejected.v1", "aegis.broker.v1.RequestRejected"),
    (
        "request.break_glass.v1",
        "aegis.broker.v1.RequestBrokeGlass",
    ),
    ("request.cancelled.v1", "aegis.broker.v1.RequestCancelled"),
    ("request.expired.v1", "aegis.broker.v1.RequestExpired"),
    ("request.finished.v1", "aegis.broker.v1.RequestFinished"),
    (
        "request.gitops_queued.v1",
        "aegis.broker.v1.RequestGitopsQueued",
    ),
    (
        "request.gitops_polled.v1",
        "aegis.broker.v1.RequestGitopsPolled",
    ),
    ("workflow.created.v1", "aegis.broker.v1.WorkflowSaved"),
    ("workflow.updated.v1", "aegis.broker.v1.WorkflowSaved"),
    ("workflow.deleted.v1", "aegis.broker.v1.WorkflowDeleted"),
    ("policy.created.v1", "aegis.broker.v1.PolicySaved"),
    ("policy.updated.v1", "aegis.broker.v1.PolicySaved"),
    ("policy.deleted.v1", "aegis.broker.v1.PolicyDeleted"),
    ("project.created.v1", "aegis.broker.v1.ProjectCreated"),
    (
        "project.status_changed.v1",
        "aegis.broker.v1.ProjectStatusChanged",
    ),
    (
        "environment.created.v1",
        "aegis.broker.v1.EnvironmentCreated",
    ),
    (
        "environment.deleted.v1",
        "aegis.broker.v1.EnvironmentDeleted",
    ),
    (
        "argocd_endpoint.added.v1",
        "aegis.broker.v1.ArgocdEndpointAdded",
    ),
    (
        "argocd_endpoint.enabled_set.v1",
        "aegis.broker.v1.ArgocdEndpointEnabledSet",
    ),
    (
        "argocd_endpoint.removed.v1",
        "aegis.broker.v1.ArgocdEndpointRemoved",
    ),
    (
        "gitops_mapping.added.v1",
        "aegis.broker.v1.GitopsMappingAdded",
    ),
    (
        "gitops_mapping.removed.v1",
        "aegis.broker.v1.GitopsMappingRemoved",
    ),
    (
        "agent.status_changed.v1",
        "aegis.identity.v1.AgentStatusChanged",
    ),
    ("usage.recorded.v1", "aegis.identity.v1.UsageRecorded"),
    ("incident.opened.v1", "aegis.incidents.v1.IncidentOpened"),
    (
        "incident.status_changed.v1",
        "aegis.incidents.v1.IncidentStatusChanged",
    ),
    (
        "incident.assigned.v1",
        "aegis.incidents.v1.IncidentAssigned",
    ),
    (
        "incident.action_recorded.v1",
        "aegis.incidents.v1.IncidentActionRecorded",
    ),
    (
        "incident.dedup_claimed.v1",
        "aegis.incidents.v1.IncidentDedupClaimed",
    ),
    ("checkpoint.signed.v1", "aegis.audit.v1.CheckpointSigned"),
    ("projection.skipped.v1", "aegis.audit.v1.ProjectionSkipped"),
    (
        "projection.rebuild_requested.v1",
        "aegis.audit.v1.ProjectionRebuildRequested",
    ),
    ("credential.created.v1", "aegis.vault.v1.CredentialCreated"),
    ("credential.updated.v1", "aegis.vault.v1.CredentialUpdated"),
    ("credential.version_added.v1", "aegis.vault.v1.VersionAdded"),
    (
        "credential.rotation_started.v1",
        "aegis.vault.v1.RotationStarted",
    ),
    (
        "credential.rotation_failed.v1",
        "aegis.vault.v1.RotationFailed",
    ),
    ("credential.retired.v1", "aegis.vault.v1.CredentialRetired"),
    (
        "credential.destroyed.v1",
        "aegis.vault.v1.CredentialDestroyed",
    ),
    (
        "credential.health_checked.v1",
        "aegis.vault.v1.HealthChecked",
    ),
    (
        "credential.expiry_alerted.v1",
        "aegis.vault.v1.ExpiryAlerted",
    ),
    ("credential.applied.v1", "aegis.vault.v1.CredentialApplied"),
    ("credential.value_read.v1", "aegis.vault.v1.ValueRead"),
    (
        "credential.version_state_changed.v1",
        "aegis.vault.v1.VersionStateChanged",
    ),
    ("credential.retention_set.v1", "aegis.vault.v1.RetentionSet"),
    (
        "dynamic_config.created.v1",
        "aegis.vault.v1.DynamicConfigCreated",
    ),
    ("lease.issued.v1", "aegis.vault.v1.LeaseIssued"),
    ("lease.renewed.v1", "aegis.vault.v1.LeaseRenewed"),
    ("lease.revoked.v1", "aegis.vault.v1.LeaseRevoked"),
    ("leak_policy.created.v1", "aegis.vault.v1.LeakPolicyCreated"),
    ("leak_policy.deleted.v1", "aegis.vault.v1.LeakPolicyDeleted"),
    (
        "leak_incident.reported.v1",
        "aegis.vault.v1.LeakIncidentReported",
    ),
    (
        "leak_incident.seen_again.v1",
        "aegis.vault.v1.LeakIncidentSeenAgain",
    ),
    (
        "leak_incident.status_changed.v1",
        "aegis.vault.v1.LeakIncidentStatusChanged",
    ),
    ("leak_incident.acted.v1", "aegis.vault.v1.LeakIncidentActed"),
    ("leak_scan.queued.v1", "aegis.vault.v1.LeakScanQueued"),
    ("leak_scan.started.v1", "aegis.vault.v1.LeakScanStarted"),
    (
        "leak_scan.progressed.v1",
        "aegis.vault.v1.LeakScanProgressed",
    ),
    ("leak_scan.completed.v1", "aegis.vault.v1.LeakScanCompleted"),
    ("leak_scan.failed.v1", "aegis.vault.v1.LeakScanFailed"),
    (
        "tenant_key.destroyed.v1",
        "aegis.vault.v1.TenantKeyDestroyed",
    ),
    ("rule.created.v1", "aegis.auto_response.v1.RuleCreated"),
    ("rule.updated.v1", "aegis.auto_response.v1.RuleUpdated"),
    ("rule.mode_set.v1", "aegis.auto_response.v1.RuleModeSet"),
    ("rule.deleted.v1", "aegis.auto_response.v1.RuleDeleted"),
    ("run.started.v1", "aegis.auto_response.v1.RunStarted"),
    ("run.completed.v1", "aegis.auto_response.v1.RunCompleted"),
    ("brake.tripped.v1", "aegis.auto_response.v1.BrakeTripped"),
    (
        "approval.requested.v1",
        "aegis.auto_response.v1.ApprovalRequested",
    ),
    (
        "approval.approved.v1",
        "aegis.auto_response.v1.ApprovalApproved",
    ),
    (
        "approval.rejected.v1",
        "aegis.auto_response.v1.ApprovalRejected",
    ),
    (
        "approval.expired.v1",
        "aegis.auto_response.v1.ApprovalExpired",
    ),
    (
        "approval.executed.v1",
        "aegis.auto_response.v1.ApprovalExecuted",
    ),
    ("dashboard.saved.v1", "aegis.identity.v1.DashboardSaved"),
    (
        "kill_switch.engaged.v1",
        "aegis.identity.v1.KillSwitchEngaged",
    ),
    (
        "kill_switch.released.v1",
        "aegis.identity.v1.KillSwitchReleased",
    ),
    ("webhook.created.v1", "aegis.integrations.v1.WebhookCreated"),
    ("webhook.updated.v1", "aegis.integrations.v1.WebhookUpdated"),
    ("webhook.deleted.v1", "aegis.integrations.v1.WebhookDeleted"),
    (
        "webhook.delivery_replayed.v1",
        "aegis.integrations.v1.WebhookDeliveryReplayed",
    ),
    ("siem.created.v1", "aegis.integrations.v1.SiemCreated"),
    ("siem.updated.v1", "aegis.integrations.v1.SiemUpdated"),
    ("siem.deleted.v1", "aegis.integrations.v1.SiemDeleted"),
    ("report.created.v1", "aegis.integrations.v1.ReportCreated"),
    ("report.updated.v1", "aegis.integrations.v1.ReportUpdated"),
    ("report.deleted.v1", "aegis.integrations.v1.ReportDeleted"),
    ("report.ran.v1", "aegis.integrations.v1.ReportRan"),
];

fn pool() -> Option<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(crate::DESCRIPTOR_SET).ok())
        .as_ref()
}

/// The message an event type carries.
pub fn message_of(event_type: &str) -> Option<&'static str> {
    EVENTS
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, m)| *m)
}

/// An event's payload as JSON with every field present; `None` for an unknown event type or a
/// payload that does not decode as its message.
pub fn payload_json(event_type: &str, payload: &[u8]) -> Option<serde_json::Value> {
    let desc = pool()?.get_message_by_name(message_of(event_type)?)?;
    let message = DynamicMessage::decode(desc.clone(), payload).ok()?;
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false);
    let mut json = message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .ok()?;
    redact(&desc, &mut json);
    Some(json)
}

/// Scalar fields that hold credential material: password hashes and the keyed digests of API
/// keys and agent secrets. (Events written since these moved to the envelope's `credential`
/// hold them empty; older events still carry them.)
pub const CREDENTIAL_FIELDS: &[(&str, &str)] = &[
    ("aegis.identity.v1.UserCreated", "password_hash"),
    ("aegis.identity.v1.ApiKeyCreated", "digest"),
    ("aegis.identity.v1.AgentMinted", "digest"),
];

/// Messages that are credential material wherever they appear: sealed values and secrets.
pub const CREDENTIAL_MESSAGES: &[&str] = &[
    "aegis.vault.v1.SealedValue",
    "aegis.integrations.v1.SealedSecrets",
    "aegis.broker.v1.WrapSealed",
    "aegis.broker.v1.RequestValues",
    "aegis.broker.v1.SealedKeyValue",
    "aegis.broker.v1.EndpointSealed",
];

/// Whether a field of `message` holds credential material.
pub fn is_credential(message: &MessageDescriptor, field: &prost_reflect::FieldDescriptor) -> bool {
    CREDENTIAL_FIELDS.contains(&(message.full_name(), field.name()))
        || matches!(field.kind(), Kind::Message(m) if CREDENTIAL_MESSAGES.contains(&m.full_name()))
}

/// Whether an event type's message can carry credential material (at any depth): such an
/// event leaves in an export with its payload withheld.
pub fn carries_credentials(event_type: &str) -> bool {
    fn walk(message: &MessageDescriptor, depth: usize) -> bool {
        depth < 8
            && message.fields().any(|f| {
                is_credential(message, &f)
                    || matches!(f.kind(), Kind::Message(m) if walk(&m, depth + 1))
            })
    }
    // Asked for every exported event: the schemas are walked once, for every type.
    static CARRYING: OnceLock<Vec<&'static str>> = OnceLock::new();
    CARRYING
        .get_or_init(|| {
            EVENTS
                .iter()
                .filter(|(_, message)| {
                    pool()
                        .and_then(|p| p.get_message_by_name(message))
                        .is_some_and(|m| walk(&m, 0))
                })
                .map(|(event_type, _)| *event_type)
                .collect()
        })
        .contains(&event_type)
}

/// Whether this payload itself holds credential material: true only for events written
/// before the material moved to the envelope's `credential` (their export withholds the
/// payload); an event written since keeps those fields empty.
pub fn payload_has_credentials(event_type: &str, payload: &[u8]) -> bool {
    fn walk(message: &DynamicMessage, depth: usize) -> bool {
        let desc = message.descriptor();
        depth < 8
            && desc.fields().any(|f| {
                if !message.has_field(&f) {
                    return false;
                }
                if is_credential(&desc, &f) {
                    return true;
                }
                match &*message.get_field(&f) {
                    prost_reflect::Value::Message(m) => walk(m, depth + 1),
                    prost_reflect::Value::List(items) => items.iter().any(
                        |v| matches!(v, prost_reflect::Value::Message(m) if walk(m, depth + 1)),
                    ),
                    _ => false,
                }
            })
    }
    if !carries_credentials(event_type) {
        return false;
    }
    let Some(desc) = pool().and_then(|p| p.get_message_by_name(message_of(event_type)?)) else {
        return false;
    };
    // A payload that does not decode is withheld: what it holds cannot be told.
    DynamicMessage::decode(desc, payload).map_or(true, |m| walk(&m, 0))
}

/// Removes credential material from a payload's JSON, at any depth: `payload_json` is the one
/// way a payload leaves as JSON (subscribers, SIEMs, rules, simulation), so nothing a reader
/// holds (an AUDITOR's stream, a SIEM) can be cracked offline or replayed.
fn redact(message: &MessageDescriptor, json: &mut serde_json::Value) {
    let Some(object) = json.as_object_mut() else {
        return;
    };
    for field in message.fields() {
        if is_credential(message, &field) {
            object.remove(field.name());
            continue;
        }
        let (Kind::Message(inner), Some(value)) = (field.kind(), object.get_mut(field.name()))
        else {
            continue;
        };
        if field.is_map() {
            continue;
        }
        match value {
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| redact(&inner, v)),
            v => redact(&inner, v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn every_registered_message_exists_and_types_are_unique() {
        let pool = pool().expect("the descriptor set decodes");
        let mut seen = std::collections::HashSet::new();
        for (event_type, message) in EVENTS {
            assert!(seen.insert(*event_type), "{event_type} twice");
            assert!(
                pool.get_message_by_name(message).is_some(),
                "{event_type}: no message {message}"
            );
        }
    }

    #[test]
    fn payloads_become_json_with_proto_field_names() {
        let payload = crate::incidents::v1::IncidentOpened {
            title: "Prompt injection".into(),
            agent_id: "agent-7".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let json = payload_json("incident.opened.v1", &payload).expect("decodes");
        assert_eq!(json["title"], "Prompt injection");
        assert_eq!(json["agent_id"], "agent-7");
        assert_eq!(json["severity"], "", "defaults are present");
        assert!(payload_json("nope.v1", &payload).is_none());
        assert!(payload_json("incident.opened.v1", &[0xff, 0xff]).is_none());
    }

    #[test]
    fn credential_material_never_becomes_json() {
        let user = crate::identity::v1::UserCreated {
            email: "ana@example.com".into(),
            name: "Ana".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        }
        .encode_to_vec();
        let json = payload_json("user.created.v1", &user).expect("decodes");
        assert_eq!(json["email"], "ana@example.com");
        assert!(json.get("password_hash").is_none(), "{json}");
        let version = crate::vault::v1::VersionAdded {
            version: 2,
            value: Some(crate::vault::v1::SealedValue {
                nonce: vec![1; 24],
                ciphertext: b"sealed-bytes".to_vec(),
            }),
            ..Default::default()
        }
        .encode_to_vec();
        let json = payload_json("credential.version_added.v1", &version).expect("decodes");
        assert_eq!(json["version"], "2", "uint64 is a string in proto JSON");
        assert!(json.get("value").is_none(), "{json}");
    }

    #[test]
    fn event_types_with_credential_material_are_known() {
        for t in [
            "user.created.v1",
            "api_key.created.v1",
            "agent.minted.v1",
            "credential.version_added.v1",
            "webhook.created.v1",
            "siem.updated.v1",
        ] {
            assert!(carries_credentials(t), "{t}");
        }
        for t in ["incident.opened.v1", "user.renamed.v1", "nope.v1"] {
            assert!(!carries_credentials(t), "{t}");
        }
    }

    #[test]
    fn only_payloads_that_still_hold_material_are_said_to() {
        let legacy = crate::identity::v1::UserCreated {
            email: "ana@example.com".into(),
            password_hash: "$argon2id$...".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert!(payload_has_credentials("user.created.v1", &legacy));
        let current = crate::identity::v1::UserCreated {
            email: "ana@example.com".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert!(!payload_has_credentials("user.created.v1", &current));
        let sealed = crate::vault::v1::VersionAdded {
            version: 1,
            value: Some(crate::vault::v1::SealedValue::default()),
            ..Default::default()
        }
        .encode_to_vec();
        assert!(payload_has_credentials(
            "credential.version_added.v1",
            &sealed
        ));
        assert!(!payload_has_credentials("incident.opened.v1", &legacy));
    }

    /// A new field that looks like credential material must be listed (or renamed).
    #[test]
    fn every_field_that_looks_like_a_credential_is_redacted() {
        let pool = pool().expect("the descriptor set decodes");
        for message in pool.all_messages() {
            for field in message.fields() {
                let name = field.name();
                let looks = ["hash", "digest", "secret", "cipher", "password", "token"]
                    .iter()
                    .any(|w| name.contains(w));
                let chain = message.full_name() == "aegis.envelope.v1.Envelope";
                let sealed_part = CREDENTIAL_MESSAGES.contains(&message.full_name());
                if looks && !chain && !sealed_part {
                    assert!(
                        is_credential(&message, &field),
                        "{}.{name} looks like credential material but is not redacted",
                        message.full_name()
                    );
                }
            }
        }
    }
}
