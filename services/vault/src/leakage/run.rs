//! Running one scan: take it (one worker at a time; another takes over a worker that fell
//! silent), read every target, turn bytes into candidates, name the tenant's secrets among
//! them by fingerprint, open or join an incident per leaked value and place, and apply the
//! policy's action. The scan ends `failed` when any target could not be read, naming which,
//! with what the readable ones found kept.

use super::findings::{every_channel, strength, Owner, Reading};
use super::hosting;
use super::{execute, policy, LeakError};
use crate::fingerprints;
use aegis_runtime::command::{CommandContext, CommandError};
use aegis_runtime::Runtime;
use aegis_vault::leakage::detector::Detector;
use aegis_vault::leakage::organization::{Host, Organization};
use aegis_vault::leakage::scan::{
    LeakScanAggregate, LeakScanStatus, Scan, ScanCommand, ScanError, Tally,
};
use aegis_vault::leakage::{OnDetection, Pattern};
use chrono::{TimeDelta, Utc};
use uuid::Uuid;

/// A running scan silent this long has lost its worker.
pub const STALE_AFTER: TimeDelta = TimeDelta::minutes(10);

/// Scans waiting for a worker (queued, or running with a silent worker), oldest first.
pub async fn due(rt: &Runtime, limit: i64) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tenant_id, id FROM vault_leak_scans \
         WHERE status = 'queued' OR (status = 'running' AND touched_at < now() - make_interval(secs => $1)) \
         ORDER BY queued_at LIMIT $2",
    )
    .bind(STALE_AFTER.num_seconds() as f64)
    .bind(limit)
    .fetch_all(&rt.pool)
    .await
}

/// Runs scan `id` of `tenant` to its end. Answers `None` when another worker has it or it
/// ended already.
pub async fn run_scan(
    rt: &Runtime,
    tenant: Uuid,
    id: &str,
    worker: &str,
) -> Result<Option<LeakScanStatus>, LeakError> {
    // A context per command: each event carries the time it happened (a scan runs for
    // minutes, and its silence is what tells another worker to take over), all under one
    // correlation id.
    let correlation = Uuid::now_v7().to_string();
    let ctx = || CommandContext::acting("system", "leak-scan", Some(correlation.clone()));
    let start = ScanCommand::Start {
        worker: worker.into(),
        now: Utc::now(),
        stale_after: STALE_AFTER,
    };
    let scan = match execute::<LeakScanAggregate>(rt, &ctx(), tenant, id, &start).await {
        Ok(done) => done
            .state
            .ok_or(CommandError::Domain(ScanError::NotFound))?,
        Err(CommandError::Domain(ScanError::Busy | ScanError::Finished(_))) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut patterns: Vec<Pattern> = Vec::new();
    let mut owners: Vec<Owner> = Vec::new();
    for pid in &scan.request.policy_ids {
        // A policy deleted since the scan was queued no longer applies.
        let Ok(p) = policy(rt, tenant, pid).await else {
            continue;
        };
        for pattern in &p.new.patterns {
            patterns.push(pattern.clone());
            owners.push(Owner {
                policy_id: pid.clone(),
                action: p.new.on_detection,
                channels: p.new.notification_channels.clone(),
            });
        }
    }
    let strongest = owners
        .iter()
        .max_by_key(|o| strength(o.action))
        .cloned()
        .map(|o| Owner {
            channels: every_channel(&owners),
            ..o
        })
        .unwrap_or(Owner {
            policy_id: String::new(),
            action: OnDetection::Alert,
            channels: vec![],
        });
    let detector = match Detector::new(&patterns, true) {
        Ok(d) => d,
        Err(e) => {
            return finish(
                rt,
                &ctx(),
                tenant,
                id,
                Tally::default(),
                vec![e.to_string()],
            )
            .await
        }
    };
    owners.resize(detector.rules.len(), strongest);
    let key = fingerprints::key(rt, tenant).await?;
    let known = fingerprints::index(rt, tenant).await?;
    let allow = rt.config.egress();
    let git_source = scan
        .request
        .targets
        .iter()
        .find(|t| *t == "github" || *t == "gitlab")
        .cloned()
        .unwrap_or_else(|| "git".into());
    let page_source = if scan.request.targets.iter().any(|t| t == "pastebin") {
        "pastebin"
    } else {
        "url"
    };
    let request = &scan.request;
    let targets = request
        .repositories
        .iter()
        .map(|u| Target::Repository(u.as_str()))
        .chain(request.organizations.iter().map(Target::Organization))
        .chain(request.urls.iter().map(|u| Target::Page(u.as_str())));
    let reading = Reading {
        rt,
        tenant,
        scan: id,
        correlation: &correlation,
        detector: &detector,
        owners: &owners,
        key: &key,
        known: &known,
        max_bytes: rt.config.leak_max_repository_mb.saturating_mul(1 << 20),
    };
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for (n, target) in targets.enumerate() {
        let failed = |e: &dyn std::fmt::Display| {
            tracing::info!(%tenant, scan = id, target = n + 1, error = %e, "a leak scan target could not be read");
        };
        match target {
            Target::Repository(url) => {
                if let Err(e) = reading.read(url, true, &git_source, &mut tally).await? {
                    failed(&e);
                    failures.push(format!("target {} could not be read: {e}", n + 1));
                }
            }
            Target::Page(url) => {
                if let Err(e) = reading.read(url, false, page_source, &mut tally).await? {
                    failed(&e);
                    failures.push(format!("target {} could not be read: {e}", n + 1));
                }
            }
            Target::Organization(org) => {
                let api = match org.host {
                    Host::Github => &rt.config.github_api_url,
                    Host::Gitlab => &rt.config.gitlab_api_url,
                };
                match hosting::repositories(allow, api, org).await {
                    Ok(urls) => {
                        for url in &urls {
                            let source = org.host.as_str();
                            if let Err(e) = reading.read(url, true, source, &mut tally).await? {
                                failed(&e);
                                failures.push(format!(
                                    "target {} ({org}): a repository could not be read: {e}",
                                    n + 1
                                ));
                            }
                        }
                    }
                    Err(e) => {
                        failed(&e);
                        failures.push(format!("target {} ({org}) could not be listed: {e}", n + 1));
                    }
                }
            }
        }
        let progress = ScanCommand::Progress {
            targets_done: n as u32 + 1,
            tally,
        };
        execute::<LeakScanAggregate>(rt, &ctx(), tenant, id, &progress).await?;
    }
    finish(rt, &ctx(), tenant, id, tally, failures).await
}

/// One target of a scan, in the order they are read.
enum Target<'a> {
    Repository(&'a str),
    Organization(&'a Organization),
    Page(&'a str),
}

async fn finish(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: &str,
    tally: Tally,
    failures: Vec<String>,
) -> Result<Option<LeakScanStatus>, LeakError> {
    let (command, status) = if failures.is_empty() {
        (ScanCommand::Complete(tally), LeakScanStatus::Completed)
    } else {
        (
            ScanCommand::Fail {
                reason: failures.join("; "),
                tally,
            },
            LeakScanStatus::Failed,
        )
    };
    execute::<LeakScanAggregate>(rt, ctx, tenant, id, &command).await?;
    Ok(Some(status))
}

/// The scan as it stands in the log.
pub async fn scan(rt: &Runtime, tenant: Uuid, id: &str) -> Result<Option<Scan>, LeakError> {
    Ok(rt.current::<LeakScanAggregate>(tenant, id).await?.0)
}
