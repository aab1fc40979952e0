//! Webhook deliveries that exhausted their attempts, kept in `AEGIS_DLQ` on
//! `aegis.dlq.webhooks.<tenant>` (seed 000's `acp:webhook_dlq:{tenant_id}`): listed and
//! replayed over the API. A dead letter's id is its sequence in that stream; a replay that
//! delivers removes it, one that fails leaves it for the next try.

use crate::webhooks::Notification;
use aegis_integrations::webhooks::WebhookKind;
use async_nats::jetstream::{self, consumer};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

pub fn subject(tenant: Uuid) -> String {
    format!("aegis.dlq.webhooks.{tenant}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub webhook_id: Uuid,
    pub webhook_name: String,
    pub kind: WebhookKind,
    pub notification: Notification,
    pub attempts: i64,
    pub error: String,
    pub failed_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
#[error("dead-letter stream: {0}")]
pub struct DeadLetterError(String);

fn err(e: impl std::fmt::Display) -> DeadLetterError {
    DeadLetterError(e.to_string())
}

async fn dlq(js: &jetstream::Context) -> Result<jetstream::stream::Stream, DeadLetterError> {
    js.get_stream(aegis_streams::DLQ_STREAM).await.map_err(err)
}

/// Files a dead letter; the same delivery failing again within the duplicate window is
/// filed once.
pub async fn publish(
    js: &jetstream::Context,
    tenant: Uuid,
    letter: &DeadLetter,
) -> Result<(), DeadLetterError> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "Nats-Msg-Id",
        format!(
            "webhook:{}:{}:{}",
            letter.webhook_id, letter.notification.key, letter.notification.topic
        )
        .as_str(),
    );
    let body = serde_json::to_vec(letter).map_err(err)?;
    js.publish_with_headers(subject(tenant), headers, body.into())
        .await
        .map_err(err)?
        .await
        .map_err(err)?;
    Ok(())
}

/// A page of the tenant's dead letters, oldest first, and how many there are.
pub async fn list(
    js: &jetstream::Context,
    tenant: Uuid,
    limit: usize,
    offset: usize,
) -> Result<(Vec<(u64, DeadLetter)>, u64), DeadLetterError> {
    let stream = dlq(js).await?;
    let mut consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subject(tenant),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(err)?;
    let total = consumer.info().await.map_err(err)?.num_pending;
    let wanted = (offset + limit).min(total as usize);
    let mut out = Vec::new();
    if wanted == 0 {
        return Ok((out, total));
    }
    let mut messages = consumer.messages().await.map_err(err)?;
    for i in 0..wanted {
        let next = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .map_err(|_| err("timed out reading dead letters"))?;
        let Some(m) = next else { break };
        let m = m.map_err(err)?;
        if i < offset {
            continue;
        }
        let seq = m.info().map_err(err)?.stream_sequence;
        out.push((seq, serde_json::from_slice(&m.payload).map_err(err)?));
    }
    Ok((out, total))
}

/// One dead letter of the tenant's; `None` when there is no such one (or it is another
/// tenant's: a sequence number names nothing outside its subject).
pub async fn get(
    js: &jetstream::Context,
    tenant: Uuid,
    id: u64,
) -> Result<Option<DeadLetter>, DeadLetterError> {
    // Stream sequences start at 1: there is no dead letter 0.
    if id == 0 {
        return Ok(None);
    }
    let stream = dlq(js).await?;
    match stream.get_raw_message(id).await {
        Ok(m) if m.subject.as_str() == subject(tenant) => {
            Ok(Some(serde_json::from_slice(&m.payload).map_err(err)?))
        }
        Ok(_) => Ok(None),
        Err(e)
            if matches!(
                e.kind(),
                jetstream::stream::RawMessageErrorKind::NoMessageFound
                    | jetstream::stream::RawMessageErrorKind::InvalidSubject
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(err(e)),
    }
}

/// Removes a dead letter once its replay delivered.
pub async fn remove(js: &jetstream::Context, id: u64) -> Result<(), DeadLetterError> {
    dlq(js).await?.delete_message(id).await.map_err(err)?;
    Ok(())
}
