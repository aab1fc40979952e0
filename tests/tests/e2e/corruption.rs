//! Corruption on the log is found and named, never a 500 (issue 21): copies of a real commit
//! with one bit flipped (Jepsen's bit-flip fault, at many offsets) and bytes that are no commit
//! at all, written straight into JetStream. `/audit/verify` names the position as a break; the
//! projectors halt on bytes they cannot read, naming the position and the reason; an event
//! stream stops there and says so; a command on the damaged resource is a 503 naming it.

use aegis_projectors::checkpoint;
use aegis_schemas::envelope::v1::Commit;
use aegis_schemas::Message;
use aegis_streams::{AggregateRef, Expected};
use aegis_tests::world::incident;
use aegis_tests::TestApp;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

async fn verify(app: &TestApp, tenant: Uuid, query: &str) -> (u16, Value) {
    let r = app
        .admin(Method::GET, &format!("/audit/verify{query}"), Some(tenant))
        .send()
        .await
        .expect("verify answers");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_flipped_bit_anywhere_in_a_commit_is_a_named_break_never_a_500() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Bitflip").await;
    let store = app.state().executor.store().clone();
    let mut tried = 0;
    // Offsets across the whole commit: tags, lengths, ids, hashes, the payload.
    for step in [1usize, 7, 19, 33, 58, 91, 130, 177, 230, 301, 377] {
        let (id, _, _) = app
            .open_incident(tenant, incident(&format!("flip {step}"), "high"))
            .await;
        let agg = AggregateRef::new(tenant, "incidents", "incident", id.to_string()).expect("ref");
        let history = store.load(&agg, Expected::NEW).await.expect("history");
        let mut bytes = Commit {
            events: history.commits[0].events.clone(),
        }
        .encode_to_vec();
        if step >= bytes.len() {
            continue;
        }
        bytes[step] ^= 0b0001_0000;
        let position = app.forge(&agg, bytes).await;
        let (s, v) = verify(&app, tenant, &format!("?from={position}")).await;
        assert_eq!(s, 200, "flip at byte {step}: {v}");
        assert_eq!(v["status"], "broken", "flip at byte {step}: {v}");
        let b = &v["first_break"];
        assert_eq!(b["position"], position, "flip at byte {step}: {v}");
        assert!(
            matches!(
                b["kind"].as_str(),
                Some("tampered" | "broken_link" | "version_gap")
            ),
            "{v}"
        );
        tried += 1;
    }
    assert!(tried >= 8, "only {tried} offsets fell inside a commit");
}

#[tokio::test]
async fn bytes_that_are_no_commit_halt_the_projectors_end_streams_and_refuse_commands_by_name() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Garbage").await;
    let (id, before, _) = app.open_incident(tenant, incident("Intact", "high")).await;
    let agg = AggregateRef::new(tenant, "incidents", "incident", id.to_string()).expect("ref");
    // A stream from before the damage, open while it happens.
    let sse = app
        .admin(
            Method::GET,
            &format!("/events/stream?from={before}"),
            Some(tenant),
        )
        .send()
        .await
        .expect("stream opens");
    assert_eq!(sse.status(), 200);
    let position = app.forge(&agg, vec![0xff; 24]).await;

    let (s, v) = verify(&app, tenant, "").await;
    assert_eq!(s, 200, "{v}");
    let b = &v["first_break"];
    assert_eq!(
        (b["position"].as_u64(), b["kind"].as_str()),
        (Some(position), Some("tampered")),
        "{v}"
    );
    assert!(b["reason"].is_string(), "{v}");

    // The stream delivers what came before, then says where it stopped, and ends.
    let mut body = String::new();
    let mut chunks = sse.bytes_stream();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(chunk)) = chunks.next().await {
            body.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(read.is_ok(), "the stream ended: {body}");
    assert!(body.contains(&format!("id: {before}")), "{body}");
    assert!(body.contains("event: error"), "{body}");
    assert!(body.contains("corrupt_commit"), "{body}");
    assert!(body.contains(&format!("\"position\":{position}")), "{body}");

    // Every projection halts at the damaged position, naming the reason.
    let pool = &app.state().pool;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let cp = checkpoint::get(pool, "incidents")
            .await
            .expect("checkpoint");
        if cp.as_ref().is_some_and(|c| c.halted()) {
            let cp = cp.expect("halted");
            assert_eq!(cp.failed_position, Some(position as i64), "{cp:?}");
            assert!(
                cp.error
                    .as_deref()
                    .is_some_and(|r| r.contains("does not decode")),
                "{cp:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no halt: {:?}",
            cp.map(|c| (c.position, c.status))
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = app
        .admin(Method::GET, "/readyz", None)
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status(), 503);
    let ready = r.text().await.unwrap_or_default();
    assert!(
        ready.contains(&format!("halted at position {position}")),
        "{ready}"
    );

    // A simulation over the range reports the matches before it, then stops naming it: no
    // summary that would pass over the damage as if the range were whole.
    app.set_plan(tenant, json!({ "addons": ["auto_response"] }))
        .await;
    let r = app
        .admin(Method::POST, "/auto-response/simulate", Some(tenant))
        .json(&json!({ "rule": {
            "name": "every incident",
            "match": { "event_type": "incident.opened.v1" },
            "actions": [{ "type": "notify" }]
        }}))
        .send()
        .await
        .expect("simulate");
    assert_eq!(r.status(), 200);
    let lines: Vec<Value> = r
        .text()
        .await
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(
        lines.first().map(|l| &l["type"]),
        Some(&json!("match")),
        "{lines:?}"
    );
    let last = lines.last().expect("a line");
    assert_eq!(last["type"], "error", "{lines:?}");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains(&position.to_string())),
        "{last}"
    );
    assert!(lines.iter().all(|l| l["type"] != "summary"), "{lines:?}");

    // A command on the damaged incident is refused by name, not a 500; others still work.
    let r = app
        .internal(Method::PATCH, &format!("/incidents/{id}"), tenant)
        .json(&json!({ "status": "acknowledged" }))
        .send()
        .await
        .expect("answer");
    let status = r.status().as_u16();
    let retry = r.headers().contains_key("retry-after");
    let e: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!((status, retry), (503, true), "{e}");
    assert!(e.to_string().contains(&position.to_string()), "{e}");
    let r = app
        .internal(Method::POST, "/incidents", tenant)
        .json(&incident("Elsewhere", "low"))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 201);
}
