//! Errors of the event log. A sequence conflict is not a failure of the system: callers reload
//! and decide again, so it has its own variant apart from infrastructure errors.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("JetStream request failed: {0}")]
    Nats(String),
    #[error("a stored commit does not decode: {0}")]
    Decode(String),
    #[error(
        "stream `{stream}` exists with a configuration that cannot be changed in place: {detail}"
    )]
    Drift { stream: String, detail: String },
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
