//! Login under attack: concurrent guesses meet the throttle, nobody locks a victim out from
//! elsewhere, and password hashing is bounded.

use aegis_tests::world::PASSWORD;
use aegis_tests::TestApp;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};

/// A client whose connections come from `ip` (any 127/8 address is loopback on Linux).
fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .build()
        .unwrap()
}

async fn login_from(app: &TestApp, client: &reqwest::Client, email: &str, password: &str) -> u16 {
    client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn forty_concurrent_guesses_for_one_account_meet_the_throttle() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    app.create_user(tenant, "target@example.com").await;
    let client = client_from(Ipv4Addr::new(127, 0, 0, 14));
    let guesses = (0..40).map(|i| {
        let (app, client) = (&app, &client);
        async move {
            login_from(
                app,
                client,
                "target@example.com",
                &format!("guess number {i}"),
            )
            .await
        }
    });
    let answers = futures::future::join_all(guesses).await;
    let checked = answers.iter().filter(|s| **s == 401).count();
    let throttled = answers.iter().filter(|s| **s == 429).count();
    assert_eq!(checked, 5, "{answers:?}");
    assert_eq!(throttled, 35, "{answers:?}");
}

#[tokio::test]
async fn failures_from_one_address_do_not_lock_the_owner_out_from_another() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    app.create_user(tenant, "victim@example.com").await;
    let attacker = client_from(Ipv4Addr::new(127, 0, 0, 21));
    for _ in 0..6 {
        login_from(&app, &attacker, "victim@example.com", "wrong password!!").await;
    }
    assert_eq!(
        login_from(&app, &attacker, "victim@example.com", PASSWORD).await,
        429,
        "the guessing address is stopped, even with the right password"
    );
    let owner = client_from(Ipv4Addr::new(127, 0, 0, 30));
    let started = std::time::Instant::now();
    assert_eq!(
        login_from(&app, &owner, "victim@example.com", PASSWORD).await,
        200
    );
    // Only slowed down by the account's recent failures (at most 8 s).
    assert!(started.elapsed() < std::time::Duration::from_secs(9));
}

#[tokio::test]
async fn a_disabled_account_reads_like_a_wrong_password() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let user = app.create_user(tenant, "gone@example.com").await;
    let (status, _) = app
        .call(
            tenant,
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{user}"),
            Some(json!({ "status": "disabled" })),
        )
        .await;
    assert_eq!(status, 200);
    let r = app.login("gone@example.com", PASSWORD).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "invalid email or password");
}

/// Each tenant owns its users' addresses: another tenant's account is neither revealed nor
/// blocking, and login finds the account whose password it is.
#[tokio::test]
async fn emails_are_unique_per_tenant_and_reveal_nothing_across_tenants() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("A corp").await;
    let b = app.create_tenant("B corp").await;
    let create = |tenant, email: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.call(
                tenant,
                reqwest::Method::POST,
                "/api/v1/users",
                Some(json!({ "email": email, "password": password })),
            )
            .await
        }
    };
    let (s, _) = create(b, "admin-b@bcorp.test", "b's own long passphrase").await;
    assert_eq!(s, 201);
    // A learns nothing of B's account, and cannot squat B's future addresses.
    let (s, body) = create(a, "ADMIN-B@bcorp.test", "a's squatting passphrase").await;
    assert_eq!(s, 201, "{body}");
    let (s, _) = create(a, "future-ceo@bcorp.test", "a's squatting passphrase").await;
    assert_eq!(s, 201);
    let (s, body) = create(b, "future-ceo@bcorp.test", "b's ceo long passphrase").await;
    assert_eq!(s, 201, "{body}");
    // Inside one tenant an address is still unique.
    let (s, body) = create(b, "future-ceo@bcorp.test", "another long passphrase").await;
    assert_eq!(s, 409, "{body}");

    // Each password opens its own account.
    for (password, tenant) in [
        ("b's own long passphrase", b),
        ("a's squatting passphrase", a),
    ] {
        let r = app.login("admin-b@bcorp.test", password).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["user"]["tenant_id"], json!(tenant));
    }

    // Two accounts with the same password: the caller names the tenant.
    let (s, _) = create(a, "shared@example.test", "one shared passphrase").await;
    assert_eq!(s, 201);
    let (s, _) = create(b, "shared@example.test", "one shared passphrase").await;
    assert_eq!(s, 201);
    let r = app
        .login("shared@example.test", "one shared passphrase")
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "tenant_required");
    let r = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": "shared@example.test", "password": "one shared passphrase", "tenant_id": b }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["tenant_id"], json!(b));
}

/// A claim whose account was never created (the process died between the claim and the
/// create) does not hold the address for ever: once a minute old, the next creation takes it.
#[tokio::test]
async fn an_email_claim_left_without_its_account_is_taken_over() {
    use aegis_identity::users::{ClaimEmail, EmailOwner, UserEmailAggregate};
    use aegis_identity::TenantId;
    use aegis_runtime::command::CommandContext;
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Crashed").await;
    let mut meta = aegis_streams::Metadata::system("test");
    meta.occurred_at = chrono::Utc::now() - chrono::Duration::minutes(2);
    let ctx = CommandContext {
        meta,
        msg_id: None,
        if_match: None,
    };
    let claim = aegis_streams::AggregateRef::new(
        tenant,
        "identity",
        "user_email",
        "orphan@example.test".to_string(),
    )
    .unwrap();
    app.state()
        .executor
        .execute::<UserEmailAggregate>(
            &claim,
            &ClaimEmail {
                owner: EmailOwner {
                    tenant: TenantId(tenant),
                    user: uuid::Uuid::now_v7(),
                },
                holder_alive: false,
                now: chrono::Utc::now(),
            },
            &ctx,
            false,
        )
        .await
        .unwrap();
    let (s, body) = app
        .call(
            tenant,
            reqwest::Method::POST,
            "/api/v1/users",
            Some(json!({ "email": "orphan@example.test", "password": PASSWORD })),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(
        app.login("orphan@example.test", PASSWORD).await.status(),
        200
    );
}
