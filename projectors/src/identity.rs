//! Read models of the identity context: the tenant directory, and the people and credentials
//! inside each tenant.

use crate::event::{decode, occurred_at, one, uuid};
use crate::runner::{Projection, ProjectionError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::identity::v1 as pb;
use aegis_schemas::Message;
use aegis_streams::StoredCommit;
use sqlx::PgConnection;

pub struct TenantsProjection;

impl Projection for TenantsProjection {
    const NAME: &'static str = "tenants";
    const TABLES: &'static [&'static str] = &["tenants"];

    fn handles(&self, e: &Envelope) -> bool {
        e.event_type == "tenant.created.v1"
    }

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
                .bind(occurred_at(env))
                .bind(commit.position as i64)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

/// Users, custom roles, role assignments, API keys and agents of every tenant. Rows that change
/// name the version they expect, so a gap halts the projection instead of corrupting a row.
pub struct IdentityProjection;

impl Projection for IdentityProjection {
    const NAME: &'static str = "identity";
    const TABLES: &'static [&'static str] = &["users", "roles", "user_roles", "api_keys", "agents"];

    fn handles(&self, e: &Envelope) -> bool {
        e.context == "identity"
            && matches!(
                e.aggregate_type.as_str(),
                "user" | "role" | "api_key" | "agent"
            )
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        s: &str,
        commit: &StoredCommit,
    ) -> Result<(), ProjectionError> {
        let position = commit.position as i64;
        for env in &commit.events {
            let tenant = uuid(&env.tenant_id)?;
            let at = occurred_at(env);
            let version = env.aggregate_version as i64;
            match env.event_type.as_str() {
                "user.created.v1" => {
                    let m: pb::UserCreated = decode(env)?;
                    sqlx::query(&format!("INSERT INTO users{s} (tenant_id, id, email, name, status, version, created_at, updated_at, position) VALUES ($1, $2, $3, $4, 'active', $5, $6, $6, $7)"))
                        .bind(tenant).bind(uuid(&env.aggregate_id)?).bind(&m.email).bind(&m.name)
                        .bind(version).bind(at).bind(position)
                        .execute(&mut *tx).await?;
                }
                "user.status_changed.v1" | "user.renamed.v1" => {
                    let (column, value) = if env.event_type == "user.renamed.v1" {
                        ("name", decode::<pb::UserRenamed>(env)?.name)
                    } else {
                        ("status", decode::<pb::UserStatusChanged>(env)?.status)
                    };
                    let r = sqlx::query(&format!("UPDATE users{s} SET {column} = $3, version = $4, updated_at = $5, position = $6 WHERE tenant_id = $1 AND id = $2 AND version = $4 - 1"))
                        .bind(tenant).bind(uuid(&env.aggregate_id)?).bind(value)
                        .bind(version).bind(at).bind(position)
                        .execute(&mut *tx).await?;
                    one(r, env)?;
                }
                "user.platform_admin_set.v1" => {
                    let m: pb::UserPlatformAdminSet = decode(env)?;
                    let r = sqlx::query(&format!("UPDATE users{s} SET is_platform_admin = $3, version = $4, updated_at = $5, position = $6 WHERE tenant_id = $1 AND id = $2 AND version = $4 - 1"))
                        .bind(tenant).bind(uuid(&env.aggregate_id)?).bind(m.platform_admin)
                        .bind(version).bind(at).bind(position)
                        .execute(&mut *tx).await?;
                    one(r, env)?;
                }
                "user.logged_in.v1" | "user.login_failed.v1" => {
                    let last_login = (env.event_type == "user.logged_in.v1").then_some(at);
                    let r = sqlx::query(&format!("UPDATE users{s} SET version = $3, last_login_at = COALESCE($4, last_login_at), position = $5 WHERE tenant_id = $1 AND id = $2 AND version = $3 - 1"))
                        .bind(tenant).bind(uuid(&env.aggregate_id)?).bind(version).bind(last_login).bind(position)
                        .execute(&mut *tx).await?;
                    one(r, env)?;
                }
                "user.role_assigned.v1" | "user.role_unassigned.v1" => {
                    let user = uuid(&env.aggregate_id)?;
                    let r = sqlx::query(&format!("UPDATE users{s} SET version = $3, updated_at = $4, position = $5 WHERE tenant_id = $1 AND id = $2 AND version = $3 - 1"))
                        .bind(tenant).bind(user).bind(version).bind(at).bind(position)
                        .execute(&mut *tx).await?;
                    one(r, env)?;
                    if env.event_type == "user.role_assigned.v1" {
                        let m: pb::UserRoleAssigned = decode(env)?;
                        sqlx::query(&format!("INSERT INTO user_roles{s} (tenant_id, id, user_id, role_id, created_at, position) VALUES ($1, $2, $3, $4, $5, $6)"))
                            .bind(tenant).bind(uuid(&m.assignment_id)?).bind(user).bind(&m.role_id)
                            .bind(at).bind(position)
                            .execute(&mut *tx).await?;
                    } else {
                        let m: pb::UserRoleUnassigned = decode(env)?;
                        sqlx::query(&format!(
                            "DELETE FROM user_roles{s} WHERE tenant_id = $1 AND id = $2"
                        ))
                        .bind(tenant)
                        .bind(uuid(&m.assignment_id)?)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                "role.created.v1" => {
                    let m: pb::RoleCreated = decode(env)?;
                    sqlx::query(&format!("INSERT INTO roles{s} (tenant_id, id, name, description, permissions, version, created_at, updated_at, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)"))
                        .bind(tenant).bind(uuid(&env.aggregate_id)?).bind(&m.name).bind(&m.description)
                        .bind(&m.permissions).bind(version).bind(at).bind(position)
                        .execute(&mut *tx).await?;
                }
                "role.permissions_set.v1" => {
                    let m: pb::RolePermissionsSet = decode(env)?;
                    let r = sqlx::query(&format!("UPDATE roles{s} SET permissions = $3, version = $4, updated_at = $5, position = $6 WHERE tenant_id = $1 AND id = $2 AND version = $4 - 1"))
                        .bind(tenant).bind(uuid(&env.aggregate_id)?).bind(&m.permissions)
                        .bind(version).bind(at).bind(position)
                        .execute(&mut *tx).await?;
                    one(r, env)?;
                }
                "role.deleted.v1" => {
                    // A deleted role leaves the listing; assignments naming it grant nothing.
                    sqlx::query(&format!(
                        "DELETE FROM roles{s} WHERE tenant_id = $1 AND id = $2"
                    ))
                    .bind(tenant)
                    .bind(uuid(&env.aggregate_id)?)
                    .execute(&mut *tx)
                    .await?;
                }
                "api_key.created.v1" => {
                    let m: pb::ApiKeyCreated = decode(env)?;
                    sqlx::query(&format!("INSERT INTO api_keys{s} (tenant_id, id, name, prefix, scopes, created_by, created_at, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
                        .bind(tenant).bind(uuid(&env.aggregate_id)?).bind(&m.name).bind(&m.prefix)
                        .bind(&m.scopes).bind(&m.created_by).bind(at).bind(position)
                        .execute(&mut *tx).await?;
                }
                "api_key.revoked.v1" => {
                    let r = sqlx::query(&format!("UPDATE api_keys{s} SET revoked_at = $3, position = $4 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL"))
                        .bind(tenant).bind(uuid(&env.aggregate_id)?).bind(at).bind(position)
                        .execute(&mut *tx).await?;
                    one(r, env)?;
                }
                "agent.minted.v1" => {
                    let m: pb::AgentMinted = decode(env)?;
                    sqlx::query(&format!("INSERT INTO agents{s} (tenant_id, id, name, prefix, status, version, created_at, updated_at, position) VALUES ($1, $2, $3, $4, 'active', $5, $6, $6, $7)"))
                        .bind(tenant).bind(uuid(&env.aggregate_id)?).bind(&m.name).bind(&m.prefix)
                        .bind(version).bind(at).bind(position)
                        .execute(&mut *tx).await?;
                }
                "agent.wire_key_registered.v1" => {
                    let m: pb::AgentWireKeyRegistered = decode(env)?;
                    let r = sqlx::query(&format!("UPDATE agents{s} SET wire_key_fingerprint = $3, version = $4, updated_at = $5, position = $6 WHERE tenant_id = $1 AND id = $2 AND version = $4 - 1"))
                        .bind(tenant).bind(uuid(&env.aggregate_id)?).bind(&m.fingerprint)
                        .bind(version).bind(at).bind(position)
                        .execute(&mut *tx).await?;
                    one(r, env)?;
                }
                "agent.status_changed.v1" => {
                    let m: pb::AgentStatusChanged = decode(env)?;
                    let r = sqlx::query(&format!("UPDATE agents{s} SET status = $3, version = $4, updated_at = $5, position = $6 WHERE tenant_id = $1 AND id = $2 AND version = $4 - 1"))
                        .bind(tenant).bind(uuid(&env.aggregate_id)?).bind(&m.status)
                        .bind(version).bind(at).bind(position)
                        .execute(&mut *tx).await?;
                    one(r, env)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}
