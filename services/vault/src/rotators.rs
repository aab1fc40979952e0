//! Where a credential's next value comes from, and how a value is proven to work. Every
//! outbound target goes through the egress guard first.

use crate::scram;
use aegis_runtime::egress::{self, EgressError, SystemResolver};
use aegis_vault::Rotator;
use rand::Rng;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How long one outbound call (rotation endpoint, health URL, Postgres login) may take.
pub const TARGET_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Egress(#[from] EgressError),
    #[error("postgres: {0}")]
    Postgres(String),
    #[error("rotation endpoint: {0}")]
    Http(String),
    #[error("the new value did not work: {0}")]
    Unproven(String),
    #[error("the credential has no current value to log in with")]
    NoCurrentValue,
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// A random value of `length` characters of `alphabet`, from the OS generator.
pub fn generate(length: u32, alphabet: &str) -> Zeroizing<String> {
    let chars: Vec<char> = alphabet.chars().collect();
    let mut rng = rand::rngs::OsRng;
    Zeroizing::new(
        (0..length)
            .map(|_| chars[rng.gen_range(0..chars.len())])
            .collect(),
    )
}

/// Postgres options for logging in as `role`, aimed at an address the guard allowed.
pub(crate) async fn pg_options(
    allow: Option<&[String]>,
    host: &str,
    port: u16,
    database: &str,
    role: &str,
    password: &str,
) -> Result<PgConnectOptions, RotateError> {
    let addrs = egress::check(&SystemResolver, allow, host, port).await?;
    let addr = addrs[0];
    Ok(PgConnectOptions::new()
        .host(&addr.ip().to_string())
        .port(addr.port())
        .database(database)
        .username(role)
        .password(password)
        .disable_statement_logging())
}

pub(crate) async fn within<T>(
    fut: impl std::future::Future<Output = Result<T, RotateError>>,
) -> Result<T, RotateError> {
    tokio::time::timeout(TARGET_TIMEOUT, fut)
        .await
        .map_err(|_| RotateError::Timeout(TARGET_TIMEOUT))?
}

/// Logs in and back out: the proof a Postgres credential works.
pub(crate) async fn pg_login(options: &PgConnectOptions, role: &str) -> Result<(), RotateError> {
    let mut conn = options
        .connect()
        .await
        .map_err(|e| RotateError::Unproven(e.to_string()))?;
    let (who,): (String,) = sqlx::query_as("SELECT current_user::text")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| RotateError::Unproven(e.to_string()))?;
    let _ = conn.close().await;
    if who != role {
        return Err(RotateError::Unproven(format!(
            "logged in as `{who}`, not `{role}`"
        )));
    }
    Ok(())
}

/// Produces and installs the next value. For a Postgres role, the new password is set by the
/// role itself (logged in with its current value) and proven by a fresh login before the
/// caller records it; should the proof fail, the caller keeps the old version active.
pub async fn next_value(
    allow: Option<&[String]>,
    rotator: &Rotator,
    name: &str,
    current: Option<&str>,
) -> Result<Zeroizing<String>, RotateError> {
    match rotator {
        Rotator::Generated { length, alphabet } => Ok(generate(*length, alphabet)),
        Rotator::PostgresRole {
            host,
            port,
            database,
            role,
        } => {
            let current = current.ok_or(RotateError::NoCurrentValue)?;
            let next = generate(32, aegis_vault::settings::DEFAULT_ALPHABET);
            within(async {
                let old = pg_options(allow, host, *port, database, role, current).await?;
                let mut conn = old.connect().await.map_err(|e| {
                    RotateError::Postgres(format!("login with the current value: {e}"))
                })?;
                // A verifier, not the password: the clear value stays out of server logs.
                let verifier = scram::verifier(&next);
                sqlx::query(&format!("ALTER ROLE CURRENT_USER PASSWORD '{verifier}'"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| RotateError::Postgres(format!("setting the new password: {e}")))?;
                let _ = conn.close().await;
                let new = pg_options(allow, host, *port, database, role, &next).await?;
                pg_login(&new, role).await
            })
            .await?;
            Ok(next)
        }
        Rotator::Http { url, .. } => {
            within(async {
                let client =
                    egress::http_client(&SystemResolver, allow, url, TARGET_TIMEOUT).await?;
                let response = client
                    .post(url)
                    .json(&serde_json::json!({ "credential": name }))
                    .send()
                    .await
                    .map_err(|e| RotateError::Http(e.without_url().to_string()))?;
                let status = response.status();
                if !status.is_success() {
                    return Err(RotateError::Http(format!("answered {status}")));
                }
                #[derive(serde::Deserialize)]
                struct Answer {
                    value: String,
                }
                let answer: Answer = egress::read_json(response).await.map_err(|e| match e {
                    egress::AnswerError::Json(_) => {
                        RotateError::Http("the answer has no string `value`".into())
                    }
                    e => RotateError::Http(e.to_string()),
                })?;
                if answer.value.is_empty() {
                    return Err(RotateError::Http("the answer's `value` is empty".into()));
                }
                Ok(Zeroizing::new(answer.value))
            })
            .await
        }
    }
}

/// What `/test` found.
#[derive(Debug, Clone)]
pub struct Probe {
    pub healthy: bool,
    pub error: Option<String>,
    pub response_time_ms: u64,
    pub details: serde_json::Value,
}

/// Proves the current value against its target: a Postgres login, or the health URL with the
/// value as a bearer token. A generated credential without a target is healthy when its value
/// opens, which the caller has already done.
pub async fn probe(allow: Option<&[String]>, rotator: &Rotator, value: &str) -> Probe {
    let started = Instant::now();
    let outcome: Result<serde_json::Value, RotateError> = match rotator {
        Rotator::PostgresRole {
            host,
            port,
            database,
            role,
        } => {
            within(async {
                let options = pg_options(allow, host, *port, database, role, value).await?;
                pg_login(&options, role).await?;
                Ok(serde_json::json!({ "authenticated": true, "target": "postgres" }))
            })
            .await
        }
        Rotator::Http {
            health_url: Some(url),
            ..
        } => {
            within(async {
                let client =
                    egress::http_client(&SystemResolver, allow, url, TARGET_TIMEOUT).await?;
                let response = client
                    .get(url)
                    .bearer_auth(value)
                    .send()
                    .await
                    .map_err(|e| RotateError::Http(e.without_url().to_string()))?;
                let status = response.status();
                let remaining = |h: &str| {
                    response
                        .headers()
                        .get(h)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                };
                let details = serde_json::json!({
                    "authenticated": status.is_success(),
                    "status": status.as_u16(),
                    "rate_limit_remaining": remaining("x-ratelimit-remaining"),
                });
                if status.is_success() {
                    Ok(details)
                } else if status == 401 || status == 403 {
                    Err(RotateError::Unproven("Authentication failed".into()))
                } else {
                    Err(RotateError::Http(format!("health URL answered {status}")))
                }
            })
            .await
        }
        _ => Ok(serde_json::json!({ "decrypted": true, "target": "none" })),
    };
    let response_time_ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(details) => Probe {
            healthy: true,
            error: None,
            response_time_ms,
            details,
        },
        Err(e) => Probe {
            healthy: false,
            error: Some(e.to_string()),
            response_time_ms,
            details: serde_json::json!({ "authenticated": false }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_use_only_the_alphabet_and_differ() {
        let a = generate(64, "ab");
        let b = generate(64, "ab");
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c == 'a' || c == 'b'));
        assert_ne!(*a, *b, "2^-64 chance of a false alarm");
    }
}
