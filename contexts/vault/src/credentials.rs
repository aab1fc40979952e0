//! A credential (`vault.credential.<name>`): settings, sealed versions, rotation lease, health.
//! The decider never sees a value in clear: the handler seals it for the version the decider
//! will accept, and the decider checks that version is the next one.

use super::settings::Settings;
use super::versions::{beyond, may_become, Retention, Version, VersionRefusal, VersionState};
use aegis_kernel::Sealed;
use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::vault::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};

/// A rotation that has not finished after this long is presumed dead (its process crashed),
/// and another may start.
pub const ROTATION_LEASE: chrono::Duration = chrono::Duration::minutes(5);

word_enum!(Lifecycle {
    Active = "active",
    Retired = "retired",
    Destroyed = "destroyed",
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub id: String,
    pub trigger: String,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub healthy: bool,
    pub error: Option<String>,
    pub response_time_ms: u64,
    pub checked_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub id: String,
    pub name: String,
    pub credential_type: String,
    pub provider: String,
    pub settings: Settings,
    pub lifecycle: Lifecycle,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub versions: Vec<Version>,
    pub rotation: Option<Rotation>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub health: Option<Health>,
    /// The version whose expiry was last alerted; alerts fire once per version.
    pub alerted_version: Option<u64>,
    pub retention: Option<Retention>,
}

impl Credential {
    /// The active version's number; 0 before the first value.
    pub fn version(&self) -> u64 {
        self.versions.last().map_or(0, |v| v.version)
    }

    pub fn current(&self) -> Option<&Version> {
        self.versions.last()
    }

    pub fn find(&self, version: u64) -> Option<&Version> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// When the current value was set: what a scheduled rotation counts from.
    pub fn value_since(&self) -> DateTime<Utc> {
        self.current().map_or(self.created_at, |v| v.created_at)
    }

    /// A rotation in flight that still holds its lease at `now`.
    pub fn rotating(&self, now: DateTime<Utc>) -> Option<&Rotation> {
        self.rotation
            .as_ref()
            .filter(|r| now - r.started_at < ROTATION_LEASE)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewCredential {
    pub id: String,
    pub name: String,
    pub credential_type: String,
    pub provider: String,
    pub settings: Settings,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    /// The version the value was sealed for: the decider accepts only the next one.
    pub version: u64,
    pub reason: String,
    pub trigger: String,
    pub restored_from: Option<u64>,
    pub duration_ms: u64,
    pub sealed: Sealed,
    /// The rotation this version completes, which must be the one in flight.
    pub rotation_id: Option<String>,
    pub changed_by: String,
    /// Sealed under its own key (every version written now is).
    pub own_key: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Create {
        credential: NewCredential,
        value: Option<NewVersion>,
    },
    /// New settings, and optionally a new value, in one commit.
    Update {
        settings: Settings,
        fields: Vec<String>,
        value: Option<NewVersion>,
        now: DateTime<Utc>,
    },
    /// A new value; `now` decides whether a rotation in flight still holds its lease.
    AddVersion {
        version: NewVersion,
        now: DateTime<Utc>,
    },
    StartRotation {
        id: String,
        trigger: String,
        reason: String,
        now: DateTime<Utc>,
    },
    FailRotation {
        id: String,
        error: String,
        duration_ms: u64,
    },
    Retire,
    Destroy {
        reason: String,
    },
    RecordHealth {
        healthy: bool,
        error: Option<String>,
        response_time_ms: u64,
    },
    AlertExpiry {
        version: u64,
        expires_at: DateTime<Utc>,
    },
    RecordApplied(pb::CredentialApplied),
    /// Deprecate or destroy one version.
    SetVersionState {
        version: u64,
        state: VersionState,
        reason: String,
    },
    SetRetention(Retention),
    /// Destroy the versions the retention policy no longer keeps at `now`.
    EnforceRetention {
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Created(NewCredential),
    Updated {
        settings: Settings,
        fields: Vec<String>,
    },
    VersionAdded(NewVersion),
    RotationStarted {
        id: String,
        trigger: String,
        reason: String,
    },
    RotationFailed {
        id: String,
        error: String,
        duration_ms: u64,
    },
    Retired,
    Destroyed {
        reason: String,
    },
    HealthChecked {
        healthy: bool,
        error: Option<String>,
        response_time_ms: u64,
    },
    ExpiryAlerted {
        version: u64,
        expires_at: DateTime<Utc>,
    },
    Applied(pb::CredentialApplied),
    VersionStateChanged {
        version: u64,
        state: VersionState,
        reason: String,
    },
    RetentionSet(Retention),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CredentialError {
    #[error("credential not found")]
    NotFound,
    #[error("Credential name already exists")]
    NameTaken,
    #[error("the credential is {0}")]
    NotActive(Lifecycle),
    #[error("Credential is currently being rotated")]
    Rotating { retry_after_ms: u64 },
    #[error("version {got} is not the next version ({expected}): the credential changed")]
    VersionRaced { expected: u64, got: u64 },
    #[error("no rotation `{0}` is in flight")]
    NoSuchRotation(String),
    #[error("version {0} does not exist")]
    NoSuchVersion(u64),
    #[error("the credential has no value yet")]
    NoValue,
    #[error("version {0} is destroyed: its value is gone")]
    VersionDestroyed(u64),
    #[error(transparent)]
    Version(#[from] VersionRefusal),
}

pub struct CredentialAggregate;

fn active(c: &Credential) -> Result<(), CredentialError> {
    match c.lifecycle {
        Lifecycle::Active => Ok(()),
        other => Err(CredentialError::NotActive(other)),
    }
}

fn check_version(c: &Credential, v: &NewVersion) -> Result<(), CredentialError> {
    let expected = c.version() + 1;
    if v.version != expected {
        return Err(CredentialError::VersionRaced {
            expected,
            got: v.version,
        });
    }
    if let Some(restored) = v.restored_from {
        let target = c
            .find(restored)
            .ok_or(CredentialError::NoSuchVersion(restored))?;
        if target.state == VersionState::Destroyed {
            return Err(CredentialError::VersionDestroyed(restored));
        }
    }
    Ok(())
}

/// The version-state changes a retention policy set to apply by itself makes once `added` is
/// the current version.
fn auto_retention(c: &Credential, added: &NewVersion, now: DateTime<Utc>) -> Vec<Event> {
    let Some(policy) = c.retention.as_ref().filter(|p| p.auto_destroy) else {
        return Vec::new();
    };
    let mut after = c.clone();
    after.versions.push(Version {
        version: added.version,
        reason: added.reason.clone(),
        trigger: added.trigger.clone(),
        restored_from: added.restored_from,
        created_at: now,
        sealed: added.sealed.clone(),
        state: VersionState::Active,
        created_by: String::new(),
        changed_by: added.changed_by.clone(),
        own_key: added.own_key,
    });
    destroyed_by(&after, policy, now)
}

fn destroyed_by(c: &Credential, policy: &Retention, now: DateTime<Utc>) -> Vec<Event> {
    beyond(&c.versions, c.version(), policy, now)
        .into_iter()
        .map(|version| Event::VersionStateChanged {
            version,
            state: VersionState::Destroyed,
            reason: "retention".into(),
        })
        .collect()
}

impl Aggregate for CredentialAggregate {
    const CONTEXT: &'static str = "vault";
    const AGGREGATE: &'static str = "credential";
    type State = Option<Credential>;
    type Command = Command;
    type Event = Event;
    type Error = CredentialError;

    fn decide(state: &Option<Credential>, cmd: &Command) -> Result<Vec<Event>, CredentialError> {
        use CredentialError as E;
        let Some(c) = state else {
            return match cmd {
                Command::Create { credential, value } => {
                    let mut events = vec![Event::Created(credential.clone())];
                    if let Some(v) = value {
                        if v.version != 1 {
                            return Err(E::VersionRaced {
                                expected: 1,
                                got: v.version,
                            });
                        }
                        events.push(Event::VersionAdded(v.clone()));
                    }
                    Ok(events)
                }
                _ => Err(E::NotFound),
            };
        };
        match cmd {
            Command::Create { .. } => Err(E::NameTaken),
            // Retiring and destroying twice change nothing, so retries answer the same.
            Command::Retire if c.lifecycle != Lifecycle::Active => Ok(vec![]),
            Command::Retire => Ok(vec![Event::Retired]),
            Command::Destroy { .. } if c.lifecycle == Lifecycle::Destroyed => Ok(vec![]),
            Command::Destroy { reason } => Ok(vec![Event::Destroyed {
                reason: reason.clone(),
            }]),
            Command::Update { fields, value, .. } if fields.is_empty() && value.is_none() => {
                Ok(vec![])
            }
            Command::Update {
                settings,
                fields,
                value,
                now,
            } => {
                active(c)?;
                let mut events = Vec::new();
                if !fields.is_empty() {
                    events.push(Event::Updated {
                        settings: settings.clone(),
                        fields: fields.clone(),
                    });
                }
                if let Some(v) = value {
                    if let Some(r) = c.rotating(*now) {
                        return Err(E::Rotating {
                            retry_after_ms: remaining_ms(r, *now),
                        });
                    }
                    check_version(c, v)?;
                    events.push(Event::VersionAdded(v.clone()));
                }
                Ok(events)
            }
            Command::AddVersion { version: v, now } => {
                active(c)?;
                match (&v.rotation_id, &c.rotation) {
                    (Some(id), Some(r)) if *id == r.id => {}
                    (Some(id), _) => return Err(E::NoSuchRotation(id.clone())),
                    // A rollback does not race a rotation in flight: the rotation would
                    // overwrite it a moment later.
                    (None, _) => {
                        if let Some(r) = c.rotating(*now) {
                            return Err(E::Rotating {
                                retry_after_ms: remaining_ms(r, *now),
                            });
                        }
                    }
                }
                check_version(c, v)?;
                let mut events = vec![Event::VersionAdded(v.clone())];
                events.extend(auto_retention(c, v, *now));
                Ok(events)
            }
            Command::StartRotation {
                id,
                trigger,
                reason,
                now,
            } => {
                active(c)?;
                if let Some(r) = c.rotating(*now) {
                    return Err(E::Rotating {
                        retry_after_ms: remaining_ms(r, *now),
                    });
                }
                Ok(vec![Event::RotationStarted {
                    id: id.clone(),
                    trigger: trigger.clone(),
                    reason: reason.clone(),
                }])
            }
            Command::FailRotation {
                id,
                error,
                duration_ms,
            } => match &c.rotation {
                Some(r) if r.id == *id => Ok(vec![Event::RotationFailed {
                    id: id.clone(),
                    error: error.clone(),
                    duration_ms: *duration_ms,
                }]),
                _ => Err(E::NoSuchRotation(id.clone())),
            },
            Command::RecordHealth {
                healthy,
                error,
                response_time_ms,
            } => Ok(vec![Event::HealthChecked {
                healthy: *healthy,
                error: error.clone(),
                response_time_ms: *response_time_ms,
            }]),
            Command::AlertExpiry {
                version,
                expires_at,
            } => {
                if c.lifecycle != Lifecycle::Active || c.alerted_version == Some(*version) {
                    return Ok(vec![]);
                }
                Ok(vec![Event::ExpiryAlerted {
                    version: *version,
                    expires_at: *expires_at,
                }])
            }
            Command::RecordApplied(a) => {
                active(c)?;
                Ok(vec![Event::Applied(a.clone())])
            }
            Command::SetVersionState { .. } | Command::SetRetention(_)
                if c.lifecycle == Lifecycle::Destroyed =>
            {
                Err(E::NotActive(Lifecycle::Destroyed))
            }
            Command::SetVersionState {
                version,
                state,
                reason,
            } => Ok(
                if may_become(
                    c.find(*version).ok_or(E::NoSuchVersion(*version))?,
                    c.version(),
                    *state,
                )? {
                    vec![Event::VersionStateChanged {
                        version: *version,
                        state: *state,
                        reason: reason.clone(),
                    }]
                } else {
                    vec![]
                },
            ),
            Command::SetRetention(r) if c.retention.as_ref() == Some(r) => Ok(vec![]),
            Command::SetRetention(r) => Ok(vec![Event::RetentionSet(r.clone())]),
            Command::EnforceRetention { now } => Ok(match &c.retention {
                Some(policy) if c.lifecycle != Lifecycle::Destroyed => {
                    destroyed_by(c, policy, *now)
                }
                _ => vec![],
            }),
        }
    }

    fn evolve(state: Option<Credential>, event: &Event, env: &Envelope) -> Option<Credential> {
        let at = occurred_at(env);
        let Some(mut c) = state else {
            return match event {
                Event::Created(n) => Some(Credential {
                    id: n.id.clone(),
                    name: n.name.clone(),
                    credential_type: n.credential_type.clone(),
                    provider: n.provider.clone(),
                    settings: n.settings.clone(),
                    lifecycle: Lifecycle::Active,
                    created_at: at,
                    updated_at: at,
                    versions: Vec::new(),
                    rotation: None,
                    last_rotated_at: None,
                    health: None,
                    alerted_version: None,
                    retention: None,
                }),
                _ => None,
            };
        };
        match event {
            Event::Created(_) => {}
            Event::Updated { settings, .. } => {
                c.settings = settings.clone();
                c.updated_at = at;
            }
            Event::VersionAdded(v) => {
                if v.reason == "rotation" {
                    c.last_rotated_at = Some(at);
                    c.rotation = None;
                }
                c.versions.push(Version {
                    version: v.version,
                    reason: v.reason.clone(),
                    trigger: v.trigger.clone(),
                    restored_from: v.restored_from,
                    created_at: at,
                    sealed: v.sealed.clone(),
                    state: VersionState::Active,
                    created_by: env
                        .actor
                        .as_ref()
                        .map(|a| a.subject.clone())
                        .unwrap_or_default(),
                    changed_by: v.changed_by.clone(),
                    own_key: v.own_key,
                });
                c.updated_at = at;
            }
            Event::RotationStarted { id, trigger, .. } => {
                c.rotation = Some(Rotation {
                    id: id.clone(),
                    trigger: trigger.clone(),
                    started_at: at,
                });
            }
            Event::RotationFailed { .. } => c.rotation = None,
            Event::Retired => {
                c.lifecycle = Lifecycle::Retired;
                c.updated_at = at;
            }
            Event::Destroyed { .. } => {
                c.lifecycle = Lifecycle::Destroyed;
                c.rotation = None;
                c.updated_at = at;
            }
            Event::HealthChecked {
                healthy,
                error,
                response_time_ms,
            } => {
                c.health = Some(Health {
                    healthy: *healthy,
                    error: error.clone(),
                    response_time_ms: *response_time_ms,
                    checked_at: at,
                });
            }
            Event::ExpiryAlerted { version, .. } => c.alerted_version = Some(*version),
            Event::Applied(_) => {}
            Event::VersionStateChanged { version, state, .. } => {
                if let Some(v) = c.versions.iter_mut().find(|v| v.version == *version) {
                    v.state = *state;
                }
                c.updated_at = at;
            }
            Event::RetentionSet(r) => {
                c.retention = Some(r.clone());
                c.updated_at = at;
            }
        }
        Some(c)
    }

    fn encode(event: &Event) -> NewEvent {
        let (event_type, payload) = match event {
            Event::Created(n) => (
                "credential.created.v1",
                pb::CredentialCreated {
                    id: n.id.clone(),
                    name: n.name.clone(),
                    credential_type: n.credential_type.clone(),
                    provider: n.provider.clone(),
                    settings: Some(n.settings.to_pb()),
                }
                .encode_to_vec(),
            ),
            Event::Updated { settings, fields } => (
                "credential.updated.v1",
                pb::CredentialUpdated {
                    settings: Some(settings.to_pb()),
                    updated_fields: fields.clone(),
                }
                .encode_to_vec(),
            ),
            Event::VersionAdded(v) => {
                // The sealed value is credential material: the envelope keeps it.
                let payload = pb::VersionAdded {
                    version: v.version,
                    reason: v.reason.clone(),
                    value: None,
                    trigger: v.trigger.clone(),
                    restored_from: v.restored_from.unwrap_or(0),
                    duration_ms: v.duration_ms,
                    changed_by: v.changed_by.clone(),
                    own_key: v.own_key,
                }
                .encode_to_vec();
                return NewEvent {
                    credential: pb::SealedValue {
                        nonce: v.sealed.nonce.clone(),
                        ciphertext: v.sealed.ciphertext.clone(),
                    }
                    .encode_to_vec(),
                    event_type: "credential.version_added.v1",
                    payload,
                };
            }
            Event::RotationStarted {
                id,
                trigger,
                reason,
            } => (
                "credential.rotation_started.v1",
                pb::RotationStarted {
                    rotation_id: id.clone(),
                    trigger: trigger.clone(),
                    reason: reason.clone(),
                }
                .encode_to_vec(),
            ),
            Event::RotationFailed {
                id,
                error,
                duration_ms,
            } => (
                "credential.rotation_failed.v1",
                pb::RotationFailed {
                    rotation_id: id.clone(),
                    error: error.clone(),
                    duration_ms: *duration_ms,
                }
                .encode_to_vec(),
            ),
            Event::Retired => (
                "credential.retired.v1",
                pb::CredentialRetired {}.encode_to_vec(),
            ),
            Event::Destroyed { reason } => (
                "credential.destroyed.v1",
                pb::CredentialDestroyed {
                    reason: reason.clone(),
                }
                .encode_to_vec(),
            ),
            Event::HealthChecked {
                healthy,
                error,
                response_time_ms,
            } => (
                "credential.health_checked.v1",
                pb::HealthChecked {
                    healthy: *healthy,
                    error: error.clone().unwrap_or_default(),
                    response_time_ms: *response_time_ms,
                }
                .encode_to_vec(),
            ),
            Event::ExpiryAlerted {
                version,
                expires_at,
            } => (
                "credential.expiry_alerted.v1",
                pb::ExpiryAlerted {
                    version: *version,
                    expires_at: expires_at.timestamp(),
                }
                .encode_to_vec(),
            ),
            Event::Applied(a) => ("credential.applied.v1", a.encode_to_vec()),
            Event::VersionStateChanged {
                version,
                state,
                reason,
            } => (
                "credential.version_state_changed.v1",
                pb::VersionStateChanged {
                    version: *version,
                    state: state.as_str().into(),
                    reason: reason.clone(),
                }
                .encode_to_vec(),
            ),
            Event::RetentionSet(r) => (
                "credential.retention_set.v1",
                pb::RetentionSet {
                    max_versions: r.max_versions.unwrap_or(0),
                    delete_after: r.delete_after.clone().unwrap_or_default(),
                    auto_destroy: r.auto_destroy,
                }
                .encode_to_vec(),
            ),
        };
        NewEvent::new(event_type, payload)
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        use aegis_kernel::payload as msg;
        Ok(match env.event_type.as_str() {
            "credential.created.v1" => {
                let m: pb::CredentialCreated = msg(env)?;
                Event::Created(NewCredential {
                    id: m.id,
                    name: m.name,
                    credential_type: m.credential_type,
                    provider: m.provider,
                    settings: Settings::from_pb(m.settings.unwrap_or_default()),
                })
            }
            "credential.updated.v1" => {
                let m: pb::CredentialUpdated = msg(env)?;
                Event::Updated {
                    settings: Settings::from_pb(m.settings.unwrap_or_default()),
                    fields: m.updated_fields,
                }
            }
            "credential.version_added.v1" => {
                let m: pb::VersionAdded = msg(env)?;
                let value = aegis_kernel::credential_message(env, m.value)?.unwrap_or_default();
                Event::VersionAdded(NewVersion {
                    version: m.version,
                    reason: m.reason,
                    trigger: m.trigger,
                    restored_from: (m.restored_from != 0).then_some(m.restored_from),
                    duration_ms: m.duration_ms,
                    sealed: Sealed {
                        nonce: value.nonce,
                        ciphertext: value.ciphertext,
                    },
                    rotation_id: None,
                    changed_by: m.changed_by,
                    own_key: m.own_key,
                })
            }
            "credential.rotation_started.v1" => {
                let m: pb::RotationStarted = msg(env)?;
                Event::RotationStarted {
                    id: m.rotation_id,
                    trigger: m.trigger,
                    reason: m.reason,
                }
            }
            "credential.rotation_failed.v1" => {
                let m: pb::RotationFailed = msg(env)?;
                Event::RotationFailed {
                    id: m.rotation_id,
                    error: m.error,
                    duration_ms: m.duration_ms,
                }
            }
            "credential.retired.v1" => Event::Retired,
            "credential.destroyed.v1" => Event::Destroyed {
                reason: msg::<pb::CredentialDestroyed>(env)?.reason,
            },
            "credential.health_checked.v1" => {
                let m: pb::HealthChecked = msg(env)?;
                Event::HealthChecked {
                    healthy: m.healthy,
                    error: (!m.error.is_empty()).then_some(m.error),
                    response_time_ms: m.response_time_ms,
                }
            }
            "credential.expiry_alerted.v1" => {
                let m: pb::ExpiryAlerted = msg(env)?;
                Event::ExpiryAlerted {
                    version: m.version,
                    expires_at: DateTime::from_timestamp(m.expires_at, 0).unwrap_or_default(),
                }
            }
            "credential.applied.v1" => Event::Applied(msg(env)?),
            "credential.version_state_changed.v1" => {
                let m: pb::VersionStateChanged = msg(env)?;
                Event::VersionStateChanged {
                    version: m.version,
                    state: VersionState::parse(&m.state).ok_or_else(|| {
                        DecodeError::new(env, format!("unknown version state `{}`", m.state))
                    })?,
                    reason: m.reason,
                }
            }
            "credential.retention_set.v1" => {
                let m: pb::RetentionSet = msg(env)?;
                Event::RetentionSet(Retention {
                    max_versions: (m.max_versions != 0).then_some(m.max_versions),
                    delete_after: (!m.delete_after.is_empty()).then_some(m.delete_after),
                    auto_destroy: m.auto_destroy,
                })
            }
            other => {
                return Err(DecodeError::new(
                    env,
                    format!("not a credential event: {other}"),
                ))
            }
        })
    }
}

fn remaining_ms(r: &Rotation, now: DateTime<Utc>) -> u64 {
    let left = (r.started_at + ROTATION_LEASE - now).num_milliseconds();
    // While it runs, a rotation usually finishes within seconds: suggest a short wait.
    left.clamp(100, 5_000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn created() -> Event {
        Event::Created(NewCredential {
            id: "cred_1".into(),
            name: "db".into(),
            credential_type: "database".into(),
            provider: "env".into(),
            settings: Settings::default(),
        })
    }

    fn version(n: u64, reason: &str) -> NewVersion {
        NewVersion {
            version: n,
            reason: reason.into(),
            trigger: String::new(),
            restored_from: None,
            duration_ms: 0,
            sealed: Sealed {
                nonce: vec![n as u8; 24],
                ciphertext: vec![1, 2, 3],
            },
            rotation_id: None,
            changed_by: String::new(),
            own_key: true,
        }
    }

    fn add(version: NewVersion) -> Command {
        Command::AddVersion {
            version,
            now: now(),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).unwrap_or_default()
    }

    fn state(version: u64, state: VersionState) -> Command {
        Command::SetVersionState {
            version,
            state,
            reason: "test".into(),
        }
    }

    fn changed(version: u64, state: VersionState) -> Event {
        Event::VersionStateChanged {
            version,
            state,
            reason: "test".into(),
        }
    }

    fn three_versions() -> Vec<Event> {
        vec![
            created(),
            Event::VersionAdded(version(1, "initial")),
            Event::VersionAdded(version(2, "update")),
            Event::VersionAdded(version(3, "update")),
        ]
    }

    #[test]
    fn a_version_is_deprecated_then_destroyed_never_back() {
        use VersionState::*;
        given::<CredentialAggregate>(three_versions())
            .when(state(1, Deprecated))
            .then(vec![changed(1, Deprecated)]);
        let mut deprecated = three_versions();
        deprecated.push(changed(1, Deprecated));
        given::<CredentialAggregate>(deprecated.clone())
            .when(state(1, Deprecated))
            .then(vec![]);
        given::<CredentialAggregate>(deprecated.clone())
            .when(state(1, Destroyed))
            .then(vec![changed(1, Destroyed)]);
        given::<CredentialAggregate>(deprecated)
            .when(state(1, Active))
            .then_err(CredentialError::Version(VersionRefusal::Backwards {
                version: 1,
                from: Deprecated,
                to: Active,
            }));
        let mut destroyed = three_versions();
        destroyed.push(changed(2, Destroyed));
        given::<CredentialAggregate>(destroyed.clone())
            .when(state(2, Deprecated))
            .then_err(CredentialError::Version(VersionRefusal::Backwards {
                version: 2,
                from: Destroyed,
                to: Deprecated,
            }));
        // A rollback to a destroyed version is refused: its value is gone.
        given::<CredentialAggregate>(destroyed)
            .when(add(NewVersion {
                restored_from: Some(2),
                ..version(4, "rollback")
            }))
            .then_err(CredentialError::VersionDestroyed(2));
    }

    #[test]
    fn the_current_version_and_a_shared_key_version_are_not_destroyed_alone() {
        given::<CredentialAggregate>(three_versions())
            .when(state(3, VersionState::Destroyed))
            .then_err(CredentialError::Version(VersionRefusal::Current(3)));
        given::<CredentialAggregate>(vec![
            created(),
            Event::VersionAdded(NewVersion {
                own_key: false,
                ..version(1, "initial")
            }),
            Event::VersionAdded(version(2, "update")),
        ])
        .when(state(1, VersionState::Destroyed))
        .then_err(CredentialError::Version(VersionRefusal::SharedKey(1)));
        given::<CredentialAggregate>(three_versions())
            .when(state(9, VersionState::Deprecated))
            .then_err(CredentialError::NoSuchVersion(9));
    }

    #[test]
    fn retention_destroys_the_oldest_beyond_the_limit_but_never_the_current() {
        let keep_two = Retention {
            max_versions: Some(2),
            delete_after: None,
            auto_destroy: false,
        };
        let mut given_events = three_versions();
        given_events.push(Event::RetentionSet(keep_two.clone()));
        given::<CredentialAggregate>(given_events.clone())
            .when(Command::EnforceRetention { now: now() })
            .then(vec![changed(1, VersionState::Destroyed).retention()]);
        given::<CredentialAggregate>(given_events)
            .when(Command::SetRetention(keep_two))
            .then(vec![]);
        // Versions older than `deleteAfter` go, except the current one (the given events
        // carry the epoch as their time).
        let mut old = three_versions();
        old.push(Event::RetentionSet(Retention {
            max_versions: None,
            delete_after: Some("P30D".into()),
            auto_destroy: false,
        }));
        given::<CredentialAggregate>(old)
            .when(Command::EnforceRetention { now: now() })
            .then(vec![
                changed(1, VersionState::Destroyed).retention(),
                changed(2, VersionState::Destroyed).retention(),
            ]);
    }

    #[test]
    fn an_auto_destroying_policy_applies_with_each_new_version() {
        let mut given_events = three_versions();
        given_events.push(Event::RetentionSet(Retention {
            max_versions: Some(3),
            delete_after: None,
            auto_destroy: true,
        }));
        given::<CredentialAggregate>(given_events)
            .when(add(version(4, "update")))
            .then(vec![
                Event::VersionAdded(version(4, "update")),
                changed(1, VersionState::Destroyed).retention(),
            ]);
    }

    impl Event {
        fn retention(self) -> Event {
            match self {
                Event::VersionStateChanged { version, state, .. } => Event::VersionStateChanged {
                    version,
                    state,
                    reason: "retention".into(),
                },
                other => other,
            }
        }
    }

    #[test]
    fn a_name_is_taken_once() {
        given::<CredentialAggregate>(vec![created()])
            .when(Command::Create {
                credential: NewCredential {
                    id: "cred_2".into(),
                    name: "db".into(),
                    credential_type: "api_key".into(),
                    provider: "api".into(),
                    settings: Settings::default(),
                },
                value: None,
            })
            .then_err(CredentialError::NameTaken);
    }

    #[test]
    fn a_new_value_must_be_the_next_version() {
        given::<CredentialAggregate>(vec![created(), Event::VersionAdded(version(1, "initial"))])
            .when(add(version(3, "rollback")))
            .then_err(CredentialError::VersionRaced {
                expected: 2,
                got: 3,
            });
        given::<CredentialAggregate>(vec![created(), Event::VersionAdded(version(1, "initial"))])
            .when(add(NewVersion {
                restored_from: Some(7),
                ..version(2, "rollback")
            }))
            .then_err(CredentialError::NoSuchVersion(7));
    }

    #[test]
    fn one_rotation_at_a_time_until_its_lease_runs_out() {
        let start = |id: &str, at| Command::StartRotation {
            id: id.into(),
            trigger: "manual".into(),
            reason: String::new(),
            now: at,
        };
        let started = Event::RotationStarted {
            id: "r1".into(),
            trigger: "manual".into(),
            reason: String::new(),
        };
        // The given events carry no time, so the lease started at the epoch.
        let epoch = DateTime::<Utc>::default();
        assert!(matches!(
            CredentialAggregate::decide(
                &given_state(vec![created(), started.clone()]),
                &start("r2", epoch + chrono::Duration::seconds(1))
            ),
            Err(CredentialError::Rotating { .. })
        ));
        given::<CredentialAggregate>(vec![created(), started.clone()])
            .when(start("r2", now()))
            .then(vec![Event::RotationStarted {
                id: "r2".into(),
                trigger: "manual".into(),
                reason: String::new(),
            }]);
        // Only the rotation in flight can complete.
        given::<CredentialAggregate>(vec![created(), started.clone()])
            .when(add(NewVersion {
                rotation_id: Some("other".into()),
                ..version(1, "rotation")
            }))
            .then_err(CredentialError::NoSuchRotation("other".into()));
        // A rollback waits for the rotation in flight.
        assert!(matches!(
            CredentialAggregate::decide(
                &given_state(vec![created(), started.clone()]),
                &Command::AddVersion {
                    version: version(1, "rollback"),
                    now: epoch
                }
            ),
            Err(CredentialError::Rotating { .. })
        ));
        given::<CredentialAggregate>(vec![created(), started])
            .when(add(NewVersion {
                rotation_id: Some("r1".into()),
                ..version(1, "rotation")
            }))
            .then(vec![Event::VersionAdded(NewVersion {
                rotation_id: Some("r1".into()),
                ..version(1, "rotation")
            })]);
    }

    fn given_state(events: Vec<Event>) -> Option<Credential> {
        events.iter().fold(None, |s, e| {
            CredentialAggregate::evolve(s, e, &Envelope::default())
        })
    }

    #[test]
    fn a_retired_credential_takes_no_new_value_and_retiring_again_is_a_no_op() {
        given::<CredentialAggregate>(vec![created(), Event::Retired])
            .when(add(version(1, "update")))
            .then_err(CredentialError::NotActive(Lifecycle::Retired));
        given::<CredentialAggregate>(vec![created(), Event::Retired])
            .when(Command::Retire)
            .then(vec![]);
        given::<CredentialAggregate>(vec![created(), Event::Retired])
            .when(Command::Destroy {
                reason: "leak".into(),
            })
            .then(vec![Event::Destroyed {
                reason: "leak".into(),
            }]);
    }

    #[test]
    fn an_expiry_alert_fires_once_per_version() {
        let alert = Command::AlertExpiry {
            version: 1,
            expires_at: now(),
        };
        given::<CredentialAggregate>(vec![
            created(),
            Event::ExpiryAlerted {
                version: 1,
                expires_at: now(),
            },
        ])
        .when(alert.clone())
        .then(vec![]);
        given::<CredentialAggregate>(vec![created()])
            .when(alert)
            .then(vec![Event::ExpiryAlerted {
                version: 1,
                expires_at: now(),
            }]);
    }
}
