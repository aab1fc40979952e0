//! NATS credentials per tenant (issue 6): a SIEM connects to NATS with its tenant's API key
//! and the server, asking Aegis through its auth callout, lets it subscribe to that tenant's
//! subjects only. Proven against a second tenant on a real nats-server configured as a
//! deployment would be (README, "NATS credentials per tenant").

use aegis_command_api::app::Roles;
use aegis_runtime::config::Secret;
use aegis_tests::world::{incident, NatsServer};
use aegis_tests::TestApp;
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const APP_PASSWORD: &str = "aegis-app-password";

/// nats.conf as a deployment with per-tenant credentials has it (the block `aegis
/// nats-callout` prints): Aegis in account AEGIS, every other connection decided by Aegis's
/// callout, signed by `issuer`.
fn callout_conf(issuer: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("aegis-callout-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nats.conf");
    std::fs::write(
        &path,
        format!(
            "server_name: aegis-callout\nmax_payload: 4MB\njetstream {{\n  max_memory_store: 64MB\n}}\n{}",
            aegis_command_api::nats_auth::conf_block(issuer, APP_PASSWORD)
        ),
    )
    .unwrap();
    path
}

/// Connects as a SIEM would, collecting what the server says about its permissions.
async fn siem(
    port: u16,
    password: &str,
) -> Result<(async_nats::Client, Arc<Mutex<Vec<String>>>), async_nats::ConnectError> {
    let said: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = said.clone();
    let client = async_nats::ConnectOptions::with_user_and_password("siem".into(), password.into())
        .event_callback(move |event| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(event.to_string());
            }
        })
        .connect(format!("nats://127.0.0.1:{port}"))
        .await?;
    Ok((client, said))
}

async fn next_within(
    sub: &mut async_nats::Subscriber,
    wait: Duration,
) -> Option<async_nats::Message> {
    tokio::time::timeout(wait, sub.next()).await.ok().flatten()
}

#[tokio::test]
async fn a_tenants_nats_credentials_see_only_that_tenants_events() {
    let issuer = nkeys::KeyPair::new_account();
    let nats = NatsServer::start_with_conf(callout_conf(&issuer.public_key()));
    let port = nats.port;
    let seed = issuer.seed().unwrap();
    let app = TestApp::spawn_on(nats, Roles::ALL, |c| {
        c.nats_url = format!("nats://aegis:{APP_PASSWORD}@127.0.0.1:{port}");
        c.nats_auth_seed = Some(Secret::new(seed));
    })
    .await;
    let mine = app.create_tenant("Subscriber").await;
    let theirs = app.create_tenant("Neighbour").await;
    let admin = app.user_with_role(mine, Some("ADMIN")).await;
    let (_, key) = app.api_key(&admin.token, &["audit.read"]).await;
    let (_, weak_key) = app.api_key(&admin.token, &["incident.read"]).await;

    // Refused outright: no key, a key without audit.read, a forged key.
    for bad in ["not-a-key", weak_key.as_str(), &format!("{key}x")] {
        assert!(siem(port, bad).await.is_err(), "{bad} connected");
    }

    let (client, said) = siem(port, &key).await.expect("the tenant's key connects");
    let mut own = client
        .subscribe(format!("aegis.evt.{mine}.>"))
        .await
        .unwrap();
    let mut other = client
        .subscribe(format!("aegis.evt.{theirs}.>"))
        .await
        .unwrap();
    let mut everything = client.subscribe("aegis.evt.>").await.unwrap();
    let mut js_api = client.subscribe("$JS.API.>").await.unwrap();
    client.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.open_incident(theirs, incident("theirs", "high")).await;
    app.open_incident(mine, incident("mine", "high")).await;

    let got = next_within(&mut own, Duration::from_secs(5))
        .await
        .expect("the tenant's own event arrives");
    assert!(got
        .subject
        .as_str()
        .starts_with(&format!("aegis.evt.{mine}.incidents.")));
    assert!(next_within(&mut other, Duration::from_millis(500))
        .await
        .is_none());
    // Events that carry credential material (a user's password hash, a key's digest) never
    // reach a subscriber; the next incident does.
    app.user_with_role(mine, Some("AUDITOR")).await;
    app.api_key(&admin.token, &["incident.read"]).await;
    app.open_incident(mine, incident("after", "low")).await;
    loop {
        let got = next_within(&mut own, Duration::from_secs(5))
            .await
            .expect("the next incident arrives");
        let subject = got.subject.as_str();
        for withheld in [".identity.user.", ".identity.api_key."] {
            assert!(!subject.contains(withheld), "{subject} delivered");
        }
        if subject.contains(".incidents.") {
            break;
        }
    }
    assert!(next_within(&mut everything, Duration::from_millis(200))
        .await
        .is_none());
    assert!(next_within(&mut js_api, Duration::from_millis(200))
        .await
        .is_none());

    // The server said why: every subscription beyond the tenant's subjects was refused.
    let said = said.lock().unwrap().join("\n");
    for subject in [
        format!("aegis.evt.{theirs}.>"),
        "aegis.evt.>".into(),
        "$JS.API.>".into(),
    ] {
        assert!(
            said.contains(&format!(
                "Permissions Violation for Subscription to \"{subject}\""
            )),
            "{subject} not refused: {said}"
        );
    }
    // And it may not publish into the log.
    client
        .publish(
            format!("aegis.evt.{mine}.incidents.incident.x"),
            "forged".into(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let head_before = app.head().await;
    assert!(next_within(&mut own, Duration::from_millis(300))
        .await
        .is_none());
    assert_eq!(app.head().await, head_before);
}
