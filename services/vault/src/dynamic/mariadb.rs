//! What dynamic secrets do on MariaDB (and MySQL; the document's `mysql` backend): the admin
//! connection (`mysql://user:password@host:port/database`) dialled through the egress guard,
//! users made with the password's hash rather than the password (`IDENTIFIED BY PASSWORD`,
//! so no statement or log on the server holds it), the role template run, users dropped with
//! their sessions. MariaDB keeps no per-user expiry time: a lease's end is kept by the
//! lease-expiry reactor, which drops the user on time.

use super::DynamicError;
use crate::rotators::TARGET_TIMEOUT;
use aegis_runtime::egress::{self, SystemResolver};
use sha1::{Digest, Sha1};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{ConnectOptions, Connection};

pub(super) use super::url::Target;

/// A `mysql://user:password@host:port/database` connection.
pub(super) fn target(connection: &str) -> Result<Target, DynamicError> {
    Target::parse(connection, &["mysql", "mariadb"], 3306)
}

/// Options for logging in as `user`, aimed at an address the guard allowed.
async fn options(
    allow: Option<&[String]>,
    t: &Target,
    user: &str,
    password: &str,
) -> Result<MySqlConnectOptions, DynamicError> {
    let addrs = egress::check(&SystemResolver, allow, &t.host, t.port)
        .await
        .map_err(|e| DynamicError::Unreachable(e.to_string()))?;
    let addr = addrs[0];
    let mut o = MySqlConnectOptions::new()
        .host(&addr.ip().to_string())
        .port(addr.port())
        .username(user)
        .disable_statement_logging();
    // An empty password is no password: a scrambled empty one is refused.
    if !password.is_empty() {
        o = o.password(password);
    }
    if !t.database.is_empty() {
        o = o.database(&t.database);
    }
    Ok(o)
}

async fn connect(options: MySqlConnectOptions) -> Result<MySqlConnection, DynamicError> {
    match tokio::time::timeout(TARGET_TIMEOUT, options.connect()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(DynamicError::Unreachable(e.to_string())),
        Err(_) => Err(DynamicError::Unreachable(format!(
            "timed out after {TARGET_TIMEOUT:?}"
        ))),
    }
}

pub(super) async fn admin(
    allow: Option<&[String]>,
    t: &Target,
) -> Result<MySqlConnection, DynamicError> {
    connect(options(allow, t, &t.user, &t.password).await?).await
}

/// Whether the admin may make users: `CREATE USER` or every privilege, granted globally.
pub(super) async fn may_create_users(conn: &mut MySqlConnection) -> Result<bool, DynamicError> {
    let grants: Vec<(String,)> = sqlx::query_as("SHOW GRANTS FOR CURRENT_USER()")
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| DynamicError::Unreachable(e.to_string()))?;
    Ok(grants.iter().any(|(g,)| {
        let g = g.to_ascii_uppercase();
        g.contains(" ON *.*") && (g.contains("ALL PRIVILEGES") || g.contains("CREATE USER"))
    }))
}

/// A user account as MariaDB names it: `'name'@'%'` (names are `[a-z0-9_]` here).
pub(super) fn account(user: &str) -> String {
    format!("'{}'@'%'", user.replace('\'', "''").replace('\\', "\\\\"))
}

/// The `mysql_native_password` hash of `password`: `*` and SHA1(SHA1(password)) in hex.
fn native_hash(password: &str) -> String {
    let inner = Sha1::digest(password.as_bytes());
    format!("*{}", hex::encode_upper(Sha1::digest(inner)))
}

pub(super) async fn create(
    conn: &mut MySqlConnection,
    user: &str,
    password: &str,
) -> Result<(), DynamicError> {
    let statement = format!(
        "CREATE USER {} IDENTIFIED BY PASSWORD '{}'",
        account(user),
        native_hash(password)
    );
    sqlx::query(&statement)
        .persistent(false)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| DynamicError::Template(format!("creating the user: {e}")))
}

/// Runs the role template's statements for `user` (`{{name}}` is its account).
pub(super) async fn grant(
    conn: &mut MySqlConnection,
    template: &str,
    user: &str,
) -> Result<(), DynamicError> {
    for statement in super::template::statements(template, &account(user)) {
        sqlx::query(&statement)
            .persistent(false)
            .execute(&mut *conn)
            .await
            .map_err(|e| DynamicError::Template(e.to_string()))?;
    }
    Ok(())
}

/// Logs in as the new user: the proof the credential works before anyone is given it.
pub(super) async fn prove(
    allow: Option<&[String]>,
    t: &Target,
    user: &str,
    password: &str,
) -> Result<(), DynamicError> {
    let mut conn = connect(options(allow, t, user, password).await?)
        .await
        .map_err(|e| DynamicError::Template(format!("the new user cannot log in: {e}")))?;
    let (who,): (String,) = sqlx::query_as("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| DynamicError::Template(e.to_string()))?;
    let _ = conn.close().await;
    if who != user {
        return Err(DynamicError::Template(format!(
            "logged in as `{who}`, not `{user}`"
        )));
    }
    Ok(())
}

/// Ends every session of `user` and drops it; a user already gone is fine.
pub(super) async fn drop_user(conn: &mut MySqlConnection, user: &str) {
    let sessions: Vec<(i64,)> = match sqlx::query_as(
        "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST WHERE USER = ?",
    )
    .bind(user)
    .fetch_all(&mut *conn)
    .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, user, "the sessions of a dynamic user could not be listed");
            Vec::new()
        }
    };
    for (id,) in sessions {
        let kill = format!("KILL CONNECTION {id}");
        if let Err(e) = sqlx::query(&kill)
            .persistent(false)
            .execute(&mut *conn)
            .await
        {
            tracing::warn!(error = %e, user, "a session of a dynamic user could not be ended");
        }
    }
    let drop = format!("DROP USER IF EXISTS {}", account(user));
    if let Err(e) = sqlx::query(&drop)
        .persistent(false)
        .execute(&mut *conn)
        .await
    {
        tracing::warn!(error = %e, user, "a dynamic user could not be dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_native_hash_is_mysqls() {
        // MySQL's documented example: PASSWORD('mypass').
        assert_eq!(
            native_hash("mypass"),
            "*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4"
        );
        assert_eq!(account("v_app_1"), "'v_app_1'@'%'");
    }

    #[test]
    fn connection_strings_are_mysql_urls() {
        let t = target("mysql://root:p%40ss@127.0.0.1:3307/test").expect("parses");
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.database.as_str(),
                t.user.as_str()
            ),
            ("127.0.0.1", 3307, "test", "root")
        );
        assert!(target("postgres://a:b@h/d").is_err());
    }
}
