//! SIGTERM (issue 21): `aegis serve` with event streams open stops within its grace period,
//! each stream told to reconnect (a `reconnect` event with `retry:`) after the events it had,
//! so a client resumes elsewhere with `Last-Event-ID` (resuming is `streams.rs`'s test).

use aegis_tests::instance::Instance;
use aegis_tests::world::BOOTSTRAP;
use aegis_tests::TestApp;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[tokio::test]
async fn sigterm_ends_open_streams_with_a_reconnect_and_exits_within_the_grace_period() {
    let world = TestApp::spawn_with(aegis_command_api::app::Roles {
        command_api: false,
        projectors: false,
        reactors: false,
    })
    .await;
    let mut aegis = Instance::start(
        env!("CARGO_BIN_EXE_aegis-under-test"),
        &world,
        &[("AEGIS_SHUTDOWN_GRACE_SECS", "5")],
    )
    .await;
    let base = aegis.base.clone();
    let http = reqwest::Client::new();
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

    let sent = Instant::now();
    aegis.signal("TERM");
    let status = aegis.exited(Duration::from_secs(15)).await;
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
