//! Every secret broker failure as an HTTP answer, in one place: seed 004's statuses and texts
//! where the document's API has them.

use crate::error::{ApiError, IntoApi};
use aegis_broker::gitops::GitOpsError;
use aegis_broker::jobs::JobError;
use aegis_broker::requests::RequestError;
use aegis_broker::rules::RulesError;
use aegis_broker::tenancy::TenancyError;
use aegis_broker::wraps::{Refusal, WrapError};
use aegis_broker_services::BrokerError;
use axum::http::StatusCode;

/// Every broker failure as an answer, in one place.
pub(super) fn broker_error(e: BrokerError) -> ApiError {
    match e {
        BrokerError::WireKey(why) => ApiError::conflict(why),
        BrokerError::Key(k) => ApiError::unavailable(format!("the key store cannot wrap: {k}"), 1),
        BrokerError::Dek(c) => c.into_api(|d| ApiError::conflict(d.to_string())),
        BrokerError::Job(c) => c.into_api(job_error),
        BrokerError::Discovery(c) => c.into_api(|d| ApiError::not_found(d.to_string())),
        BrokerError::Wrap(c) => c.into_api(|w| match w {
            WrapError::NotFound => ApiError::not_found(w.to_string()),
            WrapError::AlreadyExists => ApiError::conflict(w.to_string()),
        }),
        BrokerError::WrapRefused { reason, position } => {
            let message = BrokerError::WrapRefused { reason, position }.to_string();
            let (status, code) = match reason {
                Refusal::NotApproved => (StatusCode::CONFLICT, "request_not_approved"),
                Refusal::Consumed => (StatusCode::GONE, "wrap_consumed"),
                Refusal::Expired => (StatusCode::GONE, "wrap_expired"),
            };
            ApiError::new(status, code, message).recorded_at(position)
        }
        BrokerError::Request(c) => c.into_api(request_error),
        BrokerError::Rules(c) => c.into_api(rules_error),
        BrokerError::Tenancy(c) => c.into_api(tenancy_error),
        BrokerError::GitOps(c) => c.into_api(|g| match g {
            GitOpsError::NotFound | GitOpsError::MappingNotFound => {
                ApiError::not_found(g.to_string())
            }
            GitOpsError::NameTaken(_)
            | GitOpsError::TooMany
            | GitOpsError::InUse(_)
            | GitOpsError::TooManyMappings => ApiError::conflict(g.to_string()),
            GitOpsError::BadName => ApiError::bad_request(g.to_string()).with("field", "name"),
            GitOpsError::BadApplication => {
                ApiError::bad_request(g.to_string()).with("field", "application_name")
            }
        }),
        BrokerError::Egress(why) => {
            ApiError::new(StatusCode::BAD_REQUEST, "egress_refused", why).with("field", "url")
        }
        BrokerError::Upstream(why, 409) => ApiError::conflict(why),
        BrokerError::Upstream(why, _) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "upstream_error", why)
        }
        BrokerError::NotAnApprover(role) => ApiError::new(
            StatusCode::FORBIDDEN,
            "not_an_approver",
            BrokerError::NotAnApprover(role.clone()).to_string(),
        )
        .with("role", role),
        BrokerError::NotRequester => ApiError::new(
            StatusCode::FORBIDDEN,
            "not_requester",
            BrokerError::NotRequester.to_string(),
        ),
        BrokerError::BadEnvelope(why) => ApiError::bad_request(why),
        BrokerError::Lagging(l) => l.into(),
        BrokerError::Db(e) => e.into(),
        BrokerError::Busy => ApiError::unavailable(BrokerError::Busy.to_string(), 1),
    }
}

/// An access request's refusals, with seed 004's texts where the document's API has one.
fn request_error(e: RequestError) -> ApiError {
    let text = e.to_string();
    match e {
        RequestError::NotFound | RequestError::NoObservation => ApiError::not_found(text),
        RequestError::AlreadyExists => ApiError::conflict(text),
        RequestError::NotPending(status) => ApiError::new(
            StatusCode::CONFLICT,
            "not_pending",
            "request is not pending",
        )
        .with("status", status),
        RequestError::NotApproved(status) => {
            ApiError::new(StatusCode::CONFLICT, "request_not_approved", text).with("status", status)
        }
        RequestError::SelfApproval => ApiError::new(StatusCode::FORBIDDEN, "self_approval", text),
        RequestError::NotRequester => ApiError::new(StatusCode::FORBIDDEN, "not_requester", text),
        RequestError::DuplicateVote => ApiError::new(StatusCode::CONFLICT, "duplicate_vote", text),
        RequestError::ReasonRequired | RequestError::BreakGlassReasonRequired => {
            ApiError::bad_request(text).with("field", "reason")
        }
        RequestError::NotBreakGlass => {
            ApiError::new(StatusCode::FORBIDDEN, "not_break_glass", text)
        }
        RequestError::JustificationRequired => {
            ApiError::bad_request(text).with("field", "justification")
        }
        RequestError::NoKeys => ApiError::bad_request(text).with("field", "keys"),
    }
}

/// The approval rules' refusals.
fn rules_error(e: RulesError) -> ApiError {
    let text = e.to_string();
    match e {
        RulesError::WorkflowNotFound | RulesError::PolicyNotFound => ApiError::not_found(text),
        RulesError::AlreadyExists(_) | RulesError::NameTaken { .. } => ApiError::conflict(text),
        RulesError::InUse(_) => ApiError::new(StatusCode::CONFLICT, "in_use", text),
        RulesError::TooMany(_) => ApiError::new(StatusCode::CONFLICT, "limit_reached", text),
        RulesError::UnknownWorkflow(_) => ApiError::bad_request(text).with("field", "workflow_id"),
        RulesError::Invalid { field, .. } => ApiError::bad_request(text).with("field", field),
    }
}

/// Projects' and environments' refusals.
fn tenancy_error(e: TenancyError) -> ApiError {
    let text = e.to_string();
    match e {
        TenancyError::ProjectNotFound | TenancyError::EnvironmentNotFound => {
            ApiError::not_found(text)
        }
        TenancyError::ProjectNameTaken(_) | TenancyError::EnvironmentNameTaken => {
            ApiError::conflict(text)
        }
        TenancyError::Archived => ApiError::new(StatusCode::CONFLICT, "archived", text),
        TenancyError::TooMany(_) => ApiError::new(StatusCode::CONFLICT, "limit_reached", text),
        TenancyError::Invalid { field, message } => {
            ApiError::bad_request(message).with("field", field)
        }
    }
}

fn job_error(e: JobError) -> ApiError {
    match e {
        JobError::NotFound => ApiError::not_found("job not found"),
        // One answer for "not yours" and "not any more": nothing about another agent's job.
        other => ApiError::conflict(other.to_string()),
    }
}
