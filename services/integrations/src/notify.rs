//! What the auto-response `notify` action hands its message to.

use aegis_projectors::integrations::IntegrationsProjection;
use aegis_projectors::Projection;
use aegis_runtime::Runtime;
use uuid::Uuid;

/// How many enabled webhooks of the tenant would take a `notify` on `channel` (any, when
/// empty): what the auto-response action reports when it hands its message over.
pub async fn notify_targets(state: &Runtime, tenant: Uuid, channel: &str) -> Result<i64, String> {
    // Read once the read model holds every webhook saved before now.
    state
        .read_models_caught_up(&[IntegrationsProjection::NAME])
        .await
        .map_err(|e| e.to_string())?;
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM webhooks WHERE tenant_id = $1 AND NOT deleted AND enabled \
         AND 'auto_response.notify' = ANY(topics) AND ($2 = '' OR name = $2)",
    )
    .bind(tenant)
    .bind(channel)
    .fetch_one(&state.pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(n)
}

/// Which of `names` name no webhook of the tenant (deleted ones included as gone): what a
/// policy that notifies channels by name is refused for.
pub async fn unknown_webhooks(
    state: &Runtime,
    tenant: Uuid,
    names: &[String],
) -> Result<Vec<String>, String> {
    if names.is_empty() {
        return Ok(vec![]);
    }
    state
        .read_models_caught_up(&[IntegrationsProjection::NAME])
        .await
        .map_err(|e| e.to_string())?;
    let known: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM webhooks WHERE tenant_id = $1 AND NOT deleted AND name = ANY($2)",
    )
    .bind(tenant)
    .bind(names)
    .fetch_all(&state.pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(names
        .iter()
        .filter(|n| !known.iter().any(|(k,)| k == *n))
        .cloned()
        .collect())
}
