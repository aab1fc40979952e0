//! Seed 003's leakage detection: policies say what to look for and what to do about it
//! (`vault.leak_policy.<id>`), scans are jobs that read real bytes (`vault.leak_scan.<id>`),
//! and what they find opens deduplicated incidents with a timeline (`vault.leak_incident.<id>`).
//! The detector that turns bytes into candidates is pure and lives here too; the leaked value
//! itself is never recorded, only which secret it was and where it was seen.

pub mod detector;
pub mod incident;
pub mod organization;
pub mod policy;
pub mod scan;

word_enum!(LeakSeverity {
    Low = "low",
    Medium = "medium",
    High = "high",
    Critical = "critical",
});

word_enum!(PatternKind {
    Regex = "regex",
    Keyword = "keyword",
    Entropy = "entropy",
});

word_enum!(OnDetection {
    Alert = "alert",
    Rotate = "rotate",
    Revoke = "revoke",
});

/// One thing a policy looks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub kind: PatternKind,
    pub pattern: String,
    pub severity: LeakSeverity,
}
