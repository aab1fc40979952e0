//! Request bodies of the vault and their validation into domain settings. Every refusal names
//! the field; nothing is appended until the whole body is valid.

use crate::error::ApiError;
use aegis_runtime::egress;
use aegis_vault::settings::{MetaValue, DEFAULT_ALPHABET, DEFAULT_LENGTH};
use aegis_vault::{RotationStrategy, Rotator, Settings};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// How the credential gets its next value when it rotates.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotatorBody {
    /// `generated` (default), `postgres_role` or `http`.
    pub kind: String,
    /// generated: 8 to 1024 characters (default 40).
    pub length: Option<u32>,
    /// generated: the characters to draw from (default URL-safe letters and digits).
    pub alphabet: Option<String>,
    /// postgres_role: the server the role logs in to.
    pub host: Option<String>,
    /// postgres_role: default 5432.
    pub port: Option<u16>,
    /// postgres_role: the database to log in to.
    pub database: Option<String>,
    /// postgres_role: the role whose password this credential is.
    pub role: Option<String>,
    /// http: answers a POST with `{"value": "..."}`.
    pub url: Option<String>,
    /// http: called with the value as a bearer token by `/test`.
    pub health_url: Option<String>,
}

impl RotatorBody {
    pub fn of(r: &Rotator) -> Self {
        let mut out = RotatorBody {
            kind: r.kind().into(),
            length: None,
            alphabet: None,
            host: None,
            port: None,
            database: None,
            role: None,
            url: None,
            health_url: None,
        };
        match r {
            Rotator::Generated { length, alphabet } => {
                out.length = Some(*length);
                out.alphabet = Some(alphabet.clone());
            }
            Rotator::PostgresRole {
                host,
                port,
                database,
                role,
            } => {
                out.host = Some(host.clone());
                out.port = Some(*port);
                out.database = Some(database.clone());
                out.role = Some(role.clone());
            }
            Rotator::Http { url, health_url } => {
                out.url = Some(url.clone());
                out.health_url = health_url.clone();
            }
        }
        out
    }

    fn validate(self) -> Result<Rotator, ApiError> {
        let field = |f: &str| format!("rotator.{f}");
        let required = |v: Option<String>, f: &str| -> Result<String, ApiError> {
            match v {
                Some(s)
                    if !s.trim().is_empty()
                        && s.len() <= 255
                        && !s.chars().any(char::is_control) =>
                {
                    Ok(s)
                }
                _ => Err(ApiError::validation(
                    &field(f),
                    format!("{} is required: 1 to 255 printable characters", field(f)),
                )),
            }
        };
        let url = |v: String, f: &str| -> Result<String, ApiError> {
            egress::parse_url(&v).map_err(|e| ApiError::validation(&field(f), e.to_string()))?;
            Ok(v)
        };
        match self.kind.as_str() {
            "generated" => {
                let length = self.length.unwrap_or(DEFAULT_LENGTH);
                if !(8..=1024).contains(&length) {
                    return Err(ApiError::validation(
                        &field("length"),
                        "rotator.length must be between 8 and 1024",
                    ));
                }
                let alphabet = self.alphabet.unwrap_or_else(|| DEFAULT_ALPHABET.into());
                let mut unique: Vec<char> = alphabet.chars().collect();
                unique.sort_unstable();
                unique.dedup();
                if unique.len() < 2
                    || unique.len() != alphabet.chars().count()
                    || alphabet
                        .chars()
                        .any(|c| c.is_control() || c.is_whitespace())
                {
                    return Err(ApiError::validation(
                        &field("alphabet"),
                        "rotator.alphabet needs at least 2 distinct printable characters, each once",
                    ));
                }
                Ok(Rotator::Generated { length, alphabet })
            }
            "postgres_role" => Ok(Rotator::PostgresRole {
                host: required(self.host, "host")?,
                port: match self.port {
                    Some(0) => {
                        return Err(ApiError::validation(
                            &field("port"),
                            "rotator.port must be 1 to 65535",
                        ))
                    }
                    p => p.unwrap_or(5432),
                },
                database: required(self.database, "database")?,
                role: required(self.role, "role")?,
            }),
            "http" => Ok(Rotator::Http {
                url: url(required(self.url, "url")?, "url")?,
                health_url: self.health_url.map(|u| url(u, "health_url")).transpose()?,
            }),
            other => Err(ApiError::validation(
                &field("kind"),
                format!("`{other}` is not a rotator: generated, postgres_role or http"),
            )),
        }
    }
}

/// `POST /credentials` (seed 001, plus `rotator`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Unique in the tenant and never reused: letters, digits, `.`, `_`, `-`; 1 to 128.
    #[schema(pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")]
    pub name: String,
    /// `api_key`, `oauth`, `database`, ...: a lower-case word.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub credential_type: String,
    /// `n8n`, `supabase`, `api`, `env`, ...: a lower-case word.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub provider: String,
    pub description: Option<String>,
    /// Encrypted at rest; never returned except by `GET /credentials/{name}/value`.
    pub value: Option<String>,
    pub provider_credential_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rotation_enabled: Option<bool>,
    /// 1 to 87600 (default 720).
    pub rotation_interval_hours: Option<u32>,
    pub rotation_strategy: Option<RotationStrategy>,
    /// 0 to 8760 (default 168).
    pub alert_threshold_hours: Option<u32>,
    pub tags: Option<Vec<String>>,
    /// Any JSON values, at most 32 keys of 1 to 64 characters and 8 KiB in all.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<BTreeMap<String, serde_json::Value>>,
    pub rotator: Option<RotatorBody>,
}

/// `PATCH /credentials/{name}`: any subset; `value` makes a new version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    pub description: Option<String>,
    /// `null` removes the expiry.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub rotation_enabled: Option<bool>,
    pub rotation_interval_hours: Option<u32>,
    pub rotation_strategy: Option<RotationStrategy>,
    pub alert_threshold_hours: Option<u32>,
    pub tags: Option<Vec<String>>,
    /// Any JSON values, at most 32 keys of 1 to 64 characters and 8 KiB in all.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<BTreeMap<String, serde_json::Value>>,
    pub provider_credential_id: Option<String>,
    pub rotator: Option<RotatorBody>,
    pub value: Option<String>,
}

/// A credential name: safe in a URL path segment and unambiguous in the audit log.
pub fn name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            "name",
            "name must be 1 to 128 letters, digits, `.`, `_` or `-`, not starting with `.`",
        ))
    }
}

fn word(field: &str, v: &str) -> Result<String, ApiError> {
    let ok = (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(v.to_string())
    } else {
        Err(ApiError::validation(
            field,
            format!("{field} must be 1 to 64 lower-case letters, digits, `_` or `-`"),
        ))
    }
}

fn text(field: &str, v: &str, max: usize) -> Result<String, ApiError> {
    if v.chars().count() > max || v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::validation(
            field,
            format!("{field} must be at most {max} characters, without control characters"),
        ));
    }
    Ok(v.to_string())
}

pub fn value(v: &str) -> Result<(), ApiError> {
    if v.is_empty() || v.len() > MAX_VALUE_BYTES {
        return Err(ApiError::validation(
            "value",
            format!("value must be 1 to {MAX_VALUE_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn tags(v: Vec<String>) -> Result<Vec<String>, ApiError> {
    if v.len() > 32 {
        return Err(ApiError::validation("tags", "at most 32 tags"));
    }
    for t in &v {
        if t.is_empty() || t.chars().count() > 64 || t.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "tags",
                "each tag is 1 to 64 printable characters",
            ));
        }
    }
    Ok(v)
}

/// How large a credential's metadata may be, as JSON.
const METADATA_BYTES: usize = 8 * 1024;

fn metadata(
    v: BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, MetaValue>, ApiError> {
    if v.len() > 32 {
        return Err(ApiError::validation("metadata", "at most 32 entries"));
    }
    if v.keys().any(|k| k.is_empty() || k.chars().count() > 64) {
        return Err(ApiError::validation(
            "metadata",
            "keys are 1 to 64 characters",
        ));
    }
    if serde_json::to_vec(&v).map_or(usize::MAX, |b| b.len()) > METADATA_BYTES {
        return Err(ApiError::validation(
            "metadata",
            format!("metadata is at most {METADATA_BYTES} bytes of JSON"),
        ));
    }
    Ok(v.into_iter().map(|(k, v)| (k, MetaValue(v))).collect())
}

fn interval(v: u32) -> Result<u32, ApiError> {
    if !(1..=87_600).contains(&v) {
        return Err(ApiError::validation(
            "rotation_interval_hours",
            "rotation_interval_hours must be between 1 and 87600",
        ));
    }
    Ok(v)
}

fn threshold(v: u32) -> Result<u32, ApiError> {
    if v > 8_760 {
        return Err(ApiError::validation(
            "alert_threshold_hours",
            "alert_threshold_hours must be between 0 and 8760",
        ));
    }
    Ok(v)
}

/// What a create asks for, validated.
pub struct Create {
    pub credential_type: String,
    pub provider: String,
    pub settings: Settings,
}

impl CreateBody {
    pub fn validate(&mut self) -> Result<Create, ApiError> {
        name(&self.name)?;
        if let Some(v) = &self.value {
            value(v)?;
        }
        let d = Settings::default();
        Ok(Create {
            credential_type: word("credential_type", &self.credential_type)?,
            provider: word("provider", &self.provider)?,
            settings: Settings {
                description: text(
                    "description",
                    self.description.as_deref().unwrap_or(""),
                    1000,
                )?,
                expires_at: self.expires_at,
                rotation_enabled: self.rotation_enabled.unwrap_or(false),
                rotation_interval_hours: interval(
                    self.rotation_interval_hours
                        .unwrap_or(d.rotation_interval_hours),
                )?,
                rotation_strategy: self.rotation_strategy.unwrap_or(d.rotation_strategy),
                alert_threshold_hours: threshold(
                    self.alert_threshold_hours
                        .unwrap_or(d.alert_threshold_hours),
                )?,
                tags: tags(self.tags.take().unwrap_or_default())?,
                metadata: metadata(self.metadata.take().unwrap_or_default())?,
                provider_credential_id: self
                    .provider_credential_id
                    .as_deref()
                    .map(|p| text("provider_credential_id", p, 255))
                    .transpose()?,
                rotator: self
                    .rotator
                    .take()
                    .map(RotatorBody::validate)
                    .transpose()?
                    .unwrap_or_default(),
            },
        })
    }
}

impl PatchBody {
    /// The settings after the patch, and the names of the fields it changed.
    pub fn apply(&mut self, mut s: Settings) -> Result<(Settings, Vec<String>), ApiError> {
        let before = s.clone();
        if let Some(v) = &self.description {
            s.description = text("description", v, 1000)?;
        }
        if let Some(v) = self.expires_at {
            s.expires_at = v;
        }
        if let Some(v) = self.rotation_enabled {
            s.rotation_enabled = v;
        }
        if let Some(v) = self.rotation_interval_hours {
            s.rotation_interval_hours = interval(v)?;
        }
        if let Some(v) = self.rotation_strategy {
            s.rotation_strategy = v;
        }
        if let Some(v) = self.alert_threshold_hours {
            s.alert_threshold_hours = threshold(v)?;
        }
        if let Some(v) = self.tags.take() {
            s.tags = tags(v)?;
        }
        if let Some(v) = self.metadata.take() {
            s.metadata = metadata(v)?;
        }
        if let Some(v) = &self.provider_credential_id {
            s.provider_credential_id = Some(text("provider_credential_id", v, 255)?);
        }
        if let Some(v) = self.rotator.take() {
            s.rotator = v.validate()?;
        }
        if let Some(v) = &self.value {
            value(v)?;
        }
        let mut fields = Vec::new();
        let mut changed = |f: &str, differs: bool| {
            if differs {
                fields.push(f.to_string());
            }
        };
        changed("description", s.description != before.description);
        changed("expires_at", s.expires_at != before.expires_at);
        changed(
            "rotation_enabled",
            s.rotation_enabled != before.rotation_enabled,
        );
        changed(
            "rotation_interval_hours",
            s.rotation_interval_hours != before.rotation_interval_hours,
        );
        changed(
            "rotation_strategy",
            s.rotation_strategy != before.rotation_strategy,
        );
        changed(
            "alert_threshold_hours",
            s.alert_threshold_hours != before.alert_threshold_hours,
        );
        changed("tags", s.tags != before.tags);
        changed("metadata", s.metadata != before.metadata);
        changed(
            "provider_credential_id",
            s.provider_credential_id != before.provider_credential_id,
        );
        changed("rotator", s.rotator != before.rotator);
        Ok((s, fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_path_safe() {
        for ok in ["openai-api-key", "db.prod_1", "A"] {
            assert!(name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rotators_are_validated_with_the_field_path() {
        let body = |kind: &str| RotatorBody {
            kind: kind.into(),
            length: None,
            alphabet: None,
            host: None,
            port: None,
            database: None,
            role: None,
            url: None,
            health_url: None,
        };
        assert_eq!(body("generated").validate().ok(), Some(Rotator::default()));
        let e = body("postgres_role").validate().expect_err("needs a host");
        assert_eq!(
            e.extra.get("field").and_then(|v| v.as_str()),
            Some("rotator.host")
        );
        let e = RotatorBody {
            url: Some("ftp://x".into()),
            ..body("http")
        }
        .validate()
        .expect_err("bad scheme");
        assert_eq!(
            e.extra.get("field").and_then(|v| v.as_str()),
            Some("rotator.url")
        );
        let e = RotatorBody {
            alphabet: Some("aa".into()),
            ..body("generated")
        }
        .validate()
        .expect_err("one distinct character");
        assert_eq!(
            e.extra.get("field").and_then(|v| v.as_str()),
            Some("rotator.alphabet")
        );
        assert!(body("ldap").validate().is_err());
    }
}
