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
