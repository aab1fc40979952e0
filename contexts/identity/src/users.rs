//! Users of a tenant: created with an argon2id password hash, disabled and enabled, renamed,
//! and given roles (seed 004's user-roles live in the user's own history, so the user's
//! permissions are one aggregate read away).

use super::TenantId;
use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::identity::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub const ALL: &'static [UserStatus] = &[UserStatus::Active, UserStatus::Disabled];

    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for UserStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An email address, trimmed and lower-cased: the login name, unique within a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let email = raw.trim().to_lowercase();
        if email.len() > 254 {
            return Err("must be at most 254 characters");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("must be an email address");
        };
        let valid = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain.contains('.')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            return Err("must be an email address");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleAssignment {
    pub id: Uuid,
    pub role_id: String,
    pub assigned_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub status: UserStatus,
    /// argon2id PHC string.
    pub password_hash: String,
    pub roles: Vec<RoleAssignment>,
    pub created_at: DateTime<Utc>,
    /// Holds every cross-tenant right the bootstrap token has (seed 000's
    /// `users.is_platform_admin`); only a platform admin sets it.
    pub platform_admin: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Create {
        email: Email,
        name: String,
        password_hash: String,
    },
    /// Changes what is named; what is unchanged appends nothing.
    Update {
        name: Option<String>,
        status: Option<UserStatus>,
    },
    AssignRole {
        assignment: Uuid,
        role_id: String,
    },
    UnassignRole {
        assignment: Uuid,
    },
    /// A login attempt with this user's email, for the audit trail.
    RecordLogin {
        succeeded: bool,
        source: String,
    },
    /// Makes the user a platform admin, or takes it back; unchanged appends nothing.
    SetPlatformAdmin(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Created {
        email: String,
        name: String,
        password_hash: String,
    },
    StatusChanged(UserStatus),
    Renamed(String),
    RoleAssigned {
        assignment: Uuid,
        role_id: String,
    },
    RoleUnassigned {
        assignment: Uuid,
    },
    PlatformAdminSet(bool),
    LoggedIn {
        source: String,
    },
    LoginFailed {
        source: String,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UserError {
    #[error("user not found")]
    NotFound,
    #[error("the user already exists")]
    AlreadyExists,
    #[error("the user already has role {0}")]
    RoleAlreadyAssigned(String),
    #[error("role assignment not found")]
    AssignmentNotFound,
    #[error("an account with this email already exists")]
    EmailTaken,
}

pub struct UserAggregate;

impl Aggregate for UserAggregate {
    const CONTEXT: &'static str = "identity";
    const AGGREGATE: &'static str = "user";
    type State = Option<User>;
    type Command = Command;
    type Event = Event;
    type Error = UserError;

    fn decide(state: &Option<User>, cmd: &Command) -> Result<Vec<Event>, UserError> {
        let user = match (state, cmd) {
            (
                None,
                Command::Create {
                    email,
                    name,
                    password_hash,
                },
            ) => {
                return Ok(vec![Event::Created {
                    email: email.as_str().to_string(),
                    name: name.clone(),
                    password_hash: password_hash.clone(),
                }])
            }
            (Some(_), Command::Create { .. }) => return Err(UserError::AlreadyExists),
            (None, _) => return Err(UserError::NotFound),
            (Some(user), _) => user,
        };
        Ok(match cmd {
            Command::Create { .. } => vec![],
            Command::Update { name, status } => {
                let mut events = Vec::new();
                if let Some(n) = name.as_ref().filter(|n| **n != user.name) {
                    events.push(Event::Renamed(n.clone()));
                }
                if let Some(s) = status.filter(|s| *s != user.status) {
                    events.push(Event::StatusChanged(s));
                }
                events
            }
            Command::AssignRole {
                assignment,
                role_id,
            } => {
                if user.roles.iter().any(|r| &r.role_id == role_id) {
                    return Err(UserError::RoleAlreadyAssigned(role_id.clone()));
                }
                vec![Event::RoleAssigned {
                    assignment: *assignment,
                    role_id: role_id.clone(),
                }]
            }
            Command::UnassignRole { assignment } => {
                if !user.roles.iter().any(|r| r.id == *assignment) {
                    return Err(UserError::AssignmentNotFound);
                }
                vec![Event::RoleUnassigned {
                    assignment: *assignment,
                }]
            }
            Command::RecordLogin { succeeded, source } => vec![if *succeeded {
                Event::LoggedIn {
                    source: source.clone(),
                }
            } else {
                Event::LoginFailed {
                    source: source.clone(),
                }
            }],
            Command::SetPlatformAdmin(on) if *on == user.platform_admin => vec![],
            Command::SetPlatformAdmin(on) => vec![Event::PlatformAdminSet(*on)],
        })
    }

    fn evolve(state: Option<User>, event: &Event, env: &Envelope) -> Option<User> {
        match (state, event) {
            (
                None,
                Event::Created {
                    email,
                    name,
                    password_hash,
                },
            ) => Some(User {
                id: Uuid::parse_str(&env.aggregate_id).unwrap_or_default(),
                email: email.clone(),
                name: name.clone(),
                status: UserStatus::Active,
                password_hash: password_hash.clone(),
                roles: Vec::new(),
                created_at: occurred_at(env),
                platform_admin: false,
            }),
            (Some(mut u), e) => {
                match e {
                    Event::Created { .. } => {}
                    Event::StatusChanged(s) => u.status = *s,
                    Event::Renamed(n) => u.name = n.clone(),
                    Event::RoleAssigned {
                        assignment,
                        role_id,
                    } => u.roles.push(RoleAssignment {
                        id: *assignment,
                        role_id: role_id.clone(),
                        assigned_at: occurred_at(env),
                    }),
                    Event::RoleUnassigned { assignment } => u.roles.retain(|r| r.id != *assignment),
                    Event::PlatformAdminSet(on) => u.platform_admin = *on,
                    Event::LoggedIn { .. } | Event::LoginFailed { .. } => {}
                }
                Some(u)
            }
            (None, _) => None,
        }
    }

    fn encode(event: &Event) -> NewEvent {
        let (event_type, payload) = match event {
            Event::Created {
                email,
                name,
                password_hash,
            } => {
                // The hash is credential material: the envelope keeps it, the payload not.
                let payload = pb::UserCreated {
                    email: email.clone(),
                    name: name.clone(),
                    password_hash: String::new(),
                }
                .encode_to_vec();
                return NewEvent {
                    credential: password_hash.as_bytes().to_vec(),
                    event_type: "user.created.v1",
                    payload,
                };
            }
            Event::StatusChanged(s) => (
                "user.status_changed.v1",
                pb::UserStatusChanged {
                    status: s.as_str().into(),
                }
                .encode_to_vec(),
            ),
            Event::Renamed(n) => (
                "user.renamed.v1",
                pb::UserRenamed { name: n.clone() }.encode_to_vec(),
            ),
            Event::RoleAssigned {
                assignment,
                role_id,
            } => (
                "user.role_assigned.v1",
                pb::UserRoleAssigned {
                    assignment_id: assignment.to_string(),
                    role_id: role_id.clone(),
                }
                .encode_to_vec(),
            ),
            Event::RoleUnassigned { assignment } => (
                "user.role_unassigned.v1",
                pb::UserRoleUnassigned {
                    assignment_id: assignment.to_string(),
                }
                .encode_to_vec(),
            ),
            Event::LoggedIn { source } => (
                "user.logged_in.v1",
                pb::UserLoggedIn {
                    source: source.clone(),
                }
                .encode_to_vec(),
            ),
            Event::LoginFailed { source } => (
                "user.login_failed.v1",
                pb::UserLoginFailed {
                    source: source.clone(),
                }
                .encode_to_vec(),
            ),
            Event::PlatformAdminSet(on) => (
                "user.platform_admin_set.v1",
                pb::UserPlatformAdminSet {
                    platform_admin: *on,
                }
                .encode_to_vec(),
            ),
        };
        NewEvent::new(event_type, payload)
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        let bytes = env.payload.as_slice();
        let err = |e: &dyn std::fmt::Display| DecodeError::new(env, e);
        let uuid = |s: &str| Uuid::parse_str(s).map_err(|e| err(&e));
        Ok(match env.event_type.as_str() {
            "user.created.v1" => {
                let m = pb::UserCreated::decode(bytes).map_err(|e| err(&e))?;
                Event::Created {
                    email: m.email,
                    name: m.name,
                    password_hash: aegis_kernel::credential_text(env, m.password_hash)?,
                }
            }
            "user.status_changed.v1" => {
                let m = pb::UserStatusChanged::decode(bytes).map_err(|e| err(&e))?;
                Event::StatusChanged(
                    UserStatus::parse(&m.status).ok_or_else(|| err(&"unknown status"))?,
                )
            }
            "user.renamed.v1" => {
                Event::Renamed(pb::UserRenamed::decode(bytes).map_err(|e| err(&e))?.name)
            }
            "user.role_assigned.v1" => {
                let m = pb::UserRoleAssigned::decode(bytes).map_err(|e| err(&e))?;
                Event::RoleAssigned {
                    assignment: uuid(&m.assignment_id)?,
                    role_id: m.role_id,
                }
            }
            "user.role_unassigned.v1" => {
                let m = pb::UserRoleUnassigned::decode(bytes).map_err(|e| err(&e))?;
                Event::RoleUnassigned {
                    assignment: uuid(&m.assignment_id)?,
                }
            }
            "user.logged_in.v1" => Event::LoggedIn {
                source: pb::UserLoggedIn::decode(bytes).map_err(|e| err(&e))?.source,
            },
            "user.login_failed.v1" => Event::LoginFailed {
                source: pb::UserLoginFailed::decode(bytes)
                    .map_err(|e| err(&e))?
                    .source,
            },
            "user.platform_admin_set.v1" => Event::PlatformAdminSet(
                pb::UserPlatformAdminSet::decode(bytes)
                    .map_err(|e| err(&e))?
                    .platform_admin,
            ),
            other => return Err(err(&format!("not a user event: {other}"))),
        })
    }
}

/// Claim of an email inside a tenant (`identity.user_email.<email>` under the tenant's
/// subject): a second account with the same email in the tenant is refused by the log itself,
/// while other tenants may hold the same address (each tenant owns its users' addresses, and
/// nothing tells one tenant what another holds). Claims made before that live under the
/// platform tenant and are still read by login.
pub struct UserEmailAggregate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailOwner {
    pub tenant: TenantId,
    pub user: Uuid,
}

/// Claim the email for `owner`. `holder_alive` says whether the current holder's account
/// exists (looked up by the handler): a claim whose account was never created (the process
/// died between the two appends) is taken over by the next claim once it is
/// [`super::ORPHAN_AFTER_SECS`] old, instead of holding the address forever. (A younger one may be a
/// creation still under way.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimEmail {
    pub owner: EmailOwner,
    pub holder_alive: bool,
    pub now: DateTime<Utc>,
}

/// Who holds an email, since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailClaim {
    pub owner: EmailOwner,
    pub at: DateTime<Utc>,
}

impl Aggregate for UserEmailAggregate {
    const CONTEXT: &'static str = "identity";
    const AGGREGATE: &'static str = "user_email";
    type State = Option<EmailClaim>;
    type Command = ClaimEmail;
    type Event = EmailOwner;
    type Error = UserError;

    fn decide(state: &Self::State, cmd: &ClaimEmail) -> Result<Vec<EmailOwner>, UserError> {
        match state {
            Some(claim) if claim.owner == cmd.owner => Ok(vec![]),
            Some(claim) if !super::orphaned(cmd.holder_alive, claim.at, cmd.now) => {
                Err(UserError::EmailTaken)
            }
            _ => Ok(vec![cmd.owner]),
        }
    }

    fn evolve(_: Self::State, event: &EmailOwner, env: &Envelope) -> Self::State {
        Some(EmailClaim {
            owner: *event,
            at: occurred_at(env),
        })
    }

    fn encode(event: &EmailOwner) -> NewEvent {
        NewEvent::new(
            "user.email_claimed.v1",
            pb::UserEmailClaimed {
                tenant_id: event.tenant.to_string(),
                user_id: event.user.to_string(),
            }
            .encode_to_vec(),
        )
    }

    fn decode(env: &Envelope) -> Result<EmailOwner, DecodeError> {
        let m = aegis_kernel::payload::<pb::UserEmailClaimed>(env)?;
        let parse = |s: &str| Uuid::parse_str(s).map_err(|e| DecodeError::new(env, e));
        Ok(EmailOwner {
            tenant: TenantId(parse(&m.tenant_id)?),
            user: parse(&m.user_id)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn created() -> Event {
        Event::Created {
            email: "ana@example.com".into(),
            name: "Ana".into(),
            password_hash: "$argon2id$v=19$...".into(),
        }
    }

    #[test]
    fn a_user_is_created_once() {
        let create = Command::Create {
            email: Email::parse(" Ana@Example.com ").expect("email"),
            name: "Ana".into(),
            password_hash: "$argon2id$v=19$...".into(),
        };
        given::<UserAggregate>(vec![])
            .when(create.clone())
            .then(vec![created()]);
        given::<UserAggregate>(vec![created()])
            .when(create)
            .then_err(UserError::AlreadyExists);
    }

    fn disable() -> Command {
        Command::Update {
            name: None,
            status: Some(UserStatus::Disabled),
        }
    }

    #[test]
    fn disabling_is_recorded_once() {
        given::<UserAggregate>(vec![created()])
            .when(disable())
            .then(vec![Event::StatusChanged(UserStatus::Disabled)]);
        given::<UserAggregate>(vec![created(), Event::StatusChanged(UserStatus::Disabled)])
            .when(disable())
            .then(vec![]);
        given::<UserAggregate>(vec![created()])
            .when(Command::Update {
                name: Some("Ana B".into()),
                status: Some(UserStatus::Active),
            })
            .then(vec![Event::Renamed("Ana B".into())]);
    }

    #[test]
    fn platform_admin_is_granted_and_taken_back_once() {
        given::<UserAggregate>(vec![created()])
            .when(Command::SetPlatformAdmin(true))
            .then(vec![Event::PlatformAdminSet(true)]);
        given::<UserAggregate>(vec![created(), Event::PlatformAdminSet(true)])
            .when(Command::SetPlatformAdmin(true))
            .then(vec![]);
        given::<UserAggregate>(vec![created(), Event::PlatformAdminSet(true)])
            .when(Command::SetPlatformAdmin(false))
            .then(vec![Event::PlatformAdminSet(false)]);
        given::<UserAggregate>(vec![])
            .when(Command::SetPlatformAdmin(true))
            .then_err(UserError::NotFound);
    }

    #[test]
    fn a_role_is_assigned_once_and_unassigned_by_assignment() {
        let a = Uuid::now_v7();
        let assigned = Event::RoleAssigned {
            assignment: a,
            role_id: "ADMIN".into(),
        };
        given::<UserAggregate>(vec![created(), assigned.clone()])
            .when(Command::AssignRole {
                assignment: Uuid::now_v7(),
                role_id: "ADMIN".into(),
            })
            .then_err(UserError::RoleAlreadyAssigned("ADMIN".into()));
        given::<UserAggregate>(vec![created(), assigned.clone()])
            .when(Command::UnassignRole { assignment: a })
            .then(vec![Event::RoleUnassigned { assignment: a }]);
        given::<UserAggregate>(vec![
            created(),
            assigned,
            Event::RoleUnassigned { assignment: a },
        ])
        .when(Command::UnassignRole { assignment: a })
        .then_err(UserError::AssignmentNotFound);
    }

    #[test]
    fn login_attempts_are_recorded_for_existing_users_only() {
        given::<UserAggregate>(vec![created()])
            .when(Command::RecordLogin {
                succeeded: false,
                source: "127.0.0.1".into(),
            })
            .then(vec![Event::LoginFailed {
                source: "127.0.0.1".into(),
            }]);
        given::<UserAggregate>(vec![])
            .when(Command::RecordLogin {
                succeeded: true,
                source: "127.0.0.1".into(),
            })
            .then_err(UserError::NotFound);
    }

    #[test]
    fn commands_on_a_missing_user_are_refused() {
        given::<UserAggregate>(vec![])
            .when(disable())
            .then_err(UserError::NotFound);
    }

    fn owner(n: u128) -> EmailOwner {
        EmailOwner {
            tenant: TenantId(Uuid::from_u128(1)),
            user: Uuid::from_u128(n),
        }
    }

    /// `spec::given` events carry the epoch as their time: "later" is any time after it.
    fn later(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs)
    }

    #[test]
    fn an_email_held_by_a_live_account_is_refused() {
        given::<UserEmailAggregate>(vec![owner(1)])
            .when(ClaimEmail {
                owner: owner(2),
                holder_alive: true,
                now: later(3600),
            })
            .then_err(UserError::EmailTaken);
    }

    #[test]
    fn a_claim_whose_account_was_never_created_is_taken_over_once_old() {
        given::<UserEmailAggregate>(vec![owner(1)])
            .when(ClaimEmail {
                owner: owner(2),
                holder_alive: false,
                now: later(crate::ORPHAN_AFTER_SECS),
            })
            .then(vec![owner(2)]);
    }

    #[test]
    fn a_young_claim_may_be_a_creation_under_way() {
        given::<UserEmailAggregate>(vec![owner(1)])
            .when(ClaimEmail {
                owner: owner(2),
                holder_alive: false,
                now: later(5),
            })
            .then_err(UserError::EmailTaken);
    }

    #[test]
    fn claiming_again_for_the_same_account_changes_nothing() {
        given::<UserEmailAggregate>(vec![owner(1)])
            .when(ClaimEmail {
                owner: owner(1),
                holder_alive: true,
                now: later(5),
            })
            .then(vec![]);
    }

    #[test]
    fn emails_are_normalised_and_validated() {
        assert_eq!(
            Email::parse(" Ana@Example.COM").expect("valid").as_str(),
            "ana@example.com"
        );
        for bad in ["", "ana", "@x.io", "ana@", "a b@x.io", "ana@x", "a@@x.io"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
