//! Grants between principals: nobody grants, assigns or acts on someone with more than they
//! hold; the last active ADMIN stays; a key never outlives or outgrows its creator. Each
//! attack here is one from the 2026-11-30 security review.

use aegis_tests::world::Login;
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

async fn send(r: reqwest::RequestBuilder) -> (u16, Value) {
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A user holding a custom role with exactly `permissions`.
async fn user_holding(app: &TestApp, tenant: Uuid, permissions: &[&str]) -> (Login, String) {
    let r = app
        .admin(Method::POST, "/api/v1/roles", Some(tenant))
        .json(&json!({ "name": format!("r-{}", Uuid::now_v7().simple()), "permissions": permissions }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let role: Value = r.json().await.unwrap();
    let role = role["data"]["id"].as_str().unwrap().to_string();
    (app.user_with_role(tenant, Some(&role)).await, role)
}

#[tokio::test]
async fn a_holder_of_user_role_edit_cannot_make_anyone_admin() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let (mallory, _) = user_holding(&app, tenant, &["user_role.edit", "user.read"]).await;

    let (status, body) = send(
        app.bearer(Method::POST, "/api/v1/user-roles", &mallory.token)
            .json(&json!({ "user_id": mallory.user, "role_id": "ADMIN" })),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["required_permission"].is_string(), "{body}");
    let (status, _) = send(app.bearer(Method::GET, "/api/v1/roles", &mallory.token)).await;
    assert_eq!(status, 403, "still without role.read");

    // A role within what the caller holds may be assigned, to itself or another.
    let (_, reader_role) = user_holding(&app, tenant, &["user.read"]).await;
    let (status, body) = send(
        app.bearer(Method::POST, "/api/v1/user-roles", &mallory.token)
            .json(&json!({ "user_id": mallory.user, "role_id": reader_role })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_holder_of_role_edit_cannot_grow_its_own_role_or_shrink_a_greater_one() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let (mallory, own) = user_holding(&app, tenant, &["role.edit", "role.read"]).await;

    let (status, body) = send(
        app.bearer(
            Method::PUT,
            &format!("/api/v1/roles/{own}/permissions"),
            &mallory.token,
        )
        .json(&json!({ "permissions": ["role.edit", "role.read", "credential.value"] })),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["required_permission"], "credential.value");
    let (status, body) = send(
        app.bearer(Method::POST, "/api/v1/roles", &mallory.token)
            .json(&json!({ "name": "Everything", "permissions": ["user_role.edit"] })),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // A role granting more than the caller holds is not theirs to reshape or delete.
    let (_, greater) = user_holding(&app, tenant, &["credential.value", "role.read"]).await;
    let (status, _) = send(
        app.bearer(
            Method::PUT,
            &format!("/api/v1/roles/{greater}/permissions"),
            &mallory.token,
        )
        .json(&json!({ "permissions": ["role.read"] })),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(app.bearer(
        Method::DELETE,
        &format!("/api/v1/roles/{greater}"),
        &mallory.token,
    ))
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn an_onboarding_key_cannot_mint_an_admin_to_read_secrets() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let (_, key) = app
        .api_key(&admin.token, &["user.edit", "user_role.edit"])
        .await;

    let (status, body) = send(
        app.bearer(Method::POST, "/api/v1/users", &key)
            .json(&json!({
                "email": "puppet@example.com", "password": "a long passphrase here"
            })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let puppet = body["data"]["id"].as_str().unwrap().to_string();
    let (status, body) = send(
        app.bearer(Method::POST, "/api/v1/user-roles", &key)
            .json(&json!({ "user_id": puppet, "role_id": "ADMIN" })),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let r = app
        .login("puppet@example.com", "a long passphrase here")
        .await;
    let login: Value = r.json().await.unwrap();
    let (status, _) =
        send(app.bearer(Method::GET, "/incidents", login["token"].as_str().unwrap())).await;
    assert_eq!(status, 403, "the puppet holds nothing");
}

#[tokio::test]
async fn a_lesser_user_cannot_disable_an_admin_and_the_last_admin_stays() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let (editor, _) = user_holding(&app, tenant, &["user.edit", "user_role.edit"]).await;

    let (status, body) = send(
        app.bearer(
            Method::PATCH,
            &format!("/api/v1/users/{}", admin.user),
            &editor.token,
        )
        .json(&json!({ "status": "disabled" })),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = send(app.bearer(Method::GET, "/api/v1/users", &admin.token)).await;
    assert_eq!(status, 200, "the ADMIN is still active");

    // The platform admin may act on anyone, but not leave the tenant without an ADMIN.
    let (status, body) = send(
        app.admin(
            Method::PATCH,
            &format!("/api/v1/users/{}", admin.user),
            Some(tenant),
        )
        .json(&json!({ "status": "disabled" })),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "last_admin");
    let (_, assignments) = app
        .caught_up(
            tenant,
            &format!("/api/v1/user-roles?user_id={}", admin.user),
        )
        .await;
    let assignment = assignments["data"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = send(app.admin(
        Method::DELETE,
        &format!("/api/v1/user-roles/{assignment}"),
        Some(tenant),
    ))
    .await;
    assert_eq!(status, 409, "{body}");

    // With a second ADMIN, the first may go.
    let second = app.user_with_role(tenant, Some("ADMIN")).await;
    let (status, body) = send(
        app.bearer(
            Method::PATCH,
            &format!("/api/v1/users/{}", admin.user),
            &second.token,
        )
        .json(&json!({ "status": "disabled" })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        app.admin(
            Method::PATCH,
            &format!("/api/v1/users/{}", second.user),
            Some(tenant),
        )
        .json(&json!({ "status": "disabled" })),
    )
    .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn a_key_is_bounded_by_what_its_creator_holds_now() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    app.user_with_role(tenant, Some("ADMIN")).await;
    let leaver = app.user_with_role(tenant, Some("ADMIN")).await;
    let (_, key) = app
        .api_key(
            &leaver.token,
            &["incident.read", "user_role.edit", "api_key.create"],
        )
        .await;
    let (status, _) = send(app.bearer(Method::GET, "/incidents", &key)).await;
    assert_eq!(status, 200);
    // A key the key made is bounded by both.
    let (_, child) = app.api_key(&key, &["incident.read"]).await;
    let (status, _) = send(app.bearer(Method::GET, "/incidents", &child)).await;
    assert_eq!(status, 200);

    // Demoted to AUDITOR: the key keeps only what AUDITOR holds of its scopes.
    let (_, assignments) = app
        .caught_up(
            tenant,
            &format!("/api/v1/user-roles?user_id={}", leaver.user),
        )
        .await;
    let assignment = assignments["data"][0]["id"].as_str().unwrap().to_string();
    app.assign_role(tenant, leaver.user, "AUDITOR").await;
    let (status, _) = send(app.admin(
        Method::DELETE,
        &format!("/api/v1/user-roles/{assignment}"),
        Some(tenant),
    ))
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(app.bearer(Method::GET, "/incidents", &key)).await;
    assert_eq!(status, 200, "AUDITOR reads incidents");
    let (status, body) = send(
        app.bearer(Method::POST, "/api/v1/user-roles", &key)
            .json(&json!({ "user_id": leaver.user, "role_id": "ADMIN" })),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["required_permission"], "user_role.edit");

    // Disabled: every key it made, and every key those made, is suspended.
    let (status, _) = send(
        app.admin(
            Method::PATCH,
            &format!("/api/v1/users/{}", leaver.user),
            Some(tenant),
        )
        .json(&json!({ "status": "disabled" })),
    )
    .await;
    assert_eq!(status, 200);
    for k in [&key, &child] {
        let (status, body) = send(app.bearer(Method::GET, "/incidents", k)).await;
        assert_eq!(status, 401, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("suspended"),
            "{body}"
        );
    }
    // Enabled again, the keys work again: suspension is not revocation.
    send(
        app.admin(
            Method::PATCH,
            &format!("/api/v1/users/{}", leaver.user),
            Some(tenant),
        )
        .json(&json!({ "status": "active" })),
    )
    .await;
    let (status, _) = send(app.bearer(Method::GET, "/incidents", &child)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_second_copy_of_a_credential_or_tenant_header_is_refused() {
    use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let (_, weak) = app.api_key(&admin.token, &[]).await;
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "authorization",
            vec![format!("Bearer {}", admin.token), format!("Bearer {weak}")],
        ),
        (
            "x-internal-secret",
            vec![aegis_tests::world::INTERNAL.into(), "wrong".into()],
        ),
        (
            "x-tenant-id",
            vec![tenant.to_string(), Uuid::now_v7().to_string()],
        ),
    ];
    for (name, values) in cases {
        let mut headers = HeaderMap::new();
        for v in &values {
            headers.append(
                reqwest::header::HeaderName::from_static(name),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        if name != "authorization" && name != "x-internal-secret" {
            headers.insert(
                AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {}", admin.token)).unwrap(),
            );
        }
        let r = app
            .http
            .get(app.url("/incidents"))
            .headers(headers)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{name}");
    }
}
