//! The audit export bundle and its offline verification: what `GET /audit/export` produces and
//! `aegis verify-audit` checks with nothing but the bundle and the public key. Every event's
//! hash is recomputed from its bytes, its inclusion proven against a checkpoint's Merkle root,
//! and every checkpoint's signature checked.

use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::Message;
use aegis_streams::chain::hash_of;
use aegis_streams::merkle::{self, checkpoint_message, leaf};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "aegis-audit-bundle/v1";

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BundleCheckpoint {
    pub from: u64,
    pub to: u64,
    pub count: u64,
    /// Hex.
    pub root: String,
    /// Hex Ed25519 signature over the range, count and root.
    pub signature: String,
    pub key_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BundleEvent {
    pub position: u64,
    pub index: usize,
    /// Which of the bundle's checkpoints covers it.
    pub checkpoint: usize,
    /// Its leaf in that checkpoint's tree.
    pub leaf: usize,
    /// Hex sibling hashes from the leaf up.
    pub proof: Vec<String>,
    /// The envelope as stored, protobuf in base64; without its payload when
    /// `payload_withheld`.
    pub envelope: String,
    /// The payload holds credential material (a password hash, a key digest, a sealed value)
    /// and was left out: the event's hash is proven by the checkpoint, its content is not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub payload_withheld: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Bundle {
    pub format: String,
    pub tenant_id: String,
    /// Base64 Ed25519 public key the checkpoints are signed with (informative: verification
    /// takes the key from the operator, not from the bundle).
    pub public_key: String,
    pub checkpoints: Vec<BundleCheckpoint>,
    pub events: Vec<BundleEvent>,
    /// Events in the range not yet covered by a checkpoint, left out.
    pub unsealed: u64,
    /// Where the next page starts (`?from=`), when this one stopped before `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_from: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    pub events: usize,
    pub checkpoints: usize,
    /// Events whose payload was withheld (credential material): proven included, not read.
    pub withheld: usize,
}

fn hex32(s: &str, what: &str) -> Result<[u8; 32], String> {
    hex::decode(s)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| format!("{what} is not a 32-byte hex value"))
}

/// Verifies a bundle against `public_key` (base64); the error names the first failure.
pub fn verify(bundle: &Bundle, public_key: &str) -> Result<Report, String> {
    if bundle.format != FORMAT {
        return Err(format!("not an {FORMAT} bundle: {}", bundle.format));
    }
    let key_bytes: [u8; 32] = B64
        .decode(public_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the public key must be base64 of 32 bytes")?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|e| format!("public key: {e}"))?;
    let mut roots = Vec::new();
    for (i, c) in bundle.checkpoints.iter().enumerate() {
        let root = hex32(&c.root, "a checkpoint root")?;
        let signature = hex::decode(&c.signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or_else(|| format!("checkpoint {i}: malformed signature"))?;
        key.verify(
            &checkpoint_message(c.from, c.to, c.count, &root),
            &signature,
        )
        .map_err(|_| {
            format!(
                "checkpoint {i} (positions {}..={}): the signature does not verify with this key",
                c.from, c.to
            )
        })?;
        roots.push(root);
    }
    for e in &bundle.events {
        let what = format!("event at {}.{}", e.position, e.index);
        let bytes = B64
            .decode(&e.envelope)
            .map_err(|_| format!("{what}: envelope is not base64"))?;
        let env = Envelope::decode(bytes.as_slice()).map_err(|err| format!("{what}: {err}"))?;
        if e.payload_withheld && !aegis_schemas::events::carries_credentials(&env.event_type) {
            return Err(format!(
                "{what}: its payload is withheld, but {} carries no credential material",
                env.event_type
            ));
        }
        if e.payload_withheld && !env.payload.is_empty() {
            return Err(format!("{what}: altered, a withheld payload is present"));
        }
        if !e.payload_withheld && env.hash != hash_of(&env) {
            return Err(format!(
                "{what}: altered, its content does not match its hash"
            ));
        }
        let c = bundle
            .checkpoints
            .get(e.checkpoint)
            .ok_or_else(|| format!("{what}: names no checkpoint of the bundle"))?;
        if e.position < c.from || e.position > c.to {
            return Err(format!("{what}: outside its checkpoint's range"));
        }
        let proof = e
            .proof
            .iter()
            .map(|p| hex32(p, "a proof hash"))
            .collect::<Result<Vec<_>, _>>()?;
        if !merkle::verify(
            &leaf(&env.hash),
            e.leaf,
            c.count as usize,
            &proof,
            &roots[e.checkpoint],
        ) {
            return Err(format!(
                "{what}: not included in checkpoint {}",
                e.checkpoint
            ));
        }
    }
    Ok(Report {
        events: bundle.events.len(),
        checkpoints: bundle.checkpoints.len(),
        withheld: bundle.events.iter().filter(|e| e.payload_withheld).count(),
    })
}
