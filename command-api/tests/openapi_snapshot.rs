//! The OpenAPI document is a contract: it changes only on purpose. A move of code (the crate
//! split, a refactor) must leave it byte for byte the same; a change of the API refreshes the
//! snapshot with `AEGIS_UPDATE_OPENAPI_SNAPSHOT=1 cargo test -p aegis-command-api --test openapi_snapshot`.

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.snapshot.json");

#[test]
fn the_openapi_document_matches_its_snapshot() {
    let current = aegis_command_api::http::api_spec()
        .to_pretty_json()
        .expect("the document serialises");
    if std::env::var_os("AEGIS_UPDATE_OPENAPI_SNAPSHOT").is_some() {
        std::fs::write(SNAPSHOT, &current).expect("snapshot written");
        return;
    }
    let snapshot = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        snapshot == current,
        "the OpenAPI document changed; if on purpose, refresh the snapshot \
         (AEGIS_UPDATE_OPENAPI_SNAPSHOT=1)"
    );
}
