//! Appending: a commit's envelopes built and sealed into the aggregate's chain, and published
//! as one message with its expected sequence and message id.

use super::{
    publish::wrong_last_sequence, Appended, EventStore, Expected, Metadata, NewEvent, StoredCommit,
};
use crate::chain;
use crate::error::{AppendError, StoreError};
use crate::headers;
use crate::subject::AggregateRef;
use aegis_schemas::envelope::v1::{Actor, Commit, Envelope};
use aegis_schemas::Message;
use async_nats::jetstream;
use async_nats::HeaderMap;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use uuid::Uuid;

impl EventStore {
    /// Builds sealed envelopes for `events` following `expected`.
    pub fn envelopes(
        agg: &AggregateRef,
        expected: &Expected,
        events: Vec<NewEvent>,
        meta: &Metadata,
    ) -> Vec<Envelope> {
        Self::envelopes_each(agg, expected, events.into_iter().map(|e| (e, meta)))
    }

    /// Builds sealed envelopes following `expected`, each with its own metadata.
    fn envelopes_each<'m>(
        agg: &AggregateRef,
        expected: &Expected,
        events: impl IntoIterator<Item = (NewEvent, &'m Metadata)>,
    ) -> Vec<Envelope> {
        let mut head = expected.head;
        events
            .into_iter()
            .enumerate()
            .map(|(i, (e, meta))| {
                let mut env = Envelope {
                    event_id: Uuid::now_v7().to_string(),
                    event_type: e.event_type.to_string(),
                    tenant_id: agg.tenant.to_string(),
                    context: agg.context.to_string(),
                    aggregate_type: agg.aggregate.to_string(),
                    aggregate_id: agg.id.clone(),
                    aggregate_version: expected.version + 1 + i as u64,
                    occurred_at: Some(prost_types::Timestamp {
                        seconds: meta.occurred_at.timestamp(),
                        nanos: meta.occurred_at.timestamp_subsec_nanos() as i32,
                    }),
                    actor: Some(Actor {
                        kind: meta.actor_kind.clone(),
                        subject: meta.actor_subject.clone(),
                    }),
                    causation_id: meta.causation_id.clone(),
                    correlation_id: meta.correlation_id.clone(),
                    credential_digest: if e.credential.is_empty() {
                        Vec::new()
                    } else {
                        Sha256::digest(&e.credential).to_vec()
                    },
                    payload: e.payload,
                    credential: e.credential,
                    ..Default::default()
                };
                head = chain::seal(&mut env, head);
                env
            })
            .collect()
    }

    /// Appends one command's events as one message. All or none: JetStream stores a message
    /// whole or not at all, and the expected sequence makes a stale decision fail as `Conflict`.
    pub async fn append(
        &self,
        agg: &AggregateRef,
        expected: &Expected,
        events: Vec<NewEvent>,
        meta: &Metadata,
        msg_id: Option<&str>,
    ) -> Result<Appended, AppendError> {
        self.append_each(
            agg,
            expected,
            events.into_iter().map(|e| (e, meta)).collect(),
            msg_id,
        )
        .await
    }

    /// Appends events as one message, each with its own metadata: a group commit of what
    /// several callers did at once (each event keeps who did it, why and when) costs one
    /// write. The message's trace headers are the first event's.
    // No `err`: a conflict is the expected-sequence check doing its job, and the executor
    // decides again; store failures are logged by whoever answers them.
    #[tracing::instrument(skip_all, fields(subject = %agg.subject(), expected = expected.last_seq))]
    pub async fn append_each(
        &self,
        agg: &AggregateRef,
        expected: &Expected,
        events: Vec<(NewEvent, &Metadata)>,
        msg_id: Option<&str>,
    ) -> Result<Appended, AppendError> {
        let subject = agg.subject();
        let trace_headers = events
            .first()
            .map(|(_, meta)| meta.trace_headers.clone())
            .unwrap_or_default();
        let envelopes = Self::envelopes_each(agg, expected, events);
        let types: Vec<&str> = envelopes.iter().map(|e| e.event_type.as_str()).collect();
        let mut hdrs = HeaderMap::new();
        hdrs.insert(headers::EVENT_TYPE, types.join(",").as_str());
        hdrs.insert(headers::TENANT, agg.tenant.to_string().as_str());
        for (name, value) in &trace_headers {
            hdrs.insert(*name, value.as_str());
        }
        // Every append carries a message id (the caller's, else its first event's), so the same
        // publish sent again after a lost answer is stored once.
        let id = msg_id
            .map(str::to_string)
            .or_else(|| envelopes.first().map(|e| format!("commit:{}", e.event_id)));
        let commit = Commit { events: envelopes };
        let mut publish = jetstream::message::PublishMessage::build()
            .payload(Bytes::from(commit.encode_to_vec()))
            .headers(hdrs)
            .expected_last_subject_sequence(expected.last_seq);
        if let Some(id) = &id {
            publish = publish.message_id(id);
        }
        let ack = self.publish_through_elections(&subject, publish).await;
        let ack = match ack {
            Ok(ack) => ack,
            Err(e) if wrong_last_sequence(&e) => return Err(AppendError::Conflict),
            Err(e) => return Err(AppendError::Store(StoreError::nats(e))),
        };
        if ack.duplicate {
            // The first append with this id won; answer with what it stored.
            let stored = self.get(ack.sequence).await?;
            return Ok(Appended {
                position: ack.sequence,
                duplicate: true,
                commit: stored,
            });
        }
        let traceparent = trace_headers
            .into_iter()
            .find(|(n, _)| *n == headers::TRACEPARENT)
            .map(|(_, v)| v);
        Ok(Appended {
            position: ack.sequence,
            duplicate: false,
            commit: StoredCommit {
                position: ack.sequence,
                subject,
                events: commit.events,
                traceparent,
            },
        })
    }
}
