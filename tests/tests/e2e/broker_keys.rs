//! Seed 004's agent keys (issue 18): an agent registers its X25519 wire key and asks for data
//! keys; with a wire key registered the data key comes sealed to it (HPKE, RFC 9180), opened
//! here with the agent's private half as an agent would. Only an agent's own secret opens its
//! routes; revoked and quarantined agents are refused.

use aegis_tests::TestApp;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, Serializable};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

async fn as_agent(
    app: &TestApp,
    method: Method,
    secret: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = app
        .http
        .request(method, app.url(path))
        .header("X-Agent-Secret", secret);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("send");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_data_key_is_sealed_to_the_wire_key_the_agent_registered() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Brokers").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let (a, a_secret) = app.mint_agent(&admin.token, "cluster-a").await;
    let (b, b_secret) = app.mint_agent(&admin.token, "cluster-b").await;
    let dek_of = |id: &str| format!("/api/v1/agents/{id}/dek");
    let key_of = |id: &str| format!("/api/v1/agents/{id}/public-key");

    // No wire key yet: the data key travels in the clear, inside TLS, never cached.
    let (s, h, clear) = as_agent(&app, Method::POST, &a_secret, &dek_of(&a), None).await;
    assert_eq!(s, 201, "{clear}");
    assert_eq!(clear["delivery"], "clear");
    assert_eq!(h["cache-control"], "no-store");
    let clear_key = clear["dek"].as_str().expect("dek").to_string();
    assert_eq!(STANDARD.decode(&clear_key).expect("b64").len(), 32);
    assert!(clear["key_id"]
        .as_str()
        .is_some_and(|k| k.starts_with("dek_")));
    assert!(clear["wrapped_dek"]
        .as_str()
        .is_some_and(|w| !w.contains(&clear_key)));

    // Bad wire keys change nothing.
    for (body, why) in [
        (
            json!({ "public_key": STANDARD.encode([7u8; 31]) }),
            "31 bytes",
        ),
        (json!({ "public_key": "not base64!" }), "not base64"),
        (
            json!({ "public_key": STANDARD.encode([0u8; 32]) }),
            "low order",
        ),
        (
            json!({ "public_key": STANDARD.encode([9u8; 32]), "public_key_algorithm": "rsa-pkcs1" }),
            "algorithm",
        ),
    ] {
        let (s, _, e) = as_agent(&app, Method::PUT, &a_secret, &key_of(&a), Some(body)).await;
        assert_eq!(s, 400, "{why}: {e}");
    }

    // The agent's key pair, made as an agent would; the public half registered (twice: the
    // same key again changes nothing).
    let (sk, pk) = X25519HkdfSha256::derive_keypair(Uuid::now_v7().as_bytes());
    let pk_bytes = pk.to_bytes().to_vec();
    let register =
        json!({ "public_key": STANDARD.encode(&pk_bytes), "public_key_algorithm": "x25519" });
    for _ in 0..2 {
        let (s, _, e) = as_agent(
            &app,
            Method::PUT,
            &a_secret,
            &key_of(&a),
            Some(register.clone()),
        )
        .await;
        assert_eq!(s, 204, "{e}");
    }

    // Now the data key comes sealed: only the private half opens it, under the key id.
    let (s, _, sealed) = as_agent(&app, Method::POST, &a_secret, &dek_of(&a), None).await;
    assert_eq!(s, 201, "{sealed}");
    assert_eq!(sealed["delivery"], "hpke");
    assert!(
        sealed.get("dek").is_none(),
        "no clear key beside a sealed one: {sealed}"
    );
    let key_id = sealed["key_id"].as_str().expect("key_id");
    let box_ = &sealed["sealed_dek"];
    assert_eq!(
        box_["wire_key_fingerprint"],
        hex::encode(Sha256::digest(&pk_bytes))
    );
    let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(
        &STANDARD
            .decode(box_["enc"].as_str().expect("enc"))
            .expect("b64"),
    )
    .expect("an encapsulated key");
    let opened = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &sk,
        &enc,
        box_["info"].as_str().expect("info").as_bytes(),
        &STANDARD
            .decode(box_["ciphertext"].as_str().expect("ct"))
            .expect("b64"),
        key_id.as_bytes(),
    )
    .expect("the agent opens its data key");
    assert_eq!(opened.len(), 32);
    // Under another key id it does not open.
    assert!(
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
            &OpModeR::Base,
            &sk,
            &enc,
            box_["info"].as_str().expect("info").as_bytes(),
            &STANDARD
                .decode(box_["ciphertext"].as_str().expect("ct"))
                .expect("b64"),
            b"dek_someone_else",
        )
        .is_err()
    );

    // Only an agent's own secret opens its routes: another agent's is 401, an id that is not
    // a UUID 400, no secret 401.
    let (s, _, _) = as_agent(&app, Method::POST, &b_secret, &dek_of(&a), None).await;
    assert_eq!(s, 401);
    let (s, _, _) = as_agent(
        &app,
        Method::PUT,
        &b_secret,
        &key_of(&a),
        Some(register.clone()),
    )
    .await;
    assert_eq!(s, 401);
    let (s, _, _) = as_agent(
        &app,
        Method::POST,
        &b_secret,
        &format!("/api/v1/agents/{b}/heartbeat"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _, _) = as_agent(
        &app,
        Method::POST,
        &a_secret,
        &format!("/api/v1/agents/{b}/heartbeat"),
        None,
    )
    .await;
    assert_eq!(s, 401);
    let (s, _, _) = as_agent(&app, Method::POST, &a_secret, &dek_of("not-a-uuid"), None).await;
    assert_eq!(s, 400);
    let r = app
        .http
        .post(app.url(&dek_of(&a)))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);

    // The agent list shows the wire key by fingerprint; the audit trail has each change.
    let r = app
        .bearer(Method::GET, "/api/v1/agents", &admin.token)
        .header("Aegis-Min-Position", app.head().await.to_string())
        .send()
        .await
        .expect("list");
    let list: Value = r.json().await.expect("json");
    let row = list["data"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|r| r["id"] == a.as_str())
        .expect("agent a");
    assert_eq!(
        row["public_key_fingerprint"],
        hex::encode(Sha256::digest(&pk_bytes)),
        "{list}"
    );
    let r = app
        .bearer(Method::GET, "/api/v1/audit-events?limit=100", &admin.token)
        .header("Aegis-Min-Position", app.head().await.to_string())
        .send()
        .await
        .expect("audit");
    let audit = r.text().await.expect("body");
    assert!(audit.contains("agent.wire_key_registered"), "{audit}");
    assert!(audit.contains("dek.issued"), "{audit}");
    assert!(
        !audit.contains(&clear_key),
        "a data key never reaches the audit"
    );
    assert!(!String::from_utf8_lossy(&app.log_bytes().await).contains(&clear_key));

    // A quarantined agent is refused as before; a revoked one is unknown from then on.
    let (s, _) = (
        app.bearer(
            Method::POST,
            &format!("/api/v1/agents/{b}/quarantine"),
            &admin.token,
        )
        .send()
        .await
        .expect("quarantine")
        .status()
        .as_u16(),
        (),
    );
    assert_eq!(s, 200);
    let (s, _, e) = as_agent(&app, Method::POST, &b_secret, &dek_of(&b), None).await;
    assert_eq!((s, e["error"].as_str()), (403, Some("agent_quarantined")));
    let s = app
        .bearer(
            Method::POST,
            &format!("/api/v1/agents/{a}/revoke"),
            &admin.token,
        )
        .send()
        .await
        .expect("revoke")
        .status();
    assert_eq!(s, 200);
    for (method, path) in [(Method::POST, dek_of(&a)), (Method::PUT, key_of(&a))] {
        let (s, _, _) = as_agent(&app, method, &a_secret, &path, Some(register.clone())).await;
        assert_eq!(s, 401);
    }
}
