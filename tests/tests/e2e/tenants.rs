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

/// Seed 000: "set users.is_platform_admin=true for cross-tenant view". Only the platform admin
/// makes a user one; the user then holds every cross-tenant right the bootstrap token has, and
/// both the grant and what the user does are in the audit log.
#[tokio::test]
async fn the_platform_admin_makes_a_user_a_platform_admin_with_cross_tenant_rights() {
    let app = TestApp::spawn().await;
    let home = app.create_tenant("Home").await;
    let other = app.create_tenant("Other").await;
    let user = app.user_with_role(home, Some("AUDITOR")).await;
    let admin = app.user_with_role(home, Some("ADMIN")).await;
    let as_user = |method: Method, path: &str, tenant: Option<uuid::Uuid>| {
        let mut r = app.bearer(method, path, &user.token);
        if let Some(t) = tenant {
            r = r.header("X-Tenant-ID", t.to_string());
        }
        r
    };
    let path = format!("/admin/users/{}/platform-admin", user.user);
    let body = json!({ "is_platform_admin": true });

    let r = as_user(Method::GET, "/admin/tenants", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "not yet a platform admin");
    // A tenant ADMIN cannot make anyone a platform admin, itself included.
    let r = app
        .bearer(Method::PUT, &path, &admin.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .bearer(
            Method::PUT,
            &format!("/admin/users/{}/platform-admin", admin.user),
            &admin.token,
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = app
        .admin(Method::PUT, &path, Some(home))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["data"]["is_platform_admin"], true, "{view}");

    // The same token now lists every tenant and acts in another tenant.
    let r = as_user(Method::GET, "/admin/tenants?limit=100", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert!(
        ids.contains(&home.to_string().as_str()) && ids.contains(&other.to_string().as_str()),
        "{list}"
    );
    let r = as_user(Method::GET, "/incidents", Some(other))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a platform admin reads any tenant");
    // A tenant ADMIN cannot disable a platform admin (it holds more than they do).
    let r = app
        .bearer(
            Method::PATCH,
            &format!("/api/v1/users/{}", user.user),
            &admin.token,
        )
        .json(&json!({ "status": "disabled" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The grant is in the home tenant's audit log, by the bootstrap token.
    let (s, log) = app
        .call(
            home,
            Method::GET,
            "/api/v1/audit-events?action=user.platform_admin_set",
            None,
        )
        .await;
    assert_eq!(s, 200, "{log}");
    assert_eq!(log["data"][0]["actor"], "bootstrap", "{log}");

    // Taken back, the token is a tenant AUDITOR's again.
    let r = app
        .admin(Method::PUT, &path, Some(home))
        .json(&json!({ "is_platform_admin": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = as_user(Method::GET, "/admin/tenants", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
