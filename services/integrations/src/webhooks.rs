//! What a webhook receives, in each vendor's documented wire format, and one delivery of it:
//! - Slack incoming webhooks: `{"text", "blocks"}` (Block Kit), answered `200 ok`;
//! - PagerDuty Events API v2: `trigger`, `acknowledge` and `resolve` with `dedup_key` = the
//!   incident id, answered `202`;
//! - generic: Aegis JSON signed with HMAC-SHA256 over `<timestamp>.<body>` (README, "Webhook
//!   signatures").
//!
//! Every attempt dials through the SSRF guard again, so a name that moved to a private address
//! after the webhook was saved is refused, and no redirect is ever followed.

use aegis_integrations::webhooks::{secret_name, SealedSecrets, Topic, WebhookKind};
use aegis_runtime::egress::{self, SystemResolver};
use aegis_runtime::Runtime;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(10);
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

pub mod headers {
    pub const SIGNATURE: &str = "X-Aegis-Signature";
    pub const TIMESTAMP: &str = "X-Aegis-Timestamp";
    pub const EVENT_ID: &str = "X-Aegis-Event-Id";
    pub const TOPIC: &str = "X-Aegis-Topic";
}

/// A webhook's secrets, as sealed into its events.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Secrets {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

impl Secrets {
    pub async fn seal(
        &self,
        state: &Runtime,
        tenant: Uuid,
        webhook: &str,
        version: u64,
    ) -> Result<SealedSecrets, aegis_runtime::keys::KeyError> {
        crate::seal_json(state, tenant, &secret_name(webhook), version, self).await
    }

    pub async fn open(
        state: &Runtime,
        tenant: Uuid,
        webhook: &str,
        sealed: &SealedSecrets,
    ) -> Result<Secrets, aegis_runtime::keys::KeyError> {
        crate::open_json(state, tenant, &secret_name(webhook), sealed).await
    }
}

/// One thing to tell a webhook, vendor-neutral: what the fan-out derives from an event and
/// what a dead letter keeps (no secrets in it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub topic: Topic,
    /// Downstream dedupe key: the event id, suffixed with the action index for a rule's
    /// `notify` actions.
    pub key: String,
    pub event_id: String,
    pub event_type: String,
    pub position: u64,
    pub occurred_at: DateTime<Utc>,
    pub title: String,
    pub severity: String,
    pub message: String,
    /// The incident (or run) a PagerDuty alert is about; repeated triggers with it fold
    /// into one alert and `resolve` closes it.
    pub dedup_key: String,
    /// incident_id, status, agent_id, rule_id, run_id: whatever the event has.
    pub details: Value,
}

/// A webhook ready to deliver to: its definition and opened secrets.
pub struct Target {
    pub id: Uuid,
    pub name: String,
    pub kind: WebhookKind,
    pub secrets: Secrets,
}

/// A request as it goes on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Slack's mrkdwn treats these three as control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn pagerduty_severity(s: &str) -> &'static str {
    match s {
        "critical" => "critical",
        "high" => "error",
        "medium" => "warning",
        _ => "info",
    }
}

/// HMAC-SHA256 over `<timestamp>.<body>`, hex, as `v1=<hex>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The request `target` gets for `n`, or `None` when its vendor has nothing for this topic
/// (PagerDuty has no message for a status change other than acknowledge).
pub fn render(target: &Target, n: &Notification, tenant: Uuid, now: i64) -> Option<Request> {
    let json_header = ("Content-Type", "application/json".to_string());
    match target.kind {
        WebhookKind::Slack => {
            let mut blocks = vec![
                json!({"type": "header", "text": {"type": "plain_text", "text": cut(&n.title, 150)}}),
                json!({"type": "section", "fields": [
                    {"type": "mrkdwn", "text": format!("*Severity*\n{}", slack_escape(&n.severity))},
                    {"type": "mrkdwn", "text": format!("*Event*\n{}", slack_escape(&n.event_type))},
                ]}),
            ];
            if !n.message.is_empty() {
                blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&slack_escape(&n.message), 3000)}}));
            }
            blocks.push(json!({"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("Aegis · {} · {}", n.topic, slack_escape(&n.dedup_key))},
            ]}));
            let body = json!({
                "text": format!("[{}] {}", n.severity, slack_escape(&n.title)),
                "blocks": blocks,
            });
            Some(Request {
                url: target.secrets.url.clone(),
                headers: vec![json_header],
                body: body.to_string().into_bytes(),
            })
        }
        WebhookKind::Pagerduty => {
            let routing_key = target.secrets.routing_key.clone().unwrap_or_default();
            let action = match (n.topic, n.details.get("status").and_then(Value::as_str)) {
                (
                    Topic::IncidentOpened
                    | Topic::AutoResponseNotify
                    | Topic::LeakDetected
                    | Topic::AccessBreakGlass,
                    _,
                ) => "trigger",
                (Topic::IncidentResolved, _) => "resolve",
                (Topic::IncidentStatusChanged, Some("acknowledged")) => "acknowledge",
                (Topic::IncidentStatusChanged, _) => return None,
            };
            let body = if action == "trigger" {
                json!({
                    "routing_key": routing_key,
                    "event_action": action,
                    "dedup_key": n.dedup_key,
                    "payload": {
                        "summary": cut(&n.title, 1024),
                        "source": "aegis",
                        "severity": pagerduty_severity(&n.severity),
                        "timestamp": n.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        "component": n.topic.as_str(),
                        "custom_details": {
                            "message": n.message,
                            "event_id": n.event_id,
                            "event_type": n.event_type,
                            "details": n.details,
                        },
                    },
                    "client": "Aegis",
                })
            } else {
                json!({"routing_key": routing_key, "event_action": action, "dedup_key": n.dedup_key})
            };
            Some(Request {
                url: target.secrets.url.clone(),
                headers: vec![json_header],
                body: body.to_string().into_bytes(),
            })
        }
        WebhookKind::Generic => {
            let body = json!({
                "id": n.key,
                "topic": n.topic.as_str(),
                "tenant_id": tenant,
                "event_id": n.event_id,
                "event_type": n.event_type,
                "position": n.position,
                "occurred_at": n.occurred_at,
                "title": n.title,
                "severity": n.severity,
                "message": n.message,
                "dedup_key": n.dedup_key,
                "details": n.details,
            })
            .to_string()
            .into_bytes();
            Some(signed(
                &target.secrets,
                &n.key,
                n.topic.as_str(),
                "application/json",
                body,
                now,
            ))
        }
    }
}

/// A generic webhook's request: `body` signed over `<now>.<body>` with its secret.
pub fn signed(
    secrets: &Secrets,
    key: &str,
    topic: &str,
    content_type: &str,
    body: Vec<u8>,
    now: i64,
) -> Request {
    let secret = secrets.signing_secret.clone().unwrap_or_default();
    Request {
        url: secrets.url.clone(),
        headers: vec![
            ("Content-Type", content_type.to_string()),
            (headers::EVENT_ID, key.to_string()),
            (headers::TOPIC, topic.to_string()),
            (headers::TIMESTAMP, now.to_string()),
            (headers::SIGNATURE, signature(&secret, now, &body)),
        ],
        body,
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered(u16),
    /// Worth another try: a network error, a timeout, 408, 429 or 5xx.
    Retry(Option<u16>, String),
    /// Another try would end the same: refused by the SSRF guard, a redirect, another 4xx.
    Permanent(Option<u16>, String),
}

impl Attempt {
    /// What the receiver answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Attempt::Delivered(s) => Some(*s),
            Attempt::Retry(s, _) | Attempt::Permanent(s, _) => *s,
        }
    }

    /// Why it failed; `None` when delivered.
    pub fn error(&self) -> Option<&str> {
        match self {
            Attempt::Delivered(_) => None,
            Attempt::Retry(_, e) | Attempt::Permanent(_, e) => Some(e),
        }
    }
}

pub async fn send(state: &Runtime, request: &Request) -> Attempt {
    let client = match egress::http_client(
        &SystemResolver,
        state.config.egress(),
        &request.url,
        TIMEOUT,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return Attempt::Permanent(None, e.to_string()),
    };
    let mut call = client.post(&request.url).body(request.body.clone());
    for (name, value) in &request.headers {
        call = call.header(*name, value);
    }
    match call.send().await {
        Ok(r) => {
            let status = r.status();
            let code = status.as_u16();
            if status.is_success() {
                Attempt::Delivered(code)
            } else if status.is_server_error() || code == 408 || code == 429 {
                Attempt::Retry(Some(code), format!("the receiver answered {code}"))
            } else if status.is_redirection() {
                Attempt::Permanent(
                    Some(code),
                    format!("the receiver answered {code}; redirects are not followed"),
                )
            } else {
                Attempt::Permanent(Some(code), format!("the receiver answered {code}"))
            }
        }
        // The URL (it may carry a token) stays out of the message.
        Err(e) => Attempt::Retry(None, e.without_url().to_string()),
    }
}

/// What a delivery came to after all its attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub attempts: i64,
    pub outcome: Attempt,
}

/// The retry policy of every outbound delivery: exponential backoff from
/// `AEGIS_WEBHOOK_BACKOFF_MS` up to 30 s, full jitter, at most `AEGIS_WEBHOOK_ATTEMPTS`
/// attempts.
pub fn retry_policy(state: &Runtime) -> aegis_runtime::retry::RetryPolicy {
    aegis_runtime::retry::RetryPolicy {
        max_attempts: state.config.webhook_attempts,
        base: Duration::from_millis(state.config.webhook_backoff_ms),
        max: Duration::from_secs(30),
    }
}

/// Delivers a notification with retries; `None` when the webhook's vendor has nothing for
/// its topic. A delivery that fails for good counts as `dead_lettered`: the fan-out files it.
pub async fn deliver(
    state: &Runtime,
    tenant: Uuid,
    target: &Target,
    n: &Notification,
) -> Option<Delivery> {
    // Rendered per attempt: a generic signature's timestamp is the time it is sent.
    let request = |now| render(target, n, tenant, now);
    let what = target.id.to_string();
    with_retries(state, tenant, target.kind, "dead_lettered", &what, request).await
}

/// Sends the request `make` builds for each attempt (given the time it is sent) with the
/// retry policy, counting every outcome in `acp_webhook_delivery_total` under `kind`, and
/// the final failure as `gave_up`. Ends delivered, or with the last failure; `None` when
/// `make` has nothing to send.
pub async fn with_retries(
    state: &Runtime,
    tenant: Uuid,
    kind: WebhookKind,
    gave_up: &'static str,
    what: &str,
    make: impl Fn(i64) -> Option<Request>,
) -> Option<Delivery> {
    let policy = retry_policy(state);
    let kind = kind.as_str();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let request = make(Utc::now().timestamp())?;
        let outcome = send(state, &request).await;
        match &outcome {
            Attempt::Delivered(_) => {
                state.metrics.deliveries.add(tenant, kind, "delivered", 1);
            }
            Attempt::Retry(_, e) if attempts < policy.max_attempts => {
                state.metrics.deliveries.add(tenant, kind, "retried", 1);
                let wait = policy.delay(attempts, &mut rand::thread_rng());
                tracing::info!(to = what, attempts, error = %e, retry_in_ms = wait.as_millis() as u64, "delivery failed; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            Attempt::Retry(..) | Attempt::Permanent(..) => {
                state.metrics.deliveries.add(tenant, kind, gave_up, 1);
            }
        }
        return Some(Delivery { attempts, outcome });
    }
}

/// Sends Slack a test message at `url` (seed 000's `POST /webhooks/test/slack`), saying who
/// asked, and answers what Slack said.
pub async fn test_slack(state: &Runtime, tenant: Uuid, url: String, asked_by: &str) -> Attempt {
    let target = Target {
        id: Uuid::nil(),
        name: "test".into(),
        kind: WebhookKind::Slack,
        secrets: Secrets {
            url,
            ..Default::default()
        },
    };
    let now = chrono::Utc::now();
    let n = Notification {
        topic: Topic::IncidentOpened,
        key: format!("test-{}", Uuid::now_v7()),
        event_id: String::new(),
        event_type: "webhook.test".into(),
        position: 0,
        occurred_at: now,
        title: "Aegis test message".into(),
        severity: "low".into(),
        message: format!("Sent by {asked_by} to check this webhook."),
        dedup_key: "test".into(),
        details: serde_json::Value::Null,
    };
    match render(&target, &n, tenant, now.timestamp()) {
        Some(request) => send(state, &request).await,
        // Slack renders every topic; an empty rendering would be a defect, reported as such.
        None => Attempt::Permanent(None, "nothing to send for this topic".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(topic: Topic) -> Notification {
        Notification {
            topic,
            key: "evt-1".into(),
            event_id: "evt-1".into(),
            event_type: "incident.opened.v1".into(),
            position: 7,
            occurred_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            title: "Prompt injection <script>".into(),
            severity: "high".into(),
            message: "agent a-1 & friends".into(),
            dedup_key: "inc-1".into(),
            details: json!({"incident_id": "inc-1", "status": "open"}),
        }
    }

    fn target(kind: WebhookKind) -> Target {
        Target {
            id: Uuid::nil(),
            name: "ops".into(),
            kind,
            secrets: Secrets {
                url: "https://hooks.example/x".into(),
                routing_key: Some("R0UTING".into()),
                signing_secret: Some("whsec_test".into()),
            },
        }
    }

    fn body(r: &Request) -> Value {
        serde_json::from_slice(&r.body).expect("json body")
    }

    #[test]
    fn slack_gets_blocks_with_its_control_characters_escaped() {
        let r = render(
            &target(WebhookKind::Slack),
            &notification(Topic::IncidentOpened),
            Uuid::nil(),
            0,
        )
        .expect("a request");
        let b = body(&r);
        assert_eq!(b["blocks"][0]["type"], "header");
        assert_eq!(b["blocks"][0]["text"]["type"], "plain_text");
        assert_eq!(b["blocks"][2]["text"]["text"], "agent a-1 &amp; friends");
        assert!(b["text"]
            .as_str()
            .is_some_and(|t| t.contains("&lt;script&gt;")));
    }

    #[test]
    fn pagerduty_triggers_resolves_and_skips_what_it_has_no_word_for() {
        let pd = target(WebhookKind::Pagerduty);
        let opened = body(
            &render(&pd, &notification(Topic::IncidentOpened), Uuid::nil(), 0).expect("trigger"),
        );
        assert_eq!(opened["event_action"], "trigger");
        assert_eq!(opened["dedup_key"], "inc-1");
        assert_eq!(opened["routing_key"], "R0UTING");
        assert_eq!(opened["payload"]["severity"], "error");
        assert_eq!(opened["payload"]["source"], "aegis");
        let resolved = body(
            &render(&pd, &notification(Topic::IncidentResolved), Uuid::nil(), 0).expect("resolve"),
        );
        assert_eq!(
            resolved,
            json!({"routing_key": "R0UTING", "event_action": "resolve", "dedup_key": "inc-1"})
        );
        assert!(render(
            &pd,
            &notification(Topic::IncidentStatusChanged),
            Uuid::nil(),
            0
        )
        .is_none());
    }

    #[test]
    fn a_generic_delivery_is_signed_over_timestamp_and_body() {
        let r = render(
            &target(WebhookKind::Generic),
            &notification(Topic::IncidentOpened),
            Uuid::nil(),
            1_700_000_123,
        )
        .expect("a request");
        let header = |name: &str| {
            r.headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(header(headers::TIMESTAMP), "1700000123");
        assert_eq!(header(headers::EVENT_ID), "evt-1");
        // Recomputed by hand, as the README tells a receiver to.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"whsec_test").expect("key");
        mac.update(format!("1700000123.{}", String::from_utf8_lossy(&r.body)).as_bytes());
        assert_eq!(
            header(headers::SIGNATURE),
            format!("v1={}", hex::encode(mac.finalize().into_bytes()))
        );
        assert_ne!(
            signature("other", 1_700_000_123, &r.body),
            header(headers::SIGNATURE),
            "another secret signs differently"
        );
    }
}
