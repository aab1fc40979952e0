//! The `aegis` binary, built inside this package so end-to-end tests can run it as a child
//! process (and kill it) via `CARGO_BIN_EXE_aegis-under-test`.

// Linked for its global allocator, the one `aegis` ships with (an unnamed crate is not linked).
use aegis_tests as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    aegis_command_api::cli::main().await
}
