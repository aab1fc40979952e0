//! aegis-command-api: the HTTP and NATS adapters (extract, call a context's service or the
//! executor, reply), authentication, the route table and OpenAPI, and the `aegis` binary's
//! entry point, which composes every role: the adapters, the projectors and the reactors.
//!
//! Invariants: errors become HTTP only here (`error`, and each context's mapping beside its
//! handlers); commands reach the log only through the runtime's executor.

pub mod access_log;
pub mod app;
pub mod audit_bundle;
pub mod auth;
pub mod cli;
pub mod consistency;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod limits;
pub mod nats_auth;
pub mod nats_bridge;
pub mod rate_limit;
pub mod state;
pub mod threat_intel;
pub mod usage;

#[cfg(test)]
mod event_registry;

#[cfg(test)]
pub(crate) fn source_files() -> Vec<(std::path::PathBuf, String)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // This crate and the crates it adapts: the contexts, their kernel and services, and the
    // reactors.
    for dir in [
        here.join("src"),
        here.join("../contexts"),
        here.join("../kernel/src"),
        here.join("../services"),
        here.join("../reactors/src"),
    ] {
        walk(&dir, &mut out);
    }
    out
}
