//! Secrets agents discover in their clusters, identified by (cluster, provider, reference).
//! A sync that sees one as it was changes nothing; one that sees it different (or back after
//! it was gone) records a new observation; a full sync that no longer lists it marks it gone.
//! Metadata only: the checksum an agent reports is kept as a keyed MAC, to tell a change, and
//! never shown.

use aegis_kernel::{credential_text, payload, Aggregate, DecodeError};
use aegis_schemas::broker::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::{Message, NewEvent};
use uuid::Uuid;

/// One sighting, as the agent reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub cluster_name: String,
    pub provider_type: String,
    pub secret_ref: String,
    /// JSON objects.
    pub provider_config: String,
    pub labels: String,
    pub version: String,
    /// ms since the epoch, 0 when unknown.
    pub created_at_source: i64,
    pub updated_at_source: i64,
    /// Hex HMAC of the agent's checksum under a tenant key; empty when it sent none.
    pub checksum_mac: String,
    pub agent: Uuid,
}

impl Observation {
    /// Whether `other` tells anything new about the secret (who reported it does not).
    fn differs(&self, other: &Observation) -> bool {
        let mut a = self.clone();
        a.agent = other.agent;
        a != *other
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub last: Observation,
    pub gone: bool,
    pub observations: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Observe(Observation),
    MarkGone { agent: Uuid },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Observed(Observation),
    Changed(Observation),
    Gone { agent: Uuid },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("no such discovered secret")]
    NotFound,
}

pub struct DiscoveredSecretAggregate;

impl Aggregate for DiscoveredSecretAggregate {
    const CONTEXT: &'static str = "broker";
    const AGGREGATE: &'static str = "discovered_secret";
    type State = Option<Discovered>;
    type Command = Command;
    type Event = Event;
    type Error = DiscoveryError;

    fn decide(state: &Option<Discovered>, cmd: &Command) -> Result<Vec<Event>, DiscoveryError> {
        match (state, cmd) {
            (None, Command::Observe(o)) => Ok(vec![Event::Observed(o.clone())]),
            (Some(d), Command::Observe(o)) if d.gone || d.last.differs(o) => {
                Ok(vec![Event::Changed(o.clone())])
            }
            (Some(_), Command::Observe(_)) => Ok(vec![]),
            (None, Command::MarkGone { .. }) => Err(DiscoveryError::NotFound),
            (Some(d), Command::MarkGone { .. }) if d.gone => Ok(vec![]),
            (Some(_), Command::MarkGone { agent }) => Ok(vec![Event::Gone { agent: *agent }]),
        }
    }

    fn evolve(state: Option<Discovered>, event: &Event, _env: &Envelope) -> Option<Discovered> {
        match (state, event) {
            (None, Event::Observed(o)) => Some(Discovered {
                last: o.clone(),
                gone: false,
                observations: 1,
            }),
            (Some(mut d), Event::Changed(o)) => {
                d.last = o.clone();
                d.gone = false;
                d.observations += 1;
                Some(d)
            }
            (Some(mut d), Event::Gone { .. }) => {
                d.gone = true;
                Some(d)
            }
            (state, _) => state,
        }
    }

    fn encode(event: &Event) -> NewEvent {
        let observed = |event_type, o: &Observation| NewEvent {
            credential: o.checksum_mac.as_bytes().to_vec(),
            event_type,
            payload: pb::SecretObserved {
                cluster_name: o.cluster_name.clone(),
                provider_type: o.provider_type.clone(),
                reference: o.secret_ref.clone(),
                provider_config_json: o.provider_config.clone(),
                labels_json: o.labels.clone(),
                version: o.version.clone(),
                created_at_source: o.created_at_source,
                updated_at_source: o.updated_at_source,
                agent_id: o.agent.to_string(),
            }
            .encode_to_vec(),
        };
        match event {
            Event::Observed(o) => observed("discovered_secret.observed.v1", o),
            Event::Changed(o) => observed("discovered_secret.changed.v1", o),
            Event::Gone { agent } => NewEvent::new(
                "discovered_secret.gone.v1",
                pb::SecretGone {
                    agent_id: agent.to_string(),
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        let agent = |s: &str| {
            Uuid::parse_str(s).map_err(|e| DecodeError::new(env, format!("agent id: {e}")))
        };
        let observed = || -> Result<Observation, DecodeError> {
            let m: pb::SecretObserved = payload(env)?;
            Ok(Observation {
                agent: agent(&m.agent_id)?,
                cluster_name: m.cluster_name,
                provider_type: m.provider_type,
                secret_ref: m.reference,
                provider_config: m.provider_config_json,
                labels: m.labels_json,
                version: m.version,
                created_at_source: m.created_at_source,
                updated_at_source: m.updated_at_source,
                checksum_mac: credential_text(env, String::new())?,
            })
        };
        Ok(match env.event_type.as_str() {
            "discovered_secret.observed.v1" => Event::Observed(observed()?),
            "discovered_secret.changed.v1" => Event::Changed(observed()?),
            "discovered_secret.gone.v1" => Event::Gone {
                agent: agent(&payload::<pb::SecretGone>(env)?.agent_id)?,
            },
            other => {
                return Err(DecodeError::new(
                    env,
                    format!("not a discovered secret event: {other}"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn seen(version: &str, agent: u128) -> Observation {
        Observation {
            cluster_name: "prod-eu".into(),
            provider_type: "kubernetes".into(),
            secret_ref: "billing/db-password".into(),
            provider_config: "{}".into(),
            labels: "{\"team\":\"billing\"}".into(),
            version: version.into(),
            created_at_source: 0,
            updated_at_source: 0,
            checksum_mac: "ab".into(),
            agent: Uuid::from_u128(agent),
        }
    }

    #[test]
    fn the_same_sighting_changes_nothing_and_a_different_one_is_a_new_observation() {
        given::<DiscoveredSecretAggregate>(vec![])
            .when(Command::Observe(seen("1", 1)))
            .then(vec![Event::Observed(seen("1", 1))]);
        // Another agent seeing it the same is not news either.
        given::<DiscoveredSecretAggregate>(vec![Event::Observed(seen("1", 1))])
            .when(Command::Observe(seen("1", 2)))
            .then(vec![]);
        given::<DiscoveredSecretAggregate>(vec![Event::Observed(seen("1", 1))])
            .when(Command::Observe(seen("2", 1)))
            .then(vec![Event::Changed(seen("2", 1))]);
    }

    #[test]
    fn a_secret_gone_from_a_full_sync_is_marked_once_and_comes_back_when_seen() {
        let gone = Event::Gone {
            agent: Uuid::from_u128(1),
        };
        given::<DiscoveredSecretAggregate>(vec![Event::Observed(seen("1", 1))])
            .when(Command::MarkGone {
                agent: Uuid::from_u128(1),
            })
            .then(vec![gone.clone()]);
        given::<DiscoveredSecretAggregate>(vec![Event::Observed(seen("1", 1)), gone.clone()])
            .when(Command::MarkGone {
                agent: Uuid::from_u128(1),
            })
            .then(vec![]);
        given::<DiscoveredSecretAggregate>(vec![Event::Observed(seen("1", 1)), gone])
            .when(Command::Observe(seen("1", 1)))
            .then(vec![Event::Changed(seen("1", 1))]);
    }
}
