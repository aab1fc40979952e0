use aegis_streams::chain;
use aegis_streams::provision::{events_config, provision, StreamSettings, EVENTS_STREAM};
use aegis_streams::{AggregateRef, AppendError, EventStore, Expected, Metadata, NewEvent};
use aegis_tests::NatsServer;
use async_nats::jetstream;
use futures::StreamExt;
use std::time::Duration;
use uuid::Uuid;

async fn store(nats: &NatsServer) -> EventStore {
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    provision(&js, &StreamSettings::default()).await.unwrap();
    EventStore::new(js)
}

fn meta() -> Metadata {
    Metadata::system("test")
}

fn event(n: u8) -> NewEvent {
    NewEvent {
        credential: Vec::new(),
        event_type: "test.happened.v1",
        payload: vec![n],
    }
}

#[tokio::test]
async fn provisioning_matches_the_design_and_is_idempotent() {
    let nats = NatsServer::start();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    provision(&js, &StreamSettings::default()).await.unwrap();
    provision(&js, &StreamSettings::default()).await.unwrap();
    let mut stream = js.get_stream(EVENTS_STREAM).await.unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert_eq!(config.subjects, vec!["aegis.evt.>".to_string()]);
    assert_eq!(config.storage, jetstream::stream::StorageType::File);
    assert!(config.deny_delete && config.deny_purge);
    assert_eq!(config.duplicate_window, Duration::from_secs(120));
    assert_eq!(config.num_replicas, 1);
}

#[tokio::test]
async fn a_replica_count_the_servers_cannot_hold_is_refused_with_the_reason() {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let e = provision(&js, &StreamSettings { replicas: 3 })
        .await
        .expect_err("one server cannot hold R3");
    let said = e.to_string();
    assert!(
        matches!(e, aegis_streams::StoreError::Replicas { replicas: 3, .. }),
        "{said}"
    );
    assert!(said.contains("AEGIS_STREAM_REPLICAS=3"), "{said}");
    assert!(
        js.get_stream(EVENTS_STREAM).await.is_err(),
        "nothing was made"
    );
}

#[tokio::test]
async fn a_drifted_stream_is_updated_and_an_unfixable_one_refused() {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let mut drifted = events_config(&StreamSettings::default());
    drifted.duplicate_window = Duration::from_secs(10);
    js.create_stream(drifted).await.unwrap();
    provision(&js, &StreamSettings::default()).await.unwrap();
    let info = js
        .get_stream(EVENTS_STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(info.duplicate_window, Duration::from_secs(120));

    let other = NatsServer::start();
    let js = jetstream::new(async_nats::connect(other.url()).await.unwrap());
    let mut memory = events_config(&StreamSettings::default());
    memory.storage = jetstream::stream::StorageType::Memory;
    js.create_stream(memory).await.unwrap();
    let err = provision(&js, &StreamSettings::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("storage"), "{err}");
}

#[tokio::test]
async fn appends_are_ordered_per_aggregate_and_chained() {
    let nats = NatsServer::start();
    let store = store(&nats).await;
    let agg = AggregateRef::new(Uuid::now_v7(), "test", "thing", "a.b c").unwrap();
    let first = store
        .append(
            &agg,
            &Expected::NEW,
            vec![event(1), event(2)],
            &meta(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        first.commit.events.len(),
        2,
        "one commit holds the command's events"
    );
    let after = first.commit.expected_after();
    assert_eq!(after.version, 2);
    // A writer that still believes the aggregate is new loses.
    let stale = store
        .append(&agg, &Expected::NEW, vec![event(3)], &meta(), None)
        .await;
    assert!(matches!(stale, Err(AppendError::Conflict)));
    store
        .append(&agg, &after, vec![event(3)], &meta(), None)
        .await
        .unwrap();

    let history = store.load(&agg, Expected::NEW).await.unwrap();
    let envelopes: Vec<_> = history
        .commits
        .iter()
        .flat_map(|c| c.events.clone())
        .collect();
    assert_eq!(
        envelopes
            .iter()
            .map(|e| e.aggregate_version)
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    chain::verify(&envelopes).expect("chain intact from the first event");
    assert_eq!(history.expected.version, 3);
    assert!(
        history.commits[0]
            .subject
            .ends_with(".test.thing.a_2Eb_20c"),
        "{}",
        history.commits[0].subject
    );

    // Loading from a cached point reads only what is newer.
    let newer = store.load(&agg, after).await.unwrap();
    assert_eq!(newer.commits.len(), 1);
}

#[tokio::test]
async fn a_repeated_message_id_appends_once() {
    let nats = NatsServer::start();
    let store = store(&nats).await;
    let agg = AggregateRef::new(Uuid::now_v7(), "test", "thing", "1").unwrap();
    let a = store
        .append(&agg, &Expected::NEW, vec![event(1)], &meta(), Some("cmd-1"))
        .await
        .unwrap();
    // JetStream checks the expected sequence before the duplicate window: a blind retry sees a
    // conflict, and the retry made on reloaded state (what the executor does) is the duplicate.
    let blind = store
        .append(&agg, &Expected::NEW, vec![event(1)], &meta(), Some("cmd-1"))
        .await;
    assert!(matches!(blind, Err(AppendError::Conflict)));
    let b = store
        .append(
            &agg,
            &a.commit.expected_after(),
            vec![event(1)],
            &meta(),
            Some("cmd-1"),
        )
        .await
        .unwrap();
    assert!(!a.duplicate);
    assert!(b.duplicate);
    assert_eq!(a.position, b.position);
    assert_eq!(store.head().await.unwrap(), 1);
}

#[tokio::test]
async fn a_range_read_honours_filters_and_bounds_and_ends_by_itself() {
    let nats = NatsServer::start();
    let store = store(&nats).await;
    let (t1, t2) = (Uuid::now_v7(), Uuid::now_v7());
    for i in 0..10u8 {
        let tenant = if i % 2 == 0 { t1 } else { t2 };
        let agg = AggregateRef::new(tenant, "test", "thing", i.to_string()).unwrap();
        store
            .append(&agg, &Expected::NEW, vec![event(i)], &meta(), None)
            .await
            .unwrap();
    }
    let only_t1: Vec<_> = store
        .read_range(
            vec![aegis_streams::subject::tenant_filter(t1, None)],
            1,
            None,
        )
        .await
        .unwrap()
        .map(|c| c.unwrap().position)
        .collect()
        .await;
    assert_eq!(only_t1, vec![1, 3, 5, 7, 9]);
    let window: Vec<_> = store
        .read_range(vec!["aegis.evt.>".into()], 4, Some(6))
        .await
        .unwrap()
        .map(|c| c.unwrap().position)
        .collect()
        .await;
    assert_eq!(window, vec![4, 5, 6]);
    let none: Vec<_> = store
        .read_range(
            vec![aegis_streams::subject::tenant_filter(Uuid::now_v7(), None)],
            1,
            None,
        )
        .await
        .unwrap()
        .collect()
        .await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn a_subscription_sees_new_commits_as_they_land() {
    let nats = NatsServer::start();
    let store = store(&nats).await;
    let mut sub = Box::pin(
        store
            .subscribe(vec!["aegis.evt.>".into()], 1)
            .await
            .unwrap(),
    );
    let agg = AggregateRef::new(Uuid::now_v7(), "test", "thing", "x").unwrap();
    store
        .append(&agg, &Expected::NEW, vec![event(9)], &meta(), None)
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.position, 1);
    assert_eq!(got.events[0].payload, vec![9]);
}

#[tokio::test]
async fn an_acknowledged_commit_survives_a_server_kill() {
    let mut nats = NatsServer::start();
    let store = store(&nats).await;
    let agg = AggregateRef::new(Uuid::now_v7(), "test", "thing", "durable").unwrap();
    store
        .append(&agg, &Expected::NEW, vec![event(1)], &meta(), None)
        .await
        .unwrap();
    nats.restart();
    let store = self::store(&nats).await;
    let history = store.load(&agg, Expected::NEW).await.unwrap();
    assert_eq!(history.expected.version, 1);
}
