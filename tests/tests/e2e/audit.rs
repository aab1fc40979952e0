//! Audit reconstruction and chain verification against the real log.

use aegis_schemas::envelope::v1::Commit;
use aegis_schemas::Message;
use aegis_streams::{AggregateRef, Expected};
use aegis_tests::world::{incident, position, PASSWORD};
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let r = app.bearer(Method::GET, path, token).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_resource_is_reconstructed_as_of_a_position_or_a_time() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;
    let (id, opened_at, _) = app.open_incident(tenant, incident("Breach", "high")).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut positions = vec![opened_at];
    for status in ["acknowledged", "investigating"] {
        let r = app
            .internal(Method::PATCH, &format!("/incidents/{id}"), tenant)
            .json(&json!({ "status": status }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        positions.push(position(&r).unwrap());
    }

    let (status, now) = get(
        &app,
        &auditor.token,
        &format!("/audit/reconstruct?resource=incident/{id}"),
    )
    .await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(now["state"]["status"], "investigating");
    assert_eq!(now["version"], 3);
    let events = now["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["event_type"], "incident.opened.v1");
    assert_eq!(events[1]["actor_kind"], "internal");

    let (_, then) = get(
        &app,
        &auditor.token,
        &format!(
            "/audit/reconstruct?resource=incident/{id}&as_of={}",
            positions[1]
        ),
    )
    .await;
    assert_eq!(then["state"]["status"], "acknowledged");
    assert_eq!(then["position"], positions[1]);
    let (_, then) = get(
        &app,
        &auditor.token,
        &format!(
            "/audit/reconstruct?resource=incident/{id}&as_of={}",
            between
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .replace('+', "%2B")
        ),
    )
    .await;
    assert_eq!(then["state"]["status"], "open", "{then}");
    let (_, before) = get(
        &app,
        &auditor.token,
        &format!(
            "/audit/reconstruct?resource=incident/{id}&as_of={}",
            positions[0] - 1
        ),
    )
    .await;
    assert_eq!(
        (
            before["exists"].as_bool(),
            before["events"].as_array().map(Vec::len)
        ),
        (Some(false), Some(0))
    );

    // Users come back as their own route shows them: never the password hash.
    let (status, user) = get(
        &app,
        &auditor.token,
        &format!("/audit/reconstruct?resource=user/{}", auditor.user),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(user["state"]["roles"], json!(["AUDITOR"]));
    assert!(!user.to_string().contains("argon2"), "{user}");
    assert!(!user.to_string().contains(PASSWORD));

    // Bad input and other tenants' resources.
    for (q, expected) in [
        ("resource=planet/x".to_string(), 422),
        ("resource=incident".to_string(), 422),
        (format!("resource=incident/{id}&as_of=yesterday"), 422),
        (format!("resource=incident/{}", Uuid::now_v7()), 404),
    ] {
        let (status, body) = get(&app, &auditor.token, &format!("/audit/reconstruct?{q}")).await;
        assert_eq!(status, expected, "{q}: {body}");
    }
    let other = app.create_tenant("Other").await;
    let stranger = app.user_with_role(other, Some("ADMIN")).await;
    let (status, _) = get(
        &app,
        &stranger.token,
        &format!("/audit/reconstruct?resource=incident/{id}"),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn verify_pins_an_event_forged_straight_into_jetstream() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;
    let (id, _, _) = app.open_incident(tenant, incident("Breach", "high")).await;
    let r = app
        .internal(Method::PATCH, &format!("/incidents/{id}"), tenant)
        .json(&json!({ "status": "acknowledged" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (status, ok) = get(&app, &auditor.token, "/audit/verify").await;
    assert_eq!(status, 200);
    assert_eq!(ok["status"], "intact", "{ok}");
    let checked = ok["events_checked"].as_u64().unwrap();
    assert!(checked >= 4, "tenant, user, incident events: {ok}");

    // Forge: the next event of the incident, linked correctly, but with content its hash does
    // not cover; published with a plain JetStream publish, bypassing every check of the API.
    let agg = AggregateRef::new(tenant, "incidents", "incident", id.to_string()).unwrap();
    let store = app.state().executor.store();
    let history = store.load(&agg, Expected::NEW).await.unwrap();
    let last = history.commits.last().unwrap().events[0].clone();
    let mut forged = last.clone();
    forged.event_id = Uuid::now_v7().to_string();
    forged.aggregate_version = last.aggregate_version + 1;
    forged.prev_hash = last.hash.clone();
    forged.payload = b"resolved by nobody".to_vec();
    let position = app
        .forge(
            &agg,
            Commit {
                events: vec![forged],
            }
            .encode_to_vec(),
        )
        .await;

    let (_, broken) = get(&app, &auditor.token, "/audit/verify").await;
    assert_eq!(broken["status"], "broken", "{broken}");
    let b = &broken["first_break"];
    assert_eq!(b["position"], position);
    assert_eq!(b["kind"], "tampered");
    assert_eq!(b["version"], 3);
    assert_eq!(b["found"], hex::encode(&last.hash));
    assert_ne!(b["expected"], b["found"]);
    let (_, one) = get(
        &app,
        &auditor.token,
        &format!("/audit/verify?resource=incident/{id}"),
    )
    .await;
    assert_eq!(
        (one["status"].as_str(), one["events_checked"].as_u64()),
        (Some("broken"), Some(2))
    );
    let (_, before) = get(
        &app,
        &auditor.token,
        &format!("/audit/verify?to={}", position - 1),
    )
    .await;
    assert_eq!(
        before["status"], "intact",
        "the log before the forgery is sound"
    );
    // Another tenant's chain is not affected.
    let other = app.create_tenant("Other").await;
    let stranger = app.user_with_role(other, Some("AUDITOR")).await;
    let (_, theirs) = get(&app, &stranger.token, "/audit/verify").await;
    assert_eq!(theirs["status"], "intact");
}

async fn verify_offline(bundle: &Value, key: &str) -> (bool, String) {
    let path = std::env::temp_dir().join(format!("aegis-bundle-{}.json", Uuid::now_v7()));
    std::fs::write(&path, serde_json::to_vec(bundle).unwrap()).unwrap();
    // No server address and no database: the bundle and the key are all it has.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aegis-under-test"))
        .arg("verify-audit")
        .arg(&path)
        .args(["--public-key", key])
        .env_remove("NATS_URL")
        .env_remove("DATABASE_URL")
        .output()
        .await
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn an_export_is_proven_offline_by_signed_checkpoints_and_tampering_is_caught() {
    let app = TestApp::spawn_with_config(|c| c.audit_checkpoint_secs = 1).await;
    let tenant = app.create_tenant("Acme").await;
    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;
    for i in 0..3 {
        app.open_incident(tenant, incident(&format!("i{i}"), "high"))
            .await;
    }
    // A user created before credential material moved out of payloads: its hash is in the
    // payload, as logs written then hold it.
    let legacy = aegis_streams::AggregateRef::new(
        tenant,
        "identity",
        "user",
        uuid::Uuid::now_v7().to_string(),
    )
    .unwrap();
    app.state()
        .executor
        .store()
        .append(
            &legacy,
            &aegis_streams::Expected::NEW,
            vec![aegis_streams::NewEvent::new(
                "user.created.v1",
                aegis_schemas::identity::v1::UserCreated {
                    email: "old@example.com".into(),
                    name: "Old".into(),
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                }
                .encode_to_vec(),
            )],
            &aegis_streams::Metadata::system("test"),
            None,
        )
        .await
        .unwrap();
    let other = app.create_tenant("Other").await;
    let head = app.head().await;

    // Wait for a checkpoint that covers everything written so far.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let bundle = loop {
        let (status, bundle) = get(&app, &auditor.token, &format!("/audit/export?to={head}")).await;
        assert_eq!(status, 200, "{bundle}");
        let covered = bundle["checkpoints"]
            .as_array()
            .unwrap()
            .last()
            .is_some_and(|c| c["to"].as_u64().unwrap() >= head);
        if covered {
            break bundle;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint came: {bundle}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let events = bundle["events"].as_array().unwrap();
    // Tenant creation, the auditor (created, role, login), three incidents.
    assert!(events.len() >= 6, "{bundle}");
    let (_, key) = get(&app, &auditor.token, "/audit/public-key").await;
    let key = key["data"]["public_key"].as_str().unwrap().to_string();

    let (ok, out) = verify_offline(&bundle, &key).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("intact: {} events", events.len())),
        "{out}"
    );

    // No credential material leaves: the auditor's password hash stays behind (its digest
    // proves the event whole), and the older event's payload that holds one is withheld,
    // its hash still proven.
    let withheld: Vec<_> = events
        .iter()
        .filter(|e| e["payload_withheld"] == json!(true))
        .collect();
    assert_eq!(withheld.len(), 1, "the legacy user.created only: {bundle}");
    assert!(out.contains("1 of them carry credential material"), "{out}");
    for e in events {
        let raw = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            e["envelope"].as_str().unwrap(),
        )
        .unwrap();
        assert!(!raw.windows(9).any(|w| w == b"$argon2id"), "{e}");
    }

    // Page by page, following next_from, the export holds the same events.
    let mut paged = Vec::new();
    let mut from = 1;
    loop {
        let (status, page) = get(
            &app,
            &auditor.token,
            &format!("/audit/export?from={from}&to={head}&limit=1"),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        paged.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next_from"].as_u64() {
            Some(next) => from = next,
            None => break,
        }
    }
    assert_eq!(&paged, events);

    // An altered event: its own hash gives it away.
    let last = events
        .iter()
        .rposition(|e| e["payload_withheld"].is_null())
        .unwrap();
    let mut altered = bundle.clone();
    let raw = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        altered["events"][last]["envelope"].as_str().unwrap(),
    )
    .unwrap();
    let mut env = aegis_schemas::envelope::v1::Envelope::decode(raw.as_slice()).unwrap();
    env.payload.push(0);
    altered["events"][last]["envelope"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        env.encode_to_vec()
    ));
    let (ok, out) = verify_offline(&altered, &key).await;
    assert!(!ok && out.contains("altered"), "{out}");
    // Claiming a withheld payload for an event that carries no credential is caught.
    let mut claimed = bundle.clone();
    claimed["events"][last]["payload_withheld"] = json!(true);
    let (ok, out) = verify_offline(&claimed, &key).await;
    assert!(
        !ok && out.contains("carries no credential material"),
        "{out}"
    );
    // A withheld event cannot carry a payload in: its content would go unchecked.
    let withheld_at = events
        .iter()
        .position(|e| e["payload_withheld"] == json!(true))
        .unwrap();
    let mut smuggled = bundle.clone();
    let raw = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        smuggled["events"][withheld_at]["envelope"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let mut env = aegis_schemas::envelope::v1::Envelope::decode(raw.as_slice()).unwrap();
    env.payload = b"forged".to_vec();
    smuggled["events"][withheld_at]["envelope"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        env.encode_to_vec()
    ));
    let (ok, out) = verify_offline(&smuggled, &key).await;
    assert!(!ok && out.contains("withheld payload is present"), "{out}");
    // An event with its hash recomputed: the signed root gives it away.
    env.hash = aegis_streams::chain::hash_of(&env).to_vec();
    altered["events"][last]["envelope"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        env.encode_to_vec()
    ));
    let (ok, out) = verify_offline(&altered, &key).await;
    assert!(!ok && out.contains("not included"), "{out}");
    // A re-signed checkpoint under another key does not pass this key.
    let stranger_key = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .verifying_key()
            .as_bytes(),
    );
    let (ok, out) = verify_offline(&bundle, &stranger_key).await;
    assert!(!ok && out.contains("signature does not verify"), "{out}");

    // Another tenant's export holds none of these events.
    let other_admin = app.user_with_role(other, Some("ADMIN")).await;
    let (_, theirs) = get(
        &app,
        &other_admin.token,
        &format!("/audit/export?to={head}"),
    )
    .await;
    let text = theirs.to_string();
    for e in events {
        assert!(!text.contains(e["envelope"].as_str().unwrap()));
    }
}
