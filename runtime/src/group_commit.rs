//! Group commit: what several callers ask to record at the same moment goes into the log as one
//! commit (one write, one fsync), and each caller returns only once the commit holding its
//! record is durable.
//!
//! Callers meet under a key (what may share a commit: one subject, one tenant). Whoever holds
//! the key's turn takes every record waiting and writes them; records that arrive meanwhile wait
//! for the next turn, so the busier the key, the larger its commits, and an idle key costs one
//! write per record as before. There is no timer: nobody waits for company.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Why a record is not known to be in the log: what the write answered, shared by everyone in
/// its commit.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct GroupError(pub Arc<str>);

impl GroupError {
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self(e.to_string().into())
    }
}

type Answer = oneshot::Sender<Result<u64, GroupError>>;

pub struct GroupCommit<T> {
    keys: Mutex<HashMap<String, Arc<Group<T>>>>,
    /// Most records in one commit (a commit is one message and must fit the server's payload).
    most: usize,
}

struct Group<T> {
    /// Held by the caller writing; the others queue behind it.
    turn: tokio::sync::Mutex<()>,
    waiting: Mutex<Vec<(T, Answer)>>,
}

impl<T> Default for Group<T> {
    fn default() -> Self {
        Self {
            turn: tokio::sync::Mutex::new(()),
            waiting: Mutex::new(Vec::new()),
        }
    }
}

/// How many keys an instance keeps; past it, idle ones are forgotten.
const KEYS: usize = 10_000;

impl<T: Send> GroupCommit<T> {
    pub fn new(most: usize) -> Self {
        Self {
            keys: Mutex::default(),
            most: most.max(1),
        }
    }

    /// Records `record` under `key` through `write`, which appends the records it is given as
    /// one commit and answers the commit's position; answers that position once it is durable.
    /// `write` may be called for records of other callers (and this one's record may be written
    /// by another caller's `write`): every caller with the same key must write the same way.
    /// A write runs as a task of its own: a caller dropped meanwhile (its client went away)
    /// neither stops it nor leaves the others in its commit without an answer.
    pub async fn record<F, Fut>(&self, key: String, record: T, write: F) -> Result<u64, GroupError>
    where
        T: 'static,
        F: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = Result<u64, GroupError>> + Send + 'static,
    {
        let group = {
            let mut keys = self.keys.lock().map_err(GroupError::new)?;
            if keys.len() >= KEYS {
                keys.retain(|_, g| Arc::strong_count(g) > 1);
            }
            keys.entry(key).or_default().clone()
        };
        let (tx, rx) = oneshot::channel();
        group
            .waiting
            .lock()
            .map_err(GroupError::new)?
            .push((record, tx));
        {
            let _turn = group.turn.lock().await;
            // Until nothing waits, so this caller's record is written by the time its turn ends
            // (empty at once when an earlier turn took it).
            loop {
                let taken: Vec<(T, Answer)> = {
                    let mut waiting = group.waiting.lock().map_err(GroupError::new)?;
                    let n = waiting.len().min(self.most);
                    waiting.drain(..n).collect()
                };
                if taken.is_empty() {
                    break;
                }
                let (records, answers): (Vec<T>, Vec<Answer>) = taken.into_iter().unzip();
                let write = write(records);
                let written = tokio::spawn(async move {
                    let done = write.await;
                    for answer in answers {
                        // A caller that gave up (its request was dropped) no longer listens.
                        let _ = answer.send(done.clone());
                    }
                });
                // The turn is held until the commit is written: one commit in flight per key.
                let _ = written.await;
            }
        }
        rx.await
            .map_err(|_| GroupError::new("the group commit ended without an answer"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    type Commits = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A caller recording `i` under one key through a write that takes `ms` and appends its
    /// records to `commits`, answering how many commits there are.
    fn slow_caller(
        group: &Arc<GroupCommit<u32>>,
        commits: &Commits,
        i: u32,
        ms: u64,
    ) -> tokio::task::JoinHandle<Result<u64, GroupError>> {
        let (group, commits) = (group.clone(), commits.clone());
        tokio::spawn(async move {
            group
                .record("k".into(), i, move |records| {
                    let commits = commits.clone();
                    async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        let mut c = commits.lock().map_err(GroupError::new)?;
                        c.push(records);
                        Ok(c.len() as u64)
                    }
                })
                .await
        })
    }

    #[tokio::test]
    async fn concurrent_records_share_commits_and_each_hears_its_own() {
        let group = Arc::new(GroupCommit::<u32>::new(4));
        let commits = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        // A slow write, so the others pile up behind it.
        let callers = (0..10u32).map(|i| slow_caller(&group, &commits, i, 20));
        let positions: Vec<u64> = futures::future::join_all(callers)
            .await
            .into_iter()
            .map(|r| r.expect("joined").expect("recorded"))
            .collect();
        let commits = commits.lock().expect("lock").clone();
        // Every record written exactly once, no commit above the limit, fewer commits than
        // records, and each caller answered with the commit that holds its record.
        let mut all: Vec<u32> = commits.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert!(commits.iter().all(|c| c.len() <= 4), "{commits:?}");
        assert!(commits.len() < 10, "{commits:?}");
        for (i, position) in positions.iter().enumerate() {
            let holder = &commits[*position as usize - 1];
            assert!(
                holder.contains(&(i as u32)),
                "{i} got {position}: {commits:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_writer_dropped_mid_write_still_writes_and_answers_the_others_in_its_commit() {
        let group = Arc::new(GroupCommit::<u32>::new(8));
        let commits = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        let call = |i: u32| slow_caller(&group, &commits, i, 50);
        let pause = || tokio::time::sleep(Duration::from_millis(10));
        // 0 writes alone; 1 and 2 queue behind it, and 1 writes both of theirs next.
        let zero = call(0);
        pause().await;
        let one = call(1);
        pause().await;
        let two = call(2);
        tokio::time::sleep(Duration::from_millis(60)).await;
        // 1's client goes away while its commit (1 and 2) is being written.
        one.abort();
        assert_eq!(zero.await.expect("joined").expect("recorded"), 1);
        assert_eq!(two.await.expect("joined").expect("recorded"), 2);
        let commits = commits.lock().expect("lock").clone();
        assert_eq!(commits, vec![vec![0], vec![1, 2]]);
    }

    #[tokio::test]
    async fn a_failed_write_is_every_member_s_answer_and_the_next_one_starts_afresh() {
        let group = GroupCommit::<u32>::new(8);
        let calls = Arc::new(AtomicUsize::new(0));
        let write = |_: Vec<u32>| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(GroupError::new("no leader"))
                } else {
                    Ok(7)
                }
            }
        };
        let err = group.record("k".into(), 1, write).await.unwrap_err();
        assert_eq!(err.to_string(), "no leader");
        assert_eq!(group.record("k".into(), 2, write).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn keys_do_not_share_commits() {
        let group = Arc::new(GroupCommit::<&'static str>::new(8));
        let seen = Arc::new(Mutex::new(Vec::<Vec<&str>>::new()));
        let record = |key: &'static str| {
            let (group, seen) = (group.clone(), seen.clone());
            async move {
                group
                    .record(key.into(), key, |records| {
                        let seen = seen.clone();
                        async move {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            seen.lock().map_err(GroupError::new)?.push(records);
                            Ok(1)
                        }
                    })
                    .await
            }
        };
        let _ = tokio::join!(record("a"), record("b"), record("a"), record("b"));
        for commit in seen.lock().expect("lock").iter() {
            assert!(commit.windows(2).all(|w| w[0] == w[1]), "{commit:?}");
        }
    }
}
