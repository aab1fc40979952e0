//! The read flow's end: an agent hands a value over for a request (its wait capped by the
//! request's workflow), the requester sees which values wait and takes each one once.

use super::{get, Status};
use crate::wraps::{self, Created, NewPosting, Retrieved};
use crate::BrokerError;
use aegis_broker::wraps::{Source, Via};
use aegis_runtime::command::{CommandContext, CommandError};
use aegis_runtime::Runtime;
use chrono::Utc;
use uuid::Uuid;

/// The request's wraps, value-free, for its requester only.
pub async fn wraps_of(
    rt: &Runtime,
    tenant: Uuid,
    id: Uuid,
    user: Uuid,
) -> Result<Vec<WrapSummary>, BrokerError> {
    let request = get(rt, tenant, id).await?;
    if request.new.requester != user {
        return Err(BrokerError::NotRequester);
    }
    let rows: Vec<(String, String, bool, chrono::DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, key_name, retrieved_at IS NOT NULL, expires_at \
         FROM broker_wraps WHERE tenant_id = $1 AND request_id = $2 ORDER BY created_at, id",
    )
    .bind(tenant)
    .bind(id.to_string())
    .fetch_all(&rt.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, key_name, consumed, expires_at)| WrapSummary {
            id,
            key_name,
            consumed,
            expires_at,
        })
        .collect())
}

/// A wrap of a request, without its value.
#[derive(Debug)]
pub struct WrapSummary {
    pub id: String,
    pub key_name: String,
    pub consumed: bool,
    pub expires_at: chrono::DateTime<Utc>,
}

/// The read flow's end: the requester retrieves a value an agent handed over, once. Anyone
/// else is refused before the wrap is touched; a request not (or no longer) approved gets a
/// recorded refusal.
pub async fn retrieve_wrap(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: Uuid,
    wrap_id: Uuid,
    user: Uuid,
) -> Result<Retrieved, BrokerError> {
    let request = get(rt, tenant, id).await?;
    if request.new.requester != user {
        return Err(BrokerError::NotRequester);
    }
    let wrap = wraps::load(rt, tenant, wrap_id).await?;
    // A patch's own values wait for the agent that sets them: not the requester's to take.
    if wrap.new.request_id != id.to_string() || wrap.new.source == Source::Request {
        return Err(BrokerError::Wrap(CommandError::Domain(
            aegis_broker::wraps::WrapError::NotFound,
        )));
    }
    let approved = matches!(request.status, Status::Approved | Status::Executed);
    wraps::retrieve(rt, ctx, tenant, wrap_id, wrap, Via::Requester, approved).await
}

/// An agent hands over a value for a request it holds approved work on (`wraps::create`),
/// to wait no longer than the request's workflow lets a claimed job's value wait.
pub async fn post_wrap(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    agent: Uuid,
    mut posting: NewPosting,
) -> Result<Created, BrokerError> {
    if let Ok(id) = Uuid::parse_str(&posting.request_id) {
        match get(rt, tenant, id).await {
            Ok(request) => {
                let cap_ms = request.new.binding.wrap_ttl_claimed_ms;
                if cap_ms > 0 {
                    posting.ttl_secs = posting.ttl_secs.min((cap_ms as u64 / 1000).max(1));
                }
            }
            // A job enqueued by hand may carry a request id of no request (part 1).
            Err(BrokerError::Request(CommandError::Domain(
                aegis_broker::requests::RequestError::NotFound,
            ))) => {}
            Err(e) => return Err(e),
        }
    }
    wraps::create(rt, ctx, tenant, agent, posting).await
}
