//! Seed 004's projects and environments (issue 19): names unique (a project's in the tenant,
//! an environment's in its project), archived projects take no environment, environments go
//! and come, policies select on real projects, and another tenant sees none of it.

use crate::broker_requests::call;
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn projects_and_environments_keep_their_names_and_their_tenant() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("projects").await;
    let other = app.create_tenant("projects-other").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let reader = app.user_with_role(tenant, Some("AUDITOR")).await;
    let outsider = app.user_with_role(other, Some("ADMIN")).await;

    let (s, p) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/projects",
        Some(json!({ "name": "Payments" })),
    )
    .await;
    assert_eq!((s, p["status"].as_str()), (201, Some("active")), "{p}");
    let project = p["id"].as_str().expect("id").to_string();
    let (s, e) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/projects",
        Some(json!({ "name": "payments" })),
    )
    .await;
    assert_eq!(s, 409, "{e}");
    let (s, e) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/projects",
        Some(json!({ "name": "x", "status": "gone" })),
    )
    .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("status")), "{e}");
    let (s, _) = call(
        &app,
        &reader,
        Method::POST,
        "/api/v1/projects",
        Some(json!({ "name": "mine" })),
    )
    .await;
    assert_eq!(s, 403, "reading is not editing");

    // An archived project takes no environment.
    let status = format!("/api/v1/projects/{project}/status");
    let (s, _) = call(
        &app,
        &admin,
        Method::PUT,
        &status,
        Some(json!({ "status": "archived" })),
    )
    .await;
    assert_eq!(s, 204);
    let env = json!({ "project_id": project, "name": "prod", "type": "prod" });
    let (s, e) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/environments",
        Some(env.clone()),
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (409, Some("archived")), "{e}");
    let (s, _) = call(
        &app,
        &admin,
        Method::PUT,
        &status,
        Some(json!({ "status": "active" })),
    )
    .await;
    assert_eq!(s, 204);
    let (s, made) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/environments",
        Some(env.clone()),
    )
    .await;
    assert_eq!((s, made["type"].as_str()), (201, Some("prod")), "{made}");
    let env_id = made["id"].as_str().expect("id").to_string();
    let (s, e) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/environments",
        Some(json!({ "project_id": project, "name": "PROD" })),
    )
    .await;
    assert_eq!(s, 409, "{e}");
    let (s, e) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/environments",
        Some(json!({ "project_id": project, "name": "qa", "type": "test" })),
    )
    .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("type")), "{e}");
    let (s, list) = call(
        &app,
        &reader,
        Method::GET,
        &format!("/api/v1/projects/{project}/environments"),
        None,
    )
    .await;
    assert_eq!((s, list.as_array().map(Vec::len)), (200, Some(1)), "{list}");

    // Policies select on the tenant's projects only.
    let (s, w) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/workflows",
        Some(json!({ "name": "two", "min_approvers": 2 })),
    )
    .await;
    assert_eq!(s, 201, "{w}");
    let (s, e) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/policies",
        Some(json!({ "name": "p", "workflow_id": w["id"],
        "selector": { "project_id": uuid::Uuid::now_v7() } })),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (400, Some("selector.project_id")),
        "{e}"
    );
    let (s, p) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/policies",
        Some(json!({ "name": "p", "workflow_id": w["id"],
        "selector": { "project_id": project, "environment": "prod" } })),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let (s, r) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/requests/read",
        Some(json!({ "project_id": project,
        "environment": "prod", "target_provider_type": "kubernetes", "target_secret_ref": "db",
        "target_keys": ["password"], "justification": "why" })),
    )
    .await;
    assert_eq!((s, r["min_approvers"].as_u64()), (201, Some(2)), "{r}");

    // Another tenant sees none of it.
    for path in [
        format!("/api/v1/projects/{project}"),
        format!("/api/v1/environments/{env_id}"),
        format!("/api/v1/projects/{project}/environments"),
    ] {
        let (s, _) = call(&app, &outsider, Method::GET, &path, None).await;
        assert_eq!(s, 404, "{path}");
    }
    let (s, _) = call(
        &app,
        &outsider,
        Method::DELETE,
        &format!("/api/v1/environments/{env_id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (_, list) = call(&app, &outsider, Method::GET, "/api/v1/environments", None).await;
    assert_eq!(list, json!([]));

    let (s, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/environments/{env_id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/environments/{env_id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
}
