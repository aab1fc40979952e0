//! A leakage scan is a job: `queued` when asked for, `running` once a worker took it,
//! then `completed` or `failed`. A worker that stops mid-scan (a crash, a lost node) leaves
//! it `running` with no progress; after `stale_after` another worker may take it over and
//! starts it again. An unreachable target fails the scan: "nothing found" is said only of
//! bytes that were read.

use super::organization::{Host, Organization};
use aegis_kernel::{occurred_at, payload, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::vault::v1 as pb;
use aegis_schemas::{Message, NewEvent};
use chrono::{DateTime, TimeDelta, Utc};

word_enum!(LeakScanStatus {
    Queued = "queued",
    Running = "running",
    Completed = "completed",
    Failed = "failed",
});

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScanRequest {
    pub targets: Vec<String>,
    /// Git repositories (URLs), every blob of every commit read.
    pub repositories: Vec<String>,
    /// Pages read as they are.
    pub urls: Vec<String>,
    pub policy_ids: Vec<String>,
    pub requested_by: String,
    /// Organizations whose repositories are listed when the scan runs; each is one target.
    pub organizations: Vec<Organization>,
}

impl ScanRequest {
    pub fn total(&self) -> usize {
        self.repositories.len() + self.urls.len() + self.organizations.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub bytes: u64,
    pub findings: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    pub request: ScanRequest,
    pub status: LeakScanStatus,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// When a worker last said something: a running scan silent for long has lost it.
    pub touched_at: DateTime<Utc>,
    pub targets_done: u32,
    pub tally: Tally,
    pub reason: String,
}

impl Scan {
    /// Percent of targets done.
    pub fn progress(&self) -> u32 {
        match (self.status, self.request.total()) {
            (LeakScanStatus::Completed, _) => 100,
            (LeakScanStatus::Queued, _) | (_, 0) => 0,
            (_, n) => (self.targets_done as usize * 100 / n).min(100) as u32,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScanCommand {
    Queue(ScanRequest),
    Start {
        worker: String,
        now: DateTime<Utc>,
        stale_after: TimeDelta,
    },
    Progress {
        targets_done: u32,
        tally: Tally,
    },
    Complete(Tally),
    Fail {
        reason: String,
        tally: Tally,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScanEvent {
    Queued(ScanRequest),
    Started { worker: String },
    Progressed { targets_done: u32, tally: Tally },
    Completed(Tally),
    Failed { reason: String, tally: Tally },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScanError {
    #[error("scan not found")]
    NotFound,
    #[error("this scan was queued already")]
    Exists,
    #[error("the scan is running on another worker")]
    Busy,
    #[error("the scan is {0} already")]
    Finished(LeakScanStatus),
    #[error("the scan has not started")]
    NotRunning,
}

pub struct LeakScanAggregate;

impl Aggregate for LeakScanAggregate {
    const CONTEXT: &'static str = "vault";
    const AGGREGATE: &'static str = "leak_scan";
    type State = Option<Scan>;
    type Command = ScanCommand;
    type Event = ScanEvent;
    type Error = ScanError;

    fn decide(state: &Option<Scan>, cmd: &ScanCommand) -> Result<Vec<ScanEvent>, ScanError> {
        let Some(scan) = state else {
            return match cmd {
                ScanCommand::Queue(r) => Ok(vec![ScanEvent::Queued(r.clone())]),
                _ => Err(ScanError::NotFound),
            };
        };
        if matches!(
            scan.status,
            LeakScanStatus::Completed | LeakScanStatus::Failed
        ) {
            return Err(match cmd {
                ScanCommand::Queue(_) => ScanError::Exists,
                _ => ScanError::Finished(scan.status),
            });
        }
        match cmd {
            ScanCommand::Queue(_) => Err(ScanError::Exists),
            ScanCommand::Start {
                worker,
                now,
                stale_after,
            } => {
                if scan.status == LeakScanStatus::Running && scan.touched_at + *stale_after > *now {
                    return Err(ScanError::Busy);
                }
                Ok(vec![ScanEvent::Started {
                    worker: worker.clone(),
                }])
            }
            _ if scan.status != LeakScanStatus::Running => Err(ScanError::NotRunning),
            ScanCommand::Progress {
                targets_done,
                tally,
            } => Ok(vec![ScanEvent::Progressed {
                targets_done: *targets_done,
                tally: *tally,
            }]),
            ScanCommand::Complete(t) => Ok(vec![ScanEvent::Completed(*t)]),
            ScanCommand::Fail { reason, tally } => Ok(vec![ScanEvent::Failed {
                reason: reason.clone(),
                tally: *tally,
            }]),
        }
    }

    fn evolve(state: Option<Scan>, event: &ScanEvent, env: &Envelope) -> Option<Scan> {
        let at = occurred_at(env);
        match (state, event) {
            (None, ScanEvent::Queued(r)) => Some(Scan {
                request: r.clone(),
                status: LeakScanStatus::Queued,
                queued_at: at,
                started_at: None,
                completed_at: None,
                touched_at: at,
                targets_done: 0,
                tally: Tally::default(),
                reason: String::new(),
            }),
            (Some(mut s), e) => {
                s.touched_at = at;
                match e {
                    ScanEvent::Queued(_) => {}
                    ScanEvent::Started { .. } => {
                        s.status = LeakScanStatus::Running;
                        s.started_at = Some(at);
                        s.targets_done = 0;
                        s.tally = Tally::default();
                    }
                    ScanEvent::Progressed {
                        targets_done,
                        tally,
                    } => {
                        s.targets_done = *targets_done;
                        s.tally = *tally;
                    }
                    ScanEvent::Completed(t) => {
                        s.status = LeakScanStatus::Completed;
                        s.targets_done = s.request.total() as u32;
                        s.tally = *t;
                        s.completed_at = Some(at);
                    }
                    ScanEvent::Failed { reason, tally } => {
                        s.status = LeakScanStatus::Failed;
                        s.reason = reason.clone();
                        s.tally = *tally;
                        s.completed_at = Some(at);
                    }
                }
                Some(s)
            }
            (None, _) => None,
        }
    }

    fn encode(e: &ScanEvent) -> NewEvent {
        match e {
            ScanEvent::Queued(r) => NewEvent::new(
                "leak_scan.queued.v1",
                pb::LeakScanQueued {
                    targets: r.targets.clone(),
                    repositories: r.repositories.clone(),
                    urls: r.urls.clone(),
                    policy_ids: r.policy_ids.clone(),
                    requested_by: r.requested_by.clone(),
                    organizations: r
                        .organizations
                        .iter()
                        .map(|o| pb::LeakOrganization {
                            host: o.host.as_str().into(),
                            name: o.name.clone(),
                        })
                        .collect(),
                }
                .encode_to_vec(),
            ),
            ScanEvent::Started { worker } => NewEvent::new(
                "leak_scan.started.v1",
                pb::LeakScanStarted {
                    worker: worker.clone(),
                }
                .encode_to_vec(),
            ),
            ScanEvent::Progressed {
                targets_done,
                tally,
            } => NewEvent::new(
                "leak_scan.progressed.v1",
                pb::LeakScanProgressed {
                    targets_done: *targets_done,
                    bytes_scanned: tally.bytes,
                    findings: tally.findings,
                }
                .encode_to_vec(),
            ),
            ScanEvent::Completed(t) => NewEvent::new(
                "leak_scan.completed.v1",
                pb::LeakScanCompleted {
                    bytes_scanned: t.bytes,
                    findings: t.findings,
                }
                .encode_to_vec(),
            ),
            ScanEvent::Failed { reason, tally } => NewEvent::new(
                "leak_scan.failed.v1",
                pb::LeakScanFailed {
                    reason: reason.clone(),
                    bytes_scanned: tally.bytes,
                    findings: tally.findings,
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<ScanEvent, DecodeError> {
        Ok(match env.event_type.as_str() {
            "leak_scan.queued.v1" => {
                let m: pb::LeakScanQueued = payload(env)?;
                let organizations = m
                    .organizations
                    .into_iter()
                    .map(|o| {
                        let host = Host::parse(&o.host).ok_or_else(|| {
                            DecodeError::new(env, format!("unknown host `{}`", o.host))
                        })?;
                        Ok(Organization { host, name: o.name })
                    })
                    .collect::<Result<Vec<_>, DecodeError>>()?;
                ScanEvent::Queued(ScanRequest {
                    targets: m.targets,
                    repositories: m.repositories,
                    urls: m.urls,
                    policy_ids: m.policy_ids,
                    requested_by: m.requested_by,
                    organizations,
                })
            }
            "leak_scan.started.v1" => ScanEvent::Started {
                worker: payload::<pb::LeakScanStarted>(env)?.worker,
            },
            "leak_scan.progressed.v1" => {
                let m: pb::LeakScanProgressed = payload(env)?;
                ScanEvent::Progressed {
                    targets_done: m.targets_done,
                    tally: Tally {
                        bytes: m.bytes_scanned,
                        findings: m.findings,
                    },
                }
            }
            "leak_scan.completed.v1" => {
                let m: pb::LeakScanCompleted = payload(env)?;
                ScanEvent::Completed(Tally {
                    bytes: m.bytes_scanned,
                    findings: m.findings,
                })
            }
            "leak_scan.failed.v1" => {
                let m: pb::LeakScanFailed = payload(env)?;
                ScanEvent::Failed {
                    reason: m.reason,
                    tally: Tally {
                        bytes: m.bytes_scanned,
                        findings: m.findings,
                    },
                }
            }
            other => {
                return Err(DecodeError::new(
                    env,
                    format!("unknown leak scan event {other}"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn queued() -> ScanEvent {
        ScanEvent::Queued(ScanRequest {
            targets: vec!["github".into()],
            repositories: vec!["http://127.0.0.1:1/r.git".into()],
            ..ScanRequest::default()
        })
    }

    fn start(now: i64) -> ScanCommand {
        ScanCommand::Start {
            worker: "w2".into(),
            now: DateTime::from_timestamp(now, 0).unwrap_or_default(),
            stale_after: TimeDelta::seconds(60),
        }
    }

    #[test]
    fn a_queued_scan_is_taken_by_one_worker_and_by_another_only_once_the_first_fell_silent() {
        let started = ScanEvent::Started {
            worker: "w1".into(),
        };
        given::<LeakScanAggregate>(vec![queued()])
            .when(start(0))
            .then(vec![ScanEvent::Started {
                worker: "w2".into(),
            }]);
        // The harness's events carry time 0: the first worker spoke at 0.
        given::<LeakScanAggregate>(vec![queued(), started.clone()])
            .when(start(30))
            .then_err(ScanError::Busy);
        given::<LeakScanAggregate>(vec![queued(), started])
            .when(start(61))
            .then(vec![ScanEvent::Started {
                worker: "w2".into(),
            }]);
    }

    #[test]
    fn a_finished_scan_takes_no_more_work_and_an_unstarted_one_reports_nothing() {
        let done = vec![
            queued(),
            ScanEvent::Started {
                worker: "w1".into(),
            },
            ScanEvent::Failed {
                reason: "unreachable".into(),
                tally: Tally::default(),
            },
        ];
        given::<LeakScanAggregate>(done.clone())
            .when(start(999))
            .then_err(ScanError::Finished(LeakScanStatus::Failed));
        given::<LeakScanAggregate>(done)
            .when(ScanCommand::Complete(Tally::default()))
            .then_err(ScanError::Finished(LeakScanStatus::Failed));
        given::<LeakScanAggregate>(vec![queued()])
            .when(ScanCommand::Complete(Tally::default()))
            .then_err(ScanError::NotRunning);
    }
}
