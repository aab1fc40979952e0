use aegis_command_api::auth::platform_routes::PLATFORM;
use aegis_command_api::auth::{routes, PUBLIC};
use aegis_tests::TestApp;
use serde_json::Value;
use std::collections::BTreeSet;

fn documented(spec: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[tokio::test]
async fn the_spec_and_the_route_table_agree_both_ways() {
    let app = TestApp::spawn().await;
    let spec: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "OpenAPI 3.1"
    );
    let documented = documented(&spec);
    let declared: BTreeSet<(String, String)> = routes::all()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .chain(
            PLATFORM
                .iter()
                .filter_map(|r| r.alias().map(|alias| (r.route.method.to_string(), alias))),
        )
        .chain(PUBLIC.iter().map(|(m, p)| (m.to_string(), p.to_string())))
        .collect();
    let undocumented: Vec<_> = declared.difference(&documented).collect();
    let undeclared: Vec<_> = documented.difference(&declared).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the spec: {undocumented:?}"
    );
    assert!(
        undeclared.is_empty(),
        "documented but not in the route table: {undeclared:?}"
    );

    // Every documented operation is served: the router answers it with something other than
    // its fallback (404 "no such route") or 405.
    for (method, path) in &documented {
        let concrete = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        let r = app
            .http
            .request(method.parse().unwrap(), app.url(&concrete))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {path} not served");
        assert!(
            !(status == 404 && body.contains("no such route")),
            "{method} {path} not served"
        );
    }
    // And the converse for an undocumented path: the fallback answers.
    let r = app.http.get(app.url("/not-a-route")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_found");
}

#[tokio::test]
async fn the_spec_describes_auth_headers_and_strict_bodies() {
    let spec = serde_json::to_value(aegis_command_api::http::api_spec()).unwrap();
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    for name in [
        "bearer",
        "internal_secret",
        "secbeat_api_key",
        "agent_secret",
    ] {
        assert!(schemes.contains_key(name), "security scheme {name}");
    }
    assert_eq!(schemes["internal_secret"]["name"], "X-Internal-Secret");
    let schemas = &spec["components"]["schemas"];
    for body in ["OpenBody", "UpdateBody", "CreateTenantBody"] {
        assert_eq!(
            schemas[body]["additionalProperties"], false,
            "{body} refuses unknown fields"
        );
    }
    let open = &spec["paths"]["/incidents"]["post"];
    let params: Vec<&str> = open["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        params.contains(&"X-Tenant-ID") && params.contains(&"Idempotency-Key"),
        "{params:?}"
    );
    assert!(open["responses"]["201"]["headers"]["Aegis-Position"].is_object());
    let patch = &spec["paths"]["/incidents/{id}"]["patch"];
    assert!(patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "If-Match"));
    let list = &spec["paths"]["/incidents"]["get"];
    assert!(list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "Aegis-Min-Position"));
    assert_eq!(
        list["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
}

#[tokio::test]
async fn the_reference_page_needs_no_network() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("/openapi.json"));
    assert!(!html.contains("<script src="), "no external scripts");
    assert!(!html.contains("https://"), "no CDN");
}

/// The request schema of an operation, with its `$ref` followed.
fn request_schema<'a>(spec: &'a Value, op: &'a Value) -> Option<&'a Value> {
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    match schema["$ref"].as_str() {
        Some(r) => spec.pointer(&r.replacen('#', "", 1)),
        None if schema.is_object() => Some(schema),
        None => None,
    }
}

/// Issue 17: every POST whose body fields are all optional is answered the same with no body
/// at all, with or without a Content-Type: never 415, never a complaint about the body.
#[tokio::test]
async fn every_post_whose_body_is_all_optional_takes_no_body() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Bodiless").await;
    app.set_plan(
        tenant,
        serde_json::json!({ "addons": ["vault", "edge", "auto_response", "threat_intel"] }),
    )
    .await;
    let spec: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut tried = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let Some(op) = item.get("post") else { continue };
        let Some(schema) = request_schema(&spec, op) else {
            continue;
        };
        let required = schema["required"].as_array().map_or(0, Vec::len);
        if required > 0 {
            continue;
        }
        let concrete = path
            .replace("{id}", &uuid::Uuid::now_v7().to_string())
            .replace("{name}", "no-such-name")
            .replace("{kind}", "slack");
        for content_type in [None, Some("application/json"), Some("text/plain")] {
            let mut r = app.admin(reqwest::Method::POST, &concrete, Some(tenant));
            if let Some(ct) = content_type {
                r = r.header("content-type", ct);
            }
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let about_the_body = status == 415
                || (matches!(status, 400 | 422)
                    && body.to_string().to_lowercase().contains("body"));
            assert!(
                !about_the_body,
                "POST {path} with no body ({content_type:?}): {status} {body}"
            );
        }
        // No body is the empty object; white space sent as JSON is malformed JSON.
        let r = app
            .admin(reqwest::Method::POST, &concrete, Some(tenant))
            .header("content-type", "application/json")
            .body("\n")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            status == 400 && body.to_string().contains("malformed JSON")
                || status == 404
                || status == 403,
            "POST {path} with a body of white space: {status} {body}"
        );
        tried.push(path.clone());
    }
    assert!(
        tried.iter().any(|p| p == "/credentials/{name}/destroy")
            && tried.iter().any(|p| p == "/kill-switch/release"),
        "the routes the issue names are among those tried: {tried:?}"
    );
}
