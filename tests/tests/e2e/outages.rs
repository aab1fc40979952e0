//! A lost event log answers a clear 503 with `Retry-After`, never a 500, and the same command
//! lands once the log is back.

use aegis_tests::world::{eventually, incident};
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn a_command_while_nats_is_down_is_503_with_retry_after_and_lands_when_it_is_back() {
    let mut app = TestApp::spawn().await;
    let tenant = app.create_tenant("Outage").await;
    app.open_incident(tenant, incident("before", "high")).await;
    app.caught_up(tenant, "/incidents").await;

    app.nats.kill();
    let r = app
        .internal(Method::POST, "/incidents", tenant)
        .json(&incident("during", "high"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("an answer, not a hang");
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").cloned();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 503, "{body}");
    assert!(retry.is_some(), "Retry-After: {body}");

    // Reads go on from Postgres, at once, marked as possibly behind the log.
    let asked = std::time::Instant::now();
    let r = app
        .internal(Method::GET, "/incidents", tenant)
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("aegis-stale").and_then(|v| v.to_str().ok()),
        Some("log-unreachable")
    );
    let listed: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(listed["total"], 1, "{listed}");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "served without waiting on the log: {:?}",
        asked.elapsed()
    );

    app.nats.start_again();
    let mut landed = false;
    for _ in 0..60 {
        let r = app
            .internal(Method::POST, "/incidents", tenant)
            .json(&incident("after", "high"))
            .send()
            .await
            .expect("send");
        if r.status().is_success() {
            landed = true;
            break;
        }
        assert_eq!(r.status().as_u16(), 503, "only 503 while it reconnects");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(landed, "commands land again once the log is back");
    // The projectors resume on their own (no restart of Aegis) and catch up.
    let titles = || async {
        let (_, listed) = app.caught_up(tenant, "/incidents").await;
        listed["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["title"].as_str().map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let resumed = eventually(Duration::from_secs(30), || async {
        titles().await.iter().any(|t| t == "after")
    })
    .await;
    let titles = titles().await;
    assert!(resumed, "{titles:?}");
    let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
    assert!(
        !titles.contains(&"during"),
        "a refused command changed nothing: {titles:?}"
    );
    let r = app
        .internal(Method::GET, "/incidents", tenant)
        .send()
        .await
        .expect("an answer");
    assert!(!r.headers().contains_key("aegis-stale"), "fresh again");
}

/// Past the configured number of commands in flight, one more is answered 503 with
/// `Retry-After` at once (counted for Prometheus), reads still answer, and the next command
/// after one ends is taken.
#[tokio::test]
async fn a_command_past_the_in_flight_bound_is_503_and_reads_go_on() {
    let app = TestApp::spawn_with_config(|c| c.max_commands_in_flight = 4).await;
    let tenant = app.create_tenant("Burst").await;
    // Four commands that have not finished: their places, held.
    let held = app
        .state()
        .limits
        .commands
        .clone()
        .acquire_many_owned(4)
        .await
        .expect("the places");
    let r = app
        .internal(Method::POST, "/incidents", tenant)
        .json(&incident("one too many", "high"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let r = app
        .internal(Method::GET, "/incidents", tenant)
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), 200, "reads are not commands");
    let scraped = app
        .http
        .get(app.scrape_url())
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .unwrap_or_default();
    assert!(scraped.contains("aegis_commands_shed_total 1"), "{scraped}");
    drop(held);
    let r = app
        .internal(Method::POST, "/incidents", tenant)
        .json(&incident("taken", "high"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), 201);
}

/// Past `AEGIS_MAX_CONNECTIONS` open connections, a new one is answered 503 with
/// `Retry-After` and closed, and counted; a place freed by a closing client is taken again.
#[tokio::test]
async fn a_connection_past_the_open_bound_is_answered_503_and_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with_config(|c| c.max_connections = 3).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connects"),
        );
    }
    // The listener takes connections in order: let it hold the three first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connects");
    extra
        .write_all(b"GET /health HTTP/1.1\r\nhost: aegis\r\n\r\n")
        .await
        .expect("sends");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), extra.read_to_string(&mut answer))
        .await
        .expect("answered and closed")
        .expect("reads");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("\"error\":\"unavailable\""), "{answer}");

    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = reqwest::Client::new()
        .get(app.url("/health"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), 200, "a freed place is taken again");
    let scraped = app
        .http
        .get(app.scrape_url())
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    assert!(
        scraped.contains("aegis_connections_refused_total 1"),
        "{scraped}"
    );
}

/// Every connection of Aegis to PostgreSQL is cut (as a restart does) while reads are being
/// served: a read on a connection that was cut answers 503 with `Retry-After`, never a 500,
/// and the reads after it are served again without anyone restarting Aegis.
#[tokio::test]
async fn reads_on_connections_cut_under_them_are_503_then_served_again() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let (id, _, _) = app.open_incident(tenant, incident("Cut", "low")).await;
    let path = format!("/incidents/{id}");
    let (status, _) = app.caught_up(tenant, &path).await;
    assert_eq!(status, 200);
    let admin_url = std::env::var("AEGIS_TEST_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .unwrap();
    // Several connections in use just before the cut: their next queries are not preceded
    // by a test (they were used within the last second).
    futures::future::join_all((0..8).map(|_| app.admin(Method::GET, &path, Some(tenant)).send()))
        .await;
    let (cut,): (i64,) = sqlx::query_as(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&app.db.name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(cut > 0, "no connection was cut");
    let mut served = 0;
    for _ in 0..40 {
        let r = app
            .admin(Method::GET, &path, Some(tenant))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => served += 1,
            503 => assert!(
                r.headers().get("retry-after").is_some(),
                "a 503 without Retry-After"
            ),
            other => panic!(
                "a read on a cut connection answered {other}: {}",
                r.text().await.unwrap()
            ),
        }
    }
    assert!(
        served >= 30,
        "reads were not served again after the cut: {served} of 40"
    );
}
