//! What a rule does when it matches: actions with templated targets (`{event.agent_id}`).
//! Every action runs through a command of its own context, never a side door; an action whose
//! context does not exist yet is refused when the rule is written, never accepted and dropped.

use super::matcher::{lookup, DefinitionError};
use serde_json::{Map, Value};

word_enum!(ActionKind {
    QuarantineAgent = "quarantine_agent",
    ReleaseAgent = "release_agent",
    EngageKillSwitch = "engage_kill_switch",
    ReleaseKillSwitch = "release_kill_switch",
    OpenIncident = "open_incident",
    Notify = "notify",
    BlockIp = "block_ip",
    RotateCredential = "rotate_credential",
});

impl ActionKind {
    /// Whether the action takes a target (an agent, a credential, an address).
    fn needs_target(self) -> bool {
        matches!(
            self,
            ActionKind::QuarantineAgent
                | ActionKind::ReleaseAgent
                | ActionKind::BlockIp
                | ActionKind::RotateCredential
        )
    }

    /// Why the action cannot run here yet, if it cannot.
    fn unavailable(self) -> Option<&'static str> {
        match self {
            ActionKind::BlockIp => Some(
                "block_ip needs the edge manager (seed 002), which this deployment does not have yet",
            ),
            _ => None,
        }
    }
}

/// A string with `{event.<path>}` placeholders, checked when the rule is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    raw: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Vec<String>),
}

impl Template {
    pub fn parse(raw: &str, path: &str) -> Result<Template, DefinitionError> {
        let e = |m: &str| DefinitionError {
            path: path.to_string(),
            message: m.to_string(),
        };
        if raw.chars().count() > 1000 || raw.chars().any(char::is_control) {
            return Err(e("at most 1000 printable characters"));
        }
        let mut parts = Vec::new();
        let mut rest = raw;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..].find('}').ok_or_else(|| e("an unclosed `{`"))? + open;
            let inner = &rest[open + 1..close];
            let field = inner
                .strip_prefix("event.")
                .filter(|f| !f.is_empty() && f.split('.').all(|p| !p.is_empty()))
                .ok_or_else(|| {
                    e(&format!(
                        "`{{{inner}}}` is not a placeholder: use {{event.<field>}}"
                    ))
                })?;
            parts.push(Part::Field(field.split('.').map(str::to_string).collect()));
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(e("a `}` without its `{`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            raw: raw.to_string(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The template filled from the event; the missing field's name when it has none.
    pub fn render(&self, doc: &Value) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field(path) => match lookup(doc, path) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => out.push_str(&v.to_string()),
                    _ => return Err(path.join(".")),
                },
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub kind: ActionKind,
    pub target: Option<Template>,
    /// open_incident: title and severity; notify: message and channel.
    pub params: Map<String, Value>,
}

pub const MAX_ACTIONS: usize = 20;

impl Action {
    pub fn parse_all(value: &Value) -> Result<Vec<Action>, DefinitionError> {
        let list = value
            .as_array()
            .filter(|l| !l.is_empty() && l.len() <= MAX_ACTIONS)
            .ok_or_else(|| DefinitionError {
                path: "actions".into(),
                message: format!("expected an array of 1 to {MAX_ACTIONS} actions"),
            })?;
        list.iter()
            .enumerate()
            .map(|(i, a)| Action::parse(a, &format!("actions[{i}]")))
            .collect()
    }

    fn parse(value: &Value, path: &str) -> Result<Action, DefinitionError> {
        let e = |p: &str, m: String| DefinitionError {
            path: format!("{path}{p}"),
            message: m,
        };
        let obj = value
            .as_object()
            .ok_or_else(|| e("", "expected an object".into()))?;
        let kind_raw = obj
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| e(".type", "required: the action's type".into()))?;
        let kind = ActionKind::parse(kind_raw).ok_or_else(|| {
            e(
                ".type",
                format!(
                    "`{kind_raw}` is not an action: {}",
                    ActionKind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if let Some(why) = kind.unavailable() {
            return Err(e(".type", why.into()));
        }
        let target = match obj.get("target") {
            Some(Value::String(t)) => Some(Template::parse(t, &format!("{path}.target"))?),
            Some(_) => return Err(e(".target", "expected a string".into())),
            None if kind.needs_target() => {
                return Err(e(
                    ".target",
                    format!("{kind} needs a target, e.g. \"{{event.agent_id}}\""),
                ))
            }
            None => None,
        };
        let mut params = Map::new();
        for (k, v) in obj {
            match k.as_str() {
                "type" | "target" => {}
                "title" | "message" | "channel" | "reason" => {
                    let s = v
                        .as_str()
                        .ok_or_else(|| e(&format!(".{k}"), "expected a string".into()))?;
                    Template::parse(s, &format!("{path}.{k}"))?;
                    params.insert(k.clone(), v.clone());
                }
                "severity" => {
                    let s = v
                        .as_str()
                        .filter(|s| aegis_incidents::Severity::parse(s).is_some());
                    if s.is_none() {
                        return Err(e(
                            ".severity",
                            "expected low, medium, high or critical".into(),
                        ));
                    }
                    params.insert(k.clone(), v.clone());
                }
                other => return Err(e(&format!(".{other}"), "unknown field".into())),
            }
        }
        Ok(Action {
            kind,
            target,
            params,
        })
    }

    /// The action as it would run on this event: every template filled. An action whose
    /// template names a field the event lacks carries `skipped` instead and never runs.
    pub fn render(&self, doc: &Value) -> Value {
        let mut out = self.to_json();
        let mut fill = |key: &str, raw: &str| match Template::parse(raw, key)
            .map_err(|e| e.message)
            .and_then(|t| t.render(doc).map_err(|m| format!("the event has no `{m}`")))
        {
            Ok(v) => out[key] = Value::String(v),
            Err(why) => out["skipped"] = Value::String(why),
        };
        if let Some(t) = &self.target {
            fill("target", t.as_str());
        }
        for (k, v) in &self.params {
            if let (Some(raw), true) = (v.as_str(), k != "severity") {
                fill(k, raw);
            }
        }
        out
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("type".into(), Value::String(self.kind.as_str().into()));
        if let Some(t) = &self.target {
            o.insert("target".into(), Value::String(t.as_str().into()));
        }
        o.extend(self.params.clone());
        Value::Object(o)
    }
}

/// The distinct targets of rendered actions (what the blast-radius brake counts).
pub fn targets(rendered: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = rendered
        .iter()
        .filter(|a| a.get("skipped").is_none())
        .filter_map(|a| a.get("target").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rendering_fills_every_template_and_marks_what_cannot_run() {
        let a = Action::parse_all(&json!([
            { "type": "open_incident", "title": "Injection on {event.agent_id}", "severity": "high" },
            { "type": "quarantine_agent", "target": "{event.agent_id}" },
            { "type": "quarantine_agent", "target": "{event.missing}" },
        ]))
        .expect("parses");
        let doc = json!({ "agent_id": "a-1" });
        let out: Vec<Value> = a.iter().map(|a| a.render(&doc)).collect();
        assert_eq!(out[0]["title"], "Injection on a-1");
        assert_eq!(out[0]["severity"], "high");
        assert_eq!(out[1]["target"], "a-1");
        assert_eq!(out[2]["skipped"], "the event has no `missing`");
        assert_eq!(targets(&out), ["a-1"]);
    }

    #[test]
    fn templates_fill_from_the_event_and_name_what_is_missing() {
        let t =
            Template::parse("agent {event.agent_id} at {event.source.ip}", "t").expect("parses");
        let doc = json!({ "agent_id": "a-7", "source": { "ip": "10.0.0.1" } });
        assert_eq!(t.render(&doc).as_deref(), Ok("agent a-7 at 10.0.0.1"));
        assert_eq!(
            t.render(&json!({ "agent_id": "a" })),
            Err("source.ip".to_string())
        );
        for bad in ["{agent_id}", "{event.}", "{event.a", "x}", "{event..a}"] {
            assert!(Template::parse(bad, "t").is_err(), "{bad}");
        }
    }

    #[test]
    fn seed_000s_action_parses_and_bad_ones_name_their_path() {
        let a = Action::parse_all(
            &json!([{ "type": "quarantine_agent", "target": "{event.agent_id}" }]),
        )
        .expect("parses");
        assert_eq!(a[0].kind, ActionKind::QuarantineAgent);
        for (actions, path) in [
            (json!([]), "actions"),
            (json!([{ "type": "reboot" }]), "actions[0].type"),
            (
                json!([{ "type": "notify" }, { "type": "quarantine_agent" }]),
                "actions[1].target",
            ),
            (
                json!([{ "type": "block_ip", "target": "{event.ip}" }]),
                "actions[0].type",
            ),
            (
                json!([{ "type": "open_incident", "severity": "apocalyptic" }]),
                "actions[0].severity",
            ),
            (
                json!([{ "type": "notify", "message": "{oops}" }]),
                "actions[0].message",
            ),
            (
                json!([{ "type": "notify", "colour": "red" }]),
                "actions[0].colour",
            ),
        ] {
            assert_eq!(
                Action::parse_all(&actions).expect_err("refused").path,
                path,
                "{actions}"
            );
        }
    }
}
