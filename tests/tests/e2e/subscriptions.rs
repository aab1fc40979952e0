//! `GET /events/stream`: CloudEvents over SSE, filtered, tenant-scoped, and resumable with
//! `Last-Event-ID` across a restart of the server with no gap and no duplicate.

use aegis_tests::world::incident;
use aegis_tests::TestApp;
use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// Reads `count` events (id, CloudEvent) from an open stream, or fails after 15 s.
async fn read_events(r: reqwest::Response, count: usize) -> Vec<(String, Value)> {
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut body = r.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while out.len() < count {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("events arrive in time")
            .expect("the stream stays open")
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let (mut id, mut data) = (None, None);
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str::<Value>(v.trim()).unwrap());
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                out.push((id, data));
            }
        }
    }
    out
}

async fn open(app: &TestApp, tenant: Uuid, query: &str, last: Option<&str>) -> reqwest::Response {
    let mut r = app.admin(Method::GET, &format!("/events/stream{query}"), Some(tenant));
    if let Some(id) = last {
        r = r.header("Last-Event-ID", id);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn a_subscriber_sees_its_tenants_events_as_cloud_events_filtered() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Watched").await;
    let other = app.create_tenant("Elsewhere").await;
    let (mine, _, _) = app.open_incident(tenant, incident("mine", "high")).await;
    app.open_incident(other, incident("theirs", "high")).await;
    let (s, _) = app
        .call(
            tenant,
            Method::PATCH,
            &format!("/incidents/{mine}"),
            Some(serde_json::json!({ "status": "investigating" })),
        )
        .await;
    assert!(s < 300, "{s}");

    let events = read_events(
        open(&app, tenant, "?from=1&context=incidents", None).await,
        2,
    )
    .await;
    assert_eq!(events[0].1["type"], "incident.opened.v1");
    assert_eq!(events[0].1["specversion"], "1.0");
    assert_eq!(events[0].1["subject"], format!("incident/{mine}"));
    assert_eq!(events[0].1["data"]["title"], "mine");
    assert_eq!(
        events[0].1["source"],
        format!("/aegis/tenants/{tenant}/incidents")
    );
    assert_eq!(events[0].0, events[0].1["aegisposition"].to_string());
    assert!(events
        .iter()
        .all(|(_, e)| e["source"].as_str().unwrap().contains(&tenant.to_string())));

    let only = read_events(
        open(&app, tenant, "?from=1&event_type=incident.opened.v1", None).await,
        1,
    )
    .await;
    assert_eq!(only[0].1["data"]["title"], "mine");

    // The other tenant's subscriber never sees this tenant's incident, even from the start.
    let theirs = read_events(
        open(&app, other, "?from=1&context=incidents", None).await,
        1,
    )
    .await;
    assert_eq!(theirs[0].1["data"]["title"], "theirs");

    // Bad filters are refused with the field.
    let r = open(&app, tenant, "?context=Not-A-Word", None).await;
    assert_eq!(r.status(), 422);
    let r = open(&app, tenant, "", Some("yesterday")).await;
    assert_eq!(r.status(), 400);
    // AUDITOR reads the stream; a user of no role does not.
    let nobody = app.user_with_role(tenant, None).await;
    let r = app
        .bearer(Method::GET, "/events/stream", &nobody.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// Read some events, restart the server while more are appended, reconnect with the last id
/// seen: the stream continues with exactly the next event.
#[tokio::test]
async fn a_subscriber_resumes_across_a_restart_with_no_gap_and_no_duplicate() {
    let mut app = TestApp::spawn().await;
    let tenant = app.create_tenant("Resumed").await;
    for i in 0..3 {
        app.open_incident(tenant, incident(&format!("before {i}"), "low"))
            .await;
    }
    let first = read_events(
        open(&app, tenant, "?from=1&context=incidents", None).await,
        2,
    )
    .await;
    let last_seen = first[1].0.clone();
    app.start_again().await;
    for i in 0..2 {
        app.open_incident(tenant, incident(&format!("after {i}"), "low"))
            .await;
    }
    let rest = read_events(
        open(&app, tenant, "?context=incidents", Some(&last_seen)).await,
        3,
    )
    .await;
    let titles: Vec<&str> = first
        .iter()
        .chain(rest.iter())
        .map(|(_, e)| e["data"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["before 0", "before 1", "before 2", "after 0", "after 1"]
    );
    let ids: Vec<u64> = first
        .iter()
        .chain(rest.iter())
        .map(|(id, _)| id.parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

/// An AUDITOR's stream carries every event of the tenant, but no credential material: no
/// password hash, no key digest.
#[tokio::test]
async fn a_subscriber_never_reads_credential_material() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Watched").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let (_, key) = app.api_key(&admin.token, &["incident.read"]).await;
    let digest = app.state().keyring.digest(&key);
    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;
    let r = app
        .bearer(Method::GET, "/events/stream?from=1", &auditor.token)
        .send()
        .await
        .unwrap();
    // Tenant, ADMIN (created, role, login), key, AUDITOR (created, role, login).
    let events = read_events(r, 8).await;
    let text = serde_json::to_string(&events).unwrap();
    assert!(text.contains("user.created.v1") && text.contains("api_key.created.v1"));
    assert!(!text.contains("$argon2id"), "{text}");
    assert!(!text.contains(&digest), "{text}");
    assert!(!text.contains("password_hash"), "{text}");
}
