/// mimalloc rather than glibc's allocator: under `POST /incidents` glibc's malloc, free and
/// consolidation held about a third of the process's perf samples (`scripts/bench profile`);
/// with mimalloc the spine benchmark's CPU per command fell from 381 to 339–367 µs at
/// `sync_interval: always` and from 351 to 264–301 µs at JetStream's default sync.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    aegis_command_api::cli::main().await
}
