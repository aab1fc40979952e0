//! Authenticated request overhead: `GET /incidents/{id}` with an API key, with a login JWT,
//! and with the internal secret (a constant-time compare of a configured value: the request
//! without any credential lookup), in one run on one Aegis. Prints µs per request and the
//! ratios. `scripts/bench auth`.
//!
//! Bounded: a fixed number of sequential requests per credential, in interleaved rounds so
//! drift in the machine hits every variant alike.

use aegis_tests::world::{incident, INTERNAL};
use aegis_tests::TestApp;
use anyhow::{ensure, Context as _};
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

/// Builds one request of a variant.
type Request = Box<dyn Fn() -> reqwest::RequestBuilder>;

async fn run(req: impl Fn() -> reqwest::RequestBuilder, n: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for _ in 0..n {
        let r = req().send().await?;
        ensure!(r.status() == 200, "unexpected {}", r.status());
        r.bytes().await?;
    }
    Ok(start.elapsed())
}

fn main() -> anyhow::Result<()> {
    let per_round: usize = std::env::var("AEGIS_AUTH_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            // Sequential requests outrun the default per-tenant rate; this measures auth alone.
            let app = TestApp::spawn_with_config(|c| c.tenant_rate_limit = 0).await;
            let tenant = app.create_tenant("bench").await;
            let admin = app.user_with_role(tenant, Some("ADMIN")).await;
            let (_, key) = app.api_key(&admin.token, &["incident.read"]).await;
            let (id, _, _) = app.open_incident(tenant, incident("bench", "high")).await;
            let path = format!("/incidents/{id}");
            let url = app.url(&path);
            let variants: Vec<(&str, Request)> = vec![
                ("internal secret (no lookup)", {
                    let (http, url) = (app.http.clone(), url.clone());
                    Box::new(move || {
                        http.get(&url)
                            .header("X-Internal-Secret", INTERNAL)
                            .header("X-Tenant-ID", tenant.to_string())
                    })
                }),
                ("API key (acp_, HMAC digest)", {
                    let (http, url, key) = (app.http.clone(), url.clone(), key.clone());
                    Box::new(move || http.get(&url).bearer_auth(&key))
                }),
                ("JWT (HS256, user + roles)", {
                    let (http, url, token) = (app.http.clone(), url.clone(), admin.token.clone());
                    Box::new(move || http.get(&url).bearer_auth(&token))
                }),
            ];
            // The detail reads the read model: wait until it holds the incident.
            let deadline = Instant::now() + Duration::from_secs(10);
            while (variants[0].1)().send().await?.status() != 200 {
                ensure!(Instant::now() < deadline, "the incident never reached the read model");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Warm caches and connections.
            for (_, req) in &variants {
                run(req, 200).await.context("warm-up")?;
            }
            let mut totals = vec![Duration::ZERO; variants.len()];
            for _ in 0..ROUNDS {
                for (i, (_, req)) in variants.iter().enumerate() {
                    totals[i] += run(req, per_round).await?;
                }
            }
            let n = (ROUNDS * per_round) as f64;
            let us: Vec<f64> = totals.iter().map(|t| t.as_secs_f64() * 1e6 / n).collect();
            println!(
                "GET /incidents/{{id}}, {} sequential requests per credential, {ROUNDS} interleaved rounds",
                ROUNDS * per_round
            );
            for ((name, _), us_i) in variants.iter().zip(&us) {
                println!(
                    "  {name:<30} {us_i:>8.1} µs/request   ratio {:.3}",
                    us_i / us[0]
                );
            }
            let mut app = app;
            app.stop().await;
            Ok(())
        })
}
