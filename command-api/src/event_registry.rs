//! The schema registry and the code agree on which event types exist.

/// Every event type the code writes is in `aegis_schemas::events::EVENTS` (so rules and
/// subscribers can read its payload as JSON), and the registry names nothing the code
/// does not write. Event types are the `"<aggregate>.<what>.vN"` literals outside tests.
#[test]
fn the_schema_registry_knows_every_event_type_written() {
    fn is_event_type(s: &str) -> bool {
        let parts: Vec<&str> = s.split('.').collect();
        parts.len() == 3
            && parts[..2]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
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
