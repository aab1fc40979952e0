//! A credential's settings: what seed 001 lets a caller set and change, and how it rotates.

use aegis_schemas::vault::v1 as pb;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

word_enum!(RotationStrategy {
    Manual = "manual",
    Scheduled = "scheduled",
    OnExpiry = "on_expiry",
});

/// How a credential gets its next value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotator {
    /// A random value of `length` characters drawn from `alphabet`.
    Generated { length: u32, alphabet: String },
    /// A Postgres role's password: the role logs in with its current value and sets the new.
    PostgresRole {
        host: String,
        port: u16,
        database: String,
        role: String,
    },
    /// An endpoint that answers a POST with `{"value": "..."}`.
    Http {
        url: String,
        health_url: Option<String>,
    },
}

pub const DEFAULT_ALPHABET: &str =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
pub const DEFAULT_LENGTH: u32 = 40;

impl Default for Rotator {
    fn default() -> Self {
        Rotator::Generated {
            length: DEFAULT_LENGTH,
            alphabet: DEFAULT_ALPHABET.into(),
        }
    }
}

impl Rotator {
    pub fn kind(&self) -> &'static str {
        match self {
            Rotator::Generated { .. } => "generated",
            Rotator::PostgresRole { .. } => "postgres_role",
            Rotator::Http { .. } => "http",
        }
    }

    fn to_pb(&self) -> pb::Rotator {
        match self {
            Rotator::Generated { length, alphabet } => pb::Rotator {
                kind: self.kind().into(),
                length: *length,
                alphabet: alphabet.clone(),
                ..Default::default()
            },
            Rotator::PostgresRole {
                host,
                port,
                database,
                role,
            } => pb::Rotator {
                kind: self.kind().into(),
                host: host.clone(),
                port: u32::from(*port),
                database: database.clone(),
                role: role.clone(),
                ..Default::default()
            },
            Rotator::Http { url, health_url } => pb::Rotator {
                kind: self.kind().into(),
                url: url.clone(),
                health_url: health_url.clone().unwrap_or_default(),
                ..Default::default()
            },
        }
    }

    fn from_pb(r: pb::Rotator) -> Self {
        match r.kind.as_str() {
            "postgres_role" => Rotator::PostgresRole {
                host: r.host,
                port: u16::try_from(r.port).unwrap_or(5432),
                database: r.database,
                role: r.role,
            },
            "http" => Rotator::Http {
                url: r.url,
                health_url: (!r.health_url.is_empty()).then_some(r.health_url),
            },
            _ => Rotator::Generated {
                length: if r.length == 0 {
                    DEFAULT_LENGTH
                } else {
                    r.length
                },
                alphabet: if r.alphabet.is_empty() {
                    DEFAULT_ALPHABET.into()
                } else {
                    r.alphabet
                },
            },
        }
    }
}

/// One metadata value: any JSON (seed 001's `metadata` is a free-form object).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct MetaValue(pub serde_json::Value);

// JSON values parsed from text hold no NaN, so equality is total.
impl Eq for MetaValue {}

impl MetaValue {
    pub fn text(s: impl Into<String>) -> Self {
        Self(serde_json::Value::String(s.into()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub description: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub rotation_enabled: bool,
    pub rotation_interval_hours: u32,
    pub rotation_strategy: RotationStrategy,
    pub alert_threshold_hours: u32,
    pub tags: Vec<String>,
    pub metadata: BTreeMap<String, MetaValue>,
    pub provider_credential_id: Option<String>,
    pub rotator: Rotator,
}

pub const DEFAULT_ROTATION_INTERVAL_HOURS: u32 = 720;
pub const DEFAULT_ALERT_THRESHOLD_HOURS: u32 = 168;

impl Default for Settings {
    fn default() -> Self {
        Self {
            description: String::new(),
            expires_at: None,
            rotation_enabled: false,
            rotation_interval_hours: DEFAULT_ROTATION_INTERVAL_HOURS,
            rotation_strategy: RotationStrategy::Manual,
            alert_threshold_hours: DEFAULT_ALERT_THRESHOLD_HOURS,
            tags: Vec::new(),
            metadata: BTreeMap::new(),
            provider_credential_id: None,
            rotator: Rotator::default(),
        }
    }
}

impl Settings {
    /// A metadata value that is text (`base_url`, `n8n_credential_type`).
    pub fn metadata_text(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(|v| v.0.as_str())
    }

    pub fn to_pb(&self) -> pb::Settings {
        pb::Settings {
            description: self.description.clone(),
            expires_at: self.expires_at.map_or(0, |t| t.timestamp()),
            rotation_enabled: self.rotation_enabled,
            rotation_interval_hours: self.rotation_interval_hours,
            rotation_strategy: self.rotation_strategy.as_str().into(),
            alert_threshold_hours: self.alert_threshold_hours,
            tags: self.tags.clone(),
            metadata: self
                .metadata
                .iter()
                .filter_map(|(k, v)| v.0.as_str().map(|s| (k.clone(), s.to_string())))
                .collect(),
            metadata_json: if self.metadata.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&self.metadata).unwrap_or_default()
            },
            provider_credential_id: self.provider_credential_id.clone().unwrap_or_default(),
            rotator: Some(self.rotator.to_pb()),
        }
    }

    pub fn from_pb(s: pb::Settings) -> Self {
        Self {
            description: s.description,
            expires_at: (s.expires_at != 0)
                .then(|| DateTime::from_timestamp(s.expires_at, 0))
                .flatten(),
            rotation_enabled: s.rotation_enabled,
            rotation_interval_hours: s.rotation_interval_hours,
            rotation_strategy: RotationStrategy::parse(&s.rotation_strategy)
                .unwrap_or(RotationStrategy::Manual),
            alert_threshold_hours: s.alert_threshold_hours,
            tags: s.tags,
            metadata: match serde_json::from_str::<BTreeMap<String, serde_json::Value>>(
                &s.metadata_json,
            ) {
                Ok(all) => all.into_iter().map(|(k, v)| (k, MetaValue(v))).collect(),
                // Written before metadata_json: string values only.
                Err(_) => s
                    .metadata
                    .into_iter()
                    .map(|(k, v)| (k, MetaValue::text(v)))
                    .collect(),
            },
            provider_credential_id: (!s.provider_credential_id.is_empty())
                .then_some(s.provider_credential_id),
            rotator: s.rotator.map(Rotator::from_pb).unwrap_or_default(),
        }
    }

    /// When the next scheduled rotation is due, if the credential rotates by itself.
    pub fn next_rotation(&self, last: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.rotation_enabled {
            return None;
        }
        match self.rotation_strategy {
            RotationStrategy::Manual => None,
            RotationStrategy::Scheduled => {
                Some(last + chrono::Duration::hours(i64::from(self.rotation_interval_hours)))
            }
            RotationStrategy::OnExpiry => self.expires_at.map(|e| {
                e - chrono::Duration::hours(i64::from(self.alert_threshold_hours.min(24)))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_the_wire() {
        let s = Settings {
            description: "d".into(),
            expires_at: DateTime::from_timestamp(1_900_000_000, 0),
            rotation_enabled: true,
            rotation_interval_hours: 24,
            rotation_strategy: RotationStrategy::Scheduled,
            alert_threshold_hours: 12,
            tags: vec!["a".into()],
            metadata: [
                ("env".to_string(), MetaValue::text("prod")),
                (
                    "owner".to_string(),
                    MetaValue(serde_json::json!({ "team": "platform", "on_call": [1, 2] })),
                ),
            ]
            .into(),
            provider_credential_id: Some("n8n-1".into()),
            rotator: Rotator::PostgresRole {
                host: "127.0.0.1".into(),
                port: 5432,
                database: "app".into(),
                role: "svc".into(),
            },
        };
        assert_eq!(Settings::from_pb(s.to_pb()), s);
        // What readers before metadata_json understood: the text values, in the map.
        assert_eq!(
            s.to_pb().metadata.get("env").map(String::as_str),
            Some("prod")
        );
        assert!(!s.to_pb().metadata.contains_key("owner"));
    }

    #[test]
    fn metadata_written_before_any_json_value_reads_as_text() {
        let old = pb::Settings {
            metadata: [("env".to_string(), "prod".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(Settings::from_pb(old).metadata_text("env"), Some("prod"));
    }

    #[test]
    fn only_self_rotating_credentials_have_a_next_rotation() {
        let t = DateTime::from_timestamp(1_900_000_000, 0).unwrap_or_default();
        let mut s = Settings {
            rotation_enabled: true,
            rotation_strategy: RotationStrategy::Scheduled,
            rotation_interval_hours: 10,
            ..Settings::default()
        };
        assert_eq!(s.next_rotation(t), Some(t + chrono::Duration::hours(10)));
        s.rotation_strategy = RotationStrategy::Manual;
        assert_eq!(s.next_rotation(t), None);
        s.rotation_strategy = RotationStrategy::OnExpiry;
        assert_eq!(
            s.next_rotation(t),
            None,
            "no expiry, nothing to rotate before"
        );
        s.expires_at = Some(t);
        assert_eq!(s.next_rotation(t), Some(t - chrono::Duration::hours(24)));
        s.rotation_enabled = false;
        assert_eq!(s.next_rotation(t), None);
    }
}
