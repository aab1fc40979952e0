//! The `aegis` binary, built inside this package so end-to-end tests can run it as a child
//! process (and kill it) via `CARGO_BIN_EXE_aegis-under-test`.
/// The allocator `aegis` ships with (see command-api/src/main.rs), so tests and benchmarks run
/// what operators run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    aegis_command_api::cli::main().await
}
