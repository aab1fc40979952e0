//! Custom roles of a tenant: a name and a set of grantable permissions. Built-in roles
//! (ADMIN, SECURITY, AUDITOR) are code, not history, and cannot be changed.

use super::permissions::Permissions;
use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::identity::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub permissions: Permissions,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Create {
        name: String,
        description: String,
        permissions: Permissions,
    },
    SetPermissions(Permissions),
    Delete,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Created {
        name: String,
        description: String,
        permissions: Permissions,
    },
    PermissionsSet(Permissions),
    Deleted,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoleError {
    #[error("role not found")]
    NotFound,
    #[error("the role already exists")]
    AlreadyExists,
    #[error("a role named `{0}` already exists")]
    NameTaken(String),
}

pub struct RoleAggregate;

fn live(state: &Option<Role>) -> Result<&Role, RoleError> {
    state
        .as_ref()
        .filter(|r| !r.deleted)
        .ok_or(RoleError::NotFound)
}

impl Aggregate for RoleAggregate {
    const CONTEXT: &'static str = "identity";
    const AGGREGATE: &'static str = "role";
    type State = Option<Role>;
    type Command = Command;
    type Event = Event;
    type Error = RoleError;

    fn decide(state: &Option<Role>, cmd: &Command) -> Result<Vec<Event>, RoleError> {
        match cmd {
            Command::Create {
                name,
                description,
                permissions,
            } => match state {
                Some(_) => Err(RoleError::AlreadyExists),
                None => Ok(vec![Event::Created {
                    name: name.clone(),
                    description: description.clone(),
                    permissions: *permissions,
                }]),
            },
            Command::SetPermissions(p) => {
                let role = live(state)?;
                Ok(if role.permissions == *p {
                    vec![]
                } else {
                    vec![Event::PermissionsSet(*p)]
                })
            }
            Command::Delete => {
                live(state)?;
                Ok(vec![Event::Deleted])
            }
        }
    }

    fn evolve(state: Option<Role>, event: &Event, env: &Envelope) -> Option<Role> {
        let at = occurred_at(env);
        match (state, event) {
            (
                None,
                Event::Created {
                    name,
                    description,
                    permissions,
                },
            ) => Some(Role {
                id: Uuid::parse_str(&env.aggregate_id).unwrap_or_default(),
                name: name.clone(),
                description: description.clone(),
                permissions: *permissions,
                deleted: false,
                created_at: at,
                updated_at: at,
            }),
            (Some(mut r), Event::PermissionsSet(p)) => {
                r.permissions = *p;
                r.updated_at = at;
                Some(r)
            }
            (Some(mut r), Event::Deleted) => {
                r.deleted = true;
                r.updated_at = at;
                Some(r)
            }
            (state, _) => state,
        }
    }

    fn encode(event: &Event) -> NewEvent {
        let (event_type, payload) = match event {
            Event::Created {
                name,
                description,
                permissions,
            } => (
                "role.created.v1",
                pb::RoleCreated {
                    name: name.clone(),
                    description: description.clone(),
                    permissions: permissions.names(),
                }
                .encode_to_vec(),
            ),
            Event::PermissionsSet(p) => (
                "role.permissions_set.v1",
                pb::RolePermissionsSet {
                    permissions: p.names(),
                }
                .encode_to_vec(),
            ),
            Event::Deleted => ("role.deleted.v1", pb::RoleDeleted {}.encode_to_vec()),
        };
        NewEvent::new(event_type, payload)
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        let bytes = env.payload.as_slice();
        let err = |e: &dyn std::fmt::Display| DecodeError::new(env, e);
        // A permission the catalog no longer knows grants nothing.
        let perms = |names: &[String]| {
            Permissions::of(
                &names
                    .iter()
                    .filter_map(|n| super::permissions::Permission::parse(n))
                    .collect::<Vec<_>>(),
            )
        };
        Ok(match env.event_type.as_str() {
            "role.created.v1" => {
                let m = pb::RoleCreated::decode(bytes).map_err(|e| err(&e))?;
                Event::Created {
                    permissions: perms(&m.permissions),
                    name: m.name,
                    description: m.description,
                }
            }
            "role.permissions_set.v1" => {
                let m = pb::RolePermissionsSet::decode(bytes).map_err(|e| err(&e))?;
                Event::PermissionsSet(perms(&m.permissions))
            }
            "role.deleted.v1" => Event::Deleted,
            other => return Err(err(&format!("not a role event: {other}"))),
        })
    }
}

/// Claim of a role name inside a tenant (`identity.role_name.<lower-case name>`); deleting the
/// role releases it.
pub struct RoleNameAggregate;

#[derive(Debug, Clone, PartialEq)]
pub enum NameCommand {
    /// `holder_alive`: whether the current holder is a live role (an orphaned claim is taken
    /// over; see [`super::orphaned`]).
    Claim {
        role: Uuid,
        name: String,
        holder_alive: bool,
        now: DateTime<Utc>,
    },
    Release {
        role: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum NameEvent {
    Claimed(Uuid),
    Released,
}

impl Aggregate for RoleNameAggregate {
    const CONTEXT: &'static str = "identity";
    const AGGREGATE: &'static str = "role_name";
    /// The holder, since when.
    type State = Option<(Uuid, DateTime<Utc>)>;
    type Command = NameCommand;
    type Event = NameEvent;
    type Error = RoleError;

    fn decide(state: &Self::State, cmd: &NameCommand) -> Result<Vec<NameEvent>, RoleError> {
        match (state, cmd) {
            (Some((holder, _)), NameCommand::Claim { role, .. }) if holder == role => Ok(vec![]),
            (
                Some((_, at)),
                NameCommand::Claim {
                    name,
                    holder_alive,
                    now,
                    ..
                },
            ) if !super::orphaned(*holder_alive, *at, *now) => {
                Err(RoleError::NameTaken(name.clone()))
            }
            (_, NameCommand::Claim { role, .. }) => Ok(vec![NameEvent::Claimed(*role)]),
            (Some((holder, _)), NameCommand::Release { role }) if holder == role => {
                Ok(vec![NameEvent::Released])
            }
            (_, NameCommand::Release { .. }) => Ok(vec![]),
        }
    }

    fn evolve(_: Self::State, event: &NameEvent, env: &Envelope) -> Self::State {
        match event {
            NameEvent::Claimed(r) => Some((*r, occurred_at(env))),
            NameEvent::Released => None,
        }
    }

    fn encode(event: &NameEvent) -> NewEvent {
        match event {
            NameEvent::Claimed(r) => NewEvent::new(
                "role.name_claimed.v1",
                pb::RoleNameClaimed {
                    role_id: r.to_string(),
                }
                .encode_to_vec(),
            ),
            NameEvent::Released => NewEvent::new(
                "role.name_released.v1",
                pb::RoleNameReleased {}.encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<NameEvent, DecodeError> {
        match env.event_type.as_str() {
            "role.name_claimed.v1" => {
                let m = aegis_kernel::payload::<pb::RoleNameClaimed>(env)?;
                Uuid::parse_str(&m.role_id)
                    .map(NameEvent::Claimed)
                    .map_err(|e| DecodeError::new(env, e))
            }
            "role.name_released.v1" => Ok(NameEvent::Released),
            other => Err(DecodeError::new(
                env,
                format!("not a role name event: {other}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::Permission;
    use aegis_kernel::spec::given;

    fn created() -> Event {
        Event::Created {
            name: "Responders".into(),
            description: String::new(),
            permissions: Permissions::of(&[Permission::IncidentRead]),
        }
    }

    #[test]
    fn permissions_are_replaced_and_unchanged_sets_append_nothing() {
        let more = Permissions::of(&[Permission::IncidentRead, Permission::IncidentUpdate]);
        given::<RoleAggregate>(vec![created()])
            .when(Command::SetPermissions(more))
            .then(vec![Event::PermissionsSet(more)]);
        given::<RoleAggregate>(vec![created()])
            .when(Command::SetPermissions(Permissions::of(&[
                Permission::IncidentRead,
            ])))
            .then(vec![]);
    }

    #[test]
    fn a_deleted_role_is_gone() {
        given::<RoleAggregate>(vec![created(), Event::Deleted])
            .when(Command::SetPermissions(Permissions::NONE))
            .then_err(RoleError::NotFound);
        given::<RoleAggregate>(vec![created(), Event::Deleted])
            .when(Command::Delete)
            .then_err(RoleError::NotFound);
    }

    #[test]
    fn a_released_name_can_be_claimed_again() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let claim = |holder_alive| NameCommand::Claim {
            role: b,
            name: "x".into(),
            holder_alive,
            now: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::hours(1),
        };
        given::<RoleNameAggregate>(vec![NameEvent::Claimed(a)])
            .when(claim(true))
            .then_err(RoleError::NameTaken("x".into()));
        given::<RoleNameAggregate>(vec![NameEvent::Claimed(a), NameEvent::Released])
            .when(claim(true))
            .then(vec![NameEvent::Claimed(b)]);
    }

    #[test]
    fn a_name_whose_role_was_never_created_is_taken_over() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        given::<RoleNameAggregate>(vec![NameEvent::Claimed(a)])
            .when(NameCommand::Claim {
                role: b,
                name: "x".into(),
                holder_alive: false,
                now: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::hours(1),
            })
            .then(vec![NameEvent::Claimed(b)]);
    }
}
