//! Subjects of the event log: `aegis.evt.<tenant>.<context>.<aggregate>.<id>`.
//!
//! Tenants are UUIDs, contexts and aggregate types are lower-case ASCII words, and ids are
//! encoded so that no `.`, `*`, `>` or white space ever reaches a subject raw: bytes outside
//! `[A-Za-z0-9-]` become `_XX` (upper-case hex), which is reversible and keeps UUIDs readable.

use std::fmt::Write;
use uuid::Uuid;

pub const EVENT_PREFIX: &str = "aegis.evt";

/// The tenant that owns platform-wide aggregates (tenant name claims and the like).
pub const PLATFORM_TENANT: Uuid = Uuid::nil();

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubjectError {
    #[error("`{0}` is not a lower-case ASCII word")]
    NotAWord(String),
    #[error("an aggregate id must not be empty")]
    EmptyId,
    #[error("`{0}` is not a valid encoded token")]
    BadEncoding(String),
}

/// Encodes an arbitrary id into one safe subject token.
pub fn encode_token(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "_{b:02X}");
        }
    }
    out
}

/// Reverses [`encode_token`].
pub fn decode_token(token: &str) -> Result<String, SubjectError> {
    let bad = || SubjectError::BadEncoding(token.to_string());
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = token.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// One aggregate's address in the log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AggregateRef {
    pub tenant: Uuid,
    pub context: &'static str,
    pub aggregate: &'static str,
    pub id: String,
}

impl AggregateRef {
    pub fn new(
        tenant: Uuid,
        context: &'static str,
        aggregate: &'static str,
        id: impl Into<String>,
    ) -> Result<Self, SubjectError> {
        let id = id.into();
        for word in [context, aggregate] {
            if !is_word(word) {
                return Err(SubjectError::NotAWord(word.to_string()));
            }
        }
        if id.is_empty() {
            return Err(SubjectError::EmptyId);
        }
        Ok(Self {
            tenant,
            context,
            aggregate,
            id,
        })
    }

    pub fn subject(&self) -> String {
        format!(
            "{EVENT_PREFIX}.{}.{}.{}.{}",
            self.tenant,
            self.context,
            self.aggregate,
            encode_token(&self.id)
        )
    }
}

/// Subject filter for one tenant's events, optionally narrowed to a context.
pub fn tenant_filter(tenant: Uuid, context: Option<&str>) -> String {
    match context {
        Some(c) => format!("{EVENT_PREFIX}.{tenant}.{c}.>"),
        None => format!("{EVENT_PREFIX}.{tenant}.>"),
    }
}

/// Subject filter for one context across all tenants (what a projector consumes).
pub fn context_filter(context: &str) -> String {
    format!("{EVENT_PREFIX}.*.{context}.>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_with_subject_syntax_never_reach_the_subject_raw() {
        for raw in [
            "a.b",
            "*",
            ">",
            "with space",
            "tab\there",
            "ünïcode",
            "a_b",
            "_2E",
        ] {
            let token = encode_token(raw);
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{raw:?} -> {token:?}"
            );
            assert_eq!(decode_token(&token).as_deref(), Ok(raw));
        }
    }

    #[test]
    fn uuids_stay_readable() {
        let id = Uuid::now_v7().to_string();
        assert_eq!(encode_token(&id), id);
    }

    #[test]
    fn subject_has_the_documented_shape() {
        let tenant = Uuid::now_v7();
        let agg = AggregateRef::new(tenant, "incidents", "incident", "x.y").expect("valid");
        assert_eq!(
            agg.subject(),
            format!("aegis.evt.{tenant}.incidents.incident.x_2Ey")
        );
    }

    #[test]
    fn contexts_must_be_lower_case_words() {
        let t = Uuid::nil();
        assert!(AggregateRef::new(t, "Incidents", "incident", "1").is_err());
        assert!(AggregateRef::new(t, "inc.dents", "incident", "1").is_err());
        assert_eq!(
            AggregateRef::new(t, "incidents", "incident", ""),
            Err(SubjectError::EmptyId)
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert!(decode_token("_Z1").is_err());
        assert!(decode_token("abc_4").is_err());
    }
}
