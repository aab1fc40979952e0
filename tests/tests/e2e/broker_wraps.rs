//! Seed 004's single-shot wraps (issue 18): an agent holding a claimed job for a request hands
//! over a value (in the clear or as an envelope under a data key it got sealed to its wire
//! key), and it is retrieved exactly once: of ten concurrent retrievals, on one instance or
//! two, one gets the value and nine are refused, and the audit shows each. `HEAD` consumes
//! nothing; expired, unapproved, unknown and tampered are refused; a revoked agent is unknown.

use aegis_tests::world::BOOTSTRAP;
use aegis_tests::TestApp;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, Serializable};
use reqwest::{Client, Method};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

/// An agent as the tests drive it: its id, secret and (once registered) wire key pair.
pub struct Agent {
    pub id: String,
    pub secret: String,
    wire: Option<<X25519HkdfSha256 as Kem>::PrivateKey>,
}

/// A client of one Aegis: as the platform admin acting in `tenant`, or as an agent.
pub struct Client1<'a> {
    pub http: &'a Client,
    pub base: String,
    pub tenant: Uuid,
}

impl<'a> Client1<'a> {
    pub fn of(app: &'a TestApp, tenant: Uuid) -> Self {
        Self {
            http: &app.http,
            base: app.url(""),
            tenant,
        }
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(BOOTSTRAP)
            .header("X-Tenant-ID", self.tenant.to_string());
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.expect("send");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn agent(
        &self,
        agent: &Agent,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Agent-Secret", &agent.secret);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.expect("send");
        let s = r.status().as_u16();
        let h = r.headers().clone();
        (s, h, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn mint(&self, name: &str) -> Agent {
        let (s, b) = self
            .admin(
                Method::POST,
                "/api/v1/agents",
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        Agent {
            id: b["data"]["id"].as_str().expect("id").to_string(),
            secret: b["data"]["agent_secret"]
                .as_str()
                .expect("secret")
                .to_string(),
            wire: None,
        }
    }

    /// Enqueues a job for `request` limited to `agent`, and has the agent claim it.
    pub async fn claimed_job(&self, agent: &Agent, request: Uuid) -> String {
        let (s, b) = self
            .admin(
                Method::POST,
                "/api/v1/jobs",
                Some(json!({ "job_type": "read_secret", "request_id": request,
                    "payload": { "secret_ref": "prod/db", "key": "password" },
                    "agent_scope": { "agent_id": agent.id } })),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let (s, _, job) = self
            .agent(
                agent,
                Method::POST,
                &format!("/api/v1/agents/{}/jobs/claim", agent.id),
                None,
            )
            .await;
        assert_eq!(s, 200, "{job}");
        assert_eq!(job["request_id"], request.to_string(), "{job}");
        job["id"].as_str().expect("job id").to_string()
    }

    /// Registers a fresh wire key for `agent`.
    pub async fn register_wire_key(&self, agent: &mut Agent) {
        let (sk, pk) = X25519HkdfSha256::derive_keypair(Uuid::now_v7().as_bytes());
        let (s, _, e) = self
            .agent(
                agent,
                Method::PUT,
                &format!("/api/v1/agents/{}/public-key", agent.id),
                Some(json!({ "public_key": STANDARD.encode(pk.to_bytes()) })),
            )
            .await;
        assert_eq!(s, 204, "{e}");
        agent.wire = Some(sk);
    }

    /// Asks for a data key and opens it as an agent does: `(key_id, wrapped_dek, key)`.
    pub async fn data_key(&self, agent: &Agent) -> (String, String, Vec<u8>) {
        let (s, _, d) = self
            .agent(
                agent,
                Method::POST,
                &format!("/api/v1/agents/{}/dek", agent.id),
                None,
            )
            .await;
        assert_eq!(s, 201, "{d}");
        let key_id = d["key_id"].as_str().expect("key_id").to_string();
        let wrapped = d["wrapped_dek"].as_str().expect("wrapped").to_string();
        let key = match &agent.wire {
            None => STANDARD
                .decode(d["dek"].as_str().expect("a clear key"))
                .expect("b64"),
            Some(sk) => {
                let sealed = &d["sealed_dek"];
                let b = |f: &str| STANDARD.decode(sealed[f].as_str().expect(f)).expect("b64");
                let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(&b("enc"))
                    .expect("an encapsulated key");
                hpke::single_shot_open::<
                    hpke::aead::ChaCha20Poly1305,
                    hpke::kdf::HkdfSha256,
                    X25519HkdfSha256,
                >(
                    &OpModeR::Base,
                    sk,
                    &enc,
                    sealed["info"].as_str().expect("info").as_bytes(),
                    &b("ciphertext"),
                    key_id.as_bytes(),
                )
                .expect("the agent opens its data key")
            }
        };
        (key_id, wrapped, key)
    }

    /// `value` as an envelope under a fresh data key of `agent`'s.
    pub async fn envelope(&self, agent: &Agent, value: &[u8]) -> Value {
        let (key_id, wrapped, key) = self.data_key(agent).await;
        let cipher = ChaCha20Poly1305::new_from_slice(&key).expect("a 32-byte key");
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value,
                    aad: key_id.as_bytes(),
                },
            )
            .expect("encrypts");
        json!({ "key_id": key_id, "wrapped_dek": wrapped, "nonce": STANDARD.encode(nonce),
            "ciphertext": STANDARD.encode(ciphertext) })
    }

    pub async fn post_wrap(&self, agent: &Agent, body: Value) -> (u16, Value) {
        let (s, _, b) = self
            .agent(
                agent,
                Method::POST,
                &format!("/api/v1/agents/{}/wraps", agent.id),
                Some(body),
            )
            .await;
        (s, b)
    }

    /// Posts `envelope` as a wrap for `request` and retrieves it: the value that came back,
    /// decoded from base64.
    pub async fn hand_over(&self, agent: &Agent, request: Uuid, envelope: Value) -> String {
        let (s, w) = self
            .post_wrap(
                agent,
                json!({ "request_id": request, "key_name": "password", "envelope": envelope }),
            )
            .await;
        assert_eq!(s, 201, "{w}");
        let (s, got) = self
            .get_wrap(agent, w["wrap_id"].as_str().expect("wrap_id"))
            .await;
        assert_eq!(s, 200, "{got}");
        let value = STANDARD
            .decode(got["value"].as_str().expect("value"))
            .expect("base64");
        String::from_utf8(value).expect("utf-8")
    }

    pub async fn get_wrap(&self, agent: &Agent, wrap: &str) -> (u16, Value) {
        let (s, _, b) = self
            .agent(
                agent,
                Method::GET,
                &format!("/api/v1/agents/{}/wraps/{wrap}", agent.id),
                None,
            )
            .await;
        (s, b)
    }
}

/// A value handed over as an envelope (DEK sealed to the agent's wire key) and retrieved:
/// answers what came back. The canary scans (`vault::no_plaintext_...`) run it too.
pub async fn envelope_round_trip(c: &Client1<'_>, value: &str) -> String {
    let mut agent = c.mint("canary-cluster").await;
    c.register_wire_key(&mut agent).await;
    let request = Uuid::now_v7();
    c.claimed_job(&agent, request).await;
    let envelope = c.envelope(&agent, value.as_bytes()).await;
    c.hand_over(&agent, request, envelope).await
}

async fn world() -> (TestApp, Uuid) {
    // The expiry pass every second.
    let app = TestApp::spawn_with_config(|c| c.ar_tick_secs = 1).await;
    let tenant = app.create_tenant("Wraps").await;
    (app, tenant)
}

fn count(audit: &Value, event_type: &str) -> usize {
    audit["data"]
        .as_array()
        .expect("audit events")
        .iter()
        .filter(|e| e.to_string().contains(event_type))
        .count()
}

async fn audit(app: &TestApp, c: &Client1<'_>) -> Value {
    let r = c
        .http
        .get(format!("{}/api/v1/audit-events?limit=200", c.base))
        .bearer_auth(BOOTSTRAP)
        .header("X-Tenant-ID", c.tenant.to_string())
        .header("Aegis-Min-Position", app.head().await.to_string())
        .send()
        .await
        .expect("audit");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

/// Ten concurrent retrievals through `bases` in turn: exactly one 200 with `value`, nine 410.
async fn ten_at_once(
    http: &Client,
    bases: &[String],
    tenant: Uuid,
    agent: &Agent,
    wrap: &str,
    value: &str,
) {
    let gets = (0..10).map(|i| {
        let c = Client1 {
            http,
            base: bases[i % bases.len()].clone(),
            tenant,
        };
        async move { c.get_wrap(agent, wrap).await }
    });
    let answers = futures::future::join_all(gets).await;
    let won: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    assert_eq!(
        won[0]["value"],
        STANDARD.encode(value),
        "base64, as seed 004 answers"
    );
    let gone: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 410)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(gone.len(), 9, "{answers:?}");
    for g in gone {
        assert_eq!(g["message"], "wrap already consumed", "{g}");
        assert!(
            !g.to_string().contains(value),
            "a refusal never carries the value"
        );
    }
}

#[tokio::test]
async fn ten_concurrent_retrievals_get_the_value_once_and_the_audit_shows_each() {
    let (app, tenant) = world().await;
    let c = Client1::of(&app, tenant);
    let agent = c.mint("cluster-a").await;
    let request = Uuid::now_v7();
    c.claimed_job(&agent, request).await;
    let value = format!("hunter2-{}", Uuid::now_v7().simple());
    let (s, w) = c
        .post_wrap(
            &agent,
            json!({ "request_id": request, "key_name": "password", "value": STANDARD.encode(&value) }),
        )
        .await;
    assert_eq!(s, 201, "{w}");
    assert_eq!(w["request_id"], request.to_string());
    assert_eq!(w["key_name"], "password");
    assert_eq!(w["byte_length"], value.len());
    let hash = w["content_hash"].as_str().expect("content_hash");
    assert!(
        hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{w}"
    );
    assert!(!w.to_string().contains(&value));
    let wrap = w["wrap_id"].as_str().expect("wrap_id").to_string();

    // HEAD says it is there, twice, and takes nothing.
    for _ in 0..2 {
        let (s, h, _) = c
            .agent(
                &agent,
                Method::HEAD,
                &format!("/api/v1/agents/{}/wraps/{wrap}", agent.id),
                None,
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(
            h["aegis-wrap-byte-length"],
            value.len().to_string().as_str()
        );
    }

    ten_at_once(&app.http, &[app.url("")], tenant, &agent, &wrap, &value).await;
    // Later, with a retry id or without: gone, never the value again.
    let r = app
        .http
        .get(app.url(&format!("/api/v1/agents/{}/wraps/{wrap}", agent.id)))
        .header("X-Agent-Secret", &agent.secret)
        .header("Idempotency-Key", "same-key")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 410);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let (s, _, _) = c
        .agent(
            &agent,
            Method::HEAD,
            &format!("/api/v1/agents/{}/wraps/{wrap}", agent.id),
            None,
        )
        .await;
    assert_eq!(s, 410, "HEAD tells it is gone");

    // The wrap's key is gone, and the log says so.
    let id = Uuid::parse_str(&wrap).expect("uuid");
    let keys = &app.state().keys;
    assert!(
        aegis_tests::world::eventually(Duration::from_secs(10), || async {
            !keys
                .holds(tenant, &format!("broker/wrap/{id}"))
                .await
                .expect("key store")
        })
        .await,
        "the retrieved wrap's key is destroyed (the key store still holds it after 10 s)"
    );
    let recorded = aegis_tests::world::eventually(Duration::from_secs(10), || async {
        count(&audit(&app, &c).await, "wrap.key_destroyed") == 1
    })
    .await;
    assert!(
        recorded,
        "the key's destruction is on the log: {}",
        audit(&app, &c).await
    );

    // The audit: one retrieval, ten refusals (nine racing, one after), and never the value.
    let a = audit(&app, &c).await;
    assert_eq!(count(&a, "wrap.created"), 1, "{a}");
    assert_eq!(count(&a, "wrap.retrieved"), 1, "{a}");
    assert_eq!(count(&a, "wrap.denied"), 10, "{a}");
    assert!(!a.to_string().contains(&value));
    assert!(!a.to_string().contains(&STANDARD.encode(&value)));
    assert!(!a.to_string().contains(hash), "the MAC stays inside");
    let log = app.log_bytes().await;
    assert!(!log.windows(value.len()).any(|w| w == value.as_bytes()));

    // Metrics count what happened.
    let m = app.metrics().await;
    let t = tenant.to_string();
    for line in [
        format!("broker_wraps_consumed_total{{tenant_id=\"{t}\"}} 1"),
        format!("broker_wrap_denials_total{{tenant_id=\"{t}\",reason=\"consumed\"}} 10"),
    ] {
        assert!(m.contains(&line), "{line} in\n{m}");
    }
}

#[tokio::test]
async fn two_instances_agree_on_the_one_retrieval() {
    let (app, tenant) = world().await;
    let (_other, other_base) = app.second_instance().await;
    let c = Client1::of(&app, tenant);
    let agent = c.mint("cluster-b").await;
    let request = Uuid::now_v7();
    c.claimed_job(&agent, request).await;
    let value = format!("two-instances-{}", Uuid::now_v7().simple());
    // Made through the second instance, retrieved through both at once.
    let c2 = Client1 {
        http: &app.http,
        base: other_base.clone(),
        tenant,
    };
    let (s, w) = c2
        .post_wrap(
            &agent,
            json!({ "request_id": request, "key_name": "password", "value": STANDARD.encode(&value) }),
        )
        .await;
    assert_eq!(s, 201, "{w}");
    let wrap = w["wrap_id"].as_str().expect("wrap_id");
    ten_at_once(
        &app.http,
        &[app.url(""), other_base],
        tenant,
        &agent,
        wrap,
        &value,
    )
    .await;
    let a = audit(&app, &c).await;
    assert_eq!(count(&a, "wrap.retrieved"), 1, "{a}");
    assert_eq!(count(&a, "wrap.denied"), 9, "{a}");
}

#[tokio::test]
async fn envelopes_open_only_under_the_agents_own_data_key() {
    let (app, tenant) = world().await;
    let c = Client1::of(&app, tenant);
    let value = format!("envelope-{}", Uuid::now_v7().simple());
    assert_eq!(envelope_round_trip(&c, &value).await, value);

    let mut a = c.mint("cluster-a").await;
    c.register_wire_key(&mut a).await;
    let b = c.mint("cluster-b").await;
    let request = Uuid::now_v7();
    c.claimed_job(&a, request).await;
    let post = |body: Value| {
        let mut body = body;
        body["request_id"] = json!(request);
        body["key_name"] = json!("password");
        body
    };
    // Altered ciphertext, another key id, another agent's data key: 400, nothing made.
    let mut tampered = c.envelope(&a, b"secret").await;
    let mut ct = STANDARD
        .decode(tampered["ciphertext"].as_str().expect("ct"))
        .expect("b64");
    ct[0] ^= 1;
    tampered["ciphertext"] = json!(STANDARD.encode(&ct));
    let mut renamed = c.envelope(&a, b"secret").await;
    renamed["key_id"] = json!("dek_0");
    let foreign = c.envelope(&b, b"secret").await;
    for (envelope, why) in [
        (tampered, "tampered"),
        (renamed, "renamed"),
        (foreign, "another agent's key"),
    ] {
        let (s, e) = c.post_wrap(&a, post(json!({ "envelope": envelope }))).await;
        assert_eq!(s, 400, "{why}: {e}");
    }
    // Both or neither of value and envelope; a ttl out of range; a value over 64 KiB.
    let env = c.envelope(&a, b"secret").await;
    for (body, why) in [
        (json!({ "value": "eA==", "envelope": env }), "both"),
        (json!({}), "neither"),
        (json!({ "value": "eA==", "ttl_seconds": 0 }), "ttl 0"),
        (
            json!({ "value": "eA==", "ttl_seconds": 3601 }),
            "ttl too long",
        ),
        (
            json!({ "value": STANDARD.encode(vec![7u8; 64 * 1024 + 1]) }),
            "too big",
        ),
        (json!({ "value": "not base64!" }), "not base64"),
    ] {
        let (s, e) = c.post_wrap(&a, post(body)).await;
        assert_eq!(s, 400, "{why}: {e}");
    }
    let a_audit = audit(&app, &c).await;
    assert_eq!(
        count(&a_audit, "wrap.created"),
        1,
        "only the round trip made a wrap: {a_audit}"
    );
}

#[tokio::test]
async fn unapproved_expired_unknown_foreign_and_revoked_are_refused() {
    let (app, tenant) = world().await;
    let c = Client1::of(&app, tenant);
    let a = c.mint("cluster-a").await;
    let b = c.mint("cluster-b").await;
    let request = Uuid::now_v7();
    let job = c.claimed_job(&a, request).await;

    // Another agent, without a job on the request, can neither post nor take.
    let (s, e) = c
        .post_wrap(
            &b,
            json!({ "request_id": request, "key_name": "k", "value": "dg==" }),
        )
        .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (409, Some("request_not_approved")),
        "{e}"
    );
    let (s, w) = c
        .post_wrap(
            &a,
            json!({ "request_id": request, "key_name": "k", "value": "djE=", "ttl_seconds": 1 }),
        )
        .await;
    assert_eq!(s, 201, "{w}");
    let short = w["wrap_id"].as_str().expect("wrap_id").to_string();
    let (s, e) = c.get_wrap(&b, &short).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (409, Some("request_not_approved")),
        "{e}"
    );

    // Past its time: expired, for its own agent too; the expiry pass ends it on the log and
    // the metrics count it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, e) = c.get_wrap(&a, &short).await;
    assert_eq!(
        (s, e["message"].as_str()),
        (410, Some("wrap expired")),
        "{e}"
    );
    let expired = format!("broker_wraps_expired_total{{tenant_id=\"{tenant}\"}} 1");
    assert!(
        aegis_tests::world::eventually(Duration::from_secs(10), || async {
            app.metrics().await.contains(&expired)
        })
        .await,
        "{expired}"
    );
    let trail = audit(&app, &c).await;
    assert_eq!(count(&trail, "wrap.expired"), 1, "{trail}");
    assert_eq!(count(&trail, "wrap.key_destroyed"), 1, "{trail}");

    // Unknown, not a UUID, another tenant's: nothing to see.
    let (s, _) = c.get_wrap(&a, &Uuid::now_v7().to_string()).await;
    assert_eq!(s, 404);
    let (s, _) = c.get_wrap(&a, "not-a-uuid").await;
    assert_eq!(s, 400);
    let other_tenant = app.create_tenant("Elsewhere").await;
    let c2 = Client1::of(&app, other_tenant);
    let stranger = c2.mint("stranger").await;
    let (s, _) = c2.get_wrap(&stranger, &short).await;
    assert_eq!(s, 404, "another tenant's wrap does not exist for it");

    // A completed job no longer approves anything.
    let (s, w) = c
        .post_wrap(
            &a,
            json!({ "request_id": request, "key_name": "k", "value": "djI=" }),
        )
        .await;
    assert_eq!(s, 201, "{w}");
    let later = w["wrap_id"].as_str().expect("wrap_id").to_string();
    let (s, _, _) = c
        .agent(
            &a,
            Method::POST,
            &format!("/api/v1/agents/{}/jobs/{job}/complete", a.id),
            Some(json!({ "status": "succeeded" })),
        )
        .await;
    assert_eq!(s, 204);
    let (s, e) = c.get_wrap(&a, &later).await;
    assert_eq!(s, 409, "{e}");

    // Revoked mid-job: claims, data keys and wraps are 401 from then on.
    let request = Uuid::now_v7();
    c.claimed_job(&a, request).await;
    let (s, _) = c
        .admin(
            Method::POST,
            &format!("/api/v1/agents/{}/revoke", a.id),
            None,
        )
        .await;
    assert_eq!(s, 200);
    for (method, path, body) in [
        (
            Method::POST,
            format!("/api/v1/agents/{}/jobs/claim", a.id),
            None,
        ),
        (Method::POST, format!("/api/v1/agents/{}/dek", a.id), None),
        (
            Method::POST,
            format!("/api/v1/agents/{}/wraps", a.id),
            Some(json!({ "request_id": request, "key_name": "k", "value": "dg==" })),
        ),
        (
            Method::GET,
            format!("/api/v1/agents/{}/wraps/{later}", a.id),
            None,
        ),
    ] {
        let (s, _, e) = c.agent(&a, method, &path, body).await;
        assert_eq!(s, 401, "{path}: {e}");
    }
}

/// An agent written against secrets-bridge: no wire key, a clear DEK from `plaintext`, AES-256-GCM
/// without associated data, the envelope's `dek_ciphertext` / `dek_kms_key_id`, values in base64.
#[tokio::test]
async fn a_secrets_bridge_agent_posts_an_aes_gcm_envelope_unchanged() {
    use aes_gcm::Aes256Gcm;
    let (app, tenant) = world().await;
    let c = Client1::of(&app, tenant);
    let agent = c.mint("legacy-cluster").await;
    let request = Uuid::now_v7();
    c.claimed_job(&agent, request).await;
    let (s, _, dek) = c
        .agent(
            &agent,
            Method::POST,
            &format!("/api/v1/agents/{}/dek", agent.id),
            None,
        )
        .await;
    assert_eq!(s, 201, "{dek}");
    assert_eq!(dek["algorithm"], "aes-256-gcm");
    let key = STANDARD
        .decode(dek["plaintext"].as_str().expect("plaintext"))
        .expect("b64");
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let value = format!("legacy-{}", Uuid::now_v7().simple());
    let ciphertext = Aes256Gcm::new_from_slice(&key)
        .expect("a 32-byte key")
        .encrypt(&nonce, value.as_bytes())
        .expect("encrypts");
    let envelope = json!({ "algorithm": "aes-256-gcm", "ciphertext": STANDARD.encode(&ciphertext),
        "nonce": STANDARD.encode(nonce), "dek_ciphertext": dek["ciphertext"],
        "dek_kms_key_id": dek["kms_key_id"] });
    assert_eq!(c.hand_over(&agent, request, envelope.clone()).await, value);
    // The same envelope claimed as the other cipher does not open.
    let mut wrong = envelope.clone();
    wrong["algorithm"] = json!("chacha20-poly1305");
    let (s, e) = c
        .post_wrap(
            &agent,
            json!({ "request_id": request, "key_name": "password", "envelope": wrong }),
        )
        .await;
    assert_eq!(s, 400, "{e}");
}
