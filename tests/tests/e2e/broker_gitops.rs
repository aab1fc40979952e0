//! Seed 004's GitOps integrations (issue 19), first part: off by default (404 everywhere);
//! on, an Argo CD endpoint is added with a write-once token that never shows again nor reaches
//! the log, its URL passes the SSRF guard (refused without dialling), and its applications are
//! read from a loopback stand-in that answers Argo CD's application API to GET alone; a
//! mapping ties an application to exactly one target. Observations: `broker_gitops_watch.rs`.

use crate::broker_requests::call;
use aegis_tests::TestApp;
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "argocd-api-token-0123456789abcdef";

/// Argo CD's `GET /api/v1/applications` with a bearer token; anything else is recorded and
/// refused.
async fn argocd() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().fallback(move |method: HttpMethod, uri: axum::http::Uri, h: HeaderMap| {
        let s = s.clone();
        async move {
            s.lock().expect("lock").push(format!("{method} {}", uri.path()));
            if method != HttpMethod::GET || uri.path() != "/api/v1/applications" {
                return (StatusCode::METHOD_NOT_ALLOWED, axum::Json(json!({ "error": "GET only" })));
            }
            if h.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {TOKEN}")) {
                return (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": "no session" })));
            }
            (StatusCode::OK, axum::Json(json!({ "metadata": {}, "items": [
                { "metadata": { "name": "payments", "namespace": "argocd" },
                  "spec": { "project": "default", "destination": { "namespace": "payments" } },
                  "status": { "sync": { "status": "Synced" }, "health": { "status": "Healthy" } } },
                { "metadata": { "name": "ledger", "namespace": "argocd" },
                  "spec": { "project": "finance" },
                  "status": { "sync": { "status": "OutOfSync" }, "health": { "status": "Progressing" } } }
            ] })))
        }
    });
    (aegis_tests::world::serve(app).await, seen)
}

#[tokio::test]
async fn gitops_routes_are_absent_while_the_feature_is_off() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("gitops-off").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let id = uuid::Uuid::now_v7();
    for (method, path) in [
        (Method::POST, "/api/v1/argocd-endpoints".to_string()),
        (Method::GET, "/api/v1/argocd-endpoints".to_string()),
        (
            Method::GET,
            format!("/api/v1/argocd-endpoints/{id}/discovered-apps"),
        ),
        (
            Method::PUT,
            format!("/api/v1/argocd-endpoints/{id}/enabled"),
        ),
        (Method::DELETE, format!("/api/v1/argocd-endpoints/{id}")),
        (Method::GET, "/api/v1/gitops-app-mappings".to_string()),
        (Method::GET, format!("/api/v1/requests/{id}/gitops")),
    ] {
        let (s, e) = call(&app, &admin, method, &path, Some(json!({}))).await;
        assert_eq!(s, 404, "{path}: {e}");
    }
}

#[tokio::test]
async fn an_argo_cd_endpoint_keeps_its_token_sealed_and_is_only_ever_read() {
    let (url, seen) = argocd().await;
    let app = TestApp::spawn_with_config(|c| {
        c.gitops_enabled = true;
        c.egress_allow = vec!["127.0.0.1".into()];
    })
    .await;
    let tenant = app.create_tenant("gitops").await;
    let other = app.create_tenant("gitops-other").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let outsider = app.user_with_role(other, Some("ADMIN")).await;

    // A private address is refused by the guard before anything is dialled or recorded.
    let head = app.head().await;
    let (s, e) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/argocd-endpoints",
        Some(json!({ "name": "inside", "url": "https://10.0.0.1", "token": TOKEN })),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("egress_refused")),
        "{e}"
    );
    let (s, e) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/argocd-endpoints",
        Some(json!({ "name": "hub", "url": url, "token": " " })),
    )
    .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("token_b64")), "{e}");
    assert_eq!(app.head().await, head, "refusals record nothing");

    let (s, ep) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/argocd-endpoints",
        Some(json!({ "name": "hub", "base_url": url,
            "token_b64": STANDARD.encode(TOKEN) })),
    )
    .await;
    assert_eq!((s, ep["token_set"].as_bool()), (201, Some(true)), "{ep}");
    assert_eq!(ep["base_url"], url.as_str());
    assert!(!ep.to_string().contains(TOKEN));
    let id = ep["id"].as_str().expect("id").to_string();
    let (s, _) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/argocd-endpoints",
        Some(json!({ "name": "HUB", "url": url, "token": TOKEN })),
    )
    .await;
    assert_eq!(s, 409);
    let (_, list) = call(&app, &admin, Method::GET, "/api/v1/argocd-endpoints", None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert!(!list.to_string().contains(TOKEN));
    let log = app.log_bytes().await;
    assert!(
        !log.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
        "the token is sealed"
    );

    let apps_path = format!("/api/v1/argocd-endpoints/{id}/discovered-apps");
    let (s, apps) = call(&app, &admin, Method::GET, &apps_path, None).await;
    assert_eq!(s, 200, "{apps}");
    assert_eq!(
        apps,
        json!([
            { "name": "payments", "namespace": "argocd", "project": "default", "sync_status": "Synced", "health_status": "Healthy" },
            { "name": "ledger", "namespace": "argocd", "project": "finance", "sync_status": "OutOfSync", "health_status": "Progressing" },
        ])
    );
    assert!(
        seen.lock()
            .expect("lock")
            .iter()
            .all(|r| r.starts_with("GET ")),
        "only GET: {:?}",
        seen.lock()
    );

    let (s, _) = call(&app, &outsider, Method::GET, &apps_path, None).await;
    assert_eq!(s, 404, "another tenant's endpoint is not there");

    // A mapping ties an application to exactly one target, and keeps its endpoint.
    let target = uuid::Uuid::now_v7();
    for body in [
        json!({ "argocd_endpoint_id": id, "application_name": "payments" }),
        json!({ "argocd_endpoint_id": id, "application_name": "payments",
            "secret_mapping_id": target, "provider_connection_id": target }),
    ] {
        let (s, e) = call(
            &app,
            &admin,
            Method::POST,
            "/api/v1/gitops-app-mappings",
            Some(body),
        )
        .await;
        assert_eq!(s, 400, "{e}");
    }
    let (s, m) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/gitops-app-mappings",
        Some(
            json!({ "argocd_endpoint_id": id, "application_name": "payments",
            "application_namespace": "argocd", "secret_mapping_id": target }),
        ),
    )
    .await;
    assert_eq!(
        (s, m["secret_mapping_id"].as_str()),
        (201, Some(target.to_string().as_str())),
        "{m}"
    );
    let mapping = m["id"].as_str().expect("id").to_string();
    let (_, list) = call(
        &app,
        &outsider,
        Method::GET,
        "/api/v1/gitops-app-mappings",
        None,
    )
    .await;
    assert_eq!(list, json!([]), "another tenant's mappings are not there");
    let (s, e) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/argocd-endpoints/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 409, "an endpoint a mapping uses stays: {e}");
    let (s, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/gitops-app-mappings/{mapping}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, e) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/requests/{}/gitops", uuid::Uuid::now_v7()),
        None,
    )
    .await;
    assert_eq!(s, 404, "no such request: {e}");

    let (s, _) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/argocd-endpoints/{id}/enabled"),
        Some(json!({ "enabled": false })),
    )
    .await;
    assert_eq!(s, 204);
    let (s, e) = call(&app, &admin, Method::GET, &apps_path, None).await;
    assert_eq!(s, 409, "{e}");
    let (s, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/argocd-endpoints/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, list) = call(&app, &admin, Method::GET, "/api/v1/argocd-endpoints", None).await;
    assert_eq!(list, Value::Array(vec![]));
}
