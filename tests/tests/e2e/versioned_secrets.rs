//! Seed 003's versioned secrets (issue 23) end to end: the seed 001 credential seen through
//! another door, versions that are deprecated and destroyed (their keys really gone),
//! rollbacks, comparisons that leak no digest, retention, the audit trail and the counts.

use aegis_tests::world::Login;
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

struct Client<'a> {
    app: &'a TestApp,
    token: String,
    tenant: Uuid,
}

impl Client<'_> {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut r = self
            .app
            .http
            .request(method, self.app.url(path))
            .bearer_auth(&self.token)
            .header("X-Tenant-ID", self.tenant.to_string());
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.expect("send");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.json().await.unwrap_or(Value::Null))
    }
}

async fn setup<'a>(app: &'a TestApp, name: &str) -> (Client<'a>, Login) {
    let tenant = app.create_tenant(name).await;
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    (
        Client {
            app,
            token: admin.token.clone(),
            tenant,
        },
        admin,
    )
}

#[tokio::test]
async fn versions_are_written_read_deprecated_destroyed_and_rolled_back() {
    let app = TestApp::spawn().await;
    let (c, admin) = setup(&app, "Versions").await;

    // The first write creates the secret; each write is the next version.
    for (i, value) in ["alpha", "bravo", "charlie"].iter().enumerate() {
        let (s, h, b) = c
            .send(
                Method::POST,
                "/v1/versioned-secrets",
                Some(json!({ "secretId": "db-password", "value": value,
                    "metadata": { "reason": format!("write {i}"), "changedBy": "ops-bot" } })),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(b["secretId"], "db-password");
        assert_eq!(b["version"], i as u64 + 1, "{b}");
        assert!(h.contains_key("etag"));
    }
    // The same secret through seed 001's door: its current value, and a value set there is
    // the next version here.
    let (s, _, b) = c
        .send(Method::GET, "/credentials/db-password/value", None)
        .await;
    assert_eq!((s, b["value"].as_str()), (200, Some("charlie")), "{b}");
    let (s, _, b) = c
        .send(
            Method::PATCH,
            "/credentials/db-password",
            Some(json!({ "value": "delta" })),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, _, h) = c
        .send(
            Method::GET,
            "/vault/v1/versioned-secrets/db-password/history",
            None,
        )
        .await;
    assert_eq!(s, 200, "{h}");
    let versions = h["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 4, "{h}");
    assert_eq!(versions[0]["createdBy"], admin.user.to_string(), "{h}");
    assert_eq!(versions[0]["metadata"]["changedBy"], "ops-bot", "{h}");
    assert_eq!(versions[0]["metadata"]["reason"], "write 0", "{h}");
    assert!(versions.iter().all(|v| v["state"] == "active"), "{h}");
    assert!(
        !h.to_string().contains("alpha"),
        "history never holds a value: {h}"
    );

    // Any version is read, by name or by the credential's id.
    let (_, _, detail) = c.send(Method::GET, "/credentials/db-password", None).await;
    let id = detail["data"]["id"]
        .as_str()
        .or(detail["id"].as_str())
        .expect("id")
        .to_string();
    let (s, h, b) = c
        .send(
            Method::GET,
            &format!("/v1/versioned-secrets/{id}/versions/1"),
            None,
        )
        .await;
    assert_eq!((s, b["value"].as_str()), (200, Some("alpha")), "{b}");
    assert_eq!(h["cache-control"], "no-store");
    let (s, _, b) = c
        .send(
            Method::GET,
            "/v1/versioned-secrets/db-password/versions/9",
            None,
        )
        .await;
    assert_eq!(
        (s, b["details"]["code"].as_str()),
        (404, Some("not_found")),
        "{b}"
    );

    // Deprecated: still readable, with a warning.
    let (s, _, b) = c
        .send(
            Method::PATCH,
            "/v1/versioned-secrets/db-password/versions/1/state",
            Some(json!({ "state": "deprecated", "reason": "old" })),
        )
        .await;
    assert_eq!((s, b["state"].as_str()), (200, Some("deprecated")), "{b}");
    let (s, h, _) = c
        .send(
            Method::GET,
            "/v1/versioned-secrets/db-password/versions/1",
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert!(h["warning"]
        .to_str()
        .unwrap_or_default()
        .contains("deprecated"));

    // Destroyed: 410 in the document's body, and its key is really gone.
    let (s, _, b) = c
        .send(
            Method::PATCH,
            "/v1/versioned-secrets/db-password/versions/1/state",
            Some(json!({ "state": "destroyed" })),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, _, b) = c
        .send(
            Method::GET,
            "/v1/versioned-secrets/db-password/versions/1",
            None,
        )
        .await;
    assert_eq!((s, b["statusCode"].as_u64()), (410, Some(410)), "{b}");
    assert_eq!(b["error"], "GONE", "{b}");
    let agg = aegis_streams::AggregateRef::new(c.tenant, "vault", "credential", "db-password")
        .expect("address");
    let (cred, _) = app
        .state()
        .executor
        .load::<aegis_vault::CredentialAggregate>(&agg)
        .await
        .expect("load");
    let cred = cred.expect("exists");
    let v1 = cred.find(1).expect("v1");
    let secret = aegis_vault_services::keys::version_secret(&cred.id, 1);
    let opened = app
        .state()
        .keys
        .open(c.tenant, &secret, 1, &v1.sealed)
        .await;
    assert!(
        matches!(opened, Err(aegis_runtime::keys::KeyError::Shredded)),
        "{opened:?}"
    );
    let v2 = cred.find(2).expect("v2");
    let secret = aegis_vault_services::keys::version_secret(&cred.id, 2);
    assert!(
        app.state()
            .keys
            .open(c.tenant, &secret, 2, &v2.sealed)
            .await
            .is_ok(),
        "only version 1 went"
    );
    // Never back, never the current version, never a rollback to what is gone.
    let (s, _, b) = c
        .send(
            Method::PATCH,
            "/v1/versioned-secrets/db-password/versions/1/state",
            Some(json!({ "state": "deprecated" })),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    let (s, _, b) = c
        .send(
            Method::PATCH,
            "/v1/versioned-secrets/db-password/versions/4/state",
            Some(json!({ "state": "destroyed" })),
        )
        .await;
    assert_eq!(s, 409, "the current version: {b}");
    let (s, _, b) = c
        .send(
            Method::POST,
            "/v1/versioned-secrets/db-password/rollback",
            Some(json!({ "targetVersion": 1 })),
        )
        .await;
    assert_eq!(s, 409, "{b}");

    // A rollback writes the old value as a new version.
    let (s, _, b) = c
        .send(
            Method::POST,
            "/v1/versioned-secrets/db-password/rollback",
            Some(json!({ "targetVersion": 2, "reason": "bad deploy" })),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (
            b["newVersion"].as_u64(),
            b["rolledBackFrom"].as_u64(),
            b["rolledBackTo"].as_u64()
        ),
        (Some(5), Some(4), Some(2)),
        "{b}"
    );
    let (_, _, b) = c
        .send(
            Method::GET,
            "/v1/versioned-secrets/db-password/versions/5",
            None,
        )
        .await;
    assert_eq!(b["value"], "bravo");

    // Compare: whether they differ, and digests that match nothing outside one answer.
    let (s, _, same) = c
        .send(
            Method::POST,
            "/v1/versioned-secrets/db-password/compare",
            Some(json!({ "version1": 2, "version2": 5 })),
        )
        .await;
    assert_eq!(s, 200, "{same}");
    assert_eq!(same["different"], false);
    assert_eq!(same["version1"]["hash"], same["version2"]["hash"]);
    let (_, _, again) = c
        .send(
            Method::POST,
            "/v1/versioned-secrets/db-password/compare",
            Some(json!({ "version1": 2, "version2": 3 })),
        )
        .await;
    assert_eq!(again["different"], true, "{again}");
    assert_ne!(
        again["version1"]["hash"], same["version1"]["hash"],
        "a new key per comparison"
    );
    let (s, _, b) = c
        .send(
            Method::POST,
            "/v1/versioned-secrets/db-password/compare",
            Some(json!({ "version1": 1, "version2": 2 })),
        )
        .await;
    assert_eq!(s, 409, "a destroyed version has nothing to compare: {b}");

    // The trail: writes, reads (one refused), state changes and the rollback.
    let (s, _, trail) = c
        .send(Method::GET, "/v1/versioned-secrets/db-password/audit", None)
        .await;
    assert_eq!(s, 200, "{trail}");
    let events = trail["events"].as_array().expect("events");
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["created", "read", "deprecated", "destroyed", "rollback"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "read" && e["version"] == 1 && e["success"] == false),
        "the refused read of the destroyed version: {trail}"
    );
    assert!(
        events.iter().all(|e| e["actor"] == admin.user.to_string()),
        "{trail}"
    );
}

#[tokio::test]
async fn retention_destroys_old_versions_and_the_counts_follow() {
    let app = TestApp::spawn().await;
    let (c, _) = setup(&app, "Versions").await;
    for i in 0..5 {
        let (s, _, b) = c
            .send(
                Method::POST,
                "/v1/versioned-secrets",
                Some(json!({ "secretId": "api-token", "value": format!("v{i}") })),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
    let (s, _, b) = c
        .send(
            Method::PUT,
            "/v1/versioned-secrets/api-token/retention-policy",
            Some(json!({ "maxVersions": 2, "deleteAfter": "P1Y", "autoDestroy": false })),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["retentionPolicy"]["maxVersions"], 2);
    let (s, _, b) = c
        .send(
            Method::POST,
            "/v1/versioned-secrets/api-token/enforce-retention",
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (
            b["versionsDeleted"].as_u64(),
            b["versionsRetained"].as_u64()
        ),
        (Some(3), Some(2)),
        "{b}"
    );
    // Enforcing again destroys nothing more, and says so.
    let (_, _, b) = c
        .send(
            Method::POST,
            "/v1/versioned-secrets/api-token/enforce-retention",
            None,
        )
        .await;
    assert_eq!(b["versionsDeleted"], 0, "{b}");
    let (s, _, b) = c
        .send(
            Method::GET,
            "/v1/versioned-secrets/api-token/versions/5",
            None,
        )
        .await;
    assert_eq!(
        (s, b["value"].as_str()),
        (200, Some("v4")),
        "the current version stays"
    );
    let (s, _, _) = c
        .send(
            Method::GET,
            "/v1/versioned-secrets/api-token/versions/1",
            None,
        )
        .await;
    assert_eq!(s, 410);

    // With autoDestroy, each write applies the policy.
    let (s, _, _) = c
        .send(
            Method::PUT,
            "/v1/versioned-secrets/api-token/retention-policy",
            Some(json!({ "maxVersions": 2, "autoDestroy": true })),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = c
        .send(
            Method::POST,
            "/v1/versioned-secrets",
            Some(json!({ "secretId": "api-token", "value": "v5" })),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _, _) = c
        .send(
            Method::GET,
            "/v1/versioned-secrets/api-token/versions/4",
            None,
        )
        .await;
    assert_eq!(s, 410, "version 4 went with the write of version 6");

    let (s, _, stats) = c
        .send(Method::GET, "/v1/versioned-secrets/stats", None)
        .await;
    assert_eq!(s, 200, "{stats}");
    assert_eq!(stats["totalSecrets"], 1, "{stats}");
    assert_eq!(stats["totalVersions"], 6, "{stats}");
    assert_eq!(stats["byState"]["destroyed"], 4, "{stats}");
    assert_eq!(stats["byState"]["active"], 2, "{stats}");

    // Bad input changes nothing and names the field.
    for (body, field) in [
        (json!({ "maxVersions": 0 }), "maxVersions"),
        (json!({ "deleteAfter": "1 year" }), "deleteAfter"),
        (json!({ "deleteAfter": "PT0S" }), "deleteAfter"),
    ] {
        let (s, _, b) = c
            .send(
                Method::PUT,
                "/v1/versioned-secrets/api-token/retention-policy",
                Some(body),
            )
            .await;
        assert_eq!(
            (s, b["details"]["field"].as_str()),
            (422, Some(field)),
            "{b}"
        );
    }
}

#[tokio::test]
async fn a_stale_if_match_and_another_tenant_are_refused() {
    let app = TestApp::spawn().await;
    let (c, _) = setup(&app, "Versions").await;
    let (_, h, _) = c
        .send(
            Method::POST,
            "/v1/versioned-secrets",
            Some(json!({ "secretId": "guarded", "value": "one" })),
        )
        .await;
    let etag = h["etag"].to_str().expect("etag").to_string();
    let (s, _, _) = c
        .send(
            Method::POST,
            "/v1/versioned-secrets",
            Some(json!({ "secretId": "guarded", "value": "two" })),
        )
        .await;
    assert_eq!(s, 201);
    let r = app
        .http
        .post(app.url("/v1/versioned-secrets"))
        .bearer_auth(&c.token)
        .header("X-Tenant-ID", c.tenant.to_string())
        .header("If-Match", etag)
        .json(&json!({ "secretId": "guarded", "value": "three" }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 409, "written against a version that changed");

    let (other, _) = setup(&app, "Other").await;
    let (s, _, b) = other
        .send(
            Method::GET,
            "/v1/versioned-secrets/guarded/versions/1",
            None,
        )
        .await;
    assert_eq!(s, 404, "another tenant's secret does not exist here: {b}");
    let (_, _, stats) = other
        .send(Method::GET, "/v1/versioned-secrets/stats", None)
        .await;
    assert_eq!(stats["totalSecrets"], 0, "{stats}");
}

#[tokio::test]
async fn concurrent_writers_without_if_match_all_land_each_value_a_version() {
    let app = TestApp::spawn().await;
    let (c, _) = setup(&app, "Racers").await;
    // Sixteen first writes to a name nobody has yet, at once: one creates the secret, the
    // others land on top of it.
    let values: Vec<String> = (0..16).map(|i| format!("value-{i}")).collect();
    let writes = values.iter().map(|v| {
        c.send(
            Method::POST,
            "/v1/versioned-secrets",
            Some(json!({ "secretId": "raced", "value": v })),
        )
    });
    let answers = futures::future::join_all(writes).await;
    let mut versions: Vec<u64> = answers
        .iter()
        .map(|(s, _, b)| {
            assert_eq!(*s, 201, "{b}");
            b["version"].as_u64().expect("version")
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=16).collect::<Vec<u64>>());

    // Each version holds the value its writer sent.
    for ((_, _, b), sent) in answers.iter().zip(&values) {
        let path = format!("/v1/versioned-secrets/raced/versions/{}", b["version"]);
        let (s, _, read) = c.send(Method::GET, &path, None).await;
        assert_eq!(s, 200, "{read}");
        assert_eq!(read["value"].as_str(), Some(sent.as_str()));
    }
}
