//! Seed 003's surface frame (issue 23): all 180 rows routed and documented, answered in the
//! document's error body with rate-limit headers and a request id, at both spellings where
//! the document lists a service under `/v1`; a row not built yet answers 501 only after
//! authentication, authorization and the tenant's entitlements.

use aegis_command_api::auth::platform_routes::PLATFORM;
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = app
        .http
        .request(method, app.url(path))
        .header("content-type", "application/json")
        .body("{}");
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.expect("send");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

fn assert_platform_error(body: &Value, status: u16, name: &str, code: &str) {
    assert_eq!(body["statusCode"], status, "{body}");
    assert_eq!(body["error"], name, "{body}");
    assert_eq!(body["details"]["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["requestId"].is_string(), "{body}");
    let at = body["timestamp"].as_str().expect("timestamp");
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
}

#[tokio::test]
async fn unbuilt_rows_answer_501_in_the_documents_body_after_every_check() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("QNSP").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let viewer = app.user_with_role(tenant, None).await;
    let path = "/kms/v1/byohsm/keys";

    // Nobody: 401 in seed 003's body, with the caller's request id echoed.
    let (s, h, b) = call(
        &app,
        Method::POST,
        path,
        None,
        &[("X-Request-ID", "trace-me-1")],
    )
    .await;
    assert_eq!(s, 401);
    assert_platform_error(&b, 401, "UNAUTHORIZED", "unauthorized");
    assert_eq!(b["requestId"], "trace-me-1");
    assert_eq!(h["x-request-id"], "trace-me-1");

    // Without the permission: 403 naming it.
    let (s, _, b) = call(&app, Method::POST, path, Some(&viewer.token), &[]).await;
    assert_eq!(s, 403, "{b}");
    assert_platform_error(&b, 403, "FORBIDDEN", "forbidden");
    assert_eq!(b["details"]["required_permission"], "kms.manage");

    // Permitted, but the tenant has neither the service nor the add-on.
    let (s, h, b) = call(&app, Method::POST, path, Some(&admin.token), &[]).await;
    assert_eq!(s, 403, "{b}");
    assert_platform_error(&b, 403, "FORBIDDEN", "entitlement_required");
    assert_eq!(b["details"]["entitlement"], "kms");
    assert!(
        h.contains_key("x-request-id"),
        "a request id even when not sent"
    );
    app.set_plan(tenant, json!({ "addons": ["kms"] })).await;
    let (s, _, b) = call(&app, Method::POST, path, Some(&admin.token), &[]).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(b["details"]["entitlement"], "byohsm", "{b}");

    // Entitled: the row is not built, and says so; nothing was appended or metered.
    app.set_plan(
        tenant,
        json!({ "addons": ["kms", "byohsm"], "requests_per_second": 5 }),
    )
    .await;
    let head = app.head().await;
    let (s, h, b) = call(&app, Method::POST, path, Some(&admin.token), &[]).await;
    assert_eq!(s, 501, "{b}");
    assert_platform_error(&b, 501, "NOT_IMPLEMENTED", "not_implemented");
    assert_eq!(b["details"]["route"], "POST /kms/v1/byohsm/keys");
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        let v = h
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(v.parse::<u64>().is_ok(), "{name}: {v:?}");
    }
    let (_, h2, _) = call(&app, Method::POST, path, Some(&admin.token), &[]).await;
    let remaining = |h: &reqwest::header::HeaderMap| -> u64 {
        h["x-ratelimit-remaining"]
            .to_str()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0)
    };
    assert_eq!(
        h["x-ratelimit-limit"], "10",
        "two seconds of the plan's rate"
    );
    assert!(remaining(&h2) < remaining(&h), "each request takes one");
    assert_eq!(app.head().await, head, "a 501 records nothing");

    // A route the document marks without `entitlements` needs no entitlement.
    let (s, _, b) = call(
        &app,
        Method::POST,
        "/auth/risk/signals",
        Some(&admin.token),
        &[],
    )
    .await;
    assert_eq!(s, 501, "{b}");
}

#[tokio::test]
async fn a_service_listed_under_v1_answers_at_its_base_path_too() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("QNSP").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    app.set_plan(tenant, json!({ "addons": ["vault", "ai", "audit"] }))
        .await;
    // A built row (leakage stats) and rows not built yet answer alike at both spellings.
    for (documented, base, status) in [
        (
            "/v1/leakage-detection/stats",
            "/vault/v1/leakage-detection/stats",
            200,
        ),
        ("/v1/costs/analytics", "/ai/v1/costs/analytics", 501),
        ("/v1/streaming/metrics", "/audit/v1/streaming/metrics", 501),
    ] {
        let (s1, _, b1) = call(&app, Method::GET, documented, Some(&admin.token), &[]).await;
        let (s2, _, b2) = call(&app, Method::GET, base, Some(&admin.token), &[]).await;
        assert_eq!((s1, s2), (status, status), "{b1} {b2}");
        if status == 200 {
            assert_eq!(b1, b2);
        }
    }
    // Other services have one spelling, and an unknown path on the surface is a 404 in its body.
    let (s, _, b) = call(
        &app,
        Method::GET,
        "/vault/v1/costs/analytics",
        Some(&admin.token),
        &[],
    )
    .await;
    assert_eq!(s, 404, "{b}");
    assert_platform_error(&b, 404, "NOT_FOUND", "not_found");
}

#[tokio::test]
async fn every_row_is_in_the_api_document_with_what_it_needs() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let mut documented = 0;
    for row in PLATFORM {
        let mut spellings = vec![row.route.path.to_string()];
        spellings.extend(row.alias());
        for path in spellings {
            let op = &doc["paths"][&path][row.route.method.to_ascii_lowercase()];
            assert!(op.is_object(), "{} {path} is documented", row.route.method);
            documented += 1;
            let planned = op["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "planned"));
            if !planned {
                // Built: documented by its handler, with its real answers.
                assert!(
                    op["responses"]
                        .as_object()
                        .is_some_and(|r| r.keys().any(|k| k.starts_with('2'))),
                    "{path}"
                );
                continue;
            }
            assert!(op["responses"]["501"].is_object(), "{path}");
            let text = op["description"].as_str().unwrap_or_default();
            assert!(
                text.contains(row.route.permission.as_str()),
                "{path}: {text}"
            );
            if let Some(meter) = row.route.meter {
                assert!(text.contains(meter), "{path}: {text}");
            }
        }
    }
    let aliases = PLATFORM.iter().filter(|r| r.alias().is_some()).count();
    assert_eq!(aliases, 29 + 12 + 7, "vault, AI and audit rows");
    assert_eq!(documented, PLATFORM.len() + aliases);
}
