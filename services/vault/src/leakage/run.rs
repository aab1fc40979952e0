//! Running one scan: take it (one worker at a time; another takes over a worker that fell
//! silent), read every target, turn bytes into candidates, name the tenant's secrets among
//! them by fingerprint, open or join an incident per leaked value and place, and apply the
//! policy's action. The scan ends `failed` when any target could not be read, naming which,
//! with what the readable ones found kept.

use super::sources::{self, Blob, SourceError};
use super::{execute, policy, LeakError};
use crate::access::load;
use crate::fingerprints::{self, Fingerprint, Known};
use aegis_runtime::command::{CommandContext, CommandError};
use aegis_runtime::keys::Key;
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_vault::credentials::Command as CredentialCommand;
use aegis_vault::dynamic::LeaseEnd;
use aegis_vault::leakage::detector::{Detector, Rule};
use aegis_vault::leakage::incident::{
    IncidentCommand, LeakIncidentAggregate, NewIncident, Outcome,
};
use aegis_vault::leakage::scan::{
    LeakScanAggregate, LeakScanStatus, Scan, ScanCommand, ScanError, Tally,
};
use aegis_vault::leakage::{LeakSeverity, OnDetection, Pattern};
use aegis_vault::CredentialAggregate;
use chrono::{TimeDelta, Utc};
use futures::StreamExt;
use std::collections::HashMap;
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

/// Who acts on what a rule finds: the policy the rule came from, or for the built-in pack
/// the scan's policy with the strongest action; and whom it tells: that policy's channels, or
/// for the built-in pack every channel of the scan's policies.
#[derive(Debug, Clone)]
struct Owner {
    policy_id: String,
    action: OnDetection,
    channels: Vec<String>,
}

/// Every channel the owners name, each once, in the order first named.
fn every_channel(owners: &[Owner]) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for c in owners.iter().flat_map(|o| &o.channels) {
        if !all.contains(c) {
            all.push(c.clone());
        }
    }
    all
}

fn strength(a: OnDetection) -> u8 {
    match a {
        OnDetection::Alert => 0,
        OnDetection::Rotate => 1,
        OnDetection::Revoke => 2,
    }
}

/// One leaked value at one target.
pub struct Finding {
    /// Index into the detector's rules.
    pub rule: usize,
    pub path: String,
    /// The tenant's secret version it is, when it is one.
    pub known: Option<Known>,
}

/// What one target's blobs hold: each candidate fingerprinted under the tenant's key and
/// looked up among the tenant's versions, kept once per value (the first place seen). The
/// candidate's text is dropped as soon as it is fingerprinted.
pub struct Sweep<'a> {
    detector: &'a Detector,
    key: &'a Key,
    known: &'a HashMap<Fingerprint, Known>,
    pub found: HashMap<Fingerprint, Finding>,
}

impl<'a> Sweep<'a> {
    pub fn new(
        detector: &'a Detector,
        key: &'a Key,
        known: &'a HashMap<Fingerprint, Known>,
    ) -> Self {
        Self {
            detector,
            key,
            known,
            found: HashMap::new(),
        }
    }

    pub fn blob(&mut self, blob: Blob<'_>) {
        let mut candidates = Vec::new();
        self.detector.scan(blob.bytes, &mut candidates);
        for c in candidates {
            let fp = fingerprints::of(self.key, c.text);
            self.found.entry(fp).or_insert_with(|| Finding {
                rule: c.rule,
                path: blob.path.to_string(),
                known: self.known.get(&fp).cloned(),
            });
        }
    }
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
    let targets = scan
        .request
        .repositories
        .iter()
        .map(|u| (u.as_str(), true))
        .chain(scan.request.urls.iter().map(|u| (u.as_str(), false)));
    let max_bytes = rt.config.leak_max_repository_mb.saturating_mul(1 << 20);
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for (n, (url, is_repo)) in targets.enumerate() {
        let mut sweep = Sweep::new(&detector, &key, &known);
        let mut each = |blob: Blob<'_>| sweep.blob(blob);
        let read: Result<sources::Read, SourceError> = if is_repo {
            sources::repository(allow, url, max_bytes, &mut each).await
        } else {
            sources::page(allow, url, &mut each).await
        };
        match read {
            Ok(r) => tally.bytes += r.bytes,
            Err(e) => {
                tracing::info!(%tenant, scan = id, target = n + 1, error = %e, "a leak scan target could not be read");
                failures.push(format!("target {} could not be read: {e}", n + 1));
            }
        }
        let source = if is_repo {
            git_source.as_str()
        } else {
            page_source
        };
        tally.findings += sweep.found.len() as u32;
        // Findings are reported eight at a time; those naming one secret go in order, so
        // its rotation is tried once, not raced.
        let mut jobs: HashMap<Option<String>, Vec<(Fingerprint, Finding)>> = HashMap::new();
        let mut unnamed = Vec::new();
        for (fp, f) in sweep.found {
            match f.known.as_ref().map(|k| k.name.clone()) {
                Some(name) => jobs.entry(Some(name)).or_default().push((fp, f)),
                None => unnamed.push(vec![(fp, f)]),
            }
        }
        let place = Place {
            scan: id,
            url,
            source,
            tenant,
        };
        let reported: Vec<Result<(), LeakError>> =
            futures::stream::iter(jobs.into_values().chain(unnamed))
                .map(|job| {
                    let (place, ctx, detector, owners) = (&place, &ctx, &detector, &owners);
                    async move {
                        for (fp, f) in job {
                            let (rule, owner) = (&detector.rules[f.rule], &owners[f.rule]);
                            report(rt, &ctx(), place, &fp, f, rule, owner).await?;
                        }
                        Ok(())
                    }
                })
                .buffer_unordered(8)
                .collect()
                .await;
        reported.into_iter().collect::<Result<Vec<()>, _>>()?;
        let progress = ScanCommand::Progress {
            targets_done: n as u32 + 1,
            tally,
        };
        execute::<LeakScanAggregate>(rt, &ctx(), tenant, id, &progress).await?;
    }
    finish(rt, &ctx(), tenant, id, tally, failures).await
}

/// Where a scan found something.
struct Place<'a> {
    scan: &'a str,
    url: &'a str,
    source: &'a str,
    tenant: Uuid,
}

/// Opens (or joins) the incident of one leaked value at one place, then applies the policy's
/// action when the value is one of the tenant's secrets.
async fn report(
    rt: &Runtime,
    ctx: &CommandContext,
    at: &Place<'_>,
    fp: &Fingerprint,
    f: Finding,
    rule: &Rule,
    owner: &Owner,
) -> Result<(), LeakError> {
    let tenant = at.tenant;
    let incident = aegis_kernel::derived_id(
        "aegis/leak-incident/v1",
        &[tenant.as_bytes(), fp, at.url.as_bytes()],
    )
    .to_string();
    let location = if f.path.is_empty() {
        at.url.to_string()
    } else {
        format!("{}@{}", at.url, f.path)
    };
    let details = serde_json::json!({
        "target": at.source,
        "url": at.url,
        "path": f.path,
        "rule": rule.name,
        "ruleType": rule.kind.as_str(),
        "matchedSecretVersion": f.known.as_ref().map(|k| k.version),
    });
    let new = NewIncident {
        secret_id: f.known.as_ref().map(|k| k.name.clone()).unwrap_or_default(),
        secret_version: f.known.as_ref().map_or(0, |k| k.version),
        source: at.source.into(),
        location,
        detected_at: Utc::now(),
        severity: if f.known.is_some() {
            LeakSeverity::Critical
        } else {
            rule.severity
        },
        details: details.to_string(),
        scan_id: at.scan.into(),
        reported_by: "leak-scan".into(),
        policy_id: owner.policy_id.clone(),
        notify: owner.channels.clone(),
    };
    execute::<LeakIncidentAggregate>(rt, ctx, tenant, &incident, &IncidentCommand::Report(new))
        .await?;
    if let (Some(k), OnDetection::Rotate | OnDetection::Revoke) = (&f.known, owner.action) {
        let (outcome, detail) = act(rt, ctx, tenant, &incident, k, owner.action).await;
        let acted = IncidentCommand::Act {
            action: owner.action,
            outcome,
            detail,
        };
        execute::<LeakIncidentAggregate>(rt, ctx, tenant, &incident, &acted).await?;
    }
    Ok(())
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

/// The policy's action on a leaked secret: rotate it (when the leaked version is still the
/// current one) or retire it. Answers what to put on the timeline.
async fn act(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    incident: &str,
    leaked: &Known,
    action: OnDetection,
) -> (Outcome, String) {
    let name = leaked.name.as_str();
    if leaked.lease {
        // A leased password is not rotated: its lease is ended, and the role with it.
        let ended = crate::dynamic::end(rt, ctx, tenant, name, LeaseEnd::Revoked).await;
        return match ended {
            Ok(_) => (
                Outcome::Done,
                format!("ended lease `{name}`: its role is dropped"),
            ),
            Err(e) => (Outcome::Failed, e.to_string()),
        };
    }
    match action {
        OnDetection::Rotate => {
            match load(rt, tenant, name).await {
                Ok((c, _, _)) if c.version() > leaked.version => {
                    return (
                        Outcome::Done,
                        format!(
                            "version {} leaked; version {} is current already",
                            leaked.version,
                            c.version()
                        ),
                    )
                }
                Ok(_) => {}
                Err(e) => return (Outcome::Failed, e.to_string()),
            }
            let reason = format!("leaked (incident {incident})");
            match crate::rotate(rt, ctx, tenant, name, "leak", &reason).await {
                Ok((r, _)) => (
                    Outcome::Done,
                    format!(
                        "rotated `{name}` from version {} to {}",
                        r.previous_version, r.new_version
                    ),
                ),
                Err(e) => (Outcome::Failed, e.to_string()),
            }
        }
        OnDetection::Revoke => {
            let retired = match address::<CredentialAggregate>(tenant, name) {
                Ok(agg) => rt
                    .executor
                    .execute::<CredentialAggregate>(&agg, &CredentialCommand::Retire, ctx, false)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match retired {
                Ok(()) => (
                    Outcome::Done,
                    format!("retired `{name}`: its value is no longer served"),
                ),
                Err(e) => (Outcome::Failed, e),
            }
        }
        OnDetection::Alert => (Outcome::Done, String::new()),
    }
}

/// The scan as it stands in the log.
pub async fn scan(rt: &Runtime, tenant: Uuid, id: &str) -> Result<Option<Scan>, LeakError> {
    Ok(rt.current::<LeakScanAggregate>(tenant, id).await?.0)
}
