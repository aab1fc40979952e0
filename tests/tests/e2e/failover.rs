//! Two Aegis instances share the reactors' work and one is killed (SIGKILL) while they work
//! (issue 21). The receivers count by event id: every event reaches the webhook and the SIEM
//! (none lost), each auto-response run happens once per triggering event and its action once,
//! and the incidents projection, applied by both instances, equals a rebuild from the log.

use aegis_command_api::app::Roles;
use aegis_tests::instance::Instance;
use aegis_tests::world::{eventually, incident, serve};
use aegis_tests::TestApp;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

const INCIDENTS: usize = 48;
const CLIENTS: usize = 4;

/// Every event id a receiver was handed, once per delivery.
type Deliveries = Arc<Mutex<Vec<String>>>;

fn counts(d: &Deliveries) -> BTreeMap<String, usize> {
    by_id(d.lock().unwrap().iter().cloned())
}

fn by_id(ids: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut by_id = BTreeMap::new();
    for id in ids {
        *by_id.entry(id).or_default() += 1;
    }
    by_id
}

/// A generic webhook receiver that takes a while to answer, so deliveries are in flight when
/// an instance dies; it counts the `X-Aegis-Event-Id` of each delivery.
async fn slow_webhook() -> (String, Deliveries) {
    let got: Deliveries = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |h: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let id = h
                    .get("x-aegis-event-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                if id.is_empty() || serde_json::from_slice::<Value>(&body).is_err() {
                    return StatusCode::BAD_REQUEST;
                }
                // Taken on arrival, answered later: a sender that dies in between made a
                // delivery it never saw succeed.
                sink.lock().unwrap().push(id);
                tokio::time::sleep(Duration::from_millis(100)).await;
                StatusCode::NO_CONTENT
            }
        }),
    );
    (format!("{}/hook", serve(app).await), got)
}

/// The tenant's events on the log: event id → event type.
async fn log_of(world: &TestApp, tenant: Uuid) -> BTreeMap<String, String> {
    let store = world.state().executor.store();
    let head = store.head().await.unwrap();
    let mut commits = Box::pin(store.read_tenant_range(tenant, 1, head).await.unwrap());
    let mut events = BTreeMap::new();
    while let Some(c) = commits.next().await {
        for e in c.unwrap().events {
            events.insert(e.event_id, e.event_type);
        }
    }
    events
}

#[tokio::test]
async fn killing_one_of_two_instances_mid_work_loses_no_reaction_and_repeats_no_run() {
    let (hook_url, hook) = slow_webhook().await;
    // Splunk HEC as the SIEM tests stand it in, every event counted by its id.
    let siem = crate::siem::hec().await;
    // Commands and queries in this process; projectors and reactors in two `aegis serve`s.
    let world = TestApp::spawn_configured(
        Roles {
            command_api: true,
            projectors: false,
            reactors: false,
        },
        |c| c.egress_allow = vec!["127.0.0.1".into()],
    )
    .await;
    let env = [
        ("AEGIS_EGRESS_ALLOW", "127.0.0.1"),
        ("AEGIS_WEBHOOK_BACKOFF_MS", "20"),
        ("AEGIS_SIEM_TICK_MS", "100"),
    ];
    let bin = env!("CARGO_BIN_EXE_aegis-under-test");
    let doomed = Instance::start(bin, &world, &env).await;
    let _survivor = Instance::start(bin, &world, &env).await;

    let tenant = world.create_tenant("Failover").await;
    world
        .set_plan(tenant, json!({ "addons": ["auto_response"] }))
        .await;
    let (s, b) = world
        .call(
            tenant,
            Method::POST,
            "/webhooks/config",
            Some(json!({"name": "soc", "kind": "generic", "url": hook_url, "topics": ["incident.opened"]})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = world
        .call(
            tenant,
            Method::POST,
            "/siem/config",
            Some(
                json!({"name": "splunk", "kind": "splunk", "url": siem.url, "token": crate::siem::HEC_TOKEN,
                        "index": "security", "backfill": true}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = world
        .call(
            tenant,
            Method::POST,
            "/auto-response/rules",
            Some(json!({
                "name": "follow up",
                "match": { "event_type": "incident.opened.v1", "severity": "critical" },
                "actions": [{ "type": "open_incident", "title": "Follow up: {event.title}", "severity": "low" }],
                "mode": "active"
            })),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let rule = b["data"]["id"].as_str().unwrap().to_string();
    // Both instances' reactors read the rule and the webhook before the work begins.
    world.caught_up(tenant, "/webhooks/config").await;

    // Clients open critical incidents; a third of the way through, one instance dies.
    let world = Arc::new(world);
    let opened = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (world, opened) = (world.clone(), opened.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..INCIDENTS / CLIENTS {
                let (id, _, _) = world
                    .open_incident(tenant, incident(&format!("c{c}-{i}"), "critical"))
                    .await;
                opened.lock().unwrap().push(id);
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
        }));
    }
    while opened.lock().unwrap().len() < INCIDENTS / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    doomed.signal("KILL");
    let killed = Instant::now();
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(opened.lock().unwrap().len(), INCIDENTS);

    // Each critical incident makes one run, whose action opens one follow-up.
    let runs_path = format!("/auto-response/runs?rule_id={rule}&limit=200");
    let settled = eventually(Duration::from_secs(60), || async {
        let (_, b) = world.call(tenant, Method::GET, &runs_path, None).await;
        let done = b["data"]
            .as_array()
            .map_or(0, |r| r.iter().filter(|r| r["result"] != "running").count());
        done >= INCIDENTS
    })
    .await;
    assert!(settled, "every run completed");
    let log = log_of(&world, tenant).await;
    let opened_events: BTreeSet<&String> = log
        .iter()
        .filter(|(_, t)| t.as_str() == "incident.opened.v1")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        opened_events.len(),
        2 * INCIDENTS,
        "each run's follow-up once"
    );
    let delivered = eventually(Duration::from_secs(60), || async {
        let (h, s) = (counts(&hook), by_id(siem.ids()));
        opened_events.iter().all(|id| h.contains_key(*id))
            && log.keys().all(|id| s.contains_key(id))
    })
    .await;
    let recovered = killed.elapsed();
    // Room for a late repeat to show itself.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (hooks, siems) = (counts(&hook), by_id(siem.ids()));

    let hook_lost = opened_events
        .iter()
        .filter(|id| !hooks.contains_key(**id))
        .count();
    let hook_unexpected = hooks
        .keys()
        .filter(|id| !opened_events.contains(id))
        .count();
    let hook_repeats: usize = hooks.values().map(|n| n - 1).sum();
    let siem_lost = log.keys().filter(|id| !siems.contains_key(*id)).count();
    let siem_unexpected = siems.keys().filter(|id| !log.contains_key(*id)).count();
    let siem_repeats: usize = siems.values().map(|n| n - 1).sum();
    let (_, runs) = world.caught_up(tenant, &runs_path).await;
    let runs = runs["data"].as_array().unwrap().clone();
    let triggers: BTreeSet<&str> = runs
        .iter()
        .filter_map(|r| r["trigger_aggregate"].as_str())
        .collect();
    let runs_repeated = runs.len() - triggers.len();
    // What the dead instance held when it died, and JetStream handed to the survivor.
    let log_stream = world.log_stream().await;
    // Deliveries past one per commit on the consumer's subjects (the log was empty when
    // the consumers began) are the ones handed over again.
    let mut handed_over = 0;
    for reactor in ["auto_response", "webhook_fanout"] {
        let info = log_stream.consumer_info(reactor).await.unwrap();
        let commits = world
            .state()
            .executor
            .store()
            .count(info.config.filter_subjects.clone(), 1)
            .await
            .unwrap();
        handed_over += info.delivered.consumer_sequence.saturating_sub(commits);
    }
    println!(
        "failover: {INCIDENTS} incidents; webhook lost {hook_lost}, unexpected {hook_unexpected}, \
         redelivered {hook_repeats}; SIEM lost {siem_lost}, unexpected {siem_unexpected}, \
         redelivered {siem_repeats}; runs {} (repeated {runs_repeated}); {handed_over} commits \
         handed over; all delivered {:.1} s after the kill",
        runs.len(),
        recovered.as_secs_f64()
    );
    assert!(delivered, "every event delivered after the kill");
    assert!(
        handed_over > 0,
        "the killed instance held work when it died"
    );
    assert_eq!((hook_lost, hook_unexpected), (0, 0));
    assert_eq!((siem_lost, siem_unexpected), (0, 0));
    assert_eq!((runs.len(), runs_repeated), (INCIDENTS, 0));
    assert!(runs.iter().all(|r| r["result"] == "succeeded"), "{runs:?}");
    // A repeat is the delivery the dead instance had in flight (the fan-out handles one
    // commit at a time, and each makes one delivery here): the same event id again, which a
    // receiver counting by event id drops.
    assert!(hook_repeats <= 1, "{hook_repeats} webhook repeats");

    // Both instances applied the projection; it equals a rebuild from the log.
    let (_, listed) = world.caught_up(tenant, "/incidents?limit=1").await;
    assert_eq!(listed["total"], 2 * INCIDENTS, "{listed}");
    let live = world.incidents_digest(tenant).await;
    aegis_projectors::rebuild::rebuild(
        &world.state().pool,
        world.state().executor.store(),
        &aegis_projectors::incidents::IncidentsProjection,
    )
    .await
    .unwrap();
    assert_eq!(
        live,
        world.incidents_digest(tenant).await,
        "equal to a rebuild"
    );
}
