//! One rule for every grant: nobody grants, assigns or acts on someone with more than they
//! hold themselves. API key scopes, a role's permissions, a role assignment and a user's
//! status all pass through here, so a holder of `user_role.edit` cannot make anyone (itself
//! included) ADMIN unless it is ADMIN already.
//!
//! What a principal holds is computed here too, from the log through the directory: a user's
//! roles, and an API key's scopes bounded by what its creator holds now, so a demoted or
//! disabled creator's keys shrink or stop with them.

use super::{platform_admin_permissions, Principal};
use crate::error::ApiError;
use crate::state::AppState;
use aegis_identity::api_keys::ApiKeyAggregate;
use aegis_identity::permissions::{BuiltinRole, Permission, Permissions};
use aegis_identity::roles::RoleAggregate;
use aegis_identity::users::{User, UserAggregate, UserStatus};
use aegis_identity::TenantId;
use uuid::Uuid;

/// A key made by a key made by a key...: the chain is followed this far, then grants nothing.
const MAX_CREATOR_DEPTH: u8 = 8;

/// The one rule: `wanted` must lie within what `principal` holds; the 403 names the first
/// permission it lacks, in the words `why` gives.
fn within(
    principal: &Principal,
    wanted: Permissions,
    why: impl FnOnce(Permission) -> String,
) -> Result<(), ApiError> {
    match wanted.first_outside(principal.permissions) {
        None => Ok(()),
        Some(missing) => Err(ApiError::forbidden(missing.as_str()).with("message", why(missing))),
    }
}

/// Refuses granting `granted` (to a key, a role or a user) unless the caller holds all of it.
pub fn may_grant(principal: &Principal, granted: Permissions) -> Result<(), ApiError> {
    within(principal, granted, |missing| {
        format!("you cannot grant `{missing}`, which you do not hold")
    })
}

/// Refuses acting on (disabling, renaming, changing the roles of) a principal who holds what
/// the caller does not, so a lesser role can neither lock out nor reshape a greater one.
pub fn may_act_on(principal: &Principal, target: Permissions) -> Result<(), ApiError> {
    within(principal, target, |missing| {
        format!("the target holds `{missing}`, which you do not; only someone who holds it can change them")
    })
}

/// What a user's roles grant now (deleted custom roles grant nothing).
pub async fn user_permissions(
    state: &AppState,
    tenant: TenantId,
    user: &User,
) -> Result<Permissions, ApiError> {
    // A platform admin user holds what the bootstrap token holds: no tenant admin acts on it.
    if user.platform_admin {
        return Ok(crate::auth::platform_admin_permissions());
    }
    let mut permissions = Permissions::NONE;
    for assignment in &user.roles {
        permissions =
            permissions.union(role_permissions(state, tenant, &assignment.role_id).await?);
    }
    Ok(permissions)
}

/// What a role grants: a built-in role by name, a live custom role by id; else nothing.
pub async fn role_permissions(
    state: &AppState,
    tenant: TenantId,
    role_id: &str,
) -> Result<Permissions, ApiError> {
    if let Some(builtin) = BuiltinRole::parse(role_id) {
        return Ok(builtin.permissions());
    }
    let Ok(role) = Uuid::parse_str(role_id) else {
        return Ok(Permissions::NONE);
    };
    Ok(super::lookup::<RoleAggregate>(state, tenant.0, role)
        .await?
        .filter(|r| !r.deleted)
        .map_or(Permissions::NONE, |r| r.permissions))
}

/// Why a key grants nothing now although it is neither revoked nor forged.
fn suspended(why: &str) -> ApiError {
    ApiError::unauthorized(format!("the API key is suspended: {why}"))
}

/// What a key's creator holds now. A key can never do more than the principal who made it
/// can do today: a demoted creator's keys lose what the creator lost, and a disabled or
/// deleted creator's keys (and a revoked parent key's children) are suspended until the
/// creator is active again. Keys are therefore delegations, not tenant service accounts.
pub async fn creator_permissions(
    state: &AppState,
    tenant: TenantId,
    created_by: &str,
) -> Result<Permissions, ApiError> {
    let mut creator = created_by.to_string();
    let mut bound = Permissions::all();
    for _ in 0..MAX_CREATOR_DEPTH {
        let (kind, subject) = creator.split_once(':').unwrap_or((creator.as_str(), ""));
        match kind {
            "platform_admin" => return Ok(bound.intersect(platform_admin_permissions())),
            "user" => {
                let id = Uuid::parse_str(subject).map_err(|_| suspended("unknown creator"))?;
                let user = super::lookup::<UserAggregate>(state, tenant.0, id)
                    .await?
                    .ok_or_else(|| suspended("its creator no longer exists"))?;
                if user.status != UserStatus::Active {
                    return Err(suspended("its creator is disabled"));
                }
                return Ok(bound.intersect(user_permissions(state, tenant, &user).await?));
            }
            "api_key" => {
                let id = Uuid::parse_str(subject).map_err(|_| suspended("unknown creator"))?;
                let parent = super::lookup::<ApiKeyAggregate>(state, tenant.0, id)
                    .await?
                    .ok_or_else(|| suspended("the key that created it no longer exists"))?;
                if parent.revoked_at.is_some() {
                    return Err(suspended("the key that created it was revoked"));
                }
                bound = bound.intersect(parent.scopes);
                creator = parent.created_by;
            }
            _ => return Err(suspended("unknown creator")),
        }
    }
    Err(suspended("its chain of creators is too long"))
}
