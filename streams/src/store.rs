//! The event store over JetStream. One message is one commit (a command's events), published
//! on its aggregate's subject with `Nats-Expected-Last-Subject-Sequence` (optimistic
//! concurrency; 0 means "the aggregate must not exist yet") and `Nats-Msg-Id` (idempotency).

use crate::chain;
use crate::error::StoreError;
use crate::headers;
use crate::provision::events_stream_name;
use crate::subject::AggregateRef;
use aegis_schemas::envelope::v1::{Commit, Envelope};
use aegis_schemas::Message;
use async_nats::jetstream::{self, consumer, stream};
use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use uuid::Uuid;

pub use aegis_schemas::NewEvent;

/// Who and what caused a commit; travels into every envelope and the message headers.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub actor_kind: String,
    pub actor_subject: String,
    pub correlation_id: String,
    pub causation_id: String,
    pub occurred_at: DateTime<Utc>,
    /// W3C trace context (`traceparent`, `tracestate`) to carry in the message headers.
    pub trace_headers: Vec<(&'static str, String)>,
}

impl Metadata {
    /// Metadata for work the system does on its own (tools, tests, benchmarks): a fresh
    /// correlation id, no cause, no trace, now.
    pub fn system(actor: &str) -> Self {
        Self {
            actor_kind: "system".into(),
            actor_subject: actor.into(),
            correlation_id: Uuid::now_v7().to_string(),
            causation_id: String::new(),
            occurred_at: Utc::now(),
            trace_headers: Vec::new(),
        }
    }
}

/// Where the aggregate stood when the decision was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Stream sequence of the aggregate's last commit; 0 when it has none.
    pub last_seq: u64,
    /// Aggregate version (count of its events).
    pub version: u64,
    /// Head of its hash chain.
    pub head: [u8; 32],
}

impl Expected {
    pub const NEW: Expected = Expected {
        last_seq: 0,
        version: 0,
        head: chain::GENESIS,
    };
}

/// A commit as stored: its stream position and its events.
#[derive(Debug, Clone)]
pub struct StoredCommit {
    pub position: u64,
    pub subject: String,
    pub events: Vec<Envelope>,
    pub traceparent: Option<String>,
}

impl StoredCommit {
    /// The commit a message read straight from the stream holds.
    fn from_message(m: &jetstream::message::StreamMessage) -> Result<Self, StoreError> {
        Self::decode(m.sequence, m.subject.as_str(), Some(&m.headers), &m.payload)
    }

    fn decode(
        position: u64,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
    ) -> Result<Self, StoreError> {
        let commit = Commit::decode(payload).map_err(|e| StoreError::Decode {
            position,
            reason: e.to_string(),
        })?;
        let traceparent = headers
            .and_then(|h| h.get(headers::TRACEPARENT))
            .map(|v| v.as_str().to_string());
        Ok(Self {
            position,
            subject: subject.to_string(),
            events: commit.events,
            traceparent,
        })
    }

    /// Where this aggregate stands after this commit.
    pub fn expected_after(&self) -> Expected {
        let last = self.events.last();
        Expected {
            last_seq: self.position,
            version: last.map_or(0, |e| e.aggregate_version),
            head: last
                .and_then(|e| e.hash.as_slice().try_into().ok())
                .unwrap_or(chain::GENESIS),
        }
    }
}

/// Commits of one aggregate newer than what the caller already had.
#[derive(Debug, Clone)]
pub struct History {
    pub commits: Vec<StoredCommit>,
    pub expected: Expected,
}

#[derive(Debug, Clone)]
pub struct Appended {
    pub position: u64,
    /// The same `Nats-Msg-Id` was appended before: nothing new was written.
    pub duplicate: bool,
    pub commit: StoredCommit,
}

#[derive(Clone)]
pub struct EventStore {
    js: jetstream::Context,
}

/// Commits of one aggregate read one by one before a longer history goes through a consumer.
const DIRECT_READS: usize = 8;

#[path = "store_append.rs"]
mod append;
#[path = "store_publish.rs"]
mod publish;

impl EventStore {
    pub fn new(js: jetstream::Context) -> Self {
        Self { js }
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    async fn stream(&self) -> Result<stream::Stream<stream::Info>, StoreError> {
        self.js
            .get_stream(events_stream_name())
            .await
            .map_err(StoreError::nats)
    }

    async fn stream_handle(&self) -> Result<stream::Stream<()>, StoreError> {
        self.js
            .get_stream_no_info(events_stream_name())
            .await
            .map_err(StoreError::nats)
    }

    /// The commit at one stream position, read from the stream leader.
    pub async fn get(&self, position: u64) -> Result<StoredCommit, StoreError> {
        let msg = self
            .stream_handle()
            .await?
            .get_raw_message(position)
            .await
            .map_err(StoreError::nats)?;
        StoredCommit::from_message(&msg)
    }

    /// Commits of `agg` after stream position `after` (0 for its whole history). The last
    /// message of the subject is asked of the stream leader, so a lagging follower can never
    /// hide a commit; a decision made on stale state still fails its expected-sequence check.
    #[tracing::instrument(skip_all, fields(subject = %agg.subject(), after), err)]
    pub async fn load(&self, agg: &AggregateRef, after: Expected) -> Result<History, StoreError> {
        let subject = agg.subject();
        let stream = self.stream_handle().await?;
        // From nothing, the subject's newest message and its first one after `after` are asked
        // at once: for the common short history the second already is the whole of what is
        // new, so a load costs one round trip, not two. From a cached state (usually current)
        // the newest alone answers: it is the same commit, or the one commit after it.
        let (newest, first) = if after.last_seq == 0 {
            let (newest, first) = tokio::join!(
                stream.get_last_raw_message_by_subject(&subject),
                stream.get_first_raw_message_by_subject(&subject, after.last_seq + 1)
            );
            (newest, first.ok())
        } else {
            (stream.get_last_raw_message_by_subject(&subject).await, None)
        };
        let newest = match newest {
            Ok(m) => Some(m),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => None,
            Err(e) => return Err(StoreError::nats(e)),
        };
        let last = newest.as_ref().map_or(0, |m| m.sequence);
        if last <= after.last_seq {
            return Ok(History {
                commits: Vec::new(),
                expected: after,
            });
        }
        let first = match (first, newest) {
            (Some(first), _) => Some(first),
            (None, Some(m)) => {
                let commit = StoredCommit::from_message(&m)?;
                // The newest commit follows the cached one directly: it is all that is new.
                if commit
                    .events
                    .first()
                    .is_some_and(|e| e.aggregate_version == after.version + 1)
                {
                    let expected = commit.expected_after();
                    return Ok(History {
                        commits: vec![commit],
                        expected,
                    });
                }
                None
            }
            (None, None) => None,
        };
        // Most aggregates hold a handful of commits: each is read straight from the stream
        // leader by subject (JetStream's per-subject index finds it without walking the log),
        // one round trip apiece. Creating a consumer costs several round trips and server-side
        // state, which dominated loading small aggregates (claiming a job); only a long
        // history goes on through one.
        let mut commits: Vec<StoredCommit> = Vec::new();
        // The two requests race a concurrent append: the first may have found nothing (the
        // subject's first commit landed between them) where the newest now exists. Whatever it
        // answered other than a message, the loop asks again, in order.
        let mut next = first;
        let mut from = after.last_seq + 1;
        for _ in 0..DIRECT_READS {
            let msg = match next.take() {
                Some(m) => m,
                None => stream
                    .get_first_raw_message_by_subject(&subject, from)
                    .await
                    .map_err(StoreError::nats)?,
            };
            let commit = StoredCommit::from_message(&msg)?;
            from = msg.sequence + 1;
            commits.push(commit);
            if msg.sequence >= last {
                break;
            }
        }
        if from <= last {
            let rest: Vec<StoredCommit> = self
                .read_range(vec![subject], from, Some(last))
                .await?
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()?;
            commits.extend(rest);
        }
        let expected = commits.last().map_or(after, StoredCommit::expected_after);
        Ok(History { commits, expected })
    }

    /// The stream position of the newest commit (0 for an empty log).
    pub async fn head(&self) -> Result<u64, StoreError> {
        let mut stream = self.stream().await?;
        Ok(stream
            .info()
            .await
            .map_err(StoreError::nats)?
            .state
            .last_sequence)
    }

    /// Commits on `filters` from position `from` through `to` (inclusive), or through the head
    /// as it is when the read starts when `to` is `None`. Ends by itself.
    pub async fn read_range(
        &self,
        filters: Vec<String>,
        from: u64,
        to: Option<u64>,
    ) -> Result<impl Stream<Item = Result<StoredCommit, StoreError>> + Send + 'static, StoreError>
    {
        let to = match to {
            Some(to) => to,
            None => self.head().await?,
        };
        let (messages, pending) = self.ordered(filters.clone(), from).await?;
        let finished = from > to || pending == 0 && !self.holds(&filters, from, to).await?;
        // Stop right after the last wanted commit: the consumer itself never ends, so waiting
        // for one more message past the end would wait forever.
        let store = self.clone();
        let items = futures::stream::unfold(
            (Box::pin(messages), finished),
            move |(mut messages, finished)| {
                let (store, filters) = (store.clone(), filters.clone());
                async move {
                    if finished {
                        return None;
                    }
                    match messages.next().await? {
                        Ok((c, _)) if c.position > to => None,
                        Ok((c, pending)) => {
                            let finished = c.position >= to
                                || pending == 0
                                    && match store.holds(&filters, c.position + 1, to).await {
                                        Ok(more) => !more,
                                        Err(e) => return Some((Err(e), (messages, true))),
                                    };
                            Some((Ok(c), (messages, finished)))
                        }
                        Err(e) => Some((Err(e), (messages, true))),
                    }
                }
            },
        );
        Ok(items)
    }

    /// Whether the stream's leader holds a commit on `filters` at a position in `from..=to`.
    /// A consumer placed on a replica that lags (one just back from a pause) counts nothing
    /// pending before it has caught up: a read that took its word ended short of commits the
    /// log holds (the cluster test's checker found acknowledged commands missing from a read
    /// of the log while the read model had them).
    async fn holds(&self, filters: &[String], from: u64, to: u64) -> Result<bool, StoreError> {
        if from > to {
            return Ok(false);
        }
        let stream = self.stream_handle().await?;
        for filter in filters {
            match stream.get_first_raw_message_by_subject(filter, from).await {
                Ok(m) if m.sequence <= to => return Ok(true),
                Ok(_) => {}
                Err(e)
                    if e.kind()
                        == async_nats::jetstream::stream::RawMessageErrorKind::NoMessageFound => {}
                Err(e) => return Err(StoreError::nats(e)),
            }
        }
        Ok(false)
    }

    /// One tenant's commits from `from` through `to` (inclusive), ending by itself.
    ///
    /// JetStream delivers through a wildcard filter several times slower than unfiltered
    /// (measured by `scripts/bench audit`); when the tenant holds a quarter or more of the
    /// range, the whole range is read and other tenants' commits are dropped here instead.
    pub async fn read_tenant_range(
        &self,
        tenant: Uuid,
        from: u64,
        to: u64,
    ) -> Result<impl Stream<Item = Result<StoredCommit, StoreError>> + Send + 'static, StoreError>
    {
        let filter = crate::subject::tenant_filter(tenant, None);
        let prefix = filter.trim_end_matches('>').to_string();
        let span = to.saturating_sub(from);
        let scan_all = span > 0 && self.count(vec![filter.clone()], from).await? * 4 > span;
        let filters = vec![if scan_all {
            format!("{}.>", crate::subject::EVENT_PREFIX)
        } else {
            filter
        }];
        let commits = self.read_range(filters, from, Some(to)).await?;
        Ok(commits.filter(move |c| {
            let keep = match c {
                Ok(c) => c.subject.starts_with(&prefix),
                Err(_) => true,
            };
            futures::future::ready(keep)
        }))
    }

    /// How many commits on `filters` the log holds from position `from` on.
    pub async fn count(&self, filters: Vec<String>, from: u64) -> Result<u64, StoreError> {
        let (_, pending) = self.ordered(filters, from).await?;
        Ok(pending)
    }

    /// Every commit on `filters` from position `from` on, waiting for new ones forever.
    pub async fn subscribe(
        &self,
        filters: Vec<String>,
        from: u64,
    ) -> Result<impl Stream<Item = Result<StoredCommit, StoreError>> + Send + 'static, StoreError>
    {
        let (messages, _) = self.ordered(filters, from).await?;
        Ok(messages.map(|m| m.map(|(c, _)| c)))
    }

    /// An ordered consumer (ephemeral, flow-controlled, gap-free) yielding each commit with the
    /// count of matching messages still pending after it.
    async fn ordered(
        &self,
        filters: Vec<String>,
        from: u64,
    ) -> Result<
        (
            impl Stream<Item = Result<(StoredCommit, u64), StoreError>> + Send + 'static,
            u64,
        ),
        StoreError,
    > {
        let stream = self.stream_handle().await?;
        let (filter_subject, filter_subjects) = match filters.len() {
            1 => (filters.into_iter().next().unwrap_or_default(), Vec::new()),
            _ => (String::new(), filters),
        };
        let mut consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject,
                filter_subjects,
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(StoreError::nats)?;
        let pending = consumer.info().await.map_err(StoreError::nats)?.num_pending;
        let messages = consumer.messages().await.map_err(StoreError::nats)?;
        let commits = messages.map(|m| {
            let m = m.map_err(StoreError::nats)?;
            let info = m.info().map_err(StoreError::nats)?;
            let (seq, pending) = (info.stream_sequence, info.pending);
            let commit =
                StoredCommit::decode(seq, m.subject.as_str(), m.headers.as_ref(), &m.payload)?;
            Ok((commit, pending))
        });
        Ok((commits, pending))
    }
}
