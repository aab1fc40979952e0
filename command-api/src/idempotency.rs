//! `Idempotency-Key`: a retried command returns the first answer and appends nothing.
//!
//! Two layers: the first successful answer is kept in the `AEGIS_IDEMPOTENCY` KV bucket (24 h)
//! and replayed; and the key, as `Nats-Msg-Id`, makes JetStream drop a duplicate append that
//! races the first one inside the 2-minute window.

use crate::error::ApiError;
use async_nats::jetstream::kv;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A client's key, scoped to who sent it and where, with a fingerprint of the request.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// KV key and `Nats-Msg-Id` stem: hex, so always a valid token.
    pub id: String,
    pub fingerprint: String,
}

impl IdempotencyKey {
    pub fn new(raw: &str, scope: &[&str], request: &[u8]) -> Result<Self, ApiError> {
        if raw.is_empty() || raw.len() > 255 || raw.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "Idempotency-Key must be 1 to 255 printable characters",
            ));
        }
        let mut h = Sha256::new();
        for part in scope.iter().chain([&raw]) {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let id = hex::encode(h.finalize());
        let fingerprint = hex::encode(Sha256::digest(request));
        Ok(Self { id, fingerprint })
    }

    pub fn msg_id(&self, part: &str) -> String {
        format!("{}:{part}", self.id)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: serde_json::Value,
    pub position: Option<u64>,
    pub etag: Option<String>,
    pub fingerprint: String,
}

pub async fn lookup(
    store: &kv::Store,
    key: &IdempotencyKey,
) -> Result<Option<StoredAnswer>, ApiError> {
    // The bucket not answering (a lost server, an election) is a reason to retry, not a fault.
    let entry = store.get(&key.id).await.map_err(|e| {
        tracing::warn!(error = %e, "the idempotency bucket did not answer");
        ApiError::unavailable("the idempotency store is unavailable; retry shortly", 1)
    })?;
    let Some(bytes) = entry else { return Ok(None) };
    let answer: StoredAnswer =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(&e))?;
    if answer.fingerprint != key.fingerprint {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request",
        ));
    }
    Ok(Some(answer))
}

pub async fn remember(store: &kv::Store, key: &IdempotencyKey, answer: &StoredAnswer) {
    let result = match serde_json::to_vec(answer) {
        Ok(bytes) => store
            .put(&key.id, bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        // The append already happened; a retry is still deduplicated by Nats-Msg-Id for 2 min.
        tracing::warn!(error = %e, "could not store the idempotent answer");
    }
}
