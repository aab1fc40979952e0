//! Seed 003's dynamic secrets: a configuration (`vault.dynamic_config.<id>`) says how to make
//! credentials on one backend, and each credential made is a lease (`vault.lease.<id>`) that
//! ends by revocation or expiry. The admin connection is sealed before the decider sees it;
//! a lease's password is never recorded at all.

use aegis_kernel::{credential_message, occurred_at, payload, Aggregate, DecodeError, Sealed};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::vault::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub struct NewConfig {
    pub id: String,
    pub name: String,
    /// `database`, `cloud_credentials`, `api_key` or `certificate`.
    pub kind: String,
    /// `postgres`.
    pub backend: String,
    pub username_template: String,
    pub role_template: String,
    pub ttl_default_seconds: i64,
    pub ttl_max_seconds: i64,
    /// The admin connection, sealed under the config's own key.
    pub connection: Sealed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub new: NewConfig,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("a dynamic secret configuration with this id exists")]
    Exists,
}

pub struct DynamicConfigAggregate;

impl Aggregate for DynamicConfigAggregate {
    const CONTEXT: &'static str = "vault";
    const AGGREGATE: &'static str = "dynamic_config";
    type State = Option<Config>;
    type Command = NewConfig;
    type Event = NewConfig;
    type Error = ConfigError;

    fn decide(state: &Option<Config>, cmd: &NewConfig) -> Result<Vec<NewConfig>, ConfigError> {
        match state {
            Some(_) => Err(ConfigError::Exists),
            None => Ok(vec![cmd.clone()]),
        }
    }

    fn evolve(_: Option<Config>, event: &NewConfig, env: &Envelope) -> Option<Config> {
        Some(Config {
            new: event.clone(),
            created_at: occurred_at(env),
        })
    }

    fn encode(e: &NewConfig) -> NewEvent {
        NewEvent {
            credential: pb::SealedValue {
                nonce: e.connection.nonce.clone(),
                ciphertext: e.connection.ciphertext.clone(),
            }
            .encode_to_vec(),
            ..NewEvent::new(
                "dynamic_config.created.v1",
                pb::DynamicConfigCreated {
                    id: e.id.clone(),
                    name: e.name.clone(),
                    kind: e.kind.clone(),
                    backend: e.backend.clone(),
                    username_template: e.username_template.clone(),
                    role_template: e.role_template.clone(),
                    ttl_default_seconds: e.ttl_default_seconds,
                    ttl_max_seconds: e.ttl_max_seconds,
                }
                .encode_to_vec(),
            )
        }
    }

    fn decode(env: &Envelope) -> Result<NewConfig, DecodeError> {
        if env.event_type != "dynamic_config.created.v1" {
            return Err(DecodeError::new(env, "unknown dynamic config event"));
        }
        let m: pb::DynamicConfigCreated = payload(env)?;
        let sealed = credential_message::<pb::SealedValue>(env, None)?.unwrap_or_default();
        Ok(NewConfig {
            id: m.id,
            name: m.name,
            kind: m.kind,
            backend: m.backend,
            username_template: m.username_template,
            role_template: m.role_template,
            ttl_default_seconds: m.ttl_default_seconds,
            ttl_max_seconds: m.ttl_max_seconds,
            connection: Sealed {
                nonce: sealed.nonce,
                ciphertext: sealed.ciphertext,
            },
        })
    }
}

word_enum!(LeaseEnd {
    Revoked = "revoked",
    Expired = "expired",
});

#[derive(Debug, Clone, PartialEq)]
pub struct NewLease {
    pub config_id: String,
    pub username: String,
    pub expires_at: DateTime<Utc>,
    pub max_expires_at: DateTime<Utc>,
    pub purpose: String,
    pub requested_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub issued: NewLease,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ended: Option<(LeaseEnd, DateTime<Utc>)>,
}

impl Lease {
    /// `active`, `expired` or `revoked` at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        match self.ended {
            Some((end, _)) => end.as_str(),
            None if self.expires_at <= now => LeaseEnd::Expired.as_str(),
            None => "active",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum LeaseCommand {
    Issue(NewLease),
    /// Extend to `until`, capped at the lease's maximum; refused once it ended at `now`.
    Renew {
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    /// Record that the role is gone (`Revoked` on request, `Expired` when its time ran out).
    End(LeaseEnd),
}

#[derive(Debug, Clone, PartialEq)]
pub enum LeaseEvent {
    Issued(NewLease),
    Renewed { expires_at: DateTime<Utc> },
    Ended(LeaseEnd),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LeaseError {
    #[error("lease not found")]
    NotFound,
    #[error("this lease was issued already")]
    Issued,
    #[error("the lease is {0}: it cannot be renewed")]
    Ended(&'static str),
}

pub struct LeaseAggregate;

impl Aggregate for LeaseAggregate {
    const CONTEXT: &'static str = "vault";
    const AGGREGATE: &'static str = "lease";
    type State = Option<Lease>;
    type Command = LeaseCommand;
    type Event = LeaseEvent;
    type Error = LeaseError;

    fn decide(state: &Option<Lease>, cmd: &LeaseCommand) -> Result<Vec<LeaseEvent>, LeaseError> {
        let Some(lease) = state else {
            return match cmd {
                LeaseCommand::Issue(n) => Ok(vec![LeaseEvent::Issued(n.clone())]),
                _ => Err(LeaseError::NotFound),
            };
        };
        match cmd {
            LeaseCommand::Issue(_) => Err(LeaseError::Issued),
            LeaseCommand::Renew { until, now } => {
                let status = lease.status(*now);
                if status != "active" {
                    return Err(LeaseError::Ended(status));
                }
                let capped = (*until).min(lease.issued.max_expires_at);
                Ok(if capped > lease.expires_at {
                    vec![LeaseEvent::Renewed { expires_at: capped }]
                } else {
                    vec![]
                })
            }
            // Ending twice records nothing: the first end says how and when.
            LeaseCommand::End(_) if lease.ended.is_some() => Ok(vec![]),
            LeaseCommand::End(how) => Ok(vec![LeaseEvent::Ended(*how)]),
        }
    }

    fn evolve(state: Option<Lease>, event: &LeaseEvent, env: &Envelope) -> Option<Lease> {
        let at = occurred_at(env);
        match (state, event) {
            (None, LeaseEvent::Issued(n)) => Some(Lease {
                issued: n.clone(),
                created_at: at,
                expires_at: n.expires_at,
                ended: None,
            }),
            (Some(mut l), LeaseEvent::Renewed { expires_at }) => {
                l.expires_at = *expires_at;
                Some(l)
            }
            (Some(mut l), LeaseEvent::Ended(how)) => {
                l.ended = Some((*how, at));
                Some(l)
            }
            (state, _) => state,
        }
    }

    fn encode(e: &LeaseEvent) -> NewEvent {
        match e {
            LeaseEvent::Issued(n) => NewEvent::new(
                "lease.issued.v1",
                pb::LeaseIssued {
                    config_id: n.config_id.clone(),
                    username: n.username.clone(),
                    expires_at: n.expires_at.timestamp(),
                    max_expires_at: n.max_expires_at.timestamp(),
                    purpose: n.purpose.clone(),
                    requested_by: n.requested_by.clone(),
                }
                .encode_to_vec(),
            ),
            LeaseEvent::Renewed { expires_at } => NewEvent::new(
                "lease.renewed.v1",
                pb::LeaseRenewed {
                    expires_at: expires_at.timestamp(),
                }
                .encode_to_vec(),
            ),
            LeaseEvent::Ended(how) => NewEvent::new(
                "lease.revoked.v1",
                pb::LeaseRevoked {
                    reason: how.as_str().into(),
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<LeaseEvent, DecodeError> {
        let time = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or_default();
        Ok(match env.event_type.as_str() {
            "lease.issued.v1" => {
                let m: pb::LeaseIssued = payload(env)?;
                LeaseEvent::Issued(NewLease {
                    config_id: m.config_id,
                    username: m.username,
                    expires_at: time(m.expires_at),
                    max_expires_at: time(m.max_expires_at),
                    purpose: m.purpose,
                    requested_by: m.requested_by,
                })
            }
            "lease.renewed.v1" => LeaseEvent::Renewed {
                expires_at: time(payload::<pb::LeaseRenewed>(env)?.expires_at),
            },
            "lease.revoked.v1" => {
                let m: pb::LeaseRevoked = payload(env)?;
                LeaseEvent::Ended(LeaseEnd::parse(&m.reason).ok_or_else(|| {
                    DecodeError::new(env, format!("unknown lease end `{}`", m.reason))
                })?)
            }
            other => {
                return Err(DecodeError::new(
                    env,
                    format!("unknown lease event {other}"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000 + secs, 0).unwrap_or_default()
    }

    fn issued() -> LeaseEvent {
        LeaseEvent::Issued(NewLease {
            config_id: "dyn_1".into(),
            username: "v_app_1".into(),
            expires_at: at(3600),
            max_expires_at: at(4 * 3600),
            purpose: "ci".into(),
            requested_by: "ops".into(),
        })
    }

    #[test]
    fn a_renewal_never_passes_the_maximum() {
        given::<LeaseAggregate>(vec![issued()])
            .when(LeaseCommand::Renew {
                until: at(2 * 3600),
                now: at(60),
            })
            .then(vec![LeaseEvent::Renewed {
                expires_at: at(2 * 3600),
            }]);
        given::<LeaseAggregate>(vec![issued()])
            .when(LeaseCommand::Renew {
                until: at(100 * 3600),
                now: at(60),
            })
            .then(vec![LeaseEvent::Renewed {
                expires_at: at(4 * 3600),
            }]);
        // Shorter than what it has: nothing to record.
        given::<LeaseAggregate>(vec![issued()])
            .when(LeaseCommand::Renew {
                until: at(60),
                now: at(30),
            })
            .then(vec![]);
    }

    #[test]
    fn an_ended_or_expired_lease_is_not_renewed_and_ends_once() {
        given::<LeaseAggregate>(vec![issued()])
            .when(LeaseCommand::Renew {
                until: at(7200),
                now: at(3600),
            })
            .then_err(LeaseError::Ended("expired"));
        let revoked = vec![issued(), LeaseEvent::Ended(LeaseEnd::Revoked)];
        given::<LeaseAggregate>(revoked.clone())
            .when(LeaseCommand::Renew {
                until: at(7200),
                now: at(60),
            })
            .then_err(LeaseError::Ended("revoked"));
        given::<LeaseAggregate>(revoked)
            .when(LeaseCommand::End(LeaseEnd::Expired))
            .then(vec![]);
        given::<LeaseAggregate>(vec![])
            .when(LeaseCommand::End(LeaseEnd::Revoked))
            .then_err(LeaseError::NotFound);
    }
}
