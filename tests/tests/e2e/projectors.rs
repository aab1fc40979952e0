use aegis_command_api::app::Roles;
use aegis_incidents::{Command, IncidentAggregate};
use aegis_kernel::Aggregate;
use aegis_projectors::checkpoint;
use aegis_projectors::incidents::IncidentsProjection;
use aegis_runtime::command::CommandContext;
use aegis_streams::{AggregateRef, Expected, Metadata, NewEvent};
use aegis_tests::world::incident;
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

fn ctx() -> CommandContext {
    CommandContext {
        meta: Metadata::system("test"),
        msg_id: None,
        if_match: None,
    }
}

/// Appends `commits` updates of `per_commit` actions to each incident, writers in parallel.
async fn load_actions(
    app: &TestApp,
    tenant: Uuid,
    incidents: &[Uuid],
    commits: usize,
    per_commit: usize,
) {
    let writers = incidents.iter().map(|id| {
        let executor = app.state().executor.clone();
        let agg = AggregateRef::new(tenant, "incidents", "incident", id.to_string()).unwrap();
        async move {
            for c in 0..commits {
                let actions = (0..per_commit)
                    .map(|a| format!("a{}", c * per_commit + a))
                    .collect();
                let cmd = Command::Update {
                    status: None,
                    assigned_to: None,
                    actions_taken: actions,
                };
                executor
                    .execute::<IncidentAggregate>(&agg, &cmd, &ctx(), false)
                    .await
                    .unwrap();
            }
        }
    });
    futures::future::join_all(writers).await;
}

async fn wait_for_position(app: &TestApp, name: &str, position: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        // A pooled connection used within the last second is not tested before it is handed
        // out (see `connect_db`): after connections were cut, its query fails once, and the
        // pool drops it. A client retries that, as it retries the 503 it becomes over HTTP.
        let cp = match checkpoint::get(&app.state().pool, name).await {
            Ok(cp) => cp,
            Err(e) if aegis_projectors::runner::transient(&e) => None,
            Err(e) => panic!("reading the checkpoint: {e}"),
        };
        if cp.as_ref().is_some_and(|c| c.position as u64 >= position) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stuck at {cp:?}, want {position}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A child process killed (SIGKILL) and reaped when dropped.
struct Killed(std::process::Child);

impl Killed {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_projectors(app: &TestApp) -> Killed {
    Killed(
        Process::new(env!("CARGO_BIN_EXE_aegis-under-test"))
            .arg("projectors")
            .env("NATS_URL", &app.config.nats_url)
            .env("DATABASE_URL", &app.config.database_url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aegis projectors starts"),
    )
}

#[tokio::test]
async fn a_projector_killed_mid_stream_resumes_with_every_event_applied_once() {
    let app = TestApp::spawn_with(Roles {
        command_api: true,
        projectors: false,
        reactors: false,
    })
    .await;
    let tenant = app.create_tenant("Acme").await;
    let mut ids = Vec::new();
    for i in 0..16 {
        ids.push(
            app.open_incident(tenant, incident(&format!("i{i}"), "low"))
                .await
                .0,
        );
    }
    let (commits, per_commit) = (120, 4);
    load_actions(&app, tenant, &ids, commits, per_commit).await;
    let head = app.head().await;

    let mut child = spawn_projectors(&app);
    let pool = &app.state().pool;
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed_at = loop {
        let cp = checkpoint::get(pool, IncidentsProjection::NAME)
            .await
            .unwrap();
        if let Some(cp) = cp.filter(|c| c.position > 0) {
            child.kill();
            break cp.position as u64;
        }
        assert!(Instant::now() < deadline, "projector never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let after_kill = checkpoint::get(pool, IncidentsProjection::NAME)
        .await
        .unwrap()
        .unwrap()
        .position as u64;
    assert!(
        after_kill < head,
        "killed mid-stream: at {killed_at}/{after_kill} of {head}"
    );

    let mut child = spawn_projectors(&app);
    wait_for_position(
        &app,
        IncidentsProjection::NAME,
        head,
        Duration::from_secs(120),
    )
    .await;
    child.kill();

    let expected: Vec<String> = (0..commits * per_commit).map(|a| format!("a{a}")).collect();
    for id in ids {
        let (actions, version): (sqlx::types::Json<Vec<String>>, i64) = sqlx::query_as(
            "SELECT actions_taken, version FROM incidents WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            actions.0, expected,
            "incident {id}: every action exactly once, in order"
        );
        assert_eq!(version as usize, 1 + commits * per_commit);
    }
}

use aegis_projectors::Projection;

/// Every incident of `tenant`, once the projection has applied the whole log.
async fn caught_up_incidents(app: &TestApp, tenant: Uuid) -> Value {
    let head = app.head().await;
    wait_for_position(
        app,
        IncidentsProjection::NAME,
        head,
        Duration::from_secs(30),
    )
    .await;
    app.admin(Method::GET, "/incidents?limit=500", Some(tenant))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_rebuild_swaps_in_fresh_tables_while_queries_keep_being_served() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(
            app.open_incident(
                tenant,
                incident(&format!("i{i}"), if i % 3 == 0 { "high" } else { "low" }),
            )
            .await
            .0,
        );
    }
    load_actions(&app, tenant, &ids[..10], 20, 3).await;
    let before = caught_up_incidents(&app, tenant).await;
    let head = app.head().await;

    // Readers hammer the read model during the rebuild; every answer must be complete.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (http, url, stop) = (
            app.http.clone(),
            app.url("/incidents/summary"),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut served = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = http
                    .get(&url)
                    .bearer_auth(aegis_tests::world::BOOTSTRAP)
                    .header("X-Tenant-ID", tenant.to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let b: Value = r.json().await.unwrap();
                assert!(b["data"]["total"].as_i64().unwrap() >= 30, "{b}");
                served += 1;
            }
            served
        })
    };
    // Writers keep going too: the swap must not lose what the live projector applied meanwhile.
    let writer = load_actions(&app, tenant, &ids[10..12], 30, 1);
    let rebuild = aegis_projectors::rebuild::rebuild(
        &app.state().pool,
        app.state().executor.store(),
        &IncidentsProjection,
    );
    let (report, ()) = tokio::join!(rebuild, writer);
    let report = report.unwrap();
    assert!(report.position >= head);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let served = reader.await.unwrap();
    assert!(served > 0);

    let after = caught_up_incidents(&app, tenant).await;
    assert_eq!(after["total"], 30);
    let find = |v: &Value, id: &Uuid| {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id.to_string())
            .cloned()
            .unwrap()
    };
    for id in &ids[..10] {
        assert_eq!(
            find(&after, id),
            find(&before, id),
            "rebuilt row equals the live one"
        );
    }
    for id in &ids[10..12] {
        assert_eq!(
            find(&after, id)["actions_taken"].as_array().unwrap().len(),
            30,
            "no write lost across the swap"
        );
    }
}

#[tokio::test]
async fn the_rebuild_command_line_reports_what_it_replayed() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    for i in 0..5 {
        app.open_incident(tenant, incident(&format!("i{i}"), "low"))
            .await;
    }
    // Async wait: the live projector runs on this test's runtime and must keep going (and
    // release its checkpoint lock) while the rebuild process works.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aegis-under-test"))
        .args(["rebuild", "incidents"])
        .env("NATS_URL", &app.config.nats_url)
        .env("DATABASE_URL", &app.config.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("rebuilt incidents: 7 commits, 7 events"),
        "{stdout}"
    );
    let r = app
        .admin(Method::GET, "/incidents", Some(tenant))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["total"], 5);
}

#[tokio::test]
async fn an_event_that_cannot_be_applied_halts_the_projection_visibly() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    // An update to an incident the read model has never seen: a gap it must not paper over.
    let ghost =
        AggregateRef::new(tenant, "incidents", "incident", Uuid::now_v7().to_string()).unwrap();
    let stray: NewEvent =
        IncidentAggregate::encode(&aegis_incidents::Event::ActionRecorded { action: "x".into() });
    let bad = app
        .state()
        .executor
        .store()
        .append(&ghost, &Expected::NEW, vec![stray], &ctx().meta, None)
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = app.http.get(app.url("/readyz")).send().await.unwrap();
        if r.status() == 503 {
            let b: Value = r.json().await.unwrap();
            assert_eq!(b["checks"]["projector:incidents"]["status"], "fail");
            assert!(b["checks"]["projector:incidents"]["error"]
                .as_str()
                .unwrap()
                .contains(&format!("position {}", bad.position)));
            break;
        }
        assert!(Instant::now() < deadline, "projection never halted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("aegis_projector_halted{projection=\"incidents\"} 1"),
        "{metrics}"
    );
    // Other projections go on; queries that need the halted one say so instead of lying.
    let r = app
        .admin(Method::GET, "/incidents", Some(tenant))
        .header("Aegis-Min-Position", bad.position.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unavailable");

    // The projections sharing the reader go on past the bad commit.
    let later = app.create_tenant("Later").await;
    let head = app.head().await;
    let r = app
        .admin(Method::GET, "/admin/tenants", None)
        .header("Aegis-Min-Position", head.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains(&later.to_string()));

    // The operator sees it, and skips exactly that commit: audited, and the projection rejoins
    // the reader and catches up.
    let r = app
        .admin(Method::GET, "/admin/projections", None)
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    let incidents = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "incidents")
        .unwrap()
        .clone();
    assert_eq!(incidents["status"], "halted");
    assert_eq!(incidents["failed_position"], bad.position);
    for (body, expected) in [
        (
            json!({ "position": bad.position + 1, "reason": "wrong one" }),
            409,
        ),
        (json!({ "position": bad.position, "reason": "" }), 422),
    ] {
        let r = app
            .admin(Method::POST, "/admin/projections/incidents/skip", None)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected, "{body}");
    }
    let r = app
        .admin(Method::POST, "/admin/projections/incidents/skip", None)
        .json(&json!({ "position": bad.position, "reason": "stray update of an incident that never opened" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let skipped: Value = r.json().await.unwrap();
    assert_eq!(skipped["data"]["status"], "running");
    let r = app
        .admin(Method::POST, "/admin/projections/incidents/skip", None)
        .json(&json!({ "position": bad.position, "reason": "again" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "a running projection has nothing to skip");
    let r = app
        .admin(
            Method::GET,
            "/api/v1/audit-events?action=projection.skipped",
            Some(Uuid::nil()),
        )
        .header("Aegis-Min-Position", app.head().await.to_string())
        .send()
        .await
        .unwrap();
    let audit: Value = r.json().await.unwrap();
    assert_eq!(audit["data"][0]["actor"], "bootstrap", "{audit}");
    assert_eq!(audit["data"][0]["resource"], "projection:incidents");
    let (id, position, _) = app.open_incident(tenant, incident("after", "low")).await;
    let r = app
        .admin(Method::GET, &format!("/incidents/{id}"), Some(tenant))
        .header("Aegis-Min-Position", position.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the incidents projection resumed");
}

#[tokio::test]
async fn a_failing_batch_applies_what_precedes_the_bad_commit_and_names_it() {
    let app = TestApp::spawn_with(Roles {
        command_api: true,
        projectors: false,
        reactors: false,
    })
    .await;
    let tenant = app.create_tenant("Acme").await;
    let (before, _, _) = app.open_incident(tenant, incident("before", "low")).await;
    let ghost =
        AggregateRef::new(tenant, "incidents", "incident", Uuid::now_v7().to_string()).unwrap();
    let stray =
        IncidentAggregate::encode(&aegis_incidents::Event::ActionRecorded { action: "x".into() });
    let bad = app
        .state()
        .executor
        .store()
        .append(&ghost, &Expected::NEW, vec![stray], &ctx().meta, None)
        .await
        .unwrap();
    let (after, _, _) = app.open_incident(tenant, incident("after", "low")).await;

    let pool = &app.state().pool;
    checkpoint::ensure(pool, IncidentsProjection::NAME)
        .await
        .unwrap();
    let commits: Vec<_> = futures::StreamExt::collect::<Vec<_>>(
        app.state()
            .executor
            .store()
            .read_range(vec!["aegis.evt.>".into()], 1, None)
            .await
            .unwrap(),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let mut conn = pool.acquire().await.unwrap();
    let result =
        aegis_projectors::runner::apply_batch(&mut conn, &IncidentsProjection, &commits).await;
    let (position, error) = result.expect_err("the batch holds a commit that cannot be applied");
    assert_eq!(
        position, bad.position,
        "the halt names the exact commit: {error}"
    );

    let cp = checkpoint::get(pool, IncidentsProjection::NAME)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cp.position as u64,
        bad.position - 1,
        "everything before it is applied and checkpointed"
    );
    let ids: Vec<(Uuid,)> = sqlx::query_as("SELECT id FROM incidents")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(ids, vec![(before,)]);
    assert!(!ids.contains(&(after,)), "nothing after it is applied");
}

#[tokio::test]
async fn every_projection_reaches_the_head_even_through_commits_it_ignores() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    for i in 0..5 {
        app.open_incident(tenant, incident(&format!("i{i}"), "low"))
            .await;
    }
    let head = app.head().await as i64;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cps = checkpoint::all(&app.state().pool).await.unwrap();
        let all = aegis_projectors::PROJECTIONS
            .iter()
            .all(|p| cps.iter().any(|c| c.name == *p));
        if all && cps.iter().all(|c| c.position == head) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "checkpoints stuck below {head}: {:?}",
            cps.iter()
                .map(|c| (&c.name, c.position))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The identity read model still answers for positions it never had to write at.
    let r = app
        .admin(Method::GET, "/api/v1/users", Some(tenant))
        .header("Aegis-Min-Position", head.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_rebuild_started_over_the_api_reports_its_progress_and_serves_throughout() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    for i in 0..20 {
        app.open_incident(tenant, incident(&format!("i{i}"), "low"))
            .await;
    }
    let r = app
        .admin(Method::POST, "/admin/projections/incidents/rebuild", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = app
        .admin(Method::POST, "/admin/projections/nope/rebuild", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Queries keep answering while the rebuild runs.
        let r = app
            .admin(Method::GET, "/incidents", Some(tenant))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = app
            .admin(Method::GET, "/admin/projections", None)
            .send()
            .await
            .unwrap();
        let list: Value = r.json().await.unwrap();
        let p = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "incidents")
            .unwrap()
            .clone();
        if p["rebuild"]["state"] == "done" {
            assert!(p["rebuild"]["commits"].as_u64().unwrap() >= 21, "{p}");
            break;
        }
        assert_ne!(p["rebuild"]["state"], "failed", "{p}");
        assert!(Instant::now() < deadline, "rebuild never finished: {p}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = app
        .admin(Method::GET, "/incidents?limit=500", Some(tenant))
        .header("Aegis-Min-Position", app.head().await.to_string())
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["total"], 20);
    // A tenant's ADMIN does not operate the platform's read side.
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let r = app
        .bearer(
            Method::POST,
            "/admin/projections/incidents/rebuild",
            &admin.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// A rebuild on another instance (here: another session holding its lease) refuses a second
/// one, instead of dropping the shadow table under it.
#[tokio::test]
async fn a_rebuild_running_elsewhere_refuses_another() {
    use aegis_runtime::leases;
    let app = TestApp::spawn().await;
    let elsewhere = leases::try_take(&app.db.url(), leases::rebuild_key("incidents"))
        .await
        .unwrap()
        .expect("the lease is free");
    let r = app
        .admin(Method::POST, "/admin/projections/incidents/rebuild", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("another instance"),
        "{body}"
    );
    drop(elsewhere);
    // The lease ends with its session; the server sees it at once.
    let mut status = 0;
    for _ in 0..50 {
        let r = app
            .admin(Method::POST, "/admin/projections/incidents/rebuild", None)
            .send()
            .await
            .unwrap();
        status = r.status().as_u16();
        if status == 202 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 202);
}

/// The database drops every connection of Aegis (as a restart of Postgres does) 20 times at
/// random moments while the projectors apply a stream of commits: the projection, caught up,
/// equals a rebuild from the log row for row (transactions that were cut off left nothing
/// half-applied, and none was applied twice).
#[tokio::test]
async fn connections_cut_mid_projection_twenty_times_leave_it_equal_to_a_rebuild() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            app.open_incident(tenant, incident(&format!("i{i}"), "low"))
                .await
                .0,
        );
    }
    let admin_url = std::env::var("AEGIS_TEST_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let database = app.db.name.clone();
    let cutter = tokio::spawn(async move {
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
            .await
            .unwrap();
        let mut cut = 0;
        for _ in 0..20 {
            let pause = 20 + u64::from(Uuid::now_v7().as_bytes()[15]) % 60;
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let (n,): (i64,) = sqlx::query_as(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&database)
            .fetch_one(&mut admin)
            .await
            .unwrap();
            cut += n;
        }
        cut
    });
    load_actions(&app, tenant, &ids, 40, 2).await;
    let cut = cutter.await.unwrap();
    assert!(cut >= 20, "connections were cut: {cut}");
    let head = app.head().await;
    wait_for_position(
        &app,
        IncidentsProjection::NAME,
        head,
        Duration::from_secs(60),
    )
    .await;
    let cp = checkpoint::get(&app.state().pool, IncidentsProjection::NAME)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !cp.halted(),
        "a cut connection is retried, not a halt: {cp:?}"
    );
    let live = app.incidents_digest(tenant).await;
    assert_eq!(live.0, 8);

    aegis_projectors::rebuild::rebuild(
        &app.state().pool,
        app.state().executor.store(),
        &IncidentsProjection,
    )
    .await
    .unwrap();
    let rebuilt = app.incidents_digest(tenant).await;
    assert_eq!(live, rebuilt, "the live projection equals a rebuild");
}
