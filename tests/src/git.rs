//! Git repositories for leak scans: made with the machine's git (no user configuration read),
//! published bare as any static web server can serve them (git's dumb HTTP protocol), and
//! served on loopback.

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use std::path::{Path, PathBuf};

/// Runs `git args` in `dir` as a neutral committer.
pub fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.test")
        .env("GIT_COMMITTER_NAME", "dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.test")
        .status()?;
    anyhow::ensure!(status.success(), "git {args:?} failed");
    Ok(())
}

/// A fresh work tree at `root/work` on branch `main`.
pub fn init(root: &Path) -> anyhow::Result<PathBuf> {
    let work = root.join("work");
    std::fs::create_dir_all(&work)?;
    git(&work, &["init", "-q", "-b", "main"])?;
    Ok(work)
}

/// Publishes `root/work` as the bare repository `root/repo.git`, packed as a hosting service
/// serves it, with the files dumb HTTP needs.
pub fn publish(root: &Path) -> anyhow::Result<()> {
    git(root, &["clone", "-q", "--bare", "work", "repo.git"])?;
    git(&root.join("repo.git"), &["repack", "-adq"])?;
    git(&root.join("repo.git"), &["update-server-info"])
}

async fn file(
    State(root): State<PathBuf>,
    UrlPath(path): UrlPath<String>,
) -> Result<Vec<u8>, StatusCode> {
    if path.split('/').any(|p| p == ".." || p.is_empty()) {
        return Err(StatusCode::BAD_REQUEST);
    }
    std::fs::read(root.join(path)).map_err(|_| StatusCode::NOT_FOUND)
}

/// Serves `root`'s files on loopback; the URL of `root/repo.git`.
pub async fn serve(root: &Path) -> String {
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::get(file))
        .with_state(root.to_path_buf());
    format!("{}/repo.git", crate::world::serve(app).await)
}
