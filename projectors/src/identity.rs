//! Read model of the identity context: the tenant directory.

use crate::runner::{Projection, ProjectionError};
use aegis_schemas::identity::v1 as pb;
use aegis_schemas::Message;
use aegis_streams::StoredCommit;
use sqlx::PgConnection;

pub struct TenantsProjection;

impl Projection for TenantsProjection {
    const NAME: &'static str = "tenants";
    const TABLES: &'static [&'static str] = &["tenants"];

    async fn apply(
        &self,
        tx: &mut PgConnection,
        suffix: &str,
        commit: &StoredCommit,
    ) -> Result<(), ProjectionError> {
        for env in &commit.events {
            if env.event_type != "tenant.created.v1" {
                continue;
            }
            let m = pb::TenantCreated::decode(env.payload.as_slice())
                .map_err(|e| ProjectionError::Decode(e.to_string()))?;
            let id = uuid::Uuid::parse_str(&env.aggregate_id)
                .map_err(|e| ProjectionError::Decode(e.to_string()))?;
            sqlx::query(&format!("INSERT INTO tenants{suffix} (id, name, created_at, position) VALUES ($1, $2, $3, $4)"))
                .bind(id)
                .bind(&m.name)
                .bind(crate::incidents::occurred_at(env))
                .bind(commit.position as i64)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}
