//! `GET /events/stream` (DESIGN.md, "SIEM subscription"): the tenant's committed events as
//! Server-Sent Events, each a CloudEvents 1.0 JSON object, filterable by context and event
//! type. `id:` is the event's stream position (`<position>.<index>` inside a commit of several
//! events), and a client that reconnects with `Last-Event-ID` resumes right after it, with no
//! gap and no duplicate, across restarts: the position is the log's, not this process's.
//!
//! Each client reads the log through its own ordered consumer, so a slow client only slows
//! itself; a comment line every 15 s keeps idle connections open.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{max_chars, Query};
use crate::http::openapi::{params, AuthErrors, ErrorBody};
use crate::state::AppState;
use aegis_integrations_services::cloud_event;
use aegis_streams::subject::tenant_filter;
use aegis_streams::StoreError;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;

use std::time::Duration;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

const MAX_FILTERS: usize = 20;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Contexts, comma separated (`incidents,vault`); default every context.
    #[param(max_length = 400)]
    pub context: Option<String>,
    /// Event types, comma separated (`incident.opened.v1`); default every type.
    #[param(max_length = 2000)]
    pub event_type: Option<String>,
    /// The first position to deliver when there is no `Last-Event-ID`; default: only events
    /// committed from now on.
    #[param(minimum = 1)]
    pub from: Option<u64>,
}

/// Where to resume: after event `index` of the commit at `position` (`None`: the whole commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Resume {
    position: u64,
    index: Option<usize>,
}

fn resume(raw: &str) -> Result<Resume, ApiError> {
    let bad = || ApiError::bad_request("Last-Event-ID must be an event id this stream sent");
    let (position, index) = match raw.trim().split_once('.') {
        Some((p, i)) => (p, Some(i.parse().map_err(|_| bad())?)),
        None => (raw.trim(), None),
    };
    Ok(Resume {
        position: position.parse().map_err(|_| bad())?,
        index,
    })
}

fn list(field: &str, raw: Option<&str>, valid: fn(&str) -> bool) -> Result<Vec<String>, ApiError> {
    let Some(raw) = raw else { return Ok(vec![]) };
    let items: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if items.len() > MAX_FILTERS {
        return Err(ApiError::validation(
            field,
            format!("at most {MAX_FILTERS} values"),
        ));
    }
    if let Some(bad) = items.iter().find(|i| !valid(i)) {
        return Err(ApiError::validation(
            field,
            format!("`{bad}` is not a valid {field}"),
        ));
    }
    Ok(items)
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

fn is_event_type(s: &str) -> bool {
    s.len() <= 100
        && s.split('.').count() == 3
        && s.split('.').all(|p| !p.is_empty())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
}

/// Subscribe to the tenant's events (AUDITOR and up): Server-Sent Events, one CloudEvents JSON
/// object per `data:`; resume with `Last-Event-ID`.
#[utoipa::path(get, path = "/events/stream", tag = "events", security(("bearer" = [])),
    params(StreamQuery, params::Tenant, ("Last-Event-ID" = Option<String>, Header, description = "Resume right after this event id")),
    responses((status = 200, description = "An endless text/event-stream", content_type = "text/event-stream"),
        (status = 400, description = "Malformed Last-Event-ID", body = ErrorBody),
        AuthErrors,
        (status = 422, description = "Invalid filter", body = ErrorBody),
        (status = 503, description = "The tenant or the server holds as many live streams as it may (Retry-After)", body = ErrorBody)))]
async fn stream(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant()?.0;
    max_chars("context", q.context.as_deref(), 400)?;
    max_chars("event_type", q.event_type.as_deref(), 2000)?;
    let contexts = list("context", q.context.as_deref(), is_word)?;
    let types = list("event_type", q.event_type.as_deref(), is_event_type)?;
    let last = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request("Last-Event-ID must be ASCII"))
        })
        .transpose()?
        .map(resume)
        .transpose()?;
    // Held as long as the stream lives: the stream owns it and frees it when it ends.
    let slot = state.limits.stream(tenant)?;
    let store = state.executor.store().clone();
    let start = match (last, q.from) {
        // The rest of a partly delivered commit, or the commit after a whole one.
        (Some(r), _) if r.index.is_some() => r.position,
        (Some(r), _) => r.position + 1,
        (None, Some(from)) => from.max(1),
        (None, None) => store.head().await? + 1,
    };
    let filters = if contexts.is_empty() {
        vec![tenant_filter(tenant, None)]
    } else {
        contexts
            .iter()
            .map(|c| tenant_filter(tenant, Some(c)))
            .collect()
    };
    let commits = store.subscribe(filters, start).await?;
    // The stream ends right after a commit it cannot read, saying so: nothing is skipped.
    let read = futures::stream::unfold(
        (Box::pin(commits), false),
        |(mut commits, ended)| async move {
            if ended {
                return None;
            }
            match commits.next().await? {
                Ok(commit) => Some((Ok(commit), (commits, false))),
                Err(e) => Some((Err(e), (commits, true))),
            }
        },
    );
    let events = read.flat_map(move |commit| {
        let _held = &slot;
        let commit = match commit {
            Ok(c) => c,
            Err(e) => return futures::stream::iter(vec![Ok(unreadable(&e))]),
        };
        let several = commit.events.len() > 1;
        let position = commit.position;
        let out: Vec<Result<Event, std::convert::Infallible>> = commit
            .events
            .iter()
            .enumerate()
            .filter(|(i, _)| match last {
                Some(Resume {
                    position: p,
                    index: Some(done),
                }) if p == position => *i > done,
                _ => true,
            })
            .filter(|(_, env)| types.is_empty() || types.contains(&env.event_type))
            .map(|(i, env)| {
                let id = if several {
                    format!("{position}.{i}")
                } else {
                    position.to_string()
                };
                Ok(Event::default()
                    .id(id)
                    .data(cloud_event(tenant, position, env).to_string()))
            })
            .collect();
        futures::stream::iter(out)
    });
    // A stopping server ends every stream, telling its client to come back (to this instance
    // once it is up, or another): with `Last-Event-ID` it resumes where it was.
    let mut stopping = state.stopping.clone();
    let stopped = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    let mut told = state.stopping.clone();
    let farewell = futures::stream::once(async move { *told.borrow_and_update() })
        .filter_map(|stopping| futures::future::ready(stopping.then(|| Ok(reconnect()))));
    let events = events.take_until(stopped).chain(farewell);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// The last event of a stream the server ends because it is stopping.
fn reconnect() -> Event {
    Event::default()
        .event("reconnect")
        .retry(Duration::from_secs(1))
        .data(r#"{"reason":"the server is stopping; reconnect with Last-Event-ID to resume"}"#)
}

/// The last event of a stream that met a commit it cannot read (or lost the log).
fn unreadable(e: &StoreError) -> Event {
    let body = match e {
        StoreError::Decode { position, reason } => serde_json::json!({
            "error": "corrupt_commit",
            "position": position,
            "message": format!("the commit at position {position} does not decode ({reason}); the stream stops here: see GET /audit/verify"),
        }),
        other => serde_json::json!({
            "error": "unavailable",
            "message": format!("the event log stopped answering ({other}); reconnect with Last-Event-ID to resume"),
        }),
    };
    Event::default().event("error").data(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_ids_resume_after_a_commit_or_inside_one() {
        assert_eq!(
            resume("42").ok(),
            Some(Resume {
                position: 42,
                index: None
            })
        );
        assert_eq!(
            resume("42.1").ok(),
            Some(Resume {
                position: 42,
                index: Some(1)
            })
        );
        for bad in ["", "x", "4.x", "-1", "1.2.3"] {
            assert!(resume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_are_words_and_event_types() {
        assert_eq!(
            list("context", Some("incidents, vault"), is_word).ok(),
            Some(vec!["incidents".to_string(), "vault".to_string()])
        );
        assert!(list("context", Some("Incidents"), is_word).is_err());
        assert!(list("event_type", Some("incident.opened.v1"), is_event_type).is_ok());
        assert!(list("event_type", Some("incident.>"), is_event_type).is_err());
    }
}
