//! Everything minted from the master key: the JWT signing keys (a ring addressed by `kid`),
//! the pepper for API key and agent secret digests, and the formats of those credentials.
//!
//! Keys are derived, not stored: `HMAC-SHA256(master, label)`. Rotating the JWT key is a
//! configuration change (new `AEGIS_JWT_KID`, the old one moved to `AEGIS_JWT_RETIRED_KIDS`
//! until its tokens expire), the same on every instance without coordination.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Mac, SimpleHmac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use subtle::ConstantTimeEq;
use uuid::Uuid;

type HmacSha256 = SimpleHmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length, so construction cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is signed with an unknown key")]
    UnknownKey,
    #[error("the token signature is not valid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
}

/// What a login token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The user's tenant.
    pub tid: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
}

pub struct Keyring {
    pepper: [u8; 32],
    active_kid: String,
    jwt_keys: HashMap<String, [u8; 32]>,
    pub token_ttl: chrono::Duration,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("active_kid", &self.active_kid)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    pub fn new(master: &[u8], active_kid: &str, retired: &[String], ttl_secs: i64) -> Self {
        let mut jwt_keys = HashMap::new();
        for kid in std::iter::once(active_kid).chain(retired.iter().map(String::as_str)) {
            jwt_keys.insert(
                kid.to_string(),
                hmac(master, &[b"aegis/jwt/", kid.as_bytes()]),
            );
        }
        Self {
            pepper: hmac(master, &[b"aegis/credential-pepper/v1"]),
            active_kid: active_kid.to_string(),
            jwt_keys,
            token_ttl: chrono::Duration::seconds(ttl_secs),
        }
    }

    /// A signed HS256 JWT for `user` of `tenant`, valid for the configured time.
    pub fn issue(&self, tenant: Uuid, user: Uuid, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let expires = now + self.token_ttl;
        let claims = Claims {
            sub: user,
            tid: tenant,
            iat: now.timestamp(),
            exp: expires.timestamp(),
            jti: Uuid::now_v7(),
        };
        (self.sign(&self.active_kid, &claims), expires)
    }

    fn sign(&self, kid: &str, claims: &Claims) -> String {
        let header = Header {
            alg: "HS256".into(),
            typ: Some("JWT".into()),
            kid: Some(kid.into()),
        };
        let encode = |v: &dyn erased::Json| B64.encode(v.json());
        let signing_input = format!("{}.{}", encode(&header), encode(claims));
        let key = self.jwt_keys.get(kid).copied().unwrap_or_default();
        let sig = hmac(&key, &[signing_input.as_bytes()]);
        format!("{signing_input}.{}", B64.encode(sig))
    }

    /// Verifies signature, algorithm, key id and expiry. Only HS256 with a known `kid` passes:
    /// `alg: none` and algorithm confusion have nowhere to go.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = B64
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if header.alg != "HS256" {
            return Err(TokenError::Malformed);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.jwt_keys.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        let sig = B64.decode(s).map_err(|_| TokenError::Malformed)?;
        let expected = hmac(key, &[h.as_bytes(), b".", p.as_bytes()]);
        if !bool::from(expected.as_slice().ct_eq(&sig)) {
            return Err(TokenError::BadSignature);
        }
        let claims: Claims = B64
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if claims.exp <= now.timestamp() {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Keyed digest of a credential: what the log keeps instead of the credential.
    pub fn digest(&self, credential: &str) -> String {
        hex::encode(hmac(&self.pepper, &[credential.as_bytes()]))
    }

    /// Signs claims with the ring's key `kid` (a kid outside the ring signs with a zero key,
    /// which no ring accepts); tests use it for expiry and rotation.
    pub fn sign_with(&self, kid: &str, claims: &Claims) -> String {
        self.sign(kid, claims)
    }
}

mod erased {
    pub trait Json {
        fn json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap_or_default()
        }
    }
}

/// Credentials of the form `<kind>_<base64url(secret ‖ tenant ‖ id)>`: the random part comes
/// first so the shown prefix differs between credentials; the tenant and id let a request find
/// the credential's aggregate directly in the log, with no index to keep in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    ApiKey,
    Agent,
}

impl CredentialKind {
    fn tag(self) -> &'static str {
        match self {
            CredentialKind::ApiKey => "acp_",
            CredentialKind::Agent => "aga_",
        }
    }
}

/// Characters of a credential shown in listings (the tag and 8 random characters).
const PREFIX_LEN: usize = 12;

pub struct Minted {
    pub credential: String,
    pub prefix: String,
}

pub fn mint(kind: CredentialKind, tenant: Uuid, id: Uuid) -> Minted {
    let mut raw = [0u8; 64];
    raw[..32].copy_from_slice(&rand::random::<[u8; 32]>());
    raw[32..48].copy_from_slice(tenant.as_bytes());
    raw[48..].copy_from_slice(id.as_bytes());
    let credential = format!("{}{}", kind.tag(), B64.encode(raw));
    Minted {
        prefix: credential[..PREFIX_LEN].to_string(),
        credential,
    }
}

/// The tenant and id a credential names; only the digest comparison proves it genuine.
pub fn parse(kind: CredentialKind, credential: &str) -> Option<(Uuid, Uuid)> {
    let body = credential.strip_prefix(kind.tag())?;
    let raw = B64.decode(body).ok()?;
    if raw.len() != 64 {
        return None;
    }
    let tenant = Uuid::from_slice(&raw[32..48]).ok()?;
    let id = Uuid::from_slice(&raw[48..]).ok()?;
    Some((tenant, id))
}

pub fn is_api_key(s: &str) -> bool {
    s.starts_with(CredentialKind::ApiKey.tag())
}

/// Constant-time comparison of two digests.
pub fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(active: &str, retired: &[&str]) -> Keyring {
        let retired: Vec<String> = retired.iter().map(|s| s.to_string()).collect();
        Keyring::new(&[7u8; 32], active, &retired, 3600)
    }

    #[test]
    fn a_token_verifies_until_it_expires() {
        let ring = ring("k1", &[]);
        let now = Utc::now();
        let (user, tenant) = (Uuid::now_v7(), Uuid::now_v7());
        let (token, expires) = ring.issue(tenant, user, now);
        let claims = ring.verify(&token, now).expect("valid");
        assert_eq!((claims.sub, claims.tid), (user, tenant));
        assert_eq!(ring.verify(&token, expires), Err(TokenError::Expired));
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let ring = ring("k1", &[]);
        let now = Utc::now();
        let (token, _) = ring.issue(Uuid::now_v7(), Uuid::now_v7(), now);
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[1]).expect("b64")).expect("json");
        claims["tid"] = serde_json::json!(Uuid::now_v7());
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(serde_json::to_vec(&claims).expect("json")),
            parts[2]
        );
        assert_eq!(ring.verify(&forged, now), Err(TokenError::BadSignature));
        let none = format!(
            "{}.{}.",
            B64.encode(br#"{"alg":"none","kid":"k1"}"#),
            parts[1]
        );
        assert_eq!(ring.verify(&none, now), Err(TokenError::Malformed));
    }

    #[test]
    fn rotation_keeps_retired_keys_until_they_are_dropped() {
        let now = Utc::now();
        let (old, _) = ring("k1", &[]).issue(Uuid::now_v7(), Uuid::now_v7(), now);
        assert!(ring("k2", &["k1"]).verify(&old, now).is_ok());
        assert_eq!(
            ring("k2", &[]).verify(&old, now),
            Err(TokenError::UnknownKey)
        );
        // Another master key derives other keys under the same kid.
        let other = Keyring::new(&[8u8; 32], "k1", &[], 3600);
        assert_eq!(other.verify(&old, now), Err(TokenError::BadSignature));
    }

    #[test]
    fn credentials_name_their_tenant_and_id_and_digests_are_keyed() {
        let (tenant, id) = (Uuid::now_v7(), Uuid::now_v7());
        let minted = mint(CredentialKind::ApiKey, tenant, id);
        assert!(minted.credential.starts_with("acp_"));
        assert!(minted.credential.starts_with(&minted.prefix));
        assert_eq!(
            parse(CredentialKind::ApiKey, &minted.credential),
            Some((tenant, id))
        );
        assert_eq!(parse(CredentialKind::Agent, &minted.credential), None);
        let a = ring("k1", &[]).digest(&minted.credential);
        let b = Keyring::new(&[8u8; 32], "k1", &[], 3600).digest(&minted.credential);
        assert_ne!(a, b, "the digest depends on the pepper");
        assert!(!a.contains(&minted.credential[4..]));
        let second = mint(CredentialKind::ApiKey, tenant, id);
        assert_ne!(second.prefix, minted.prefix);
    }
}
