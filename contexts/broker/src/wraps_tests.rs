//! Single-shot wraps, given / when / then.

use super::*;
use aegis_kernel::spec::given;

fn wrap() -> NewWrap {
    NewWrap {
        request_id: "req-1".into(),
        key_name: "password".into(),
        agent: Uuid::from_u128(7),
        byte_length: 6,
        expires_at: 1_000,
        source: Source::Value,
        sealed: Sealed {
            nonce: vec![1; 12],
            ciphertext: vec![2; 22],
        },
        content_mac: "ab".repeat(32),
    }
}

fn retrieval(attempt: u128, approved: bool, now: i64) -> Retrieval {
    Retrieval {
        attempt: Uuid::from_u128(attempt),
        via: Via::Agent,
        approved,
        now,
    }
}

#[test]
fn a_wrap_is_created_once() {
    given::<WrapAggregate>(vec![])
        .when(Command::Create(wrap()))
        .then(vec![Event::Created(wrap())]);
    given::<WrapAggregate>(vec![Event::Created(wrap())])
        .when(Command::Create(wrap()))
        .then_err(WrapError::AlreadyExists);
}

#[test]
fn the_first_approved_retrieval_before_expiry_gets_the_value() {
    given::<WrapAggregate>(vec![Event::Created(wrap())])
        .when(Command::Retrieve(retrieval(1, true, 999)))
        .then(vec![Event::Retrieved {
            via: Via::Agent,
            attempt: Uuid::from_u128(1),
        }]);
}

#[test]
fn every_later_retrieval_is_refused_and_recorded() {
    given::<WrapAggregate>(vec![
        Event::Created(wrap()),
        Event::Retrieved {
            via: Via::Agent,
            attempt: Uuid::from_u128(1),
        },
    ])
    .when(Command::Retrieve(retrieval(2, true, 10)))
    .then(vec![Event::Denied {
        via: Via::Agent,
        reason: Refusal::Consumed,
    }]);
}

#[test]
fn a_retrieval_at_or_after_expiry_is_refused() {
    given::<WrapAggregate>(vec![Event::Created(wrap())])
        .when(Command::Retrieve(retrieval(1, true, 1_000)))
        .then(vec![Event::Denied {
            via: Via::Agent,
            reason: Refusal::Expired,
        }]);
}

#[test]
fn a_caller_without_approved_work_learns_nothing_of_the_state() {
    given::<WrapAggregate>(vec![
        Event::Created(wrap()),
        Event::Retrieved {
            via: Via::Agent,
            attempt: Uuid::from_u128(1),
        },
    ])
    .when(Command::Retrieve(retrieval(2, false, 5_000)))
    .then(vec![Event::Denied {
        via: Via::Agent,
        reason: Refusal::NotApproved,
    }]);
}

#[test]
fn a_wrap_past_its_time_unretrieved_is_ended_once() {
    given::<WrapAggregate>(vec![Event::Created(wrap())])
        .when(Command::Expire { now: 999 })
        .then(vec![]);
    given::<WrapAggregate>(vec![Event::Created(wrap())])
        .when(Command::Expire { now: 1_000 })
        .then(vec![Event::Expired]);
    given::<WrapAggregate>(vec![Event::Created(wrap()), Event::Expired])
        .when(Command::Expire { now: 5_000 })
        .then(vec![]);
    // Once ended, a retrieval is refused as expired whatever clock it carries.
    given::<WrapAggregate>(vec![Event::Created(wrap()), Event::Expired])
        .when(Command::Retrieve(retrieval(1, true, 10)))
        .then(vec![Event::Denied {
            via: Via::Agent,
            reason: Refusal::Expired,
        }]);
}

#[test]
fn a_destroyed_key_is_recorded_once() {
    given::<WrapAggregate>(vec![Event::Created(wrap())])
        .when(Command::RecordKeyDestroyed)
        .then(vec![Event::KeyDestroyed]);
    given::<WrapAggregate>(vec![Event::Created(wrap()), Event::KeyDestroyed])
        .when(Command::RecordKeyDestroyed)
        .then(vec![]);
}

#[test]
fn a_retrieved_wrap_never_expires() {
    given::<WrapAggregate>(vec![
        Event::Created(wrap()),
        Event::Retrieved {
            via: Via::Agent,
            attempt: Uuid::from_u128(1),
        },
    ])
    .when(Command::Expire { now: 5_000 })
    .then(vec![]);
}

#[test]
fn retrieving_an_unknown_wrap_is_not_found() {
    given::<WrapAggregate>(vec![])
        .when(Command::Retrieve(retrieval(1, true, 0)))
        .then_err(WrapError::NotFound);
}

#[test]
fn a_wrap_decodes_as_it_was_encoded() {
    let events = [
        Event::Created(wrap()),
        Event::Created(NewWrap {
            source: Source::Envelope {
                dek_key_id: "dek_1".into(),
            },
            ..wrap()
        }),
        Event::Retrieved {
            via: Via::Requester,
            attempt: Uuid::from_u128(3),
        },
        Event::Denied {
            via: Via::Agent,
            reason: Refusal::Expired,
        },
        Event::Expired,
        Event::KeyDestroyed,
    ];
    for event in events {
        let new = WrapAggregate::encode(&event);
        let env = Envelope {
            event_type: new.event_type.into(),
            payload: new.payload,
            credential: new.credential,
            ..Default::default()
        };
        assert_eq!(WrapAggregate::decode(&env).expect("decodes"), event);
    }
}
