//! A principal's saved dashboard state (seed 000's `dashboard_state`): filters and layout,
//! one aggregate per user or key (`identity.dashboard.<kind>:<subject>`), every save a
//! version.

use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::identity::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dashboard {
    /// A JSON object; empty until the first save.
    pub state: Value,
    pub saved_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Save(pub Value);

#[derive(Debug, Clone, PartialEq)]
pub struct Saved(pub Value);

/// A save is always accepted (it was validated before); saving the same state is no change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DashboardError {}

pub struct DashboardAggregate;

impl Aggregate for DashboardAggregate {
    const CONTEXT: &'static str = "identity";
    const AGGREGATE: &'static str = "dashboard";
    type State = Dashboard;
    type Command = Save;
    type Event = Saved;
    type Error = DashboardError;

    fn decide(state: &Dashboard, cmd: &Save) -> Result<Vec<Saved>, DashboardError> {
        if state.saved_at.is_some() && state.state == cmd.0 {
            return Ok(vec![]);
        }
        Ok(vec![Saved(cmd.0.clone())])
    }

    fn evolve(_: Dashboard, event: &Saved, env: &Envelope) -> Dashboard {
        Dashboard {
            state: event.0.clone(),
            saved_at: Some(occurred_at(env)),
        }
    }

    fn encode(event: &Saved) -> NewEvent {
        NewEvent::new(
            "dashboard.saved.v1",
            pb::DashboardSaved {
                state_json: event.0.to_string(),
            }
            .encode_to_vec(),
        )
    }

    fn decode(env: &Envelope) -> Result<Saved, DecodeError> {
        match env.event_type.as_str() {
            "dashboard.saved.v1" => {
                let m = aegis_kernel::payload::<pb::DashboardSaved>(env)?;
                serde_json::from_str(&m.state_json)
                    .map(Saved)
                    .map_err(|e| DecodeError::new(env, e))
            }
            other => Err(DecodeError::new(
                env,
                format!("not a dashboard event: {other}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;
    use serde_json::json;

    #[test]
    fn saving_the_same_state_again_changes_nothing() {
        let state = json!({ "severity": ["critical"] });
        given::<DashboardAggregate>(vec![])
            .when(Save(state.clone()))
            .then(vec![Saved(state.clone())]);
        given::<DashboardAggregate>(vec![Saved(state.clone())])
            .when(Save(state))
            .then(vec![]);
    }
}
