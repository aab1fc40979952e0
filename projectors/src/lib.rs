//! aegis-projectors: PostgreSQL read models folded from the event log.
//!
//! A projection applies a batch of commits and its checkpoint in one transaction, so a crash
//! never applies an event twice or skips one. A commit it cannot apply halts the projection
//! (visible in `/readyz` and `/metrics`); nothing is ever skipped silently.

pub mod audit;
pub mod auto_response;
pub mod broker;
mod broker_requests;
pub mod checkpoint;
mod event;
pub mod identity;
pub mod incidents;
pub mod integrations;
pub mod rebuild;
pub mod runner;
pub mod vault;
mod vault_leakage;
mod vault_reads;

pub use runner::{Projection, ProjectionError};

use sqlx::PgPool;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Names of every projection, for `rebuild` and the probes.
pub const PROJECTIONS: &[&str] = &[
    identity::TenantsProjection::NAME,
    identity::IdentityProjection::NAME,
    incidents::IncidentsProjection::NAME,
    audit::AuditProjection::NAME,
    vault::VaultProjection::NAME,
    auto_response::AutoResponseProjection::NAME,
    integrations::IntegrationsProjection::NAME,
    broker::BrokerProjection::NAME,
];
