//! A leakage incident: reported by hand or opened by a scan, then triaged. A scan that finds
//! the same leak again (same value, same place) adds to the timeline of the incident it
//! opened before instead of opening another; the policy's action (rotate, revoke) is recorded
//! on the timeline once it succeeded, so a repeat scan does not rotate again.

use super::{LeakSeverity, OnDetection};
use aegis_kernel::{occurred_at, payload, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::vault::v1 as pb;
use aegis_schemas::{Message, NewEvent};
use chrono::{DateTime, Utc};

word_enum!(LeakIncidentStatus {
    Open = "open",
    Investigating = "investigating",
    Resolved = "resolved",
    FalsePositive = "false_positive",
});

impl LeakIncidentStatus {
    /// Whether the incident still asks for attention.
    pub fn active(self) -> bool {
        matches!(
            self,
            LeakIncidentStatus::Open | LeakIncidentStatus::Investigating
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewIncident {
    /// The tenant's credential the leaked value is a version of; empty when none matched.
    pub secret_id: String,
    pub secret_version: u64,
    pub source: String,
    pub location: String,
    pub detected_at: DateTime<Utc>,
    pub severity: LeakSeverity,
    /// A JSON object.
    pub details: String,
    pub scan_id: String,
    pub reported_by: String,
    pub policy_id: String,
    /// The webhooks, by name, told of it (the finding policies' `notificationChannels`).
    pub notify: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub status: LeakIncidentStatus,
    pub resolution: String,
    pub notes: String,
    pub changed_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum IncidentCommand {
    Report(NewIncident),
    SetStatus(StatusChange),
    /// Record what the policy's action did.
    Act {
        action: OnDetection,
        outcome: Outcome,
        detail: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum IncidentEvent {
    Reported(NewIncident),
    SeenAgain {
        scan_id: String,
        location: String,
    },
    StatusChanged(StatusChange),
    Acted {
        action: OnDetection,
        outcome: Outcome,
        detail: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub reported: NewIncident,
    pub status: LeakIncidentStatus,
    pub updated_at: DateTime<Utc>,
    /// Scans that saw it, the first one first.
    pub scans: Vec<String>,
    /// Actions that succeeded.
    pub done: Vec<OnDetection>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IncidentError {
    #[error("leakage incident not found")]
    NotFound,
    #[error("an incident is reported open; `status` may become investigating, resolved or false_positive")]
    Reopen,
}

pub struct LeakIncidentAggregate;

impl Aggregate for LeakIncidentAggregate {
    const CONTEXT: &'static str = "vault";
    const AGGREGATE: &'static str = "leak_incident";
    type State = Option<Incident>;
    type Command = IncidentCommand;
    type Event = IncidentEvent;
    type Error = IncidentError;

    fn decide(
        state: &Option<Incident>,
        cmd: &IncidentCommand,
    ) -> Result<Vec<IncidentEvent>, IncidentError> {
        let Some(incident) = state else {
            return match cmd {
                IncidentCommand::Report(n) => Ok(vec![IncidentEvent::Reported(n.clone())]),
                _ => Err(IncidentError::NotFound),
            };
        };
        match cmd {
            // The same scan reporting again (a retried job) records nothing.
            IncidentCommand::Report(n)
                if n.scan_id.is_empty() || incident.scans.contains(&n.scan_id) =>
            {
                Ok(vec![])
            }
            IncidentCommand::Report(n) => Ok(vec![IncidentEvent::SeenAgain {
                scan_id: n.scan_id.clone(),
                location: n.location.clone(),
            }]),
            IncidentCommand::SetStatus(c) if c.status == LeakIncidentStatus::Open => {
                Err(IncidentError::Reopen)
            }
            IncidentCommand::SetStatus(c)
                if c.status == incident.status && c.resolution.is_empty() && c.notes.is_empty() =>
            {
                Ok(vec![])
            }
            IncidentCommand::SetStatus(c) => Ok(vec![IncidentEvent::StatusChanged(c.clone())]),
            IncidentCommand::Act { action, .. } if incident.done.contains(action) => Ok(vec![]),
            IncidentCommand::Act {
                action,
                outcome,
                detail,
            } => Ok(vec![IncidentEvent::Acted {
                action: *action,
                outcome: *outcome,
                detail: detail.clone(),
            }]),
        }
    }

    fn evolve(state: Option<Incident>, event: &IncidentEvent, env: &Envelope) -> Option<Incident> {
        let at = occurred_at(env);
        match (state, event) {
            (None, IncidentEvent::Reported(n)) => Some(Incident {
                reported: n.clone(),
                status: LeakIncidentStatus::Open,
                updated_at: at,
                scans: if n.scan_id.is_empty() {
                    vec![]
                } else {
                    vec![n.scan_id.clone()]
                },
                done: vec![],
            }),
            (Some(mut i), e) => {
                match e {
                    IncidentEvent::Reported(_) => {}
                    IncidentEvent::SeenAgain { scan_id, .. } => i.scans.push(scan_id.clone()),
                    IncidentEvent::StatusChanged(c) => i.status = c.status,
                    IncidentEvent::Acted {
                        action, outcome, ..
                    } => {
                        if *outcome == Outcome::Done {
                            i.done.push(*action);
                        }
                    }
                }
                i.updated_at = at;
                Some(i)
            }
            (None, _) => None,
        }
    }

    fn encode(e: &IncidentEvent) -> NewEvent {
        match e {
            IncidentEvent::Reported(n) => NewEvent::new(
                "leak_incident.reported.v1",
                pb::LeakIncidentReported {
                    credential_name: n.secret_id.clone(),
                    credential_version: n.secret_version as i64,
                    source: n.source.clone(),
                    location: n.location.clone(),
                    detected_at: n.detected_at.timestamp_millis(),
                    severity: n.severity.as_str().into(),
                    details_json: n.details.clone(),
                    scan_id: n.scan_id.clone(),
                    reported_by: n.reported_by.clone(),
                    policy_id: n.policy_id.clone(),
                    notification_channels: n.notify.clone(),
                }
                .encode_to_vec(),
            ),
            IncidentEvent::SeenAgain { scan_id, location } => NewEvent::new(
                "leak_incident.seen_again.v1",
                pb::LeakIncidentSeenAgain {
                    scan_id: scan_id.clone(),
                    location: location.clone(),
                }
                .encode_to_vec(),
            ),
            IncidentEvent::StatusChanged(c) => NewEvent::new(
                "leak_incident.status_changed.v1",
                pb::LeakIncidentStatusChanged {
                    status: c.status.as_str().into(),
                    resolution: c.resolution.clone(),
                    notes: c.notes.clone(),
                    changed_by: c.changed_by.clone(),
                }
                .encode_to_vec(),
            ),
            IncidentEvent::Acted {
                action,
                outcome,
                detail,
            } => NewEvent::new(
                "leak_incident.acted.v1",
                pb::LeakIncidentActed {
                    action: action.as_str().into(),
                    outcome: outcome.as_str().into(),
                    detail: detail.clone(),
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<IncidentEvent, DecodeError> {
        let word = |what: &str, s: &str| DecodeError::new(env, format!("unknown {what} `{s}`"));
        Ok(match env.event_type.as_str() {
            "leak_incident.reported.v1" => {
                let m: pb::LeakIncidentReported = payload(env)?;
                IncidentEvent::Reported(NewIncident {
                    severity: LeakSeverity::parse(&m.severity)
                        .ok_or_else(|| word("severity", &m.severity))?,
                    secret_id: m.credential_name,
                    secret_version: m.credential_version.max(0) as u64,
                    source: m.source,
                    location: m.location,
                    detected_at: DateTime::from_timestamp_millis(m.detected_at).unwrap_or_default(),
                    details: m.details_json,
                    scan_id: m.scan_id,
                    reported_by: m.reported_by,
                    policy_id: m.policy_id,
                    notify: m.notification_channels,
                })
            }
            "leak_incident.seen_again.v1" => {
                let m: pb::LeakIncidentSeenAgain = payload(env)?;
                IncidentEvent::SeenAgain {
                    scan_id: m.scan_id,
                    location: m.location,
                }
            }
            "leak_incident.status_changed.v1" => {
                let m: pb::LeakIncidentStatusChanged = payload(env)?;
                IncidentEvent::StatusChanged(StatusChange {
                    status: LeakIncidentStatus::parse(&m.status)
                        .ok_or_else(|| word("status", &m.status))?,
                    resolution: m.resolution,
                    notes: m.notes,
                    changed_by: m.changed_by,
                })
            }
            "leak_incident.acted.v1" => {
                let m: pb::LeakIncidentActed = payload(env)?;
                IncidentEvent::Acted {
                    action: OnDetection::parse(&m.action)
                        .ok_or_else(|| word("action", &m.action))?,
                    outcome: match m.outcome.as_str() {
                        "done" => Outcome::Done,
                        "failed" => Outcome::Failed,
                        o => return Err(word("outcome", o)),
                    },
                    detail: m.detail,
                }
            }
            other => {
                return Err(DecodeError::new(
                    env,
                    format!("unknown leak incident event {other}"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn found_by(scan: &str) -> NewIncident {
        NewIncident {
            secret_id: "cred_1".into(),
            secret_version: 1,
            source: "github".into(),
            location: "http://127.0.0.1/repo.git@config.env".into(),
            detected_at: DateTime::from_timestamp(1_900_000_000, 0).unwrap_or_default(),
            severity: LeakSeverity::Critical,
            details: "{}".into(),
            scan_id: scan.into(),
            reported_by: "leak-scan".into(),
            policy_id: "p1".into(),
            notify: vec!["soc".into()],
        }
    }

    fn change(status: LeakIncidentStatus) -> StatusChange {
        StatusChange {
            status,
            resolution: String::new(),
            notes: String::new(),
            changed_by: "ana".into(),
        }
    }

    #[test]
    fn a_leak_found_again_by_another_scan_joins_its_incident_and_a_retry_adds_nothing() {
        let opened = vec![IncidentEvent::Reported(found_by("s1"))];
        given::<LeakIncidentAggregate>(opened.clone())
            .when(IncidentCommand::Report(found_by("s2")))
            .then(vec![IncidentEvent::SeenAgain {
                scan_id: "s2".into(),
                location: "http://127.0.0.1/repo.git@config.env".into(),
            }]);
        given::<LeakIncidentAggregate>(opened)
            .when(IncidentCommand::Report(found_by("s1")))
            .then(vec![]);
    }

    #[test]
    fn an_action_that_succeeded_is_not_taken_again_but_a_failed_one_is() {
        let rotate = |outcome| IncidentCommand::Act {
            action: OnDetection::Rotate,
            outcome,
            detail: "v2".into(),
        };
        let done = IncidentEvent::Acted {
            action: OnDetection::Rotate,
            outcome: Outcome::Done,
            detail: "v2".into(),
        };
        let failed = IncidentEvent::Acted {
            action: OnDetection::Rotate,
            outcome: Outcome::Failed,
            detail: "v2".into(),
        };
        given::<LeakIncidentAggregate>(vec![IncidentEvent::Reported(found_by("s1")), failed])
            .when(rotate(Outcome::Done))
            .then(vec![done.clone()]);
        given::<LeakIncidentAggregate>(vec![IncidentEvent::Reported(found_by("s1")), done])
            .when(rotate(Outcome::Done))
            .then(vec![]);
    }

    #[test]
    fn triage_moves_the_status_but_never_back_to_open() {
        let opened = vec![IncidentEvent::Reported(found_by("s1"))];
        given::<LeakIncidentAggregate>(opened.clone())
            .when(IncidentCommand::SetStatus(change(
                LeakIncidentStatus::FalsePositive,
            )))
            .then(vec![IncidentEvent::StatusChanged(change(
                LeakIncidentStatus::FalsePositive,
            ))]);
        given::<LeakIncidentAggregate>(opened.clone())
            .when(IncidentCommand::SetStatus(change(LeakIncidentStatus::Open)))
            .then_err(IncidentError::Reopen);
        let triaged = vec![
            IncidentEvent::Reported(found_by("s1")),
            IncidentEvent::StatusChanged(change(LeakIncidentStatus::Investigating)),
        ];
        given::<LeakIncidentAggregate>(triaged)
            .when(IncidentCommand::SetStatus(change(
                LeakIncidentStatus::Investigating,
            )))
            .then(vec![]);
        given::<LeakIncidentAggregate>(vec![])
            .when(IncidentCommand::SetStatus(change(
                LeakIncidentStatus::Resolved,
            )))
            .then_err(IncidentError::NotFound);
    }
}
