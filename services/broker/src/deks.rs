//! Data keys for agents' wire envelopes. Each call makes a fresh 256-bit key, wraps it under a
//! key of the agent's own in the tenant's hierarchy (so only this tenant, for this agent, can
//! unwrap it), records the issue on the log, and only then answers: sealed to the agent's wire
//! key when it registered one (HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! ChaCha20-Poly1305), else in the clear inside TLS.

use crate::wire;
use crate::BrokerError;
use aegis_broker::deks::{Command, Dek, DekAggregate, Delivery};
use aegis_kernel::Sealed;
use aegis_runtime::command::CommandContext;
use aegis_runtime::keys::KeyError;
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeS, Serializable};
use rand::rngs::OsRng;
use rand::RngCore;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The HPKE suite a sealed data key uses, as RFC 9180 names its parts.
pub const SUITE: &str = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305";
/// HPKE `info`: binds the seal to this use; the `aad` is the key id.
pub const INFO: &[u8] = b"aegis/broker/dek/v1";
/// What an agent encrypts an envelope with under a data key (a 96-bit random nonce each).
pub const CIPHER: &str = "chacha20-poly1305";

/// A data key as it leaves: its id, its wrapped form (what the agent sends back with an
/// envelope), and the key itself as it travels.
pub struct Issued {
    pub key_id: String,
    pub wrapped: String,
    pub delivered: Delivered,
    /// The log position of the issue record.
    pub position: u64,
}

pub enum Delivered {
    /// HPKE: the encapsulated key and the sealed data key.
    Sealed {
        enc: Vec<u8>,
        ciphertext: Vec<u8>,
        wire_key_fingerprint: String,
    },
    /// No wire key registered: the data key itself.
    Clear(Zeroizing<[u8; 32]>),
}

/// The key-store secret whose key wraps an agent's data keys.
fn wrapping_secret(agent: Uuid) -> String {
    format!("broker/agent/{agent}/dek")
}

/// Issues a data key to `agent`, sealed to `wire_key` when it has one.
pub async fn issue(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    agent: Uuid,
    wire_key: Option<[u8; 32]>,
) -> Result<Issued, BrokerError> {
    let key_id = format!("dek_{}", Uuid::now_v7().simple());
    let mut dek = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(dek.as_mut());
    // The key id is sealed with the key: a wrapped key presented under another id is refused.
    let mut bound = Zeroizing::new(Vec::with_capacity(key_id.len() + 33));
    bound.extend_from_slice(key_id.as_bytes());
    bound.push(0);
    bound.extend_from_slice(dek.as_ref());
    let sealed = rt
        .keys
        .seal(tenant, &wrapping_secret(agent), 1, &bound)
        .await?;
    let wrapped = format!(
        "{}.{}",
        STANDARD.encode(&sealed.nonce),
        STANDARD.encode(&sealed.ciphertext)
    );
    let delivered = match wire_key {
        Some(pk) => seal_to(&pk, &key_id, &dek)?,
        None => Delivered::Clear(dek),
    };
    let delivery = match &delivered {
        Delivered::Sealed {
            wire_key_fingerprint,
            ..
        } => Delivery::Hpke {
            wire_key_fingerprint: wire_key_fingerprint.clone(),
        },
        Delivered::Clear(_) => Delivery::Clear,
    };
    // Recorded before the key leaves.
    let agg =
        address::<DekAggregate>(tenant, key_id.clone()).map_err(|e| BrokerError::Dek(e.into()))?;
    let done = rt
        .executor
        .execute::<DekAggregate>(
            &agg,
            &Command::Issue(Dek {
                agent_id: agent,
                delivery,
            }),
            ctx,
            true,
        )
        .await?;
    Ok(Issued {
        key_id,
        wrapped,
        delivered,
        position: done.position,
    })
}

/// The data key `wrapped` holds and its id, if it is one issued to `agent` (under `key_id`,
/// when the caller names one): the wrapping key is the agent's own and the id is sealed with
/// the key, so another agent's key, another tenant's, an altered one or one presented under
/// another id all fail to open. secrets-bridge agents send no id; the sealed one serves.
pub async fn unwrap(
    rt: &Runtime,
    tenant: Uuid,
    agent: Uuid,
    key_id: Option<&str>,
    wrapped: &str,
) -> Result<(String, Zeroizing<[u8; 32]>), BrokerError> {
    let refused = || {
        BrokerError::BadEnvelope(
            "the wrapped data key does not open: not issued to this agent under this key id, or altered"
                .into(),
        )
    };
    let (nonce, ciphertext) = wrapped.split_once('.').ok_or_else(refused)?;
    let sealed = Sealed {
        nonce: STANDARD.decode(nonce).map_err(|_| refused())?,
        ciphertext: STANDARD.decode(ciphertext).map_err(|_| refused())?,
    };
    let bound = match rt
        .keys
        .open(tenant, &wrapping_secret(agent), 1, &sealed)
        .await
    {
        Ok(b) => b,
        Err(KeyError::Tampered | KeyError::Shredded) => return Err(refused()),
        Err(e) => return Err(e.into()),
    };
    let split = bound
        .iter()
        .position(|b| *b == 0)
        .filter(|at| bound.len() == at + 33)
        .ok_or_else(refused)?;
    let sealed_id = std::str::from_utf8(&bound[..split]).map_err(|_| refused())?;
    if key_id.is_some_and(|k| k != sealed_id) {
        return Err(refused());
    }
    let mut dek = Zeroizing::new([0u8; 32]);
    dek.copy_from_slice(&bound[split + 1..]);
    Ok((sealed_id.to_string(), dek))
}

/// Seals `dek` to the agent's wire key (HPKE base mode, the key id as associated data).
fn seal_to(pk: &[u8; 32], key_id: &str, dek: &[u8; 32]) -> Result<Delivered, BrokerError> {
    let recipient = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(pk)
        .map_err(|e| BrokerError::WireKey(e.to_string()))?;
    let (enc, ciphertext) =
        hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256, _>(
            &OpModeS::Base,
            &recipient,
            INFO,
            dek,
            key_id.as_bytes(),
            &mut OsRng,
        )
        .map_err(|e| BrokerError::WireKey(e.to_string()))?;
    Ok(Delivered::Sealed {
        enc: enc.to_bytes().to_vec(),
        ciphertext,
        wire_key_fingerprint: wire::fingerprint(pk),
    })
}
