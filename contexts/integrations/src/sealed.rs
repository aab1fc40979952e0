//! A configuration with sealed secrets: a definition anyone with read access may see, and
//! secrets (URLs, tokens, keys) sealed under the configuration's own key. Webhooks and SIEM
//! connections are both this one aggregate shape, with the same rules: created once, a kind
//! that never changes, new secrets sealed at exactly the next version (a seal made against a
//! stale read is refused, never silently reuses a version), an update that changes nothing
//! appends nothing, and deleting twice answers the same. A configuration may carry events of
//! its own (`X`, `Y`): a webhook records dead-letter replays.

use aegis_kernel::occurred_at;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::integrations::v1 as pb;
use chrono::{DateTime, Utc};

/// Secrets as sealed by the key store, at the version their seal binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecrets {
    pub version: u64,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl SealedSecrets {
    pub(crate) fn to_pb(&self) -> pb::SealedSecrets {
        pb::SealedSecrets {
            version: self.version,
            nonce: self.nonce.clone(),
            ciphertext: self.ciphertext.clone(),
        }
    }

    pub(crate) fn from_pb(s: pb::SealedSecrets) -> Self {
        Self {
            version: s.version,
            nonce: s.nonce,
            ciphertext: s.ciphertext,
        }
    }
}

/// What a configuration's definition must tell: whether another is of the same kind.
pub trait Definition: Clone + PartialEq {
    fn same_kind(&self, other: &Self) -> bool;
}

#[derive(Debug, Clone, PartialEq)]
pub struct SealedConfig<D> {
    pub id: String,
    pub definition: D,
    pub secrets: SealedSecrets,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command<D, X> {
    Create {
        definition: D,
        secrets: SealedSecrets,
    },
    /// `secrets` is `None` when they did not change; otherwise sealed at the next version.
    Update {
        definition: D,
        secrets: Option<SealedSecrets>,
    },
    Delete,
    /// A command of the configuration's own, decided by it on the live configuration.
    Own(X),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event<D, Y> {
    Created {
        definition: D,
        secrets: SealedSecrets,
    },
    Updated {
        definition: D,
        secrets: Option<SealedSecrets>,
    },
    Deleted,
    /// An event of the configuration's own; it changes nothing the configuration holds.
    Own(Y),
}

/// Why a command is refused; each configuration says it in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    AlreadyExists,
    KindChanged,
    SecretsRaced,
}

/// The shared rules; `own` decides the configuration's own commands on its live state.
pub fn decide<D: Definition, X, Y>(
    state: &Option<SealedConfig<D>>,
    cmd: &Command<D, X>,
    own: impl FnOnce(&SealedConfig<D>, &X) -> Vec<Event<D, Y>>,
) -> Result<Vec<Event<D, Y>>, Refusal> {
    let live = state.as_ref().filter(|c| !c.deleted);
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
        (_, Command::Create { .. }) => Err(Refusal::AlreadyExists),
        (None, Command::Delete) if state.is_some() => Ok(vec![]),
        (None, _) => Err(Refusal::NotFound),
        (
            Some(c),
            Command::Update {
                definition,
                secrets,
            },
        ) => {
            if !definition.same_kind(&c.definition) {
                return Err(Refusal::KindChanged);
            }
            match secrets {
                // The seal binds its version: a seal made against an older state would reuse
                // a version another update already took.
                Some(s) if s.version != c.secrets.version + 1 => return Err(Refusal::SecretsRaced),
                None if *definition == c.definition => return Ok(vec![]),
                _ => {}
            }
            Ok(vec![Event::Updated {
                definition: definition.clone(),
                secrets: secrets.clone(),
            }])
        }
        (Some(_), Command::Delete) => Ok(vec![Event::Deleted]),
        (Some(c), Command::Own(x)) => Ok(own(c, x)),
    }
}

pub fn evolve<D: Clone, Y>(
    state: Option<SealedConfig<D>>,
    event: &Event<D, Y>,
    env: &Envelope,
) -> Option<SealedConfig<D>> {
    let at = occurred_at(env);
    let Some(mut c) = state else {
        return match event {
            Event::Created {
                definition,
                secrets,
            } => Some(SealedConfig {
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
        Event::Created { .. } | Event::Own(_) => return Some(c),
        Event::Updated {
            definition,
            secrets,
        } => {
            c.definition = definition.clone();
            if let Some(s) = secrets {
                c.secrets = s.clone();
            }
        }
        Event::Deleted => c.deleted = true,
    }
    c.updated_at = at;
    Some(c)
}
