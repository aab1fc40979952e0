//! Errors of the event log. A sequence conflict is not a failure of the system: callers reload
//! and decide again, so it has its own variant apart from infrastructure errors.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("JetStream request failed: {0}")]
    Nats(String),
    /// The bytes at `position` are no commit: corrupted on disk, or written by something else.
    #[error("the commit at position {position} does not decode: {reason}")]
    Decode { position: u64, reason: String },
    #[error(
        "stream `{stream}` exists with a configuration that cannot be changed in place: {detail}"
    )]
    Drift { stream: String, detail: String },
    /// The servers cannot place a stream at the configured replica count.
    #[error(
        "AEGIS_STREAM_REPLICAS={replicas} cannot be held here: a stream at R{replicas} needs \
         {replicas} JetStream servers in one cluster ({detail})"
    )]
    Replicas { replicas: usize, detail: String },
}

/// Whether a refused write (an append, a key-value create or update) says it lost a race with
/// another writer. Besides the code the client classifies (10071), the server answers the same
/// refusal with 10164 ("wrong last sequence"), which a clustered key-value update was seen to
/// send and the client files under "other": the text is what both share.
pub fn lost_race(error: &str) -> bool {
    error.contains("wrong last sequence")
}

impl StoreError {
    pub fn nats(e: impl std::fmt::Display) -> Self {
        Self::Nats(e.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Someone appended to the aggregate after the state the decision was made on.
    #[error("the aggregate moved on since it was loaded")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}
