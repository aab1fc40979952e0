//! A tenant's approval rules (workflows and policies): edited by administrators, read whole
//! from their one history (cached by the executor), and asked at each submission which
//! workflow a request is bound to.

use crate::BrokerError;
use aegis_broker::requests::Binding;
use aegis_broker::rules::{Command, Rules, RulesAggregate, Target};
use aegis_runtime::command::CommandContext;
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_streams::AggregateRef;
use uuid::Uuid;

/// The identity read model, where role assignments are looked up.
const IDENTITY: &str = "identity";
/// The integrations read model, where webhooks (notification channels) are.
const INTEGRATIONS: &str = "integrations";

/// How long a pending request waits for its approvals when no workflow says.
pub const DEFAULT_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long the wraps made from an approved patch wait for the agent, when no workflow says.
pub const APPROVED_WRAP_TTL_MS: i64 = 3600 * 1000;

/// The approval rules of a tenant with no default workflow, for a request no policy matches:
/// one approver other than the requester, a justification, a week to decide.
pub fn default_binding() -> Binding {
    Binding {
        workflow_id: "default".into(),
        min_approvers: 1,
        allow_self_approval: false,
        require_justification: true,
        ttl_ms: DEFAULT_TTL_MS,
        approver_role: String::new(),
        wrap_ttl_approved_ms: APPROVED_WRAP_TTL_MS,
        break_glass: Vec::new(),
        // The agent's own choice: part 1's wraps without a workflow keep their TTL.
        wrap_ttl_claimed_ms: 0,
    }
}

fn rules_ref(tenant: Uuid) -> Result<AggregateRef, BrokerError> {
    address::<RulesAggregate>(tenant, tenant.to_string()).map_err(|e| BrokerError::Rules(e.into()))
}

/// The tenant's rules as their history has them.
pub async fn get(rt: &Runtime, tenant: Uuid) -> Result<Rules, BrokerError> {
    let (rules, _) = rt
        .executor
        .load::<RulesAggregate>(&rules_ref(tenant)?)
        .await?;
    Ok(rules)
}

/// Applies an edit; answers the rules after it and the commit's position.
pub async fn edit(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    command: Command,
) -> Result<(Rules, u64), BrokerError> {
    let done = rt
        .executor
        .execute::<RulesAggregate>(&rules_ref(tenant)?, &command, ctx, false)
        .await?;
    Ok((done.state, done.position))
}

/// The approval rules a request for `target` is bound to: its workflow's (see
/// [`Rules::workflow_for`]), or the built-in ones when the tenant has neither a matching
/// policy nor a default workflow.
pub async fn binding_for(
    rt: &Runtime,
    tenant: Uuid,
    target: &Target,
) -> Result<Binding, BrokerError> {
    let rules = get(rt, tenant).await?;
    Ok(match rules.workflow_for(target) {
        Some((id, w)) => w.binding(id),
        None => default_binding(),
    })
}

/// Whether `user` holds `role` in `tenant` (an approver role a workflow names). The read
/// model is brought up to the log before answering no, so a role just assigned counts.
pub async fn holds_role(
    rt: &Runtime,
    tenant: Uuid,
    user: Uuid,
    role: &str,
) -> Result<bool, BrokerError> {
    for caught_up in [false, true] {
        if caught_up {
            rt.read_models_caught_up(&[IDENTITY]).await?;
        }
        let (held,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM user_roles WHERE tenant_id = $1 AND user_id = $2 AND role_id = $3)",
        )
        .bind(tenant)
        .bind(user)
        .bind(role)
        .fetch_one(&rt.pool)
        .await?;
        if held {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Of `channels` (webhook ids), those that are not the tenant's live webhooks.
pub async fn unknown_channels(
    rt: &Runtime,
    tenant: Uuid,
    channels: &[String],
) -> Result<Vec<String>, BrokerError> {
    let ids: Vec<Uuid> = channels
        .iter()
        .filter_map(|c| Uuid::parse_str(c).ok())
        .collect();
    let mut unknown = Vec::new();
    for caught_up in [false, true] {
        if caught_up {
            rt.read_models_caught_up(&[INTEGRATIONS]).await?;
        }
        let known: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT id FROM webhooks WHERE tenant_id = $1 AND id = ANY($2) AND NOT deleted",
        )
        .bind(tenant)
        .bind(&ids)
        .fetch_all(&rt.pool)
        .await?;
        unknown = channels
            .iter()
            .filter(|c| !known.iter().any(|(k,)| k.to_string() == **c))
            .cloned()
            .collect();
        if unknown.is_empty() {
            break;
        }
    }
    Ok(unknown)
}
