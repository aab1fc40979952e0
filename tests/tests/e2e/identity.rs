//! Users, login, roles, API keys, agents and tenant scoping, end to end.

use aegis_runtime::tokens::{Claims, Keyring};
use aegis_tests::world::PASSWORD;
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// The server's key ring for `kid`: JWT keys come from the root secret the master key wraps.
async fn keyring(app: &TestApp, kid: &str) -> Keyring {
    let root = app.state().keys.root().await.unwrap();
    Keyring::new(&*root, kid, &[], 3600)
}

async fn status_of(r: reqwest::RequestBuilder) -> (u16, Value) {
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_user_logs_in_and_a_disabled_user_is_refused_on_the_next_request() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let ana = app.user_with_role(tenant, Some("ADMIN")).await;
    // A second ADMIN, so that disabling Ana does not leave the tenant without one.
    app.user_with_role(tenant, Some("ADMIN")).await;

    let (status, body) = status_of(app.bearer(
        Method::GET,
        &format!("/api/v1/users/{}", ana.user),
        &ana.token,
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["email"], ana.email);
    assert_eq!(body["data"]["roles"], json!(["ADMIN"]));
    assert!(body["data"].get("password_hash").is_none());

    // Logins are in the audit trail, by the user who logged in, and in the user listing.
    let pos = app.head().await.to_string();
    let r = app
        .admin(
            Method::GET,
            &format!(
                "/api/v1/audit-events?action=user.logged_in&actor={}",
                ana.user
            ),
            Some(tenant),
        )
        .header("Aegis-Min-Position", &pos)
        .send()
        .await
        .unwrap();
    let audit: Value = r.json().await.unwrap();
    assert_eq!(audit["data"].as_array().unwrap().len(), 1, "{audit}");
    let r = app
        .bearer(Method::GET, "/api/v1/users", &ana.token)
        .header("Aegis-Min-Position", &pos)
        .send()
        .await
        .unwrap();
    let users: Value = r.json().await.unwrap();
    assert!(users["data"][0]["last_login_at"].is_string(), "{users}");

    // The login answer carries the seed's shape.
    let r = app.login(&ana.email.to_uppercase(), PASSWORD).await;
    assert_eq!(r.status(), 200);
    let login: Value = r.json().await.unwrap();
    assert!(login["expires_at"].is_string());
    assert_eq!(login["user"]["tenant_id"], json!(tenant));

    let (status, _) = status_of(
        app.admin(
            Method::PATCH,
            &format!("/api/v1/users/{}", ana.user),
            Some(tenant),
        )
        .json(&json!({ "status": "disabled" })),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = status_of(app.bearer(Method::GET, "/api/v1/users", &ana.token)).await;
    assert_eq!(status, 401, "a disabled user's token stops at once: {body}");
    assert_eq!(body["message"], "the account is disabled");
    let r = app.login(&ana.email, PASSWORD).await;
    assert_eq!(r.status(), 401);

    // The password is in the log only as an argon2id hash.
    let log = app.log_bytes().await;
    assert!(!contains(&log, PASSWORD.as_bytes()));
    assert!(contains(&log, b"$argon2id$v=19$m=19456,t=2,p=1$"));
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn expired_tampered_and_unknown_key_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let ana = app.user_with_role(tenant, Some("AUDITOR")).await;
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| Claims {
        sub: ana.user,
        tid: tenant,
        iat: now - 10,
        exp,
        jti: Uuid::now_v7(),
    };
    let ok = keyring(&app, "k1")
        .await
        .sign_with("k1", &claims(now + 600));
    let (status, _) = status_of(app.bearer(Method::GET, "/api/v1/users", &ok)).await;
    assert_eq!(status, 200, "a token signed by the server's ring works");

    let cases = [
        (
            keyring(&app, "k1").await.sign_with("k1", &claims(now - 1)),
            "the token has expired",
        ),
        (
            keyring(&app, "k9")
                .await
                .sign_with("k9", &claims(now + 600)),
            "the token is signed with an unknown key",
        ),
        (
            Keyring::new(&[9u8; 32], "k1", &[], 3600).sign_with("k1", &claims(now + 600)),
            "the token signature is not valid",
        ),
        (
            {
                let mut parts: Vec<String> = ok.split('.').map(String::from).collect();
                use base64::Engine;
                let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                let mut c: Value = serde_json::from_slice(&b64.decode(&parts[1]).unwrap()).unwrap();
                c["tid"] = json!(Uuid::now_v7());
                parts[1] = b64.encode(serde_json::to_vec(&c).unwrap());
                parts.join(".")
            },
            "the token signature is not valid",
        ),
    ];
    for (token, message) in cases {
        let (status, body) = status_of(app.bearer(Method::GET, "/api/v1/users", &token)).await;
        assert_eq!(status, 401, "{message}");
        assert_eq!(body["message"], message);
        assert_eq!(body["error"], "unauthorized");
    }
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_with_retry_after() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let email = "target@example.com";
    app.create_user(tenant, email).await;
    for _ in 0..5 {
        assert_eq!(app.login(email, "wrong password!!").await.status(), 401);
    }
    // Blocked now, even with the right password: guessing stops paying.
    let r = app.login(email, PASSWORD).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "too_many_attempts");
    // Every attempt on a real account is in its audit trail; failures are anonymous.
    let pos = app.head().await.to_string();
    let r = app
        .admin(
            Method::GET,
            "/api/v1/audit-events?action=user.login_failed",
            Some(tenant),
        )
        .header("Aegis-Min-Position", &pos)
        .send()
        .await
        .unwrap();
    let audit: Value = r.json().await.unwrap();
    let failures = audit["data"].as_array().unwrap();
    assert_eq!(failures.len(), 5, "{audit}");
    assert_eq!(failures[0]["actor_kind"], "anonymous");
    assert_eq!(failures[0]["actor"], "127.0.0.1");
    // Unknown emails answer like wrong passwords.
    let r = app.login("nobody@example.com", PASSWORD).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "invalid email or password");
}

#[tokio::test]
async fn an_api_key_is_shown_once_scoped_and_refused_right_after_revocation() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let (id, key) = app
        .api_key(&admin.token, &["incident.read", "api_key.read"])
        .await;
    assert!(key.starts_with("acp_"));

    let pos = app.head().await.to_string();
    let (status, body) = status_of(
        app.bearer(Method::GET, "/api-keys", &key)
            .header("Aegis-Min-Position", &pos),
    )
    .await;
    assert_eq!(status, 200);
    let listed = &body["data"][0];
    assert_eq!(listed["id"], json!(id));
    assert!(key.starts_with(listed["prefix"].as_str().unwrap()));
    assert!(
        !body.to_string().contains(&key),
        "listing never shows the key"
    );
    let (_, one) = status_of(app.bearer(Method::GET, &format!("/api-keys/{id}"), &key)).await;
    assert_eq!(
        one["data"]["scopes"],
        json!(["incident.read", "api_key.read"])
    );
    assert!(!one.to_string().contains(&key));

    // The same key in seed 002's header is the same principal.
    let (status, _) = status_of(
        app.http
            .get(app.url("/incidents"))
            .header("X-SecBeat-API-Key", &key),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = status_of(
        app.bearer(
            Method::PATCH,
            &format!("/incidents/{}", Uuid::now_v7()),
            &key,
        )
        .json(&json!({ "status": "resolved" })),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["required_permission"], "incident.update");

    // No escalation: an AUDITOR cannot mint a key that can do more than it can.
    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;
    let (status, _) = status_of(
        app.bearer(Method::POST, "/api-keys", &auditor.token)
            .json(&json!({ "name": "x", "scopes": [] })),
    )
    .await;
    assert_eq!(status, 403, "AUDITOR lacks api_key.create");
    let (status, body) = status_of(
        app.bearer(Method::POST, "/api-keys", &admin.token)
            .json(&json!({ "name": "x", "scopes": ["tenant.create"] })),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    let (status, _) =
        status_of(app.bearer(Method::DELETE, &format!("/api-keys/{id}"), &admin.token)).await;
    assert_eq!(status, 204);
    let (status, body) = status_of(app.bearer(Method::GET, "/incidents", &key)).await;
    assert_eq!(status, 401, "the very next request is refused");
    assert_eq!(body["message"], "the API key has been revoked");
    let (status, _) =
        status_of(app.bearer(Method::DELETE, &format!("/api-keys/{id}"), &admin.token)).await;
    assert_eq!(status, 204, "revoking again answers the same");

    // The key never reached the log, only its keyed digest.
    let log = app.log_bytes().await;
    assert!(!contains(&log, key.as_bytes()));
    assert!(!contains(&log, &key.as_bytes()[4..]));

    // The counter is read from the read model: wait for it to catch up with the log.
    let pos = app.head().await.to_string();
    app.bearer(Method::GET, "/api-keys", &admin.token)
        .header("Aegis-Min-Position", &pos)
        .send()
        .await
        .unwrap();
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&format!(
            "acp_api_keys_created_total{{tenant_id=\"{tenant}\"}} 1"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn role_permissions_take_effect_on_the_next_request_and_builtins_are_fixed() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let r = app
        .bearer(Method::POST, "/api/v1/roles", &admin.token)
        .json(&json!({ "name": "Readers", "permissions": ["incident.read"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let role: Value = r.json().await.unwrap();
    let role_id = role["data"]["id"].as_str().unwrap().to_string();
    let reader = app.user_with_role(tenant, Some(&role_id)).await;
    let (status, _) = status_of(app.bearer(Method::GET, "/incidents", &reader.token)).await;
    assert_eq!(status, 200);

    let (status, _) = status_of(
        app.bearer(
            Method::PUT,
            &format!("/api/v1/roles/{role_id}/permissions"),
            &admin.token,
        )
        .json(&json!({ "permissions": ["audit.read"] })),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = status_of(app.bearer(Method::GET, "/incidents", &reader.token)).await;
    assert_eq!(status, 403);
    assert_eq!(body["required_permission"], "incident.read");

    let (status, body) = status_of(app.bearer(
        Method::GET,
        &format!("/api/v1/users/{}/roles", reader.user),
        &admin.token,
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"][0]["permissions"], json!(["audit.read"]));

    // Duplicate names, built-in names, unknown permissions and built-in edits are refused.
    for (body, expected) in [
        (json!({ "name": "readers", "permissions": [] }), 409),
        (json!({ "name": "admin", "permissions": [] }), 409),
        (json!({ "name": "x", "permissions": ["root"] }), 422),
        (
            json!({ "name": "x", "permissions": [], "tenant_id": Uuid::now_v7() }),
            422,
        ),
    ] {
        let (status, _) = status_of(
            app.bearer(Method::POST, "/api/v1/roles", &admin.token)
                .json(&body),
        )
        .await;
        assert_eq!(status, expected, "{body}");
    }
    let (status, _) = status_of(
        app.bearer(Method::PUT, "/api/v1/roles/ADMIN/permissions", &admin.token)
            .json(&json!({ "permissions": [] })),
    )
    .await;
    assert_eq!(status, 409);

    // Deleting the role takes its permissions away and frees the name.
    let (status, _) = status_of(app.bearer(
        Method::DELETE,
        &format!("/api/v1/roles/{role_id}"),
        &admin.token,
    ))
    .await;
    assert_eq!(status, 204);
    let (status, _) =
        status_of(app.bearer(Method::GET, "/api/v1/audit-events", &reader.token)).await;
    assert_eq!(status, 403);
    let (status, _) = status_of(
        app.bearer(Method::POST, "/api/v1/roles", &admin.token)
            .json(&json!({ "name": "Readers", "permissions": [] })),
    )
    .await;
    assert_eq!(status, 201);

    // Assignments: listed, removable by id, and removal is effective.
    let sec = app.user_with_role(tenant, Some("SECURITY")).await;
    let r = app
        .bearer(
            Method::GET,
            &format!("/api/v1/user-roles?user_id={}", sec.user),
            &admin.token,
        )
        .header("Aegis-Min-Position", app.head().await.to_string())
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["total"], 1, "{list}");
    let assignment = list["data"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = status_of(app.bearer(
        Method::DELETE,
        &format!("/api/v1/user-roles/{assignment}"),
        &admin.token,
    ))
    .await;
    assert_eq!(status, 204);
    let (status, _) = status_of(app.bearer(Method::GET, "/incidents", &sec.token)).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn another_tenants_resources_answer_404_and_its_header_403() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("A").await;
    let b = app.create_tenant("B").await;
    let admin_a = app.user_with_role(a, Some("ADMIN")).await;
    let admin_b = app.user_with_role(b, Some("ADMIN")).await;
    let (key_a, _) = app.api_key(&admin_a.token, &["incident.read"]).await;
    let r = app
        .bearer(Method::POST, "/api/v1/roles", &admin_a.token)
        .json(&json!({ "name": "R", "permissions": [] }))
        .send()
        .await
        .unwrap();
    let role_a: Value = r.json().await.unwrap();
    let role_a = role_a["data"]["id"].as_str().unwrap().to_string();
    let r = app
        .bearer(Method::POST, "/api/v1/agents", &admin_a.token)
        .json(&json!({ "name": "edge" }))
        .send()
        .await
        .unwrap();
    let agent_a: Value = r.json().await.unwrap();
    let agent_a = agent_a["data"]["id"].as_str().unwrap().to_string();
    let (incident_a, _, _) = app
        .open_incident(a, aegis_tests::world::incident("x", "high"))
        .await;

    let probes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/users/{}", admin_a.user), None),
        (
            Method::PATCH,
            format!("/api/v1/users/{}", admin_a.user),
            Some(json!({ "status": "disabled" })),
        ),
        (
            Method::GET,
            format!("/api/v1/users/{}/roles", admin_a.user),
            None,
        ),
        (Method::GET, format!("/api/v1/roles/{role_a}"), None),
        (
            Method::PUT,
            format!("/api/v1/roles/{role_a}/permissions"),
            Some(json!({ "permissions": [] })),
        ),
        (Method::DELETE, format!("/api/v1/roles/{role_a}"), None),
        (
            Method::POST,
            "/api/v1/user-roles".into(),
            Some(json!({ "user_id": admin_a.user, "role_id": "ADMIN" })),
        ),
        (Method::GET, format!("/api-keys/{key_a}"), None),
        (Method::DELETE, format!("/api-keys/{key_a}"), None),
        (
            Method::POST,
            format!("/api/v1/agents/{agent_a}/revoke"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/agents/{agent_a}/quarantine"),
            None,
        ),
        (Method::GET, format!("/incidents/{incident_a}"), None),
        (
            Method::PATCH,
            format!("/incidents/{incident_a}"),
            Some(json!({ "status": "resolved" })),
        ),
    ];
    let head = app.head().await;
    for (method, path, body) in &probes {
        let mut r = app.bearer(method.clone(), path, &admin_b.token);
        if let Some(b) = body {
            r = r.json(b);
        }
        let (status, reply) = status_of(r).await;
        assert_eq!(status, 404, "{method} {path}: {reply}");
        // Naming tenant A in the header does not help: the credential is B's.
        let mut r = app
            .bearer(method.clone(), path, &admin_b.token)
            .header("X-Tenant-ID", a.to_string());
        if let Some(b) = body {
            r = r.json(b);
        }
        let (status, reply) = status_of(r).await;
        assert_eq!(status, 403, "{method} {path}: {reply}");
        assert_eq!(reply["error"], "tenant_mismatch");
    }
    assert_eq!(app.head().await, head, "nothing changed in the log");

    // Listings are scoped too.
    let pos = head.to_string();
    for path in [
        "/api/v1/users",
        "/api-keys",
        "/api/v1/agents",
        "/api/v1/user-roles",
        "/api/v1/audit-events",
    ] {
        let r = app
            .bearer(Method::GET, path, &admin_b.token)
            .header("Aegis-Min-Position", &pos)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        let text = body.to_string();
        assert!(
            !text.contains(&admin_a.user.to_string())
                && !text.contains(&key_a.to_string())
                && !text.contains(&agent_a),
            "{path} leaks tenant A: {text}"
        );
    }
}

#[tokio::test]
async fn agents_heartbeat_with_their_secret_until_quarantined_or_revoked() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let r = app
        .bearer(Method::POST, "/api/v1/agents", &admin.token)
        .json(&json!({ "name": "edge-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let minted: Value = r.json().await.unwrap();
    let id = minted["data"]["id"].as_str().unwrap().to_string();
    let secret = minted["data"]["agent_secret"].as_str().unwrap().to_string();
    assert_eq!(minted["data"]["status"], "active");
    let beat = |secret: &str, id: &str| {
        app.http
            .post(app.url(&format!("/api/v1/agents/{id}/heartbeat")))
            .header("X-Agent-Secret", secret)
    };
    assert_eq!(beat(&secret, &id).send().await.unwrap().status(), 204);
    // An agent is only itself (its secret proves nothing about another: 401), and a user is
    // not an agent.
    assert_eq!(
        beat(&secret, &Uuid::now_v7().to_string())
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let (status, body) = status_of(app.bearer(
        Method::POST,
        &format!("/api/v1/agents/{id}/heartbeat"),
        &admin.token,
    ))
    .await;
    assert_eq!(
        (status, body["required_permission"].as_str()),
        (403, Some("agent.self"))
    );

    let r = app
        .bearer(Method::GET, "/api/v1/agents", &admin.token)
        .header("Aegis-Min-Position", app.head().await.to_string())
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["data"][0]["id"], json!(id));
    assert!(list["data"][0]["last_seen_at"].is_string());
    assert!(!list.to_string().contains(&secret));

    let (status, body) = status_of(
        app.bearer(
            Method::POST,
            &format!("/api/v1/agents/{id}/quarantine"),
            &admin.token,
        )
        .json(&json!({ "reason": "beaconing" })),
    )
    .await;
    assert_eq!(
        (status, body["data"]["status"].as_str()),
        (200, Some("quarantined"))
    );
    let (status, body) = status_of(beat(&secret, &id)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("agent_quarantined"))
    );

    let (status, _) = status_of(app.bearer(
        Method::POST,
        &format!("/api/v1/agents/{id}/revoke"),
        &admin.token,
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(beat(&secret, &id).send().await.unwrap().status(), 401);
    let (status, _) = status_of(app.bearer(
        Method::POST,
        &format!("/api/v1/agents/{id}/quarantine"),
        &admin.token,
    ))
    .await;
    assert_eq!(status, 409, "revocation is final");
    assert!(!contains(&app.log_bytes().await, secret.as_bytes()));
}

#[tokio::test]
async fn every_change_is_audited_with_its_actor_and_filterable() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let (key, _) = app.api_key(&admin.token, &["incident.read"]).await;
    app.bearer(Method::DELETE, &format!("/api-keys/{key}"), &admin.token)
        .send()
        .await
        .unwrap();
    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;
    let pos = app.head().await.to_string();

    let get = |q: &str| {
        app.bearer(
            Method::GET,
            &format!("/api/v1/audit-events{q}"),
            &auditor.token,
        )
        .header("Aegis-Min-Position", &pos)
    };
    let (status, body) = status_of(get(&format!("?actor={}", admin.user))).await;
    assert_eq!(status, 200, "{body}");
    let actions: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "api_key.revoked",
            "usage.recorded",
            "api_key.created",
            "user.logged_in"
        ],
        "newest first, only the admin's (creating a key is metered)"
    );
    assert_eq!(body["data"][0]["actor_kind"], "user");
    assert_eq!(body["data"][0]["resource"], format!("api_key:{key}"));

    let (_, body) = status_of(get(&format!("?resource={key}&action=api_key.created"))).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    // Paging walks back through everything exactly once.
    let (_, all) = status_of(get("?limit=1000")).await;
    let total = all["data"].as_array().unwrap().len();
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("?limit=2&cursor={c}"),
            None => "?limit=2".into(),
        };
        let (_, page) = status_of(get(&q)).await;
        seen += page["data"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, total);
    let (status, _) = status_of(get(
        "?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z",
    ))
    .await;
    assert_eq!(status, 422);

    // Seed 001's surface belongs to the vault add-on.
    let (status, body) = status_of(
        app.bearer(Method::GET, "/audit/log", &auditor.token)
            .header("Aegis-Min-Position", &pos),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str(), body["entitlement"].as_str()),
        (403, Some("entitlement_required"), Some("vault"))
    );
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    let (status, log) = status_of(
        app.bearer(
            Method::GET,
            &format!("/audit/log?actor={}&limit=1", admin.user),
            &auditor.token,
        )
        .header("Aegis-Min-Position", &pos),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(log["total"], 4);
    assert_eq!(log["log"][0]["action"], "api_key.revoked");
    assert_eq!(log["log"][0]["success"], true);

    // SECURITY reads the audit log; a user with no role cannot.
    let nobody = app.user_with_role(tenant, None).await;
    let (status, body) =
        status_of(app.bearer(Method::GET, "/api/v1/audit-events", &nobody.token)).await;
    assert_eq!(
        (status, body["required_permission"].as_str()),
        (403, Some("audit.read"))
    );
}

#[tokio::test]
async fn mass_assignment_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let head = app.head().await;
    for body in [
        json!({ "email": "a@example.com", "password": PASSWORD, "is_platform_admin": true }),
        json!({ "email": "a@example.com", "password": PASSWORD, "roles": ["ADMIN"] }),
        json!({ "email": "a@example.com", "password": "short" }),
        json!({ "email": "not-an-email", "password": PASSWORD }),
        // serde would read a struct from an array positionally; bodies must be objects.
        json!(["a@example.com", PASSWORD]),
    ] {
        let (status, reply) = status_of(
            app.admin(Method::POST, "/api/v1/users", Some(tenant))
                .json(&body),
        )
        .await;
        assert_eq!(status, 422, "{body}: {reply}");
    }
    assert_eq!(app.head().await, head);
    app.create_user(tenant, "a@example.com").await;
    let (status, _) = status_of(
        app.admin(Method::POST, "/api/v1/users", Some(tenant))
            .json(&json!({ "email": "A@Example.com", "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, 409, "emails are unique regardless of case");
}
