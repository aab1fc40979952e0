//! A lost event log answers a clear 503 with `Retry-After`, never a 500, and the same command
//! lands once the log is back.

use aegis_tests::world::incident;
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn a_command_while_nats_is_down_is_503_with_retry_after_and_lands_when_it_is_back() {
    let mut app = TestApp::spawn().await;
    let tenant = app.create_tenant("Outage").await;
    app.open_incident(tenant, incident("before", "high")).await;

    app.nats.kill();
    let r = app
        .internal(Method::POST, "/incidents", tenant)
        .json(&incident("during", "high"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("an answer, not a hang");
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").cloned();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 503, "{body}");
    assert!(retry.is_some(), "Retry-After: {body}");

    app.nats.start_again();
    let mut landed = false;
    for _ in 0..60 {
        let r = app
            .internal(Method::POST, "/incidents", tenant)
            .json(&incident("after", "high"))
            .send()
            .await
            .expect("send");
        if r.status().is_success() {
            landed = true;
            break;
        }
        assert_eq!(r.status().as_u16(), 503, "only 503 while it reconnects");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(landed, "commands land again once the log is back");
}
