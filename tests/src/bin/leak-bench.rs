//! The leakage benchmark (issue 23): a synthetic git repository (`AEGIS_LEAK_BENCH_MB` MiB
//! of blobs, default 32, over 16 commits of 32 files) served on loopback, then
//! 1. end to end: a scan queued over HTTP on an in-process Aegis and run by its reactor
//!    (clone, every blob read, detection, fingerprints, incidents), bytes scanned over the
//!    scan's own started→completed time;
//! 2. the scan's engine alone (`Sweep`: the detector's RegexSet pass, its rules' matches, a
//!    fingerprint per candidate) over the same blobs in memory;
//! 3. a raw `RegexSet::matches` pass of the same patterns over the same blobs.
//!
//! Prints MB/s of each and their ratios to the raw pass. `scripts/bench leakage`.

use aegis_tests::git;
use aegis_tests::world::eventually;
use aegis_tests::TestApp;
use aegis_vault::leakage::detector::Detector;
use aegis_vault::leakage::{LeakSeverity, Pattern, PatternKind};
use aegis_vault_services::leakage::findings::Sweep;
use aegis_vault_services::leakage::sources;
use anyhow::{ensure, Context};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

const COMMITS: usize = 16;
const FILES: usize = 32;

/// A small deterministic generator: the same repository every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn word(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len)
            .map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
}

/// Source-like text of about `bytes`, with a leak now and then.
fn text(rng: &mut Rng, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 128);
    while out.len() < bytes {
        let line = match rng.next() % 2000 {
            0 => format!("DB_PASSWORD = \"{}\"\n", rng.word(14)),
            1 => format!("const TOKEN: &str = \"ghp_{}\";\n", rng.word(36)),
            2 => format!("signing_key = {}\n", rng.word(40)),
            n => format!(
                "    let {} = compute_{}(&{}, {}); // step {n}\n",
                rng.word(8),
                rng.word(6),
                rng.word(10),
                rng.next() % 10_000
            ),
        };
        out.push_str(&line);
    }
    out
}

fn repository(root: &Path, mib: usize) -> anyhow::Result<()> {
    let work = git::init(root)?;
    let per_file = (mib << 20) / (COMMITS * FILES);
    let mut rng = Rng(0x5eed_1eaf_cafe_f00d);
    for c in 0..COMMITS {
        for f in 0..FILES {
            std::fs::write(work.join(format!("src_{f}.rs")), text(&mut rng, per_file))?;
        }
        git::git(&work, &["add", "."])?;
        git::git(&work, &["commit", "-q", "-m", &format!("commit {c}")])?;
    }
    git::publish(root)
}

fn policy() -> Vec<Pattern> {
    let p = |kind, pattern: &str| Pattern {
        kind,
        pattern: pattern.into(),
        severity: LeakSeverity::High,
    };
    vec![
        p(PatternKind::Keyword, "password"),
        p(PatternKind::Entropy, "4.5"),
        p(PatternKind::Regex, r"signing_key = ([A-Za-z0-9]{40})"),
    ]
}

fn rate(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mib: usize = std::env::var("AEGIS_LEAK_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let dir = tempfile::tempdir()?;
    repository(dir.path(), mib)?;
    let repo = git::serve(dir.path()).await;

    // The blobs, read by the scan's own reader.
    let allow = vec!["127.0.0.1".to_string()];
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let read = sources::repository(Some(&allow), &repo, u64::MAX, |b| {
        blobs.push(b.bytes.to_vec())
    })
    .await?;
    let bytes: u64 = blobs.iter().map(|b| b.len() as u64).sum();
    println!(
        "repository: {} blobs, {:.1} MiB",
        read.blobs,
        bytes as f64 / (1 << 20) as f64
    );

    let detector = Detector::new(&policy(), true).context("the patterns compile")?;
    let raw = regex::bytes::RegexSet::new(detector.patterns())?;
    let started = Instant::now();
    let mut hits = 0usize;
    for b in &blobs {
        hits += raw.matches(b).iter().count();
    }
    let raw_time = started.elapsed();
    let key = zeroize::Zeroizing::new([7u8; 32]);
    let known = HashMap::new();
    let started = Instant::now();
    let mut sweep = Sweep::new(&detector, &key, &known);
    for b in &blobs {
        sweep.blob(sources::Blob { path: "", bytes: b });
    }
    let engine_time = started.elapsed();
    let findings = sweep.found.len();

    // End to end, through Aegis.
    let app = TestApp::spawn_with_config(|c| {
        c.ar_tick_secs = 1;
        c.egress_allow = allow.clone();
        c.tenant_rate_limit = 0;
    })
    .await;
    let tenant = app.create_tenant("leak-bench").await;
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    let patterns: Vec<Value> = policy()
        .iter()
        .map(|p| json!({ "type": p.kind.as_str(), "pattern": p.pattern, "severity": "high" }))
        .collect();
    let r = app
        .admin(reqwest::Method::POST, "/v1/leakage-detection/policies", Some(tenant))
        .json(&json!({ "name": "bench", "secretPatterns": patterns, "actions": { "onDetection": "alert" } }))
        .send()
        .await?;
    ensure!(r.status() == 201, "policy: {}", r.text().await?);
    let policy_id = r.json::<Value>().await?["policyId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = app
        .admin(reqwest::Method::POST, "/v1/leakage-detection/scan", Some(tenant))
        .json(&json!({ "targets": ["url"], "scope": { "repositories": [repo] }, "policyIds": [policy_id] }))
        .send()
        .await?;
    ensure!(r.status() == 202, "scan: {}", r.text().await?);
    let scan = r.json::<Value>().await?["scanId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let path = format!("/v1/leakage-detection/scans/{scan}");
    let view = || async {
        let r = app
            .admin(reqwest::Method::GET, &path, Some(tenant))
            .send()
            .await
            .ok()?;
        r.json::<Value>().await.ok()
    };
    let done = eventually(Duration::from_secs(600), || async {
        view()
            .await
            .is_some_and(|v| v["status"] == "completed" || v["status"] == "failed")
    })
    .await;
    ensure!(done, "the scan did not end within 10 minutes");
    let v = view().await.context("the scan")?;
    ensure!(v["status"] == "completed", "the scan failed: {v}");
    let at = |k: &str| chrono::DateTime::parse_from_rfc3339(v[k].as_str().unwrap_or_default());
    let e2e_time = (at("completedAt")? - at("startedAt")?).to_std()?;
    let scanned = v["bytesScanned"].as_u64().unwrap_or_default();

    println!(
        "raw RegexSet pass            {:>8.1} MB/s   ({hits} set matches)",
        rate(bytes, raw_time)
    );
    println!("scan engine (Sweep)          {:>8.1} MB/s   ({findings} distinct findings)   engine / raw {:.2}", rate(bytes, engine_time), raw_time.as_secs_f64() / engine_time.as_secs_f64());
    println!(
        "scan end to end (HTTP, clone) {:>7.1} MB/s   ({} findings, {:.2} s)   end to end / raw {:.2}",
        rate(scanned, e2e_time),
        v["findings"],
        e2e_time.as_secs_f64(),
        raw_time.as_secs_f64() / e2e_time.as_secs_f64() * scanned as f64 / bytes as f64
    );
    Ok(())
}
