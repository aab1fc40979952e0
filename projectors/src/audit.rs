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
                c.resource_id.push(env.aggregate_id.clone());
                c.actor_kind.push(actor.kind);
                c.actor.push(actor.subject);
                c.correlation.push(env.correlation_id.clone());
                c.at.push(crate::event::occurred_at(env));
            }
        }
        if c.position.is_empty() {
            return Ok(());
        }
        sqlx::query(&format!(
            "INSERT INTO audit_events{suffix} (position, idx, event_id, tenant_id, event_type, action, context, \
             resource_type, resource_id, actor_kind, actor, correlation_id, occurred_at) \
             SELECT * FROM UNNEST($1::bigint[], $2::int[], $3::text[], $4::uuid[], $5::text[], $6::text[], \
             $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[])"
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
