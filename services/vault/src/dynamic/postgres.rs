//! What dynamic secrets do on PostgreSQL: the admin connection parsed and dialled through the
//! egress guard, roles named safely, the role template run, roles dropped with their
//! sessions.

use super::DynamicError;
use crate::rotators::{pg_login, pg_options, within, RotateError};
use aegis_runtime::Runtime;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};

pub(super) use super::url::Target;

/// A `postgres://user:password@host:port/database` connection.
pub(super) fn target(connection: &str) -> Result<Target, DynamicError> {
    Target::parse(connection, &["postgres", "postgresql"], 5432)
}

pub(super) async fn admin(rt: &Runtime, t: &Target) -> Result<PgConnection, DynamicError> {
    let options: PgConnectOptions = pg_options(
        rt.config.egress(),
        &t.host,
        t.port,
        &t.database,
        &t.user,
        &t.password,
    )
    .await
    .map_err(|e| DynamicError::Unreachable(e.to_string()))?;
    within(async {
        options
            .connect()
            .await
            .map_err(|e| RotateError::Postgres(e.to_string()))
    })
    .await
    .map_err(|e| DynamicError::Unreachable(e.to_string()))
}

/// Whether the admin may make roles (CREATEROLE, or a superuser).
pub(super) async fn may_create_roles(conn: &mut PgConnection) -> Result<bool, DynamicError> {
    let (may,): (bool,) = sqlx::query_as(
        "SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| DynamicError::Unreachable(e.to_string()))?;
    Ok(may)
}

/// Makes a role that logs in until `until`, given its password's SCRAM verifier (the
/// password itself never reaches the server).
pub(super) async fn create(
    conn: &mut PgConnection,
    user: &str,
    verifier: &str,
    until: DateTime<Utc>,
) -> Result<(), DynamicError> {
    let create = format!(
        "CREATE ROLE {} WITH LOGIN PASSWORD '{verifier}' VALID UNTIL '{}'",
        ident(user),
        until.to_rfc3339()
    );
    sqlx::query(&create)
        .persistent(false)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| DynamicError::Template(format!("creating the role: {e}")))
}

/// Moves the role's `VALID UNTIL`.
pub(super) async fn extend(
    conn: &mut PgConnection,
    user: &str,
    until: DateTime<Utc>,
) -> Result<(), DynamicError> {
    let alter = format!(
        "ALTER ROLE {} VALID UNTIL '{}'",
        ident(user),
        until.to_rfc3339()
    );
    sqlx::query(&alter)
        .persistent(false)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| DynamicError::Unreachable(e.to_string()))
}

/// Logs in as the new role.
pub(super) async fn prove(
    rt: &Runtime,
    t: &Target,
    user: &str,
    password: &str,
) -> Result<(), DynamicError> {
    let options = pg_options(
        rt.config.egress(),
        &t.host,
        t.port,
        &t.database,
        user,
        password,
    )
    .await
    .map_err(|e| DynamicError::Unreachable(e.to_string()))?;
    pg_login(&options, user)
        .await
        .map_err(|e| DynamicError::Template(e.to_string()))
}

/// A Postgres identifier, quoted: `"` doubled inside.
pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The role name a template makes: `{{name}}` is the configuration's name and `{{random}}`
/// eight random hex digits; the result keeps only `[a-z0-9_]` and fits Postgres's 63 bytes.
pub(super) fn username(template: &str, config_name: &str) -> String {
    let mut random = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut random);
    let template = if template.is_empty() {
        "v_{{name}}_{{random}}"
    } else {
        template
    };
    let rendered = template
        .replace("{{name}}", config_name)
        .replace("{{random}}", &hex::encode(random))
        .to_ascii_lowercase();
    let mut clean: String = rendered
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !clean.starts_with(|c: char| c.is_ascii_lowercase()) {
        clean.insert_str(0, "v_");
    }
    if !template.contains("{{random}}") {
        clean.push('_');
        clean.push_str(&hex::encode(random));
    }
    clean
        .chars()
        .rev()
        .take(63)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

/// Runs the role template's statements for `user`.
pub(super) async fn grant(
    conn: &mut PgConnection,
    template: &str,
    user: &str,
) -> Result<(), DynamicError> {
    for statement in super::template::statements(template, &ident(user)) {
        sqlx::query(&statement)
            .persistent(false)
            .execute(&mut *conn)
            .await
            .map_err(|e| DynamicError::Template(e.to_string()))?;
    }
    Ok(())
}

/// Ends every session of `user` and drops it (and what it owns); a role already gone is fine.
pub(super) async fn drop_role(conn: &mut PgConnection, user: &str) {
    let _ =
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
            .bind(user)
            .execute(&mut *conn)
            .await;
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(user)
        .fetch_optional(&mut *conn)
        .await
        .ok()
        .flatten();
    if exists.is_some() {
        let owned = format!("DROP OWNED BY {}", ident(user));
        let _ = sqlx::query(&owned)
            .persistent(false)
            .execute(&mut *conn)
            .await;
        let role = format!("DROP ROLE IF EXISTS {}", ident(user));
        if let Err(e) = sqlx::query(&role)
            .persistent(false)
            .execute(&mut *conn)
            .await
        {
            tracing::warn!(error = %e, role = user, "a dynamic role could not be dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_safe_identifiers_of_at_most_63_bytes() {
        let u = username("", "App DB; DROP ROLE x");
        assert!(u.starts_with("v_app_db__drop_role_x_"), "{u}");
        assert!(u
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        let long = username("{{name}}", &"n".repeat(100));
        assert!(long.len() <= 63, "{}", long.len());
        assert_ne!(username("", "a"), username("", "a"), "random part");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn connection_strings_are_postgres_urls() {
        let t = target("postgres://admin:p%40ss@127.0.0.1:5433/app").expect("parses");
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.database.as_str(),
                t.user.as_str()
            ),
            ("127.0.0.1", 5433, "app", "admin")
        );
        assert_eq!(t.password.as_str(), "p@ss");
        assert!(target("mysql://a:b@h/d").is_err());
        assert!(target("not a url").is_err());
    }
}
