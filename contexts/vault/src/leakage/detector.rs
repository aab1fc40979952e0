//! Bytes to candidates: every policy pattern and the built-in pack compiled into one
//! `RegexSet` pass that says which rules occur in a blob, then only those rules searched for
//! their matches. The regex engine runs in time linear in the input whatever the pattern, so
//! a tenant's pattern cannot stall a scan; compiled size is capped so one cannot exhaust
//! memory either. A candidate is the matched text (or a regex's first group): the caller
//! fingerprints it and forgets it.

use super::{LeakSeverity, Pattern, PatternKind};
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

/// Longest pattern text accepted.
pub const MAX_PATTERN_LEN: usize = 1024;
/// Compiled size allowed per pattern (the regex crate's `size_limit`).
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Entropy threshold when an entropy pattern leaves it empty, in bits per character.
const DEFAULT_ENTROPY: f64 = 4.0;
/// The tokens an entropy rule weighs: key-like runs of 20 to 200 characters.
const ENTROPY_TOKEN: &str = r"[A-Za-z0-9+/_\-=]{20,200}";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatternError {
    #[error("secretPatterns[{index}]: the regex does not compile: {reason}")]
    Regex { index: usize, reason: String },
    #[error("secretPatterns[{index}]: a pattern must be 1 to {MAX_PATTERN_LEN} characters")]
    Length { index: usize },
    #[error("secretPatterns[{index}]: an entropy pattern is the least bits per character, a number from 1 to 8")]
    Entropy { index: usize },
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `builtin:<name>` or the pattern's text.
    pub name: String,
    pub kind: PatternKind,
    pub severity: LeakSeverity,
    regex: Regex,
    min_entropy: Option<f64>,
}

/// The built-in pack: what leaks most and what Aegis itself mints.
pub const BUILTIN: &[(&str, &str, LeakSeverity)] = &[
    (
        "aws-access-key-id",
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        LeakSeverity::High,
    ),
    (
        "github-token",
        r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b",
        LeakSeverity::Critical,
    ),
    (
        "github-fine-grained-token",
        r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
        LeakSeverity::Critical,
    ),
    (
        "slack-token",
        r"\bxox[abposr]-[A-Za-z0-9-]{10,250}",
        LeakSeverity::High,
    ),
    (
        "slack-webhook",
        r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,200}",
        LeakSeverity::High,
    ),
    (
        "google-api-key",
        r"\bAIza[0-9A-Za-z_-]{35}\b",
        LeakSeverity::High,
    ),
    (
        "stripe-secret-key",
        r"\b(?:sk|rk)_live_[0-9A-Za-z]{24,99}\b",
        LeakSeverity::Critical,
    ),
    (
        "private-key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?s:.)*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        LeakSeverity::Critical,
    ),
    (
        "aegis-credential",
        r"\b(?:acp|aga)_[A-Za-z0-9_-]{80,90}",
        LeakSeverity::Critical,
    ),
];

fn build(index: usize, source: &str) -> Result<Regex, PatternError> {
    RegexBuilder::new(source)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| PatternError::Regex {
            index,
            // The library's message draws the pattern with a caret: its last line says why.
            reason: e
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string(),
        })
}

impl Rule {
    /// Compiles the `index`th pattern of a policy.
    pub fn compile(index: usize, p: &Pattern) -> Result<Rule, PatternError> {
        let text = p.pattern.trim();
        if p.kind != PatternKind::Entropy && (text.is_empty() || text.len() > MAX_PATTERN_LEN) {
            return Err(PatternError::Length { index });
        }
        let (source, min_entropy) = match p.kind {
            PatternKind::Regex => (text.to_string(), None),
            // The value assigned to the keyword: `password = "x"`, `DB_PASSWORD: x`.
            PatternKind::Keyword => (
                format!(
                    r#"(?i){}[\w.-]*["']?\s*[:=]+\s*["']?([^\s"'`,;]{{4,200}})"#,
                    regex::escape(text)
                ),
                None,
            ),
            PatternKind::Entropy => {
                let bits = if text.is_empty() {
                    DEFAULT_ENTROPY
                } else {
                    text.parse::<f64>()
                        .map_err(|_| PatternError::Entropy { index })?
                };
                if !(1.0..=8.0).contains(&bits) {
                    return Err(PatternError::Entropy { index });
                }
                (ENTROPY_TOKEN.to_string(), Some(bits))
            }
        };
        Ok(Rule {
            name: p.pattern.clone(),
            kind: p.kind,
            severity: p.severity,
            regex: build(index, &source)?,
            min_entropy,
        })
    }

    fn builtin(name: &str, source: &str, severity: LeakSeverity) -> Result<Rule, PatternError> {
        Ok(Rule {
            name: format!("builtin:{name}"),
            kind: PatternKind::Regex,
            severity,
            // ASCII word boundaries: a Unicode `\b` makes the fast engines give up on
            // non-ASCII bytes, and every pattern here is ASCII.
            regex: build(0, &format!("(?-u){source}"))?,
            min_entropy: None,
        })
    }
}

/// Something that looks like a secret, where it was found in its blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Index into [`Detector::rules`].
    pub rule: usize,
    pub text: &'a [u8],
    pub offset: usize,
}

/// Every rule of a scan, compiled once.
#[derive(Debug, Clone)]
pub struct Detector {
    set: RegexSet,
    pub rules: Vec<Rule>,
}

impl Detector {
    /// The given patterns, and the built-in pack when `builtin` is set.
    pub fn new(patterns: &[Pattern], builtin: bool) -> Result<Detector, PatternError> {
        let mut rules = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| Rule::compile(i, p))
            .collect::<Result<Vec<_>, _>>()?;
        if builtin {
            for (name, source, severity) in BUILTIN {
                rules.push(Rule::builtin(name, source, *severity)?);
            }
        }
        let set = RegexSetBuilder::new(rules.iter().map(|r| r.regex.as_str()))
            .size_limit(REGEX_SIZE_LIMIT * rules.len().max(1))
            .build()
            .map_err(|e| PatternError::Regex {
                index: 0,
                reason: e.to_string(),
            })?;
        Ok(Detector { set, rules })
    }

    /// Every rule's compiled pattern, in rule order (what a plain `RegexSet` of the same
    /// rules would be built from).
    pub fn patterns(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.regex.as_str()).collect()
    }

    /// Appends the candidates in `blob` to `out`, each (rule, text) once.
    pub fn scan<'a>(&self, blob: &'a [u8], out: &mut Vec<Candidate<'a>>) {
        let start = out.len();
        for rule in self.set.matches(blob).iter() {
            let r = &self.rules[rule];
            for caps in r.regex.captures_iter(blob) {
                let Some(m) = caps.get(1).or_else(|| caps.get(0)) else {
                    continue;
                };
                if r.min_entropy.is_some_and(|min| entropy(m.as_bytes()) < min) {
                    continue;
                }
                let c = Candidate {
                    rule,
                    text: m.as_bytes(),
                    offset: m.start(),
                };
                if !out[start..]
                    .iter()
                    .any(|o| o.rule == rule && o.text == c.text)
                {
                    out.push(c);
                }
            }
        }
    }
}

/// Shannon entropy of `bytes`, in bits per byte.
pub fn entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for b in bytes {
        counts[*b as usize] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(kind: PatternKind, p: &str) -> Pattern {
        Pattern {
            kind,
            pattern: p.into(),
            severity: LeakSeverity::Medium,
        }
    }

    fn found(d: &Detector, blob: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        d.scan(blob.as_bytes(), &mut out);
        out.iter()
            .map(|c| {
                (
                    d.rules[c.rule].name.clone(),
                    String::from_utf8_lossy(c.text).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn the_builtin_pack_finds_tokens_and_whole_private_keys() {
        let d = Detector::new(&[], true).expect("the pack compiles");
        let gh = format!("ghp_{}", "a1B2".repeat(9));
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA PRIVATE KEY-----";
        let hits = found(
            &d,
            &format!("token: {gh}\nkey = '''{pem}'''\nAKIAABCDEFGHIJKLMNOP"),
        );
        assert!(hits.contains(&("builtin:github-token".into(), gh)));
        assert!(hits.contains(&("builtin:private-key".into(), pem.into())));
        assert!(hits.contains(&(
            "builtin:aws-access-key-id".into(),
            "AKIAABCDEFGHIJKLMNOP".into()
        )));
        assert!(found(&d, "nothing to see here, AKIA is a prefix").is_empty());
    }

    #[test]
    fn a_keyword_yields_the_value_assigned_to_it() {
        let d =
            Detector::new(&[pattern(PatternKind::Keyword, "password")], false).expect("compiles");
        assert_eq!(
            found(&d, "DB_PASSWORD: \"s3cr3t-value\"\npassword=short"),
            vec![
                ("password".to_string(), "s3cr3t-value".to_string()),
                ("password".to_string(), "short".to_string()),
            ]
        );
    }

    #[test]
    fn an_entropy_rule_keeps_random_tokens_and_drops_words() {
        let d = Detector::new(&[pattern(PatternKind::Entropy, "4.0")], false).expect("compiles");
        let random = "q8ZrT2mX9vLk4PwN7sYb3HcJ";
        assert_eq!(
            found(&d, &format!("aaaaaaaaaaaaaaaaaaaaaaaa {random}")),
            vec![("4.0".to_string(), random.to_string())]
        );
    }

    #[test]
    fn a_regex_group_is_the_candidate_and_repeats_count_once() {
        let d = Detector::new(&[pattern(PatternKind::Regex, r"key\(([a-z]{6})\)")], false)
            .expect("compiles");
        assert_eq!(
            found(&d, "key(abcdef) key(abcdef)"),
            vec![(r"key\(([a-z]{6})\)".to_string(), "abcdef".to_string())]
        );
    }

    #[test]
    fn bad_patterns_are_refused_with_their_index() {
        let err = Detector::new(
            &[
                pattern(PatternKind::Regex, "ok"),
                pattern(PatternKind::Regex, "("),
            ],
            false,
        );
        assert!(matches!(err, Err(PatternError::Regex { index: 1, .. })));
        let err = Detector::new(&[pattern(PatternKind::Entropy, "nine")], false);
        assert_eq!(err.err(), Some(PatternError::Entropy { index: 0 }));
        let err = Detector::new(&[pattern(PatternKind::Keyword, " ")], false);
        assert_eq!(err.err(), Some(PatternError::Length { index: 0 }));
        // A pattern whose compiled form is too big is refused, not built.
        let err = Detector::new(&[pattern(PatternKind::Regex, r"\w{1000}\w{1000}")], false);
        assert!(matches!(err, Err(PatternError::Regex { index: 0, .. })));
    }
}
