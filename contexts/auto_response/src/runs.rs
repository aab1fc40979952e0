//! The runs of one rule (`auto_response.runs.<rule id>`). Whether a match may act is decided
//! here, over the rule's own run history: the throttle (runs per window) and the blast-radius
//! brake (distinct targets per window). Because the history is in the log, both hold across
//! instances and restarts, and `simulate` folds the very same decider over past events.
//!
//! A run is started, then completed. An admitted active run stays open between the two while
//! its actions execute; a retried start of an open run returns it, so a reactor that crashed
//! half way finishes the same run instead of starting another.

use super::actions::targets;
use super::rules::{Brake, Definition, Throttle};
use aegis_kernel::{Aggregate, DecodeError};
use aegis_schemas::auto_response::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet, VecDeque};
use uuid::Uuid;

word_enum!(RunMode {
    Active = "active",
    Simulate = "simulate",
});

word_enum!(Admission {
    Admitted = "admitted",
    Throttled = "throttled",
    Braked = "braked",
});

word_enum!(RunResult {
    Running = "running",
    Succeeded = "succeeded",
    Failed = "failed",
    Partial = "partial",
    Simulated = "simulated",
    PendingApproval = "pending_approval",
    Throttled = "throttled",
    Braked = "braked",
    Rejected = "rejected",
    Expired = "expired",
});

/// Runs are remembered this long (the longest window a throttle or brake may have).
pub const MAX_WINDOW_SECS: i64 = 86_400;
/// Completed run ids remembered for deduplication, and admitted runs kept for the windows.
const REMEMBERED: usize = 10_000;

/// A run's id: one rule reacting to one event is one run, however often it is retried.
pub fn run_id(rule: &str, event_id: &str) -> Uuid {
    aegis_kernel::derived_id(
        "aegis/auto-response/run/v1",
        &[rule.as_bytes(), event_id.as_bytes()],
    )
}

/// The event a run reacts to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trigger {
    pub event_id: String,
    pub position: u64,
    pub event_type: String,
    /// `<aggregate type>/<aggregate id>`
    pub aggregate: String,
    /// Seconds since the epoch: windows run on event time, live or replayed.
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    pub run_id: Uuid,
    pub rule_version: u32,
    pub mode: RunMode,
    pub trigger: Trigger,
    pub targets: Vec<String>,
    pub admission: Admission,
    /// The actions with their templates filled (canonical JSON array).
    pub actions: Value,
    pub approval_required: bool,
}

impl Started {
    /// `rule`'s run on the event `env` (committed at `position`): its actions rendered from
    /// `doc`, their targets counted, its id derived. The reactor executes the start; the
    /// simulation folds it in memory; both begin here.
    pub fn of(
        rule: &str,
        rule_version: u32,
        mode: RunMode,
        definition: &Definition,
        env: &Envelope,
        position: u64,
        doc: &Value,
    ) -> Started {
        let actions: Vec<Value> = definition.actions.iter().map(|a| a.render(doc)).collect();
        Started {
            run_id: run_id(rule, &env.event_id),
            rule_version,
            mode,
            trigger: Trigger {
                event_id: env.event_id.clone(),
                position,
                event_type: env.event_type.clone(),
                aggregate: format!("{}/{}", env.aggregate_type, env.aggregate_id),
                at: aegis_kernel::occurred_at(env).timestamp(),
            },
            targets: targets(&actions),
            admission: Admission::Admitted,
            actions: Value::Array(actions),
            approval_required: definition.approval_required,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Start {
        run: Started,
        throttle: Throttle,
        brake: Brake,
        /// The incident a tripped brake opens (derived from the run, so a retry finds it).
        brake_incident: Uuid,
    },
    Complete {
        run_id: Uuid,
        result: RunResult,
        actions: Value,
    },
}

impl Command {
    /// Starts `run` under the definition's throttle and brake; the incident a tripped brake
    /// opens is derived from the run.
    pub fn start(run: Started, definition: &Definition) -> Command {
        let brake_incident =
            aegis_kernel::derived_id("aegis/auto-response/brake/v1", &[run.run_id.as_bytes()]);
        Command::Start {
            run,
            throttle: definition.throttle,
            brake: definition.brake,
            brake_incident,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `admission` is filled in by the decision.
    Started(Started),
    BrakeTripped {
        run_id: Uuid,
        distinct_targets: u32,
        max_targets: u32,
        window_secs: u32,
        incident_id: Uuid,
    },
    Completed {
        run_id: Uuid,
        result: RunResult,
        actions: Value,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error("run {0} was never started")]
    NotStarted(Uuid),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleRuns {
    /// Admitted runs (active or simulated) by event time, with their targets.
    admitted: VecDeque<(i64, Vec<String>)>,
    /// Started and not yet completed.
    pub open: BTreeMap<Uuid, Started>,
    completed: HashSet<Uuid>,
    completed_order: VecDeque<Uuid>,
    /// The last time the brake tripped, so a reaction interrupted after the trip finishes it.
    pub last_trip: Option<Trip>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trip {
    pub run_id: Uuid,
    pub distinct_targets: u32,
    pub max_targets: u32,
    pub window_secs: u32,
    pub incident_id: Uuid,
}

impl RuleRuns {
    pub fn is_completed(&self, run: &Uuid) -> bool {
        self.completed.contains(run)
    }

    fn runs_within(&self, at: i64, window: u32) -> impl Iterator<Item = &(i64, Vec<String>)> {
        let since = at - i64::from(window);
        self.admitted
            .iter()
            .filter(move |(t, _)| *t > since && *t <= at)
    }

    /// How a run at `at` on `targets` would be admitted.
    pub fn admission(
        &self,
        at: i64,
        targets: &[String],
        throttle: Throttle,
        brake: Brake,
    ) -> (Admission, u32) {
        if throttle.max_runs > 0
            && self.runs_within(at, throttle.window_secs).count() >= throttle.max_runs as usize
        {
            return (Admission::Throttled, 0);
        }
        if brake.max_targets > 0 && !targets.is_empty() {
            let mut distinct: HashSet<&str> = self
                .runs_within(at, brake.window_secs)
                .flat_map(|(_, t)| t.iter().map(String::as_str))
                .collect();
            distinct.extend(targets.iter().map(String::as_str));
            if distinct.len() > brake.max_targets as usize {
                return (Admission::Braked, distinct.len() as u32);
            }
        }
        (Admission::Admitted, 0)
    }
}

pub struct RunsAggregate;

impl Aggregate for RunsAggregate {
    const CONTEXT: &'static str = "auto_response";
    const AGGREGATE: &'static str = "runs";
    type State = RuleRuns;
    type Command = Command;
    type Event = Event;
    type Error = RunError;

    fn decide(state: &RuleRuns, cmd: &Command) -> Result<Vec<Event>, RunError> {
        match cmd {
            Command::Start {
                run,
                throttle,
                brake,
                brake_incident,
            } => {
                if state.open.contains_key(&run.run_id) || state.is_completed(&run.run_id) {
                    return Ok(vec![]);
                }
                let (admission, distinct) =
                    state.admission(run.trigger.at, &run.targets, *throttle, *brake);
                let started = Started {
                    admission,
                    ..run.clone()
                };
                let mut events = vec![Event::Started(started)];
                let finished = match (admission, run.mode) {
                    (Admission::Admitted, RunMode::Active) => None,
                    (Admission::Admitted, RunMode::Simulate) => Some(RunResult::Simulated),
                    (Admission::Throttled, _) => Some(RunResult::Throttled),
                    (Admission::Braked, mode) => {
                        // A simulated rule only records that the brake would have tripped.
                        if mode == RunMode::Active {
                            events.push(Event::BrakeTripped {
                                run_id: run.run_id,
                                distinct_targets: distinct,
                                max_targets: brake.max_targets,
                                window_secs: brake.window_secs,
                                incident_id: *brake_incident,
                            });
                        }
                        Some(RunResult::Braked)
                    }
                };
                if let Some(result) = finished {
                    events.push(Event::Completed {
                        run_id: run.run_id,
                        result,
                        actions: run.actions.clone(),
                    });
                }
                Ok(events)
            }
            Command::Complete { run_id, .. } if state.is_completed(run_id) => Ok(vec![]),
            Command::Complete { run_id, .. } if !state.open.contains_key(run_id) => {
                Err(RunError::NotStarted(*run_id))
            }
            Command::Complete {
                run_id,
                result,
                actions,
            } => Ok(vec![Event::Completed {
                run_id: *run_id,
                result: *result,
                actions: actions.clone(),
            }]),
        }
    }

    fn evolve(mut state: RuleRuns, event: &Event, _: &Envelope) -> RuleRuns {
        match event {
            Event::Started(s) => {
                if s.admission == Admission::Admitted {
                    let at = s.trigger.at;
                    state.admitted.push_back((at, s.targets.clone()));
                    while state.admitted.len() > REMEMBERED
                        || state
                            .admitted
                            .front()
                            .is_some_and(|(t, _)| *t <= at - MAX_WINDOW_SECS)
                    {
                        state.admitted.pop_front();
                    }
                }
                state.open.insert(s.run_id, s.clone());
            }
            Event::BrakeTripped {
                run_id,
                distinct_targets,
                max_targets,
                window_secs,
                incident_id,
            } => {
                state.last_trip = Some(Trip {
                    run_id: *run_id,
                    distinct_targets: *distinct_targets,
                    max_targets: *max_targets,
                    window_secs: *window_secs,
                    incident_id: *incident_id,
                })
            }
            Event::Completed { run_id, .. } => {
                state.open.remove(run_id);
                if state.completed.insert(*run_id) {
                    state.completed_order.push_back(*run_id);
                }
                while state.completed_order.len() > REMEMBERED {
                    if let Some(old) = state.completed_order.pop_front() {
                        state.completed.remove(&old);
                    }
                }
            }
        }
        state
    }

    fn encode(event: &Event) -> NewEvent {
        match event {
            Event::Started(s) => NewEvent::new(
                "run.started.v1",
                pb::RunStarted {
                    run_id: s.run_id.to_string(),
                    rule_version: s.rule_version,
                    mode: s.mode.as_str().into(),
                    trigger_event_id: s.trigger.event_id.clone(),
                    trigger_position: s.trigger.position,
                    trigger_event_type: s.trigger.event_type.clone(),
                    trigger_aggregate: s.trigger.aggregate.clone(),
                    trigger_at: s.trigger.at,
                    targets: s.targets.clone(),
                    admission: s.admission.as_str().into(),
                    actions_json: s.actions.to_string(),
                    approval_required: s.approval_required,
                }
                .encode_to_vec(),
            ),
            Event::BrakeTripped {
                run_id,
                distinct_targets,
                max_targets,
                window_secs,
                incident_id,
            } => NewEvent::new(
                "brake.tripped.v1",
                pb::BrakeTripped {
                    run_id: run_id.to_string(),
                    distinct_targets: *distinct_targets,
                    max_targets: *max_targets,
                    window_secs: *window_secs,
                    incident_id: incident_id.to_string(),
                }
                .encode_to_vec(),
            ),
            Event::Completed {
                run_id,
                result,
                actions,
            } => NewEvent::new(
                "run.completed.v1",
                pb::RunCompleted {
                    run_id: run_id.to_string(),
                    result: result.as_str().into(),
                    actions_json: actions.to_string(),
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        use aegis_kernel::payload as msg;
        let id = |s: &str| Uuid::parse_str(s).map_err(|e| DecodeError::new(env, e));
        let json = |s: &str| serde_json::from_str::<Value>(s).map_err(|e| DecodeError::new(env, e));
        Ok(match env.event_type.as_str() {
            "run.started.v1" => {
                let m: pb::RunStarted = msg(env)?;
                Event::Started(Started {
                    run_id: id(&m.run_id)?,
                    rule_version: m.rule_version,
                    mode: RunMode::parse(&m.mode)
                        .ok_or_else(|| DecodeError::new(env, "unknown run mode"))?,
                    trigger: Trigger {
                        event_id: m.trigger_event_id,
                        position: m.trigger_position,
                        event_type: m.trigger_event_type,
                        aggregate: m.trigger_aggregate,
                        at: m.trigger_at,
                    },
                    targets: m.targets,
                    admission: Admission::parse(&m.admission)
                        .ok_or_else(|| DecodeError::new(env, "unknown admission"))?,
                    actions: json(&m.actions_json)?,
                    approval_required: m.approval_required,
                })
            }
            "brake.tripped.v1" => {
                let m: pb::BrakeTripped = msg(env)?;
                Event::BrakeTripped {
                    run_id: id(&m.run_id)?,
                    distinct_targets: m.distinct_targets,
                    max_targets: m.max_targets,
                    window_secs: m.window_secs,
                    incident_id: id(&m.incident_id)?,
                }
            }
            "run.completed.v1" => {
                let m: pb::RunCompleted = msg(env)?;
                Event::Completed {
                    run_id: id(&m.run_id)?,
                    result: RunResult::parse(&m.result)
                        .ok_or_else(|| DecodeError::new(env, "unknown run result"))?,
                    actions: json(&m.actions_json)?,
                }
            }
            other => return Err(DecodeError::new(env, format!("not a run event: {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;
    use serde_json::json;

    fn run(n: u128, at: i64, target: &str, mode: RunMode) -> Started {
        Started {
            run_id: Uuid::from_u128(n),
            rule_version: 1,
            mode,
            trigger: Trigger {
                event_id: format!("e{n}"),
                position: n as u64,
                event_type: "incident.opened.v1".into(),
                aggregate: "incident/x".into(),
                at,
            },
            targets: vec![target.to_string()],
            admission: Admission::Admitted,
            actions: json!([{ "type": "quarantine_agent", "target": target }]),
            approval_required: false,
        }
    }

    fn start(run: Started, throttle: Throttle, brake: Brake) -> Command {
        Command::Start {
            run,
            throttle,
            brake,
            brake_incident: Uuid::from_u128(999),
        }
    }

    const NO_BRAKE: Brake = Brake {
        max_targets: 0,
        window_secs: 0,
    };
    const NO_THROTTLE: Throttle = Throttle {
        max_runs: 0,
        window_secs: 0,
    };

    fn admitted(r: Started) -> Vec<Event> {
        vec![
            Event::Started(r.clone()),
            Event::Completed {
                run_id: r.run_id,
                result: RunResult::Simulated,
                actions: r.actions,
            },
        ]
    }

    #[test]
    fn an_active_admitted_run_stays_open_until_completed_and_a_retry_starts_nothing() {
        let r = run(1, 100, "a", RunMode::Active);
        given::<RunsAggregate>(vec![])
            .when(start(r.clone(), NO_THROTTLE, NO_BRAKE))
            .then(vec![Event::Started(r.clone())]);
        given::<RunsAggregate>(vec![Event::Started(r.clone())])
            .when(start(r.clone(), NO_THROTTLE, NO_BRAKE))
            .then(vec![]);
        let done = Event::Completed {
            run_id: r.run_id,
            result: RunResult::Succeeded,
            actions: json!([]),
        };
        given::<RunsAggregate>(vec![Event::Started(r.clone())])
            .when(Command::Complete {
                run_id: r.run_id,
                result: RunResult::Succeeded,
                actions: json!([]),
            })
            .then(vec![done.clone()]);
        given::<RunsAggregate>(vec![Event::Started(r.clone()), done])
            .when(start(r, NO_THROTTLE, NO_BRAKE))
            .then(vec![]);
        given::<RunsAggregate>(vec![])
            .when(Command::Complete {
                run_id: Uuid::from_u128(5),
                result: RunResult::Failed,
                actions: json!([]),
            })
            .then_err(RunError::NotStarted(Uuid::from_u128(5)));
    }

    #[test]
    fn the_throttle_counts_admitted_runs_within_the_window_by_event_time() {
        let throttle = Throttle {
            max_runs: 2,
            window_secs: 60,
        };
        let history: Vec<Event> = [
            run(1, 0, "a", RunMode::Simulate),
            run(2, 10, "a", RunMode::Simulate),
        ]
        .into_iter()
        .flat_map(admitted)
        .collect();
        let third = run(3, 20, "a", RunMode::Simulate);
        given::<RunsAggregate>(history.clone())
            .when(start(third.clone(), throttle, NO_BRAKE))
            .then(vec![
                Event::Started(Started {
                    admission: Admission::Throttled,
                    ..third.clone()
                }),
                Event::Completed {
                    run_id: third.run_id,
                    result: RunResult::Throttled,
                    actions: third.actions,
                },
            ]);
        // At 60 s the first run has left the window.
        let later = run(4, 60, "a", RunMode::Simulate);
        given::<RunsAggregate>(history)
            .when(start(later.clone(), throttle, NO_BRAKE))
            .then(admitted(later));
    }

    #[test]
    fn the_brake_trips_on_one_target_too_many_and_opens_its_incident() {
        let brake = Brake {
            max_targets: 2,
            window_secs: 300,
        };
        let history: Vec<Event> = [
            run(1, 0, "a", RunMode::Simulate),
            run(2, 5, "b", RunMode::Simulate),
        ]
        .into_iter()
        .flat_map(admitted)
        .collect();
        // The same target again is not a new one.
        let again = run(3, 6, "b", RunMode::Simulate);
        given::<RunsAggregate>(history.clone())
            .when(start(again.clone(), NO_THROTTLE, brake))
            .then(admitted(again));
        let third = run(4, 7, "c", RunMode::Active);
        given::<RunsAggregate>(history.clone())
            .when(start(third.clone(), NO_THROTTLE, brake))
            .then(vec![
                Event::Started(Started {
                    admission: Admission::Braked,
                    ..third.clone()
                }),
                Event::BrakeTripped {
                    run_id: third.run_id,
                    distinct_targets: 3,
                    max_targets: 2,
                    window_secs: 300,
                    incident_id: Uuid::from_u128(999),
                },
                Event::Completed {
                    run_id: third.run_id,
                    result: RunResult::Braked,
                    actions: third.actions,
                },
            ]);
        // A simulated rule records the brake without tripping it.
        let simulated = run(5, 7, "c", RunMode::Simulate);
        given::<RunsAggregate>(history)
            .when(start(simulated.clone(), NO_THROTTLE, brake))
            .then(vec![
                Event::Started(Started {
                    admission: Admission::Braked,
                    ..simulated.clone()
                }),
                Event::Completed {
                    run_id: simulated.run_id,
                    result: RunResult::Braked,
                    actions: simulated.actions,
                },
            ]);
    }
}
