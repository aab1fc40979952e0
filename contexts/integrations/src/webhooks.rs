//! A webhook (`integrations.webhook.<id>`): where incident and auto-response notifications
//! go, in which vendor's format. Its URL, routing key and signing secret are sealed before
//! they reach the decider, so the log and the read models only ever hold ciphertext.

use crate::sealed::{self, Refusal, SealedConfig};
use aegis_kernel::{Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::integrations::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;

word_enum!(WebhookKind {
    Slack = "slack",
    Pagerduty = "pagerduty",
    Generic = "generic",
});

/// What a webhook can receive; the words are dotted, so not a `word_enum!`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub enum Topic {
    #[serde(rename = "incident.opened")]
    IncidentOpened,
    /// An incident reached `resolved` or `closed` (PagerDuty: `resolve`).
    #[serde(rename = "incident.resolved")]
    IncidentResolved,
    /// Any status change (PagerDuty takes only `acknowledged`, as `acknowledge`).
    #[serde(rename = "incident.status_changed")]
    IncidentStatusChanged,
    /// A rule's `notify` action.
    #[serde(rename = "auto_response.notify")]
    AutoResponseNotify,
    /// A leak of a secret found by a scan (a leak policy's `notificationChannels` name the
    /// webhooks that receive it whatever their topics; this topic takes every one).
    #[serde(rename = "leak.detected")]
    LeakDetected,
    /// Someone bypassed an access request's approvals (seed 004's break-glass); its
    /// workflow's channels receive it whatever their topics, this topic takes every one.
    #[serde(rename = "access.break_glass")]
    AccessBreakGlass,
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Topic {
    pub const ALL: &'static [Topic] = &[
        Topic::IncidentOpened,
        Topic::IncidentResolved,
        Topic::IncidentStatusChanged,
        Topic::AutoResponseNotify,
        Topic::LeakDetected,
        Topic::AccessBreakGlass,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::IncidentOpened => "incident.opened",
            Topic::IncidentResolved => "incident.resolved",
            Topic::IncidentStatusChanged => "incident.status_changed",
            Topic::AutoResponseNotify => "auto_response.notify",
            Topic::LeakDetected => "leak.detected",
            Topic::AccessBreakGlass => "access.break_glass",
        }
    }

    pub fn parse(s: &str) -> Option<Topic> {
        Topic::ALL.iter().copied().find(|t| t.as_str() == s)
    }

    /// What a webhook receives when its config names no topics: everything an on-call
    /// person acts on.
    pub fn defaults() -> Vec<Topic> {
        vec![
            Topic::IncidentOpened,
            Topic::IncidentResolved,
            Topic::AutoResponseNotify,
        ]
    }
}

/// The key-store secret that seals a webhook's secrets. `/` cannot occur in a credential
/// name, so it never collides with the vault's.
pub fn secret_name(id: &str) -> String {
    format!("integrations/webhook/{id}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub name: String,
    pub kind: WebhookKind,
    pub host: String,
    pub topics: Vec<Topic>,
    pub enabled: bool,
}

impl Definition {
    fn to_pb(&self) -> pb::WebhookDefinition {
        pb::WebhookDefinition {
            name: self.name.clone(),
            kind: self.kind.as_str().into(),
            host: self.host.clone(),
            topics: self.topics.iter().map(|t| t.as_str().into()).collect(),
            enabled: self.enabled,
        }
    }

    fn from_pb(d: pb::WebhookDefinition, env: &Envelope) -> Result<Self, DecodeError> {
        Ok(Self {
            kind: WebhookKind::parse(&d.kind)
                .ok_or_else(|| DecodeError::new(env, "unknown webhook kind"))?,
            topics: d
                .topics
                .iter()
                .map(|t| Topic::parse(t).ok_or_else(|| DecodeError::new(env, "unknown topic")))
                .collect::<Result<_, _>>()?,
            name: d.name,
            host: d.host,
            enabled: d.enabled,
        })
    }
}

pub use crate::sealed::SealedSecrets;

/// A webhook: its definition and sealed secrets (see `sealed`).
pub type Webhook = SealedConfig<Definition>;

/// A webhook's commands: the sealed configuration's, and recording a dead-letter replay.
pub type Command = sealed::Command<Definition, Replay>;

/// A webhook's events: the sealed configuration's, and a replay recorded.
pub type Event = sealed::Event<Definition, Replay>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub dead_letter: u64,
    pub event_id: String,
    pub topic: String,
    pub delivered: bool,
    pub detail: String,
}

impl sealed::Definition for Definition {
    fn same_kind(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook not found")]
    NotFound,
    #[error("the webhook already exists")]
    AlreadyExists,
    #[error("a webhook's kind cannot change; create another")]
    KindChanged,
    #[error("the webhook's secrets changed meanwhile; read it again and retry")]
    SecretsRaced,
}

pub struct WebhookAggregate;

impl Aggregate for WebhookAggregate {
    const CONTEXT: &'static str = "integrations";
    const AGGREGATE: &'static str = "webhook";
    type State = Option<Webhook>;
    type Command = Command;
    type Event = Event;
    type Error = WebhookError;

    fn decide(state: &Option<Webhook>, cmd: &Command) -> Result<Vec<Event>, WebhookError> {
        sealed::decide(state, cmd, |_, replay| vec![Event::Own(replay.clone())]).map_err(
            |r| match r {
                Refusal::NotFound => WebhookError::NotFound,
                Refusal::AlreadyExists => WebhookError::AlreadyExists,
                Refusal::KindChanged => WebhookError::KindChanged,
                Refusal::SecretsRaced => WebhookError::SecretsRaced,
            },
        )
    }

    fn evolve(state: Option<Webhook>, event: &Event, env: &Envelope) -> Option<Webhook> {
        sealed::evolve(state, event, env)
    }

    fn encode(event: &Event) -> NewEvent {
        let (event_type, payload, credential) = match event {
            // Sealed secrets are credential material: the envelope keeps them.
            Event::Created {
                definition,
                secrets,
            } => (
                "webhook.created.v1",
                pb::WebhookCreated {
                    definition: Some(definition.to_pb()),
                    secrets: None,
                }
                .encode_to_vec(),
                secrets.to_pb().encode_to_vec(),
            ),
            Event::Updated {
                definition,
                secrets,
            } => (
                "webhook.updated.v1",
                pb::WebhookUpdated {
                    definition: Some(definition.to_pb()),
                    secrets: None,
                }
                .encode_to_vec(),
                secrets
                    .as_ref()
                    .map(|s| s.to_pb().encode_to_vec())
                    .unwrap_or_default(),
            ),
            Event::Deleted => (
                "webhook.deleted.v1",
                pb::WebhookDeleted {}.encode_to_vec(),
                Vec::new(),
            ),
            Event::Own(r) => (
                "webhook.delivery_replayed.v1",
                pb::WebhookDeliveryReplayed {
                    dead_letter: r.dead_letter,
                    event_id: r.event_id.clone(),
                    topic: r.topic.clone(),
                    result: if r.delivered { "delivered" } else { "failed" }.into(),
                    detail: r.detail.clone(),
                }
                .encode_to_vec(),
                Vec::new(),
            ),
        };
        NewEvent {
            credential,
            event_type,
            payload,
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        use aegis_kernel::payload as msg;
        Ok(match env.event_type.as_str() {
            "webhook.created.v1" => {
                let m: pb::WebhookCreated = msg(env)?;
                Event::Created {
                    definition: Definition::from_pb(m.definition.unwrap_or_default(), env)?,
                    secrets: SealedSecrets::from_pb(
                        aegis_kernel::credential_message(env, m.secrets)?.unwrap_or_default(),
                    ),
                }
            }
            "webhook.updated.v1" => {
                let m: pb::WebhookUpdated = msg(env)?;
                Event::Updated {
                    definition: Definition::from_pb(m.definition.unwrap_or_default(), env)?,
                    secrets: aegis_kernel::credential_message(env, m.secrets)?
                        .map(SealedSecrets::from_pb),
                }
            }
            "webhook.deleted.v1" => Event::Deleted,
            "webhook.delivery_replayed.v1" => {
                let m: pb::WebhookDeliveryReplayed = msg(env)?;
                Event::Own(Replay {
                    dead_letter: m.dead_letter,
                    event_id: m.event_id,
                    topic: m.topic,
                    delivered: m.result == "delivered",
                    detail: m.detail,
                })
            }
            other => {
                return Err(DecodeError::new(
                    env,
                    format!("not a webhook event: {other}"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn definition(name: &str) -> Definition {
        Definition {
            name: name.into(),
            kind: WebhookKind::Generic,
            host: "hooks.example".into(),
            topics: Topic::defaults(),
            enabled: true,
        }
    }

    fn sealed(version: u64) -> SealedSecrets {
        SealedSecrets {
            version,
            nonce: vec![version as u8; 24],
            ciphertext: vec![1, 2, 3],
        }
    }

    fn created() -> Event {
        Event::Created {
            definition: definition("ops"),
            secrets: sealed(1),
        }
    }

    #[test]
    fn new_secrets_take_the_next_version_and_a_stale_seal_is_refused() {
        given::<WebhookAggregate>(vec![created()])
            .when(Command::Update {
                definition: definition("ops"),
                secrets: Some(sealed(2)),
            })
            .then(vec![Event::Updated {
                definition: definition("ops"),
                secrets: Some(sealed(2)),
            }]);
        given::<WebhookAggregate>(vec![
            created(),
            Event::Updated {
                definition: definition("ops"),
                secrets: Some(sealed(2)),
            },
        ])
        .when(Command::Update {
            definition: definition("ops"),
            secrets: Some(sealed(2)),
        })
        .then_err(WebhookError::SecretsRaced);
    }

    #[test]
    fn an_update_that_changes_nothing_appends_nothing() {
        given::<WebhookAggregate>(vec![created()])
            .when(Command::Update {
                definition: definition("ops"),
                secrets: None,
            })
            .then(vec![]);
    }

    #[test]
    fn topics_read_and_write_as_their_dotted_words() {
        for t in Topic::ALL {
            let json = serde_json::to_value(t).expect("serialize");
            assert_eq!(json, serde_json::json!(t.as_str()));
            assert_eq!(serde_json::from_value::<Topic>(json).ok(), Some(*t));
            assert_eq!(Topic::parse(t.as_str()), Some(*t));
        }
    }

    #[test]
    fn the_kind_is_fixed_for_life() {
        let mut slack = definition("ops");
        slack.kind = WebhookKind::Slack;
        given::<WebhookAggregate>(vec![created()])
            .when(Command::Update {
                definition: slack,
                secrets: None,
            })
            .then_err(WebhookError::KindChanged);
    }

    #[test]
    fn a_deleted_webhook_takes_nothing_but_another_delete() {
        given::<WebhookAggregate>(vec![created(), Event::Deleted])
            .when(Command::Delete)
            .then(vec![]);
        given::<WebhookAggregate>(vec![created(), Event::Deleted])
            .when(Command::Update {
                definition: definition("ops"),
                secrets: None,
            })
            .then_err(WebhookError::NotFound);
        given::<WebhookAggregate>(vec![])
            .when(Command::Delete)
            .then_err(WebhookError::NotFound);
    }

    #[test]
    fn secrets_survive_an_update_that_leaves_them_alone() {
        let state = [
            created(),
            Event::Updated {
                definition: definition("renamed"),
                secrets: None,
            },
        ]
        .iter()
        .fold(None, |s, e| {
            WebhookAggregate::evolve(s, e, &Envelope::default())
        })
        .expect("webhook");
        assert_eq!(state.secrets, sealed(1));
        assert_eq!(state.definition.name, "renamed");
    }
}
