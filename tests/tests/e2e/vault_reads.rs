//! Value reads under concurrency: their audit records are group-committed (one commit, one
//! fsync for the reads that arrive together), and each read still has its own record, with its
//! own actor and correlation id, before its value leaves.

use aegis_tests::TestApp;
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];
/// Reads per tenant: each credential read by two actors, several times each.
const READS: usize = 48;

async fn tenant_with_credentials(app: &TestApp, label: &str) -> Uuid {
    let tenant = app.create_tenant(label).await;
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    for name in NAMES {
        let (s, b) = app
            .call(
                tenant,
                Method::POST,
                "/credentials",
                Some(
                    json!({ "name": name, "credential_type": "api_key", "provider": "api",
                    "value": format!("{label}-{name}") }),
                ),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
    tenant
}

#[tokio::test]
async fn concurrent_reads_share_commits_and_each_is_recorded_with_its_own_actor() {
    let app = TestApp::spawn().await;
    let tenants = [
        tenant_with_credentials(&app, "t1").await,
        tenant_with_credentials(&app, "t2").await,
    ];
    let admins = [
        app.user_with_role(tenants[0], Some("ADMIN")).await,
        app.user_with_role(tenants[1], Some("ADMIN")).await,
    ];
    // (tenant index, credential, by the user rather than the platform admin, request id)
    let reads: Vec<(usize, &str, bool, String)> = (0..2 * READS)
        .map(|i| {
            (
                i % 2,
                NAMES[i % 3],
                (i / 2) % 2 == 0,
                Uuid::now_v7().to_string(),
            )
        })
        .collect();
    let answers = join_all(reads.iter().map(|(t, name, by_user, request)| {
        let path = format!("/credentials/{name}/value");
        let r = if *by_user {
            app.bearer(Method::GET, &path, &admins[*t].token)
        } else {
            app.admin(Method::GET, &path, Some(tenants[*t]))
        };
        async move {
            let r = r
                .header("X-Request-ID", request)
                .send()
                .await
                .expect("send");
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    }))
    .await;
    for ((t, name, _, _), (status, body)) in reads.iter().zip(&answers) {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["value"], format!("t{}-{name}", t + 1));
    }

    for (t, tenant) in tenants.iter().enumerate() {
        let (s, page) = app
            .caught_up(
                *tenant,
                "/api/v1/audit-events?action=credential.value_read&limit=1000",
            )
            .await;
        assert_eq!(s, 200, "{page}");
        let events = page["data"].as_array().expect("events");
        // Exactly this tenant's reads: none of the other tenant's shared its commits.
        let mine: Vec<_> = reads.iter().filter(|r| r.0 == t).collect();
        assert_eq!(events.len(), mine.len(), "{page}");
        // Each read recorded once, under its own request's correlation id and actor, filed
        // under the credential it read.
        let by_request: BTreeMap<&str, &Value> = events
            .iter()
            .map(|e| (e["correlation_id"].as_str().expect("correlation"), e))
            .collect();
        for (_, name, by_user, request) in &mine {
            let e = by_request
                .get(request.as_str())
                .unwrap_or_else(|| panic!("no record of read {request}: {page}"));
            let actor = if *by_user {
                admins[t].user.to_string()
            } else {
                "bootstrap".to_string()
            };
            assert_eq!(e["actor"], actor.as_str(), "{e}");
            assert!(
                e["resource_id"]
                    .as_str()
                    .is_some_and(|r| r.starts_with(&format!("{name}/"))),
                "{e}"
            );
        }
        // Reads that arrived together went into one commit (one fsync), not one each.
        let commits: HashSet<i64> = events
            .iter()
            .map(|e| e["position"].as_i64().expect("position"))
            .collect();
        assert!(
            commits.len() < events.len(),
            "{} commits for {} reads",
            commits.len(),
            events.len()
        );

        // Seed 001's views count each read, however reads were grouped.
        for name in NAMES {
            let n = mine.iter().filter(|r| r.1 == name).count();
            let (_, log) = app
                .caught_up(
                    *tenant,
                    &format!(
                        "/audit/log?credential_name={name}&action=credential.value_read&limit=100"
                    ),
                )
                .await;
            assert_eq!(log["total"], n, "{log}");
            let (_, detail) = app
                .caught_up(*tenant, &format!("/credentials/{name}"))
                .await;
            assert_eq!(detail["usage_stats"]["total_uses"], n, "{detail}");
            assert!(detail["last_used_at"].is_string(), "{detail}");
        }
    }
}
