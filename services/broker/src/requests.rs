//! Access requests (seed 004): someone asks to read keys of a secret in a cluster, or to set
//! them; approvers vote; the approval enqueues the agent's job; its end finishes the request.
//!
//! A patch's values are sealed at once under a key of the request's own and only the sealed
//! form reaches the log. When the request is approved they become wraps for the agent that
//! does the patch (named in the job's payload) and the request's key is destroyed; when it
//! ends otherwise (rejected, cancelled, expired) the key is destroyed at once. Either way the
//! values in the log can never be opened again.
//!
//! Every record of a request, its wraps' and its job's carries the request id as correlation
//! id: `GET /api/v1/audit-events?correlation_id=<id>` is the request's whole trail.

use crate::wraps::{self, Making};
use crate::{correlated, jobs, BrokerError};
use aegis_broker::jobs::{JobAggregate, JobError, JobStatus, NewJob};
use aegis_broker::requests::{
    Command, Kind, NewRequest, Request, RequestAggregate, RequestError, Status,
};
use aegis_broker::rules::Target;
use aegis_broker::wraps::Source;
use aegis_kernel::{Aggregate, Sealed};
use aegis_runtime::command::{CommandContext, CommandError, Outcome};
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_streams::AggregateRef;
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;
use zeroize::Zeroizing;

#[path = "requests_break_glass.rs"]
mod break_glass;
#[path = "requests_gitops.rs"]
mod gitops_watch;
#[path = "requests_sweep.rs"]
mod sweep;
#[path = "requests_wraps.rs"]
mod wraps_of;
pub use break_glass::break_glass;
pub use gitops_watch::{observations, observe_due};
pub use sweep::{expire_due, settle_approved};
pub use wraps_of::{post_wrap, retrieve_wrap, wraps_of, WrapSummary};

/// What a requester asks for.
pub struct Submission {
    pub kind: Kind,
    pub project_id: String,
    pub environment: String,
    pub provider_type: String,
    /// A JSON object.
    pub provider_config: String,
    pub secret_ref: String,
    /// A read's keys; a patch's are its values' names.
    pub keys: Vec<String>,
    /// A patch's values by key (empty for a read); zeroed when dropped.
    pub values: Vec<(String, Zeroizing<Vec<u8>>)>,
    pub justification: String,
}

/// A request after a command: as it stands, and where its commit is.
pub struct Decided {
    pub id: Uuid,
    pub request: Request,
    pub position: u64,
}

fn request_ref(tenant: Uuid, id: Uuid) -> Result<AggregateRef, BrokerError> {
    address::<RequestAggregate>(tenant, id.to_string()).map_err(|e| BrokerError::Request(e.into()))
}

/// The key-store secret whose key seals a patch request's values (value `i` as version `i+1`).
fn request_secret(id: Uuid) -> String {
    format!("broker/request/{id}")
}

fn not_found() -> BrokerError {
    BrokerError::Request(CommandError::Domain(RequestError::NotFound))
}

async fn execute(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: Uuid,
    command: &Command,
    assume_new: bool,
) -> Result<Outcome<Option<Request>>, BrokerError> {
    let agg = request_ref(tenant, id)?;
    let ctx = correlated(ctx, &id.to_string());
    Ok(rt
        .executor
        .execute::<RequestAggregate>(&agg, command, &ctx, assume_new)
        .await?)
}

fn decided(id: Uuid, done: Outcome<Option<Request>>) -> Result<Decided, BrokerError> {
    let request = done.state.ok_or_else(not_found)?;
    Ok(Decided {
        id,
        request,
        position: done.position,
    })
}

/// Submits a request for `requester`. Bad input is refused before anything is sealed or
/// appended; a patch's values are sealed before the submission is recorded.
pub async fn submit(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    requester: Uuid,
    s: Submission,
) -> Result<Decided, BrokerError> {
    let id = Uuid::now_v7();
    let now = Utc::now().timestamp_millis();
    let mut new = NewRequest {
        kind: s.kind,
        requester,
        project_id: s.project_id,
        environment: s.environment,
        provider_type: s.provider_type,
        provider_config: s.provider_config,
        secret_ref: s.secret_ref,
        keys: s.keys,
        justification: s.justification,
        binding: crate::rules::default_binding(),
        values: Vec::new(),
    };
    let target = Target {
        project_id: new.project_id.clone(),
        environment: new.environment.clone(),
        provider_type: new.provider_type.clone(),
        secret_ref: new.secret_ref.clone(),
    };
    new.binding = crate::rules::binding_for(rt, tenant, &target).await?;
    // The decider's refusal, before a key is made for values that will never be recorded.
    let probe = Command::Submit {
        request: Box::new(new.clone()),
        now,
    };
    RequestAggregate::decide(&None, &probe)
        .map_err(|e| BrokerError::Request(CommandError::Domain(e)))?;
    let secret = request_secret(id);
    for (i, (key, value)) in s.values.iter().enumerate() {
        let sealed = rt.keys.seal(tenant, &secret, i as u64 + 1, value).await?;
        new.values.push((key.clone(), sealed));
    }
    let command = Command::Submit {
        request: Box::new(new),
        now,
    };
    let done = execute(rt, ctx, tenant, id, &command, true).await?;
    let out = decided(id, done)?;
    if out.request.status == Status::Approved {
        on_approved(rt, ctx, tenant, id, &out.request).await?;
    }
    Ok(out)
}

/// The request as its history has it.
pub async fn get(rt: &Runtime, tenant: Uuid, id: Uuid) -> Result<Request, BrokerError> {
    let agg = request_ref(tenant, id)?;
    let (state, _) = rt.executor.load::<RequestAggregate>(&agg).await?;
    state.ok_or_else(not_found)
}

/// `approver` approves. The vote that reaches the workflow's `min_approvers` approves the
/// request (once: a vote after it is refused as not pending) and enqueues its job.
pub async fn approve(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: Uuid,
    approver: Uuid,
    comment: String,
) -> Result<Decided, BrokerError> {
    may_decide(rt, tenant, id, approver).await?;
    let command = Command::Approve {
        approver,
        comment,
        now: Utc::now().timestamp_millis(),
    };
    let done = execute(rt, ctx, tenant, id, &command, false).await?;
    let appended = done.appended;
    let out = decided(id, done)?;
    // An approval appended on a request now approved is the one that approved it: a vote on
    // an approved request is refused, so no other commit can have.
    if appended && out.request.status == Status::Approved {
        on_approved(rt, ctx, tenant, id, &out.request).await?;
    }
    Ok(out)
}

/// Whether `approver` may vote at all: the request's workflow may ask for a role.
async fn may_decide(
    rt: &Runtime,
    tenant: Uuid,
    id: Uuid,
    approver: Uuid,
) -> Result<(), BrokerError> {
    let request = get(rt, tenant, id).await?;
    let role = &request.new.binding.approver_role;
    if !role.is_empty() && !crate::rules::holds_role(rt, tenant, approver, role).await? {
        return Err(BrokerError::NotAnApprover(role.clone()));
    }
    Ok(())
}

/// `approver` rejects, which ends the request.
pub async fn reject(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: Uuid,
    approver: Uuid,
    reason: String,
) -> Result<Decided, BrokerError> {
    may_decide(rt, tenant, id, approver).await?;
    let command = Command::Reject {
        approver,
        reason,
        now: Utc::now().timestamp_millis(),
    };
    let out = decided(id, execute(rt, ctx, tenant, id, &command, false).await?)?;
    forget_values(rt, tenant, id, &out.request).await?;
    Ok(out)
}

/// The requester withdraws its pending request.
pub async fn cancel(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: Uuid,
    actor: Uuid,
) -> Result<Decided, BrokerError> {
    let command = Command::Cancel { actor };
    let out = decided(id, execute(rt, ctx, tenant, id, &command, false).await?)?;
    forget_values(rt, tenant, id, &out.request).await?;
    Ok(out)
}

/// Destroys a patch request's key: its values in the log can never be opened again.
async fn forget_values(
    rt: &Runtime,
    tenant: Uuid,
    id: Uuid,
    request: &Request,
) -> Result<(), BrokerError> {
    if !request.new.values.is_empty() {
        rt.keys.destroy_secret(tenant, &request_secret(id)).await?;
    }
    Ok(())
}

/// What follows an approval: a patch's values become wraps for the agent, the job is
/// enqueued (under the request's id: at most one, however often this runs), then the
/// request's own key goes. Runs again from the sweep when a crash interrupted it.
pub(crate) async fn on_approved(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: Uuid,
    request: &Request,
) -> Result<(), BrokerError> {
    let job_ref =
        address::<JobAggregate>(tenant, id.to_string()).map_err(|e| BrokerError::Job(e.into()))?;
    let (job, _) = rt.executor.load::<JobAggregate>(&job_ref).await?;
    if job.is_none() {
        let wraps = patch_wraps(rt, ctx, tenant, id, request).await?;
        let n = &request.new;
        let (job_type, mut payload) = match n.kind {
            Kind::Read => ("read_secret", json!({ "keys": n.keys })),
            Kind::Patch => ("patch_secret", json!({ "wraps": wraps })),
        };
        payload["request_id"] = json!(id);
        payload["provider_type"] = json!(n.provider_type);
        payload["provider_config"] =
            serde_json::from_str(&n.provider_config).unwrap_or_else(|_| json!({}));
        payload["secret_ref"] = json!(n.secret_ref);
        payload["project_id"] = json!(n.project_id);
        payload["environment"] = json!(n.environment);
        let job = NewJob {
            job_type: job_type.into(),
            payload: payload.to_string(),
            agent_scope: "{}".into(),
            only_agent: None,
            request_id: Some(id.to_string()),
            enqueued_by: "system:requests".into(),
        };
        let ctx = correlated(ctx, &id.to_string());
        match jobs::enqueue_as(rt, &ctx, tenant, id, job).await {
            Ok(_) | Err(BrokerError::Job(CommandError::Domain(JobError::AlreadyExists))) => {}
            Err(e) => return Err(e),
        }
    }
    forget_values(rt, tenant, id, request).await
}

/// A patch's values as wraps for the agent: `[{key, wrap_id}]`.
async fn patch_wraps(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: Uuid,
    request: &Request,
) -> Result<Vec<serde_json::Value>, BrokerError> {
    let secret = request_secret(id);
    let mut out = Vec::with_capacity(request.new.values.len());
    for (i, (key, sealed)) in request.new.values.iter().enumerate() {
        let value = open_value(rt, tenant, &secret, i as u64 + 1, sealed).await?;
        let making = Making {
            request_id: id.to_string(),
            key_name: key.clone(),
            agent: Uuid::nil(),
            source: Source::Request,
            ttl_ms: match request.new.binding.wrap_ttl_approved_ms {
                ms if ms > 0 => ms,
                _ => crate::rules::APPROVED_WRAP_TTL_MS,
            },
        };
        let made = wraps::make(rt, ctx, tenant, making, &value).await?;
        out.push(json!({ "key": key, "wrap_id": made.wrap_id }));
    }
    Ok(out)
}

async fn open_value(
    rt: &Runtime,
    tenant: Uuid,
    secret: &str,
    version: u64,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, BrokerError> {
    Ok(rt.keys.open(tenant, secret, version, sealed).await?)
}

/// The request's job ended: the request is executed or failed (once; a report repeated
/// changes nothing). Answers where that was recorded, if it was.
pub async fn finish(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: Uuid,
    succeeded: bool,
    error: String,
) -> Result<Option<u64>, BrokerError> {
    let now = Utc::now().timestamp_millis();
    // An executed patch begins its GitOps watches in the same commit.
    let watches = if succeeded && rt.config.gitops_enabled {
        match get(rt, tenant, id).await {
            Ok(r) if r.status == Status::Approved => {
                gitops_watch::watches(rt, tenant, id, &r, now).await?
            }
            Ok(_) | Err(BrokerError::Request(CommandError::Domain(RequestError::NotFound))) => {
                Vec::new()
            }
            Err(e) => return Err(e),
        }
    } else {
        Vec::new()
    };
    let command = Command::Finish {
        succeeded,
        error,
        watches,
        now,
    };
    match execute(rt, ctx, tenant, id, &command, false).await {
        Ok(done) => Ok(done.appended.then_some(done.position)),
        // A job enqueued by hand with a request id that names no request of ours.
        Err(BrokerError::Request(CommandError::Domain(
            RequestError::NotFound | RequestError::NotApproved(_),
        ))) => Ok(None),
        Err(e) => Err(e),
    }
}

/// An agent reports how its job went; the job of an access request ends its request
/// (executed or failed). Answers the position of the last commit. (The request's pass
/// finishes it after a crash between the two.)
pub async fn complete_job(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    agent: Uuid,
    job: Uuid,
    succeeded: bool,
    error: String,
) -> Result<u64, BrokerError> {
    let (ended, mut position) =
        jobs::complete(rt, ctx, tenant, agent, job, succeeded, error).await?;
    let Some(j) = ended else {
        return Ok(position);
    };
    let request = j.new.request_id.as_deref().map(Uuid::parse_str);
    if let (Some(Ok(request)), Some(succeeded)) = (request, job_outcome(j.status)) {
        let ctx = correlated(ctx, &request.to_string());
        if let Some(p) = finish(rt, &ctx, tenant, request, succeeded, j.error.clone()).await? {
            position = p;
        }
    }
    Ok(position)
}

/// What ending a job means for its request, if the job carries one.
pub(crate) fn job_outcome(status: JobStatus) -> Option<bool> {
    match status {
        JobStatus::Succeeded => Some(true),
        JobStatus::Failed | JobStatus::Expired => Some(false),
        JobStatus::Queued | JobStatus::Claimed => None,
    }
}
