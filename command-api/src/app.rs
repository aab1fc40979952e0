//! `Application::build(config, roles)`: connects, provisions, migrates and starts the roles it
//! is asked to run. Port 0 works; tests and `aegis serve` use the same entry point.

use crate::state::{AppState, Runtime};
use aegis_projectors::audit::AuditProjection;
use aegis_projectors::identity::{IdentityProjection, TenantsProjection};
use aegis_projectors::incidents::IncidentsProjection;
use aegis_runtime::command::Executor;
use aegis_runtime::config::Config;
use aegis_runtime::directory::Directory;
use aegis_runtime::keys::{KeyStore, MasterKeys};
use aegis_runtime::positions::Positions;
use aegis_runtime::supervisor::supervise;
use aegis_runtime::tokens::Keyring;
use aegis_streams::{provision, EventStore, StreamSettings};
use anyhow::Context;
use axum::serve::ListenerExt as _;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinSet;

#[derive(Debug, Clone, Copy)]
pub struct Roles {
    pub command_api: bool,
    pub projectors: bool,
    pub reactors: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        command_api: true,
        projectors: true,
        reactors: true,
    };
}

pub struct Application {
    pub state: AppState,
    address: Option<SocketAddr>,
    metrics_address: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// `NATS_URL`'s servers (one URL, or the comma-separated list every NATS client takes) without
/// their userinfo, and the user and password the first one that has them carried: the client
/// takes credentials as options, and the URLs are logged.
fn nats_servers(raw: &str) -> (Vec<String>, Option<(String, String)>) {
    let mut credentials = None;
    let servers = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|one| match reqwest::Url::parse(one) {
            Ok(mut url) if !url.username().is_empty() => {
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8_lossy()
                        .into_owned()
                };
                let user = decode(url.username());
                let password = decode(url.password().unwrap_or_default());
                credentials.get_or_insert((user, password));
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.to_string()
            }
            _ => one.to_string(),
        })
        .collect();
    (servers, credentials)
}

/// Connects to NATS and JetStream and provisions streams and buckets.
pub async fn connect_store(config: &Config) -> anyhow::Result<(async_nats::Client, EventStore)> {
    let (servers, credentials) = nats_servers(&config.nats_url);
    let addresses = servers
        .iter()
        .map(|s| s.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("NATS_URL: {}", servers.join(",")))?;
    let options = match credentials {
        Some((user, password)) => {
            async_nats::ConnectOptions::with_user_and_password(user, password)
        }
        None => async_nats::ConnectOptions::new(),
    };
    let client = options
        .name("aegis")
        .retry_on_initial_connect()
        .connect(addresses)
        .await
        .with_context(|| format!("connecting to NATS at {}", servers.join(",")))?;
    let js = async_nats::jetstream::new(client.clone());
    provision(
        &js,
        &StreamSettings {
            replicas: config.stream_replicas,
        },
    )
    .await
    .context("provisioning JetStream")?;
    Ok((client, EventStore::new(js)))
}

/// Connects to Postgres and applies migrations.
pub async fn connect_db(config: &Config) -> anyhow::Result<sqlx::PgPool> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(32)
        // A connection is tested (one round trip) only when it has sat idle for a second or
        // more, not every time it is taken: with sqlx's default a query was three round trips
        // (a test when taken, the query, a test when given back, which sqlx always makes).
        // One used within the last second and cut meanwhile (a PostgreSQL restart) fails its
        // query once, as a database that is not there does: 503 with Retry-After, and the
        // pool drops it.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= std::time::Duration::from_secs(1) {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect(&config.database_url)
        .await
        .context("connecting to PostgreSQL (DATABASE_URL)")?;
    aegis_projectors::migrate(&pool)
        .await
        .context("applying migrations")?;
    Ok(pool)
}

/// The projectors' own connections. Their transactions commit without waiting for the WAL
/// flush (`synchronous_commit = off`): a read model is derived from the log, and each batch
/// writes its rows and its checkpoint in one transaction, so what a PostgreSQL crash takes back
/// it takes back together, and the projector applies it again from the log. Visibility is not
/// delayed (a committed batch is seen at once), only the fsync: at a small batch per command,
/// a WAL flush per projection per batch was most of PostgreSQL's work. Everything else keeps
/// synchronous commits.
pub async fn connect_projector_db(config: &Config) -> anyhow::Result<sqlx::PgPool> {
    let options: sqlx::postgres::PgConnectOptions = config
        .database_url
        .parse()
        .context("parsing DATABASE_URL")?;
    sqlx::postgres::PgPoolOptions::new()
        // Checkpoint reads and halts only: the runner applies batches on connections of its
        // own (see `aegis_projectors::runner`), opened with these same options.
        .max_connections(4)
        .connect_with(options.options([("synchronous_commit", "off")]))
        .await
        .context("connecting to PostgreSQL (DATABASE_URL) for the projectors")
}

/// The key store over the `AEGIS_KEYS` bucket, opened with the configured master keys.
pub async fn open_keys(config: &Config, store: &EventStore) -> anyhow::Result<KeyStore> {
    let master = config.master_key_bytes().unwrap_or_else(|| {
        tracing::warn!(
            "AEGIS_MASTER_KEY is not set: using a random key for this process; nothing it \
             wraps (login tokens, API keys, vault values) will open after a restart"
        );
        rand::random::<[u8; 32]>().to_vec()
    });
    let master = MasterKeys::new(&master, &config.previous_master_key_bytes())
        .context("AEGIS_MASTER_KEY")?;
    let kv = store
        .jetstream()
        .get_key_value(aegis_streams::provision::KEYS_BUCKET)
        .await
        .context("opening the key bucket")?;
    Ok(KeyStore::new(kv, master))
}

impl Application {
    pub async fn build(config: Config, roles: Roles) -> anyhow::Result<Self> {
        let (client, store) = connect_store(&config).await?;
        let pool = connect_db(&config).await?;
        let idempotency = store
            .jetstream()
            .get_key_value(aegis_streams::provision::IDEMPOTENCY_BUCKET)
            .await
            .context("opening the idempotency bucket")?;
        let keys = open_keys(&config, &store).await?;
        // Projectors never touch a secret, so a projector-only process needs no master key.
        let root = if roles.command_api || roles.reactors {
            keys.root()
                .await
                .context("opening the root secret in the AEGIS_KEYS bucket")?
        } else {
            zeroize::Zeroizing::new(rand::random())
        };
        let audit_key = ed25519_dalek::SigningKey::from_bytes(&config.audit_signing_seed(&*root));
        let keyring = Keyring::new(
            &*root,
            &config.jwt_kid,
            &config.jwt_retired_kids,
            config.jwt_ttl_secs,
        );
        let executor = Executor::new(store.clone());
        let directory = Directory::new(executor.clone());
        let directory_executor = executor.clone();
        let threat_intel = Arc::new(crate::threat_intel::ThreatIntel::new(
            config.threat_intel_per_minute,
        ));
        let (shutdown, rx) = watch::channel(false);
        let commands_in_flight = config.max_commands_in_flight;
        let (access_log, access_writer) =
            crate::access_log::AccessLog::start(store.jetstream().clone(), rx.clone());
        let state = AppState::new(crate::state::Shared {
            access_log: Arc::new(access_log),
            stopping: rx.clone(),
            runtime: Runtime {
                config: Arc::new(config),
                executor,
                pool: pool.clone(),
                nats: client.clone(),
                known_tenants: Arc::default(),
                keyring: Arc::new(keyring),
                directory: directory.clone(),
                credentials: Directory::new(directory_executor),
                supervision: Arc::default(),
                audit_key: Arc::new(audit_key),
                keys,
                vault_checked: Arc::default(),
                metrics: Arc::default(),
                positions: Positions::new(
                    store
                        .jetstream()
                        .get_key_value(aegis_streams::provision::POSITIONS_BUCKET)
                        .await
                        .context("opening the positions bucket")?,
                ),
                applied: Arc::default(),
                records: Arc::new(aegis_runtime::runtime::Records::new(
                    aegis_runtime::runtime::MOST_PER_COMMIT,
                )),
            },
            idempotency,
            login_throttle: Arc::default(),
            limits: Arc::new(crate::limits::Limits::new(commands_in_flight)),
            rate_limiter: Arc::default(),
            rebuilds: Arc::default(),
            usage: Arc::default(),
            checkpoints: Arc::new(tokio::sync::Mutex::new((
                Vec::new(),
                aegis_streams::Expected::NEW,
            ))),
            threat_intel,
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(access_writer);
        let mut address = None;
        let mut metrics_address = None;

        let health = state.supervision.clone();
        if roles.projectors {
            let (pool, store) = (connect_projector_db(&state.config).await?, store.clone());
            supervise(
                &mut tasks,
                health.clone(),
                "projectors",
                rx.clone(),
                move |stop| {
                    aegis_projectors::runner::run(
                        pool.clone(),
                        store.clone(),
                        vec![
                            Arc::new(TenantsProjection),
                            Arc::new(IdentityProjection),
                            Arc::new(IncidentsProjection),
                            Arc::new(AuditProjection),
                            Arc::new(aegis_projectors::vault::VaultProjection),
                            Arc::new(aegis_projectors::auto_response::AutoResponseProjection),
                            Arc::new(aegis_projectors::integrations::IntegrationsProjection),
                            Arc::new(aegis_projectors::broker::BrokerProjection),
                        ],
                        stop,
                    )
                },
            );
        }
        if roles.reactors {
            aegis_reactors::role::start(&mut tasks, &state.runtime, rx.clone());
        }
        if roles.command_api {
            if let Some(seed) = state.config.nats_auth_seed.clone() {
                let s = state.clone();
                supervise(
                    &mut tasks,
                    health.clone(),
                    "nats_auth_callout",
                    rx.clone(),
                    move |stop| {
                        let callout =
                            crate::nats_auth::run(s.clone(), seed.expose().to_string(), stop);
                        async move {
                            if let Err(e) = callout.await {
                                tracing::error!(error = %e, "the NATS auth callout stopped");
                            }
                        }
                    },
                );
            }
            let (d, c) = (directory.clone(), client.clone());
            supervise(
                &mut tasks,
                health.clone(),
                "identity_cache",
                rx.clone(),
                move |stop| {
                    let follow = d.clone().follow(
                        c.clone(),
                        aegis_runtime::directory::IDENTITY_EVENTS,
                        stop,
                    );
                    async move {
                        if let Err(e) = follow.await {
                            tracing::error!(error = %e, "identity cache cannot follow the log");
                        }
                    }
                },
            );
            let (d, c) = (state.credentials.clone(), client.clone());
            supervise(
                &mut tasks,
                health.clone(),
                "credential_cache",
                rx.clone(),
                move |stop| {
                    let follow = d.clone().follow(
                        c.clone(),
                        aegis_runtime::directory::CREDENTIAL_EVENTS,
                        stop,
                    );
                    async move {
                        if let Err(e) = follow.await {
                            tracing::error!(error = %e, "credential cache cannot follow the log");
                        }
                    }
                },
            );
            let (k, c) = (state.keys.clone(), client.clone());
            supervise(
                &mut tasks,
                health.clone(),
                "key_cache",
                rx.clone(),
                move |stop| {
                    let follow =
                        aegis_vault_services::follow_tenant_keys(k.clone(), c.clone(), stop);
                    async move {
                        if let Err(e) = follow.await {
                            tracing::error!(error = %e, "key cache cannot follow tenant key destruction");
                        }
                    }
                },
            );
            let router = crate::http::router(state.clone()).layer(
                tower_http::trace::TraceLayer::new_for_http().make_span_with(|req: &http::Request<_>| {
                    let span = tracing::info_span!("http", method = %req.method(), path = %req.uri().path());
                    aegis_streams::trace::adopt_http_parent(&span, req.headers());
                    span
                }),
            );
            let listener = tokio::net::TcpListener::bind(state.config.http_addr)
                .await
                .with_context(|| format!("binding {}", state.config.http_addr))?;
            address = Some(listener.local_addr()?);
            if let Some(addr) = state.config.metrics_addr {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the metrics listener {addr}"))?;
                metrics_address = Some(listener.local_addr()?);
                let mut stop = rx.clone();
                let scrape = crate::http::probes::metrics_router(state.clone());
                tasks.spawn(async move {
                    let served = axum::serve(listener, scrape)
                        .with_graceful_shutdown(async move {
                            let _ = stop.wait_for(|s| *s).await;
                        })
                        .await;
                    if let Err(e) = served {
                        tracing::error!(error = %e, "metrics listener stopped");
                    }
                });
            }
            let mut stop = rx.clone();
            let http_router = router.clone();
            // `tap_io` only so that axum's `ConnectInfo<SocketAddr>` applies to the bounded
            // listener (axum provides it for a tapped listener's address).
            let listener = crate::http::connections::Bounded::new(
                listener,
                state.config.max_connections,
                state.metrics.clone(),
            )
            .tap_io(|_| {});
            tasks.spawn(async move {
                let served = axum::serve(
                    listener,
                    http_router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "HTTP server stopped");
                }
            });
            let stop = rx.clone();
            let limits = state.limits.bridge.clone();
            tasks.spawn(async move {
                if let Err(e) = crate::nats_bridge::serve(client, router, limits, stop).await {
                    tracing::error!(error = %e, "NATS command listener stopped");
                }
            });
        }
        Ok(Self {
            state,
            address,
            metrics_address,
            shutdown,
            tasks,
        })
    }

    /// The bound HTTP address, when the command API role runs.
    pub fn address(&self) -> Option<SocketAddr> {
        self.address
    }

    /// The bound address of the credential-free metrics listener, when it runs.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_address
    }

    /// Stops every role and waits for them, at most `AEGIS_SHUTDOWN_GRACE_SECS`: the listeners
    /// stop accepting, open event streams end (telling their clients to reconnect), commands in
    /// flight finish and reactors settle their messages; whatever is still running then is
    /// abandoned (an unacknowledged reactor message is redelivered to the next instance).
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        let grace = std::time::Duration::from_secs(self.state.config.shutdown_grace_secs);
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                still_running = self.tasks.len(),
                grace_secs = grace.as_secs(),
                "the grace period ran out: stopping what is still running"
            );
            self.tasks.shutdown().await;
        }
    }

    /// Runs until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        self.stop().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::nats_servers;

    #[test]
    fn nats_credentials_leave_the_url_and_are_decoded() {
        let (urls, creds) = nats_servers("nats://aegis:p%40ss@127.0.0.1:4322");
        assert_eq!(urls, ["nats://127.0.0.1:4322"]);
        assert_eq!(creds, Some(("aegis".into(), "p@ss".into())));
        assert_eq!(
            nats_servers("nats://127.0.0.1:4322"),
            (vec!["nats://127.0.0.1:4322".to_string()], None)
        );
    }

    #[test]
    fn a_server_list_is_every_server_and_the_credentials_once() {
        let (urls, creds) = nats_servers(
            "nats://aegis:pw@127.0.0.1:4322, nats://aegis:pw@127.0.0.1:4323,nats://127.0.0.1:4324",
        );
        assert_eq!(
            urls,
            [
                "nats://127.0.0.1:4322",
                "nats://127.0.0.1:4323",
                "nats://127.0.0.1:4324"
            ]
        );
        assert_eq!(creds, Some(("aegis".into(), "pw".into())));
    }
}
