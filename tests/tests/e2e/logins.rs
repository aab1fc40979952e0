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
