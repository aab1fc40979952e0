//! Webhook fan-out (seed 000) against local receivers that accept only each vendor's
//! documented wire format: Slack incoming webhooks (Block Kit), PagerDuty Events API v2, and
//! the generic receiver's HMAC-SHA256 signature verified as the README tells users to.

use aegis_tests::world::{eventually, incident, serve};
use aegis_tests::TestApp;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Json;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(15);
const SLACK_PATH: &str = "/services/T0AEGIS/B0AEGIS/s3cr3tSlackT0ken";
const ROUTING_KEY: &str = "R0UTINGKEYR0UTINGKEYR0UTINGKEY12";

type Seen = Arc<Mutex<Vec<Value>>>;

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Slack incoming webhook: JSON with a `text` fallback and Block Kit `blocks`; `ok` or
/// Slack's documented `invalid_payload`.
async fn slack() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        SLACK_PATH,
        post(move |h: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let blocks_ok = v["blocks"].as_array().is_some_and(|b| {
                    !b.is_empty()
                        && b.iter().all(|x| x["type"].is_string())
                        && b[0]["type"] == "header"
                        && b[0]["text"]["type"] == "plain_text"
                });
                if !header(&h, "content-type").starts_with("application/json")
                    || !v["text"].is_string()
                    || !blocks_ok
                {
                    return (StatusCode::BAD_REQUEST, "invalid_payload");
                }
                s.lock().unwrap().push(v);
                (StatusCode::OK, "ok")
            }
        }),
    );
    (format!("{}{SLACK_PATH}", serve(app).await), seen)
}

/// PagerDuty Events API v2 `POST /v2/enqueue`: a routing key, an action, and for `trigger`
/// a payload with summary, source and one of the four severities; 202 on success.
async fn pagerduty() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/v2/enqueue",
        post(move |Json(v): Json<Value>| {
            let s = s.clone();
            async move {
                let action = v["event_action"].as_str().unwrap_or_default();
                let trigger_ok = action != "trigger"
                    || (v["payload"]["summary"].as_str().is_some_and(|x| !x.is_empty())
                        && v["payload"]["source"].is_string()
                        && ["critical", "error", "warning", "info"]
                            .contains(&v["payload"]["severity"].as_str().unwrap_or_default()));
                let ok = v["routing_key"] == ROUTING_KEY
                    && ["trigger", "acknowledge", "resolve"].contains(&action)
                    && v["dedup_key"].as_str().is_some_and(|k| !k.is_empty())
                    && trigger_ok;
                if !ok {
                    return (
                        StatusCode::BAD_REQUEST,
                        Json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["bad"]})),
                    );
                }
                let key = v["dedup_key"].clone();
                s.lock().unwrap().push(v);
                (
                    StatusCode::ACCEPTED,
                    Json(json!({"status": "success", "message": "Event processed", "dedup_key": key})),
                )
            }
        }),
    );
    (format!("{}/v2/enqueue", serve(app).await), seen)
}

/// The README's recipe: HMAC-SHA256 of `<X-Aegis-Timestamp>.<raw body>` with the signing
/// secret, hex, compared with `X-Aegis-Signature` after its `v1=`; a stale timestamp is
/// refused.
fn verify(secret: &str, h: &HeaderMap, body: &[u8]) -> bool {
    let ts = header(h, "x-aegis-timestamp");
    let Ok(t) = ts.parse::<i64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - t).abs() > 300 {
        return false;
    }
    let Some(sig) = header(h, "x-aegis-signature").strip_prefix("v1=") else {
        return false;
    };
    let Ok(sig) = hex::decode(sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// A generic receiver that answers 503 to its first `fail_first` requests, and to every
/// request while `down` is set; it accepts only correctly signed ones.
struct Generic {
    url: String,
    secret: Arc<Mutex<String>>,
    calls: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    accepted: Seen,
}

async fn generic(fail_first: usize) -> Generic {
    let secret = Arc::new(Mutex::new(String::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let accepted: Seen = Arc::default();
    let (sec, c, d, a) = (
        secret.clone(),
        calls.clone(),
        down.clone(),
        accepted.clone(),
    );
    let app = axum::Router::new().route(
        "/hook",
        post(move |h: HeaderMap, body: Bytes| {
            let (sec, c, d, a) = (sec.clone(), c.clone(), d.clone(), a.clone());
            async move {
                let n = c.fetch_add(1, Ordering::SeqCst);
                if n < fail_first || d.load(Ordering::SeqCst) {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let secret = sec.lock().unwrap().clone();
                if !verify(&secret, &h, &body) {
                    return StatusCode::UNAUTHORIZED;
                }
                let mut v: Value = serde_json::from_slice(&body).unwrap();
                v["_event_id_header"] = json!(header(&h, "x-aegis-event-id"));
                a.lock().unwrap().push(v);
                StatusCode::NO_CONTENT
            }
        }),
    );
    Generic {
        url: format!("{}/hook", serve(app).await),
        secret,
        calls,
        down,
        accepted,
    }
}

async fn spawn() -> TestApp {
    TestApp::spawn_with_config(|c| {
        c.egress_allow = vec!["127.0.0.1".into()];
        c.webhook_attempts = 3;
        c.webhook_backoff_ms = 20;
    })
    .await
}

async fn create(app: &TestApp, tenant: Uuid, body: Value) -> Value {
    let (s, b) = app
        .call(tenant, Method::POST, "/webhooks/config", Some(body))
        .await;
    assert_eq!(s, 201, "{b}");
    b["data"].clone()
}

async fn received(seen: &Seen, n: usize) -> Vec<Value> {
    let ok = eventually(WITHIN, || async { seen.lock().unwrap().len() >= n }).await;
    let all = seen.lock().unwrap().clone();
    assert!(ok, "{n} deliveries expected, got {all:?}");
    all
}

#[tokio::test]
async fn incidents_reach_slack_pagerduty_and_a_signed_generic_receiver_through_retries() {
    let (slack_url, slack_seen) = slack().await;
    let (pd_url, pd_seen) = pagerduty().await;
    let receiver = generic(2).await;
    let app = spawn().await;
    let tenant = app.create_tenant("Fanout").await;
    create(
        &app,
        tenant,
        json!({"name": "soc-slack", "kind": "slack", "url": slack_url}),
    )
    .await;
    create(
        &app,
        tenant,
        json!({"name": "oncall", "kind": "pagerduty", "routing_key": ROUTING_KEY, "url": pd_url}),
    )
    .await;
    let hook = create(
        &app,
        tenant,
        json!({"name": "siem-bridge", "kind": "generic", "url": receiver.url, "topics": ["incident.opened"]}),
    )
    .await;
    let secret = hook["signing_secret"]
        .as_str()
        .expect("generated secret shown once");
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    *receiver.secret.lock().unwrap() = secret.to_string();
    assert_eq!(hook["host"], "127.0.0.1");

    // Nothing secret is ever read back.
    let (_, listed) = app.caught_up(tenant, "/webhooks/config").await;
    let (_, one) = app
        .call(
            tenant,
            Method::GET,
            &format!("/webhooks/config/{}", hook["id"].as_str().unwrap()),
            None,
        )
        .await;
    for text in [listed.to_string(), one.to_string()] {
        for secret_part in ["s3cr3tSlackT0ken", ROUTING_KEY, secret] {
            assert!(!text.contains(secret_part), "{secret_part} leaked: {text}");
        }
    }
    assert_eq!(listed["total"], 3);
    assert!(one["data"].get("signing_secret").is_none());

    let (id, _, _) = app
        .open_incident(tenant, incident("Prompt injection <b>x</b>", "critical"))
        .await;

    let slack_msgs = received(&slack_seen, 1).await;
    assert!(slack_msgs[0]["text"]
        .as_str()
        .unwrap()
        .contains("Prompt injection &lt;b&gt;x&lt;/b&gt;"));
    let pd = received(&pd_seen, 1).await;
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["dedup_key"], id.to_string());
    assert_eq!(pd[0]["payload"]["severity"], "critical");
    // Two 503s, then the third attempt is accepted with a valid signature.
    let got = received(&receiver.accepted, 1).await;
    assert_eq!(receiver.calls.load(Ordering::SeqCst), 3);
    assert_eq!(got[0]["topic"], "incident.opened");
    assert_eq!(got[0]["details"]["incident_id"], id.to_string());
    assert_eq!(got[0]["_event_id_header"], got[0]["event_id"]);

    // Resolving resolves the PagerDuty alert by the same dedup key; the generic webhook does
    // not take resolutions.
    let r = app
        .admin(Method::PATCH, &format!("/incidents/{id}"), Some(tenant))
        .json(&json!({"status": "resolved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pd = received(&pd_seen, 2).await;
    assert_eq!(
        pd[1],
        json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": id.to_string()})
    );
    received(&slack_seen, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.accepted.lock().unwrap().len(), 1);

    let metrics = app.metrics().await;
    for result in ["delivered", "retried"] {
        let line = format!(
            "acp_webhook_delivery_total{{tenant_id=\"{tenant}\",target=\"generic\",result=\"{result}\"}}"
        );
        assert!(metrics.contains(&line), "{line} missing");
    }
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_is_dead_lettered_then_replayed_once_fixed() {
    let receiver = generic(0).await;
    receiver.down.store(true, Ordering::SeqCst);
    let app = spawn().await;
    let tenant = app.create_tenant("Flaky").await;
    let other = app.create_tenant("Other").await;
    let hook = create(
        &app,
        tenant,
        json!({"name": "bridge", "kind": "generic", "url": receiver.url, "signing_secret": "0123456789abcdef-secret"}),
    )
    .await;
    *receiver.secret.lock().unwrap() = "0123456789abcdef-secret".into();
    app.open_incident(tenant, incident("disk full", "low"))
        .await;

    let ok = eventually(WITHIN, || async {
        let (_, b) = app.call(tenant, Method::GET, "/webhooks/dlq", None).await;
        b["total"] == 1
    })
    .await;
    let (_, dlq) = app.call(tenant, Method::GET, "/webhooks/dlq", None).await;
    assert!(ok, "one dead letter expected: {dlq}");
    let letter = &dlq["data"][0];
    assert_eq!(letter["webhook_id"], hook["id"]);
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["topic"], "incident.opened");
    assert!(
        letter["error"].as_str().unwrap().contains("503"),
        "{letter}"
    );
    assert_eq!(receiver.calls.load(Ordering::SeqCst), 3);
    let dl = letter["id"].as_u64().unwrap();

    // Another tenant neither sees nor replays it.
    let (_, theirs) = app.call(other, Method::GET, "/webhooks/dlq", None).await;
    assert_eq!(theirs["total"], 0);
    let (s, _) = app
        .call(
            other,
            Method::POST,
            &format!("/webhooks/dlq/{dl}/replay"),
            None,
        )
        .await;
    assert_eq!(s, 404);

    // Still down: 502, and it stays.
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            &format!("/webhooks/dlq/{dl}/replay"),
            None,
        )
        .await;
    assert_eq!(s, 502, "{b}");
    assert_eq!(b["error"], "upstream_error");
    let (_, dlq) = app.call(tenant, Method::GET, "/webhooks/dlq", None).await;
    assert_eq!(dlq["total"], 1);

    receiver.down.store(false, Ordering::SeqCst);
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            &format!("/webhooks/dlq/{dl}/replay"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["delivered"], true);
    let got = received(&receiver.accepted, 1).await;
    assert_eq!(got[0]["event_id"], letter["event_id"]);
    let (_, dlq) = app.call(tenant, Method::GET, "/webhooks/dlq", None).await;
    assert_eq!(dlq["total"], 0, "{dlq}");
    let (s, _) = app
        .call(
            tenant,
            Method::POST,
            &format!("/webhooks/dlq/{dl}/replay"),
            None,
        )
        .await;
    assert_eq!(s, 404, "a replayed dead letter is gone");
    let (s, _) = app
        .call(tenant, Method::POST, "/webhooks/dlq/0/replay", None)
        .await;
    assert_eq!(s, 404, "there is no dead letter 0");

    // Both replays are on the record, with who asked.
    let (_, log) = app
        .caught_up(tenant, "/api/v1/audit-events?limit=100")
        .await;
    let replays: Vec<&Value> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "webhook.delivery_replayed.v1")
        .collect();
    assert_eq!(replays.len(), 2, "{log}");
}

#[tokio::test]
async fn urls_are_refused_before_any_dial_and_configs_stay_in_their_tenant() {
    let (slack_url, slack_seen) = slack().await;
    // No AEGIS_EGRESS_ALLOW: loopback is refused like any private address.
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Guarded").await;
    for url in [
        slack_url.as_str(),
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://2130706433/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://user:pw@hooks.example/hook",
        "ftp://hooks.example/hook",
    ] {
        let (s, b) = app
            .call(
                tenant,
                Method::POST,
                "/webhooks/config",
                Some(json!({"name": "x", "kind": "slack", "url": url})),
            )
            .await;
        assert_eq!(s, 422, "{url}: {b}");
        assert_eq!(b["field"], "url", "{url}: {b}");
    }
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/webhooks/test/slack",
            Some(json!({"url": slack_url})),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(slack_seen.lock().unwrap().is_empty(), "nothing was dialled");

    for (body, field) in [
        (json!({"name": "pd", "kind": "pagerduty"}), "routing_key"),
        (
            json!({"name": "s", "kind": "slack", "url": "https://hooks.example/x", "signing_secret": "0123456789abcdef"}),
            "signing_secret",
        ),
        (
            json!({"name": "g", "kind": "generic", "url": "https://hooks.example/x", "signing_secret": "short"}),
            "signing_secret",
        ),
        (
            json!({"name": " ", "kind": "generic", "url": "https://hooks.example/x"}),
            "name",
        ),
        (
            json!({"name": "g", "kind": "generic", "url": "https://hooks.example/x", "topics": []}),
            "topics",
        ),
    ] {
        let (s, b) = app
            .call(tenant, Method::POST, "/webhooks/config", Some(body.clone()))
            .await;
        assert_eq!(s, 422, "{body}: {b}");
        assert_eq!(b["field"], field, "{body}: {b}");
    }
    let (_, none) = app.caught_up(tenant, "/webhooks/config").await;
    assert_eq!(none["total"], 0, "refusals changed nothing: {none}");
}

#[tokio::test]
async fn updates_need_a_fresh_etag_and_another_tenant_sees_nothing() {
    let (slack_url, _) = slack().await;
    let app = spawn().await;
    let tenant = app.create_tenant("Owners").await;
    let other = app.create_tenant("Neighbours").await;
    let hook = create(
        &app,
        tenant,
        json!({"name": "soc", "kind": "slack", "url": slack_url}),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    let path = format!("/webhooks/config/{id}");
    let put = |etag: &'static str, body: Value| {
        app.admin(Method::PUT, &path, Some(tenant))
            .header("If-Match", etag)
            .json(&body)
            .send()
    };
    let r = put("\"1\"", json!({"enabled": false})).await.unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["data"]["enabled"], false);
    let r = put("\"1\"", json!({"name": "stale"})).await.unwrap();
    assert_eq!(r.status(), 409);
    let r = put("\"2\"", json!({"kind": "generic"})).await.unwrap();
    assert_eq!(r.status(), 422, "the kind is not part of an update");
    let r = put("\"2\"", json!({"url": slack_url.replace("s3cr3t", "n3w")}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["data"]["secrets_version"], 2);

    let (_, theirs) = app.caught_up(other, "/webhooks/config").await;
    assert_eq!(theirs["total"], 0);
    for method in [Method::GET, Method::DELETE] {
        let (s, _) = app.call(other, method, &path, None).await;
        assert_eq!(s, 404);
    }
    let (s, _) = app.call(tenant, Method::DELETE, &path, None).await;
    assert_eq!(s, 204);
    let (s, _) = app.call(tenant, Method::GET, &path, None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn slack_test_answers_slacks_status_and_rule_notifications_go_to_their_channel() {
    let (slack_url, slack_seen) = slack().await;
    let (other_url, other_seen) = slack().await;
    let app = spawn().await;
    let tenant = app.create_tenant("Notified").await;
    app.set_plan(tenant, json!({ "addons": ["auto_response"] }))
        .await;

    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/webhooks/test/slack",
            Some(json!({"url": slack_url})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["data"],
        json!({"delivered": true, "upstream_status": 200, "detail": "Slack accepted the test message"})
    );
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/webhooks/test/slack",
            Some(json!({"url": format!("{slack_url}-revoked")})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["delivered"], false);
    assert_eq!(b["data"]["upstream_status"], 404);
    slack_seen.lock().unwrap().clear();

    create(
        &app,
        tenant,
        json!({"name": "soc", "kind": "slack", "url": slack_url, "topics": ["auto_response.notify"]}),
    )
    .await;
    create(
        &app,
        tenant,
        json!({"name": "exec", "kind": "slack", "url": other_url, "topics": ["auto_response.notify"]}),
    )
    .await;
    let (s, rule) = app
        .call(
            tenant,
            Method::POST,
            "/auto-response/rules",
            Some(json!({
                "name": "tell the soc",
                "match": { "event_type": "incident.opened.v1", "severity": "critical" },
                "actions": [{ "type": "notify", "channel": "soc", "message": "critical: {event.title}" }],
                "mode": "active"
            })),
        )
        .await;
    assert_eq!(s, 201, "{rule}");
    app.open_incident(tenant, incident("token exfiltration", "critical"))
        .await;
    let got = received(&slack_seen, 1).await;
    assert_eq!(
        got[0]["blocks"][0]["text"]["text"],
        "Auto-response: tell the soc"
    );
    assert!(got
        .iter()
        .any(|m| m.to_string().contains("critical: token exfiltration")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        other_seen.lock().unwrap().is_empty(),
        "another channel's webhook stays quiet"
    );

    let rule_id = rule["data"]["id"].as_str().unwrap();
    let (_, runs) = app
        .caught_up(tenant, &format!("/auto-response/runs?rule_id={rule_id}"))
        .await;
    let action = &runs["data"][0]["actions"][0];
    assert_eq!(action["outcome"], "done", "{runs}");
    assert_eq!(action["detail"], "handed to 1 webhook(s)");
}

/// The fan-out keeps each tenant's webhooks between events and forgets them on the tenant's
/// next webhook event: a webhook created after the fan-out has seen the tenant with none
/// receives the next incident, and a disabled one receives nothing more.
#[tokio::test]
async fn webhook_changes_reach_the_fanout_before_the_next_incident() {
    let (first_url, first_seen) = slack().await;
    let (second_url, second_seen) = slack().await;
    let app = spawn().await;
    let tenant = app.create_tenant("Changes").await;
    let log = app.log_stream().await;
    // The fan-out has settled an incident of the tenant while it had no webhook: it holds
    // the tenant's (empty) webhooks from here on.
    let (_, before, _) = app
        .open_incident(tenant, incident("Before any webhook", "high"))
        .await;
    let settled = eventually(WITHIN, || async {
        let log = log.clone();
        log.consumer_info("webhook_fanout")
            .await
            .is_ok_and(|i| i.ack_floor.stream_sequence >= before)
    })
    .await;
    assert!(settled, "the fan-out never settled the first incident");

    let hook = create(
        &app,
        tenant,
        json!({"name": "first", "kind": "slack", "url": first_url}),
    )
    .await;
    app.open_incident(tenant, incident("After the first webhook", "high"))
        .await;
    let got = received(&first_seen, 1).await;
    assert!(
        got[0]["text"]
            .as_str()
            .unwrap()
            .contains("After the first webhook"),
        "{got:?}"
    );

    let path = format!("/webhooks/config/{}", hook["id"].as_str().unwrap());
    let r = app
        .admin(Method::PUT, &path, Some(tenant))
        .header("If-Match", "\"1\"")
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    create(
        &app,
        tenant,
        json!({"name": "second", "kind": "slack", "url": second_url}),
    )
    .await;
    app.open_incident(tenant, incident("After the change", "high"))
        .await;
    let got = received(&second_seen, 1).await;
    assert!(
        got[0]["text"]
            .as_str()
            .unwrap()
            .contains("After the change"),
        "{got:?}"
    );
    // The fan-out handles a tenant's events in order: the second webhook's delivery means
    // the disabled one was passed over for the same incident.
    assert_eq!(
        first_seen.lock().unwrap().len(),
        1,
        "the disabled webhook was notified"
    );
}
