//! Jobs for agents: enqueued by operators, claimed by exactly one agent for a lease (the
//! job's own history decides; the read model only proposes candidates), completed by the
//! agent holding the lease.

use crate::BrokerError;
use aegis_broker::jobs::{Command, Job, JobAggregate, JobError, JobStatus, NewJob};
use aegis_runtime::command::{CommandContext, CommandError, Outcome};
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use chrono::Utc;
use rand::Rng;
use uuid::Uuid;

/// The read model jobs are proposed from (`aegis_projectors::broker`).
pub const PROJECTION: &str = "broker";
/// Candidates read per look. A claim that loses every one of them (others got there first,
/// the read model had not shown it yet) brings the read model up to the log and looks again,
/// a bounded number of times; past that it answers busy (503), never "nothing" while jobs wait.
const CANDIDATES: i64 = 16;
const LOOKS: usize = 8;
/// How many slices of candidates agents spread over at first.
const SLICES: i64 = 16;

async fn execute(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: &str,
    command: &Command,
    assume_new: bool,
) -> Result<Outcome<Option<Job>>, CommandError<JobError>> {
    let agg = address::<JobAggregate>(tenant, id)?;
    rt.executor
        .execute::<JobAggregate>(&agg, command, ctx, assume_new)
        .await
}

/// Enqueues a job; answers its id, the job and the commit's position.
pub async fn enqueue(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    job: NewJob,
) -> Result<(Uuid, Job, u64), BrokerError> {
    enqueue_as(rt, ctx, tenant, Uuid::now_v7(), job).await
}

/// Enqueues a job under an id the caller chose (an approved request's job has its request's
/// id, so enqueueing it twice is refused as `AlreadyExists` instead of making two).
pub async fn enqueue_as(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: Uuid,
    job: NewJob,
) -> Result<(Uuid, Job, u64), BrokerError> {
    let done = execute(
        rt,
        ctx,
        tenant,
        &id.to_string(),
        &Command::Enqueue(job),
        true,
    )
    .await?;
    let job = done
        .state
        .ok_or(BrokerError::Job(CommandError::Domain(JobError::NotFound)))?;
    Ok((id, job, done.position))
}

/// Gives `agent` the oldest job it may claim (queued, or claimed with a lease that ran out),
/// or `None` when there is none. `ctx` makes a fresh context per attempt (each event carries
/// the time it happened).
pub async fn claim(
    rt: &Runtime,
    ctx: impl Fn() -> CommandContext,
    tenant: Uuid,
    agent: Uuid,
) -> Result<Option<(Uuid, Job, u64)>, BrokerError> {
    // The read model is asked first as it stands (it only proposes: the job's history
    // decides); before answering that there is nothing, it is brought up to the log, so a job
    // enqueued before this claim is never missed.
    let mut caught_up = false;
    let lease_ms = (rt.config.broker_job_lease_secs.max(1) * 1000) as i64;
    let max_attempts = rt.config.broker_job_max_attempts.max(1);
    let mut tried: Vec<String> = Vec::new();
    // Claims made at once first look at different slices of the oldest jobs (a slice of
    // 16 among the oldest 256, at random), so under load they rarely reach for the same one;
    // a slice that holds nothing sends the agent to the very oldest.
    let mut offset = rand::thread_rng().gen_range(0..SLICES) * CANDIDATES;
    for _ in 0..LOOKS {
        let now = Utc::now().timestamp_millis();
        let candidates: Vec<(String, Option<String>)> = sqlx::query_as(
            // Each half reads its own partial index (`broker_jobs_queued`, `broker_jobs_leased`)
            // and stops after what the page needs; jobs claimed under a live lease are never
            // walked past.
            "WITH q AS (SELECT id, request_id, enqueued_at FROM broker_jobs \
               WHERE tenant_id = $1 AND status = 'queued' \
               AND (scoped_agent IS NULL OR scoped_agent = $3) AND NOT (id = ANY($4)) \
               ORDER BY enqueued_at, id LIMIT $5 + $6), \
             l AS (SELECT id, request_id, enqueued_at FROM broker_jobs \
               WHERE tenant_id = $1 AND status = 'claimed' AND lease_expires_at <= $2 \
               AND (scoped_agent IS NULL OR scoped_agent = $3) AND NOT (id = ANY($4)) \
               ORDER BY lease_expires_at LIMIT $5 + $6) \
             SELECT id, request_id FROM (SELECT * FROM q UNION ALL SELECT * FROM l) c \
             ORDER BY enqueued_at, id LIMIT $5 OFFSET $6",
        )
        .bind(tenant)
        .bind(chrono::DateTime::from_timestamp_millis(now))
        .bind(agent)
        .bind(&tried)
        .bind(CANDIDATES)
        .bind(offset)
        .fetch_all(&rt.pool)
        .await?;
        if candidates.is_empty() && offset > 0 {
            offset = 0;
            continue;
        }
        if candidates.is_empty() {
            if caught_up {
                return Ok(None);
            }
            rt.read_models_caught_up(&[PROJECTION]).await?;
            caught_up = true;
            continue;
        }
        // Within a slice, too, claims start at different places (chosen per claim: a choice
        // fixed per agent would pair two agents on the same jobs for good).
        let mut candidates = candidates;
        let start = rand::thread_rng().gen_range(0..candidates.len());
        candidates.rotate_left(start);
        for (id, request) in candidates {
            let command = Command::Claim {
                agent,
                now: Utc::now().timestamp_millis(),
                lease_ms,
                max_attempts,
            };
            // A request's job is part of its request's trail.
            let ctx = match &request {
                Some(r) => crate::correlated(&ctx(), r),
                None => ctx(),
            };
            match execute(rt, &ctx, tenant, &id, &command, false).await {
                Ok(done) => match done.state {
                    Some(job) if job.status == JobStatus::Claimed && job.holder == Some(agent) => {
                        let id = Uuid::parse_str(&id).map_err(|_| {
                            BrokerError::Job(CommandError::Domain(JobError::NotFound))
                        })?;
                        return Ok(Some((id, job, done.position)));
                    }
                    // It expired on this claim: nobody gets it; look further.
                    _ => tried.push(id),
                },
                // Another agent got there first, or the read model was behind the job.
                Err(CommandError::Domain(
                    JobError::Taken | JobError::OutOfScope | JobError::Finished(_),
                ))
                | Err(CommandError::Contended) => tried.push(id),
                Err(e) => return Err(e.into()),
            }
        }
        // Every candidate was someone else's already: the read model was behind the claims.
        rt.read_models_caught_up(&[PROJECTION]).await?;
        caught_up = true;
    }
    Err(BrokerError::Busy)
}

/// Records the outcome `agent` reports for the job it holds; answers the job as it ended and
/// the commit's position. (An access request's job ends its request too: see
/// `requests::complete_job`, which the adapters call.)
pub async fn complete(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    agent: Uuid,
    job: Uuid,
    succeeded: bool,
    error: String,
) -> Result<(Option<Job>, u64), BrokerError> {
    let command = Command::Complete {
        agent,
        now: Utc::now().timestamp_millis(),
        succeeded,
        error,
    };
    let agg =
        address::<JobAggregate>(tenant, job.to_string()).map_err(|e| BrokerError::Job(e.into()))?;
    let request = match rt.executor.load::<JobAggregate>(&agg).await? {
        (Some(j), _) => j.new.request_id,
        (None, _) => None,
    };
    let ctx = match &request {
        Some(r) => crate::correlated(ctx, r),
        None => ctx.clone(),
    };
    let done = execute(rt, &ctx, tenant, &job.to_string(), &command, false).await?;
    Ok((done.state, done.position))
}

/// Whether `agent` holds approved work on `request`: a job carrying it, claimed by this agent
/// under a live lease (jobs are enqueued for approved requests only). The read model names
/// candidates, brought up to the log before answering no; the job's history decides.
pub async fn holds_request(
    rt: &Runtime,
    tenant: Uuid,
    agent: Uuid,
    request: &str,
) -> Result<bool, BrokerError> {
    for caught_up in [false, true] {
        if caught_up {
            rt.read_models_caught_up(&[PROJECTION]).await?;
        }
        let ids: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM broker_jobs WHERE tenant_id = $1 AND request_id = $2 AND agent_id = $3 \
             AND status = 'claimed' LIMIT 16",
        )
        .bind(tenant)
        .bind(request)
        .bind(agent)
        .fetch_all(&rt.pool)
        .await?;
        let now = Utc::now().timestamp_millis();
        for (id,) in ids {
            let agg =
                address::<JobAggregate>(tenant, &id).map_err(|e| BrokerError::Job(e.into()))?;
            let (job, _) = rt.executor.load::<JobAggregate>(&agg).await?;
            if job.is_some_and(|j| {
                j.status == JobStatus::Claimed
                    && j.holder == Some(agent)
                    && j.lease_expires_at > now
            }) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
