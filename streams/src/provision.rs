//! Streams and buckets as code. `provision` is idempotent: it creates what is missing, updates
//! a stream whose editable settings drifted, and refuses (with the reason) a drift JetStream
//! cannot apply in place, such as a changed storage type.

use crate::error::StoreError;
use async_nats::jetstream::{self, kv, stream};
use std::time::Duration;

pub const EVENTS_STREAM: &str = "AEGIS_EVENTS";
pub const DLQ_STREAM: &str = "AEGIS_DLQ";
/// The decision log: who asked for what on an audited route, and what was decided.
pub const ACCESS_STREAM: &str = "AEGIS_ACCESS";
/// How long the decision log keeps a record.
pub const ACCESS_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);
/// The most the decision log holds; the oldest records go first past it.
pub const ACCESS_MAX_BYTES: i64 = 8 << 30;
pub const IDEMPOTENCY_BUCKET: &str = "AEGIS_IDEMPOTENCY";
/// Wrapped encryption keys. Deliberately outside the event log: the log is immutable, and
/// destroying a key here is what crypto-shreds the ciphertext the log keeps.
pub const KEYS_BUCKET: &str = "AEGIS_KEYS";
/// The last log position each principal got an answer for: read-your-writes without a header,
/// whichever instance served the write.
pub const POSITIONS_BUCKET: &str = "AEGIS_POSITIONS";

/// How long a command's `Nats-Msg-Id` deduplicates retries (DESIGN.md: 2 minutes).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long a stored answer to an `Idempotency-Key` is replayed.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a principal's last write position is kept. Read models apply a commit within
/// milliseconds; a principal silent this long reads without waiting for anything.
pub const POSITIONS_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// 1 on one machine, 3 in a cluster.
    pub replicas: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self { replicas: 1 }
    }
}

/// The name of the event stream. One function, so the log can later be partitioned by tenant
/// hash (`AEGIS_EVENTS_<n>`) without touching callers.
pub fn events_stream_name() -> &'static str {
    EVENTS_STREAM
}

pub fn events_config(settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: events_stream_name().to_string(),
        description: Some("Aegis event log: one message is one command's commit".into()),
        subjects: vec![format!("{}.>", crate::subject::EVENT_PREFIX)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        num_replicas: settings.replicas,
        duplicate_window: DUPLICATE_WINDOW,
        deny_delete: true,
        deny_purge: true,
        allow_direct: true,
        ..Default::default()
    }
}

pub fn dlq_config(settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: DLQ_STREAM.to_string(),
        description: Some("Reactor work that exhausted its retries".into()),
        subjects: vec!["aegis.dlq.>".into()],
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

pub fn access_config(settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: ACCESS_STREAM.to_string(),
        description: Some("Aegis decision log: batches of access decisions, per tenant".into()),
        subjects: vec!["aegis.access.>".into()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: ACCESS_RETENTION,
        max_bytes: ACCESS_MAX_BYTES,
        num_replicas: settings.replicas,
        duplicate_window: DUPLICATE_WINDOW,
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// The settings of `have` that differ from `want`, among those this code owns.
fn drift(want: &stream::Config, have: &stream::Config) -> Vec<String> {
    let mut out = Vec::new();
    macro_rules! cmp {
        ($field:ident) => {
            if want.$field != have.$field {
                out.push(format!(
                    "{}: {:?} (want {:?})",
                    stringify!($field),
                    have.$field,
                    want.$field
                ));
            }
        };
    }
    cmp!(subjects);
    cmp!(storage);
    cmp!(num_replicas);
    cmp!(duplicate_window);
    cmp!(deny_delete);
    cmp!(deny_purge);
    cmp!(allow_direct);
    out
}

async fn ensure_stream(js: &jetstream::Context, want: stream::Config) -> Result<(), StoreError> {
    match js.get_stream(&want.name).await {
        Ok(mut existing) => {
            let have = existing
                .info()
                .await
                .map_err(StoreError::nats)?
                .config
                .clone();
            let drifted = drift(&want, &have);
            if drifted.is_empty() {
                return Ok(());
            }
            if want.storage != have.storage {
                return Err(StoreError::Drift {
                    stream: want.name.clone(),
                    detail: format!("{}; storage cannot change in place", drifted.join(", ")),
                });
            }
            tracing::warn!(stream = %want.name, drift = %drifted.join(", "), "updating drifted stream");
            let name = want.name.clone();
            js.update_stream(want)
                .await
                .map_err(|e| StoreError::Drift {
                    stream: name,
                    detail: format!("{}; update refused: {e}", drifted.join(", ")),
                })?;
            Ok(())
        }
        Err(e) => match e.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(js_err)
                if js_err.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                js.create_stream(want).await.map_err(StoreError::nats)?;
                Ok(())
            }
            _ => Err(StoreError::nats(e)),
        },
    }
}

/// Creates or reconciles every stream and bucket Aegis needs.
/// A refusal to place a stream, said in terms of the setting that asked for it.
fn placement(e: StoreError, replicas: usize) -> StoreError {
    match e {
        StoreError::Nats(detail)
            if detail.contains("no suitable peers")
                || detail.contains("non-clustered")
                || detail.contains("insufficient resources") =>
        {
            StoreError::Replicas { replicas, detail }
        }
        other => other,
    }
}

pub async fn provision(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<(), StoreError> {
    // The first stream tells whether the servers can hold the replica count at all.
    ensure_stream(js, events_config(settings))
        .await
        .map_err(|e| placement(e, settings.replicas))?;
    ensure_stream(js, dlq_config(settings)).await?;
    ensure_stream(js, access_config(settings)).await?;
    // One revision per key in every bucket: a newer answer, position or wrapped key leaves
    // no older copy behind (for keys, a rewrap or a purge must not).
    let buckets = [
        (
            IDEMPOTENCY_BUCKET,
            "Answers to commands sent with an Idempotency-Key",
            IDEMPOTENCY_TTL,
        ),
        (
            POSITIONS_BUCKET,
            "The last log position each principal was answered with",
            POSITIONS_TTL,
        ),
        (
            KEYS_BUCKET,
            "Wrapped data keys: destroying one crypto-shreds what it sealed",
            Duration::ZERO,
        ),
    ];
    for (bucket, description, max_age) in buckets {
        js.create_or_update_key_value(kv::Config {
            bucket: bucket.into(),
            description: description.into(),
            max_age,
            history: 1,
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            ..Default::default()
        })
        .await
        .map_err(StoreError::nats)?;
    }
    Ok(())
}
