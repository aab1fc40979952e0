//! A webhook (`integrations.webhook.<id>`): where incident and auto-response notifications
//! go, in which vendor's format. Its URL, routing key and signing secret are sealed before
//! they reach the decider, so the log and the read models only ever hold ciphertext.

use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::integrations::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};

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
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::IncidentOpened => "incident.opened",
            Topic::IncidentResolved => "incident.resolved",
            Topic::IncidentStatusChanged => "incident.status_changed",
            Topic::AutoResponseNotify => "auto_response.notify",
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

/// Secrets as sealed by the key store, at the version their seal binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecrets {
    pub version: u64,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl SealedSecrets {
    pub(super) fn to_pb(&self) -> pb::SealedSecrets {
        pb::SealedSecrets {
            version: self.version,
            nonce: self.nonce.clone(),
            ciphertext: self.ciphertext.clone(),
        }
    }

    pub(super) fn from_pb(s: pb::SealedSecrets) -> Self {
        Self {
            version: s.version,
            nonce: s.nonce,
            ciphertext: s.ciphertext,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: String,
    pub definition: Definition,
    pub secrets: SealedSecrets,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Create {
        definition: Definition,
        secrets: SealedSecrets,
    },
    /// `secrets` is `None` when they did not change; otherwise sealed at the next version.
    Update {
        definition: Definition,
        secrets: Option<SealedSecrets>,
    },
    Delete,
    RecordReplay(Replay),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub dead_letter: u64,
    pub event_id: String,
    pub topic: String,
    pub delivered: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Created {
        definition: Definition,
        secrets: SealedSecrets,
    },
    Updated {
        definition: Definition,
        secrets: Option<SealedSecrets>,
    },
    Deleted,
    Replayed(Replay),
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
        let live = state.as_ref().filter(|w| !w.deleted);
        match (live, cmd) {
            (
                None,
                Command::Create {
                    definition,
                    secrets,
                },
            ) if state.is_none() => Ok(vec![Event::Created {
                definition: definition.clone(),
                secrets: secrets.clone(),
            }]),
            (_, Command::Create { .. }) => Err(WebhookError::AlreadyExists),
            (None, Command::Delete) if state.is_some() => Ok(vec![]),
            (None, _) => Err(WebhookError::NotFound),
            (
                Some(w),
                Command::Update {
                    definition,
                    secrets,
                },
            ) => {
                if definition.kind != w.definition.kind {
                    return Err(WebhookError::KindChanged);
                }
                if let Some(s) = secrets {
                    // The seal binds its version: a seal made against an older state would
                    // reuse a version another update already took.
                    if s.version != w.secrets.version + 1 {
                        return Err(WebhookError::SecretsRaced);
                    }
                } else if *definition == w.definition {
                    return Ok(vec![]);
                }
                Ok(vec![Event::Updated {
                    definition: definition.clone(),
                    secrets: secrets.clone(),
                }])
            }
            (Some(_), Command::Delete) => Ok(vec![Event::Deleted]),
            (Some(_), Command::RecordReplay(r)) => Ok(vec![Event::Replayed(r.clone())]),
        }
    }

    fn evolve(state: Option<Webhook>, event: &Event, env: &Envelope) -> Option<Webhook> {
        let at = occurred_at(env);
        let Some(mut w) = state else {
            return match event {
                Event::Created {
                    definition,
                    secrets,
                } => Some(Webhook {
                    id: env.aggregate_id.clone(),
                    definition: definition.clone(),
                    secrets: secrets.clone(),
                    deleted: false,
                    created_at: at,
                    updated_at: at,
                }),
                _ => None,
            };
        };
        match event {
            Event::Created { .. } | Event::Replayed(_) => return Some(w),
            Event::Updated {
                definition,
                secrets,
            } => {
                w.definition = definition.clone();
                if let Some(s) = secrets {
                    w.secrets = s.clone();
                }
            }
            Event::Deleted => w.deleted = true,
        }
        w.updated_at = at;
        Some(w)
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
            Event::Replayed(r) => (
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
        fn msg<M: Message + Default>(env: &Envelope) -> Result<M, DecodeError> {
            M::decode(env.payload.as_slice()).map_err(|e| DecodeError::new(env, e))
        }
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
                Event::Replayed(Replay {
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
