//! Appending through a leader election: a publish the stream could not take (no leader, a
//! lost server, a dropped connection) is sent again, the same message with the same id, until
//! a leader answers or the wait is over.

use super::EventStore;
use async_nats::jetstream::{self, context::PublishErrorKind};
use std::time::Duration;

/// Whether a publish lost to another append on the same subject (`crate::lost_race`).
pub(super) fn wrong_last_sequence(e: &jetstream::context::PublishError) -> bool {
    e.kind() == PublishErrorKind::WrongLastSequence || crate::lost_race(&e.to_string())
}

/// How long an append waits for a stream leader (JetStream elects one in a few seconds) before
/// the command is answered 503.
const ELECTION_WAIT: Duration = Duration::from_secs(6);

impl EventStore {
    /// Publishes, and publishes the same message again while the stream has no leader to answer
    /// (an election, a lost server, a dropped connection), for at most [`ELECTION_WAIT`]: the
    /// message id makes a repeat of a publish that did land a duplicate, not a second commit.
    /// Refusals (a wrong last sequence, a message too large) are answered at once.
    pub(super) async fn publish_through_elections(
        &self,
        subject: &str,
        publish: jetstream::message::PublishMessage,
    ) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
        let deadline = tokio::time::Instant::now() + ELECTION_WAIT;
        let mut pause = Duration::from_millis(50);
        let client = self.js.client();
        loop {
            // Without a connection, nothing is handed to the client at all: it would hold the
            // message and send it once it reconnects, after this command was answered 503, so
            // a command the caller saw refused would land later.
            let attempt = if client.connection_state() != async_nats::connection::State::Connected {
                Err(jetstream::context::PublishError::new(
                    PublishErrorKind::BrokenPipe,
                ))
            } else {
                match self
                    .js
                    .send_publish(subject.to_string(), publish.clone())
                    .await
                {
                    Ok(ack) => ack.await,
                    Err(e) => Err(e),
                }
            };
            match attempt {
                Err(e)
                    if !wrong_last_sequence(&e)
                        && !matches!(
                            e.kind(),
                            PublishErrorKind::WrongLastMessageId
                                | PublishErrorKind::MaxPayloadExceeded
                        )
                        && tokio::time::Instant::now() + pause < deadline =>
                {
                    tracing::debug!(error = %e, "the stream did not take the append; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(800));
                }
                other => return other,
            }
        }
    }
}
