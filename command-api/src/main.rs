#[tokio::main]
async fn main() -> anyhow::Result<()> {
    aegis_command_api::cli::main().await
}
