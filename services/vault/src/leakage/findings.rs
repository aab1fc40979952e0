//! What a scan finds: candidates swept out of a target's bytes and named by fingerprint
//! (`Sweep`), each reported as an incident (opened or joined) and acted on as the owning
//! policy says (`Reading::read`), and who owns a rule's findings (`Owner`).

use super::sources::{self, Blob, SourceError};
use super::{execute, LeakError};
use crate::access::load;
use crate::fingerprints::{self, Fingerprint, Known};
use aegis_runtime::command::CommandContext;
use aegis_runtime::keys::Key;
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_vault::credentials::Command as CredentialCommand;
use aegis_vault::dynamic::LeaseEnd;
use aegis_vault::leakage::detector::{Detector, Rule};
use aegis_vault::leakage::incident::{
    IncidentCommand, LeakIncidentAggregate, NewIncident, Outcome,
};
use aegis_vault::leakage::scan::Tally;
use aegis_vault::leakage::{LeakSeverity, OnDetection};
use aegis_vault::CredentialAggregate;
use chrono::Utc;
use futures::StreamExt;
use std::collections::HashMap;
use uuid::Uuid;

/// Who acts on what a rule finds: the policy the rule came from, or for the built-in pack
/// the scan's policy with the strongest action; and whom it tells: that policy's channels, or
/// for the built-in pack every channel of the scan's policies.
#[derive(Debug, Clone)]
pub(super) struct Owner {
    pub(super) policy_id: String,
    pub(super) action: OnDetection,
    pub(super) channels: Vec<String>,
}

/// Every channel the owners name, each once, in the order first named.
pub(super) fn every_channel(owners: &[Owner]) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for c in owners.iter().flat_map(|o| &o.channels) {
        if !all.contains(c) {
            all.push(c.clone());
        }
    }
    all
}

pub(super) fn strength(a: OnDetection) -> u8 {
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

/// What reading any target of one scan needs.
pub(super) struct Reading<'a> {
    pub(super) rt: &'a Runtime,
    pub(super) tenant: Uuid,
    pub(super) scan: &'a str,
    pub(super) correlation: &'a str,
    pub(super) detector: &'a Detector,
    pub(super) owners: &'a [Owner],
    pub(super) key: &'a Key,
    pub(super) known: &'a HashMap<Fingerprint, Known>,
    pub(super) max_bytes: u64,
}

impl Reading<'_> {
    fn ctx(&self) -> CommandContext {
        CommandContext::acting("system", "leak-scan", Some(self.correlation.to_string()))
    }

    /// Reads one repository or page and reports what it holds, adding to `tally`. The
    /// outer error stops the scan (the log could not be written); the inner one is this
    /// target's, which fails the scan once every target was tried.
    pub(super) async fn read(
        &self,
        url: &str,
        is_repo: bool,
        source: &str,
        tally: &mut Tally,
    ) -> Result<Result<(), SourceError>, LeakError> {
        let allow = self.rt.config.egress();
        let mut sweep = Sweep::new(self.detector, self.key, self.known);
        let mut each = |blob: Blob<'_>| sweep.blob(blob);
        let read = if is_repo {
            sources::repository(allow, url, self.max_bytes, &mut each).await
        } else {
            sources::page(allow, url, &mut each).await
        };
        if let Ok(r) = &read {
            tally.bytes += r.bytes;
        }
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
            scan: self.scan,
            url,
            source,
            tenant: self.tenant,
        };
        let reported: Vec<Result<(), LeakError>> =
            futures::stream::iter(jobs.into_values().chain(unnamed))
                .map(|job| {
                    let place = &place;
                    async move {
                        for (fp, f) in job {
                            let (rule, owner) =
                                (&self.detector.rules[f.rule], &self.owners[f.rule]);
                            report(self.rt, &self.ctx(), place, &fp, f, rule, owner).await?;
                        }
                        Ok(())
                    }
                })
                .buffer_unordered(8)
                .collect()
                .await;
        reported.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(read.map(|_| ()))
    }
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
