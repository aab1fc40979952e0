//! Password hashing: argon2id with OWASP's minimum parameters (19 MiB, 2 passes, 1 lane), off
//! the async workers and bounded. Every hash holds 19 MiB for tens of milliseconds, and login
//! is open to anyone, so at most [`permits`] run at once; a request that cannot get a turn
//! within [`QUEUE_WAIT`] is answered 503 with `Retry-After` instead of growing the process.

use crate::error::ApiError;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long a request waits for a hashing turn before it is told to come back.
const QUEUE_WAIT: Duration = Duration::from_millis(500);

/// Two turns per core (a hash is CPU-bound), at most 16: 304 MiB in the worst case.
fn permits() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 2).clamp(2, 16)
}

fn turns() -> &'static Semaphore {
    static TURNS: OnceLock<Semaphore> = OnceLock::new();
    TURNS.get_or_init(|| Semaphore::new(permits()))
}

fn hasher() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

#[derive(Debug, thiserror::Error)]
#[error("argon2: {0}")]
struct Argon(String);

/// Runs `work` on the blocking pool once a hashing turn is free; 503 when none frees in time.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let turn = tokio::time::timeout(QUEUE_WAIT, turns().acquire())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| {
            ApiError::unavailable("too many password checks in progress; retry shortly", 1)
        })?;
    let out = tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(&e));
    drop(turn);
    out
}

/// An argon2id PHC string for `password`, with a fresh salt.
pub async fn hash(password: String) -> Result<String, ApiError> {
    bounded(move || {
        use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(&Argon(e.to_string())))
    })
    .await?
}

/// Whether `password` matches the PHC string `hash`; `None` (no account) checks against a
/// hash of a password nobody has, so an unknown email costs what a wrong password does.
pub async fn verify(hash: Option<String>, password: String) -> Result<bool, ApiError> {
    bounded(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let hash = hash.unwrap_or_else(|| decoy().to_string());
        PasswordHash::new(&hash)
            .map(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    })
    .await
}

/// The decoy hash, made once, inside a hashing turn (it costs as much as any hash).
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
        hasher()
            .hash_password(b"aegis-decoy-password", &SaltString::generate(&mut OsRng))
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = hash("a long passphrase".into()).await.expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(Some(h.clone()), "a long passphrase".into())
            .await
            .expect("turn"));
        assert!(!verify(Some(h), "another one".into()).await.expect("turn"));
        assert!(!verify(None, "aegis-decoy-password!".into())
            .await
            .expect("turn"));
    }

    #[tokio::test]
    async fn hashing_beyond_the_turns_is_refused_not_queued_without_end() {
        let held: Vec<_> = (0..permits())
            .map(|_| turns().try_acquire().expect("a free turn"))
            .collect();
        let e = hash("a long passphrase".into()).await.expect_err("no turn");
        assert_eq!(e.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after, Some(1));
        drop(held);
        assert!(hash("a long passphrase".into()).await.is_ok());
    }
}
