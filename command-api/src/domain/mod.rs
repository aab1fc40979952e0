//! The bounded contexts' deciders, as the adapters here name them: each context is a crate
//! of its own (`contexts/<name>`) over the shared kernel (`kernel/`); these re-exports keep
//! the adapters' paths while their services move into the context crates.

pub use aegis_audit as audit;
pub use aegis_auto_response as auto_response;
pub use aegis_identity as identity;
pub use aegis_incidents as incidents;
pub use aegis_integrations as integrations;
pub use aegis_kernel::{
    credential_message, credential_text, derived_id, occurred_at, Aggregate, DecodeError,
};
pub use aegis_vault as vault;

#[cfg(test)]
mod registry {
    /// Every event type the code writes is in `aegis_schemas::events::EVENTS` (so rules and
    /// subscribers can read its payload as JSON), and the registry names nothing the code
    /// does not write. Event types are the `"<aggregate>.<what>.vN"` literals outside tests.
    #[test]
    fn the_schema_registry_knows_every_event_type_written() {
        fn is_event_type(s: &str) -> bool {
            let parts: Vec<&str> = s.split('.').collect();
            parts.len() == 3
                && parts[..2].iter().all(|p| {
                    !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                })
                && parts[2]
                    .strip_prefix('v')
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        }
        let mut written = std::collections::BTreeSet::new();
        for (_, text) in crate::source_files() {
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for literal in code.split('"').skip(1).step_by(2) {
                if is_event_type(literal) {
                    written.insert(literal.to_string());
                }
            }
        }
        let registered: std::collections::BTreeSet<String> = aegis_schemas::events::EVENTS
            .iter()
            .map(|(t, _)| t.to_string())
            .collect();
        assert_eq!(written, registered);
    }
}
