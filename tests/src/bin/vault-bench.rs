//! The vault benchmark (issues 5 and 23): credential create, value read and rotate
//! (generated), seed 003's versioned-secret write and read, and dynamic PostgreSQL credentials
//! issued and revoked, at concurrency 16 over HTTP,
//! against raw JetStream publish on the same nats-server, in one run. Prints operations/s and
//! p50/p99 latency of each, and create / raw publish.
//! `scripts/bench vault`; bounded by `AEGIS_VAULT_BENCH_OPS` (default 4,000 per phase).

use aegis_tests::TestApp;
use anyhow::ensure;
use async_nats::jetstream;
use serde_json::json;

use aegis_tests::bench::{phase, phase_with, Runs, CONCURRENCY};

fn main() -> anyhow::Result<()> {
    let ops: usize = std::env::var("AEGIS_VAULT_BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000);
    let runs = Runs::count();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut figures = Runs::default();
    for run in 1..=runs {
        println!("\n######## run {run} of {runs}");
        rt.block_on(run_once(ops, &mut figures))?;
    }
    figures.print();
    Ok(())
}

/// One run of every phase on a fresh Aegis, nats-server and database.
async fn run_once(ops: usize, figures: &mut Runs) -> anyhow::Result<()> {
    let per_worker = (ops / CONCURRENCY).max(1);
    let app = TestApp::spawn_with_config(|c| {
        c.tenant_rate_limit = 0;
        c.egress_allow = vec!["127.0.0.1".into()];
    })
    .await;
    let tenant = app.create_tenant("bench").await;
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;

    // Raw publish: the same stream settings as the event log, one subject per op.
    let js = jetstream::new(async_nats::connect(app.config.nats_url.clone()).await?);
    let mut cfg = aegis_streams::provision::events_config(&Default::default());
    cfg.name = "BENCH_RAW".into();
    cfg.subjects = vec!["bench.raw.>".into()];
    js.create_stream(cfg).await?;
    let payload = bytes::Bytes::from(vec![7u8; 400]);
    let raw = phase(per_worker, move |w, i| {
        let (js, payload) = (js.clone(), payload.clone());
        async move {
            js.publish(format!("bench.raw.{w}.{i}"), payload)
                .await?
                .await?;
            Ok(())
        }
    })
    .await?;

    let base = app.url("");
    let http = app.http.clone();
    let send = move |method: reqwest::Method, path: String, body: Option<serde_json::Value>| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let mut r = http
                .request(method, format!("{base}{path}"))
                .bearer_auth(aegis_tests::world::BOOTSTRAP)
                .header("X-Tenant-ID", tenant.to_string());
            if let Some(b) = body {
                r = r.json(&b);
            }
            let r = r.send().await?;
            let status = r.status();
            let text = r.text().await?;
            ensure!(status.is_success(), "{path}: {status} {text}");
            Ok(())
        }
    };
    let s = send.clone();
    let create = phase(per_worker, move |w, i| {
        s(
            reqwest::Method::POST,
            "/credentials".into(),
            Some(
                json!({ "name": format!("c-{w}-{i}"), "credential_type": "api_key",
                        "provider": "api", "value": format!("secret-{w}-{i}-0123456789abcdef") }),
            ),
        )
    })
    .await?;
    let s = send.clone();
    let read = phase(per_worker, move |w, i| {
        s(
            reqwest::Method::GET,
            format!("/credentials/c-{w}-{i}/value"),
            None,
        )
    })
    .await?;
    // The same reads one at a time: the cost of a read without queueing behind others.
    let s = send.clone();
    let sequential = phase_with(1, (ops / 8).max(1), move |_, i| {
        s(
            reqwest::Method::GET,
            format!(
                "/credentials/c-{}-{}/value",
                i % CONCURRENCY,
                i / CONCURRENCY
            ),
            None,
        )
    })
    .await?;
    let s = send.clone();
    let rotations = (per_worker / 4).max(1);
    let rotate = phase(rotations, move |w, i| {
        s(
            reqwest::Method::POST,
            format!("/credentials/c-{w}-{i}/rotate"),
            Some(json!({ "trigger": "manual" })),
        )
    })
    .await?;

    // Seed 003's versioned secrets: a version written, then versions read (each read
    // recorded before the value leaves, and metered).
    let s = send.clone();
    let secrets = (per_worker / 4).max(1);
    let version_write = phase(secrets, move |w, i| {
                s(
                    reqwest::Method::POST,
                    "/v1/versioned-secrets".into(),
                    Some(json!({ "secretId": format!("vs-{w}-{i}"), "value": format!("secret-{w}-{i}-0123456789abcdef") })),
                )
            })
            .await?;
    let s = send.clone();
    let version_read = phase(per_worker, move |w, i| {
        s(
            reqwest::Method::GET,
            format!("/v1/versioned-secrets/vs-{w}-{}/versions/1", i % secrets),
            None,
        )
    })
    .await?;

    // Seed 003's dynamic secrets on the benchmark's own PostgreSQL: a role made, granted
    // nothing, proven by a login and recorded per issue; then each lease revoked (its
    // role dropped), which also leaves the cluster as it was.
    let config = json!({
        "name": "bench", "type": "database",
        "backend": { "type": "postgres", "connectionString": app.config.database_url, "credentials": {} },
        "ttl": { "default": "PT1H", "max": "PT2H" }
    });
    let r = app
        .http
        .post(app.url("/v1/dynamic-secrets/configs"))
        .bearer_auth(aegis_tests::world::BOOTSTRAP)
        .header("X-Tenant-ID", tenant.to_string())
        .json(&config)
        .send()
        .await?;
    ensure!(
        r.status().is_success(),
        "dynamic config: {}",
        r.text().await?
    );
    let config_id = r.json::<serde_json::Value>().await?["configId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let leases = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (http, base, kept) = (app.http.clone(), app.url(""), leases.clone());
    let issues = (per_worker / 8).max(1);
    let dynamic_issue = phase(issues, move |_, _| {
        let (http, base, kept, config_id) =
            (http.clone(), base.clone(), kept.clone(), config_id.clone());
        async move {
            let r = http
                .post(format!(
                    "{base}/v1/dynamic-secrets/configs/{config_id}/credentials"
                ))
                .bearer_auth(aegis_tests::world::BOOTSTRAP)
                .header("X-Tenant-ID", tenant.to_string())
                .json(&json!({ "ttl": "PT10M" }))
                .send()
                .await?;
            ensure!(r.status().is_success(), "issue: {}", r.text().await?);
            let lease = r.json::<serde_json::Value>().await?["leaseId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            kept.lock().map_err(|e| anyhow::anyhow!("{e}"))?.push(lease);
            Ok(())
        }
    })
    .await?;
    let all: Vec<String> = leases.lock().map_err(|e| anyhow::anyhow!("{e}"))?.clone();
    let all = std::sync::Arc::new(all);
    let s = send.clone();
    let dynamic_revoke = phase(issues, move |w, i| {
        let lease = all.get(w * issues + i).cloned().unwrap_or_default();
        s(
            reqwest::Method::POST,
            format!("/v1/dynamic-secrets/leases/{lease}/revoke"),
            None,
        )
    })
    .await?;

    println!(
        "vault benchmark, concurrency {CONCURRENCY}, one Aegis, one nats-server (sync: always)"
    );
    raw.print("raw JetStream publish (400 B)");
    create.print("POST /credentials (sealed value)");
    read.print("GET /credentials/{name}/value (audited)");
    sequential.print("  the same, one at a time");
    rotate.print("POST /credentials/{name}/rotate (generated)");
    version_write.print("POST /v1/versioned-secrets (new secret)");
    version_read.print("GET /v1/versioned-secrets/{id}/versions/1");
    dynamic_issue.print("POST /v1/dynamic-secrets/.../credentials");
    dynamic_revoke.print("POST /v1/dynamic-secrets/leases/{id}/revoke");
    println!(
        "create / raw publish: {:.2}   (goal >= 0.7)   value read p99: {:.2} ms (goal <= 5)",
        create.rate() / raw.rate(),
        read.latency.value_at_quantile(0.99) as f64 / 1000.0
    );
    println!(
        "versioned-secret read p99: {:.2} ms (goal <= 5)",
        version_read.latency.value_at_quantile(0.99) as f64 / 1000.0
    );
    figures.record("raw publish msg/s", 0, raw.rate());
    figures.record("credential create/s", 0, create.rate());
    figures.record("create / raw publish", 2, create.rate() / raw.rate());
    figures.record("value reads/s", 0, read.rate());
    figures.record(
        "value read p99 (ms)",
        1,
        read.latency.value_at_quantile(0.99) as f64 / 1000.0,
    );
    figures.record("rotate/s", 0, rotate.rate());
    figures.record(
        "versioned read p99 (ms)",
        1,
        version_read.latency.value_at_quantile(0.99) as f64 / 1000.0,
    );
    Ok(())
}
