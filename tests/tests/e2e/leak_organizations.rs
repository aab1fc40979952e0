//! Leak scans of whole organizations (issue 23): the repositories are listed through the
//! host's API, here loopback stand-ins for GitHub's `GET /orgs/{org}/repos` and GitLab's
//! `GET /groups/{path}/projects` that accept only requests as each documents them, and each
//! listed repository is cloned and read like one named by hand.

use aegis_tests::git;
use aegis_tests::world::{eventually, serve};
use aegis_tests::TestApp;
use axum::extract::{Path as UrlPath, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Json;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

/// A repository whose first commit holds `line` in `app.env`, deleted by the second.
async fn repository(root: &Path, line: &str) -> String {
    let work = git::init(root).expect("init");
    std::fs::write(work.join("app.env"), format!("{line}\n")).expect("write");
    git::git(&work, &["add", "."]).expect("add");
    git::git(&work, &["commit", "-q", "-m", "config"]).expect("commit");
    git::git(&work, &["rm", "-q", "app.env"]).expect("rm");
    git::git(&work, &["commit", "-q", "-m", "no config in git"]).expect("commit");
    git::publish(root).expect("publish");
    git::serve(root).await
}

/// GitHub's REST API for `org`, whose only repository is `clone_url`: JSON media type, a
/// pinned API version and a User-Agent required, pages of `per_page` by number.
async fn github(org: &'static str, clone_url: String) -> String {
    let app = axum::Router::new().route(
        "/orgs/{org}/repos",
        get(
            move |UrlPath(asked): UrlPath<String>,
                  Query(q): Query<HashMap<String, String>>,
                  h: HeaderMap| {
                let clone_url = clone_url.clone();
                async move {
                    let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
                    if header("accept") != "application/vnd.github+json"
                        || header("x-github-api-version") != "2022-11-28"
                        || header("user-agent").is_empty()
                    {
                        return (
                            StatusCode::BAD_REQUEST,
                            Json(json!({"message": "bad request"})),
                        );
                    }
                    if asked != org {
                        return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"})));
                    }
                    let page = q.get("page").map(String::as_str).unwrap_or("1");
                    let listed = if page == "1" && q.contains_key("per_page") {
                        json!([{ "name": "service", "full_name": format!("{org}/service"),
                                 "clone_url": clone_url, "archived": false }])
                    } else {
                        json!([])
                    };
                    (StatusCode::OK, Json(listed))
                }
            },
        ),
    );
    serve(app).await
}

/// GitLab's REST API for the group `path` (its full path, one encoded segment), subgroups
/// included.
async fn gitlab(path: &'static str, clone_url: String) -> String {
    let app = axum::Router::new().route(
        "/groups/{id}/projects",
        get(
            move |UrlPath(id): UrlPath<String>, Query(q): Query<HashMap<String, String>>| {
                let clone_url = clone_url.clone();
                async move {
                    if id != path || q.get("include_subgroups").map(String::as_str) != Some("true")
                    {
                        return (
                            StatusCode::NOT_FOUND,
                            Json(json!({"message": "404 Group Not Found"})),
                        );
                    }
                    let listed = if q.get("page").map(String::as_str) == Some("1") {
                        json!([{ "path_with_namespace": format!("{path}/deploy"),
                                 "http_url_to_repo": clone_url }])
                    } else {
                        json!([])
                    };
                    (StatusCode::OK, Json(listed))
                }
            },
        ),
    );
    serve(app).await
}

async fn scan(app: &TestApp, tenant: Uuid, body: Value) -> Value {
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/v1/leakage-detection/scan",
            Some(body),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let path = format!(
        "/v1/leakage-detection/scans/{}",
        b["scanId"].as_str().expect("id")
    );
    let ended = eventually(Duration::from_secs(60), || async {
        let (_, b) = app.call(tenant, Method::GET, &path, None).await;
        matches!(b["status"].as_str(), Some("completed" | "failed"))
    })
    .await;
    assert!(ended, "the scan ended");
    app.call(tenant, Method::GET, &path, None).await.1
}

#[tokio::test]
async fn an_organizations_repositories_are_listed_through_its_host_and_each_read() {
    let leaked = format!("ghp_{}Xy7Q", Uuid::now_v7().simple());
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let on_github = repository(a.path(), &format!("GITHUB_TOKEN={leaked}")).await;
    let on_gitlab = repository(b.path(), "LOG_LEVEL=debug").await;
    let (gh, gl) = (
        github("acme", on_github).await,
        gitlab("platform/infra", on_gitlab).await,
    );
    let app = TestApp::spawn_with_config(|c| {
        c.ar_tick_secs = 1;
        c.egress_allow = vec!["127.0.0.1".into()];
        c.github_api_url = gh;
        c.gitlab_api_url = gl;
    })
    .await;
    let tenant = app.create_tenant("Orgs").await;
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/v1/versioned-secrets",
            Some(json!({ "secretId": "ci-token", "value": leaked })),
        )
        .await;
    assert_eq!(s, 201, "{b}");

    // The organization's one repository is listed, cloned and read: the token it once held
    // is found and named.
    let done = scan(
        &app,
        tenant,
        json!({ "targets": ["github"], "scope": { "organizations": ["acme"] } }),
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["bytesScanned"].as_i64() > Some(0), "{done}");
    let (_, b) = app
        .call(tenant, Method::GET, "/v1/leakage-detection/incidents", None)
        .await;
    let named: Vec<&Value> = b["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .filter(|i| i["secretId"] == "ci-token")
        .collect();
    assert_eq!(named.len(), 1, "{b}");
    assert_eq!(named[0]["source"], "github");

    // A GitLab group by its full path, subgroups included.
    let done = scan(
        &app,
        tenant,
        json!({ "targets": ["gitlab"], "scope": { "organizations": ["platform/infra"] } }),
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["bytesScanned"].as_i64() > Some(0), "{done}");

    // An organization the host does not know fails the scan and says which.
    let done = scan(
        &app,
        tenant,
        json!({ "targets": ["github"], "scope": { "organizations": ["ghost"] } }),
    )
    .await;
    assert_eq!(done["status"], "failed", "never clean: {done}");
    let reason = done["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("`ghost`") && reason.contains("not found"),
        "{done}"
    );

    // Organizations need a git host, and a name that host could have.
    for (body, why) in [
        (
            json!({ "targets": ["pastebin"], "scope": { "organizations": ["acme"] } }),
            "no git host",
        ),
        (
            json!({ "targets": ["github"], "scope": { "organizations": ["acme/corp"] } }),
            "not a GitHub name",
        ),
        (
            json!({ "targets": ["gitlab"], "scope": { "organizations": ["a/../b"] } }),
            "not a GitLab path",
        ),
    ] {
        let (s, b) = app
            .call(
                tenant,
                Method::POST,
                "/v1/leakage-detection/scan",
                Some(body),
            )
            .await;
        assert_eq!(s, 422, "{why}: {b}");
        assert_eq!(b["details"]["field"], "scope.organizations", "{why}: {b}");
    }
}
