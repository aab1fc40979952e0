//! Incidents: SOC incident lifecycle (seed 000). Pure decider.

#[macro_use]
extern crate aegis_kernel;

use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::incidents::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub Uuid);

impl std::fmt::Display for IncidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

word_enum!(Severity { Low = "low", Medium = "medium", High = "high", Critical = "critical" });
word_enum!(Status {
    Open = "open",
    Acknowledged = "acknowledged",
    Investigating = "investigating",
    Resolved = "resolved",
    Closed = "closed",
});

impl Status {
    /// The lifecycle: open → acknowledged → investigating → resolved → closed, where a step
    /// may be skipped forward (a false positive goes straight to resolved) and a resolved or
    /// closed incident can be reopened.
    pub fn allowed_next(self) -> &'static [Status] {
        use Status::*;
        match self {
            Open => &[Acknowledged, Investigating, Resolved],
            Acknowledged => &[Investigating, Resolved],
            Investigating => &[Resolved],
            Resolved => &[Closed, Open],
            Closed => &[Open],
        }
    }

    /// Still needs attention: holds its dedup key and counts as open.
    pub fn is_active(self) -> bool {
        !matches!(self, Status::Resolved | Status::Closed)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub id: IncidentId,
    pub title: String,
    pub severity: Severity,
    pub status: Status,
    pub source: String,
    pub description: String,
    pub agent_id: Option<String>,
    pub dedup_key: Option<String>,
    pub assigned_to: Option<String>,
    pub actions_taken: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub version: u64,
}

/// A validated request to open an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIncident {
    pub id: IncidentId,
    pub title: String,
    pub severity: Severity,
    pub source: String,
    pub description: String,
    pub agent_id: Option<String>,
    pub dedup_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Open(NewIncident),
    Update {
        status: Option<Status>,
        /// `Some(None)` unassigns.
        assigned_to: Option<Option<String>>,
        actions_taken: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Opened(NewIncident),
    StatusChanged { from: Status, to: Status },
    Assigned { assigned_to: Option<String> },
    ActionRecorded { action: String },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IncidentError {
    #[error("incident already exists")]
    AlreadyExists,
    #[error("incident not found")]
    NotFound,
    #[error("cannot move an incident from {from} to {to}")]
    IllegalTransition {
        from: Status,
        to: Status,
        allowed: &'static [Status],
    },
}

pub struct IncidentAggregate;

impl Aggregate for IncidentAggregate {
    const CONTEXT: &'static str = "incidents";
    const AGGREGATE: &'static str = "incident";
    type State = Option<Incident>;
    type Command = Command;
    type Event = Event;
    type Error = IncidentError;

    fn decide(state: &Self::State, command: &Command) -> Result<Vec<Event>, IncidentError> {
        match (state, command) {
            (Some(_), Command::Open(_)) => Err(IncidentError::AlreadyExists),
            (None, Command::Open(new)) => Ok(vec![Event::Opened(new.clone())]),
            (None, Command::Update { .. }) => Err(IncidentError::NotFound),
            (
                Some(incident),
                Command::Update {
                    status,
                    assigned_to,
                    actions_taken,
                },
            ) => {
                let mut events = Vec::new();
                if let Some(to) = *status {
                    if to != incident.status {
                        let allowed = incident.status.allowed_next();
                        if !allowed.contains(&to) {
                            return Err(IncidentError::IllegalTransition {
                                from: incident.status,
                                to,
                                allowed,
                            });
                        }
                        events.push(Event::StatusChanged {
                            from: incident.status,
                            to,
                        });
                    }
                }
                if let Some(assignee) = assigned_to {
                    if *assignee != incident.assigned_to {
                        events.push(Event::Assigned {
                            assigned_to: assignee.clone(),
                        });
                    }
                }
                events.extend(
                    actions_taken
                        .iter()
                        .map(|a| Event::ActionRecorded { action: a.clone() }),
                );
                Ok(events)
            }
        }
    }

    fn evolve(state: Self::State, event: &Event, env: &Envelope) -> Self::State {
        let at = occurred_at(env);
        let mut incident = match (state, event) {
            (None, Event::Opened(new)) => {
                return Some(Incident {
                    id: new.id,
                    title: new.title.clone(),
                    severity: new.severity,
                    status: Status::Open,
                    source: new.source.clone(),
                    description: new.description.clone(),
                    agent_id: new.agent_id.clone(),
                    dedup_key: new.dedup_key.clone(),
                    assigned_to: None,
                    actions_taken: Vec::new(),
                    created_at: at,
                    updated_at: at,
                    resolved_at: None,
                    version: env.aggregate_version,
                })
            }
            (Some(incident), _) => incident,
            // An update before the open cannot be in a log the decider wrote.
            (None, _) => return None,
        };
        match event {
            Event::Opened(_) => {}
            Event::StatusChanged { to, .. } => {
                incident.status = *to;
                incident.resolved_at = match to {
                    Status::Resolved => Some(at),
                    Status::Closed => incident.resolved_at.or(Some(at)),
                    _ => None,
                };
            }
            Event::Assigned { assigned_to } => incident.assigned_to = assigned_to.clone(),
            Event::ActionRecorded { action } => incident.actions_taken.push(action.clone()),
        }
        incident.updated_at = at;
        incident.version = env.aggregate_version;
        Some(incident)
    }

    fn encode(event: &Event) -> NewEvent {
        match event {
            Event::Opened(n) => NewEvent::new(
                "incident.opened.v1",
                pb::IncidentOpened {
                    title: n.title.clone(),
                    severity: n.severity.as_str().into(),
                    source: n.source.clone(),
                    description: n.description.clone(),
                    agent_id: n.agent_id.clone().unwrap_or_default(),
                    dedup_key: n.dedup_key.clone().unwrap_or_default(),
                }
                .encode_to_vec(),
            ),
            Event::StatusChanged { from, to } => NewEvent::new(
                "incident.status_changed.v1",
                pb::IncidentStatusChanged {
                    from: from.as_str().into(),
                    to: to.as_str().into(),
                }
                .encode_to_vec(),
            ),
            Event::Assigned { assigned_to } => NewEvent::new(
                "incident.assigned.v1",
                pb::IncidentAssigned {
                    assigned_to: assigned_to.clone().unwrap_or_default(),
                }
                .encode_to_vec(),
            ),
            Event::ActionRecorded { action } => NewEvent::new(
                "incident.action_recorded.v1",
                pb::IncidentActionRecorded {
                    action: action.clone(),
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        decode_event(env)
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Decodes an incident event; shared with the projector so the two never disagree.
pub fn decode_event(env: &Envelope) -> Result<Event, DecodeError> {
    let err = |e: &dyn std::fmt::Display| DecodeError::new(env, e);
    let word = |s: &str| {
        Status::parse(s).ok_or_else(|| DecodeError::new(env, format!("unknown status {s}")))
    };
    let p = env.payload.as_slice();
    Ok(match env.event_type.as_str() {
        "incident.opened.v1" => {
            let m = pb::IncidentOpened::decode(p).map_err(|e| err(&e))?;
            let id = Uuid::parse_str(&env.aggregate_id).map_err(|e| err(&e))?;
            Event::Opened(NewIncident {
                id: IncidentId(id),
                severity: Severity::parse(&m.severity).ok_or_else(|| {
                    DecodeError::new(env, format!("unknown severity {}", m.severity))
                })?,
                title: m.title,
                source: m.source,
                description: m.description,
                agent_id: non_empty(m.agent_id),
                dedup_key: non_empty(m.dedup_key),
            })
        }
        "incident.status_changed.v1" => {
            let m = pb::IncidentStatusChanged::decode(p).map_err(|e| err(&e))?;
            Event::StatusChanged {
                from: word(&m.from)?,
                to: word(&m.to)?,
            }
        }
        "incident.assigned.v1" => {
            let m = pb::IncidentAssigned::decode(p).map_err(|e| err(&e))?;
            Event::Assigned {
                assigned_to: non_empty(m.assigned_to),
            }
        }
        "incident.action_recorded.v1" => {
            let m = pb::IncidentActionRecorded::decode(p).map_err(|e| err(&e))?;
            Event::ActionRecorded { action: m.action }
        }
        other => {
            return Err(DecodeError::new(
                env,
                format!("not an incident event: {other}"),
            ))
        }
    })
}

/// Which incident holds a dedup key (aggregate `incidents.dedup.<key>`). Whether the holder
/// is still active is read from the incident itself, so resolving needs no release event.
pub struct DedupAggregate;

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimDedup {
    pub incident: IncidentId,
    /// The holder the handler saw when it looked the key up.
    pub seen_holder: Option<IncidentId>,
    /// That holder, if the handler found it still active.
    pub active_holder: Option<IncidentId>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DedupError {
    #[error("dedup key is held by an active incident")]
    Held(IncidentId),
    /// The key changed hands after the handler looked: look again.
    #[error("dedup key changed since it was read")]
    Changed,
}

impl Aggregate for DedupAggregate {
    const CONTEXT: &'static str = "incidents";
    const AGGREGATE: &'static str = "dedup";
    type State = Option<IncidentId>;
    type Command = ClaimDedup;
    type Event = IncidentId;
    type Error = DedupError;

    fn decide(state: &Self::State, cmd: &ClaimDedup) -> Result<Vec<IncidentId>, DedupError> {
        if *state != cmd.seen_holder {
            return Err(DedupError::Changed);
        }
        match cmd.active_holder {
            Some(holder) => Err(DedupError::Held(holder)),
            None => Ok(vec![cmd.incident]),
        }
    }

    fn evolve(_state: Self::State, event: &IncidentId, _env: &Envelope) -> Self::State {
        Some(*event)
    }

    fn encode(event: &IncidentId) -> NewEvent {
        NewEvent::new(
            "incident.dedup_claimed.v1",
            pb::IncidentDedupClaimed {
                incident_id: event.to_string(),
            }
            .encode_to_vec(),
        )
    }

    fn decode(env: &Envelope) -> Result<IncidentId, DecodeError> {
        let m = aegis_kernel::payload::<pb::IncidentDedupClaimed>(env)?;
        Uuid::parse_str(&m.incident_id)
            .map(IncidentId)
            .map_err(|e| DecodeError::new(env, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn new_incident() -> NewIncident {
        NewIncident {
            id: IncidentId(Uuid::nil()),
            title: "Chain violation".into(),
            severity: Severity::High,
            source: "audit".into(),
            description: String::new(),
            agent_id: Some("agent-1".into()),
            dedup_key: None,
        }
    }

    fn update(status: Option<Status>) -> Command {
        Command::Update {
            status,
            assigned_to: None,
            actions_taken: vec![],
        }
    }

    #[test]
    fn opening_a_new_incident_emits_opened() {
        given::<IncidentAggregate>(vec![])
            .when(Command::Open(new_incident()))
            .then(vec![Event::Opened(new_incident())]);
    }

    #[test]
    fn opening_twice_is_refused() {
        given::<IncidentAggregate>(vec![Event::Opened(new_incident())])
            .when(Command::Open(new_incident()))
            .then_err(IncidentError::AlreadyExists);
    }

    #[test]
    fn updating_a_missing_incident_is_not_found() {
        given::<IncidentAggregate>(vec![])
            .when(update(Some(Status::Resolved)))
            .then_err(IncidentError::NotFound);
    }

    #[test]
    fn the_lifecycle_moves_forward() {
        given::<IncidentAggregate>(vec![Event::Opened(new_incident())])
            .when(update(Some(Status::Acknowledged)))
            .then(vec![Event::StatusChanged {
                from: Status::Open,
                to: Status::Acknowledged,
            }]);
    }

    #[test]
    fn an_illegal_transition_names_the_allowed_ones() {
        given::<IncidentAggregate>(vec![Event::Opened(new_incident())])
            .when(update(Some(Status::Closed)))
            .then_err(IncidentError::IllegalTransition {
                from: Status::Open,
                to: Status::Closed,
                allowed: &[
                    Status::Acknowledged,
                    Status::Investigating,
                    Status::Resolved,
                ],
            });
    }

    #[test]
    fn a_closed_incident_can_be_reopened() {
        given::<IncidentAggregate>(vec![
            Event::Opened(new_incident()),
            Event::StatusChanged {
                from: Status::Open,
                to: Status::Resolved,
            },
            Event::StatusChanged {
                from: Status::Resolved,
                to: Status::Closed,
            },
        ])
        .when(update(Some(Status::Open)))
        .then(vec![Event::StatusChanged {
            from: Status::Closed,
            to: Status::Open,
        }]);
    }

    #[test]
    fn moving_back_is_refused() {
        given::<IncidentAggregate>(vec![
            Event::Opened(new_incident()),
            Event::StatusChanged {
                from: Status::Open,
                to: Status::Investigating,
            },
        ])
        .when(update(Some(Status::Acknowledged)))
        .then_err(IncidentError::IllegalTransition {
            from: Status::Investigating,
            to: Status::Acknowledged,
            allowed: &[Status::Resolved],
        });
    }

    #[test]
    fn the_same_status_changes_nothing() {
        given::<IncidentAggregate>(vec![Event::Opened(new_incident())])
            .when(update(Some(Status::Open)))
            .then(vec![]);
    }

    #[test]
    fn one_update_can_assign_and_record_actions_in_one_commit() {
        given::<IncidentAggregate>(vec![Event::Opened(new_incident())])
            .when(Command::Update {
                status: Some(Status::Investigating),
                assigned_to: Some(Some("ana".into())),
                actions_taken: vec!["isolated host".into(), "rotated key".into()],
            })
            .then(vec![
                Event::StatusChanged {
                    from: Status::Open,
                    to: Status::Investigating,
                },
                Event::Assigned {
                    assigned_to: Some("ana".into()),
                },
                Event::ActionRecorded {
                    action: "isolated host".into(),
                },
                Event::ActionRecorded {
                    action: "rotated key".into(),
                },
            ]);
    }

    #[test]
    fn assigning_the_same_person_again_changes_nothing() {
        given::<IncidentAggregate>(vec![
            Event::Opened(new_incident()),
            Event::Assigned {
                assigned_to: Some("ana".into()),
            },
        ])
        .when(Command::Update {
            status: None,
            assigned_to: Some(Some("ana".into())),
            actions_taken: vec![],
        })
        .then(vec![]);
    }

    #[test]
    fn a_held_dedup_key_is_refused_with_its_holder() {
        let holder = IncidentId(Uuid::now_v7());
        given::<DedupAggregate>(vec![holder])
            .when(ClaimDedup {
                incident: IncidentId(Uuid::now_v7()),
                seen_holder: Some(holder),
                active_holder: Some(holder),
            })
            .then_err(DedupError::Held(holder));
    }

    #[test]
    fn a_released_dedup_key_can_be_claimed_again() {
        let old = IncidentId(Uuid::now_v7());
        let new = IncidentId(Uuid::now_v7());
        given::<DedupAggregate>(vec![old])
            .when(ClaimDedup {
                incident: new,
                seen_holder: Some(old),
                active_holder: None,
            })
            .then(vec![new]);
    }

    #[test]
    fn a_claim_made_on_a_stale_read_is_refused() {
        let winner = IncidentId(Uuid::now_v7());
        given::<DedupAggregate>(vec![winner])
            .when(ClaimDedup {
                incident: IncidentId(Uuid::now_v7()),
                seen_holder: None,
                active_holder: None,
            })
            .then_err(DedupError::Changed);
    }

    #[test]
    fn events_round_trip_through_the_schema() {
        let events = vec![
            Event::Opened(new_incident()),
            Event::StatusChanged {
                from: Status::Open,
                to: Status::Resolved,
            },
            Event::Assigned { assigned_to: None },
            Event::ActionRecorded { action: "x".into() },
        ];
        for e in events {
            let ne = IncidentAggregate::encode(&e);
            let env = Envelope {
                event_type: ne.event_type.into(),
                aggregate_id: Uuid::nil().to_string(),
                payload: ne.payload,
                ..Default::default()
            };
            assert_eq!(IncidentAggregate::decode(&env).expect("decodes"), e);
        }
    }
}
