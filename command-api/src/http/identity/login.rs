//! `POST /api/v1/auth/login` (seed 004): email and password for a signed JWT.
//!
//! Failed attempts are throttled per account and per source address before any password is
//! checked, and an unknown email costs the same argon2 work as a wrong password, so timing
//! does not tell which emails have accounts.

use super::users::{hasher, UserView};
use crate::command::CommandContext;
use crate::domain::identity::users::{
    Command, Email, UserAggregate, UserEmailAggregate, UserStatus,
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
use std::sync::OnceLock;
use std::time::Instant;
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

/// A hash of a password nobody has, verified when the email is unknown.
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

async fn verify(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        PasswordHash::new(&hash)
            .map(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
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
    let account = format!("account:{}", email.as_str());
    let source = format!(
        "source:{}",
        peer.map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
    );
    let throttle = &state.login_throttle;
    if let Some(wait) = throttle
        .account
        .blocked(&account, now)
        .or_else(|| throttle.source.blocked(&source, now))
    {
        tracing::warn!(email = email.as_str(), "login throttled");
        return Err(throttled(wait));
    }
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
    let hash = user
        .as_ref()
        .map_or_else(|| decoy().to_string(), |(_, u)| u.password_hash.clone());
    let valid = verify(hash, body.password).await;
    let address = peer.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let Some((tenant, user)) = user.clone().filter(|_| valid) else {
        throttle.account.fail(&account, now);
        throttle.source.fail(&source, now);
        if let Some((tenant, u)) = &user {
            audit_attempt(&state, *tenant, u.id, false, &address).await?;
        }
        tracing::info!(email = email.as_str(), "login refused");
        return Err(refused());
    };
    if user.status != UserStatus::Active {
        audit_attempt(&state, tenant, user.id, false, &address).await?;
        return Err(ApiError::unauthorized("the account is disabled"));
    }
    throttle.account.clear(&account);
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
