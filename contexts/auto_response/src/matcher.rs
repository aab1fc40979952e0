//! The `match` language of auto-response rules (seed 000's `{"finding": "..."}`, extended).
//!
//! A match is a JSON object. Every key must hold, so an object is an implicit `all`:
//! - `"all": [m, ...]`, `"any": [m, ...]`, `"not": m` nest matches;
//! - any other key names a field of the event document (dotted for nested fields) and holds
//!   either a value (equality) or an operator object: `eq`, `ne`, `in`, `not_in`, `gt`, `gte`,
//!   `lt`, `lte` (numbers), `glob` (`*` and `?`), `exists` (boolean).
//!
//! The event document is the event's payload with the envelope's fields beside it:
//! `event_type`, `context`, `aggregate_type`, `aggregate_id`, `actor`, `actor_kind`.
//! A parse error names the path of the offending part (`match.any[1].severity.gt`).

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Glob(String),
    Exists(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    All(Vec<Match>),
    Any(Vec<Match>),
    Not(Box<Match>),
    Field { path: Vec<String>, ops: Vec<Op> },
}

/// Where a definition is wrong, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DefinitionError {
    pub path: String,
    pub message: String,
}

fn err(path: &str, message: impl Into<String>) -> DefinitionError {
    DefinitionError {
        path: path.to_string(),
        message: message.into(),
    }
}

/// How deep `all`/`any`/`not` may nest, and how many conditions a rule may hold: a rule runs
/// against every event of its tenant, so its cost is bounded at creation.
pub const MAX_DEPTH: usize = 8;
pub const MAX_CONDITIONS: usize = 64;

impl Match {
    pub fn parse(value: &Value) -> Result<Match, DefinitionError> {
        let mut count = 0;
        let m = parse_object(value, "match", 0, &mut count)?;
        if count == 0 {
            return Err(err("match", "a match needs at least one condition"));
        }
        Ok(m)
    }

    /// The number of field conditions, for the benchmark and the limits.
    pub fn conditions(&self) -> usize {
        match self {
            Match::All(ms) | Match::Any(ms) => ms.iter().map(Match::conditions).sum(),
            Match::Not(m) => m.conditions(),
            Match::Field { ops, .. } => ops.len(),
        }
    }

    pub fn matches(&self, doc: &Value) -> bool {
        match self {
            Match::All(ms) => ms.iter().all(|m| m.matches(doc)),
            Match::Any(ms) => ms.iter().any(|m| m.matches(doc)),
            Match::Not(m) => !m.matches(doc),
            Match::Field { path, ops } => {
                let found = lookup(doc, path);
                ops.iter().all(|op| op.holds(found))
            }
        }
    }

    /// The canonical JSON form: what is stored and shown.
    pub fn to_json(&self) -> Value {
        match self {
            Match::All(ms) => Value::Object(
                [(
                    "all".to_string(),
                    Value::Array(ms.iter().map(Match::to_json).collect()),
                )]
                .into_iter()
                .collect(),
            ),
            Match::Any(ms) => Value::Object(
                [(
                    "any".to_string(),
                    Value::Array(ms.iter().map(Match::to_json).collect()),
                )]
                .into_iter()
                .collect(),
            ),
            Match::Not(m) => {
                Value::Object([("not".to_string(), m.to_json())].into_iter().collect())
            }
            Match::Field { path, ops } => {
                let mut o = Map::new();
                for op in ops {
                    let (k, v) = op.to_json();
                    o.insert(k.into(), v);
                }
                Value::Object([(path.join("."), Value::Object(o))].into_iter().collect())
            }
        }
    }
}

/// A field of the document, by dotted path.
pub fn lookup<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, key| v.get(key.as_str()))
}

fn parse_object(
    value: &Value,
    path: &str,
    depth: usize,
    count: &mut usize,
) -> Result<Match, DefinitionError> {
    if depth > MAX_DEPTH {
        return Err(err(path, format!("nests deeper than {MAX_DEPTH}")));
    }
    let obj = value
        .as_object()
        .ok_or_else(|| err(path, "expected an object"))?;
    if obj.is_empty() {
        return Err(err(
            path,
            "an empty match matches nothing on purpose: name a condition",
        ));
    }
    let mut parts = Vec::with_capacity(obj.len());
    for (key, v) in obj {
        let here = format!("{path}.{key}");
        let part = match key.as_str() {
            "all" | "any" => {
                let list = v
                    .as_array()
                    .filter(|l| !l.is_empty())
                    .ok_or_else(|| err(&here, "expected a non-empty array of matches"))?;
                let ms = list
                    .iter()
                    .enumerate()
                    .map(|(i, m)| parse_object(m, &format!("{here}[{i}]"), depth + 1, count))
                    .collect::<Result<Vec<_>, _>>()?;
                if key == "all" {
                    Match::All(ms)
                } else {
                    Match::Any(ms)
                }
            }
            "not" => Match::Not(Box::new(parse_object(v, &here, depth + 1, count)?)),
            field => {
                let path: Vec<String> = field.split('.').map(str::to_string).collect();
                if path.iter().any(|p| p.is_empty() || p.len() > 64) {
                    return Err(err(
                        &here,
                        "a field path is dot-separated names of 1 to 64 characters",
                    ));
                }
                let ops = parse_ops(v, &here)?;
                *count += ops.len();
                if *count > MAX_CONDITIONS {
                    return Err(err(
                        &here,
                        format!("a rule holds at most {MAX_CONDITIONS} conditions"),
                    ));
                }
                Match::Field { path, ops }
            }
        };
        parts.push(part);
    }
    Ok(if parts.len() == 1 {
        parts.remove(0)
    } else {
        Match::All(parts)
    })
}

fn number(v: &Value, path: &str) -> Result<f64, DefinitionError> {
    v.as_f64().ok_or_else(|| err(path, "expected a number"))
}

fn parse_ops(v: &Value, path: &str) -> Result<Vec<Op>, DefinitionError> {
    let Some(obj) = v.as_object() else {
        if v.is_array() {
            return Err(err(
                path,
                "use {\"in\": [...]} to match one of several values",
            ));
        }
        return Ok(vec![Op::Eq(v.clone())]);
    };
    if obj.is_empty() {
        return Err(err(path, "expected a value or an operator object"));
    }
    obj.iter()
        .map(|(op, arg)| {
            let here = format!("{path}.{op}");
            Ok(match op.as_str() {
                "eq" => Op::Eq(arg.clone()),
                "ne" => Op::Ne(arg.clone()),
                "in" | "not_in" => {
                    let list = arg
                        .as_array()
                        .filter(|l| !l.is_empty() && l.len() <= 1000)
                        .ok_or_else(|| err(&here, "expected an array of 1 to 1000 values"))?
                        .clone();
                    if op == "in" {
                        Op::In(list)
                    } else {
                        Op::NotIn(list)
                    }
                }
                "gt" => Op::Gt(number(arg, &here)?),
                "gte" => Op::Gte(number(arg, &here)?),
                "lt" => Op::Lt(number(arg, &here)?),
                "lte" => Op::Lte(number(arg, &here)?),
                "glob" => Op::Glob(
                    arg.as_str()
                        .filter(|g| !g.is_empty() && g.len() <= 256)
                        .ok_or_else(|| err(&here, "expected a pattern of 1 to 256 characters"))?
                        .to_string(),
                ),
                "exists" => Op::Exists(
                    arg.as_bool()
                        .ok_or_else(|| err(&here, "expected true or false"))?,
                ),
                other => {
                    return Err(err(
                        &here,
                        format!("`{other}` is not an operator: eq, ne, in, not_in, gt, gte, lt, lte, glob, exists"),
                    ))
                }
            })
        })
        .collect()
}

/// Equality that treats 3 and 3.0 alike, as JSON does.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

impl Op {
    fn holds(&self, found: Option<&Value>) -> bool {
        match self {
            Op::Exists(want) => found.is_some_and(|v| !v.is_null()) == *want,
            Op::Ne(v) => !found.is_some_and(|f| same(f, v)),
            Op::NotIn(vs) => !found.is_some_and(|f| vs.iter().any(|v| same(f, v))),
            _ => {
                let Some(f) = found else { return false };
                match self {
                    Op::Eq(v) => same(f, v),
                    Op::In(vs) => vs.iter().any(|v| same(f, v)),
                    Op::Gt(n) => f.as_f64().is_some_and(|x| x > *n),
                    Op::Gte(n) => f.as_f64().is_some_and(|x| x >= *n),
                    Op::Lt(n) => f.as_f64().is_some_and(|x| x < *n),
                    Op::Lte(n) => f.as_f64().is_some_and(|x| x <= *n),
                    Op::Glob(g) => f.as_str().is_some_and(|s| glob(g.as_bytes(), s.as_bytes())),
                    Op::Exists(_) | Op::Ne(_) | Op::NotIn(_) => false,
                }
            }
        }
    }

    fn to_json(&self) -> (&'static str, Value) {
        let n = |x: &f64| serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number);
        match self {
            Op::Eq(v) => ("eq", v.clone()),
            Op::Ne(v) => ("ne", v.clone()),
            Op::In(vs) => ("in", Value::Array(vs.clone())),
            Op::NotIn(vs) => ("not_in", Value::Array(vs.clone())),
            Op::Gt(x) => ("gt", n(x)),
            Op::Gte(x) => ("gte", n(x)),
            Op::Lt(x) => ("lt", n(x)),
            Op::Lte(x) => ("lte", n(x)),
            Op::Glob(g) => ("glob", Value::String(g.clone())),
            Op::Exists(b) => ("exists", Value::Bool(*b)),
        }
    }
}

/// `*` matches any run of bytes, `?` any one byte, everything else itself. Linear in the
/// text: the pattern is cut at its stars, the first piece must start the text and the last
/// end it, and each piece between is found leftmost after the previous one (leftmost is
/// always right, since a star absorbs whatever lies between), with a bit-parallel search that
/// reads each byte of the text once per 64 pattern bytes. A rule author cannot make one event
/// cost more than its length times the rule's pattern bytes / 64.
pub fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let mut pieces = pattern.split(|b| *b == b'*');
    let first = pieces.next().unwrap_or_default();
    let rest: Vec<&[u8]> = pieces.collect();
    let Some((last, middle)) = rest.split_last() else {
        // No star: the whole text, byte for byte.
        return text.len() == pattern.len() && piece_at(first, text);
    };
    if text.len() < first.len() + last.len()
        || !piece_at(first, text)
        || !piece_at(last, &text[text.len() - last.len()..])
    {
        return false;
    }
    let mut inside = &text[first.len()..text.len() - last.len()];
    for piece in middle.iter().filter(|p| !p.is_empty()) {
        match find(piece, inside) {
            Some(end) => inside = &inside[end..],
            None => return false,
        }
    }
    true
}

/// Whether `piece` (with `?`) matches the start of `text`.
fn piece_at(piece: &[u8], text: &[u8]) -> bool {
    text.len() >= piece.len() && piece.iter().zip(text).all(|(p, t)| *p == b'?' || p == t)
}

/// Where the leftmost occurrence of `piece` (with `?`) in `text` ends: shift-and over words of
/// 64 pattern bytes.
fn find(piece: &[u8], text: &[u8]) -> Option<usize> {
    let words = piece.len().div_ceil(64);
    // masks[byte * words + word]: which positions of the piece accept `byte` (one allocation).
    let mut masks = vec![0u64; 256 * words];
    for (i, p) in piece.iter().enumerate() {
        let (w, bit) = (i / 64, 1u64 << (i % 64));
        if *p == b'?' {
            masks.chunks_mut(words).for_each(|m| m[w] |= bit);
        } else {
            masks[*p as usize * words + w] |= bit;
        }
    }
    let (last_word, last_bit) = ((piece.len() - 1) / 64, 1u64 << ((piece.len() - 1) % 64));
    let mut state = vec![0u64; words];
    for (at, byte) in text.iter().enumerate() {
        // state = ((state << 1) | 1) & masks[byte], the shift carrying across words.
        let accept = &masks[*byte as usize * words..][..words];
        let mut carry = 1u64;
        for (s, m) in state.iter_mut().zip(accept) {
            let next_carry = *s >> 63;
            *s = ((*s << 1) | carry) & m;
            carry = next_carry;
        }
        if state[last_word] & last_bit != 0 {
            return Some(at + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "event_type": "finding.reported.v1", "finding": "prompt_injection_detected",
            "severity": 8, "agent_id": "agent-7", "source": { "ip": "10.1.2.3" }, "tags": null
        })
    }

    #[test]
    fn seed_000s_example_matches_by_equality() {
        let m = Match::parse(&json!({ "finding": "prompt_injection_detected" })).expect("parses");
        assert!(m.matches(&event()));
        assert!(!m.matches(&json!({ "finding": "other" })));
    }

    #[test]
    fn operators_nest_with_all_any_and_not() {
        let m = Match::parse(&json!({
            "event_type": { "glob": "finding.*" },
            "any": [
                { "severity": { "gte": 7, "lt": 10 } },
                { "source.ip": { "glob": "192.168.*" } }
            ],
            "not": { "agent_id": { "in": ["agent-1", "agent-2"] } },
            "tags": { "exists": false }
        }))
        .expect("parses");
        assert_eq!(m.conditions(), 6);
        assert!(m.matches(&event()));
        let mut low = event();
        low["severity"] = json!(3);
        assert!(!m.matches(&low));
        let mut excluded = event();
        excluded["agent_id"] = json!("agent-2");
        assert!(!m.matches(&excluded));
        // 8 and 8.0 are the same number.
        assert!(Match::parse(&json!({ "severity": 8.0 }))
            .expect("parses")
            .matches(&event()));
    }

    #[test]
    fn a_missing_field_satisfies_only_negative_conditions() {
        for (m, expected) in [
            (json!({ "nope": "x" }), false),
            (json!({ "nope": { "gt": 1 } }), false),
            (json!({ "nope": { "ne": "x" } }), true),
            (json!({ "nope": { "not_in": ["x"] } }), true),
            (json!({ "nope": { "exists": false } }), true),
        ] {
            assert_eq!(
                Match::parse(&m).expect("parses").matches(&event()),
                expected,
                "{m}"
            );
        }
    }

    #[test]
    fn errors_name_the_path() {
        for (m, path) in [
            (json!([]), "match"),
            (json!({}), "match"),
            (
                json!({ "any": [{ "severity": { "gt": "high" } }] }),
                "match.any[0].severity.gt",
            ),
            (json!({ "all": [] }), "match.all"),
            (
                json!({ "severity": { "between": [1, 2] } }),
                "match.severity.between",
            ),
            (json!({ "severity": [1, 2] }), "match.severity"),
            (json!({ "a..b": 1 }), "match.a..b"),
        ] {
            assert_eq!(Match::parse(&m).expect_err("refused").path, path, "{m}");
        }
        let deep = (0..10).fold(json!({ "x": 1 }), |m, _| json!({ "not": m }));
        assert!(Match::parse(&deep).is_err());
    }

    #[test]
    fn the_canonical_form_parses_to_the_same_match() {
        let m = Match::parse(
            &json!({ "a": 1, "any": [{ "b": { "glob": "x*" } }, { "c": { "gte": 2 } }] }),
        )
        .expect("parses");
        assert_eq!(Match::parse(&m.to_json()).expect("reparses"), m);
    }

    #[test]
    fn globs() {
        for (p, t, ok) in [
            ("*", "", true),
            ("a*c", "abbbc", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*.evil.com", "x.evil.com", true),
            ("*.evil.com", "evil.com", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("", "", true),
            ("", "a", false),
            ("**", "", true),
            ("a*", "a", true),
            ("*a", "a", true),
            ("*ab*", "xaaby", true),
            ("a*a", "a", false),
            ("?*?", "ab", true),
            ("?*?", "a", false),
        ] {
            assert_eq!(glob(p.as_bytes(), t.as_bytes()), ok, "{p} {t}");
        }
    }

    /// The textbook definition, exponential but obviously right: the reference for `glob`.
    fn reference(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, _) => t.is_empty(),
            (Some(b'*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
            (Some(c), Some(d)) if *c == b'?' || c == d => reference(&p[1..], &t[1..]),
            _ => false,
        }
    }

    #[test]
    fn glob_agrees_with_the_definition_on_every_small_case() {
        let alphabet = [b'a', b'b', b'*', b'?'];
        let mut patterns = vec![vec![]];
        for _ in 0..5 {
            let longer: Vec<Vec<u8>> = patterns
                .iter()
                .flat_map(|p| alphabet.iter().map(move |c| [p.as_slice(), &[*c]].concat()))
                .collect();
            patterns.extend(longer);
        }
        patterns.sort();
        patterns.dedup();
        let texts: Vec<Vec<u8>> = (0..64u32)
            .flat_map(|n| {
                (0..7).map(move |len| {
                    (0..len)
                        .map(|i| if n >> i & 1 == 1 { b'a' } else { b'b' })
                        .collect()
                })
            })
            .collect();
        for p in &patterns {
            for t in &texts {
                assert_eq!(
                    glob(p, t),
                    reference(p, t),
                    "{:?} {:?}",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(t)
                );
            }
        }
    }

    #[test]
    fn long_pieces_cross_word_boundaries() {
        let piece = "ab?".repeat(50); // 150 bytes: three words
        let text = format!("{}{}{}", "x".repeat(1000), "abz".repeat(50), "y");
        assert!(glob(format!("*{piece}*").as_bytes(), text.as_bytes()));
        assert!(!glob(format!("*{piece}q*").as_bytes(), text.as_bytes()));
    }
}
