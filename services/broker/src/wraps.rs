//! Single-shot wraps (seed 004): an agent hands over a value for an access request it holds
//! approved work on; it is retrieved exactly once.
//!
//! The value is sealed at once under a key of the wrap's own and only the sealed form reaches
//! the log. A retrieval opens it, then asks the wrap's history (an expected-sequence append,
//! so instances agree) whether it is the first; the first gets the value, every other attempt
//! is refused and recorded with why. The key of a spent wrap (retrieved, or expired) is
//! destroyed right after and that is recorded too; the expiry pass finishes whatever a crash
//! left undone.

use crate::{deks, jobs, BrokerError};
use aegis_broker::wraps::{
    Command, NewWrap, Refusal, Retrieval, Source, Via, Wrap, WrapAggregate, WrapError,
};
use aegis_runtime::command::{CommandContext, CommandError};
use aegis_runtime::keys::KeyError;
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_streams::AggregateRef;
use aes_gcm::Aes256Gcm;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use chrono::Utc;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The largest value a wrap holds (a Kubernetes Secret's key, a database password: small).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// How long a wrap waits for its retrieval unless the agent asks for less or more.
pub const DEFAULT_TTL_SECS: u64 = 600;
/// The longest a value may wait: past it, unretrieved, it is refused as expired.
pub const MAX_TTL_SECS: u64 = 3600;

/// What an agent sent an envelope as: the data key's wrapped form (from `POST .../dek`), its id
/// when the agent names it, and the value encrypted under that key.
pub struct Envelope {
    pub cipher: EnvelopeCipher,
    pub key_id: Option<String>,
    pub wrapped_dek: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// How an envelope's value is encrypted under its data key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeCipher {
    /// Aegis's own: ChaCha20-Poly1305, the key id as associated data (binds the ciphertext to
    /// its key).
    ChaCha20Poly1305,
    /// secrets-bridge agents': AES-256-GCM, no associated data.
    Aes256Gcm,
}

pub enum Posted {
    Value(Zeroizing<Vec<u8>>),
    Envelope(Envelope),
}

pub struct NewPosting {
    pub request_id: String,
    pub key_name: String,
    pub posted: Posted,
    pub ttl_secs: u64,
}

/// A wrap as it was made: everything but the value.
pub struct Created {
    pub wrap_id: Uuid,
    pub wrap: NewWrap,
    pub position: u64,
}

/// The one retrieval that got the value.
pub struct Retrieved {
    pub wrap: Wrap,
    pub value: Zeroizing<Vec<u8>>,
    pub position: u64,
}

/// Where one wrap's history lives.
fn wrap_ref(tenant: Uuid, wrap_id: Uuid) -> Result<AggregateRef, BrokerError> {
    address::<WrapAggregate>(tenant, wrap_id.to_string()).map_err(|e| BrokerError::Wrap(e.into()))
}

/// The key-store secret whose key seals one wrap's value.
fn wrap_secret(wrap: Uuid) -> String {
    format!("broker/wrap/{wrap}")
}

fn refused(reason: Refusal, position: Option<u64>) -> BrokerError {
    BrokerError::WrapRefused { reason, position }
}

/// Makes a wrap of the value `agent` posted for a request it holds approved work on.
pub async fn create(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    agent: Uuid,
    posting: NewPosting,
) -> Result<Created, BrokerError> {
    if !jobs::holds_request(rt, tenant, agent, &posting.request_id).await? {
        return Err(refused(Refusal::NotApproved, None));
    }
    let (value, source) = match posting.posted {
        Posted::Value(v) => (v, Source::Value),
        Posted::Envelope(e) => {
            let (dek_key_id, value) = open_envelope(rt, tenant, agent, &e).await?;
            (value, Source::Envelope { dek_key_id })
        }
    };
    let ttl_ms = posting.ttl_secs.clamp(1, MAX_TTL_SECS) as i64 * 1000;
    let made = Making {
        request_id: posting.request_id,
        key_name: posting.key_name,
        agent,
        source,
        ttl_ms,
    };
    make(rt, ctx, tenant, made, &value).await
}

/// A wrap about to be made, but for its value.
pub(crate) struct Making {
    pub request_id: String,
    pub key_name: String,
    /// Who posted it: nil when Aegis made it from a patch request.
    pub agent: Uuid,
    pub source: Source,
    pub ttl_ms: i64,
}

/// Seals `value` under a new wrap's own key and records the wrap.
pub(crate) async fn make(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    making: Making,
    value: &[u8],
) -> Result<Created, BrokerError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(BrokerError::BadEnvelope(format!(
            "the value is {} bytes; a wrap holds at most {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    let wrap_id = Uuid::now_v7();
    let sealed = rt
        .keys
        .seal_first(tenant, &wrap_secret(wrap_id), value)
        .await?;
    let mac_key = rt.keys.mac_key(tenant, "broker.wrap").await?;
    let wrap = NewWrap {
        expires_at: Utc::now().timestamp_millis() + making.ttl_ms,
        request_id: making.request_id,
        key_name: making.key_name,
        agent: making.agent,
        byte_length: value.len() as u64,
        source: making.source,
        sealed,
        content_mac: crate::keyed_digest(&mac_key, value),
    };
    // The wrap's records belong to its request's trail.
    let ctx = crate::correlated(ctx, &wrap.request_id);
    let agg = wrap_ref(tenant, wrap_id)?;
    let done = rt
        .executor
        .execute::<WrapAggregate>(&agg, &Command::Create(wrap.clone()), &ctx, true)
        .await?;
    Ok(Created {
        wrap_id,
        wrap,
        position: done.position,
    })
}

/// Opens an agent's envelope: its data key must be one issued to this agent under that id,
/// and the ciphertext must be what that key sealed.
async fn open_envelope(
    rt: &Runtime,
    tenant: Uuid,
    agent: Uuid,
    e: &Envelope,
) -> Result<(String, Zeroizing<Vec<u8>>), BrokerError> {
    let (key_id, dek) =
        deks::unwrap(rt, tenant, agent, e.key_id.as_deref(), &e.wrapped_dek).await?;
    if e.nonce.len() != 12 {
        return Err(BrokerError::BadEnvelope(
            "the envelope's nonce is not 12 bytes".into(),
        ));
    }
    let nonce = chacha20poly1305::Nonce::from_slice(&e.nonce);
    let opened = match e.cipher {
        EnvelopeCipher::ChaCha20Poly1305 => ChaCha20Poly1305::new(dek.as_ref().into()).decrypt(
            nonce,
            Payload {
                msg: &e.ciphertext,
                aad: key_id.as_bytes(),
            },
        ),
        EnvelopeCipher::Aes256Gcm => {
            Aes256Gcm::new(dek.as_ref().into()).decrypt(nonce, e.ciphertext.as_slice())
        }
    };
    let value = opened.map(Zeroizing::new).map_err(|_| {
        BrokerError::BadEnvelope(
            "the envelope does not open under its data key: altered, or sealed with another key or key id"
                .into(),
        )
    })?;
    Ok((key_id, value))
}

/// The wrap as it stands, for a caller with approved work on its request; retrieves nothing
/// and records nothing (`HEAD`).
pub async fn peek(
    rt: &Runtime,
    tenant: Uuid,
    wrap_id: Uuid,
    agent: Uuid,
) -> Result<Wrap, BrokerError> {
    let wrap = load(rt, tenant, wrap_id).await?;
    let approved = jobs::holds_request(rt, tenant, agent, &wrap.new.request_id).await?;
    let look = Retrieval {
        attempt: Uuid::nil(),
        via: Via::Agent,
        approved,
        now: Utc::now().timestamp_millis(),
    };
    match wrap.refusal(&look) {
        Some(reason) => Err(refused(reason, None)),
        None => Ok(wrap),
    }
}

pub(crate) async fn load(rt: &Runtime, tenant: Uuid, wrap_id: Uuid) -> Result<Wrap, BrokerError> {
    let agg = wrap_ref(tenant, wrap_id)?;
    let (state, _) = rt.executor.load::<WrapAggregate>(&agg).await?;
    state.ok_or(BrokerError::Wrap(CommandError::Domain(WrapError::NotFound)))
}

/// Retrieves the wrap through the agent route (the patch flow): the value for the first
/// approved attempt before it expires, a recorded refusal for every other.
pub async fn retrieve_as_agent(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    wrap_id: Uuid,
    agent: Uuid,
) -> Result<Retrieved, BrokerError> {
    let agg = wrap_ref(tenant, wrap_id)?;
    // What a retrieval reads before deciding (request, sealed value) never changes once made,
    // so a cached state serves; whether it is still there is the append's to decide.
    let wrap = match rt.executor.peek::<WrapAggregate>(&agg.subject()).flatten() {
        Some(w) => w,
        None => load(rt, tenant, wrap_id).await?,
    };
    let approved = jobs::holds_request(rt, tenant, agent, &wrap.new.request_id).await?;
    retrieve(rt, ctx, tenant, wrap_id, wrap, Via::Agent, approved).await
}

pub(crate) async fn retrieve(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    wrap_id: Uuid,
    wrap: Wrap,
    via: Via,
    approved: bool,
) -> Result<Retrieved, BrokerError> {
    let retrieval = Retrieval {
        attempt: Uuid::now_v7(),
        via,
        approved,
        now: Utc::now().timestamp_millis(),
    };
    let secret = wrap_secret(wrap_id);
    // The value is opened before the decision, so the winner never finds it gone; a loser's
    // copy is dropped (zeroed) unread. A key already destroyed means another instance won.
    let opened = match wrap.refusal(&retrieval) {
        None => match rt.keys.open(tenant, &secret, 1, &wrap.new.sealed).await {
            Ok(v) => Some(v),
            Err(KeyError::Shredded) => None,
            Err(e) => return Err(e.into()),
        },
        Some(_) => None,
    };
    // Every attempt is its own record: a retry id must not fold a refusal into the winner's.
    let ctx = CommandContext {
        msg_id: None,
        if_match: None,
        ..crate::correlated(ctx, &wrap.new.request_id)
    };
    let agg = wrap_ref(tenant, wrap_id)?;
    let done = rt
        .executor
        .execute::<WrapAggregate>(&agg, &Command::Retrieve(retrieval.clone()), &ctx, false)
        .await?;
    let state = done
        .state
        .ok_or(BrokerError::Wrap(CommandError::Domain(WrapError::NotFound)))?;
    if state.retrieved_by == Some(retrieval.attempt) {
        let value = match opened {
            Some(v) => v,
            // Decided first on a state that was already out of date; open now.
            None => rt.keys.open(tenant, &secret, 1, &state.new.sealed).await?,
        };
        // The retrieval is decided and durable; the key goes right after the answer.
        destroy_key_soon(rt, tenant, wrap_id);
        return Ok(Retrieved {
            wrap: state,
            value,
            position: done.position,
        });
    }
    let reason = state.refusal(&retrieval).unwrap_or(Refusal::Consumed);
    if reason == Refusal::Expired && !state.key_destroyed {
        // Nobody will ever have it: the value goes now.
        destroy_key_soon(rt, tenant, wrap_id);
    }
    Err(refused(reason, Some(done.position)))
}

/// Destroys a spent wrap's key, then records that it did (`wrap.key_destroyed.v1`).
async fn destroy_key(rt: &Runtime, tenant: Uuid, wrap_id: Uuid) -> Result<(), BrokerError> {
    rt.keys
        .destroy_secret(tenant, &wrap_secret(wrap_id))
        .await?;
    let agg = wrap_ref(tenant, wrap_id)?;
    let ctx = CommandContext::system("wrap-keys");
    rt.executor
        .execute::<WrapAggregate>(&agg, &Command::RecordKeyDestroyed, &ctx, false)
        .await?;
    Ok(())
}

/// [`destroy_key`] after the answer has gone: its caller must not wait on a second fsync'd
/// write. A key this leaves (a crash, a store that refuses) is the expiry pass's to destroy.
fn destroy_key_soon(rt: &Runtime, tenant: Uuid, wrap_id: Uuid) {
    let rt = rt.clone();
    tokio::spawn(async move {
        // The losers of the retrieval are appending their refusals to the same subject right
        // now: a record that loses to them a few times in a row tries again shortly after.
        for attempt in 1..=5u64 {
            match destroy_key(&rt, tenant, wrap_id).await {
                Ok(()) => return,
                Err(BrokerError::Wrap(CommandError::Contended)) if attempt < 5 => {
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => {
                    tracing::warn!(%tenant, %wrap_id, error = %e, "a spent wrap's key is not destroyed yet; the expiry pass will");
                    return;
                }
            }
        }
    });
}

/// Ends up to `batch` wraps whose time ran out unretrieved, oldest first: each is recorded
/// (`wrap.expired.v1`) and its key destroyed, so its value can never be opened again. Answers
/// how many were ended.
pub async fn expire_due(rt: &Runtime, batch: i64) -> Result<usize, BrokerError> {
    let due: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT tenant_id, id FROM broker_wraps WHERE retrieved_at IS NULL AND expired_at IS NULL \
         AND expires_at <= now() ORDER BY expires_at LIMIT $1",
    )
    .bind(batch)
    .fetch_all(&rt.pool)
    .await?;
    let ctx = CommandContext::system("wrap-expiry");
    let mut ended = 0;
    for (tenant, id) in due {
        let Ok(wrap_id) = Uuid::parse_str(&id) else {
            continue;
        };
        let agg = wrap_ref(tenant, wrap_id)?;
        let command = Command::Expire {
            now: Utc::now().timestamp_millis(),
        };
        let done = rt
            .executor
            .execute::<WrapAggregate>(&agg, &command, &ctx, false)
            .await?;
        if done.appended {
            destroy_key(rt, tenant, wrap_id).await?;
            ended += 1;
        }
    }
    Ok(ended)
}

/// Destroys the keys of up to `batch` wraps spent a while ago (retrieved or expired) whose
/// destruction is not on the log: what a crash or a failing key store left behind a
/// retrieval. Answers how many.
pub async fn destroy_spent_keys(rt: &Runtime, batch: i64) -> Result<usize, BrokerError> {
    let spent: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT tenant_id, id FROM broker_wraps WHERE key_destroyed_at IS NULL \
         AND (retrieved_at IS NOT NULL OR expired_at IS NOT NULL) \
         AND coalesce(retrieved_at, expired_at) < now() - interval '30 seconds' LIMIT $1",
    )
    .bind(batch)
    .fetch_all(&rt.pool)
    .await?;
    let mut destroyed = 0;
    for (tenant, id) in spent {
        if let Ok(wrap_id) = Uuid::parse_str(&id) {
            destroy_key(rt, tenant, wrap_id).await?;
            destroyed += 1;
        }
    }
    Ok(destroyed)
}
