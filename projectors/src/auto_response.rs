//! Read model of the auto-response context: each rule's version in force.

use crate::event::{decode, occurred_at, one, uuid};
use crate::runner::{Projection, ProjectionError};
use aegis_schemas::auto_response::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_streams::StoredCommit;
use sqlx::PgConnection;

pub struct AutoResponseProjection;

fn json(s: &str) -> Result<serde_json::Value, ProjectionError> {
    serde_json::from_str(s).map_err(|e| ProjectionError::Decode(format!("rule definition: {e}")))
}

impl Projection for AutoResponseProjection {
    const NAME: &'static str = "auto_response";
    const TABLES: &'static [&'static str] = &["auto_response_rules"];

    fn handles(&self, e: &Envelope) -> bool {
        e.context == "auto_response" && e.aggregate_type == "rule"
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        s: &str,
        commit: &StoredCommit,
    ) -> Result<(), ProjectionError> {
        let position = commit.position as i64;
        for env in &commit.events {
            if !self.handles(env) {
                continue;
            }
            let tenant = uuid(&env.tenant_id)?;
            let id = uuid(&env.aggregate_id)?;
            let at = occurred_at(env);
            let v = env.aggregate_version as i64;
            let by = env
                .actor
                .as_ref()
                .map(|a| format!("{}:{}", a.kind, a.subject))
                .unwrap_or_default();
            match env.event_type.as_str() {
                "rule.created.v1" => {
                    let m: pb::RuleCreated = decode(env)?;
                    let d = m.definition.unwrap_or_default();
                    sqlx::query(&format!(
                        "INSERT INTO auto_response_rules{s} (tenant_id, id, name, description, version, match, actions, \
                         mode, approval_required, throttle_max_runs, throttle_window_secs, created_by, created_at, \
                         updated_at, agg_version, position) VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14)"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(&d.name)
                    .bind(&d.description)
                    .bind(json(&d.match_json)?)
                    .bind(json(&d.actions_json)?)
                    .bind(&m.mode)
                    .bind(d.approval_required)
                    .bind(d.throttle_max_runs as i32)
                    .bind(d.throttle_window_secs as i32)
                    .bind(&by)
                    .bind(at)
                    .bind(v)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                }
                "rule.updated.v1" => {
                    let d = decode::<pb::RuleUpdated>(env)?
                        .definition
                        .unwrap_or_default();
                    let r = sqlx::query(&format!(
                        "UPDATE auto_response_rules{s} SET name = $4, description = $5, version = version + 1, \
                         match = $6, actions = $7, approval_required = $8, throttle_max_runs = $9, \
                         throttle_window_secs = $10, updated_at = $11, agg_version = $3, position = $12 \
                         WHERE tenant_id = $1 AND id = $2 AND agg_version = $3 - 1"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(v)
                    .bind(&d.name)
                    .bind(&d.description)
                    .bind(json(&d.match_json)?)
                    .bind(json(&d.actions_json)?)
                    .bind(d.approval_required)
                    .bind(d.throttle_max_runs as i32)
                    .bind(d.throttle_window_secs as i32)
                    .bind(at)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                    one(r, env)?;
                }
                "rule.mode_set.v1" | "rule.deleted.v1" => {
                    let (set, mode) = if env.event_type == "rule.deleted.v1" {
                        ("deleted = true", String::new())
                    } else {
                        ("mode = $6", decode::<pb::RuleModeSet>(env)?.mode)
                    };
                    let r = sqlx::query(&format!(
                        "UPDATE auto_response_rules{s} SET {set}, updated_at = $4, agg_version = $3, position = $5 \
                         WHERE tenant_id = $1 AND id = $2 AND agg_version = $3 - 1 AND ($6::text IS NOT NULL)"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(v)
                    .bind(at)
                    .bind(position)
                    .bind(mode)
                    .execute(&mut *tx)
                    .await?;
                    one(r, env)?;
                }
                other => {
                    return Err(ProjectionError::Decode(format!(
                        "unknown rule event {other}"
                    )))
                }
            }
        }
        Ok(())
    }
}
