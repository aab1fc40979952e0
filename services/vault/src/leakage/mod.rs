//! Seed 003's leakage detection, the application side: policies and incidents recorded
//! through their deciders, scans queued here and run by the leak-scan reactor
//! (`run::run_scan`), which reads real bytes (`sources`), matches candidates against the
//! tenant's keyed fingerprints (`crate::fingerprints`) and acts on what it finds through the vault
//! (rotation, retirement), each step on the incident's timeline.

pub mod findings;
pub mod hosting;
pub mod run;
pub mod sources;

use aegis_runtime::command::{CommandContext, CommandError, Outcome};
use aegis_runtime::keys::KeyError;
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_vault::leakage::incident::{
    Incident, IncidentCommand, IncidentError, LeakIncidentAggregate, NewIncident, StatusChange,
};
use aegis_vault::leakage::policy::{
    LeakPolicyAggregate, NewPolicy, Policy, PolicyCommand, PolicyError,
};
use aegis_vault::leakage::scan::{LeakScanAggregate, Scan, ScanCommand, ScanError, ScanRequest};
use uuid::Uuid;

/// Repositories plus pages one scan may name.
pub const MAX_SCAN_TARGETS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum LeakError {
    #[error(transparent)]
    Policy(#[from] CommandError<PolicyError>),
    #[error(transparent)]
    Incident(#[from] CommandError<IncidentError>),
    #[error(transparent)]
    Scan(#[from] CommandError<ScanError>),
    #[error("leakage policy not found: {0}")]
    NoPolicy(String),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

async fn execute<A: aegis_kernel::Aggregate>(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: &str,
    command: &A::Command,
) -> Result<Outcome<A::State>, CommandError<A::Error>> {
    let agg = address::<A>(tenant, id)?;
    rt.executor.execute::<A>(&agg, command, ctx, false).await
}

/// Records a new policy; answers its id and the commit's position.
pub async fn create_policy(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    policy: NewPolicy,
) -> Result<(String, Policy, u64), LeakError> {
    let id = Uuid::now_v7().to_string();
    let done = execute::<LeakPolicyAggregate>(rt, ctx, tenant, &id, &PolicyCommand::Create(policy))
        .await?;
    let state = done.state.ok_or_else(|| LeakError::NoPolicy(id.clone()))?;
    Ok((id, state, done.position))
}

pub async fn delete_policy(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: &str,
) -> Result<u64, LeakError> {
    Ok(
        execute::<LeakPolicyAggregate>(rt, ctx, tenant, id, &PolicyCommand::Delete)
            .await?
            .position,
    )
}

/// A policy that exists and is not deleted.
pub async fn policy(rt: &Runtime, tenant: Uuid, id: &str) -> Result<Policy, LeakError> {
    let (state, _, _) = rt.current::<LeakPolicyAggregate>(tenant, id).await?;
    state
        .filter(|p| !p.deleted)
        .ok_or_else(|| LeakError::NoPolicy(id.into()))
}

/// Records an incident reported by hand.
pub async fn report(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    incident: NewIncident,
) -> Result<(String, Incident, u64), LeakError> {
    let id = Uuid::now_v7().to_string();
    let done =
        execute::<LeakIncidentAggregate>(rt, ctx, tenant, &id, &IncidentCommand::Report(incident))
            .await?;
    let state = done
        .state
        .ok_or(CommandError::Domain(IncidentError::NotFound))?;
    Ok((id, state, done.position))
}

/// Triage; answers the incident, the commit's position and the incident's version.
pub async fn set_status(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: &str,
    change: StatusChange,
) -> Result<(Incident, u64, u64), LeakError> {
    let done =
        execute::<LeakIncidentAggregate>(rt, ctx, tenant, id, &IncidentCommand::SetStatus(change))
            .await?;
    let state = done
        .state
        .ok_or(CommandError::Domain(IncidentError::NotFound))?;
    Ok((state, done.position, done.version))
}

/// Normalises a repository named in a scan: a URL stays as it is; `owner/name` under the
/// `github` or `gitlab` target becomes that service's clone URL.
pub fn repository_url(target: Option<&str>, repo: &str) -> Result<String, LeakError> {
    let invalid = |reason: String| LeakError::Invalid {
        field: "scope.repositories",
        reason,
    };
    if repo.contains("://") {
        aegis_runtime::egress::parse_url(repo).map_err(|e| invalid(e.to_string()))?;
        return Ok(repo.to_string());
    }
    let short = repo.split('/').count() == 2
        && repo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !repo.contains("..");
    match (target, short) {
        (Some("github"), true) => Ok(format!("https://github.com/{repo}.git")),
        (Some("gitlab"), true) => Ok(format!("https://gitlab.com/{repo}.git")),
        _ => Err(invalid(format!(
            "`{repo}` is neither an http(s) URL nor owner/name under a github or gitlab target"
        ))),
    }
}

/// Queues a scan after checking everything it names: its policies exist, its repositories
/// and pages are URLs this server may fetch. Answers the scan's id and the commit's position.
pub async fn queue_scan(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    request: ScanRequest,
) -> Result<(String, Scan, u64), LeakError> {
    if request.total() == 0 {
        return Err(LeakError::Invalid {
            field: "scope",
            reason: "name at least one repository (scope.repositories), organization (scope.organizations) or page (scope.urls)".into(),
        });
    }
    if request.total() > MAX_SCAN_TARGETS {
        return Err(LeakError::Invalid {
            field: "scope",
            reason: format!(
                "a scan reads at most {MAX_SCAN_TARGETS} repositories, organizations and pages"
            ),
        });
    }
    for url in &request.urls {
        aegis_runtime::egress::parse_url(url).map_err(|e| LeakError::Invalid {
            field: "scope.urls",
            reason: e.to_string(),
        })?;
    }
    for id in &request.policy_ids {
        policy(rt, tenant, id).await?;
    }
    let id = Uuid::now_v7().to_string();
    let done =
        execute::<LeakScanAggregate>(rt, ctx, tenant, &id, &ScanCommand::Queue(request)).await?;
    let state = done
        .state
        .ok_or(CommandError::Domain(ScanError::NotFound))?;
    Ok((id, state, done.position))
}
