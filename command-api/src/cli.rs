//! The `aegis` command line.

use crate::app::{connect_db, connect_store, Application, Roles};
use aegis_projectors::rebuild::rebuild_named;
use aegis_runtime::config::Config;
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "aegis", version, about = "Aegis security control plane")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every role in one process (the default).
    Serve,
    /// Only the HTTP and NATS command/query API.
    CommandApi,
    /// Only the projectors.
    Projectors,
    /// Only the reactors.
    Reactors,
    /// Apply database migrations and provision streams, then exit.
    Migrate,
    /// Rebuild a read model from position 0 into fresh tables and swap it in.
    Rebuild {
        /// tenants | identity | incidents | audit | vault
        projection: String,
    },
    /// Rewrap every key the master key wraps under AEGIS_MASTER_KEY, opening them with it or
    /// AEGIS_MASTER_KEY_PREVIOUS; servers keep running throughout.
    Rewrap,
    /// Print a fresh auth-callout issuer key and the nats.conf block that gives each tenant's
    /// NATS subscribers that tenant's subjects only (README, "NATS credentials per tenant").
    NatsCallout,
    /// Verify an audit export bundle offline: no server, no database.
    VerifyAudit {
        /// The JSON from `GET /audit/export`.
        bundle: std::path::PathBuf,
        /// Base64 Ed25519 public key (`GET /audit/public-key`), obtained independently.
        #[arg(long)]
        public_key: String,
    },
}

pub async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::VerifyAudit { bundle, public_key }) = &cli.command {
        let text = std::fs::read_to_string(bundle)
            .with_context(|| format!("reading {}", bundle.display()))?;
        let parsed: crate::audit_bundle::Bundle =
            serde_json::from_str(&text).context("the bundle is not an audit export")?;
        match crate::audit_bundle::verify(&parsed, public_key) {
            Ok(report) => {
                println!(
                    "intact: {} events of tenant {} proven in {} signed checkpoints ({} later events not yet checkpointed)",
                    report.events, parsed.tenant_id, report.checkpoints, parsed.unsealed
                );
                if report.withheld > 0 {
                    println!(
                        "{} of them carry credential material: their payload was withheld, their hash is proven, their content is not",
                        report.withheld
                    );
                }
                if let Some(next) = parsed.next_from {
                    println!("this is one page: the next starts at ?from={next}");
                }
                return Ok(());
            }
            Err(e) => anyhow::bail!("verification failed: {e}"),
        }
    }
    if let Some(Cmd::NatsCallout) = &cli.command {
        let issuer = nkeys::KeyPair::new_account();
        let password = hex::encode(rand::random::<[u8; 24]>());
        println!("# Aegis's environment:");
        println!(
            "AEGIS_NATS_AUTH_SEED={}",
            issuer.seed().map_err(|e| anyhow::anyhow!("{e}"))?
        );
        println!("NATS_URL=nats://aegis:{password}@127.0.0.1:4322");
        println!("\n# Add to nats.conf:");
        print!(
            "{}",
            crate::nats_auth::conf_block(&issuer.public_key(), &password)
        );
        return Ok(());
    }
    let config = Config::load()?;
    aegis_runtime::telemetry::init(config.otlp_endpoint.as_deref());
    let roles = match cli.command.unwrap_or(Cmd::Serve) {
        Cmd::Serve => Roles::ALL,
        Cmd::CommandApi => Roles {
            command_api: true,
            projectors: false,
            reactors: false,
        },
        Cmd::Projectors => Roles {
            command_api: false,
            projectors: true,
            reactors: false,
        },
        Cmd::Reactors => Roles {
            command_api: false,
            projectors: false,
            reactors: true,
        },
        Cmd::Migrate => {
            connect_store(&config).await?;
            connect_db(&config).await?;
            println!("migrated and provisioned");
            return Ok(());
        }
        Cmd::Rewrap => {
            if config.master_key.is_none() {
                anyhow::bail!("AEGIS_MASTER_KEY must name the new master key");
            }
            let (_, store) = connect_store(&config).await?;
            let keys = crate::app::open_keys(&config, &store).await?;
            let done = keys.rewrap().await?;
            println!(
                "rewrapped {} keys under master key {}; {} were already under it",
                done.moved,
                keys.current_kid(),
                done.current
            );
            return Ok(());
        }
        Cmd::VerifyAudit { .. } | Cmd::NatsCallout => {
            unreachable!("handled before configuration is loaded")
        }
        Cmd::Rebuild { projection } => {
            let (_, store) = connect_store(&config).await?;
            let pool = connect_db(&config).await?;
            let key = aegis_runtime::leases::rebuild_key(&projection);
            let Some(_lease) = aegis_runtime::leases::try_take(&config.database_url, key).await?
            else {
                anyhow::bail!(
                    "a rebuild of `{projection}` is running elsewhere; try again when it ends"
                );
            };
            let started = std::time::Instant::now();
            let Some(report) = rebuild_named(&pool, &store, &projection).await else {
                anyhow::bail!(
                    "unknown projection `{projection}`; known: {}",
                    aegis_projectors::PROJECTIONS.join(", ")
                );
            };
            let report = report?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "rebuilt {projection}: {} commits, {} events up to position {} in {secs:.2}s ({:.0} events/s)",
                report.commits,
                report.events,
                report.position,
                report.events as f64 / secs.max(1e-9)
            );
            return Ok(());
        }
    };
    let app = Application::build(config, roles).await?;
    if let Some(addr) = app.address() {
        tracing::info!(%addr, "aegis listening");
        println!("aegis listening on http://{addr}");
    }
    let result = app.run_until_stopped().await;
    aegis_runtime::telemetry::flush();
    result
}
