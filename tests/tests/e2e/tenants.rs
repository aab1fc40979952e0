use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn the_platform_admin_creates_and_lists_tenants() {
    let app = TestApp::spawn().await;
    let r = app
        .admin(Method::POST, "/admin/tenants", None)
        .json(&json!({ "name": "Acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let pos = aegis_tests::world::position(&r).expect("Aegis-Position");
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["data"]["name"], "Acme");

    let r = app
        .admin(Method::GET, "/admin/tenants", None)
        .header("Aegis-Min-Position", pos.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["total"], 1);
    assert_eq!(list["data"][0]["id"], created["data"]["id"]);
}

#[tokio::test]
async fn tenant_names_are_unique_regardless_of_case() {
    let app = TestApp::spawn().await;
    app.create_tenant("Acme").await;
    let head = app.head().await;
    let r = app
        .admin(Method::POST, "/admin/tenants", None)
        .json(&json!({ "name": "ACME" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "conflict");
    assert_eq!(app.head().await, head, "a refused command appends nothing");
}

#[tokio::test]
async fn only_the_platform_admin_manages_tenants() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .post(app.url("/admin/tenants"))
        .header("X-Internal-Secret", aegis_tests::world::INTERNAL)
        .json(&json!({ "name": "Acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["required_permission"], "tenant.create");

    let r = app
        .http
        .get(app.url("/admin/tenants"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unauthorized");
    let r = app
        .http
        .get(app.url("/admin/tenants"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn an_invalid_tenant_name_is_refused() {
    let app = TestApp::spawn().await;
    for body in [json!({ "name": "  " }), json!({ "name": "x".repeat(101) })] {
        let r = app
            .admin(Method::POST, "/admin/tenants", None)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"], "validation_failed");
        assert_eq!(b["field"], "name");
    }
    assert_eq!(app.head().await, 0);
}
