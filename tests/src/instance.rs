//! Aegis as a process of its own (`aegis serve`) on a test's NATS and database: what a
//! deployment runs, for the tests that signal or kill it.

use crate::world::{free_port, BOOTSTRAP};
use crate::TestApp;
use std::time::Duration;

const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

pub struct Instance {
    pub base: String,
    child: tokio::process::Child,
}

impl Instance {
    /// Starts `bin serve` (the test's `CARGO_BIN_EXE_aegis-under-test`) on `world`'s NATS and
    /// database with `env` added, and waits until it answers ready.
    pub async fn start(bin: &str, world: &TestApp, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        // What it says on its way, for the failure message of a start that fails.
        let log_path = std::env::temp_dir().join(format!("aegis-instance-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("a log file");
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("serve")
            .env("NATS_URL", &world.config.nats_url)
            .env("DATABASE_URL", &world.config.database_url)
            .env("AEGIS_HTTP_ADDR", format!("127.0.0.1:{port}"))
            // Each its own: two instances on one machine.
            .env("AEGIS_METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("AEGIS_MASTER_KEY", MASTER_KEY)
            .env("AEGIS_BOOTSTRAP_TOKEN", BOOTSTRAP)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(log.try_clone().expect("the log file"))
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("aegis starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
                if r.status() == 200 {
                    return Self { base, child };
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let said = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: String = said.lines().rev().take(20).collect::<Vec<_>>().join("\n");
        panic!("aegis at {base} did not become ready; it said (last lines first):\n{tail}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `signal` (`TERM`, `KILL`, `STOP`, …) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running");
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} {pid}");
    }

    /// Waits up to `within` for the process to exit.
    pub async fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("aegis exits")
            .expect("exit status")
    }
}
