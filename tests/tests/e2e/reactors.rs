use aegis_reactors::runner::dlq_headers;
use aegis_reactors::{Reactor, ReactorError, RetryPolicy};
use aegis_streams::provision::{provision, StreamSettings};
use aegis_streams::{AggregateRef, EventStore, Expected, Metadata, NewEvent, StoredCommit};
use aegis_tests::NatsServer;
use async_nats::jetstream;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Fails each commit `failures` times, then succeeds; records what it handled.
struct Flaky {
    name: &'static str,
    failures: u32,
    attempts: Mutex<HashMap<u64, u32>>,
    done: Mutex<Vec<u64>>,
}

impl Reactor for Flaky {
    fn name(&self) -> &'static str {
        self.name
    }
    fn filters(&self) -> Vec<String> {
        vec!["aegis.evt.>".into()]
    }
    async fn handle(&self, commit: &StoredCommit) -> Result<(), ReactorError> {
        let n = {
            let mut a = self.attempts.lock().unwrap();
            let n = a.entry(commit.position).or_default();
            *n += 1;
            *n
        };
        if n <= self.failures {
            return Err(ReactorError(format!("downstream refused (attempt {n})")));
        }
        self.done.lock().unwrap().push(commit.position);
        Ok(())
    }
}

async fn world() -> (NatsServer, jetstream::Context, EventStore) {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    provision(&js, &StreamSettings::default()).await.unwrap();
    let store = EventStore::new(js.clone());
    (nats, js, store)
}

async fn append(store: &EventStore, tenant: Uuid, n: u8) {
    let agg = AggregateRef::new(tenant, "test", "thing", n.to_string()).unwrap();
    let meta = Metadata::system("test");
    store
        .append(
            &agg,
            &Expected::NEW,
            vec![NewEvent {
                credential: Vec::new(),
                event_type: "test.v1",
                payload: vec![n],
            }],
            &meta,
            None,
        )
        .await
        .unwrap();
}

fn fast(max_attempts: i64) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base: Duration::from_millis(20),
        max: Duration::from_millis(100),
    }
}

#[tokio::test]
async fn failures_are_retried_with_backoff_until_they_succeed() {
    let (_nats, js, store) = world().await;
    let reactor = Arc::new(Flaky {
        name: "flaky",
        failures: 2,
        attempts: Mutex::default(),
        done: Mutex::default(),
    });
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(aegis_reactors::run(
        js.clone(),
        reactor.clone(),
        fast(5),
        rx,
    ));
    // The durable consumer delivers what arrives after it exists.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tenant = Uuid::now_v7();
    for n in 0..3 {
        append(&store, tenant, n).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while reactor.done.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "not all handled: {:?}",
            reactor.attempts.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut done = reactor.done.lock().unwrap().clone();
    done.sort();
    assert_eq!(done, vec![1, 2, 3], "each commit handled once it succeeded");
    assert!(reactor.attempts.lock().unwrap().values().all(|&a| a == 3));
    let dlq = js
        .get_stream("AEGIS_DLQ")
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(dlq.state.messages, 0);
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn exhausted_work_lands_in_the_dead_letter_stream() {
    let (_nats, js, store) = world().await;
    let reactor = Arc::new(Flaky {
        name: "doomed",
        failures: u32::MAX,
        attempts: Mutex::default(),
        done: Mutex::default(),
    });
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(aegis_reactors::run(
        js.clone(),
        reactor.clone(),
        fast(3),
        rx,
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tenant = Uuid::now_v7();
    append(&store, tenant, 7).await;

    let dlq = js.get_stream("AEGIS_DLQ").await.unwrap();
    let consumer = dlq
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            ..Default::default()
        })
        .await
        .unwrap();
    let mut letters = consumer.messages().await.unwrap();
    let letter = tokio::time::timeout(Duration::from_secs(20), letters.next())
        .await
        .expect("dead letter")
        .unwrap()
        .unwrap();
    assert_eq!(
        letter.subject.as_str(),
        format!("aegis.dlq.doomed.{tenant}")
    );
    let h = letter.headers.clone().unwrap();
    assert_eq!(h.get(dlq_headers::ATTEMPTS).unwrap().as_str(), "3");
    assert_eq!(h.get(dlq_headers::POSITION).unwrap().as_str(), "1");
    assert!(h
        .get(dlq_headers::ERROR)
        .unwrap()
        .as_str()
        .contains("downstream refused"));
    // Terminated: no further deliveries after the third attempt.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(reactor.attempts.lock().unwrap()[&1], 3);
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// Handles each commit after `delay`; records what it began and what it finished.
struct Worker {
    delay: Duration,
    lanes: usize,
    ack_wait: Duration,
    began: Mutex<Vec<u64>>,
    done: Mutex<Vec<u64>>,
}

impl Worker {
    fn new(delay: Duration, lanes: usize, ack_wait: Duration) -> Arc<Self> {
        Arc::new(Self {
            delay,
            lanes,
            ack_wait,
            began: Mutex::default(),
            done: Mutex::default(),
        })
    }

    fn began(&self) -> Vec<u64> {
        self.began.lock().unwrap().clone()
    }

    fn done(&self) -> Vec<u64> {
        self.done.lock().unwrap().clone()
    }
}

impl Reactor for Worker {
    fn name(&self) -> &'static str {
        "worker"
    }
    fn filters(&self) -> Vec<String> {
        vec!["aegis.evt.>".into()]
    }
    fn ack_wait(&self) -> Duration {
        self.ack_wait
    }
    fn lanes(&self) -> usize {
        self.lanes
    }
    async fn handle(&self, commit: &StoredCommit) -> Result<(), ReactorError> {
        self.began.lock().unwrap().push(commit.position);
        tokio::time::sleep(self.delay).await;
        self.done.lock().unwrap().push(commit.position);
        Ok(())
    }
}

/// Runs `reactor` on a connection of its own (as another instance would).
async fn start(
    nats: &NatsServer,
    reactor: Arc<Worker>,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(aegis_reactors::run(js, reactor, fast(5), rx));
    (stop, task)
}

async fn until(what: &str, within: Duration, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort();
    v
}

#[tokio::test]
async fn work_that_outlasts_the_ack_wait_is_not_handed_out_again_while_it_runs() {
    let (nats, _js, store) = world().await;
    // Three ack waits long: without the progress heartbeat JetStream would redeliver it twice.
    let worker = Worker::new(Duration::from_millis(3_500), 1, Duration::from_secs(1));
    let (stop, task) = start(&nats, worker.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tenant = Uuid::now_v7();
    append(&store, tenant, 1).await;
    append(&store, tenant, 2).await;
    until("both handled", Duration::from_secs(20), || {
        worker.done().len() >= 2
    })
    .await;
    // Long enough for a redelivery of either to have been handled.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(sorted(worker.began()), vec![1, 2], "each begun once");
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn an_instance_that_dies_mid_work_hands_it_to_another_within_one_ack_wait() {
    let (nats, _js, store) = world().await;
    let ack_wait = Duration::from_secs(2);
    // The first instance hangs on whatever it takes, then dies without a word (kill -9: its
    // task and connection are gone, nothing is acked or given back).
    let doomed = Worker::new(Duration::from_secs(3_600), 4, ack_wait);
    let (_stop_doomed, doomed_task) = start(&nats, doomed.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 1..=6 {
        append(&store, Uuid::now_v7(), n).await;
    }
    until(
        "the first instance took work",
        Duration::from_secs(10),
        || !doomed.began().is_empty(),
    )
    .await;
    let survivor = Worker::new(Duration::ZERO, 4, ack_wait);
    let (stop, task) = start(&nats, survivor.clone()).await;
    doomed_task.abort();
    let died = Instant::now();
    until(
        "every commit handled by the survivor",
        Duration::from_secs(15),
        || survivor.done().len() >= 6,
    )
    .await;
    assert_eq!(sorted(survivor.done()), (1..=6).collect::<Vec<_>>());
    assert!(
        died.elapsed() < ack_wait * 3,
        "handed over in {:?} (ack wait {ack_wait:?})",
        died.elapsed()
    );
    assert!(doomed.done().is_empty());
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn a_stopping_instance_finishes_the_commit_in_hand_and_gives_back_the_queued_at_once() {
    let (nats, _js, store) = world().await;
    // An ack wait far longer than the test: only a give-back lets the other instance in.
    let ack_wait = Duration::from_secs(60);
    let stopping = Worker::new(Duration::from_millis(1_500), 2, ack_wait);
    let (stop_first, first_task) = start(&nats, stopping.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // One tenant: one lane, so all but the first wait in the lane's queue.
    let tenant = Uuid::now_v7();
    for n in 1..=8 {
        append(&store, tenant, n).await;
    }
    until("the first instance began", Duration::from_secs(10), || {
        !stopping.began().is_empty()
    })
    .await;
    let other = Worker::new(Duration::ZERO, 2, ack_wait);
    let (stop, task) = start(&nats, other.clone()).await;
    let asked = Instant::now();
    stop_first.send(true).unwrap();
    first_task.await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(6),
        "stopped within the drain"
    );
    let finished = stopping.done();
    assert_eq!(finished, stopping.began(), "what it began, it finished");
    until(
        "the rest handled elsewhere",
        Duration::from_secs(15),
        || finished.len() + other.done().len() >= 8,
    )
    .await;
    let mut all = finished.clone();
    all.extend(other.done());
    assert_eq!(sorted(all), (1..=8).collect::<Vec<_>>(), "each commit once");
    stop.send(true).unwrap();
    task.await.unwrap();
}
