//! Aegis on a 3-node JetStream cluster with its streams at R3 (issue 21): while 16 clients send
//! commands, the leader of `AEGIS_EVENTS` is killed (-9) and later started again, or a server is
//! frozen (SIGSTOP) for a while. A client sees each command acknowledged, or a 503 with
//! `Retry-After` that it retries with the same `Idempotency-Key`; never a 500. A Jepsen-style
//! checker then compares what clients saw with the log and the read model: nothing acknowledged
//! is lost, nothing appears twice, nothing a client saw refused appears.

use aegis_command_api::app::Roles;
use aegis_streams::EVENTS_STREAM;
use aegis_tests::world::{incident, NatsServer};
use aegis_tests::TestApp;
use futures::StreamExt;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

const CLIENTS: usize = 16;
/// A client's commands at most: clients run until the fault is over and a moment more.
const PER_CLIENT: usize = 400;

/// How one client's command ended.
#[derive(Debug, Clone)]
enum Outcome {
    Acked(Uuid),
    Refused(u16),
}

/// What the clients saw: each attempt's outcome by its title, and every status answered.
#[derive(Default)]
struct History {
    outcomes: BTreeMap<String, Outcome>,
    statuses: BTreeMap<u16, u32>,
    /// The longest a command took from its first try to its answer, retries included.
    slowest: Duration,
}

/// One client: commands in a row until `done`, each retried on 503 with its key until answered.
async fn client(
    http: reqwest::Client,
    url: String,
    tenant: Uuid,
    n: usize,
    history: Arc<Mutex<History>>,
    done: Arc<AtomicBool>,
) {
    for i in 0..PER_CLIENT {
        if done.load(Ordering::Relaxed) {
            break;
        }
        let title = format!("c{n}-{i}-{}", Uuid::now_v7().simple());
        let began = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(60);
        let outcome = loop {
            let r = http
                .post(&url)
                .header("X-Internal-Secret", aegis_tests::world::INTERNAL)
                .header("X-Tenant-ID", tenant.to_string())
                .header("Idempotency-Key", &title)
                .json(&incident(&title, "high"))
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            let Ok(r) = r else {
                // No answer at all (a timeout): indeterminate, so ask again with the same key.
                history
                    .lock()
                    .expect("lock")
                    .statuses
                    .entry(0)
                    .and_modify(|c| *c += 1)
                    .or_insert(1);
                continue;
            };
            let status = r.status().as_u16();
            *history
                .lock()
                .expect("lock")
                .statuses
                .entry(status)
                .or_default() += 1;
            let retry = r.headers().contains_key("retry-after");
            let body: Value = r.json().await.unwrap_or(Value::Null);
            match status {
                201 => {
                    let id = body["data"]["id"].as_str().and_then(|s| s.parse().ok());
                    break Outcome::Acked(id.expect("an acknowledged incident has an id"));
                }
                503 if retry && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                other => break Outcome::Refused(other),
            }
        };
        let mut h = history.lock().expect("lock");
        h.outcomes.insert(title, outcome);
        h.slowest = h.slowest.max(began.elapsed());
    }
}

/// The server currently leading `AEGIS_EVENTS`, by name.
async fn leader(app: &TestApp) -> String {
    let js = app.state().executor.store().jetstream().clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut stream) = js.get_stream(EVENTS_STREAM).await {
            if let Ok(info) = stream.info().await {
                if let Some(name) = info.cluster.as_ref().and_then(|c| c.leader.clone()) {
                    return name;
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader for {EVENTS_STREAM}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many times each incident was opened on the log (read again while a just-restarted
/// cluster cannot answer yet).
async fn opened_in_log(app: &TestApp, tenant: Uuid) -> BTreeMap<String, u32> {
    let store = app.state().executor.store().clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    'read: loop {
        assert!(Instant::now() < deadline, "the log could not be read back");
        let Ok(head) = store.head().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Ok(commits) = store.read_tenant_range(tenant, 1, head).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut commits = Box::pin(commits);
        let mut opened: BTreeMap<String, u32> = BTreeMap::new();
        while let Some(c) = commits.next().await {
            let Ok(c) = c else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue 'read;
            };
            for e in c
                .events
                .iter()
                .filter(|e| e.event_type == "incident.opened.v1")
            {
                *opened.entry(e.aggregate_id.clone()).or_default() += 1;
            }
        }
        return opened;
    }
}

/// The fault a run injects into the cluster while the clients work.
#[derive(Clone, Copy, Debug)]
enum Fault {
    KillLeader,
    KillFollower,
    Freeze,
}

/// Runs the clients against a fresh cluster while `fault` happens; answers the checker's
/// counts: (lost, unexpected, duplicated, server errors).
async fn run(fault: Fault) -> (usize, usize, usize, u32) {
    let mut nodes = NatsServer::cluster(3).await;
    let urls = nodes
        .iter()
        .map(NatsServer::url)
        .collect::<Vec<_>>()
        .join(",");
    let first = nodes.remove(0);
    let mut app = TestApp::spawn_on(first, Roles::ALL, |c| {
        c.nats_url = urls;
        c.stream_replicas = 3;
    })
    .await;
    let tenant = app.create_tenant("Cluster").await;
    let history: Arc<Mutex<History>> = Arc::default();
    let done: Arc<AtomicBool> = Arc::default();
    let url = app.url("/incidents");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (http, url, history, done) =
                (app.http.clone(), url.clone(), history.clone(), done.clone());
            tokio::spawn(client(http, url, tenant, n, history, done))
        })
        .collect();

    // Let the load run, then the fault.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let leading = leader(&app).await;
    let target = match fault {
        Fault::KillLeader => leading.clone(),
        Fault::KillFollower | Fault::Freeze => ["n1", "n2", "n3"]
            .into_iter()
            .find(|n| *n != leading)
            .expect("a follower")
            .to_string(),
    };
    let victim: &mut NatsServer = if app.nats.name == target {
        &mut app.nats
    } else {
        nodes
            .iter_mut()
            .find(|n| n.name == target)
            .expect("a node of that name")
    };
    match fault {
        Fault::KillLeader | Fault::KillFollower => {
            victim.kill();
            tokio::time::sleep(Duration::from_secs(3)).await;
            victim.start_again();
        }
        Fault::Freeze => {
            victim.signal("-STOP");
            tokio::time::sleep(Duration::from_secs(5)).await;
            victim.signal("-CONT");
        }
    }
    // The clients go on a moment after the cluster is whole again, then stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    done.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client");
    }

    // The checker.
    let history = std::mem::take(&mut *history.lock().expect("lock"));
    let acked: BTreeMap<&str, Uuid> = history
        .outcomes
        .iter()
        .filter_map(|(t, o)| match o {
            Outcome::Acked(id) => Some((t.as_str(), *id)),
            Outcome::Refused(_) => None,
        })
        .collect();
    let opened = opened_in_log(&app, tenant).await;
    // The read model, once it has caught up with the log.
    let pool = &app.state().pool;
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows: Vec<(Uuid, String)> = loop {
        let rows: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT id, title FROM incidents WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_all(pool)
                .await
                .expect("read model");
        let ids: BTreeSet<Uuid> = rows.iter().map(|(id, _)| *id).collect();
        if acked.values().all(|id| ids.contains(id)) || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let in_model: BTreeMap<Uuid, &str> = rows.iter().map(|(id, t)| (*id, t.as_str())).collect();
    let lost_log = acked
        .values()
        .filter(|id| !opened.contains_key(&id.to_string()))
        .count();
    let lost_model = acked
        .values()
        .filter(|id| !in_model.contains_key(id))
        .count();
    let lost = lost_log.max(lost_model);
    let mut per_title: BTreeMap<&str, u32> = BTreeMap::new();
    for (_, t) in &rows {
        *per_title.entry(t.as_str()).or_default() += 1;
    }
    let duplicated = per_title.values().filter(|n| **n > 1).count()
        + opened.values().filter(|n| **n > 1).count();
    let titles: BTreeSet<&str> = acked.keys().copied().collect();
    let unexpected = per_title.keys().filter(|t| !titles.contains(*t)).count();
    let errors: u32 = history
        .statuses
        .iter()
        .filter(|(s, _)| **s >= 500 && **s != 503)
        .map(|(_, n)| *n)
        .sum();
    let refused = history
        .outcomes
        .values()
        .filter(|o| matches!(o, Outcome::Refused(_)))
        .count();
    println!(
        "{fault:?} ({target} of leader {leading}): {} commands, {} acknowledged, {refused} refused; \
         lost {lost} (log {lost_log}, read model {lost_model}), unexpected {unexpected}, duplicated {duplicated}, 5xx other than 503: {errors}; \
         slowest command {} ms; statuses {:?}",
        history.outcomes.len(),
        acked.len(),
        history.slowest.as_millis(),
        history.statuses
    );
    assert!(
        history.outcomes.len() > CLIENTS * 4,
        "the load ran through the fault"
    );
    let refusals: Vec<u16> = history
        .outcomes
        .values()
        .filter_map(|o| match o {
            Outcome::Refused(s) => Some(*s),
            Outcome::Acked(_) => None,
        })
        .collect();
    assert_eq!(
        refused, 0,
        "every command was acknowledged in the end: {refusals:?}"
    );
    (lost, unexpected, duplicated, errors)
}

/// One run here; `scripts/faults` runs it 20 times and sums the checker's counts.
#[tokio::test]
async fn killing_the_leader_under_load_loses_nothing_acknowledged() {
    assert_eq!(run(Fault::KillLeader).await, (0, 0, 0, 0));
}

#[tokio::test]
async fn killing_a_follower_under_load_loses_nothing_acknowledged() {
    assert_eq!(run(Fault::KillFollower).await, (0, 0, 0, 0));
}

#[tokio::test]
async fn a_frozen_server_under_load_loses_nothing_acknowledged() {
    assert_eq!(run(Fault::Freeze).await, (0, 0, 0, 0));
}

/// Writers racing on one aggregate are serialized on a cluster as on one server: a clustered
/// stream reports the lost race with its own error code, which must read as a conflict (the
/// command decides again), not as an outage.
#[tokio::test]
async fn racing_writers_on_one_aggregate_are_serialized_on_a_cluster() {
    let mut nodes = NatsServer::cluster(3).await;
    let urls = nodes
        .iter()
        .map(NatsServer::url)
        .collect::<Vec<_>>()
        .join(",");
    let app = TestApp::spawn_on(nodes.remove(0), Roles::ALL, |c| {
        c.nats_url = urls;
        c.stream_replicas = 3;
    })
    .await;
    let tenant = app.create_tenant("Race").await;
    let (id, _, _) = app.open_incident(tenant, incident("Raced", "low")).await;
    let writers = (0..16).map(|i| {
        let r = app
            .internal(reqwest::Method::PATCH, &format!("/incidents/{id}"), tenant)
            .json(&serde_json::json!({ "assigned_to": format!("analyst-{i}") }));
        async move {
            let r = r.send().await.expect("answer");
            r.status().as_u16()
        }
    });
    let statuses = futures::future::join_all(writers).await;
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 200).count() >= 8,
        "{statuses:?}"
    );
}
