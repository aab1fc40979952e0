//! Backward compatibility of the schemas: events already in the log must decode forever, so a
//! field may be added but never removed, renumbered or retyped. The committed `snapshot.txt`
//! records every field as `message field number type label`; [`violations`] compares it with
//! the current descriptors.

use prost::Message;
use prost_types::FileDescriptorSet;
use std::collections::BTreeMap;

/// One field as the snapshot records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldShape {
    pub number: i32,
    /// The protobuf type: a scalar name or the fully-qualified message name.
    pub kind: String,
    pub label: String,
}

/// `(message full name, field name) -> shape`
pub type Shapes = BTreeMap<(String, String), FieldShape>;

/// Flattens a serialized `FileDescriptorSet` into field shapes.
pub fn shapes_from_descriptor(bytes: &[u8]) -> Result<Shapes, prost::DecodeError> {
    let set = FileDescriptorSet::decode(bytes)?;
    let mut out = Shapes::new();
    for file in &set.file {
        let package = file.package();
        if package.starts_with("google.") {
            continue;
        }
        for message in &file.message_type {
            let name = format!("{package}.{}", message.name());
            for field in &message.field {
                let kind = if field.type_name().is_empty() {
                    format!("{:?}", field.r#type()).to_lowercase()
                } else {
                    field.type_name().trim_start_matches('.').to_string()
                };
                let shape = FieldShape {
                    number: field.number(),
                    kind,
                    label: format!("{:?}", field.label()).to_lowercase(),
                };
                out.insert((name.clone(), field.name().to_string()), shape);
            }
        }
    }
    Ok(out)
}

/// Renders shapes in the snapshot's line format, sorted.
pub fn render(shapes: &Shapes) -> String {
    shapes
        .iter()
        .map(|((m, f), s)| format!("{m} {f} {} {} {}\n", s.number, s.kind, s.label))
        .collect()
}

/// Parses the snapshot's line format; blank lines and `#` comments are ignored.
pub fn parse(text: &str) -> Result<Shapes, String> {
    let mut out = Shapes::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [m, f, n, k, l] = parts[..] else {
            return Err(format!("snapshot line {}: expected 5 columns", i + 1));
        };
        let number = n
            .parse()
            .map_err(|_| format!("snapshot line {}: bad field number {n}", i + 1))?;
        out.insert(
            (m.to_string(), f.to_string()),
            FieldShape {
                number,
                kind: k.to_string(),
                label: l.to_string(),
            },
        );
    }
    Ok(out)
}

/// Every way `current` breaks what `snapshot` promised, in words a reviewer can act on.
pub fn violations(snapshot: &Shapes, current: &Shapes) -> Vec<String> {
    let mut out = Vec::new();
    for ((message, field), old) in snapshot {
        match current.get(&(message.clone(), field.clone())) {
            None => out.push(format!("{message}.{field} (#{}) was removed", old.number)),
            Some(new) if new.number != old.number => out.push(format!(
                "{message}.{field} was renumbered {} -> {}",
                old.number, new.number
            )),
            Some(new) if new.kind != old.kind || new.label != old.label => out.push(format!(
                "{message}.{field} was retyped {} {} -> {} {}",
                old.label, old.kind, new.label, new.kind
            )),
            Some(_) => {}
        }
    }
    // A new field must not take a number an old field of the same message held.
    for ((message, field), new) in current {
        let reused = snapshot
            .iter()
            .any(|((m, f), old)| m == message && f != field && old.number == new.number);
        if reused {
            out.push(format!(
                "{message}.{field} reuses field number {}",
                new.number
            ));
        }
    }
    out
}
