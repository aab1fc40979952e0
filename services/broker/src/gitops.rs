//! GitOps integrations (seed 004, behind `AEGIS_GITOPS_ENABLED`): Argo CD endpoints, added
//! with a write-once token sealed at once, their URL through the SSRF guard, and the
//! applications they hold, read with GET (the only method Aegis ever sends to Argo CD).

use crate::BrokerError;
use aegis_broker::gitops::{Command, GitOps, GitOpsAggregate, GitOpsError};
use aegis_runtime::command::{CommandContext, CommandError};
use aegis_runtime::egress::{self, SystemResolver};
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_streams::AggregateRef;
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
#[serde(default)]
struct AppStatus {
    sync: Status,
    health: Status,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    status: String,
}

/// The applications an enabled endpoint holds: `GET <url>/api/v1/applications` with its
/// token, through the SSRF guard, the answer bounded.
pub async fn discovered_apps(
    rt: &Runtime,
    tenant: Uuid,
    id: Uuid,
) -> Result<Vec<App>, BrokerError> {
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
    let token = String::from_utf8_lossy(&token).into_owned();
    let url = format!("{}/api/v1/applications", e.url.trim_end_matches('/'));
    let client = egress::http_client(&SystemResolver, rt.config.egress(), &url, TIMEOUT)
        .await
        .map_err(|e| BrokerError::Egress(e.to_string()))?;
    let answer = client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .map_err(|e| {
            BrokerError::Upstream(
                format!("argo cd cannot be reached: {}", e.without_url()),
                502,
            )
        })?;
    if !answer.status().is_success() {
        return Err(BrokerError::Upstream(
            format!("argo cd answered {}", answer.status()),
            502,
        ));
    }
    let list: AppList = egress::read_json(answer)
        .await
        .map_err(|e| BrokerError::Upstream(format!("argo cd's answer: {e}"), 502))?;
    Ok(list
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|a| App {
            name: a.metadata.name,
            namespace: a.metadata.namespace,
            project: a.spec.project,
            sync_status: a.status.sync.status,
            health_status: a.status.health.status,
        })
        .collect())
}
