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
use crate::error::ApiError;
use crate::error::IntoApi;
use crate::http::extract::{Json, MinPosition};
use crate::http::openapi::{BodyErrors, ErrorBody};
use crate::http::{aggregate, platform_tenant};
use crate::state::AppState;
use aegis_identity::users::{Command, Email, User, UserAggregate, UserEmailAggregate, UserStatus};
use aegis_identity::TenantId;
use aegis_projectors::identity::IdentityProjection;
use aegis_projectors::Projection;
use aegis_runtime::command::CommandContext;
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
    /// The tenant whose account this is; needed only when the email has accounts in several
    /// tenants (the answer says so).
    #[serde(default)]
    pub tenant_id: Option<uuid::Uuid>,
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

/// The most accounts one email may name across tenants before login needs `tenant_id`.
const MAX_ACCOUNTS: usize = 4;

/// What the password opened.
enum Attempt {
    /// The one account whose password it is.
    Opened(TenantId, User),
    /// No account took it; the accounts the email names (their failures are audited).
    Refused(Vec<(TenantId, User)>),
    /// Several accounts share the email (and the password): the caller must say which tenant.
    Ambiguous,
}

/// Every account `email` names, from the log: a claim made before emails were per tenant
/// (under the platform tenant), and the tenants' own claims, located through the read model
/// (caught up with the log when it can be, so a user created a moment ago is found) and each
/// confirmed from the log. With `only`, that tenant's claim alone.
async fn accounts(
    state: &AppState,
    email: &Email,
    only: Option<TenantId>,
) -> Result<Vec<(TenantId, User)>, ApiError> {
    let claim_in = |tenant: uuid::Uuid| aggregate::<UserEmailAggregate>(tenant, email.as_str());
    let mut claims = vec![claim_in(platform_tenant())?];
    match only {
        Some(t) => claims.push(claim_in(t.0)?),
        None => {
            // A lagging or halted read model only delays or narrows the search; the log decides.
            let _ = MinPosition::caught_up(state, &[IdentityProjection::NAME]).await;
            let tenants: Vec<(uuid::Uuid,)> =
                sqlx::query_as("SELECT DISTINCT tenant_id FROM users WHERE email = $1 LIMIT $2")
                    .bind(email.as_str())
                    .bind(MAX_ACCOUNTS as i64 + 1)
                    .fetch_all(&state.pool)
                    .await?;
            for (t,) in tenants {
                claims.push(claim_in(t)?);
            }
        }
    }
    let mut found: Vec<(TenantId, User)> = Vec::new();
    for claim in claims {
        let (holder, _) = state
            .executor
            .load::<UserEmailAggregate>(&claim)
            .await
            .map_err(|e| e.into_api(|e| ApiError::internal(&e)))?;
        let Some(owner) = holder.map(|h| h.owner) else {
            continue;
        };
        if only.is_some_and(|t| t != owner.tenant) || found.iter().any(|(_, u)| u.id == owner.user)
        {
            continue;
        }
        let agg = aggregate::<UserAggregate>(owner.tenant.0, owner.user.to_string())?;
        let (user, _) = state
            .executor
            .load::<UserAggregate>(&agg)
            .await
            .map_err(|e| e.into_api(|e| ApiError::internal(&e)))?;
        if let Some(user) = user.filter(|u| u.email == email.as_str()) {
            found.push((owner.tenant, user));
        }
    }
    Ok(found)
}

/// Checks the password against every account the email names (at least once, against a
/// decoy, when it names none, so an unknown email costs what a wrong password does).
async fn attempt(
    state: &AppState,
    email: &Email,
    password: String,
    only: Option<TenantId>,
) -> Result<Attempt, ApiError> {
    let candidates = accounts(state, email, only).await?;
    if candidates.len() > MAX_ACCOUNTS {
        return Ok(Attempt::Ambiguous);
    }
    if candidates.is_empty() {
        passwords::verify(None, password).await?;
        return Ok(Attempt::Refused(candidates));
    }
    let mut opened = Vec::new();
    for (i, (_, user)) in candidates.iter().enumerate() {
        if passwords::verify(Some(user.password_hash.clone()), password.clone()).await? {
            opened.push(i);
        }
    }
    match opened.as_slice() {
        [] => Ok(Attempt::Refused(candidates)),
        [one] => {
            let (tenant, user) = candidates[*one].clone();
            Ok(Attempt::Opened(tenant, user))
        }
        _ => Ok(Attempt::Ambiguous),
    }
}

/// Log in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = LoginReply),
        (status = 400, description = "Malformed JSON, or `tenant_required`: the email has accounts in several tenants", body = ErrorBody),
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
    // Not the caller's failure (an ambiguous email, a server fault): the reservations go back.
    let take_back = || {
        throttle.pair.succeeded(&pair, now);
        throttle.source.succeeded(&address, now);
        throttle.account.succeeded(&account, now);
    };
    let delay = slowdown(throttle.account.recent(&account, now));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let outcome = attempt(&state, &email, body.password, body.tenant_id.map(TenantId)).await;
    let (tenant, user) = match outcome {
        Ok(Attempt::Opened(tenant, user)) => (tenant, user),
        Ok(Attempt::Refused(accounts)) => {
            for (tenant, u) in &accounts {
                audit_attempt(&state, *tenant, u.id, false, &address).await?;
            }
            tracing::info!(account = who, source = %address, "login refused");
            return Err(refused());
        }
        Ok(Attempt::Ambiguous) => {
            take_back();
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "tenant_required",
                "this email has accounts in several tenants: send tenant_id to choose one",
            ));
        }
        Err(e) => {
            take_back();
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
