//! The audit hash chain: `hash = SHA-256(prev_hash || encode(envelope with hash cleared))`,
//! chained per aggregate. Hashes cover the payload bytes as stored (ciphertext for sealed
//! values), so crypto-shredding a key never breaks verification.

use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::Message;
use sha2::{Digest, Sha256};

/// `prev_hash` of an aggregate's first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// Computes the hash of an envelope whose `prev_hash` is already set.
pub fn hash_of(envelope: &Envelope) -> [u8; 32] {
    let mut unhashed = envelope.clone();
    unhashed.hash.clear();
    let mut digest = Sha256::new();
    digest.update(&envelope.prev_hash);
    digest.update(unhashed.encode_to_vec());
    digest.finalize().into()
}

/// Sets `prev_hash` and `hash`, returning the new head of the chain.
pub fn seal(envelope: &mut Envelope, prev: [u8; 32]) -> [u8; 32] {
    envelope.prev_hash = prev.to_vec();
    let hash = hash_of(envelope);
    envelope.hash = hash.to_vec();
    hash
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("event {event_id} (version {version}) does not link to the previous event")]
    BrokenLink { event_id: String, version: u64 },
    #[error("event {event_id} (version {version}) was altered: its hash does not match")]
    Tampered { event_id: String, version: u64 },
}

/// Verifies one aggregate's events in order, returning the head hash.
pub fn verify<'a>(events: impl IntoIterator<Item = &'a Envelope>) -> Result<[u8; 32], ChainError> {
    let mut prev = GENESIS;
    for e in events {
        if e.prev_hash != prev {
            return Err(ChainError::BrokenLink {
                event_id: e.event_id.clone(),
                version: e.aggregate_version,
            });
        }
        let hash = hash_of(e);
        if e.hash != hash {
            return Err(ChainError::Tampered {
                event_id: e.event_id.clone(),
                version: e.aggregate_version,
            });
        }
        prev = hash;
    }
    Ok(prev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<Envelope> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|v| {
                let mut e = Envelope {
                    event_id: format!("e{v}"),
                    aggregate_version: v,
                    payload: vec![v as u8],
                    ..Default::default()
                };
                prev = seal(&mut e, prev);
                e
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert!(verify(&chain(5)).is_ok());
    }

    #[test]
    fn an_altered_payload_is_detected() {
        let mut events = chain(3);
        events[1].payload = vec![42];
        assert_eq!(
            verify(&events),
            Err(ChainError::Tampered {
                event_id: "e2".into(),
                version: 2
            })
        );
    }

    #[test]
    fn a_removed_event_is_detected() {
        let mut events = chain(3);
        events.remove(1);
        assert_eq!(
            verify(&events),
            Err(ChainError::BrokenLink {
                event_id: "e3".into(),
                version: 3
            })
        );
    }
}
