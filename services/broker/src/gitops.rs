//! GitOps integrations (seed 004, behind `AEGIS_GITOPS_ENABLED`): Argo CD endpoints, added
//! with a write-once token sealed at once, their URL through the SSRF guard, and the
//! applications they hold, read with GET (the only method Aegis ever sends to Argo CD).

use crate::BrokerError;
use aegis_broker::gitops::{Command, GitOps, GitOpsAggregate, GitOpsError, Mapping};
use aegis_broker::requests::observations::{Seen, Watch};
use aegis_runtime::command::{CommandContext, CommandError};
use aegis_runtime::egress::{self, SystemResolver};
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_streams::AggregateRef;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use std::time::Duration;
use uuid::Uuid;
use zeroize::Zeroizing;

/// How long Aegis waits for Argo CD.
const TIMEOUT: Duration = Duration::from_secs(10);

fn gitops_ref(tenant: Uuid) -> Result<AggregateRef, BrokerError> {
    address::<GitOpsAggregate>(tenant, tenant.to_string())
        .map_err(|e| BrokerError::GitOps(e.into()))
}

/// The key-store secret whose key seals an endpoint's token.
fn token_secret(id: Uuid) -> String {
    format!("broker/argocd/{id}")
}

/// The tenant's endpoints as their history has them.
pub async fn get(rt: &Runtime, tenant: Uuid) -> Result<GitOps, BrokerError> {
    let (g, _) = rt
        .executor
        .load::<GitOpsAggregate>(&gitops_ref(tenant)?)
        .await?;
    Ok(g)
}

async fn edit(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    command: Command,
) -> Result<(GitOps, u64), BrokerError> {
    let done = rt
        .executor
        .execute::<GitOpsAggregate>(&gitops_ref(tenant)?, &command, ctx, false)
        .await?;
    Ok((done.state, done.position))
}

/// Adds an endpoint: its URL must pass the SSRF guard (checked without dialling), its token
/// is sealed before anything is recorded.
pub async fn add_endpoint(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    name: String,
    url: String,
    token: Zeroizing<String>,
    enabled: bool,
) -> Result<(Uuid, GitOps, u64), BrokerError> {
    egress::check_url(&SystemResolver, rt.config.egress(), &url)
        .await
        .map_err(|e| BrokerError::Egress(e.to_string()))?;
    let id = Uuid::now_v7();
    let token = rt
        .keys
        .seal_first(tenant, &token_secret(id), token.as_bytes())
        .await?;
    let command = Command::AddEndpoint {
        id,
        name,
        url,
        enabled,
        token,
    };
    let (g, position) = edit(rt, ctx, tenant, command).await?;
    Ok((id, g, position))
}

pub async fn set_enabled(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: Uuid,
    enabled: bool,
) -> Result<u64, BrokerError> {
    Ok(edit(rt, ctx, tenant, Command::SetEnabled { id, enabled })
        .await?
        .1)
}

/// Removes an endpoint, then destroys its token's key.
pub async fn remove(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: Uuid,
) -> Result<u64, BrokerError> {
    let (_, position) = edit(rt, ctx, tenant, Command::RemoveEndpoint { id }).await?;
    rt.keys.destroy_secret(tenant, &token_secret(id)).await?;
    Ok(position)
}

/// Ties an Argo CD application to its target; answers the mapping's id.
pub async fn add_mapping(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    mapping: Mapping,
) -> Result<(Uuid, GitOps, u64), BrokerError> {
    let id = Uuid::now_v7();
    let (g, position) = edit(rt, ctx, tenant, Command::AddMapping { id, mapping }).await?;
    Ok((id, g, position))
}

pub async fn remove_mapping(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: Uuid,
) -> Result<u64, BrokerError> {
    Ok(edit(rt, ctx, tenant, Command::RemoveMapping { id })
        .await?
        .1)
}

/// An application as Argo CD lists it, reduced to what a mapping needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub name: String,
    pub namespace: String,
    pub project: String,
    pub sync_status: String,
    pub health_status: String,
}

#[derive(Deserialize)]
struct AppList {
    #[serde(default)]
    items: Option<Vec<AppItem>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AppItem {
    metadata: Named,
    spec: Spec,
    status: AppStatus,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Named {
    name: String,
    namespace: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Spec {
    project: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AppStatus {
    sync: Status,
    health: Status,
    /// RFC 3339: when Argo CD last compared the application with git.
    reconciled_at: String,
    operation_state: OperationState,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct OperationState {
    phase: String,
    finished_at: String,
}

/// What a path segment or query value may hold unescaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    status: String,
}

/// `GET <url><path>` on an endpoint with its token, through the SSRF guard: the only request
/// Aegis ever sends to Argo CD.
async fn argo_get(
    rt: &Runtime,
    tenant: Uuid,
    id: Uuid,
    path: &str,
) -> Result<reqwest::Response, BrokerError> {
    let g = get(rt, tenant).await?;
    let e = g
        .endpoints
        .get(&id)
        .ok_or(BrokerError::GitOps(CommandError::Domain(
            GitOpsError::NotFound,
        )))?;
    if !e.enabled {
        return Err(BrokerError::Upstream(
            "the endpoint is disabled: enable it to read its applications".into(),
            409,
        ));
    }
    let token = rt.keys.open(tenant, &token_secret(id), 1, &e.token).await?;
    let token = Zeroizing::new(String::from_utf8_lossy(&token).into_owned());
    let url = format!("{}{path}", e.url.trim_end_matches('/'));
    let client = egress::http_client(&SystemResolver, rt.config.egress(), &url, TIMEOUT)
        .await
        .map_err(|e| BrokerError::Egress(e.to_string()))?;
    client
        .get(&url)
        .bearer_auth(token.as_str())
        .send()
        .await
        .map_err(|e| {
            BrokerError::Upstream(
                format!("argo cd cannot be reached: {}", e.without_url()),
                502,
            )
        })
}

fn answered(answer: &reqwest::Response) -> Result<(), BrokerError> {
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(BrokerError::Upstream(
            format!("argo cd answered {}", answer.status()),
            502,
        ))
    }
}

fn app(a: AppItem) -> App {
    App {
        name: a.metadata.name,
        namespace: a.metadata.namespace,
        project: a.spec.project,
        sync_status: a.status.sync.status,
        health_status: a.status.health.status,
    }
}

/// The applications an enabled endpoint holds: `GET <url>/api/v1/applications`, the answer
/// bounded.
pub async fn discovered_apps(
    rt: &Runtime,
    tenant: Uuid,
    id: Uuid,
) -> Result<Vec<App>, BrokerError> {
    let answer = argo_get(rt, tenant, id, "/api/v1/applications").await?;
    answered(&answer)?;
    let list: AppList = egress::read_json(answer)
        .await
        .map_err(|e| BrokerError::Upstream(format!("argo cd's answer: {e}"), 502))?;
    Ok(list
        .items
        .unwrap_or_default()
        .into_iter()
        .map(app)
        .collect())
}

/// One application as a watch sees it: `GET <url>/api/v1/applications/<name>` (with
/// `appNamespace` when the mapping names one). Any failure to get an answer is `Unreachable`,
/// retried until the watch times out; only Argo CD saying it has no such application is final.
pub async fn application(rt: &Runtime, tenant: Uuid, w: &Watch) -> Seen {
    let mut path = format!(
        "/api/v1/applications/{}",
        utf8_percent_encode(&w.application_name, SEGMENT)
    );
    if !w.application_namespace.is_empty() {
        path.push_str("?appNamespace=");
        path.extend(utf8_percent_encode(&w.application_namespace, SEGMENT));
    }
    let answer = match argo_get(rt, tenant, w.endpoint_id, &path).await {
        Ok(a) => a,
        Err(e) => return Seen::Unreachable(e.to_string()),
    };
    if answer.status() == reqwest::StatusCode::NOT_FOUND {
        return Seen::Missing;
    }
    if let Err(e) = answered(&answer) {
        return Seen::Unreachable(e.to_string());
    }
    let a: AppItem = match egress::read_json(answer).await {
        Ok(a) => a,
        Err(e) => return Seen::Unreachable(format!("argo cd's answer: {e}")),
    };
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.timestamp_millis())
    };
    Seen::App {
        reconciled_at: ms(&a.status.reconciled_at),
        operation_phase: a.status.operation_state.phase.clone(),
        operation_finished_at: ms(&a.status.operation_state.finished_at),
        sync: a.status.sync.status,
        health: a.status.health.status,
    }
}
