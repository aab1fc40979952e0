//! How access request events are written to the log and read back: a patch's sealed values
//! ride in the envelope's credential field, never in the payload.

use super::observations::{Polled, PollingState, Watch};
use super::{Binding, Event, Kind, NewRequest, Vote};
use aegis_kernel::{credential_message, occurred_at_ms, payload, DecodeError, Sealed};
use aegis_schemas::broker::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::{Message, NewEvent};
use uuid::Uuid;

pub(super) fn encode(event: &Event) -> NewEvent {
    match event {
        Event::Submitted { request: n, at } => NewEvent {
            event_type: "request.submitted.v1",
            payload: pb::RequestSubmitted {
                kind: n.kind.as_str().into(),
                requester_id: n.requester.to_string(),
                project_id: n.project_id.clone(),
                environment: n.environment.clone(),
                provider_type: n.provider_type.clone(),
                provider_config_json: n.provider_config.clone(),
                target_ref: n.secret_ref.clone(),
                keys: n.keys.clone(),
                justification: n.justification.clone(),
                binding: Some(pb::RequestBinding {
                    workflow_id: n.binding.workflow_id.clone(),
                    min_approvers: n.binding.min_approvers,
                    allow_self_approval: n.binding.allow_self_approval,
                    require_justification: n.binding.require_justification,
                    ttl_ms: n.binding.ttl_ms,
                    approver_role: n.binding.approver_role.clone(),
                    wrap_ttl_approved_ms: n.binding.wrap_ttl_approved_ms,
                    break_glass_user_ids: n
                        .binding
                        .break_glass
                        .iter()
                        .map(Uuid::to_string)
                        .collect(),
                    wrap_ttl_claimed_ms: n.binding.wrap_ttl_claimed_ms,
                }),
                submitted_at: *at,
            }
            .encode_to_vec(),
            // A patch's sealed values are credential material: the envelope keeps them.
            credential: if n.values.is_empty() {
                Vec::new()
            } else {
                pb::RequestValues {
                    values: n
                        .values
                        .iter()
                        .map(|(key, s)| pb::SealedKeyValue {
                            key: key.clone(),
                            nonce: s.nonce.clone(),
                            ciphertext: s.ciphertext.clone(),
                        })
                        .collect(),
                }
                .encode_to_vec()
            },
        },
        Event::VoteCast(v) => NewEvent::new(
            "request.vote_cast.v1",
            pb::RequestVoteCast {
                approver_id: v.approver.to_string(),
                approve: v.approve,
                text: v.text.clone(),
            }
            .encode_to_vec(),
        ),
        Event::Approved => NewEvent::new(
            "request.approved.v1",
            pb::RequestApproved {}.encode_to_vec(),
        ),
        Event::Rejected { approver, reason } => NewEvent::new(
            "request.rejected.v1",
            pb::RequestRejected {
                approver_id: approver.to_string(),
                reason: reason.clone(),
            }
            .encode_to_vec(),
        ),
        Event::BrokeGlass {
            actor,
            reason,
            channels,
        } => NewEvent::new(
            "request.break_glass.v1",
            pb::RequestBrokeGlass {
                actor_id: actor.to_string(),
                reason: reason.clone(),
                notification_channels: channels.clone(),
            }
            .encode_to_vec(),
        ),
        Event::Cancelled => NewEvent::new(
            "request.cancelled.v1",
            pb::RequestCancelled {}.encode_to_vec(),
        ),
        Event::Expired => {
            NewEvent::new("request.expired.v1", pb::RequestExpired {}.encode_to_vec())
        }
        Event::Finished { succeeded, error } => NewEvent::new(
            "request.finished.v1",
            pb::RequestFinished {
                succeeded: *succeeded,
                error: error.clone(),
            }
            .encode_to_vec(),
        ),
        Event::GitopsQueued { watches, at } => NewEvent::new(
            "request.gitops_queued.v1",
            pb::RequestGitopsQueued {
                watches: watches
                    .iter()
                    .map(|w| pb::GitopsWatch {
                        mapping_id: w.mapping_id.to_string(),
                        endpoint_id: w.endpoint_id.to_string(),
                        application_name: w.application_name.clone(),
                        application_namespace: w.application_namespace.clone(),
                        timeout_at: w.timeout_at,
                    })
                    .collect(),
                at: *at,
            }
            .encode_to_vec(),
        ),
        Event::GitopsPolled(p) => NewEvent::new(
            "request.gitops_polled.v1",
            pb::RequestGitopsPolled {
                mapping_id: p.mapping_id.to_string(),
                polling_state: p.state.as_str().into(),
                observed_state: p.observed_state.clone(),
                error: p.error.clone(),
                at: p.at,
            }
            .encode_to_vec(),
        ),
    }
}

pub(super) fn decode(env: &Envelope) -> Result<Event, DecodeError> {
    let id = |s: &str, what: &str| {
        Uuid::parse_str(s).map_err(|e| DecodeError::new(env, format!("{what}: {e}")))
    };
    Ok(match env.event_type.as_str() {
        "request.submitted.v1" => {
            let m: pb::RequestSubmitted = payload(env)?;
            let kind = match m.kind.as_str() {
                "read" => Kind::Read,
                "patch" => Kind::Patch,
                other => return Err(DecodeError::new(env, format!("unknown kind `{other}`"))),
            };
            let b = m.binding.unwrap_or_default();
            let values = credential_message::<pb::RequestValues>(env, None)?
                .map(|v| v.values)
                .unwrap_or_default()
                .into_iter()
                .map(|v| {
                    (
                        v.key,
                        Sealed {
                            nonce: v.nonce,
                            ciphertext: v.ciphertext,
                        },
                    )
                })
                .collect();
            let at = m.submitted_at;
            Event::Submitted {
                request: Box::new(NewRequest {
                    kind,
                    requester: id(&m.requester_id, "requester id")?,
                    project_id: m.project_id,
                    environment: m.environment,
                    provider_type: m.provider_type,
                    provider_config: m.provider_config_json,
                    secret_ref: m.target_ref,
                    keys: m.keys,
                    justification: m.justification,
                    binding: Binding {
                        workflow_id: b.workflow_id,
                        min_approvers: b.min_approvers,
                        allow_self_approval: b.allow_self_approval,
                        require_justification: b.require_justification,
                        ttl_ms: b.ttl_ms,
                        approver_role: b.approver_role,
                        wrap_ttl_approved_ms: b.wrap_ttl_approved_ms,
                        break_glass: b
                            .break_glass_user_ids
                            .iter()
                            .map(|u| id(u, "break-glass user id"))
                            .collect::<Result<_, _>>()?,
                        wrap_ttl_claimed_ms: b.wrap_ttl_claimed_ms,
                    },
                    values,
                }),
                at,
            }
        }
        "request.vote_cast.v1" => {
            let m: pb::RequestVoteCast = payload(env)?;
            Event::VoteCast(Vote {
                approver: id(&m.approver_id, "approver id")?,
                approve: m.approve,
                text: m.text,
                at: occurred_at_ms(env).unwrap_or_default(),
                id: env.event_id.clone(),
            })
        }
        "request.approved.v1" => Event::Approved,
        "request.rejected.v1" => {
            let m: pb::RequestRejected = payload(env)?;
            Event::Rejected {
                approver: id(&m.approver_id, "approver id")?,
                reason: m.reason,
            }
        }
        "request.break_glass.v1" => {
            let m: pb::RequestBrokeGlass = payload(env)?;
            Event::BrokeGlass {
                actor: id(&m.actor_id, "actor id")?,
                reason: m.reason,
                channels: m.notification_channels,
            }
        }
        "request.cancelled.v1" => Event::Cancelled,
        "request.expired.v1" => Event::Expired,
        "request.finished.v1" => {
            let m: pb::RequestFinished = payload(env)?;
            Event::Finished {
                succeeded: m.succeeded,
                error: m.error,
            }
        }
        "request.gitops_queued.v1" => {
            let m: pb::RequestGitopsQueued = payload(env)?;
            let mut watches = Vec::with_capacity(m.watches.len());
            for w in m.watches {
                watches.push(Watch {
                    mapping_id: id(&w.mapping_id, "mapping id")?,
                    endpoint_id: id(&w.endpoint_id, "endpoint id")?,
                    application_name: w.application_name,
                    application_namespace: w.application_namespace,
                    timeout_at: w.timeout_at,
                });
            }
            Event::GitopsQueued { watches, at: m.at }
        }
        "request.gitops_polled.v1" => {
            let m: pb::RequestGitopsPolled = payload(env)?;
            let state = PollingState::parse(&m.polling_state).ok_or_else(|| {
                DecodeError::new(env, format!("polling state: {}", m.polling_state))
            })?;
            Event::GitopsPolled(Polled {
                mapping_id: id(&m.mapping_id, "mapping id")?,
                state,
                observed_state: m.observed_state,
                error: m.error,
                at: m.at,
            })
        }
        other => {
            return Err(DecodeError::new(
                env,
                format!("not an access request event: {other}"),
            ))
        }
    })
}
