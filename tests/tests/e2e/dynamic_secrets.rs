//! Seed 003's dynamic secrets (issue 23) on the real PostgreSQL the tests use: a configuration
//! whose admin connection is checked and sealed, roles that really log in, renewals capped at
//! the maximum, and roles that are gone after a revoke and after their lease expires.

use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Connection;
use std::time::Duration;
use uuid::Uuid;

async fn send(
    app: &TestApp,
    tenant: Uuid,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = app.admin(method, path, Some(tenant));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The test database's URL, whose user may create roles.
fn admin_url(app: &TestApp) -> String {
    app.config.database_url.clone()
}

/// Whether `user` can log in to the test database with `password`.
async fn logs_in(app: &TestApp, user: &str, password: &str) -> bool {
    let url = reqwest::Url::parse(&admin_url(app)).expect("url");
    let options = sqlx::postgres::PgConnectOptions::new()
        .host(url.host_str().unwrap_or("127.0.0.1"))
        .port(url.port().unwrap_or(5432))
        .database(url.path().trim_start_matches('/'))
        .username(user)
        .password(password);
    match sqlx::PgConnection::connect_with(&options).await {
        Ok(c) => {
            let _ = c.close().await;
            true
        }
        Err(_) => false,
    }
}

async fn role_exists(app: &TestApp, user: &str) -> bool {
    let mut c = sqlx::PgConnection::connect(&admin_url(app))
        .await
        .expect("admin");
    let found: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(user)
        .fetch_optional(&mut c)
        .await
        .expect("query");
    found.is_some()
}

async fn spawn() -> (TestApp, Uuid) {
    let app = TestApp::spawn_with_config(|c| {
        c.ar_tick_secs = 1;
        c.egress_allow = vec!["127.0.0.1".into()];
    })
    .await;
    let tenant = app.create_tenant("Dynamic").await;
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    (app, tenant)
}

fn config(app: &TestApp, name: &str) -> Value {
    json!({
        "name": name,
        "type": "database",
        "backend": { "type": "postgres", "connectionString": admin_url(app), "credentials": {} },
        "template": { "usernameTemplate": "v_{{name}}_{{random}}", "roleTemplate": "GRANT pg_monitor TO {{name}}" },
        "ttl": { "default": "PT1H", "max": "PT2H" }
    })
}

async fn post_config(app: &TestApp, tenant: Uuid, body: Value) -> (u16, Value) {
    send(
        app,
        tenant,
        Method::POST,
        "/v1/dynamic-secrets/configs",
        Some(body),
    )
    .await
}

/// A configuration on the test database, created; its id.
async fn configured(app: &TestApp, tenant: Uuid, name: &str) -> String {
    let (s, created) = post_config(app, tenant, config(app, name)).await;
    assert_eq!(s, 201, "{created}");
    created["configId"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn a_dynamic_role_logs_in_is_renewed_no_further_than_its_max_and_is_gone_after_revoke() {
    let (app, tenant) = spawn().await;
    let config_id = configured(&app, tenant, "app").await;
    let (_, list) = send(
        &app,
        tenant,
        Method::GET,
        "/vault/v1/dynamic-secrets/configs",
        None,
    )
    .await;
    assert_eq!(list["configs"][0]["configId"], config_id.as_str(), "{list}");
    assert!(
        !list.to_string().contains("postgres://"),
        "the connection is never shown: {list}"
    );

    let (s, issued) = send(
        &app,
        tenant,
        Method::POST,
        &format!("/v1/dynamic-secrets/configs/{config_id}/credentials"),
        Some(json!({ "ttl": "PT30M", "metadata": { "purpose": "ci", "requestedBy": "pipeline" } })),
    )
    .await;
    assert_eq!(s, 200, "{issued}");
    let user = issued["credentials"]["username"]
        .as_str()
        .expect("user")
        .to_string();
    let password = issued["credentials"]["password"]
        .as_str()
        .expect("password")
        .to_string();
    assert!(user.starts_with("v_app_"), "{user}");
    assert!(logs_in(&app, &user, &password).await, "the role logs in");
    // The role template ran: the role holds pg_monitor.
    let mut c = sqlx::PgConnection::connect(&admin_url(&app))
        .await
        .expect("admin");
    let (member,): (bool,) = sqlx::query_as("SELECT pg_has_role($1, 'pg_monitor', 'MEMBER')")
        .bind(&user)
        .fetch_one(&mut c)
        .await
        .expect("query");
    assert!(member, "granted by the role template");
    let (until,): (Option<chrono::DateTime<chrono::Utc>>,) =
        sqlx::query_as("SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1")
            .bind(&user)
            .fetch_one(&mut c)
            .await
            .expect("query");
    let expires: chrono::DateTime<chrono::Utc> = issued["expiresAt"]
        .as_str()
        .expect("expiresAt")
        .parse()
        .expect("time");
    assert_eq!(
        until.map(|u| u.timestamp()),
        Some(expires.timestamp()),
        "VALID UNTIL is the lease's end"
    );

    // Renewing for a day stops at creation + the max (PT2H).
    let lease = issued["leaseId"].as_str().expect("lease").to_string();
    let (s, renewed) = send(
        &app,
        tenant,
        Method::POST,
        &format!("/v1/dynamic-secrets/leases/{lease}/renew"),
        Some(json!({ "ttl": "P1D" })),
    )
    .await;
    assert_eq!(s, 200, "{renewed}");
    let renewed_to: chrono::DateTime<chrono::Utc> = renewed["expiresAt"]
        .as_str()
        .expect("t")
        .parse()
        .expect("time");
    let cap = chrono::Utc::now() + chrono::TimeDelta::hours(2);
    assert!(
        renewed_to > expires && renewed_to <= cap,
        "{renewed_to} within {cap}"
    );
    let (until,): (Option<chrono::DateTime<chrono::Utc>>,) =
        sqlx::query_as("SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1")
            .bind(&user)
            .fetch_one(&mut c)
            .await
            .expect("query");
    assert_eq!(until.map(|u| u.timestamp()), Some(renewed_to.timestamp()));

    // Revoked: the role is gone, and so is its login; revoking again answers the same.
    let (s, b) = send(
        &app,
        tenant,
        Method::POST,
        &format!("/v1/dynamic-secrets/leases/{lease}/revoke"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(!role_exists(&app, &user).await);
    assert!(!logs_in(&app, &user, &password).await);
    let (s, _) = send(
        &app,
        tenant,
        Method::POST,
        &format!("/vault/v1/dynamic-secrets/leases/{lease}/revoke"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = send(
        &app,
        tenant,
        Method::POST,
        &format!("/v1/dynamic-secrets/leases/{lease}/renew"),
        None,
    )
    .await;
    assert_eq!(s, 409, "a revoked lease is not renewed: {b}");
    let (_, leases) = send(
        &app,
        tenant,
        Method::GET,
        &format!("/v1/dynamic-secrets/configs/{config_id}/leases"),
        None,
    )
    .await;
    assert_eq!(leases["leases"][0]["status"], "revoked", "{leases}");

    // No password or connection in the log.
    let log = app.log_bytes().await;
    for needle in [password.as_str(), "postgres://"] {
        assert!(
            !log.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} in the log"
        );
    }
}

#[tokio::test]
async fn an_expired_lease_loses_its_role_without_anyone_asking() {
    let (app, tenant) = spawn().await;
    let config_id = configured(&app, tenant, "short").await;
    let (s, issued) = send(
        &app,
        tenant,
        Method::POST,
        &format!("/v1/dynamic-secrets/configs/{config_id}/credentials"),
        Some(json!({ "ttl": "PT2S" })),
    )
    .await;
    assert_eq!(s, 200, "{issued}");
    let user = issued["credentials"]["username"]
        .as_str()
        .expect("user")
        .to_string();
    assert!(role_exists(&app, &user).await);
    let gone = aegis_tests::world::eventually(Duration::from_secs(15), || {
        let (app, user) = (&app, user.clone());
        async move { !role_exists(app, &user).await }
    })
    .await;
    assert!(gone, "the expiry reactor dropped the role");
    let lease = issued["leaseId"].as_str().expect("lease");
    let (_, leases) = send(
        &app,
        tenant,
        Method::GET,
        &format!("/v1/dynamic-secrets/configs/{config_id}/leases"),
        None,
    )
    .await;
    assert_eq!(leases["leases"][0]["leaseId"], lease);
    assert_eq!(leases["leases"][0]["status"], "expired", "{leases}");
    let (_, stats) = send(&app, tenant, Method::GET, "/v1/dynamic-secrets/stats", None).await;
    assert_eq!(
        (
            stats["totalConfigs"].as_i64(),
            stats["expiredLeases"].as_i64(),
            stats["activeLeases"].as_i64()
        ),
        (Some(1), Some(1), Some(0)),
        "{stats}"
    );
    assert_eq!(stats["byType"]["database"], 1);
}

#[tokio::test]
async fn a_config_that_cannot_make_roles_is_refused_and_other_backends_say_they_are_not_built() {
    let (app, tenant) = spawn().await;
    // A user without CREATEROLE.
    let limited = format!("limited_{}", Uuid::now_v7().simple());
    let mut c = sqlx::PgConnection::connect(&admin_url(&app))
        .await
        .expect("admin");
    sqlx::query(&format!(
        "CREATE ROLE {limited} LOGIN PASSWORD 'limited-pass'"
    ))
    .execute(&mut c)
    .await
    .expect("create");
    let url = reqwest::Url::parse(&admin_url(&app)).expect("url");
    let limited_url = format!(
        "postgres://{limited}:limited-pass@{}:{}{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5432),
        url.path()
    );
    let mut body = config(&app, "weak");
    body["backend"]["connectionString"] = json!(limited_url);
    let (s, b) = post_config(&app, tenant, body).await;
    sqlx::query(&format!("DROP ROLE {limited}"))
        .execute(&mut c)
        .await
        .expect("drop");
    assert_eq!(
        (s, b["details"]["field"].as_str()),
        (422, Some("backend.connectionString")),
        "{b}"
    );
    assert!(
        b["message"]
            .as_str()
            .unwrap_or_default()
            .contains("CREATEROLE"),
        "{b}"
    );

    // Nothing listens there.
    let mut body = config(&app, "nowhere");
    body["backend"]["connectionString"] = json!(format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        aegis_tests::world::free_port()
    ));
    let (s, b) = post_config(&app, tenant, body).await;
    assert_eq!(s, 422, "{b}");

    // A mysql backend is built (tests/e2e/dynamic_mariadb.rs), but a postgres URL is not its
    // connection; mongodb is not built.
    let mut body = config(&app, "mysql");
    body["backend"]["type"] = json!("mysql");
    let (s, b) = post_config(&app, tenant, body).await;
    assert_eq!(
        (s, b["details"]["field"].as_str()),
        (422, Some("backend.connectionString")),
        "{b}"
    );
    let mut body = config(&app, "mongo");
    body["backend"]["type"] = json!("mongodb");
    let (s, b) = post_config(&app, tenant, body).await;
    assert_eq!(
        (s, b["details"]["code"].as_str()),
        (501, Some("not_implemented")),
        "{b}"
    );

    let mut body = config(&app, "bad-ttl");
    body["ttl"] = json!({ "default": "P1M", "max": "PT1H" });
    let (s, b) = post_config(&app, tenant, body).await;
    assert_eq!(
        (s, b["details"]["field"].as_str()),
        (422, Some("ttl.default")),
        "{b}"
    );
    let (_, stats) = send(&app, tenant, Method::GET, "/v1/dynamic-secrets/stats", None).await;
    assert_eq!(stats["totalConfigs"], 0, "nothing was recorded: {stats}");
}
