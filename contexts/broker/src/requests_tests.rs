//! Access requests, given / when / then.

use super::observations::PollingState;
use super::*;
use aegis_kernel::spec::given;

const REQUESTER: Uuid = Uuid::from_u128(1);
const ALICE: Uuid = Uuid::from_u128(2);
const BOB: Uuid = Uuid::from_u128(3);
const CAROL: Uuid = Uuid::from_u128(4);
const AT: i64 = 1_000;
const TTL: i64 = 60_000;

fn binding(min_approvers: u32) -> Binding {
    Binding {
        workflow_id: "wf-default".into(),
        min_approvers,
        allow_self_approval: false,
        require_justification: true,
        ttl_ms: TTL,
        approver_role: String::new(),
        wrap_ttl_approved_ms: 3_600_000,
        break_glass: vec![CAROL],
        wrap_ttl_claimed_ms: 300_000,
    }
}

fn read(min_approvers: u32) -> NewRequest {
    NewRequest {
        kind: Kind::Read,
        requester: REQUESTER,
        project_id: "payments".into(),
        environment: "prod".into(),
        provider_type: "kubernetes".into(),
        provider_config: "{}".into(),
        secret_ref: "prod/db".into(),
        keys: vec!["password".into()],
        justification: "incident 42".into(),
        binding: binding(min_approvers),
        values: Vec::new(),
    }
}

fn submitted(min_approvers: u32) -> Event {
    Event::Submitted {
        request: Box::new(read(min_approvers)),
        at: AT,
    }
}

fn approve(approver: Uuid) -> Command {
    Command::Approve {
        approver,
        comment: "ok".into(),
        now: AT + 1,
    }
}

fn voted(approver: Uuid) -> Event {
    Event::VoteCast(Vote {
        approver,
        approve: true,
        text: "ok".into(),
        at: AT + 1,
        id: String::new(),
    })
}

#[test]
fn a_request_is_submitted_pending_or_approved_at_once_with_no_approvers() {
    given::<RequestAggregate>(vec![])
        .when(Command::Submit {
            request: Box::new(read(2)),
            now: AT,
        })
        .then(vec![submitted(2)]);
    given::<RequestAggregate>(vec![])
        .when(Command::Submit {
            request: Box::new(read(0)),
            now: AT,
        })
        .then(vec![submitted(0), Event::Approved]);
}

#[test]
fn bad_submissions_are_refused() {
    let mut blank = read(1);
    blank.keys = vec![" ".into()];
    given::<RequestAggregate>(vec![])
        .when(Command::Submit {
            request: Box::new(blank),
            now: AT,
        })
        .then_err(RequestError::NoKeys);
    let mut none = read(1);
    none.keys.clear();
    given::<RequestAggregate>(vec![])
        .when(Command::Submit {
            request: Box::new(none),
            now: AT,
        })
        .then_err(RequestError::NoKeys);
    let mut silent = read(1);
    silent.justification = "  ".into();
    given::<RequestAggregate>(vec![])
        .when(Command::Submit {
            request: Box::new(silent),
            now: AT,
        })
        .then_err(RequestError::JustificationRequired);
    given::<RequestAggregate>(vec![submitted(1)])
        .when(Command::Submit {
            request: Box::new(read(1)),
            now: AT,
        })
        .then_err(RequestError::AlreadyExists);
}

#[test]
fn the_vote_that_reaches_min_approvers_approves_once() {
    given::<RequestAggregate>(vec![submitted(2)])
        .when(approve(ALICE))
        .then(vec![voted(ALICE)]);
    given::<RequestAggregate>(vec![submitted(2), voted(ALICE)])
        .when(approve(BOB))
        .then(vec![voted(BOB), Event::Approved]);
    // A third approver, a moment late, finds it no longer pending.
    given::<RequestAggregate>(vec![
        submitted(2),
        voted(ALICE),
        voted(BOB),
        Event::Approved,
    ])
    .when(approve(CAROL))
    .then_err(RequestError::NotPending("approved"));
}

#[test]
fn nobody_votes_twice_and_the_requester_not_at_all_unless_allowed() {
    given::<RequestAggregate>(vec![submitted(2), voted(ALICE)])
        .when(approve(ALICE))
        .then_err(RequestError::DuplicateVote);
    given::<RequestAggregate>(vec![submitted(2)])
        .when(approve(REQUESTER))
        .then_err(RequestError::SelfApproval);
    let mut own = read(1);
    own.binding.allow_self_approval = true;
    given::<RequestAggregate>(vec![Event::Submitted {
        request: Box::new(own),
        at: AT,
    }])
    .when(approve(REQUESTER))
    .then(vec![voted(REQUESTER), Event::Approved]);
}

#[test]
fn one_rejection_ends_the_request_and_needs_a_reason() {
    given::<RequestAggregate>(vec![submitted(2), voted(ALICE)])
        .when(Command::Reject {
            approver: BOB,
            reason: "not during the freeze".into(),
            now: AT + 1,
        })
        .then(vec![
            Event::VoteCast(Vote {
                approver: BOB,
                approve: false,
                text: "not during the freeze".into(),
                at: AT + 1,
                id: String::new(),
            }),
            Event::Rejected {
                approver: BOB,
                reason: "not during the freeze".into(),
            },
        ]);
    given::<RequestAggregate>(vec![submitted(2)])
        .when(Command::Reject {
            approver: BOB,
            reason: " ".into(),
            now: AT + 1,
        })
        .then_err(RequestError::ReasonRequired);
    given::<RequestAggregate>(vec![
        submitted(2),
        Event::Rejected {
            approver: BOB,
            reason: "no".into(),
        },
    ])
    .when(approve(ALICE))
    .then_err(RequestError::NotPending("rejected"));
}

#[test]
fn only_the_requester_cancels_and_only_while_pending() {
    given::<RequestAggregate>(vec![submitted(1)])
        .when(Command::Cancel { actor: ALICE })
        .then_err(RequestError::NotRequester);
    given::<RequestAggregate>(vec![submitted(1)])
        .when(Command::Cancel { actor: REQUESTER })
        .then(vec![Event::Cancelled]);
    given::<RequestAggregate>(vec![submitted(1), voted(ALICE), Event::Approved])
        .when(Command::Cancel { actor: REQUESTER })
        .then_err(RequestError::NotPending("approved"));
}

#[test]
fn past_its_time_a_pending_request_expires_and_takes_no_votes() {
    given::<RequestAggregate>(vec![submitted(1)])
        .when(Command::Approve {
            approver: ALICE,
            comment: String::new(),
            now: AT + TTL,
        })
        .then_err(RequestError::NotPending("expired"));
    given::<RequestAggregate>(vec![submitted(1)])
        .when(Command::Expire { now: AT + TTL - 1 })
        .then(vec![]);
    given::<RequestAggregate>(vec![submitted(1)])
        .when(Command::Expire { now: AT + TTL })
        .then(vec![Event::Expired]);
    given::<RequestAggregate>(vec![submitted(1), voted(ALICE), Event::Approved])
        .when(Command::Expire { now: AT + 10 * TTL })
        .then(vec![]);
}

fn finish(succeeded: bool) -> Command {
    Command::Finish {
        succeeded,
        error: String::new(),
        watches: Vec::new(),
        now: AT + 2,
    }
}

#[test]
fn an_approved_request_finishes_once() {
    let approved = vec![submitted(1), voted(ALICE), Event::Approved];
    given::<RequestAggregate>(approved.clone())
        .when(finish(true))
        .then(vec![Event::Finished {
            succeeded: true,
            error: String::new(),
        }]);
    let mut done = approved;
    done.push(Event::Finished {
        succeeded: false,
        error: "forbidden".into(),
    });
    given::<RequestAggregate>(done)
        .when(finish(true))
        .then(vec![]);
    given::<RequestAggregate>(vec![submitted(1)])
        .when(finish(true))
        .then_err(RequestError::NotApproved("pending"));
}

#[test]
fn a_request_decodes_as_it_was_encoded_its_values_only_in_the_credential() {
    let mut patch = read(1);
    patch.kind = Kind::Patch;
    patch.values = vec![(
        "password".into(),
        Sealed {
            nonce: vec![1; 24],
            ciphertext: vec![2; 30],
        },
    )];
    let events = [
        Event::Submitted {
            request: Box::new(patch),
            at: AT,
        },
        submitted(0),
        voted(ALICE),
        Event::Approved,
        Event::Rejected {
            approver: BOB,
            reason: "no".into(),
        },
        Event::Cancelled,
        Event::Expired,
        Event::Finished {
            succeeded: false,
            error: "boom".into(),
        },
        Event::GitopsQueued {
            watches: vec![watch()],
            at: AT + 2,
        },
        Event::GitopsPolled(Polled {
            mapping_id: MAPPING,
            state: PollingState::AppliedUnverified,
            observed_state: "OutOfSync/Progressing".into(),
            error: "argo cd answered 503".into(),
            at: AT + 9,
        }),
    ];
    for event in events {
        let new = RequestAggregate::encode(&event);
        if let Event::Submitted { request, .. } = &event {
            assert_eq!(new.credential.is_empty(), request.values.is_empty());
            assert!(!new.payload.windows(30).any(|w| w == [2u8; 30]));
        }
        let env = Envelope {
            event_type: new.event_type.into(),
            payload: new.payload,
            credential: new.credential,
            ..Default::default()
        };
        // A vote's time and id are its record's (this envelope has neither).
        let expected = match event {
            Event::VoteCast(v) => Event::VoteCast(Vote { at: 0, ..v }),
            other => other,
        };
        assert_eq!(RequestAggregate::decode(&env).expect("decodes"), expected);
    }
}

#[test]
fn only_who_the_workflow_names_breaks_the_glass_with_a_reason_and_it_approves() {
    let brk = |actor: Uuid, reason: &str| Command::BreakGlass {
        actor,
        reason: reason.into(),
        channels: vec!["hook".into()],
        now: AT + 1,
    };
    given::<RequestAggregate>(vec![submitted(2)])
        .when(brk(CAROL, "prod is down"))
        .then(vec![
            Event::BrokeGlass {
                actor: CAROL,
                reason: "prod is down".into(),
                channels: vec!["hook".into()],
            },
            Event::Approved,
        ]);
    given::<RequestAggregate>(vec![submitted(2)])
        .when(brk(ALICE, "prod is down"))
        .then_err(RequestError::NotBreakGlass);
    given::<RequestAggregate>(vec![submitted(2)])
        .when(brk(CAROL, " "))
        .then_err(RequestError::BreakGlassReasonRequired);
    given::<RequestAggregate>(vec![submitted(2), Event::Approved])
        .when(brk(CAROL, "again"))
        .then_err(RequestError::NotPending("approved"));
}

const MAPPING: Uuid = Uuid::from_u128(50);

fn watch() -> Watch {
    Watch {
        mapping_id: MAPPING,
        endpoint_id: Uuid::from_u128(51),
        application_name: "payments".into(),
        application_namespace: "argocd".into(),
        timeout_at: AT + 60_000,
    }
}

fn approved_patch() -> Vec<Event> {
    let mut patch = read(0);
    patch.kind = Kind::Patch;
    vec![
        Event::Submitted {
            request: Box::new(patch),
            at: AT,
        },
        Event::Approved,
    ]
}

#[test]
fn an_executed_patch_begins_its_gitops_watches_in_the_same_commit() {
    let executed = Command::Finish {
        succeeded: true,
        error: String::new(),
        watches: vec![watch()],
        now: AT + 2,
    };
    given::<RequestAggregate>(approved_patch())
        .when(executed.clone())
        .then(vec![
            Event::Finished {
                succeeded: true,
                error: String::new(),
            },
            Event::GitopsQueued {
                watches: vec![watch()],
                at: AT + 2,
            },
        ]);
    // A failed patch changed nothing to watch; a read never does.
    let mut failed = executed.clone();
    if let Command::Finish { succeeded, .. } = &mut failed {
        *succeeded = false;
    }
    given::<RequestAggregate>(approved_patch())
        .when(failed)
        .then(vec![Event::Finished {
            succeeded: false,
            error: String::new(),
        }]);
    given::<RequestAggregate>(vec![submitted(0), Event::Approved])
        .when(executed)
        .then(vec![Event::Finished {
            succeeded: true,
            error: String::new(),
        }]);
}

#[test]
fn a_poll_records_its_verdict_and_a_settled_watch_stays_settled() {
    let mut watched = approved_patch();
    watched.push(Event::Finished {
        succeeded: true,
        error: String::new(),
    });
    watched.push(Event::GitopsQueued {
        watches: vec![watch()],
        at: AT + 2,
    });
    let synced = |now: i64| Command::ObserveGitops {
        mapping_id: MAPPING,
        seen: Seen::App {
            sync: "Synced".into(),
            health: "Healthy".into(),
            reconciled_at: Some(AT + 3),
            operation_phase: String::new(),
            operation_finished_at: None,
        },
        now,
    };
    let applied = Polled {
        mapping_id: MAPPING,
        state: PollingState::Applied,
        observed_state: "Synced/Healthy".into(),
        error: String::new(),
        at: AT + 4,
    };
    given::<RequestAggregate>(watched.clone())
        .when(synced(AT + 4))
        .then(vec![Event::GitopsPolled(applied.clone())]);
    let mut settled = watched.clone();
    settled.push(Event::GitopsPolled(applied));
    given::<RequestAggregate>(settled)
        .when(synced(AT + 5))
        .then(vec![]);
    given::<RequestAggregate>(watched)
        .when(Command::ObserveGitops {
            mapping_id: Uuid::from_u128(99),
            seen: Seen::Missing,
            now: AT + 4,
        })
        .then_err(RequestError::NoObservation);
}
