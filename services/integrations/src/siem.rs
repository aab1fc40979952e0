//! What a SIEM receives: the tenant's events, as CloudEvents, in each vendor's documented
//! format (the forwarders that send them run in `aegis-reactors`).
//! - Splunk HEC: `POST <url>/services/collector/event`, `Authorization: Splunk <token>`, one
//!   JSON event object after another (`time`, `host`, `source`, `sourcetype`, `index`,
//!   `event`, `fields`);
//! - Datadog Logs: `POST <url>/api/v2/logs`, `DD-API-KEY`, a JSON array of log entries
//!   (`ddsource`, `ddtags`, `hostname`, `service`, `message`).

use crate::webhooks::{send, Attempt, Request};
use aegis_integrations::siem::{secret_name, SiemKind};
use aegis_integrations::webhooks::SealedSecrets;
use aegis_runtime::Runtime;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

/// Events per request at most (Datadog takes 1,000 entries; Splunk's default body limit is
/// 1 MB, which 500 events stay well under).
pub const BATCH: usize = 500;

/// A connection's URL and token, as sealed into its events.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SiemSecrets {
    pub url: String,
    pub token: String,
}

impl SiemSecrets {
    pub async fn seal(
        &self,
        state: &Runtime,
        tenant: Uuid,
        id: &str,
        version: u64,
    ) -> Result<SealedSecrets, aegis_runtime::keys::KeyError> {
        crate::seal_json(state, tenant, &secret_name(id), version, self).await
    }

    pub async fn open(
        state: &Runtime,
        tenant: Uuid,
        id: &str,
        sealed: &SealedSecrets,
    ) -> Result<SiemSecrets, aegis_runtime::keys::KeyError> {
        crate::open_json(state, tenant, &secret_name(id), sealed).await
    }
}

/// Where and how a batch goes.
#[derive(Debug, Clone)]
pub struct Sink {
    pub tenant: Uuid,
    pub kind: SiemKind,
    pub secrets: SiemSecrets,
    pub index: String,
    pub sourcetype: String,
}

/// Datadog's intake for a site (`datadoghq.com`, `datadoghq.eu`, `us3.datadoghq.com`, ...).
pub fn datadog_url(site: &str) -> String {
    format!("https://http-intake.logs.{site}")
}

/// The request that carries `events` (CloudEvents JSON) to the sink.
pub fn render(sink: &Sink, events: &[Value]) -> Request {
    let base = sink.secrets.url.trim_end_matches('/');
    match sink.kind {
        SiemKind::Splunk => {
            #[derive(Serialize)]
            struct Fields<'a> {
                aegis_event_id: &'a Value,
                tenant_id: Uuid,
                event_type: &'a Value,
            }
            #[derive(Serialize)]
            struct HecEvent<'a> {
                time: Option<f64>,
                host: &'static str,
                source: &'a str,
                sourcetype: &'a str,
                #[serde(skip_serializing_if = "Option::is_none")]
                index: Option<&'a str>,
                event: &'a Value,
                fields: Fields<'a>,
            }
            let source = format!("aegis:{}", sink.tenant);
            let sourcetype = if sink.sourcetype.is_empty() {
                "aegis:event"
            } else {
                &sink.sourcetype
            };
            let index = (!sink.index.is_empty()).then_some(sink.index.as_str());
            let mut body = Vec::with_capacity(events.len() * 1024);
            for e in events {
                let time = e["time"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_millis() as f64 / 1000.0);
                let entry = HecEvent {
                    time,
                    host: "aegis",
                    source: &source,
                    sourcetype,
                    index,
                    event: e,
                    fields: Fields {
                        aegis_event_id: &e["id"],
                        tenant_id: sink.tenant,
                        event_type: &e["type"],
                    },
                };
                // Serializing plain data into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut body, &entry);
                body.push(b'\n');
            }
            Request {
                url: format!("{base}/services/collector/event"),
                headers: vec![
                    ("Authorization", format!("Splunk {}", sink.secrets.token)),
                    ("Content-Type", "application/json".into()),
                ],
                body,
            }
        }
        SiemKind::Datadog => {
            let entries: Vec<Value> = events
                .iter()
                .map(|e| {
                    let context = e["source"]
                        .as_str()
                        .and_then(|s| s.rsplit('/').next())
                        .unwrap_or_default();
                    json!({
                        "ddsource": "aegis",
                        "ddtags": format!("tenant_id:{},context:{context},event_type:{}", sink.tenant, e["type"].as_str().unwrap_or_default()),
                        "hostname": "aegis",
                        "service": "aegis",
                        "message": e.to_string(),
                        "aegis": { "event_id": e["id"], "position": e["aegisposition"] },
                    })
                })
                .collect();
            Request {
                url: format!("{base}/api/v2/logs"),
                headers: vec![
                    ("DD-API-KEY", sink.secrets.token.clone()),
                    ("Content-Type", "application/json".into()),
                ],
                body: Value::Array(entries).to_string().into_bytes(),
            }
        }
    }
}

/// One push of `events`, counted in `acp_siem_push_total` (by event).
pub async fn push(state: &Runtime, sink: &Sink, events: &[Value]) -> Attempt {
    send_counted(state, sink, &render(sink, events), events.len()).await
}

pub async fn send_counted(
    state: &Runtime,
    sink: &Sink,
    request: &Request,
    events: usize,
) -> Attempt {
    let attempt = send(state, request).await;
    let result = match attempt {
        Attempt::Delivered(_) => "delivered",
        _ => "failed",
    };
    state
        .metrics
        .siem_pushes
        .add(sink.tenant, sink.kind.as_str(), result, events as u64);
    attempt
}

/// A connection row as the forwarder needs it.
#[derive(sqlx::FromRow, Clone)]
pub struct ConnectionRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub index_name: String,
    pub sourcetype: String,
    pub contexts: Vec<String>,
    pub event_types: Vec<String>,
    pub start_position: i64,
    pub agg_version: i64,
    pub secret_version: i64,
    pub secret_nonce: Vec<u8>,
    pub secret_ciphertext: Vec<u8>,
}

pub const CONNECTION_COLUMNS: &str =
    "tenant_id, id, name, kind, index_name, sourcetype, contexts, event_types, \
     start_position, agg_version, secret_version, secret_nonce, secret_ciphertext";

impl ConnectionRow {
    pub async fn sink(&self, state: &Runtime) -> Result<Sink, String> {
        let sealed = SealedSecrets {
            version: self.secret_version as u64,
            nonce: self.secret_nonce.clone(),
            ciphertext: self.secret_ciphertext.clone(),
        };
        let secrets = SiemSecrets::open(state, self.tenant_id, &self.id.to_string(), &sealed)
            .await
            .map_err(|e| format!("the connection's token cannot be opened: {e}"))?;
        Ok(Sink {
            tenant: self.tenant_id,
            kind: SiemKind::parse(&self.kind).ok_or("unknown SIEM kind")?,
            secrets,
            index: self.index_name.clone(),
            sourcetype: self.sourcetype.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(kind: SiemKind) -> Sink {
        Sink {
            tenant: Uuid::nil(),
            kind,
            secrets: SiemSecrets {
                url: "https://siem.example/".into(),
                token: "T0KEN".into(),
            },
            index: "security".into(),
            sourcetype: String::new(),
        }
    }

    fn event() -> Value {
        json!({"id": "e1", "type": "incident.opened.v1", "time": "2026-11-23T10:00:00.250Z",
               "source": "/aegis/tenants/t/incidents", "aegisposition": 9})
    }

    #[test]
    fn splunk_gets_one_hec_event_object_per_event_with_its_id() {
        let r = render(&sink(SiemKind::Splunk), &[event(), event()]);
        assert_eq!(r.url, "https://siem.example/services/collector/event");
        assert!(r
            .headers
            .contains(&("Authorization", "Splunk T0KEN".into())));
        let lines: Vec<Value> = String::from_utf8(r.body)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["time"], 1_795_428_000.25);
        assert_eq!(lines[0]["index"], "security");
        assert_eq!(lines[0]["sourcetype"], "aegis:event");
        assert_eq!(lines[0]["fields"]["aegis_event_id"], "e1");
        assert_eq!(lines[0]["event"]["id"], "e1");
    }

    #[test]
    fn datadog_gets_an_array_of_log_entries_tagged_by_context() {
        let r = render(&sink(SiemKind::Datadog), &[event()]);
        assert_eq!(r.url, "https://siem.example/api/v2/logs");
        assert!(r.headers.contains(&("DD-API-KEY", "T0KEN".into())));
        let body: Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(body[0]["ddsource"], "aegis");
        assert_eq!(
            body[0]["ddtags"],
            "tenant_id:00000000-0000-0000-0000-000000000000,context:incidents,event_type:incident.opened.v1"
        );
        let message: Value =
            serde_json::from_str(body[0]["message"].as_str().expect("string")).expect("json");
        assert_eq!(message["id"], "e1");
    }
}
