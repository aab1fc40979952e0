//! Running scheduled reports: what each kind summarises (from the read models), as JSON or
//! CSV, kept for download and, when the report names a generic webhook, delivered to it
//! signed. The scheduler in the reactor role runs every due slot once: a slot's run id is
//! derived from (report, slot), and the report's decider records a slot only once.

use crate::webhooks::{signed, with_retries, Attempt, Delivery, Secrets};
use aegis_integrations::reports::{Definition, ReportFormat, ReportKind, Run, Trigger};
use aegis_integrations::webhooks::WebhookKind;
use aegis_integrations::WebhookAggregate;
use aegis_kernel::derived_id;
use aegis_runtime::Runtime;
use chrono::{DateTime, Duration as Span, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// The rows a kind reports over `[from, to)`, as JSON objects.
fn query(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::IncidentSummary => {
            "SELECT id, title, severity, status, source, agent_id, assigned_to, created_at, updated_at \
             FROM incidents WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 \
             ORDER BY created_at"
        }
        ReportKind::CredentialHealth => {
            "SELECT name, credential_type, provider, health, expires_at, next_rotation_at, last_rotated_at, \
             last_rotation_error IS NOT NULL AS rotation_failing, last_used_at \
             FROM vault_credentials WHERE tenant_id = $1 AND lifecycle = 'active' \
             AND $2::timestamptz IS NOT NULL AND $3::timestamptz IS NOT NULL ORDER BY name"
        }
        ReportKind::AutoResponseActivity => {
            "SELECT r.id AS run_id, r.rule_id, ru.name AS rule_name, r.mode, r.admission, r.result, \
             r.trigger_event_type, r.started_at FROM auto_response_runs r \
             LEFT JOIN auto_response_rules ru ON ru.tenant_id = r.tenant_id AND ru.id = r.rule_id \
             WHERE r.tenant_id = $1 AND r.started_at >= $2 AND r.started_at < $3 ORDER BY r.started_at"
        }
        ReportKind::AuditDigest => {
            "SELECT event_type, actor, count(*) AS events, min(occurred_at) AS first_at, \
             max(occurred_at) AS last_at FROM audit_events \
             WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 \
             GROUP BY event_type, actor ORDER BY events DESC, event_type, actor"
        }
    }
}

/// The read model a kind reads.
fn projection(kind: ReportKind) -> &'static str {
    use aegis_projectors::Projection;
    match kind {
        ReportKind::IncidentSummary => aegis_projectors::incidents::IncidentsProjection::NAME,
        ReportKind::CredentialHealth => aegis_projectors::vault::VaultProjection::NAME,
        ReportKind::AutoResponseActivity => {
            aegis_projectors::auto_response::AutoResponseProjection::NAME
        }
        ReportKind::AuditDigest => aegis_projectors::audit::AuditProjection::NAME,
    }
}

/// The field a kind's summary counts rows by.
fn summary_field(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::IncidentSummary => "severity",
        ReportKind::CredentialHealth => "health",
        ReportKind::AutoResponseActivity => "result",
        ReportKind::AuditDigest => "event_type",
    }
}

fn summary(kind: ReportKind, rows: &[Value]) -> Value {
    let field = summary_field(kind);
    let mut by: Map<String, Value> = Map::new();
    for r in rows {
        let key = match &r[field] {
            Value::String(s) => s.clone(),
            Value::Null => "none".into(),
            other => other.to_string(),
        };
        let add = if kind == ReportKind::AuditDigest {
            r["events"].as_u64().unwrap_or(1)
        } else {
            1
        };
        let n = by.get(&key).and_then(Value::as_u64).unwrap_or(0) + add;
        by.insert(key, json!(n));
    }
    json!({ "rows": rows.len(), format!("by_{field}"): by })
}

/// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. A field
/// that a spreadsheet would run as a formula is prefixed with `'`.
fn csv_field(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    // OWASP's list: a leading tab or carriage return also starts a formula in some readers.
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub fn to_csv(rows: &[Value]) -> Vec<u8> {
    let Some(Value::Object(first)) = rows.first() else {
        return Vec::new();
    };
    let columns: Vec<&String> = first.keys().collect();
    let mut out = String::new();
    out.push_str(
        &columns
            .iter()
            .map(|c| csv_field(&json!(c)))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push_str("\r\n");
    for r in rows {
        out.push_str(
            &columns
                .iter()
                .map(|c| csv_field(&r[c.as_str()]))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// One report's content over a window: the document, its content type, and its row count.
pub async fn generate(
    state: &Runtime,
    tenant: Uuid,
    report_id: &str,
    d: &Definition,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Vec<u8>, &'static str, usize), sqlx::Error> {
    let (rows,): (Value,) = sqlx::query_as(&format!(
        "SELECT coalesce(jsonb_agg(to_jsonb(t)), '[]'::jsonb) FROM ({}) t",
        query(d.kind)
    ))
    .bind(tenant)
    .bind(from)
    .bind(to)
    .fetch_one(&state.pool)
    .await?;
    let rows = rows.as_array().cloned().unwrap_or_default();
    let n = rows.len();
    Ok(match d.format {
        ReportFormat::Json => (
            json!({
                "report": { "id": report_id, "name": d.name, "kind": d.kind },
                "tenant_id": tenant,
                "generated_at": Utc::now(),
                "window": { "from": from, "to": to },
                "summary": summary(d.kind, &rows),
                "rows": rows,
            })
            .to_string()
            .into_bytes(),
            "application/json",
            n,
        ),
        ReportFormat::Csv => (to_csv(&rows), "text/csv; charset=utf-8", n),
    })
}

/// How many outputs of one report are kept for download.
pub const KEPT_OUTPUTS: i64 = 50;

/// Runs a report for the window ending at `slot` (a scheduled run) or now: generates it,
/// keeps it for download, delivers it to its webhook. What happened, ready to record.
pub async fn produce(
    state: &Runtime,
    tenant: Uuid,
    report_id: &str,
    d: &Definition,
    trigger: Trigger,
    slot: Option<DateTime<Utc>>,
) -> Run {
    let to = slot.unwrap_or_else(Utc::now);
    let from = to - Span::hours(i64::from(d.window_hours));
    let run_id = match slot {
        Some(s) => derived_id(
            "aegis/report/run/v1",
            &[report_id.as_bytes(), &s.timestamp().to_be_bytes()],
        ),
        None => Uuid::now_v7(),
    };
    let mut run = Run {
        run_id: run_id.to_string(),
        trigger,
        slot: slot.map(|s| s.timestamp()).unwrap_or(0),
        succeeded: false,
        rows: 0,
        bytes: 0,
        delivery: "download".into(),
        detail: String::new(),
        window_from: from.timestamp(),
        window_to: to.timestamp(),
    };
    // A report covers what the log holds when it runs, not what a lagging read model has.
    if let Ok(head) = state.executor.store().head().await {
        if let Err(e) = state.read_models_at(&[projection(d.kind)], head).await {
            run.detail = format!("the read model is behind: {e}");
            return run;
        }
    }
    let (content, content_type, rows) = match generate(state, tenant, report_id, d, from, to).await
    {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(report = report_id, error = %e, "report generation failed");
            run.detail = "the report could not be generated".into();
            return run;
        }
    };
    run.rows = rows as u32;
    run.bytes = content.len() as u64;
    let stored = sqlx::query(
        "INSERT INTO report_outputs (tenant_id, run_id, report_id, content_type, content, created_at) \
         VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (tenant_id, run_id) DO NOTHING",
    )
    .bind(tenant)
    .bind(run_id)
    .bind(Uuid::parse_str(report_id).ok())
    .bind(content_type)
    .bind(&content)
    .execute(&state.pool)
    .await;
    if let Err(e) = stored {
        tracing::warn!(report = report_id, error = %e, "report output could not be kept");
        run.detail = "the report could not be kept".into();
        return run;
    }
    // Outputs are kept for download, the newest KEPT_OUTPUTS of each report.
    let pruned = sqlx::query(
        "DELETE FROM report_outputs WHERE tenant_id = $1 AND report_id = $2 AND run_id NOT IN \
         (SELECT run_id FROM report_outputs WHERE tenant_id = $1 AND report_id = $2 \
          ORDER BY created_at DESC, run_id DESC LIMIT $3)",
    )
    .bind(tenant)
    .bind(Uuid::parse_str(report_id).ok())
    .bind(KEPT_OUTPUTS)
    .execute(&state.pool)
    .await;
    if let Err(e) = pruned {
        tracing::warn!(report = report_id, error = %e, "old report outputs could not be pruned");
    }
    run.succeeded = true;
    if let Some(webhook) = &d.webhook_id {
        let (ok, detail) =
            deliver(state, tenant, webhook, &run.run_id, content_type, content).await;
        run.delivery = format!("webhook {webhook}: {detail}");
        run.succeeded = ok;
    }
    run
}

/// Posts the report to a generic webhook, signed, with the webhooks' retries.
async fn deliver(
    state: &Runtime,
    tenant: Uuid,
    webhook: &str,
    run_id: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (bool, String) {
    let w = match state.current::<WebhookAggregate>(tenant, webhook).await {
        Ok((Some(w), _, _)) if !w.deleted && w.definition.kind == WebhookKind::Generic => w,
        Ok(_) => return (false, "the webhook no longer exists".into()),
        Err(e) => return (false, e.to_string()),
    };
    let secrets = match Secrets::open(state, tenant, &w.id, &w.secrets).await {
        Ok(s) => s,
        Err(e) => {
            return (
                false,
                format!("the webhook's secrets cannot be opened: {e}"),
            )
        }
    };
    let request = |now| {
        Some(signed(
            &secrets,
            run_id,
            "report",
            content_type,
            body.clone(),
            now,
        ))
    };
    match with_retries(
        state,
        tenant,
        WebhookKind::Generic,
        "failed",
        run_id,
        request,
    )
    .await
    {
        Some(Delivery {
            outcome: Attempt::Delivered(code),
            ..
        }) => (true, format!("delivered ({code})")),
        Some(Delivery { attempts, outcome }) => (
            false,
            format!(
                "failed after {attempts} attempt(s): {}",
                outcome.error().unwrap_or_default()
            ),
        ),
        None => (false, "nothing to send".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it_and_defuses_formulas() {
        let rows = vec![
            json!({"name": "a,b", "note": "say \"hi\"", "n": 3}),
            json!({"name": "=HYPERLINK(\"x\")", "note": null, "n": -1}),
            json!({"name": "\t=1+1", "note": "\r=cmd", "n": 0}),
        ];
        let csv = String::from_utf8(to_csv(&rows)).expect("utf-8");
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], "n,name,note");
        assert_eq!(lines[1], "3,\"a,b\",\"say \"\"hi\"\"\"");
        assert_eq!(lines[2], "-1,\"'=HYPERLINK(\"\"x\"\")\",");
        assert_eq!(lines[3], "0,'\t=1+1,\"'\r=cmd\"");
    }

    #[test]
    fn summaries_count_by_the_kinds_field() {
        let rows = vec![
            json!({"severity": "high"}),
            json!({"severity": "high"}),
            json!({"severity": "low"}),
        ];
        assert_eq!(
            summary(ReportKind::IncidentSummary, &rows),
            json!({"rows": 3, "by_severity": {"high": 2, "low": 1}})
        );
        let digest = vec![json!({"event_type": "incident.opened.v1", "events": 4})];
        assert_eq!(
            summary(ReportKind::AuditDigest, &digest)["by_event_type"]["incident.opened.v1"],
            4
        );
    }
}
