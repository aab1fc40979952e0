//! What a rule matches against: an event's payload as JSON, with its envelope's fields beside
//! it. The reactor and the simulator build it the same way, so a simulation matches what the
//! reactor would.

use aegis_schemas::envelope::v1::Envelope;
use serde_json::{json, Value};

/// The event as rules see it: its payload, with the envelope's fields beside it.
pub fn document(env: &Envelope) -> Value {
    let mut doc = aegis_schemas::events::payload_json(&env.event_type, &env.payload)
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let actor = env.actor.clone().unwrap_or_default();
    for (k, v) in [
        ("event_type", json!(env.event_type)),
        ("context", json!(env.context)),
        ("aggregate_type", json!(env.aggregate_type)),
        ("aggregate_id", json!(env.aggregate_id)),
        ("actor", json!(actor.subject)),
        ("actor_kind", json!(actor.kind)),
    ] {
        doc[k] = v;
    }
    doc
}
