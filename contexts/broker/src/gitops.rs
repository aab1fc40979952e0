//! A tenant's GitOps integrations (seed 004, behind a setting): the Argo CD servers Aegis may
//! read applications from. One aggregate per tenant (a handful of admin-edited rows), so
//! names are unique. An endpoint's API token is write-once: sealed under the endpoint's own
//! key when it is added, in the credential field of its record, never shown again.

use aegis_kernel::{credential_message, payload, Aggregate, DecodeError, Sealed};
use aegis_schemas::broker::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::{Message, NewEvent};
use std::collections::BTreeMap;
use uuid::Uuid;

pub const MAX_ENDPOINTS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub url: String,
    pub enabled: bool,
    pub token: Sealed,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An Argo CD application tied to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub endpoint_id: Uuid,
    pub application_name: String,
    pub application_namespace: String,
    pub project_name: String,
    pub cluster_name: String,
    pub target: MappingTarget,
}

/// What a mapping ties the application to: exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingTarget {
    SecretMapping(Uuid),
    ProviderConnection(Uuid),
}

pub const MAX_MAPPINGS: usize = 1000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitOps {
    pub endpoints: BTreeMap<Uuid, Endpoint>,
    pub mappings: BTreeMap<Uuid, Mapping>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    AddEndpoint {
        id: Uuid,
        name: String,
        url: String,
        enabled: bool,
        token: Sealed,
    },
    SetEnabled {
        id: Uuid,
        enabled: bool,
    },
    RemoveEndpoint {
        id: Uuid,
    },
    AddMapping {
        id: Uuid,
        mapping: Mapping,
    },
    RemoveMapping {
        id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    EndpointAdded {
        id: Uuid,
        name: String,
        url: String,
        enabled: bool,
        token: Sealed,
    },
    EnabledSet {
        id: Uuid,
        enabled: bool,
    },
    EndpointRemoved {
        id: Uuid,
    },
    MappingAdded {
        id: Uuid,
        mapping: Mapping,
    },
    MappingRemoved {
        id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitOpsError {
    #[error("argo cd endpoint not found")]
    NotFound,
    #[error("an argo cd endpoint named `{0}` already exists")]
    NameTaken(String),
    #[error("a tenant has at most {MAX_ENDPOINTS} argo cd endpoints")]
    TooMany,
    #[error("name: 1 to 200 characters, no control characters")]
    BadName,
    #[error("gitops mapping not found")]
    MappingNotFound,
    #[error("the endpoint is used by {0} mapping(s): remove them first")]
    InUse(usize),
    #[error("application_name is required (at most 253 characters)")]
    BadApplication,
    #[error("a tenant has at most {MAX_MAPPINGS} gitops mappings")]
    TooManyMappings,
}

pub struct GitOpsAggregate;

impl Aggregate for GitOpsAggregate {
    const CONTEXT: &'static str = "broker";
    const AGGREGATE: &'static str = "gitops";
    type State = GitOps;
    type Command = Command;
    type Event = Event;
    type Error = GitOpsError;

    fn decide(g: &GitOps, cmd: &Command) -> Result<Vec<Event>, GitOpsError> {
        match cmd {
            Command::AddEndpoint {
                id,
                name,
                url,
                enabled,
                token,
            } => {
                if name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control)
                {
                    return Err(GitOpsError::BadName);
                }
                if g.endpoints.len() >= MAX_ENDPOINTS {
                    return Err(GitOpsError::TooMany);
                }
                if g.endpoints.contains_key(id)
                    || g.endpoints
                        .values()
                        .any(|e| e.name.eq_ignore_ascii_case(name))
                {
                    return Err(GitOpsError::NameTaken(name.clone()));
                }
                Ok(vec![Event::EndpointAdded {
                    id: *id,
                    name: name.clone(),
                    url: url.clone(),
                    enabled: *enabled,
                    token: token.clone(),
                }])
            }
            Command::SetEnabled { id, enabled } => {
                let e = g.endpoints.get(id).ok_or(GitOpsError::NotFound)?;
                Ok(if e.enabled == *enabled {
                    vec![]
                } else {
                    vec![Event::EnabledSet {
                        id: *id,
                        enabled: *enabled,
                    }]
                })
            }
            Command::RemoveEndpoint { id } => {
                g.endpoints.get(id).ok_or(GitOpsError::NotFound)?;
                let using = g.mappings.values().filter(|m| m.endpoint_id == *id).count();
                if using > 0 {
                    return Err(GitOpsError::InUse(using));
                }
                Ok(vec![Event::EndpointRemoved { id: *id }])
            }
            Command::AddMapping { id, mapping } => {
                if !g.endpoints.contains_key(&mapping.endpoint_id) {
                    return Err(GitOpsError::NotFound);
                }
                let name = &mapping.application_name;
                if name.trim().is_empty() || name.len() > 253 {
                    return Err(GitOpsError::BadApplication);
                }
                if g.mappings.len() >= MAX_MAPPINGS || g.mappings.contains_key(id) {
                    return Err(GitOpsError::TooManyMappings);
                }
                Ok(vec![Event::MappingAdded {
                    id: *id,
                    mapping: mapping.clone(),
                }])
            }
            Command::RemoveMapping { id } => {
                g.mappings.get(id).ok_or(GitOpsError::MappingNotFound)?;
                Ok(vec![Event::MappingRemoved { id: *id }])
            }
        }
    }

    fn evolve(mut g: GitOps, event: &Event, env: &Envelope) -> GitOps {
        let at = aegis_kernel::occurred_at_ms(env).unwrap_or_default();
        match event {
            Event::EndpointAdded {
                id,
                name,
                url,
                enabled,
                token,
            } => {
                g.endpoints.insert(
                    *id,
                    Endpoint {
                        name: name.clone(),
                        url: url.clone(),
                        enabled: *enabled,
                        token: token.clone(),
                        created_at: at,
                        updated_at: at,
                    },
                );
            }
            Event::EnabledSet { id, enabled } => {
                if let Some(e) = g.endpoints.get_mut(id) {
                    e.enabled = *enabled;
                    e.updated_at = at;
                }
            }
            Event::EndpointRemoved { id } => {
                g.endpoints.remove(id);
            }
            Event::MappingAdded { id, mapping } => {
                g.mappings.insert(*id, mapping.clone());
            }
            Event::MappingRemoved { id } => {
                g.mappings.remove(id);
            }
        }
        g
    }

    fn encode(event: &Event) -> NewEvent {
        match event {
            Event::EndpointAdded {
                id,
                name,
                url,
                enabled,
                token,
            } => NewEvent {
                event_type: "argocd_endpoint.added.v1",
                payload: pb::ArgocdEndpointAdded {
                    endpoint_id: id.to_string(),
                    name: name.clone(),
                    url: url.clone(),
                    enabled: *enabled,
                }
                .encode_to_vec(),
                credential: pb::EndpointSealed {
                    nonce: token.nonce.clone(),
                    ciphertext: token.ciphertext.clone(),
                }
                .encode_to_vec(),
            },
            Event::EnabledSet { id, enabled } => NewEvent::new(
                "argocd_endpoint.enabled_set.v1",
                pb::ArgocdEndpointEnabledSet {
                    endpoint_id: id.to_string(),
                    enabled: *enabled,
                }
                .encode_to_vec(),
            ),
            Event::EndpointRemoved { id } => NewEvent::new(
                "argocd_endpoint.removed.v1",
                pb::ArgocdEndpointRemoved {
                    endpoint_id: id.to_string(),
                }
                .encode_to_vec(),
            ),
            Event::MappingAdded { id, mapping: m } => {
                let (target_mapping_id, target_connection_id) = match m.target {
                    MappingTarget::SecretMapping(t) => (t.to_string(), String::new()),
                    MappingTarget::ProviderConnection(t) => (String::new(), t.to_string()),
                };
                NewEvent::new(
                    "gitops_mapping.added.v1",
                    pb::GitopsMappingAdded {
                        mapping_id: id.to_string(),
                        endpoint_id: m.endpoint_id.to_string(),
                        application_name: m.application_name.clone(),
                        application_namespace: m.application_namespace.clone(),
                        project_name: m.project_name.clone(),
                        cluster_name: m.cluster_name.clone(),
                        target_mapping_id,
                        target_connection_id,
                    }
                    .encode_to_vec(),
                )
            }
            Event::MappingRemoved { id } => NewEvent::new(
                "gitops_mapping.removed.v1",
                pb::GitopsMappingRemoved {
                    mapping_id: id.to_string(),
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        let id = |s: &str| Uuid::parse_str(s).map_err(|e| DecodeError::new(env, e));
        Ok(match env.event_type.as_str() {
            "argocd_endpoint.added.v1" => {
                let m: pb::ArgocdEndpointAdded = payload(env)?;
                let sealed = credential_message::<pb::EndpointSealed>(env, None)?
                    .ok_or_else(|| DecodeError::new(env, "an endpoint without its token"))?;
                Event::EndpointAdded {
                    id: id(&m.endpoint_id)?,
                    name: m.name,
                    url: m.url,
                    enabled: m.enabled,
                    token: Sealed {
                        nonce: sealed.nonce,
                        ciphertext: sealed.ciphertext,
                    },
                }
            }
            "argocd_endpoint.enabled_set.v1" => {
                let m: pb::ArgocdEndpointEnabledSet = payload(env)?;
                Event::EnabledSet {
                    id: id(&m.endpoint_id)?,
                    enabled: m.enabled,
                }
            }
            "argocd_endpoint.removed.v1" => {
                let m: pb::ArgocdEndpointRemoved = payload(env)?;
                Event::EndpointRemoved {
                    id: id(&m.endpoint_id)?,
                }
            }
            "gitops_mapping.added.v1" => {
                let m: pb::GitopsMappingAdded = payload(env)?;
                let target = match (
                    m.target_mapping_id.as_str(),
                    m.target_connection_id.as_str(),
                ) {
                    (s, "") => MappingTarget::SecretMapping(id(s)?),
                    (_, p) => MappingTarget::ProviderConnection(id(p)?),
                };
                Event::MappingAdded {
                    id: id(&m.mapping_id)?,
                    mapping: Mapping {
                        endpoint_id: id(&m.endpoint_id)?,
                        application_name: m.application_name,
                        application_namespace: m.application_namespace,
                        project_name: m.project_name,
                        cluster_name: m.cluster_name,
                        target,
                    },
                }
            }
            "gitops_mapping.removed.v1" => {
                let m: pb::GitopsMappingRemoved = payload(env)?;
                Event::MappingRemoved {
                    id: id(&m.mapping_id)?,
                }
            }
            other => {
                return Err(DecodeError::new(
                    env,
                    format!("not a gitops event: {other}"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    const HUB: Uuid = Uuid::from_u128(1);
    const MAP: Uuid = Uuid::from_u128(3);

    fn mapping() -> Mapping {
        Mapping {
            endpoint_id: HUB,
            application_name: "payments".into(),
            application_namespace: "argocd".into(),
            project_name: String::new(),
            cluster_name: String::new(),
            target: MappingTarget::ProviderConnection(Uuid::from_u128(9)),
        }
    }

    #[test]
    fn a_mapping_needs_its_endpoint_which_then_stays() {
        given::<GitOpsAggregate>(vec![])
            .when(Command::AddMapping {
                id: MAP,
                mapping: mapping(),
            })
            .then_err(GitOpsError::NotFound);
        given::<GitOpsAggregate>(vec![
            added("Hub"),
            Event::MappingAdded {
                id: MAP,
                mapping: mapping(),
            },
        ])
        .when(Command::RemoveEndpoint { id: HUB })
        .then_err(GitOpsError::InUse(1));
    }

    fn sealed() -> Sealed {
        Sealed {
            nonce: vec![1; 24],
            ciphertext: vec![2; 40],
        }
    }

    fn added(name: &str) -> Event {
        Event::EndpointAdded {
            id: HUB,
            name: name.into(),
            url: "https://argocd.example".into(),
            enabled: true,
            token: sealed(),
        }
    }

    #[test]
    fn names_are_unique_and_enabling_twice_changes_nothing() {
        given::<GitOpsAggregate>(vec![added("Hub")])
            .when(Command::AddEndpoint {
                id: Uuid::from_u128(2),
                name: "hub".into(),
                url: "https://other.example".into(),
                enabled: true,
                token: sealed(),
            })
            .then_err(GitOpsError::NameTaken("hub".into()));
        given::<GitOpsAggregate>(vec![added("Hub")])
            .when(Command::SetEnabled {
                id: HUB,
                enabled: true,
            })
            .then(vec![]);
        given::<GitOpsAggregate>(vec![])
            .when(Command::RemoveEndpoint { id: HUB })
            .then_err(GitOpsError::NotFound);
    }

    #[test]
    fn the_token_rides_only_in_the_credential_field() {
        for event in [
            added("Hub"),
            Event::EnabledSet {
                id: HUB,
                enabled: false,
            },
            Event::EndpointRemoved { id: HUB },
            Event::MappingAdded {
                id: MAP,
                mapping: mapping(),
            },
            Event::MappingRemoved { id: MAP },
        ] {
            let new = GitOpsAggregate::encode(&event);
            assert!(!new.payload.windows(40).any(|w| w == [2u8; 40]));
            let env = Envelope {
                event_type: new.event_type.into(),
                payload: new.payload,
                credential: new.credential,
                ..Default::default()
            };
            assert_eq!(GitOpsAggregate::decode(&env).expect("decodes"), event);
        }
    }
}
