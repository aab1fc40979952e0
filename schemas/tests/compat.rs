#![allow(clippy::unwrap_used)]
//! Keeps the event schemas backward compatible with `snapshot.txt`.
//! After adding fields, refresh the snapshot with `AEGIS_UPDATE_SCHEMA_SNAPSHOT=1 cargo test -p aegis-schemas`.

use aegis_schemas::compat::{
    parse, render, shapes_from_descriptor, violations, FieldShape, Shapes,
};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/snapshot.txt");

#[test]
fn current_schemas_keep_every_field_of_the_snapshot() {
    let current =
        shapes_from_descriptor(aegis_schemas::DESCRIPTOR_SET).expect("descriptor decodes");
    if std::env::var_os("AEGIS_UPDATE_SCHEMA_SNAPSHOT").is_some() {
        let old =
            parse(&std::fs::read_to_string(SNAPSHOT).unwrap_or_default()).expect("snapshot parses");
        let broken = violations(&old, &current);
        assert!(
            broken.is_empty(),
            "refusing to snapshot a breaking change: {broken:#?}"
        );
        std::fs::write(SNAPSHOT, render(&current)).expect("snapshot written");
        return;
    }
    let snapshot = parse(&std::fs::read_to_string(SNAPSHOT).expect("snapshot.txt exists"))
        .expect("snapshot parses");
    let broken = violations(&snapshot, &current);
    assert!(broken.is_empty(), "breaking schema changes: {broken:#?}");
    let unrecorded: Vec<_> = current
        .keys()
        .filter(|k| !snapshot.contains_key(*k))
        .collect();
    assert!(
        unrecorded.is_empty(),
        "new fields are not in snapshot.txt yet (run with AEGIS_UPDATE_SCHEMA_SNAPSHOT=1): {unrecorded:?}"
    );
}

fn shapes(rows: &[(&str, &str, i32, &str)]) -> Shapes {
    rows.iter()
        .map(|(m, f, n, k)| {
            (
                (m.to_string(), f.to_string()),
                FieldShape {
                    number: *n,
                    kind: k.to_string(),
                    label: "optional".into(),
                },
            )
        })
        .collect()
}

#[test]
fn a_removed_field_is_a_violation() {
    let old = shapes(&[("a.M", "x", 1, "string"), ("a.M", "y", 2, "string")]);
    let new = shapes(&[("a.M", "x", 1, "string")]);
    assert_eq!(
        violations(&old, &new),
        vec!["a.M.y (#2) was removed".to_string()]
    );
}

#[test]
fn a_renumbered_field_is_a_violation() {
    let old = shapes(&[("a.M", "x", 1, "string")]);
    let new = shapes(&[("a.M", "x", 3, "string")]);
    assert_eq!(
        violations(&old, &new),
        vec!["a.M.x was renumbered 1 -> 3".to_string()]
    );
}

#[test]
fn a_retyped_field_is_a_violation() {
    let old = shapes(&[("a.M", "x", 1, "string")]);
    let new = shapes(&[("a.M", "x", 1, "bytes")]);
    assert_eq!(violations(&old, &new).len(), 1);
}

#[test]
fn a_new_field_on_a_fresh_number_is_fine_but_reusing_a_number_is_not() {
    let old = shapes(&[("a.M", "x", 1, "string")]);
    assert!(violations(
        &old,
        &shapes(&[("a.M", "x", 1, "string"), ("a.M", "y", 2, "int64")])
    )
    .is_empty());
    let reuse = shapes(&[("a.M", "x", 1, "string"), ("a.M", "z", 1, "int64")]);
    assert!(!violations(&old, &reuse).is_empty());
}
