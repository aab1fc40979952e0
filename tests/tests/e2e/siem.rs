//! SIEM forwarding (seed 000) to local receivers that accept only the vendors' documented
//! wire formats: Splunk HEC (`Authorization: Splunk <token>`, event objects) and Datadog
//! Logs (`DD-API-KEY`, an array of log entries).

use aegis_tests::world::{eventually, incident, serve};
use aegis_tests::TestApp;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Json;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(20);
pub(crate) const HEC_TOKEN: &str = "11111111-2222-3333-4444-555555555555";
const DD_KEY: &str = "dd-api-key-0123456789";

pub(crate) struct Receiver {
    pub(crate) url: String,
    /// Every event (HEC `event`, Datadog's parsed `message`) accepted, in order.
    events: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
}

impl Receiver {
    pub(crate) fn ids(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    async fn has(&self, id: &str) -> bool {
        eventually(WITHIN, || async { self.ids().iter().any(|i| i == id) }).await
    }
}

/// Splunk HEC `POST /services/collector/event`: concatenated JSON event objects, each with
/// `event`, a numeric `time` and a `sourcetype`.
pub(crate) async fn hec() -> Receiver {
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let down = Arc::new(AtomicBool::new(false));
    let (e, d) = (events.clone(), down.clone());
    let app = axum::Router::new().route(
        "/services/collector/event",
        post(move |h: HeaderMap, body: Bytes| {
            let (e, d) = (e.clone(), d.clone());
            async move {
                if h.get("authorization").and_then(|v| v.to_str().ok())
                    != Some(&format!("Splunk {HEC_TOKEN}"))
                {
                    return (
                        StatusCode::FORBIDDEN,
                        Json(json!({"text": "Invalid token", "code": 4})),
                    );
                }
                if d.load(Ordering::SeqCst) {
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Json(json!({"text": "Server is busy", "code": 9})),
                    );
                }
                let mut got = Vec::new();
                for item in serde_json::Deserializer::from_slice(&body).into_iter::<Value>() {
                    let Ok(item) = item else {
                        return (
                            StatusCode::BAD_REQUEST,
                            Json(json!({"text": "Invalid data format", "code": 6})),
                        );
                    };
                    if !item["time"].is_number()
                        || !item["sourcetype"].is_string()
                        || !item["event"].is_object()
                    {
                        return (
                            StatusCode::BAD_REQUEST,
                            Json(json!({"text": "Event field is required", "code": 12})),
                        );
                    }
                    got.push(item["event"].clone());
                }
                e.lock().unwrap().extend(got);
                (StatusCode::OK, Json(json!({"text": "Success", "code": 0})))
            }
        }),
    );
    Receiver {
        url: serve(app).await,
        events,
        down,
    }
}

/// Datadog Logs intake `POST /api/v2/logs`: a JSON array of entries with `ddsource` and a
/// `message`; 202 with `{}`.
async fn datadog() -> Receiver {
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let down = Arc::new(AtomicBool::new(false));
    let e = events.clone();
    let app = axum::Router::new().route(
        "/api/v2/logs",
        post(move |h: HeaderMap, Json(body): Json<Value>| {
            let e = e.clone();
            async move {
                if h.get("dd-api-key").and_then(|v| v.to_str().ok()) != Some(DD_KEY) {
                    return (
                        StatusCode::FORBIDDEN,
                        Json(json!({"errors": [{"status": "403", "title": "Forbidden"}]})),
                    );
                }
                let Some(entries) = body.as_array() else {
                    return (
                        StatusCode::BAD_REQUEST,
                        Json(json!({"errors": [{"status": "400"}]})),
                    );
                };
                for entry in entries {
                    let message: Option<Value> = entry["message"]
                        .as_str()
                        .and_then(|m| serde_json::from_str(m).ok());
                    match message {
                        Some(m) if entry["ddsource"] == "aegis" && entry["ddtags"].is_string() => {
                            e.lock().unwrap().push(m)
                        }
                        _ => {
                            return (
                                StatusCode::BAD_REQUEST,
                                Json(json!({"errors": [{"status": "400"}]})),
                            )
                        }
                    }
                }
                (StatusCode::ACCEPTED, Json(json!({})))
            }
        }),
    );
    Receiver {
        url: serve(app).await,
        events,
        down,
    }
}

async fn spawn() -> TestApp {
    TestApp::spawn_with_config(|c| {
        c.egress_allow = vec!["127.0.0.1".into()];
        c.webhook_backoff_ms = 20;
        c.siem_tick_ms = 100;
    })
    .await
}

async fn connect(app: &TestApp, tenant: Uuid, body: Value) -> Value {
    let (s, b) = app
        .call(tenant, Method::POST, "/siem/config", Some(body))
        .await;
    assert_eq!(s, 201, "{b}");
    b["data"].clone()
}

async fn event_id_of(app: &TestApp, tenant: Uuid, incident: Uuid) -> String {
    let (_, log) = app
        .caught_up(tenant, "/api/v1/audit-events?limit=200")
        .await;
    log["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["event_type"] == "incident.opened.v1" && e["resource_id"] == incident.to_string()
        })
        .and_then(|e| e["event_id"].as_str())
        .unwrap_or_else(|| panic!("incident {incident} in the audit log: {log}"))
        .to_string()
}

#[tokio::test]
async fn splunk_receives_each_event_once_through_an_outage_and_a_restart() {
    let receiver = hec().await;
    let mut app = spawn().await;
    let tenant = app.create_tenant("Forwarded").await;
    let other = app.create_tenant("Private").await;
    let (before, _, _) = app
        .open_incident(tenant, incident("before the connection", "low"))
        .await;
    let conn = connect(
        &app,
        tenant,
        json!({"name": "splunk-prod", "kind": "splunk", "url": receiver.url, "token": HEC_TOKEN,
               "index": "security", "backfill": true}),
    )
    .await;
    assert!(!conn.to_string().contains(HEC_TOKEN));
    assert_eq!(conn["start_position"], 1);

    // Backfill: history from the start, this tenant's only.
    let first = event_id_of(&app, tenant, before).await;
    assert!(
        receiver.has(&first).await,
        "the backfilled incident arrives"
    );
    let (theirs, _, _) = app
        .open_incident(other, incident("not yours", "high"))
        .await;
    let theirs = event_id_of(&app, other, theirs).await;

    // An outage: the batch is retried until Splunk takes it; nothing is skipped.
    receiver.down.store(true, Ordering::SeqCst);
    let (during, _, _) = app
        .open_incident(tenant, incident("during the outage", "high"))
        .await;
    let errored = eventually(WITHIN, || async {
        let (_, b) = app.call(tenant, Method::GET, "/siem/config", None).await;
        b["data"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503"))
    })
    .await;
    assert!(errored, "the failure shows on the connection");
    receiver.down.store(false, Ordering::SeqCst);
    let during = event_id_of(&app, tenant, during).await;
    assert!(receiver.has(&during).await, "delivered after the outage");

    // A restart resumes from the checkpoint: nothing again, nothing lost.
    app.start_again().await;
    let (after, _, _) = app
        .open_incident(tenant, incident("after the restart", "low"))
        .await;
    let after = event_id_of(&app, tenant, after).await;
    assert!(receiver.has(&after).await, "delivered after the restart");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let ids = receiver.ids();
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no event twice: {ids:?}");
    assert!(
        !ids.contains(&theirs),
        "another tenant's event was forwarded"
    );
    for e in receiver.events.lock().unwrap().iter() {
        assert!(
            e["source"].as_str().unwrap().contains(&tenant.to_string()),
            "{e}"
        );
    }
    let (_, listed) = app.call(tenant, Method::GET, "/siem/config", None).await;
    let row = &listed["data"][0];
    assert_eq!(
        row["forwarded"].as_u64().unwrap() as usize,
        ids.len(),
        "{listed}"
    );
    assert!(row["last_error"].is_null(), "{listed}");
    assert!(!listed.to_string().contains(HEC_TOKEN));
    let metrics = app.metrics().await;
    let line = format!(
        "acp_siem_push_total{{tenant_id=\"{tenant}\",target=\"splunk\",result=\"delivered\"}}"
    );
    assert!(metrics.contains(&line), "{line} missing");
}

#[tokio::test]
async fn datadog_takes_filtered_events_and_tests_and_pushes_answer_what_the_siem_said() {
    let receiver = datadog().await;
    let app = spawn().await;
    let tenant = app.create_tenant("Dogs").await;

    for (body, field) in [
        (
            json!({"name": "s", "kind": "splunk", "token": HEC_TOKEN}),
            "url",
        ),
        (
            json!({"name": "d", "kind": "datadog", "token": "short"}),
            "token",
        ),
        (
            json!({"name": "d", "kind": "datadog", "token": DD_KEY, "site": "not a site"}),
            "site",
        ),
        (
            json!({"name": "d", "kind": "datadog", "token": DD_KEY, "url": "http://169.254.169.254/"}),
            "url",
        ),
        (
            json!({"name": "d", "kind": "datadog", "token": DD_KEY, "url": receiver.url, "event_types": ["Incident Opened"]}),
            "event_types",
        ),
    ] {
        let (s, b) = app
            .call(tenant, Method::POST, "/siem/config", Some(body.clone()))
            .await;
        assert_eq!(s, 422, "{body}: {b}");
        assert_eq!(b["field"], field, "{body}: {b}");
    }
    let (s, _) = app
        .call(tenant, Method::POST, "/siem/test/datadog", None)
        .await;
    assert_eq!(s, 404, "nothing to test yet");

    let conn = connect(
        &app,
        tenant,
        json!({"name": "dd", "kind": "datadog", "token": DD_KEY, "url": receiver.url,
               "event_types": ["incident.opened.v1"]}),
    )
    .await;
    let (id, _, _) = app
        .open_incident(tenant, incident("exfiltration", "critical"))
        .await;
    let id = event_id_of(&app, tenant, id).await;
    assert!(receiver.has(&id).await);
    // Only the event type asked for: the user and tenant events around it stay home.
    app.call(
        tenant,
        Method::POST,
        "/api/v1/agents",
        Some(json!({"name": "edge"})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for e in receiver.events.lock().unwrap().iter() {
        assert_eq!(e["type"], "incident.opened.v1", "{e}");
    }

    let (s, b) = app
        .call(tenant, Method::POST, "/siem/test/datadog", None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["delivered"], true);
    assert_eq!(b["data"]["upstream_status"], 202);
    assert_eq!(b["data"]["connection_id"], conn["id"]);

    let r = app
        .internal(Method::POST, "/siem/push", tenant)
        .json(&json!({"events": [{"id": "ext-1", "type": "edge.blocked", "source": "/edge"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["data"][0]["delivered"], true, "{b}");
    assert!(receiver.has("ext-1").await);
    // Push is for internal services: an admin's token is not enough.
    let (s, _) = app
        .call(
            tenant,
            Method::POST,
            "/siem/push",
            Some(json!({"events": [{"id": "x"}]})),
        )
        .await;
    assert_eq!(s, 403);

    // A revoked key: the test reports Datadog's 403 rather than failing itself.
    let path = format!("/siem/config/{}", conn["id"].as_str().unwrap());
    let (s, b) = app
        .call(
            tenant,
            Method::PUT,
            &path,
            Some(json!({"token": "revoked-key-000"})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["secrets_version"], 2);
    let (s, b) = app
        .call(tenant, Method::POST, "/siem/test/datadog", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["data"]["delivered"], false);
    assert_eq!(b["data"]["upstream_status"], 403);

    let other = app.create_tenant("Cats").await;
    let (s, _) = app.call(other, Method::GET, &path, None).await;
    assert_eq!(s, 404);
    let (_, theirs) = app.caught_up(other, "/siem/config").await;
    assert_eq!(theirs["total"], 0);
}

/// Credential material (password hashes, API key and agent digests, sealed secrets) never
/// reaches a SIEM, even from a backfill over the tenant's whole history.
#[tokio::test]
async fn a_backfill_ships_no_credential_material() {
    let receiver = hec().await;
    let app = spawn().await;
    let tenant = app.create_tenant("Forwarded").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let (_, key) = app.api_key(&admin.token, &["incident.read"]).await;
    let digest = app.state().keyring.digest(&key);
    let (last, _, _) = app.open_incident(tenant, incident("last", "low")).await;
    connect(
        &app,
        tenant,
        json!({"name": "splunk-all", "kind": "splunk", "url": receiver.url, "token": HEC_TOKEN,
               "index": "security", "backfill": true}),
    )
    .await;
    let last = event_id_of(&app, tenant, last).await;
    assert!(receiver.has(&last).await, "the backfill reaches the end");
    let shipped = serde_json::to_string(&*receiver.events.lock().unwrap()).unwrap();
    assert!(shipped.contains("user.created.v1"), "users are forwarded");
    assert!(shipped.contains("api_key.created.v1"), "keys are forwarded");
    assert!(!shipped.contains("$argon2id"), "{shipped}");
    assert!(!shipped.contains(&digest), "{shipped}");
    assert!(!shipped.contains("password_hash"), "{shipped}");
}

/// A commit that does not decode stops forwarding at its position, and the connection says so
/// (nothing after it is sent past it silently).
#[tokio::test]
async fn a_commit_that_does_not_decode_stops_forwarding_and_the_connection_names_it() {
    let receiver = hec().await;
    let app = spawn().await;
    let tenant = app.create_tenant("Damaged").await;
    let (id, _, _) = app.open_incident(tenant, incident("before", "low")).await;
    connect(
        &app,
        tenant,
        json!({"name": "splunk", "kind": "splunk", "url": receiver.url, "token": HEC_TOKEN,
               "index": "security", "backfill": true}),
    )
    .await;
    // Forwarding runs: the incident arrives.
    let first = event_id_of(&app, tenant, id).await;
    assert!(receiver.has(&first).await, "forwarding started");
    let agg = aegis_streams::AggregateRef::new(tenant, "incidents", "incident", id.to_string())
        .expect("ref");
    let position = app.forge(&agg, vec![0xffu8; 24]).await;
    // The projections halt on it too, so the API's read of the connection answers 503; what
    // the forwarder recorded is read from its table.
    let last_error = || async {
        sqlx::query_as::<_, (Option<String>,)>(
            "SELECT last_error FROM siem_checkpoints WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_optional(&app.state().pool)
        .await
        .ok()
        .flatten()
        .and_then(|(e,)| e)
        .unwrap_or_default()
    };
    let named = eventually(WITHIN, || async {
        let e = last_error().await;
        e.contains("does not decode") && e.contains(&format!("position {position}"))
    })
    .await;
    assert!(
        named,
        "the connection names the damaged position: {}",
        last_error().await
    );
}
