//! Jobs: work an agent does in its cluster (seed 004). Enqueued by an operator, claimed by one
//! agent for a lease, completed by the agent that holds the lease. A lease that runs out makes
//! the job claimable again, by any agent in its scope, until its attempts are spent; then it
//! expires. Every step is a decision on the job's own history, so two agents claiming at once
//! cannot both win: the second append finds the first and is refused.

use aegis_kernel::{payload, Aggregate, DecodeError};
use aegis_schemas::broker::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::{Message, NewEvent};
use uuid::Uuid;

/// A job's state, as seed 004 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Claimed,
    Succeeded,
    Failed,
    Expired,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Claimed => "claimed",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Expired => "expired",
        }
    }

    pub fn finished(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Expired
        )
    }
}

/// What an operator enqueues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub job_type: String,
    /// A JSON object.
    pub payload: String,
    /// A JSON object, as the operator gave it.
    pub agent_scope: String,
    /// The scope's `agent_id`: the only agent that may claim the job.
    pub only_agent: Option<Uuid>,
    pub request_id: Option<String>,
    pub enqueued_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub new: NewJob,
    pub status: JobStatus,
    /// The agent holding (or that last held) the lease, and until when (ms since the epoch).
    pub holder: Option<Uuid>,
    pub lease_expires_at: i64,
    pub attempts: u32,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Enqueue(NewJob),
    /// `now` and the lease's end are in ms since the epoch; `max_attempts` bounds reclaims.
    Claim {
        agent: Uuid,
        now: i64,
        lease_ms: i64,
        max_attempts: u32,
    },
    Complete {
        agent: Uuid,
        now: i64,
        succeeded: bool,
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Enqueued(NewJob),
    Claimed {
        agent: Uuid,
        lease_expires_at: i64,
        attempt: u32,
    },
    Completed {
        agent: Uuid,
        succeeded: bool,
        error: String,
    },
    Expired {
        attempts: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("job not found")]
    NotFound,
    #[error("the job already exists")]
    AlreadyExists,
    /// Another agent holds a live lease (a claim that lost the race lands here).
    #[error("another agent holds the job")]
    Taken,
    /// The job is out of this agent's scope.
    #[error("the job is for another agent")]
    OutOfScope,
    #[error("the job has ended ({0})")]
    Finished(&'static str),
    #[error("the job is not claimed by this agent")]
    NotHolder,
    #[error("the lease on the job ran out; another agent may hold it now")]
    LeaseLost,
}

pub struct JobAggregate;

impl Aggregate for JobAggregate {
    const CONTEXT: &'static str = "broker";
    const AGGREGATE: &'static str = "job";
    type State = Option<Job>;
    type Command = Command;
    type Event = Event;
    type Error = JobError;

    fn decide(state: &Option<Job>, cmd: &Command) -> Result<Vec<Event>, JobError> {
        let job = match (state, cmd) {
            (None, Command::Enqueue(n)) => return Ok(vec![Event::Enqueued(n.clone())]),
            (Some(_), Command::Enqueue(_)) => return Err(JobError::AlreadyExists),
            (None, _) => return Err(JobError::NotFound),
            (Some(job), _) => job,
        };
        if job.status.finished() {
            return Err(JobError::Finished(job.status.as_str()));
        }
        match cmd {
            Command::Enqueue(_) => Err(JobError::AlreadyExists),
            Command::Claim {
                agent,
                now,
                lease_ms,
                max_attempts,
            } => {
                if job.new.only_agent.is_some_and(|a| a != *agent) {
                    return Err(JobError::OutOfScope);
                }
                let live = job.status == JobStatus::Claimed && job.lease_expires_at > *now;
                if live {
                    return Err(JobError::Taken);
                }
                if job.attempts >= *max_attempts {
                    // The last lease ran out with no attempt left: the job ends here, and the
                    // claimer is told it cannot have it.
                    return Ok(vec![Event::Expired {
                        attempts: job.attempts,
                    }]);
                }
                Ok(vec![Event::Claimed {
                    agent: *agent,
                    lease_expires_at: now + lease_ms,
                    attempt: job.attempts + 1,
                }])
            }
            Command::Complete {
                agent,
                now,
                succeeded,
                error,
            } => {
                if job.status != JobStatus::Claimed || job.holder != Some(*agent) {
                    return Err(JobError::NotHolder);
                }
                if job.lease_expires_at <= *now {
                    return Err(JobError::LeaseLost);
                }
                Ok(vec![Event::Completed {
                    agent: *agent,
                    succeeded: *succeeded,
                    error: error.clone(),
                }])
            }
        }
    }

    fn evolve(state: Option<Job>, event: &Event, _env: &Envelope) -> Option<Job> {
        match (state, event) {
            (None, Event::Enqueued(n)) => Some(Job {
                new: n.clone(),
                status: JobStatus::Queued,
                holder: None,
                lease_expires_at: 0,
                attempts: 0,
                error: String::new(),
            }),
            (
                Some(mut j),
                Event::Claimed {
                    agent,
                    lease_expires_at,
                    attempt,
                },
            ) => {
                j.status = JobStatus::Claimed;
                j.holder = Some(*agent);
                j.lease_expires_at = *lease_expires_at;
                j.attempts = *attempt;
                Some(j)
            }
            (
                Some(mut j),
                Event::Completed {
                    succeeded, error, ..
                },
            ) => {
                j.status = if *succeeded {
                    JobStatus::Succeeded
                } else {
                    JobStatus::Failed
                };
                j.error = error.clone();
                Some(j)
            }
            (Some(mut j), Event::Expired { .. }) => {
                j.status = JobStatus::Expired;
                Some(j)
            }
            (state, _) => state,
        }
    }

    fn encode(event: &Event) -> NewEvent {
        match event {
            Event::Enqueued(n) => NewEvent::new(
                "job.enqueued.v1",
                pb::JobEnqueued {
                    job_type: n.job_type.clone(),
                    payload_json: n.payload.clone(),
                    agent_scope_json: n.agent_scope.clone(),
                    request_id: n.request_id.clone().unwrap_or_default(),
                    enqueued_by: n.enqueued_by.clone(),
                    scoped_agent_id: n.only_agent.map(|a| a.to_string()).unwrap_or_default(),
                }
                .encode_to_vec(),
            ),
            Event::Claimed {
                agent,
                lease_expires_at,
                attempt,
            } => NewEvent::new(
                "job.claimed.v1",
                pb::JobClaimed {
                    agent_id: agent.to_string(),
                    lease_expires_at: *lease_expires_at,
                    attempt: *attempt,
                }
                .encode_to_vec(),
            ),
            Event::Completed {
                agent,
                succeeded,
                error,
            } => NewEvent::new(
                "job.completed.v1",
                pb::JobCompleted {
                    agent_id: agent.to_string(),
                    status: if *succeeded { "succeeded" } else { "failed" }.into(),
                    error: error.clone(),
                }
                .encode_to_vec(),
            ),
            Event::Expired { attempts } => NewEvent::new(
                "job.expired.v1",
                pb::JobExpired {
                    attempts: *attempts,
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        let agent = |s: &str| {
            Uuid::parse_str(s).map_err(|e| DecodeError::new(env, format!("agent id: {e}")))
        };
        Ok(match env.event_type.as_str() {
            "job.enqueued.v1" => {
                let m: pb::JobEnqueued = payload(env)?;
                let only_agent = match m.scoped_agent_id.as_str() {
                    "" => None,
                    id => Some(agent(id)?),
                };
                Event::Enqueued(NewJob {
                    only_agent,
                    job_type: m.job_type,
                    payload: m.payload_json,
                    agent_scope: m.agent_scope_json,
                    request_id: (!m.request_id.is_empty()).then_some(m.request_id),
                    enqueued_by: m.enqueued_by,
                })
            }
            "job.claimed.v1" => {
                let m: pb::JobClaimed = payload(env)?;
                Event::Claimed {
                    agent: agent(&m.agent_id)?,
                    lease_expires_at: m.lease_expires_at,
                    attempt: m.attempt,
                }
            }
            "job.completed.v1" => {
                let m: pb::JobCompleted = payload(env)?;
                Event::Completed {
                    agent: agent(&m.agent_id)?,
                    succeeded: match m.status.as_str() {
                        "succeeded" => true,
                        "failed" => false,
                        other => {
                            return Err(DecodeError::new(env, format!("unknown status `{other}`")))
                        }
                    },
                    error: m.error,
                }
            }
            "job.expired.v1" => Event::Expired {
                attempts: payload::<pb::JobExpired>(env)?.attempts,
            },
            other => return Err(DecodeError::new(env, format!("not a job event: {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    const A: Uuid = Uuid::from_u128(1);
    const B: Uuid = Uuid::from_u128(2);

    fn enqueued(only: Option<Uuid>) -> Event {
        Event::Enqueued(NewJob {
            job_type: "sync".into(),
            payload: "{}".into(),
            agent_scope: "{}".into(),
            only_agent: only,
            request_id: None,
            enqueued_by: "admin".into(),
        })
    }

    fn claim(agent: Uuid, now: i64) -> Command {
        Command::Claim {
            agent,
            now,
            lease_ms: 30_000,
            max_attempts: 2,
        }
    }

    fn claimed(agent: Uuid, now: i64, attempt: u32) -> Event {
        Event::Claimed {
            agent,
            lease_expires_at: now + 30_000,
            attempt,
        }
    }

    fn complete(agent: Uuid, now: i64) -> Command {
        Command::Complete {
            agent,
            now,
            succeeded: true,
            error: String::new(),
        }
    }

    #[test]
    fn one_agent_holds_a_job_until_its_lease_runs_out_then_another_may() {
        given::<JobAggregate>(vec![enqueued(None)])
            .when(claim(A, 0))
            .then(vec![claimed(A, 0, 1)]);
        given::<JobAggregate>(vec![enqueued(None), claimed(A, 0, 1)])
            .when(claim(B, 29_999))
            .then_err(JobError::Taken);
        given::<JobAggregate>(vec![enqueued(None), claimed(A, 0, 1)])
            .when(claim(B, 30_000))
            .then(vec![claimed(B, 30_000, 2)]);
        // The first agent's late completion changes nothing.
        given::<JobAggregate>(vec![
            enqueued(None),
            claimed(A, 0, 1),
            claimed(B, 30_000, 2),
        ])
        .when(complete(A, 31_000))
        .then_err(JobError::NotHolder);
        given::<JobAggregate>(vec![enqueued(None), claimed(A, 0, 1)])
            .when(complete(A, 30_000))
            .then_err(JobError::LeaseLost);
    }

    #[test]
    fn a_job_is_completed_once_by_its_holder_and_expires_when_attempts_run_out() {
        let held = vec![enqueued(None), claimed(A, 0, 1)];
        given::<JobAggregate>(held.clone())
            .when(complete(A, 10))
            .then(vec![Event::Completed {
                agent: A,
                succeeded: true,
                error: String::new(),
            }]);
        given::<JobAggregate>(held.clone())
            .when(complete(B, 10))
            .then_err(JobError::NotHolder);
        let mut done = held.clone();
        done.push(Event::Completed {
            agent: A,
            succeeded: false,
            error: "boom".into(),
        });
        given::<JobAggregate>(done.clone())
            .when(complete(A, 20))
            .then_err(JobError::Finished("failed"));
        given::<JobAggregate>(done)
            .when(claim(B, 20))
            .then_err(JobError::Finished("failed"));
        given::<JobAggregate>(vec![enqueued(None)])
            .when(complete(A, 0))
            .then_err(JobError::NotHolder);
        let spent = vec![enqueued(None), claimed(A, 0, 1), claimed(B, 30_000, 2)];
        given::<JobAggregate>(spent)
            .when(claim(A, 60_000))
            .then(vec![Event::Expired { attempts: 2 }]);
    }

    #[test]
    fn a_scoped_job_goes_to_its_agent_only() {
        given::<JobAggregate>(vec![enqueued(Some(A))])
            .when(claim(B, 0))
            .then_err(JobError::OutOfScope);
        given::<JobAggregate>(vec![enqueued(Some(A))])
            .when(claim(A, 0))
            .then(vec![claimed(A, 0, 1)]);
    }
}
