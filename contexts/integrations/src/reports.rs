//! A scheduled report (`integrations.report.<id>`): what it summarises, when (five-field
//! cron read in an IANA time zone), in which format, and where it goes. Each run is an event,
//! so who ran what, when, and where it went stays on the record; a scheduled slot runs once,
//! however many instances race for it.

use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::integrations::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::str::FromStr;

word_enum!(ReportKind {
    IncidentSummary = "incident_summary",
    CredentialHealth = "credential_health",
    AutoResponseActivity = "auto_response_activity",
    AuditDigest = "audit_digest",
});

word_enum!(ReportFormat {
    Json = "json",
    Csv = "csv",
});

/// A cron expression as users write it (minute hour day-of-month month day-of-week, where
/// day-of-week 0 and 7 are Sunday), checked and read in its time zone.
#[derive(Debug, Clone)]
pub struct Cadence {
    schedule: cron::Schedule,
    tz: Tz,
}

/// Standard cron counts weekdays from Sunday = 0; the `cron` crate from Sunday = 1. Numbers
/// in the day-of-week field become names, which both read the same.
fn weekday_names(field: &str) -> Result<String, String> {
    const NAMES: [&str; 8] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let mut out = String::new();
    let mut digits = String::new();
    let mut after_slash = false;
    let flush = |digits: &mut String, out: &mut String, after_slash: bool| -> Result<(), String> {
        if digits.is_empty() {
            return Ok(());
        }
        if after_slash {
            out.push_str(digits);
        } else {
            let n: usize = digits.parse().map_err(|_| "bad day of week".to_string())?;
            out.push_str(NAMES.get(n).ok_or("day of week is 0 to 7")?);
        }
        digits.clear();
        Ok(())
    };
    for c in field.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        flush(&mut digits, &mut out, after_slash)?;
        after_slash = c == '/';
        out.push(c);
    }
    flush(&mut digits, &mut out, after_slash)?;
    Ok(out)
}

impl Cadence {
    pub fn parse(expr: &str, timezone: &str) -> Result<Cadence, String> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(
                "cron takes five fields: minute hour day-of-month month day-of-week".into(),
            );
        }
        let dow = weekday_names(fields[4])?;
        let full = format!(
            "0 {} {} {} {} {dow}",
            fields[0], fields[1], fields[2], fields[3]
        );
        let schedule = cron::Schedule::from_str(&full).map_err(|e| e.to_string())?;
        let tz =
            Tz::from_str(timezone).map_err(|_| format!("`{timezone}` is not an IANA time zone"))?;
        Ok(Cadence { schedule, tz })
    }

    /// The next slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&t.with_timezone(&self.tz))
            .next()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The latest slot after `since` that is due at `now`: missed slots run once, not once
    /// each.
    pub fn due(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&since.with_timezone(&self.tz))
            .take_while(|d| d.with_timezone(&Utc) <= now)
            .take(10_000)
            .last()
            .map(|d| d.with_timezone(&Utc))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub name: String,
    pub kind: ReportKind,
    pub cron: String,
    pub timezone: String,
    pub format: ReportFormat,
    pub window_hours: u32,
    pub webhook_id: Option<String>,
    pub enabled: bool,
}

impl Definition {
    fn to_pb(&self) -> pb::ReportDefinition {
        pb::ReportDefinition {
            name: self.name.clone(),
            kind: self.kind.as_str().into(),
            cron: self.cron.clone(),
            timezone: self.timezone.clone(),
            format: self.format.as_str().into(),
            window_hours: self.window_hours,
            webhook_id: self.webhook_id.clone().unwrap_or_default(),
            enabled: self.enabled,
        }
    }

    fn from_pb(d: pb::ReportDefinition, env: &Envelope) -> Result<Self, DecodeError> {
        Ok(Self {
            kind: ReportKind::parse(&d.kind)
                .ok_or_else(|| DecodeError::new(env, "unknown report kind"))?,
            format: ReportFormat::parse(&d.format)
                .ok_or_else(|| DecodeError::new(env, "unknown report format"))?,
            webhook_id: (!d.webhook_id.is_empty()).then_some(d.webhook_id),
            name: d.name,
            cron: d.cron,
            timezone: d.timezone,
            window_hours: d.window_hours,
            enabled: d.enabled,
        })
    }
}

word_enum!(Trigger {
    Schedule = "schedule",
    Manual = "manual",
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub run_id: String,
    pub trigger: Trigger,
    /// The cron slot it ran for (seconds since the epoch; 0 when manual).
    pub slot: i64,
    pub succeeded: bool,
    pub rows: u32,
    pub bytes: u64,
    pub delivery: String,
    pub detail: String,
    pub window_from: i64,
    pub window_to: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub id: String,
    pub definition: Definition,
    pub deleted: bool,
    /// The latest scheduled slot that ran.
    pub last_slot: i64,
    pub runs: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Create(Definition),
    Update(Definition),
    Delete,
    Record(Run),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Created(Definition),
    Updated(Definition),
    Deleted,
    Ran(Run),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("report not found")]
    NotFound,
    #[error("the report already exists")]
    AlreadyExists,
}

pub struct ReportAggregate;

impl Aggregate for ReportAggregate {
    const CONTEXT: &'static str = "integrations";
    const AGGREGATE: &'static str = "report";
    type State = Option<Report>;
    type Command = Command;
    type Event = Event;
    type Error = ReportError;

    fn decide(state: &Option<Report>, cmd: &Command) -> Result<Vec<Event>, ReportError> {
        let live = state.as_ref().filter(|r| !r.deleted);
        match (live, cmd) {
            (None, Command::Create(d)) if state.is_none() => Ok(vec![Event::Created(d.clone())]),
            (_, Command::Create(_)) => Err(ReportError::AlreadyExists),
            (None, Command::Delete) if state.is_some() => Ok(vec![]),
            (None, _) => Err(ReportError::NotFound),
            (Some(r), Command::Update(d)) if r.definition == *d => Ok(vec![]),
            (Some(_), Command::Update(d)) => Ok(vec![Event::Updated(d.clone())]),
            (Some(_), Command::Delete) => Ok(vec![Event::Deleted]),
            // Another instance already ran this slot: the run is not recorded twice.
            (Some(r), Command::Record(run))
                if run.trigger == Trigger::Schedule && run.slot <= r.last_slot =>
            {
                Ok(vec![])
            }
            (Some(_), Command::Record(run)) => Ok(vec![Event::Ran(run.clone())]),
        }
    }

    fn evolve(state: Option<Report>, event: &Event, env: &Envelope) -> Option<Report> {
        let at = occurred_at(env);
        let Some(mut r) = state else {
            return match event {
                Event::Created(d) => Some(Report {
                    id: env.aggregate_id.clone(),
                    definition: d.clone(),
                    deleted: false,
                    last_slot: 0,
                    runs: 0,
                    created_at: at,
                    updated_at: at,
                }),
                _ => None,
            };
        };
        match event {
            Event::Created(_) => return Some(r),
            Event::Updated(d) => r.definition = d.clone(),
            Event::Deleted => r.deleted = true,
            Event::Ran(run) => {
                r.runs += 1;
                if run.trigger == Trigger::Schedule {
                    r.last_slot = r.last_slot.max(run.slot);
                }
                return Some(r);
            }
        }
        r.updated_at = at;
        Some(r)
    }

    fn encode(event: &Event) -> NewEvent {
        let (event_type, payload) = match event {
            Event::Created(d) => (
                "report.created.v1",
                pb::ReportCreated {
                    definition: Some(d.to_pb()),
                }
                .encode_to_vec(),
            ),
            Event::Updated(d) => (
                "report.updated.v1",
                pb::ReportUpdated {
                    definition: Some(d.to_pb()),
                }
                .encode_to_vec(),
            ),
            Event::Deleted => ("report.deleted.v1", pb::ReportDeleted {}.encode_to_vec()),
            Event::Ran(r) => (
                "report.ran.v1",
                pb::ReportRan {
                    run_id: r.run_id.clone(),
                    trigger: r.trigger.as_str().into(),
                    slot: r.slot,
                    status: if r.succeeded { "succeeded" } else { "failed" }.into(),
                    rows: r.rows,
                    bytes: r.bytes,
                    delivery: r.delivery.clone(),
                    detail: r.detail.clone(),
                    window_from: r.window_from,
                    window_to: r.window_to,
                }
                .encode_to_vec(),
            ),
        };
        NewEvent::new(event_type, payload)
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        use aegis_kernel::payload as msg;
        Ok(match env.event_type.as_str() {
            "report.created.v1" => Event::Created(Definition::from_pb(
                msg::<pb::ReportCreated>(env)?
                    .definition
                    .unwrap_or_default(),
                env,
            )?),
            "report.updated.v1" => Event::Updated(Definition::from_pb(
                msg::<pb::ReportUpdated>(env)?
                    .definition
                    .unwrap_or_default(),
                env,
            )?),
            "report.deleted.v1" => Event::Deleted,
            "report.ran.v1" => {
                let m: pb::ReportRan = msg(env)?;
                Event::Ran(Run {
                    trigger: Trigger::parse(&m.trigger)
                        .ok_or_else(|| DecodeError::new(env, "unknown trigger"))?,
                    run_id: m.run_id,
                    slot: m.slot,
                    succeeded: m.status == "succeeded",
                    rows: m.rows,
                    bytes: m.bytes,
                    delivery: m.delivery,
                    detail: m.detail,
                    window_from: m.window_from,
                    window_to: m.window_to,
                })
            }
            other => {
                return Err(DecodeError::new(
                    env,
                    format!("not a report event: {other}"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;
    use chrono::TimeZone;

    fn definition() -> Definition {
        Definition {
            name: "weekly".into(),
            kind: ReportKind::IncidentSummary,
            cron: "0 9 * * 1".into(),
            timezone: "Europe/Berlin".into(),
            format: ReportFormat::Csv,
            window_hours: 168,
            webhook_id: None,
            enabled: true,
        }
    }

    fn ran(slot: i64, trigger: Trigger) -> Run {
        Run {
            run_id: format!("run-{slot}"),
            trigger,
            slot,
            succeeded: true,
            rows: 3,
            bytes: 120,
            delivery: "download".into(),
            detail: String::new(),
            window_from: 0,
            window_to: slot,
        }
    }

    #[test]
    fn a_scheduled_slot_is_recorded_once_and_manual_runs_always() {
        given::<ReportAggregate>(vec![
            Event::Created(definition()),
            Event::Ran(ran(100, Trigger::Schedule)),
        ])
        .when(Command::Record(ran(100, Trigger::Schedule)))
        .then(vec![]);
        given::<ReportAggregate>(vec![
            Event::Created(definition()),
            Event::Ran(ran(100, Trigger::Schedule)),
        ])
        .when(Command::Record(ran(0, Trigger::Manual)))
        .then(vec![Event::Ran(ran(0, Trigger::Manual))]);
        given::<ReportAggregate>(vec![Event::Created(definition()), Event::Deleted])
            .when(Command::Record(ran(200, Trigger::Schedule)))
            .then_err(ReportError::NotFound);
    }

    #[test]
    fn cron_reads_weekdays_as_users_write_them_in_the_reports_zone() {
        // Monday 09:00 in Berlin is 08:00 UTC in winter.
        let c = Cadence::parse("0 9 * * 1", "Europe/Berlin").expect("valid");
        let sunday = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        assert_eq!(
            c.next_after(sunday),
            Some(Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap())
        );
        let weekdays = Cadence::parse("30 6 * * 1-5", "UTC").expect("valid");
        let friday = Utc.with_ymd_and_hms(2026, 11, 27, 7, 0, 0).unwrap();
        assert_eq!(
            weekdays.next_after(friday),
            Some(Utc.with_ymd_and_hms(2026, 11, 30, 6, 30, 0).unwrap()),
            "Saturday and Sunday are skipped"
        );
        let sundays = Cadence::parse("0 0 * * 0", "UTC").expect("valid");
        assert_eq!(
            sundays.next_after(friday),
            Some(Utc.with_ymd_and_hms(2026, 11, 29, 0, 0, 0).unwrap())
        );
    }

    #[test]
    fn missed_slots_run_once_at_the_latest() {
        let hourly = Cadence::parse("0 * * * *", "UTC").expect("valid");
        let since = Utc.with_ymd_and_hms(2026, 11, 23, 1, 30, 0).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 5, 10, 0).unwrap();
        assert_eq!(
            hourly.due(since, now),
            Some(Utc.with_ymd_and_hms(2026, 11, 23, 5, 0, 0).unwrap())
        );
        assert_eq!(hourly.due(now, now), None);
    }

    #[test]
    fn bad_cadences_say_what_is_wrong() {
        assert!(Cadence::parse("* * * *", "UTC")
            .unwrap_err()
            .contains("five fields"));
        assert!(Cadence::parse("0 9 * * 8", "UTC").is_err());
        assert!(Cadence::parse("61 9 * * *", "UTC").is_err());
        assert!(Cadence::parse("0 9 * * *", "Mars/Olympus")
            .unwrap_err()
            .contains("IANA"));
    }
}
