//! Read-your-writes without a header. Every answer to a write carries the log position of its
//! commit; this remembers, per principal, the highest position a principal was answered with,
//! in the JetStream KV bucket `AEGIS_POSITIONS`, so that whichever instance serves that
//! principal's next read waits (bounded) until the read models it reads have applied it.
//!
//! Why a per-principal position and not the log head: waiting for the head makes every read
//! wait for everybody's writes, so under write load every reader pays the projection lag.
//! Waiting for one's own last write costs a reader who wrote nothing one KV read, and a reader
//! who did write at most the lag of that write. Why KV and not instance memory: a client behind
//! a load balancer writes through one instance and reads through another.

use crate::group_commit::{GroupCommit, GroupError};
use aegis_streams::StoreError;
use async_nats::jetstream::kv;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The header that carries the log position of a write's commit on its answer, and that a
/// reader may send back as `Aegis-Min-Position`'s value.
pub const POSITION_HEADER: &str = "aegis-position";

/// How often a position is tried again when another answer to the same principal stored one
/// in between.
const ATTEMPTS: usize = 8;

/// How many principals' recorded positions an instance remembers; past it, it forgets them
/// all (and records each again once).
const REMEMBERED: usize = 100_000;
/// How long a position this instance recorded is trusted to still be in the bucket (well
/// inside the bucket's TTL).
const TRUSTED: Duration = Duration::from_secs(600);
/// How long after a write through this instance its principal counts as a recent writer,
/// whose next read waits before it queries instead of querying while the position is read.
const RECENT: Duration = Duration::from_secs(10);

/// What the bucket holds for a principal, measured against a position to record.
#[derive(Clone, Copy)]
enum Stored {
    /// No key: create it.
    Nothing,
    /// A lower position, at this revision: update it there.
    Below(u64),
    /// That position or a higher one: nothing to record.
    Holds,
}

/// What this instance recorded for one principal.
#[derive(Clone, Copy)]
struct Recorded {
    position: u64,
    /// The bucket revision that holds `position`: the next write updates it in one round trip.
    revision: u64,
    at: Instant,
}

#[derive(Clone)]
pub struct Positions {
    kv: kv::Store,
    /// The highest position this instance recorded per principal, and when: a write answered
    /// below it needs no round trip (the bucket only ever holds a higher one).
    recorded: Arc<Mutex<HashMap<String, Recorded>>>,
    /// Concurrent answers to one principal store one position, the highest, in one write:
    /// each would otherwise race the others for the key's revision (and pay an fsync each).
    group: Arc<GroupCommit<u64>>,
}

impl Positions {
    pub fn new(kv: kv::Store) -> Self {
        Self {
            kv,
            recorded: Arc::default(),
            group: Arc::new(GroupCommit::new(usize::MAX)),
        }
    }

    fn recorded(&self, key: &str) -> Option<Recorded> {
        self.recorded
            .lock()
            .ok()
            .and_then(|r| r.get(key).copied())
            .filter(|r| r.at.elapsed() < TRUSTED)
    }

    fn remember(&self, key: &str, position: u64, revision: u64) {
        if let Ok(mut r) = self.recorded.lock() {
            if r.len() >= REMEMBERED {
                r.clear();
            }
            let now = Instant::now();
            let e = r.entry(key.to_string()).or_insert(Recorded {
                position,
                revision,
                at: now,
            });
            if position >= e.position {
                *e = Recorded {
                    position,
                    revision,
                    at: now,
                };
            }
        }
    }

    /// Whether `key` wrote through this instance within the last few seconds: a hint (another
    /// instance may have recorded its writes), never a proof.
    pub fn wrote_recently(&self, key: &str) -> bool {
        self.recorded(key).is_some_and(|r| r.at.elapsed() < RECENT)
    }

    /// The bucket key of a principal (whatever tenant it acts in: its reads reflect all its
    /// writes): a digest, since subjects may hold characters a KV key cannot, and the bucket
    /// need not name anyone.
    pub fn key(kind: &str, subject: &str) -> String {
        let mut h = Sha256::new();
        h.update(kind.as_bytes());
        h.update([0]);
        h.update(subject.as_bytes());
        hex::encode(h.finalize())
    }

    /// Records that `key` was answered with `position`, once it is stored. Positions only
    /// grow: of two answers recorded at once, the higher stays.
    pub async fn wrote(&self, key: &str, position: u64) -> Result<(), StoreError> {
        if self.recorded(key).is_some_and(|r| r.position >= position) {
            return Ok(());
        }
        self.group
            .record(key.to_string(), position, |positions| {
                let (this, key) = (self.clone(), key.to_string());
                async move {
                    let highest = positions.into_iter().max().unwrap_or_default();
                    this.store(&key, highest).await.map_err(GroupError::new)?;
                    Ok(highest)
                }
            })
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Nats(e.to_string()))
    }

    /// Stores `position` for `key` unless the bucket holds a higher one.
    async fn store(&self, key: &str, position: u64) -> Result<(), StoreError> {
        let known = self.recorded(key);
        if known.is_some_and(|r| r.position >= position) {
            return Ok(());
        }
        let value = position.to_string();
        // The revision this instance last wrote is usually still the bucket's: try it first,
        // one round trip instead of a read and a write.
        let mut stored = known.map_or(Stored::Nothing, |r| Stored::Below(r.revision));
        for _ in 0..ATTEMPTS {
            let written = match stored {
                Stored::Holds => return Ok(()),
                Stored::Nothing => match self.kv.create(key, value.clone().into()).await {
                    Ok(revision) => Some(revision),
                    Err(e)
                        if e.kind() == kv::CreateErrorKind::AlreadyExists
                            || aegis_streams::lost_race(&e.to_string()) =>
                    {
                        None
                    }
                    Err(e) => return Err(StoreError::nats(e)),
                },
                Stored::Below(revision) => {
                    match self.kv.update(key, value.clone().into(), revision).await {
                        Ok(revision) => Some(revision),
                        Err(e)
                            if e.kind() == kv::UpdateErrorKind::WrongLastRevision
                                || aegis_streams::lost_race(&e.to_string()) =>
                        {
                            None
                        }
                        Err(e) => return Err(StoreError::nats(e)),
                    }
                }
            };
            match written {
                Some(revision) => {
                    self.remember(key, position, revision);
                    return Ok(());
                }
                // Another answer to the same principal stored one in between: look again.
                None => stored = self.stored(key, position).await?,
            }
        }
        Err(StoreError::Nats(
            "the principal's position kept changing; it was not recorded".into(),
        ))
    }

    /// What the bucket holds for `key`, measured against `position`.
    async fn stored(&self, key: &str, position: u64) -> Result<Stored, StoreError> {
        Ok(match self.kv.entry(key).await.map_err(StoreError::nats)? {
            Some(e) if e.operation == kv::Operation::Put => {
                let at = parse(&e.value);
                if at >= position {
                    self.remember(key, at, e.revision);
                    Stored::Holds
                } else {
                    Stored::Below(e.revision)
                }
            }
            // Deleted or purged: its revision still guards the next update.
            Some(e) => Stored::Below(e.revision),
            None => Stored::Nothing,
        })
    }

    /// The highest position `key` was answered with, if it wrote within the bucket's TTL.
    pub async fn last(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .kv
            .get(key)
            .await
            .map_err(StoreError::nats)?
            .map(|v| parse(&v)))
    }
}

fn parse(value: &[u8]) -> u64 {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
