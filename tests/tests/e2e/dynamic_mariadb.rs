//! Seed 003's dynamic secrets on MariaDB (the document's `mysql` backend, issue 23), on the
//! real server `scripts/test` starts (`AEGIS_TEST_MARIADB_URL`): a user that logs in with the
//! template's grants, renewals capped at the maximum, and a user that is gone (and cannot log
//! in) after a revoke and after its lease expires without anyone asking.

use aegis_tests::world::eventually;
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{ConnectOptions, Connection};
use std::time::Duration;
use uuid::Uuid;

/// The MariaDB the suite runs on, as root.
fn admin_url() -> reqwest::Url {
    let url = std::env::var("AEGIS_TEST_MARIADB_URL")
        .expect("AEGIS_TEST_MARIADB_URL: run the suite with scripts/test, which starts MariaDB");
    reqwest::Url::parse(&url).expect("a mysql:// URL")
}

fn options(user: &str, password: &str, database: &str) -> MySqlConnectOptions {
    let url = admin_url();
    let o = MySqlConnectOptions::new()
        .host(url.host_str().unwrap_or("127.0.0.1"))
        .port(url.port().unwrap_or(3306))
        .username(user)
        .database(database);
    if password.is_empty() {
        o
    } else {
        o.password(password)
    }
}

async fn admin() -> MySqlConnection {
    let url = admin_url();
    options(url.username(), url.password().unwrap_or_default(), "mysql")
        .connect()
        .await
        .expect("MariaDB answers as its admin")
}

/// A database of this test's own, for the template to grant on.
async fn database() -> String {
    let name = format!("aegis_t_{}", Uuid::now_v7().simple());
    let create = format!("CREATE DATABASE `{name}`");
    sqlx::query(&create)
        .execute(&mut admin().await)
        .await
        .expect("create database");
    name
}

async fn logs_in(user: &str, password: &str, database: &str) -> bool {
    match options(user, password, database).connect().await {
        Ok(c) => {
            let _ = c.close().await;
            true
        }
        Err(_) => false,
    }
}

async fn user_exists(user: &str) -> bool {
    let found: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM mysql.user WHERE User = ?")
        .bind(user)
        .fetch_optional(&mut admin().await)
        .await
        .expect("query");
    found.is_some()
}

fn config(connection: &str, database: &str) -> Value {
    json!({
        "name": "reporting",
        "type": "database",
        "backend": { "type": "mysql", "connectionString": connection, "credentials": {} },
        "template": { "roleTemplate": format!("GRANT SELECT ON `{database}`.* TO {{{{name}}}}") },
        "ttl": { "default": "PT1H", "max": "PT2H" }
    })
}

fn connection(database: &str) -> String {
    let mut url = admin_url();
    url.set_path(database);
    url.to_string()
}

async fn spawn() -> (TestApp, Uuid) {
    let app = TestApp::spawn_with_config(|c| {
        c.ar_tick_secs = 1;
        c.egress_allow = vec!["127.0.0.1".into()];
    })
    .await;
    let tenant = app.create_tenant("DynamicMaria").await;
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    (app, tenant)
}

async fn issue(
    app: &TestApp,
    tenant: Uuid,
    config_id: &str,
    ttl: &str,
) -> (String, String, String, Value) {
    let (s, issued) = app
        .call(
            tenant,
            Method::POST,
            &format!("/v1/dynamic-secrets/configs/{config_id}/credentials"),
            Some(json!({ "ttl": ttl })),
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
    let lease = issued["leaseId"].as_str().expect("lease").to_string();
    (user, password, lease, issued)
}

#[tokio::test]
async fn a_mariadb_user_logs_in_with_its_grants_is_capped_on_renewal_and_is_gone_after_revoke_and_expiry(
) {
    let (app, tenant) = spawn().await;
    let db = database().await;
    let (s, created) = app
        .call(
            tenant,
            Method::POST,
            "/v1/dynamic-secrets/configs",
            Some(config(&connection(&db), &db)),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let config_id = created["configId"].as_str().expect("id").to_string();

    let (user, password, lease, issued) = issue(&app, tenant, &config_id, "PT30M").await;
    assert!(user.starts_with("v_reporting_"), "{user}");
    assert!(
        logs_in(&user, &password, &db).await,
        "the user logs in to the granted database"
    );
    assert!(
        !logs_in(&user, &password, "mysql").await,
        "and only what the template granted"
    );
    assert!(!logs_in(&user, "not-the-password", &db).await);

    // Renewing for a day stops at creation + the max (PT2H).
    let expires: chrono::DateTime<chrono::Utc> = issued["expiresAt"]
        .as_str()
        .expect("t")
        .parse()
        .expect("time");
    let (s, renewed) = app
        .call(
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

    // Revoked: the user and its login are gone; revoking again answers the same.
    let mut session = options(&user, &password, &db)
        .connect()
        .await
        .expect("a session");
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            &format!("/v1/dynamic-secrets/leases/{lease}/revoke"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(!user_exists(&user).await);
    assert!(!logs_in(&user, &password, &db).await);
    assert!(
        sqlx::query("SELECT 1").execute(&mut session).await.is_err(),
        "its open session was ended"
    );
    let (s, _) = app
        .call(
            tenant,
            Method::POST,
            &format!("/v1/dynamic-secrets/leases/{lease}/revoke"),
            None,
        )
        .await;
    assert_eq!(s, 200);

    // Expiry: a two-second lease is ended by the reactor, with no call.
    let (user, password, lease, _) = issue(&app, tenant, &config_id, "PT2S").await;
    assert!(logs_in(&user, &password, &db).await);
    let gone = eventually(Duration::from_secs(20), || async {
        !user_exists(&user).await
    })
    .await;
    assert!(gone, "the expired user was dropped");
    assert!(!logs_in(&user, &password, &db).await);
    let (_, leases) = app
        .call(
            tenant,
            Method::GET,
            &format!("/v1/dynamic-secrets/configs/{config_id}/leases"),
            None,
        )
        .await;
    let ended = leases["leases"]
        .as_array()
        .expect("leases")
        .iter()
        .find(|l| l["leaseId"] == lease.as_str())
        .cloned();
    assert_eq!(
        ended.map(|l| l["status"].clone()),
        Some(json!("expired")),
        "{leases}"
    );
}

#[tokio::test]
async fn a_mariadb_admin_that_cannot_make_users_or_cannot_be_reached_is_refused() {
    let (app, tenant) = spawn().await;
    let db = database().await;
    // A user with no CREATE USER privilege.
    let weak = format!("weak_{}", &Uuid::now_v7().simple().to_string()[20..]);
    let mut root = admin().await;
    let create = format!("CREATE USER '{weak}'@'%' IDENTIFIED BY 'weak-pass-1'");
    sqlx::query(&create)
        .execute(&mut root)
        .await
        .expect("create user");
    let grant = format!("GRANT SELECT ON `{db}`.* TO '{weak}'@'%'");
    sqlx::query(&grant).execute(&mut root).await.expect("grant");
    let url = admin_url();
    let weak_url = format!(
        "mysql://{weak}:weak-pass-1@{}:{}/{db}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(3306)
    );
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/v1/dynamic-secrets/configs",
            Some(config(&weak_url, &db)),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["message"]
            .as_str()
            .is_some_and(|m| m.contains("CREATE USER")),
        "{b}"
    );
    assert!(
        !b.to_string().contains("weak-pass-1"),
        "the connection is never echoed"
    );
    let drop = format!("DROP USER '{weak}'@'%'");
    sqlx::query(&drop)
        .execute(&mut root)
        .await
        .expect("drop user");

    let closed = format!(
        "mysql://root@127.0.0.1:{}/{db}",
        aegis_tests::world::free_port()
    );
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/v1/dynamic-secrets/configs",
            Some(config(&closed, &db)),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    let (s, b) = app.call(tenant,
        Method::POST,
        "/v1/dynamic-secrets/configs",
        Some(
            config("postgres://root@127.0.0.1/x", &db)
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o["backend"] =
                        json!({ "type": "mongodb", "connectionString": "mongodb://127.0.0.1/x" });
                    Value::Object(o)
                })
                .unwrap_or_default(),
        ),
    )
    .await;
    assert_eq!(s, 501, "{b}");
}
