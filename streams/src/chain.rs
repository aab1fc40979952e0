//! The audit hash chain: `hash = SHA-256(prev_hash || encode(envelope with hash and
//! credential cleared))`, chained per aggregate. Hashes cover the payload bytes as stored, and
//! an event's credential material through its `credential_digest`, so an export can leave the
//! material out and still be verified, and crypto-shredding a key never breaks verification.
//! (An envelope written before `credential` existed encodes the same with it cleared.)

use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::Message;
use sha2::{Digest, Sha256};

/// `prev_hash` of an aggregate's first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// Computes the hash of an envelope whose `prev_hash` is already set.
pub fn hash_of(envelope: &Envelope) -> [u8; 32] {
    let mut unhashed = envelope.clone();
    unhashed.hash.clear();
    unhashed.credential.clear();
    let mut digest = Sha256::new();
    digest.update(&envelope.prev_hash);
    digest.update(unhashed.encode_to_vec());
    digest.finalize().into()
}

/// [`hash_of`] without copying the envelope: the hash is taken out while the rest is encoded
/// into `buf` (reused between calls), then put back.
pub fn hash_in_place(envelope: &mut Envelope, buf: &mut Vec<u8>) -> [u8; 32] {
    let hash = std::mem::take(&mut envelope.hash);
    let credential = std::mem::take(&mut envelope.credential);
    buf.clear();
    // Encoding into a Vec cannot run out of space.
    let _ = envelope.encode(buf);
    envelope.hash = hash;
    envelope.credential = credential;
    let mut digest = Sha256::new();
    digest.update(&envelope.prev_hash);
    digest.update(&buf[..]);
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

/// Where a walk over the log found the chain broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub position: u64,
    pub index: usize,
    pub subject: String,
    pub event_id: String,
    pub version: u64,
    /// `tampered`: the event's hash is not the hash of its content. `broken_link`: its
    /// `prev_hash` is not the hash of the aggregate's previous event (one was removed, inserted
    /// or reordered). `version_gap`: versions do not follow one another.
    pub kind: &'static str,
    pub expected: [u8; 32],
    pub found: Vec<u8>,
}

/// Verifies commits of many aggregates as they come, in log order. An aggregate first seen
/// at version 1 must start at [`GENESIS`]; one first seen later (the walk began after its
/// start) is trusted up to that event and verified from there on.
#[derive(Debug, Default)]
pub struct Walker {
    heads: std::collections::HashMap<String, (u64, [u8; 32])>,
    buf: Vec<u8>,
    pub checked: u64,
}

impl Walker {
    pub fn aggregates(&self) -> usize {
        self.heads.len()
    }

    /// Checks every event of one commit; the first bad one is returned.
    pub fn check(
        &mut self,
        position: u64,
        subject: &str,
        events: &mut [Envelope],
    ) -> Result<(), Box<Break>> {
        for (index, e) in events.iter_mut().enumerate() {
            let brk = |kind, expected: [u8; 32], e: &Envelope, found: &[u8]| {
                Box::new(Break {
                    position,
                    index,
                    subject: subject.to_string(),
                    event_id: e.event_id.clone(),
                    version: e.aggregate_version,
                    kind,
                    expected,
                    found: found.to_vec(),
                })
            };
            let known = self.heads.get(subject).copied();
            let expected_prev = match known {
                Some((version, head)) => {
                    if e.aggregate_version != version + 1 {
                        return Err(brk("version_gap", head, e, &e.prev_hash));
                    }
                    Some(head)
                }
                None if e.aggregate_version <= 1 => Some(GENESIS),
                None => None,
            };
            if let Some(prev) = expected_prev {
                if e.prev_hash != prev {
                    return Err(brk("broken_link", prev, e, &e.prev_hash));
                }
            }
            let hash = hash_in_place(e, &mut self.buf);
            if e.hash != hash {
                return Err(brk("tampered", hash, e, &e.hash));
            }
            // Allocate the subject only the first time an aggregate is seen.
            match self.heads.get_mut(subject) {
                Some(head) => *head = (e.aggregate_version, hash),
                None => {
                    self.heads
                        .insert(subject.to_string(), (e.aggregate_version, hash));
                }
            }
            self.checked += 1;
        }
        Ok(())
    }
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
    fn hashing_in_place_equals_hashing_a_copy() {
        let mut buf = Vec::new();
        for mut e in chain(3) {
            let copy = e.clone();
            assert_eq!(hash_in_place(&mut e, &mut buf), hash_of(&copy));
            assert_eq!(e, copy, "the envelope is left as it was");
        }
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
    fn a_walk_pins_the_first_bad_event_across_aggregates() {
        let (mut a, mut b) = (chain(3), chain(3));
        let mut walker = Walker::default();
        walker.check(1, "a", &mut a[..1]).expect("intact");
        walker.check(2, "b", &mut b[..1]).expect("intact");
        b[1].payload = vec![9];
        walker.check(3, "a", &mut a[1..2]).expect("intact");
        let brk = walker.check(4, "b", &mut b[1..2]).expect_err("tampered");
        assert_eq!((brk.position, brk.kind, brk.version), (4, "tampered", 2));
        assert_eq!(walker.checked, 3);
        // A walk that starts mid-history trusts the first event it sees of an aggregate.
        let mut late = Walker::default();
        late.check(9, "a", &mut a[1..])
            .expect("verified from version 2 on");
        let mut skipped = Walker::default();
        skipped.check(1, "a", &mut a[..1]).expect("intact");
        let brk = skipped.check(2, "a", &mut a[2..]).expect_err("gap");
        assert_eq!(brk.kind, "version_gap");
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
