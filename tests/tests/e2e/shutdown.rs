//! SIGTERM (issue 21): `aegis serve` with event streams open stops within its grace period,
//! each stream told to reconnect (a `reconnect` event with `retry:`) after the events it had,
//! so a client resumes elsewhere with `Last-Event-ID` (resuming is `streams.rs`'s test).

use aegis_tests::world::{free_port, BOOTSTRAP};
use aegis_tests::TestApp;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

#[tokio::test]
async fn sigterm_ends_open_streams_with_a_reconnect_and_exits_within_the_grace_period() {
    let world = TestApp::spawn_with(aegis_command_api::app::Roles {
        command_api: false,
        projectors: false,
        reactors: false,
    })
    .await;
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_aegis-under-test"))
        .arg("serve")
        .env("NATS_URL", &world.config.nats_url)
        .env("DATABASE_URL", &world.config.database_url)
        .env("AEGIS_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("AEGIS_MASTER_KEY", MASTER_KEY)
        .env("AEGIS_BOOTSTRAP_TOKEN", BOOTSTRAP)
        .env("AEGIS_SHUTDOWN_GRACE_SECS", "5")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("aegis starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..300 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "aegis did not become ready");
    let call = |m: Method, p: &str, t: Option<Uuid>| {
        let mut r = http.request(m, format!("{base}{p}")).bearer_auth(BOOTSTRAP);
        if let Some(t) = t {
            r = r.header("X-Tenant-ID", t.to_string());
        }
        r
    };
    let t: Value = call(Method::POST, "/admin/tenants", None)
        .json(&json!({ "name": "Shutdown" }))
        .send()
        .await
        .expect("tenant")
        .json()
        .await
        .expect("json");
    let tenant: Uuid = t["data"]["id"].as_str().expect("id").parse().expect("uuid");

    let mut streams = Vec::new();
    for _ in 0..3 {
        let r = call(Method::GET, "/events/stream", Some(tenant))
            .send()
            .await
            .expect("stream");
        assert_eq!(r.status(), 200);
        streams.push(tokio::spawn(async move {
            let mut body = String::new();
            let mut chunks = r.bytes_stream();
            while let Some(Ok(c)) = chunks.next().await {
                body.push_str(&String::from_utf8_lossy(&c));
            }
            body
        }));
    }
    // A change in the tenant the streams see (the platform admin's own command).
    let r = call(Method::PUT, &format!("/admin/tenants/{tenant}/plan"), None)
        .json(&json!({ "addons": ["vault"] }))
        .send()
        .await
        .expect("plan");
    assert_eq!(r.status(), 200);
    let position: u64 = r
        .headers()
        .get("aegis-position")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("position header");
    // Let the event reach the streams before the signal.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pid = child.id().expect("running");
    let sent = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("aegis exits after SIGTERM")
        .expect("exit status");
    let took = sent.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(7), "took {took:?}");
    for s in streams {
        let body = tokio::time::timeout(Duration::from_secs(5), s)
            .await
            .expect("the stream ended")
            .expect("reader");
        assert!(body.contains(&format!("id: {position}")), "{body}");
        let event = body.find(&format!("id: {position}")).expect("the event");
        let told = body.find("event: reconnect").expect("told to reconnect");
        assert!(event < told, "{body}");
        assert!(body.contains("retry: 1000"), "{body}");
    }
}
