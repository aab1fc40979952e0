//! The crate graph is the architecture (ARCHITECTURE.md, "Crates"): read from `cargo metadata`,
//! these rules fail the build's tests when an edge appears that the design forbids.

use std::collections::{BTreeMap, BTreeSet};

mod support;

/// Each workspace crate and the crates it depends on (normal dependencies).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let meta = support::workspace();
    let mut graph = BTreeMap::new();
    for package in meta["packages"].as_array().expect("packages") {
        let deps = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().unwrap_or_default().to_string())
            .collect();
        graph.insert(
            package["name"].as_str().unwrap_or_default().to_string(),
            deps,
        );
    }
    graph
}

const CONTEXTS: &[&str] = &[
    "aegis-identity",
    "aegis-incidents",
    "aegis-auto-response",
    "aegis-vault",
    "aegis-integrations",
    "aegis-audit",
    "aegis-broker",
];

/// What a context may know besides the kernel: only the contexts ARCHITECTURE.md names.
fn allowed_contexts(context: &str) -> &'static [&'static str] {
    match context {
        // A rule may open an incident; its actions name incident severities.
        "aegis-auto-response" => &["aegis-incidents"],
        _ => &[],
    }
}

#[test]
fn contexts_and_the_kernel_know_no_adapter_and_no_io() {
    let graph = graph();
    let forbidden = [
        "aegis-command-api",
        "aegis-streams",
        "aegis-reactors",
        "aegis-projectors",
        "axum",
        "utoipa-axum",
        "sqlx",
        "reqwest",
        "tokio",
        "async-nats",
    ];
    for krate in CONTEXTS.iter().chain(&["aegis-kernel"]) {
        let deps = &graph[*krate];
        for f in forbidden {
            assert!(!deps.contains(f), "{krate} depends on {f}");
        }
    }
}

#[test]
fn the_runtime_knows_no_http_and_no_context() {
    let graph = graph();
    let deps = &graph["aegis-runtime"];
    for f in [
        "axum",
        "utoipa",
        "utoipa-axum",
        "tower-http",
        "aegis-command-api",
    ]
    .iter()
    .chain(CONTEXTS)
    {
        assert!(!deps.contains(*f), "aegis-runtime depends on {f}");
    }
}

#[test]
fn a_context_knows_only_the_contexts_it_is_allowed_to() {
    let graph = graph();
    for context in CONTEXTS {
        for dep in graph[*context]
            .iter()
            .filter(|d| CONTEXTS.contains(&d.as_str()))
        {
            assert!(
                allowed_contexts(context).contains(&dep.as_str()),
                "{context} depends on {dep}, which ARCHITECTURE.md does not allow"
            );
        }
    }
}

#[test]
fn nothing_below_the_adapters_depends_on_them() {
    let graph = graph();
    for (krate, deps) in &graph {
        if krate != "aegis-command-api" && krate != "aegis-tests" {
            assert!(
                !deps.contains("aegis-command-api"),
                "{krate} depends on the HTTP adapter"
            );
        }
    }
}

/// The HTTP stack: only `command-api` (and the tests) may know it.
const HTTP: &[&str] = &[
    "axum",
    "utoipa",
    "utoipa-axum",
    "tower-http",
    "aegis-command-api",
];

/// A context's services: its I/O, over the runtime (see ARCHITECTURE.md).
const SERVICES: &[&str] = &[
    "aegis-auto-response-services",
    "aegis-broker-services",
    "aegis-incidents-services",
    "aegis-integrations-services",
    "aegis-vault-services",
];

#[test]
fn reactors_and_projectors_know_no_http() {
    let graph = graph();
    for krate in ["aegis-reactors", "aegis-projectors"] {
        for f in HTTP {
            assert!(!graph[krate].contains(*f), "{krate} depends on {f}");
        }
    }
}

#[test]
fn services_know_no_http_and_contexts_know_no_services() {
    let graph = graph();
    for krate in SERVICES {
        for f in HTTP.iter().chain(&["aegis-reactors"]) {
            assert!(!graph[*krate].contains(*f), "{krate} depends on {f}");
        }
    }
    for lower in CONTEXTS.iter().chain(&["aegis-kernel", "aegis-runtime"]) {
        for s in SERVICES {
            assert!(!graph[*lower].contains(*s), "{lower} depends on {s}");
        }
    }
}

#[test]
fn every_service_crate_is_held_to_the_service_rules() {
    let graph = graph();
    let found: BTreeSet<&str> = graph
        .keys()
        .map(String::as_str)
        .filter(|k| k.ends_with("-services"))
        .collect();
    let listed: BTreeSet<&str> = SERVICES.iter().copied().collect();
    assert_eq!(found, listed, "list each services/ crate in SERVICES");
}
