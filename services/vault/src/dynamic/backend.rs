//! The backends dynamic credentials are made on, behind one face: where the admin connection
//! goes, and what making, granting, extending and dropping a user means on each. PostgreSQL
//! keeps the lease's end itself (`VALID UNTIL`); MariaDB has no such thing, so there the
//! lease-expiry reactor's drop is the end.

use super::{mariadb, postgres, DynamicError};
use crate::scram;
use aegis_runtime::Runtime;
use chrono::{DateTime, Utc};
use sqlx::mysql::MySqlConnection;
use sqlx::{Connection, PgConnection};

/// The backends this build makes credentials on (`mysql` is served by MariaDB or MySQL).
pub const BACKENDS: &[&str] = &["postgres", "mysql"];

pub(super) enum Target {
    Postgres(postgres::Target),
    Mysql(mariadb::Target),
}

pub(super) enum Admin {
    Postgres(PgConnection),
    Mysql(MySqlConnection),
}

impl Target {
    pub(super) fn parse(backend: &str, connection: &str) -> Result<Target, DynamicError> {
        match backend {
            "postgres" => postgres::target(connection).map(Target::Postgres),
            "mysql" => mariadb::target(connection).map(Target::Mysql),
            other => Err(DynamicError::Unsupported(other.into())),
        }
    }

    pub(super) async fn admin(&self, rt: &Runtime) -> Result<Admin, DynamicError> {
        Ok(match self {
            Target::Postgres(t) => Admin::Postgres(postgres::admin(rt, t).await?),
            Target::Mysql(t) => Admin::Mysql(mariadb::admin(rt.config.egress(), t).await?),
        })
    }

    /// Logs in as the new user: the proof the credential works before anyone is given it.
    pub(super) async fn prove(
        &self,
        rt: &Runtime,
        user: &str,
        password: &str,
    ) -> Result<(), DynamicError> {
        match self {
            Target::Postgres(t) => postgres::prove(rt, t, user, password).await,
            Target::Mysql(t) => mariadb::prove(rt.config.egress(), t, user, password).await,
        }
    }
}

impl Admin {
    /// Whether the admin may make users.
    pub(super) async fn may_create(&mut self) -> Result<bool, DynamicError> {
        match self {
            Admin::Postgres(c) => postgres::may_create_roles(c).await,
            Admin::Mysql(c) => mariadb::may_create_users(c).await,
        }
    }

    /// Makes `user` with `password`, ending at `until` where the backend can say so.
    pub(super) async fn create(
        &mut self,
        user: &str,
        password: &str,
        until: DateTime<Utc>,
    ) -> Result<(), DynamicError> {
        match self {
            Admin::Postgres(c) => {
                postgres::create(c, user, &scram::verifier(password), until).await
            }
            Admin::Mysql(c) => mariadb::create(c, user, password).await,
        }
    }

    pub(super) async fn grant(&mut self, template: &str, user: &str) -> Result<(), DynamicError> {
        match self {
            Admin::Postgres(c) => postgres::grant(c, template, user).await,
            Admin::Mysql(c) => mariadb::grant(c, template, user).await,
        }
    }

    /// Moves the user's end to `until` (PostgreSQL); MariaDB keeps no end to move.
    pub(super) async fn extend(
        &mut self,
        user: &str,
        until: DateTime<Utc>,
    ) -> Result<(), DynamicError> {
        match self {
            Admin::Postgres(c) => postgres::extend(c, user, until).await,
            Admin::Mysql(_) => Ok(()),
        }
    }

    /// Ends the user's sessions and drops it; one already gone is fine.
    pub(super) async fn drop_user(&mut self, user: &str) {
        match self {
            Admin::Postgres(c) => postgres::drop_role(c, user).await,
            Admin::Mysql(c) => mariadb::drop_user(c, user).await,
        }
    }

    pub(super) async fn close(self) {
        let _ = match self {
            Admin::Postgres(c) => c.close().await,
            Admin::Mysql(c) => c.close().await,
        };
    }
}
