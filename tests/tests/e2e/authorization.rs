//! The authorization matrix, generated from the route table: every route × every kind of
//! caller → the status the table implies. A route added to the table is covered here without
//! a line of test code; a route missing from it fails closed (and the OpenAPI test says so).

use aegis_command_api::auth::{platform_admin_permissions, routes, Addon, Permission};
use aegis_identity::permissions::{BuiltinRole, Permissions};
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

struct Caller {
    name: &'static str,
    headers: Vec<(&'static str, String)>,
    /// None: every route refuses it the same way (`expected`).
    permissions: Option<Permissions>,
    expected: Option<(u16, &'static str)>,
}

#[tokio::test]
async fn every_route_answers_every_kind_of_caller_as_the_table_says() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("A").await;
    let b = app.create_tenant("B").await;
    let admin = app.user_with_role(a, Some("ADMIN")).await;
    let security = app.user_with_role(a, Some("SECURITY")).await;
    let auditor = app.user_with_role(a, Some("AUDITOR")).await;
    let other_admin = app.user_with_role(b, Some("ADMIN")).await;
    let all_scopes: Vec<&str> = Permissions::grantable()
        .iter()
        .map(Permission::as_str)
        .collect();
    let (_, full_key) = app.api_key(&admin.token, &all_scopes).await;
    let (_, empty_key) = app.api_key(&admin.token, &[]).await;
    // Entitled to every add-on, so a route's permission is what decides here.
    let addons: Vec<&str> = Addon::ALL.iter().map(|a| a.as_str()).collect();
    app.set_plan(a, serde_json::json!({ "addons": addons }))
        .await;
    let bearer = |t: &str| vec![("Authorization", format!("Bearer {t}"))];
    let tenant = ("X-Tenant-ID", a.to_string());

    let callers = vec![
        Caller {
            name: "anonymous",
            headers: vec![tenant.clone()],
            permissions: None,
            expected: Some((401, "unauthorized")),
        },
        Caller {
            name: "AUDITOR",
            headers: bearer(&auditor.token),
            permissions: Some(BuiltinRole::Auditor.permissions()),
            expected: None,
        },
        Caller {
            name: "SECURITY",
            headers: bearer(&security.token),
            permissions: Some(BuiltinRole::Security.permissions()),
            expected: None,
        },
        Caller {
            name: "ADMIN",
            headers: bearer(&admin.token),
            permissions: Some(BuiltinRole::Admin.permissions()),
            expected: None,
        },
        Caller {
            name: "other tenant's ADMIN",
            headers: [bearer(&other_admin.token), vec![tenant.clone()]].concat(),
            permissions: None,
            expected: Some((403, "tenant_mismatch")),
        },
        Caller {
            name: "platform admin",
            headers: [bearer(aegis_tests::world::BOOTSTRAP), vec![tenant.clone()]].concat(),
            permissions: Some(platform_admin_permissions()),
            expected: None,
        },
        Caller {
            name: "API key with every scope",
            headers: bearer(&full_key),
            permissions: Some(Permissions::grantable()),
            expected: None,
        },
        Caller {
            name: "API key without scopes",
            headers: bearer(&empty_key),
            permissions: Some(Permissions::NONE),
            expected: None,
        },
    ];

    let head = app.head().await;
    let mut checked = 0;
    let table: Vec<_> = routes::all().collect();
    for route in &table {
        let (method, path, needed) = (route.method, route.path, &route.permission);
        let concrete = path.replace("{id}", &Uuid::now_v7().to_string());
        for caller in &callers {
            let mut r = app
                .http
                .request(method.parse::<Method>().unwrap(), app.url(&concrete))
                .header("content-type", "application/json")
                .body("{}");
            for (k, v) in &caller.headers {
                r = r.header(*k, v);
            }
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            // An event stream that was let in never ends: its status is the answer.
            let streaming = r
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            let body: Value = if streaming {
                Value::Null
            } else {
                r.json().await.unwrap_or(Value::Null)
            };
            let what = format!("{method} {path} as {}: {status} {body}", caller.name);
            // Seed 003's routes answer in its own body, DESIGN's fields under `details`.
            let body = if body["details"].is_object() {
                let mut flat = body["details"].clone();
                flat["error"] = flat["code"].clone();
                flat
            } else {
                body
            };
            match (caller.expected, caller.permissions) {
                // A HEAD answer has no body: its status is the answer.
                (Some((code, _)), _) if method == "HEAD" => assert_eq!(status, code, "{what}"),
                (Some((code, error)), _) => {
                    assert_eq!(
                        (status, body["error"].as_str()),
                        (code, Some(error)),
                        "{what}"
                    );
                }
                // Asking for a secret and deciding on it is done in a person's name: the
                // platform admin holds the permissions but is nobody.
                (None, Some(_))
                    if caller.name == "platform admin"
                        && matches!(
                            needed,
                            Permission::SecretRequest | Permission::SecretApprove
                        ) =>
                {
                    assert_eq!(
                        (status, body["error"].as_str()),
                        (403, Some("not_a_person")),
                        "{what}"
                    );
                }
                (None, Some(perms)) if perms.contains(*needed) => {
                    assert!(
                        status != 401 && status != 403,
                        "allowed, yet refused: {what}"
                    );
                }
                (None, _) => {
                    assert_eq!(status, 403, "{what}");
                    if method != "HEAD" {
                        assert_eq!(body["required_permission"], needed.as_str(), "{what}");
                    }
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, table.len() * callers.len());
    assert_eq!(
        app.head().await,
        head,
        "no caller changed anything with an empty body"
    );
}

/// The grant matrix: a caller holding exactly `api_key.create`, `role.edit` and
/// `user_role.edit` tries to hand out every grantable permission, as a key scope and as a
/// role's permission, and to assign every built-in role. Only what it holds gets through;
/// everything else is 403 naming the permission.
#[tokio::test]
async fn nobody_grants_a_permission_they_do_not_hold() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("A").await;
    let held = Permissions::of(&[
        Permission::ApiKeyCreate,
        Permission::RoleEdit,
        Permission::UserRoleEdit,
    ]);
    let (s, role) = app
        .call(
            a,
            Method::POST,
            "/api/v1/roles",
            Some(serde_json::json!({ "name": "granter", "permissions": held.names() })),
        )
        .await;
    assert_eq!(s, 201, "{role}");
    let granter = app
        .user_with_role(a, Some(role["data"]["id"].as_str().unwrap()))
        .await;
    let send = |method: Method, path: &'static str, body: Value| {
        let (app, token) = (&app, granter.token.clone());
        async move {
            let r = app
                .bearer(method, path, &token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for p in Permissions::grantable().iter() {
        let name = p.as_str();
        for (path, body) in [
            (
                "/api-keys",
                serde_json::json!({ "name": format!("k-{name}"), "scopes": [name] }),
            ),
            (
                "/api/v1/roles",
                serde_json::json!({ "name": format!("r-{name}"), "permissions": [name] }),
            ),
        ] {
            let (status, body) = send(Method::POST, path, body).await;
            if held.contains(p) {
                assert_eq!(status, 201, "{path} granting {name}: {body}");
            } else {
                assert_eq!(status, 403, "{path} granting {name}: {body}");
                assert_eq!(body["required_permission"], name, "{body}");
            }
        }
    }
    for role in BuiltinRole::ALL {
        let (status, body) = send(
            Method::POST,
            "/api/v1/user-roles",
            serde_json::json!({ "user_id": granter.user, "role_id": role.id() }),
        )
        .await;
        assert_eq!(status, 403, "assigning {}: {body}", role.id());
    }
}
