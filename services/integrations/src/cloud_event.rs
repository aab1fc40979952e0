//! The CloudEvents 1.0 form of an event (JSON event format): what SSE subscribers and SIEMs
//! receive.

use aegis_schemas::envelope::v1::Envelope;
use serde_json::{json, Value};
use uuid::Uuid;

/// The CloudEvents 1.0 form of an event (JSON event format).
pub fn cloud_event(tenant: Uuid, position: u64, env: &Envelope) -> Value {
    let actor = env.actor.clone().unwrap_or_default();
    json!({
        "specversion": "1.0",
        "id": env.event_id,
        "source": format!("/aegis/tenants/{tenant}/{}", env.context),
        "type": env.event_type,
        "subject": format!("{}/{}", env.aggregate_type, env.aggregate_id),
        "time": aegis_kernel::occurred_at(env),
        "datacontenttype": "application/json",
        "data": aegis_schemas::events::payload_json(&env.event_type, &env.payload).unwrap_or(Value::Null),
        "aegisposition": position,
        "aegisversion": env.aggregate_version,
        "aegisactor": format!("{}:{}", actor.kind, actor.subject),
        "aegiscorrelationid": env.correlation_id,
    })
}
