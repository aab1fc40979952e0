//! A private NATS server, a private database, and Aegis booted on them.

use aegis_command_api::app::{Application, Roles};
use aegis_runtime::config::{Config, Secret};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const BOOTSTRAP: &str = "test-bootstrap-token-0123456789";
pub const INTERNAL: &str = "test-internal-secret-0123456789";

/// A port nothing listens on right now, on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Serves `app` on a free loopback port for the rest of the test; returns its base URL.
/// Tests stand in for third parties (vendors, collectors) this way, and only on loopback.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serves") });
    url
}

/// What a local OTLP/HTTP collector received: content type and body of each export.
pub type Exports = std::sync::Arc<std::sync::Mutex<Vec<(String, bytes::Bytes)>>>;

/// A local OTLP/HTTP collector that records every trace export it receives.
pub async fn trace_collector() -> (String, Exports) {
    let got: Exports = Default::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
            let sink = sink.clone();
            async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                if let Ok(mut s) = sink.lock() {
                    s.push((ct, body));
                }
                ""
            }
        }),
    );
    (serve(app).await, got)
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A nats-server of our own, killed and wiped on drop.
pub struct NatsServer {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    conf: PathBuf,
    /// Flags beyond the port and store (a cluster member's name and routes).
    args: Vec<String>,
    /// Its name in a cluster (`n1`...), as JetStream reports leaders.
    pub name: String,
}

impl NatsServer {
    pub fn start() -> Self {
        Self::start_with_conf(
            std::env::var("AEGIS_NATS_CONF")
                .map(PathBuf::from)
                .unwrap_or_else(|_| repo_root().join("nats.conf")),
        )
    }

    /// Starts a server from `conf` (the benchmark uses a variant with default sync).
    pub fn start_with_conf(conf: PathBuf) -> Self {
        let dir = std::env::temp_dir().join(format!("aegis-nats-{}", Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = free_port();
        let child = Self::spawn(&conf, port, &dir, &[]);
        let mut server = Self {
            child,
            port,
            dir,
            conf,
            args: Vec::new(),
            name: "aegis-local".into(),
        };
        server.wait_ready();
        server
    }

    /// `n` servers on loopback forming one JetStream cluster (each from the shipped
    /// configuration, named `n1`... and routed to every other), up once JetStream answers.
    pub async fn cluster(n: usize) -> Vec<NatsServer> {
        let conf = std::env::var("AEGIS_NATS_CONF")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join("nats.conf"));
        let cluster = format!("aegis-{}", Uuid::now_v7().simple());
        let route_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let routes = route_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut servers: Vec<NatsServer> = (0..n)
            .map(|i| {
                let dir =
                    std::env::temp_dir().join(format!("aegis-nats-{}", Uuid::now_v7().simple()));
                std::fs::create_dir_all(&dir).expect("temp dir");
                let name = format!("n{}", i + 1);
                let args = vec![
                    "--server_name".to_string(),
                    name.clone(),
                    "--cluster_name".into(),
                    cluster.clone(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{}", route_ports[i]),
                    "--routes".into(),
                    routes.clone(),
                ];
                let port = free_port();
                NatsServer {
                    child: Self::spawn(&conf, port, &dir, &args),
                    port,
                    dir,
                    conf: conf.clone(),
                    args,
                    name,
                }
            })
            .collect();
        for s in &mut servers {
            s.wait_ready();
        }
        let urls = servers.iter().map(NatsServer::url).collect::<Vec<_>>();
        let client = async_nats::connect(urls)
            .await
            .expect("connects to the cluster");
        let js = async_nats::jetstream::new(client);
        let deadline = Instant::now() + Duration::from_secs(30);
        while js.query_account().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the cluster elected no JetStream leader"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        servers
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) the server: alive, but silent.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal}");
    }

    fn spawn(conf: &PathBuf, port: u16, dir: &PathBuf, args: &[String]) -> Child {
        let bin = std::env::var("AEGIS_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        Command::new(&bin)
            .arg("-c")
            .arg(conf)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {bin} (scripts/test sets AEGIS_NATS_SERVER): {e}")
            })
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "nats-server exited ({status}); run it by hand with -c {} to see why",
                    self.conf.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server hard and leaves it down (until [`NatsServer::start_again`]).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a killed server again on the same port and store.
    pub fn start_again(&mut self) {
        self.child = Self::spawn(&self.conf, self.port, &self.dir, &self.args);
        self.wait_ready();
    }

    /// Kills the server hard and starts it again on the same port and store.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.conf, self.port, &self.dir, &self.args);
        self.wait_ready();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A database of our own, dropped at the end.
pub struct TestDb {
    pub name: String,
    admin_url: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let admin_url = std::env::var("AEGIS_TEST_PG_ADMIN_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("aegis_test_{}", Uuid::now_v7().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
            .await
            .expect("Postgres admin connection");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        Self { name, admin_url }
    }

    pub fn url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside any runtime we may use; a small one of its own does the work.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut c) =
                        <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await
                    {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            }
        })
        .join();
    }
}

/// Aegis running in-process on its own NATS and database.
pub struct TestApp {
    pub app: Option<Application>,
    pub base: String,
    pub http: reqwest::Client,
    pub config: Config,
    pub db: TestDb,
    pub nats: NatsServer,
}

pub fn test_config(nats: &NatsServer, db: &TestDb) -> Config {
    Config {
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        metrics_addr: Some("127.0.0.1:0".parse().expect("addr")),
        nats_url: nats.url(),
        database_url: db.url(),
        bootstrap_token: Some(Secret::new(BOOTSTRAP)),
        internal_secret: Some(Secret::new(INTERNAL)),
        master_key: Some(Secret::new("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")),
        // Tests dial loopback only: an organization scan a test did not point at its own
        // stand-in reaches a closed loopback port, never the real hosts.
        github_api_url: "http://127.0.0.1:9".into(),
        gitlab_api_url: "http://127.0.0.1:9".into(),
        ..Config::default()
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Roles::ALL).await
    }

    pub async fn spawn_with(roles: Roles) -> Self {
        Self::spawn_configured(roles, |_| {}).await
    }

    /// Aegis with every role and the test configuration changed by `adjust`.
    pub async fn spawn_with_config(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_configured(Roles::ALL, adjust).await
    }

    /// Aegis with only `roles` and the test configuration changed by `adjust`.
    pub async fn spawn_configured(roles: Roles, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_on(NatsServer::start(), roles, adjust).await
    }

    /// Aegis on a nats-server the test started itself (its own configuration).
    pub async fn spawn_on(
        nats: NatsServer,
        roles: Roles,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        aegis_runtime::telemetry::init(None);
        let db = TestDb::create().await;
        let mut config = test_config(&nats, &db);
        adjust(&mut config);
        let app = Application::build(config.clone(), roles)
            .await
            .expect("Aegis starts");
        let base = app
            .address()
            .map(|a| format!("http://{a}"))
            .unwrap_or_default();
        Self {
            app: Some(app),
            base,
            http: reqwest::Client::new(),
            config,
            db,
            nats,
        }
    }

    /// A second Aegis serving HTTP on the same NATS and database (this one runs the projectors
    /// and reactors), and its base URL.
    pub async fn second_instance(&self) -> (Application, String) {
        let other = Application::build(
            self.config.clone(),
            Roles {
                command_api: true,
                projectors: false,
                reactors: false,
            },
        )
        .await
        .expect("a second instance starts");
        let base = format!("http://{}", other.address().expect("it serves HTTP"));
        (other, base)
    }

    /// The credential-free metrics listener's `/metrics`.
    pub fn scrape_url(&self) -> String {
        let addr = self
            .app
            .as_ref()
            .and_then(|a| a.metrics_address())
            .expect("the metrics listener runs");
        format!("http://{addr}/metrics")
    }

    pub fn state(&self) -> &aegis_command_api::state::AppState {
        &self.app.as_ref().expect("running").state
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Request as the platform admin, acting in `tenant` when given.
    pub fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        tenant: Option<Uuid>,
    ) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .request(method, self.url(path))
            .bearer_auth(BOOTSTRAP);
        if let Some(t) = tenant {
            r = r.header("X-Tenant-ID", t.to_string());
        }
        r
    }

    /// Sends a request as the platform admin acting in `tenant`; the status and the JSON body
    /// (null when there is none).
    pub async fn call(
        &self,
        tenant: Uuid,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.admin(method, path, Some(tenant));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// GETs `path` as the platform admin in `tenant` once the read models reached the log's
    /// current head (read your writes).
    pub async fn caught_up(&self, tenant: Uuid, path: &str) -> (u16, Value) {
        let head = self.head().await;
        let r = self
            .admin(reqwest::Method::GET, path, Some(tenant))
            .header("Aegis-Min-Position", head.to_string())
            .send()
            .await
            .expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Request as an internal service acting in `tenant`.
    pub fn internal(
        &self,
        method: reqwest::Method,
        path: &str,
        tenant: Uuid,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("X-Internal-Secret", INTERNAL)
            .header("X-Tenant-ID", tenant.to_string())
    }

    pub async fn create_tenant(&self, name: &str) -> Uuid {
        let r = self
            .admin(reqwest::Method::POST, "/admin/tenants", None)
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("send");
        assert_eq!(
            r.status(),
            201,
            "create tenant: {}",
            r.text().await.unwrap_or_default()
        );
        let body: Value = r.json().await.expect("json");
        Uuid::parse_str(body["data"]["id"].as_str().expect("id")).expect("uuid")
    }

    /// Opens an incident and returns (id, position, body).
    pub async fn open_incident(&self, tenant: Uuid, body: Value) -> (Uuid, u64, Value) {
        let r = self
            .internal(reqwest::Method::POST, "/incidents", tenant)
            .json(&body)
            .send()
            .await
            .expect("send");
        let status = r.status();
        let position = position(&r);
        let body: Value = r.json().await.expect("json");
        assert!(
            status == 201 || status == 200,
            "open incident: {status} {body}"
        );
        let id = Uuid::parse_str(body["data"]["id"].as_str().expect("id")).expect("uuid");
        (id, position.unwrap_or(0), body)
    }

    /// The Prometheus text of `GET /metrics`, as an internal scraper reads it.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .header("X-Internal-Secret", INTERNAL)
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("text")
    }

    /// Publishes `bytes` on `agg`'s subject with a plain JetStream publish, bypassing every
    /// check of Aegis (a forgery, or damage on the log); answers its position.
    pub async fn forge(&self, agg: &aegis_streams::AggregateRef, bytes: Vec<u8>) -> u64 {
        self.state()
            .executor
            .store()
            .jetstream()
            .publish(agg.subject(), bytes.into())
            .await
            .expect("published")
            .await
            .expect("acknowledged")
            .sequence
    }

    /// The tenant's incidents read model: its row count and a hash of every row, to compare
    /// a live projection with a rebuild.
    pub async fn incidents_digest(&self, tenant: Uuid) -> (i64, String) {
        sqlx::query_as(
            "SELECT count(*), coalesce(md5(string_agg(row_to_json(i)::text, '|' ORDER BY i.id)), '') \
             FROM incidents i WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_one(&self.state().pool)
        .await
        .expect("the incidents digest")
    }

    /// The event log's stream, to ask JetStream about it (its consumers, say).
    pub async fn log_stream(&self) -> async_nats::jetstream::stream::Stream {
        self.state()
            .executor
            .store()
            .jetstream()
            .get_stream(aegis_streams::provision::events_stream_name())
            .await
            .expect("the event log's stream")
    }

    /// The stream head: how many commits the log holds.
    pub async fn head(&self) -> u64 {
        self.state().executor.store().head().await.expect("head")
    }

    pub async fn stop(&mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }

    /// Starts Aegis again, every role, on the same NATS and database (after `stop`: a
    /// restart). It listens on a new port; `url` follows it.
    pub async fn start_again(&mut self) {
        self.stop().await;
        let app = Application::build(self.config.clone(), Roles::ALL)
            .await
            .expect("Aegis starts again");
        self.base = app
            .address()
            .map(|a| format!("http://{a}"))
            .unwrap_or_default();
        self.app = Some(app);
    }
}

pub fn position(r: &reqwest::Response) -> Option<u64> {
    r.headers()
        .get("aegis-position")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

pub fn etag(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A typical incident body.
pub fn incident(title: &str, severity: &str) -> Value {
    json!({ "title": title, "severity": severity, "source": "audit", "description": "chain violation", "agent_id": "agent-7" })
}

/// A user of a tenant with one role, logged in.
pub struct Login {
    pub user: Uuid,
    pub email: String,
    pub token: String,
}

pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    /// Request with a bearer token (JWT or API key), without X-Tenant-ID.
    pub fn bearer(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token)
    }

    /// Creates a user as the platform admin, returns its id.
    pub async fn create_user(&self, tenant: Uuid, email: &str) -> Uuid {
        let r = self
            .admin(reqwest::Method::POST, "/api/v1/users", Some(tenant))
            .json(&json!({ "email": email, "password": PASSWORD, "name": email }))
            .send()
            .await
            .expect("send");
        assert_eq!(
            r.status(),
            201,
            "create user: {}",
            r.text().await.unwrap_or_default()
        );
        let body: Value = r.json().await.expect("json");
        Uuid::parse_str(body["data"]["id"].as_str().expect("id")).expect("uuid")
    }

    pub async fn assign_role(&self, tenant: Uuid, user: Uuid, role: &str) -> Uuid {
        let r = self
            .admin(reqwest::Method::POST, "/api/v1/user-roles", Some(tenant))
            .json(&json!({ "user_id": user, "role_id": role }))
            .send()
            .await
            .expect("send");
        assert_eq!(
            r.status(),
            201,
            "assign role: {}",
            r.text().await.unwrap_or_default()
        );
        let body: Value = r.json().await.expect("json");
        Uuid::parse_str(body["data"]["id"].as_str().expect("id")).expect("uuid")
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("send")
    }

    /// A new user of `tenant` holding `role` (none for `None`), logged in.
    /// Mints an agent (seed 004) with a user's token: its id and its secret.
    pub async fn mint_agent(&self, token: &str, name: &str) -> (String, String) {
        let r = self
            .bearer(reqwest::Method::POST, "/api/v1/agents", token)
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("mint");
        assert_eq!(r.status(), 201);
        let b: Value = r.json().await.expect("json");
        (
            b["data"]["id"].as_str().expect("id").to_string(),
            b["data"]["agent_secret"]
                .as_str()
                .expect("secret")
                .to_string(),
        )
    }

    pub async fn user_with_role(&self, tenant: Uuid, role: Option<&str>) -> Login {
        let email = format!("{}@example.com", Uuid::now_v7().simple());
        let user = self.create_user(tenant, &email).await;
        if let Some(role) = role {
            self.assign_role(tenant, user, role).await;
        }
        let r = self.login(&email, PASSWORD).await;
        assert_eq!(r.status(), 200, "login");
        let body: Value = r.json().await.expect("json");
        Login {
            user,
            email,
            token: body["token"].as_str().expect("token").to_string(),
        }
    }

    /// Creates an API key as `token` and returns (id, key).
    pub async fn api_key(&self, token: &str, scopes: &[&str]) -> (Uuid, String) {
        let r = self
            .bearer(reqwest::Method::POST, "/api-keys", token)
            .json(&json!({ "name": "test key", "scopes": scopes }))
            .send()
            .await
            .expect("send");
        assert_eq!(
            r.status(),
            201,
            "create key: {}",
            r.text().await.unwrap_or_default()
        );
        let body: Value = r.json().await.expect("json");
        (
            Uuid::parse_str(body["data"]["id"].as_str().expect("id")).expect("uuid"),
            body["data"]["key"].as_str().expect("key").to_string(),
        )
    }

    /// Every byte the event log holds, for proving what it does not hold.
    pub async fn log_bytes(&self) -> Vec<u8> {
        use aegis_schemas::Message;
        use futures::StreamExt;
        let store = self.state().executor.store();
        let head = store.head().await.expect("head");
        let mut out = Vec::new();
        if head == 0 {
            return out;
        }
        let mut commits = Box::pin(
            store
                .read_range(vec!["aegis.evt.>".into()], 1, Some(head))
                .await
                .expect("read"),
        );
        while let Some(c) = commits.next().await {
            for env in c.expect("commit").events {
                out.extend(env.encode_to_vec());
            }
        }
        out
    }
}

impl TestApp {
    /// Sets a tenant's plan as the platform admin.
    pub async fn set_plan(&self, tenant: Uuid, plan: Value) -> Value {
        let r = self
            .admin(
                reqwest::Method::PUT,
                &format!("/admin/tenants/{tenant}/plan"),
                None,
            )
            .json(&plan)
            .send()
            .await
            .expect("send");
        assert_eq!(
            r.status(),
            200,
            "set plan: {}",
            r.text().await.unwrap_or_default()
        );
        r.json().await.expect("json")
    }
}

/// Whether `check` turns true within `within` (polled every 20 ms).
pub async fn eventually<F, Fut>(within: std::time::Duration, check: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
