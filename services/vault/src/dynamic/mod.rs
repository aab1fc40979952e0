//! Seed 003's dynamic secrets on PostgreSQL: a configuration holds a sealed admin
//! connection; each credential issued is a real role with a password and `VALID UNTIL` the
//! lease's end, granted what the configuration's role template says; revoking ends the
//! role's sessions and drops it; the expiry reactor does the same when a lease's time runs
//! out. Every connection goes through the egress guard; the password is proven by a login
//! and never recorded (Postgres is sent its SCRAM verifier, not the password).

mod backend;
mod mariadb;
mod postgres;
mod template;
mod url;

use crate::rotators::generate;
use aegis_runtime::command::{CommandContext, CommandError};
use aegis_runtime::keys::KeyError;
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_vault::dynamic::{
    Config, ConfigError, DynamicConfigAggregate, Lease, LeaseAggregate, LeaseCommand, LeaseEnd,
    LeaseError, NewConfig, NewLease,
};
use backend::{Admin, Target};
use chrono::{DateTime, TimeDelta, Utc};
use postgres::username;
use uuid::Uuid;
use zeroize::Zeroizing;

pub use backend::BACKENDS;

#[derive(Debug, thiserror::Error)]
pub enum DynamicError {
    #[error(
        "the `{0}` backend is not built yet; this build makes dynamic credentials on postgres and mysql (MariaDB)"
    )]
    Unsupported(String),
    #[error("connectionString must be postgres://user:password@host:port/database (mysql://… for mysql)")]
    BadConnection,
    #[error("the backend cannot be used: {0}")]
    Unreachable(String),
    #[error(
        "the admin connection may not make users (CREATEROLE on postgres, CREATE USER on mysql)"
    )]
    NotPrivileged,
    #[error("the role template failed: {0}")]
    Template(String),
    #[error("dynamic secret configuration not found: {0}")]
    NoConfig(String),
    #[error("lease not found: {0}")]
    NoLease(String),
    #[error(transparent)]
    Config(#[from] CommandError<ConfigError>),
    #[error(transparent)]
    Lease(#[from] CommandError<LeaseError>),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// What the caller asks a configuration to be.
pub struct ConfigInput {
    pub name: String,
    pub kind: String,
    pub backend: String,
    pub connection: Zeroizing<String>,
    pub username_template: String,
    pub role_template: String,
    pub ttl_default: TimeDelta,
    pub ttl_max: TimeDelta,
}

/// The key-store secret the admin connection of a configuration is sealed under.
fn connection_secret(config_id: &str) -> String {
    format!("dynamic.{config_id}")
}

/// Checks the connection reaches a server whose user may make roles, seals it, and records
/// the configuration.
pub async fn create_config(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    input: ConfigInput,
) -> Result<(Config, u64), DynamicError> {
    if !BACKENDS.contains(&input.backend.as_str()) {
        return Err(DynamicError::Unsupported(input.backend));
    }
    let t = Target::parse(&input.backend, &input.connection)?;
    let mut conn = t.admin(rt).await?;
    let may = conn.may_create().await;
    conn.close().await;
    if !may? {
        return Err(DynamicError::NotPrivileged);
    }
    let id = format!("dyn_{}", Uuid::now_v7().simple());
    let sealed = rt
        .keys
        .seal_new(
            tenant,
            &connection_secret(&id),
            1,
            input.connection.as_bytes(),
        )
        .await?;
    let agg = address::<DynamicConfigAggregate>(tenant, id.clone())
        .map_err(|e| DynamicError::Config(e.into()))?;
    let out = rt
        .executor
        .execute::<DynamicConfigAggregate>(
            &agg,
            &NewConfig {
                id,
                name: input.name,
                kind: input.kind,
                backend: input.backend,
                username_template: input.username_template,
                role_template: input.role_template,
                ttl_default_seconds: input.ttl_default.num_seconds(),
                ttl_max_seconds: input.ttl_max.num_seconds(),
                connection: sealed,
            },
            ctx,
            true,
        )
        .await?;
    let config = out
        .state
        .ok_or_else(|| DynamicError::NoConfig(String::new()))?;
    Ok((config, out.position))
}

pub async fn config(rt: &Runtime, tenant: Uuid, id: &str) -> Result<Config, DynamicError> {
    let agg = address::<DynamicConfigAggregate>(tenant, id)
        .map_err(|_| DynamicError::NoConfig(id.into()))?;
    let (found, _) = rt
        .executor
        .load::<DynamicConfigAggregate>(&agg)
        .await
        .map_err(DynamicError::Config)?;
    found.ok_or_else(|| DynamicError::NoConfig(id.into()))
}

/// The configuration's admin connection, opened.
async fn opened(rt: &Runtime, tenant: Uuid, c: &Config) -> Result<Zeroizing<String>, DynamicError> {
    let clear = rt
        .keys
        .open(tenant, &connection_secret(&c.new.id), 1, &c.new.connection)
        .await?;
    Ok(Zeroizing::new(
        String::from_utf8(clear.to_vec()).map_err(|_| KeyError::Tampered)?,
    ))
}

async fn connect(rt: &Runtime, tenant: Uuid, c: &Config) -> Result<Admin, DynamicError> {
    Target::parse(&c.new.backend, &opened(rt, tenant, c).await?)?
        .admin(rt)
        .await
}

/// A credential issued: the password is in this answer only.
pub struct Issued {
    pub lease_id: String,
    pub username: String,
    pub password: Zeroizing<String>,
    pub expires_at: DateTime<Utc>,
    pub position: u64,
}

/// Makes a role for `ttl` (the configuration's default when `None`, never past its max),
/// proves it logs in, and records the lease. A role whose lease could not be recorded is
/// dropped again.
pub async fn issue(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    config_id: &str,
    ttl: Option<TimeDelta>,
    purpose: String,
    requested_by: String,
) -> Result<Issued, DynamicError> {
    let c = config(rt, tenant, config_id).await?;
    let now = Utc::now();
    let max = TimeDelta::seconds(c.new.ttl_max_seconds);
    let ttl = ttl
        .unwrap_or(TimeDelta::seconds(c.new.ttl_default_seconds))
        .min(max);
    let expires_at = now + ttl;
    let user = username(&c.new.username_template, &c.new.name);
    let password = generate(32, aegis_vault::settings::DEFAULT_ALPHABET);
    let admin_target = Target::parse(&c.new.backend, &opened(rt, tenant, &c).await?)?;
    let mut conn = admin_target.admin(rt).await?;
    if let Err(e) = conn.create(&user, &password, expires_at).await {
        conn.close().await;
        return Err(e);
    }
    let lease_id = format!("lease_{}", Uuid::now_v7().simple());
    // Its password's leak fingerprint, kept under the lease: a leak scan that finds it names
    // the lease and can end it.
    crate::fingerprints::remember(rt, tenant, &lease_id, 0, password.as_bytes()).await;
    // Granted, proven by a login, then recorded; a role whose lease is not recorded goes.
    let recorded = match conn.grant(&c.new.role_template, &user).await {
        Ok(()) => match admin_target.prove(rt, &user, &password).await {
            Ok(()) => {
                let lease = NewLease {
                    config_id: c.new.id.clone(),
                    username: user.clone(),
                    expires_at,
                    max_expires_at: now + max,
                    purpose,
                    requested_by,
                };
                record_issue(rt, ctx, tenant, &lease_id, lease).await
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    if recorded.is_err() {
        conn.drop_user(&user).await;
    }
    conn.close().await;
    Ok(Issued {
        lease_id,
        username: user,
        password,
        expires_at,
        position: recorded?.position,
    })
}

async fn record_issue(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    lease_id: &str,
    lease: NewLease,
) -> Result<aegis_runtime::command::Outcome<Option<Lease>>, DynamicError> {
    let agg = lease_ref(tenant, lease_id)?;
    Ok(rt
        .executor
        .execute::<LeaseAggregate>(&agg, &LeaseCommand::Issue(lease), ctx, true)
        .await?)
}

/// A lease's address; an id no lease can have is simply not found.
fn lease_ref(tenant: Uuid, id: &str) -> Result<aegis_streams::AggregateRef, DynamicError> {
    address::<LeaseAggregate>(tenant, id).map_err(|_| DynamicError::NoLease(id.into()))
}

pub async fn lease(rt: &Runtime, tenant: Uuid, id: &str) -> Result<(Lease, u64), DynamicError> {
    let agg = lease_ref(tenant, id)?;
    let (found, expected) = rt
        .executor
        .load::<LeaseAggregate>(&agg)
        .await
        .map_err(DynamicError::Lease)?;
    let lease = found.ok_or_else(|| DynamicError::NoLease(id.into()))?;
    Ok((lease, expected.last_seq))
}

/// Extends a lease by `ttl` from now (the configuration's default when `None`), never past
/// its maximum: the role's `VALID UNTIL` first, then the record.
pub async fn renew(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: &str,
    ttl: Option<TimeDelta>,
) -> Result<(DateTime<Utc>, u64), DynamicError> {
    let (l, _) = lease(rt, tenant, id).await?;
    let c = config(rt, tenant, &l.issued.config_id).await?;
    let now = Utc::now();
    let until = (now + ttl.unwrap_or(TimeDelta::seconds(c.new.ttl_default_seconds)))
        .min(l.issued.max_expires_at);
    let status = l.status(now);
    if status != "active" {
        return Err(DynamicError::Lease(CommandError::Domain(
            LeaseError::Ended(status),
        )));
    }
    if until > l.expires_at {
        let mut conn = connect(rt, tenant, &c).await?;
        let extended = conn.extend(&l.issued.username, until).await;
        conn.close().await;
        extended?;
    }
    let agg = lease_ref(tenant, id)?;
    let out = rt
        .executor
        .execute::<LeaseAggregate>(&agg, &LeaseCommand::Renew { until, now }, ctx, false)
        .await?;
    let expires_at = out.state.map_or(until, |l| l.expires_at);
    Ok((expires_at, out.position))
}

/// Ends a lease: its role's sessions ended and the role dropped, then the end recorded.
/// Ending an ended lease answers it as it is.
pub async fn end(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: &str,
    how: LeaseEnd,
) -> Result<(Lease, u64), DynamicError> {
    let (l, position) = lease(rt, tenant, id).await?;
    if l.ended.is_some() {
        return Ok((l, position));
    }
    let c = config(rt, tenant, &l.issued.config_id).await?;
    let mut conn = connect(rt, tenant, &c).await?;
    conn.drop_user(&l.issued.username).await;
    conn.close().await;
    let agg = lease_ref(tenant, id)?;
    let out = rt
        .executor
        .execute::<LeaseAggregate>(&agg, &LeaseCommand::End(how), ctx, false)
        .await?;
    let ended = out.state.ok_or_else(|| DynamicError::NoLease(id.into()))?;
    Ok((ended, out.position))
}

/// Ends the leases whose time ran out (the expiry reactor's pass), at most `batch` of them;
/// how many it ended.
pub async fn expire_due(rt: &Runtime, batch: i64) -> Result<usize, sqlx::Error> {
    let due: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT tenant_id, id FROM vault_dynamic_leases WHERE ended IS NULL AND expires_at <= now() \
         ORDER BY expires_at LIMIT $1",
    )
    .bind(batch)
    .fetch_all(&rt.pool)
    .await?;
    let mut ended = 0;
    for (tenant, id) in due {
        // Each end is stamped when it happens, not when the pass began.
        let ctx = CommandContext::system("lease-expiry");
        match end(rt, &ctx, tenant, &id, LeaseEnd::Expired).await {
            Ok(_) => ended += 1,
            Err(e) => {
                tracing::warn!(error = %e, %tenant, lease = %id, "an expired lease could not be ended; retried next pass")
            }
        }
    }
    Ok(ended)
}
