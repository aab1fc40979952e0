//! `POST /api/v1/auth/login` (seed 004): email and password for a signed JWT.
//!
//! Each attempt is reserved against the throttles before any password is checked: per account
//! and source address together (5 failures in 15 min), and per source address (20). Nobody can
//! lock a victim out from elsewhere: failures from other addresses only slow the account's
//! attempts down (a delay growing with its recent failures, capped), never refuse them. An
//! unknown email costs the same argon2 work as a wrong password, and every refusal, a
//! disabled account's included, reads the same. Logs name an email only by a keyed digest.

use super::users::UserView;
use crate::auth::passwords;
use crate::command::CommandContext;
use crate::domain::identity::users::{
    Command, Email, User, UserAggregate, UserEmailAggregate, UserStatus,
};
use crate::domain::identity::TenantId;
use crate::error::ApiError;
use crate::http::extract::Json;
use crate::http::openapi::{BodyErrors, ErrorBody};
use crate::http::{aggregate, platform_tenant};
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    #[schema(max_length = 254)]
    pub email: String,
    #[schema(max_length = 128)]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginReply {
    /// HS256 JWT; send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
}

fn refused() -> ApiError {
    ApiError::unauthorized("invalid email or password")
}

fn throttled(wait: std::time::Duration) -> ApiError {
    let secs = wait.as_secs().max(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("too many failed logins; retry in {secs} s"),
    )
    .with_retry_after(secs)
}

/// The peer address of the connection; none for requests bridged from NATS.
pub struct SourceAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for SourceAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(SourceAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// Records a login attempt on the user's history: the user is the actor of a success; a
/// failure is anonymous, known only by its address.
async fn audit_attempt(
    state: &AppState,
    tenant: TenantId,
    user: uuid::Uuid,
    succeeded: bool,
    address: &str,
) -> Result<(), ApiError> {
    let (actor_kind, actor_subject) = if succeeded {
        ("user", user.to_string())
    } else {
        ("anonymous", address.to_string())
    };
    let mut meta = aegis_streams::Metadata::system(&actor_subject);
    meta.actor_kind = actor_kind.into();
    meta.trace_headers = aegis_streams::trace::current_trace_headers();
    let ctx = CommandContext {
        meta,
        msg_id: None,
        if_match: None,
    };
    let agg = aggregate::<UserAggregate>(tenant.0, user.to_string())?;
    state
        .executor
        .execute::<UserAggregate>(
            &agg,
            &Command::RecordLogin {
                succeeded,
                source: address.to_string(),
            },
            &ctx,
            false,
        )
        .await
        .map_err(|e| e.into_api(super::users::user_error))?;
    Ok(())
}

/// How long an attempt on an account waits given its recent failures from every address:
/// nothing for the first five, then 250 ms doubling to at most 8 s. A correct password still
/// gets in, only later; guessing from many addresses gets slower.
fn slowdown(recent_failures: usize) -> Duration {
    match recent_failures.saturating_sub(5) {
        0 => Duration::ZERO,
        n => Duration::from_millis(250u64 << (n - 1).min(5)),
    }
}

/// The account the email names (if any), and whether the password is its password.
async fn attempt(
    state: &AppState,
    email: &Email,
    password: String,
) -> Result<(Option<(TenantId, User)>, bool), ApiError> {
    let claim = aggregate::<UserEmailAggregate>(platform_tenant(), email.as_str())?;
    let (owner, _) = state
        .executor
        .load::<UserEmailAggregate>(&claim)
        .await
        .map_err(|e| e.into_api(|e| ApiError::internal(&e)))?;
    let user = match owner {
        Some(o) => {
            let agg = aggregate::<UserAggregate>(o.tenant.0, o.user.to_string())?;
            state
                .executor
                .load::<UserAggregate>(&agg)
                .await
                .map_err(|e| e.into_api(|e| ApiError::internal(&e)))?
                .0
                .map(|u| (o.tenant, u))
        }
        None => None,
    };
    let hash = user.as_ref().map(|(_, u)| u.password_hash.clone());
    let valid = passwords::verify(hash, password).await?;
    Ok((user, valid))
}

/// Log in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = LoginReply),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Wrong email or password, or the account is disabled", body = ErrorBody),
        (status = 429, description = "Too many failed attempts for this account or address (Retry-After)", body = ErrorBody),
        BodyErrors,
    ))]
async fn login(
    State(state): State<AppState>,
    SourceAddr(peer): SourceAddr,
    Json(body): Json<LoginBody>,
) -> Result<Response, ApiError> {
    let now = Instant::now();
    let Ok(email) = Email::parse(&body.email) else {
        return Err(refused());
    };
    let address = peer.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    // Who is named in the server log: the email's keyed digest, never the email.
    let who = &state.keyring.digest(email.as_str())[..16];
    let pair = format!("{}|{address}", email.as_str());
    let throttle = &state.login_throttle;
    throttle.pair.reserve(&pair, now).map_err(|wait| {
        tracing::warn!(account = who, source = %address, "login throttled");
        throttled(wait)
    })?;
    if let Err(wait) = throttle.source.reserve(&address, now) {
        throttle.pair.succeeded(&pair, now);
        tracing::warn!(account = who, source = %address, "login throttled (source)");
        return Err(throttled(wait));
    }
    let account = email.as_str().to_string();
    let _ = throttle.account.reserve(&account, now);
    let delay = slowdown(throttle.account.recent(&account, now));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let outcome = attempt(&state, &email, body.password).await;
    let (tenant, user) = match outcome {
        Ok((Some(found), true)) => found,
        Ok((user, _)) => {
            if let Some((tenant, u)) = &user {
                audit_attempt(&state, *tenant, u.id, false, &address).await?;
            }
            tracing::info!(account = who, source = %address, "login refused");
            return Err(refused());
        }
        Err(e) => {
            // Not the caller's failure: the reservations are taken back.
            throttle.pair.succeeded(&pair, now);
            throttle.source.succeeded(&address, now);
            throttle.account.succeeded(&account, now);
            return Err(e);
        }
    };
    if user.status != UserStatus::Active {
        audit_attempt(&state, tenant, user.id, false, &address).await?;
        tracing::info!(account = who, source = %address, "login refused: account disabled");
        return Err(refused());
    }
    throttle.pair.clear(&pair);
    throttle.source.succeeded(&address, now);
    throttle.account.succeeded(&account, now);
    audit_attempt(&state, tenant, user.id, true, &address).await?;
    let (token, expires_at) = state.keyring.issue(tenant.0, user.id, Utc::now());
    tracing::info!(user = %user.id, tenant = %tenant, "login");
    Ok((
        StatusCode::OK,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(LoginReply {
            token,
            expires_at,
            user: UserView::of(tenant.0, &user),
        }),
    )
        .into_response())
}
