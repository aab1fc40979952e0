//! The audit log: one row per event of every context, answering who did what to which
//! resource and when. Written in one statement per batch, since every event lands here.

use crate::runner::{Projection, ProjectionError};
use aegis_streams::StoredCommit;
use sqlx::PgConnection;

pub struct AuditProjection;

/// `incident.opened.v1` → `incident.opened`.
pub fn action(event_type: &str) -> &str {
    match event_type.rsplit_once('.') {
        Some((action, v)) if v.starts_with('v') && v[1..].chars().all(|c| c.is_ascii_digit()) => {
            action
        }
        _ => event_type,
    }
}

/// Seed 001's view of a vault event (`GET /audit/log`): the document's action name, who asked
/// for it when the command recorded that, what it acted on when more than the credential, and
/// whether it succeeded.
#[derive(Debug, PartialEq)]
pub struct VaultEntry {
    pub action: String,
    pub requested_by: Option<String>,
    pub target: Option<String>,
    pub success: bool,
}

/// What seed 001 calls a vault event, from its type and payload; `None` outside the vault.
pub fn vault_entry(env: &aegis_schemas::envelope::v1::Envelope) -> Option<VaultEntry> {
    use serde_json::Value;
    if env.context != "vault" {
        return None;
    }
    let payload =
        aegis_schemas::events::payload_json(&env.event_type, &env.payload).unwrap_or(Value::Null);
    let text = |k: &str| {
        payload
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut entry = VaultEntry {
        action: String::new(),
        requested_by: None,
        target: None,
        success: true,
    };
    entry.action = match action(&env.event_type) {
        "credential.created" => "created",
        "credential.updated" => "updated",
        "credential.version_added" => match text("reason").as_deref() {
            Some("rotation") => "rotated",
            Some("rollback") => "rolled_back",
            Some("initial") => "value_set",
            _ => "updated",
        },
        "credential.rotation_started" => "rotation_started",
        "credential.rotation_failed" => {
            entry.success = false;
            "rotated"
        }
        "credential.retired" => "retired",
        "credential.destroyed" => "destroyed",
        "credential.health_checked" => {
            entry.success = payload.get("healthy").and_then(Value::as_bool) == Some(true);
            "tested"
        }
        "credential.expiry_alerted" => "expiry_alerted",
        "credential.applied" => {
            entry.requested_by = text("requested_by");
            entry.target = match (text("workflow_id"), text("node_name")) {
                (Some(w), Some(n)) => Some(format!("{w}/{n}")),
                (Some(w), None) => Some(w),
                _ => None,
            };
            "applied"
        }
        "credential.value_read" => {
            entry.success = text("refused").is_none();
            "read"
        }
        "tenant_key.destroyed" => "tenant_key_destroyed",
        other => other,
    }
    .to_string();
    Some(entry)
}

/// The resource an event acted on: its aggregate, except a value read, which is filed under
/// the credential it read (`<name>/<read>`). Reads recorded by group commit share an aggregate
/// (`<uuid>`) and are told apart by their event id; a read recorded alone before group commit
/// was its own aggregate, already named `<name>/<uuid>`.
fn resource_id(env: &aegis_schemas::envelope::v1::Envelope) -> String {
    use aegis_schemas::Message;
    if env.event_type == "credential.value_read.v1" && !env.aggregate_id.contains('/') {
        if let Ok(read) = aegis_schemas::vault::v1::ValueRead::decode(env.payload.as_slice()) {
            return format!("{}/{}", read.name, env.event_id);
        }
    }
    env.aggregate_id.clone()
}

#[derive(Default)]
struct Columns {
    position: Vec<i64>,
    idx: Vec<i32>,
    event_id: Vec<String>,
    tenant: Vec<uuid::Uuid>,
    event_type: Vec<String>,
    action: Vec<String>,
    context: Vec<String>,
    resource_type: Vec<String>,
    resource_id: Vec<String>,
    actor_kind: Vec<String>,
    actor: Vec<String>,
    correlation: Vec<String>,
    at: Vec<chrono::DateTime<chrono::Utc>>,
    vault_action: Vec<Option<String>>,
    requested_by: Vec<Option<String>>,
    target: Vec<Option<String>>,
    success: Vec<bool>,
}

impl Projection for AuditProjection {
    const NAME: &'static str = "audit";
    const TABLES: &'static [&'static str] = &["audit_events"];

    async fn apply(
        &self,
        tx: &mut PgConnection,
        suffix: &str,
        commit: &StoredCommit,
    ) -> Result<(), ProjectionError> {
        self.apply_many(tx, suffix, std::slice::from_ref(commit))
            .await
    }

    async fn apply_many(
        &self,
        tx: &mut PgConnection,
        suffix: &str,
        commits: &[StoredCommit],
    ) -> Result<(), ProjectionError> {
        let mut c = Columns::default();
        for commit in commits {
            for (i, env) in commit.events.iter().enumerate() {
                let tenant = uuid::Uuid::parse_str(&env.tenant_id)
                    .map_err(|e| ProjectionError::Decode(format!("bad tenant: {e}")))?;
                let actor = env.actor.clone().unwrap_or_default();
                c.position.push(commit.position as i64);
                c.idx.push(i as i32);
                c.event_id.push(env.event_id.clone());
                c.tenant.push(tenant);
                c.action.push(action(&env.event_type).to_string());
                c.event_type.push(env.event_type.clone());
                c.context.push(env.context.clone());
                c.resource_type.push(env.aggregate_type.clone());
                c.resource_id.push(resource_id(env));
                c.actor_kind.push(actor.kind);
                c.actor.push(actor.subject);
                c.correlation.push(env.correlation_id.clone());
                c.at.push(crate::event::occurred_at(env));
                let vault = vault_entry(env);
                c.success.push(vault.as_ref().is_none_or(|v| v.success));
                c.requested_by
                    .push(vault.as_ref().and_then(|v| v.requested_by.clone()));
                c.target.push(vault.as_ref().and_then(|v| v.target.clone()));
                c.vault_action.push(vault.map(|v| v.action));
            }
        }
        if c.position.is_empty() {
            return Ok(());
        }
        sqlx::query(&format!(
            "INSERT INTO audit_events{suffix} (position, idx, event_id, tenant_id, event_type, action, context, \
             resource_type, resource_id, actor_kind, actor, correlation_id, occurred_at, vault_action, \
             requested_by, target, success) \
             SELECT * FROM UNNEST($1::bigint[], $2::int[], $3::text[], $4::uuid[], $5::text[], $6::text[], \
             $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[], \
             $14::text[], $15::text[], $16::text[], $17::bool[])"
        ))
        .bind(&c.position)
        .bind(&c.idx)
        .bind(&c.event_id)
        .bind(&c.tenant)
        .bind(&c.event_type)
        .bind(&c.action)
        .bind(&c.context)
        .bind(&c.resource_type)
        .bind(&c.resource_id)
        .bind(&c.actor_kind)
        .bind(&c.actor)
        .bind(&c.correlation)
        .bind(&c.at)
        .bind(&c.vault_action)
        .bind(&c.requested_by)
        .bind(&c.target)
        .bind(&c.success)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn actions_drop_the_schema_version() {
        assert_eq!(super::action("incident.opened.v1"), "incident.opened");
        assert_eq!(
            super::action("user.role_assigned.v12"),
            "user.role_assigned"
        );
        assert_eq!(super::action("odd"), "odd");
        assert_eq!(super::action("a.value"), "a.value");
    }
}
