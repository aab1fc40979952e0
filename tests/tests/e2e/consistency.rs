//! Read-your-writes by default (issue 17): seed clients never send `Aegis-Min-Position`, and
//! still read what they just wrote, whichever instance served the write and whichever serves
//! the read; a principal who wrote nothing never waits for anyone else's writes.

use aegis_tests::world::{BOOTSTRAP, INTERNAL};
use aegis_tests::TestApp;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

async fn send(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    tenant: Option<Uuid>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(BOOTSTRAP);
    if let Some(t) = tenant {
        r = r.header("X-Tenant-ID", t.to_string());
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .or_else(|| list["credentials"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|x| x["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_client_reads_its_own_writes_through_either_instance_without_a_header() {
    let app = TestApp::spawn().await;
    let (_other, there) = app.second_instance().await;
    let here = app.url("");
    let http = reqwest::Client::new();
    let tenant = app.create_tenant("Consistent").await;
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    use reqwest::Method as M;

    // Each write goes to one instance and the read right after it to the other, alternately.
    for i in 0..20 {
        let (write, read) = if i % 2 == 0 {
            (&here, &there)
        } else {
            (&there, &here)
        };

        let name = format!("tenant-{i}");
        let (s, b) = send(
            &http,
            write,
            M::POST,
            "/admin/tenants",
            None,
            Some(json!({ "name": name })),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        let (s, list) = send(&http, read, M::GET, "/admin/tenants?limit=100", None, None).await;
        assert_eq!(s, 200, "{list}");
        assert!(
            names(&list).contains(&name),
            "try {i}: the new tenant is listed: {list}"
        );

        let name = format!("cred-{i}");
        let body =
            json!({ "name": name, "credential_type": "api_key", "provider": "api", "value": "v" });
        let (s, b) = send(
            &http,
            write,
            M::POST,
            "/credentials",
            Some(tenant),
            Some(body),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        let (s, list) = send(&http, read, M::GET, "/credentials", Some(tenant), None).await;
        assert_eq!(s, 200, "{list}");
        assert!(
            names(&list).contains(&name),
            "try {i}: the new credential is listed: {list}"
        );

        let name = format!("key-{i}");
        let body = json!({ "name": name, "scopes": ["incident.read"] });
        let (s, b) = send(&http, write, M::POST, "/api-keys", Some(tenant), Some(body)).await;
        assert_eq!(s, 201, "{b}");
        let (s, list) = send(
            &http,
            read,
            M::GET,
            "/api-keys?limit=100",
            Some(tenant),
            None,
        )
        .await;
        assert_eq!(s, 200, "{list}");
        assert!(
            names(&list).contains(&name),
            "try {i}: the new key is listed: {list}"
        );
    }
}

#[tokio::test]
async fn only_the_writer_waits_for_its_write_and_a_sent_position_still_rules() {
    let mut app = TestApp::spawn_with_config(|c| c.min_position_wait_ms = 1_000).await;
    let tenant = app.create_tenant("Lagging").await;
    // The platform admin's own write is applied before the projector stops.
    assert_eq!(app.caught_up(tenant, "/incidents").await.0, 200);
    let (_other, there) = app.second_instance().await;
    let (_third, elsewhere) = app.second_instance().await;
    // The only projector stops: from here on nothing written is applied to the read models.
    app.stop().await;
    let http = reqwest::Client::new();
    let opened = http
        .post(format!("{there}/incidents"))
        .header("X-Internal-Secret", INTERNAL)
        .header("X-Tenant-ID", tenant.to_string())
        .json(&aegis_tests::world::incident("unapplied", "high"))
        .send()
        .await
        .expect("send");
    assert_eq!(opened.status(), 201);
    let id = opened.json::<Value>().await.expect("json")["data"]["id"]
        .as_str()
        .expect("id")
        .to_string();

    // The writer's read waits for its write, and says when to retry.
    let started = Instant::now();
    let r = http
        .get(format!("{there}/incidents/{id}"))
        .header("X-Internal-Secret", INTERNAL)
        .header("X-Tenant-ID", tenant.to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(started.elapsed() >= Duration::from_millis(900));

    // So does its read through an instance that never saw the write, which runs the query
    // while it looks the writer's position up, finds it unapplied, and waits for it.
    let started = Instant::now();
    let r = http
        .get(format!("{elsewhere}/incidents/{id}"))
        .header("X-Internal-Secret", INTERNAL)
        .header("X-Tenant-ID", tenant.to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 503, "not a 404 from the read model that lags");
    assert!(r.headers().contains_key("retry-after"));
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Someone who wrote nothing since reads at once, without the unapplied incident.
    let started = Instant::now();
    let (s, list) = send(
        &http,
        &there,
        reqwest::Method::GET,
        "/incidents",
        Some(tenant),
        None,
    )
    .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(0), "{list}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "a reader who wrote nothing waited {:?}",
        started.elapsed()
    );

    // A position the client sends is the one it gets, even for the writer.
    let r = http
        .get(format!("{there}/incidents/{id}"))
        .header("X-Internal-Secret", INTERNAL)
        .header("X-Tenant-ID", tenant.to_string())
        .header("Aegis-Min-Position", "1")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404, "not applied yet, and not waited for");
}

/// Sixteen answers to one principal at once store its highest position, in a few writes to
/// the bucket rather than one each (each write is an fsync, and one key's writers would race
/// one another for its revision).
#[tokio::test]
async fn concurrent_answers_to_one_principal_store_the_highest_position_in_few_writes() {
    use aegis_runtime::positions::Positions;
    let app = TestApp::spawn().await;
    let positions = app.state().positions.clone();
    let key = Positions::key("user", &Uuid::now_v7().to_string());
    let js = async_nats::jetstream::new(
        async_nats::connect(app.config.nats_url.clone())
            .await
            .expect("connect"),
    );
    let mut bucket = js
        .get_stream(format!("KV_{}", aegis_streams::provision::POSITIONS_BUCKET))
        .await
        .expect("bucket");
    let before = bucket.info().await.expect("info").state.last_sequence;
    let written = futures::future::join_all((1..=16u64).map(|i| {
        let (positions, key) = (positions.clone(), key.clone());
        async move { positions.wrote(&key, 1_000 + i).await }
    }))
    .await;
    assert!(written.iter().all(Result::is_ok), "{written:?}");
    assert_eq!(positions.last(&key).await.expect("last"), Some(1_016));
    let writes = bucket.info().await.expect("info").state.last_sequence - before;
    assert!((1..16).contains(&writes), "{writes} writes for 16 answers");
}
