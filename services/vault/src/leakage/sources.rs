//! Where a scan's bytes come from: git repositories (cloned whole, every blob of every
//! commit read, so a secret deleted by a later commit still counts) and pages fetched over
//! HTTP. Both go through the egress guard: the host is resolved and checked once, and git is
//! told to dial exactly those addresses (`http.curloptResolve`), follow no redirect, speak
//! only http(s), and read no configuration or credential helper of this machine's.

use aegis_runtime::egress::{self, EgressError, SystemResolver};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// How long one target may take to fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(120);
/// Blobs larger than this are skipped (counted in `skipped`): build outputs and media, not
/// configuration.
pub const MAX_BLOB_BYTES: u64 = 8 << 20;
/// The most bytes of one page.
pub const MAX_PAGE_BYTES: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Egress(#[from] EgressError),
    #[error("cannot clone: {0}")]
    Clone(String),
    #[error("cannot read the repository: {0}")]
    Read(String),
    /// Larger than the scan's limit (in MiB), on disk while cloning or in blobs read: it fails
    /// the scan rather than being reported clean.
    #[error("the repository is larger than {0} MiB")]
    TooLarge(u64),
    #[error("fetching took longer than {}s", FETCH_TIMEOUT.as_secs())]
    Timeout,
    #[error("the page answered {0}")]
    Status(u16),
    #[error("the page is larger than {} MiB", MAX_PAGE_BYTES >> 20)]
    PageTooLarge,
    #[error("cannot fetch the page: {0}")]
    Fetch(String),
}

/// One blob and where it was seen.
pub struct Blob<'a> {
    /// A path the blob has in some commit, or its object id when no tree names it.
    pub path: &'a str,
    pub bytes: &'a [u8],
}

/// What reading a repository came to.
#[derive(Debug, Default, Clone, Copy)]
pub struct Read {
    pub blobs: u64,
    pub bytes: u64,
    pub skipped: u64,
}

fn git(dir: &std::path::Path) -> Command {
    let mut c = Command::new("git");
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", "http:https")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c
}

fn resolve_option(host: &str, port: u16, addrs: &[SocketAddr]) -> String {
    let list: Vec<String> = addrs
        .iter()
        .map(|a| match a {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        })
        .collect();
    format!("http.curloptResolve={host}:{port}:{}", list.join(","))
}

/// Clones `url` into `dir` (bare, every ref), dialling only what the egress guard allowed.
async fn clone(
    allow: Option<&[String]>,
    url: &str,
    dir: &std::path::Path,
    max_bytes: u64,
) -> Result<(), SourceError> {
    let (host, addrs) = egress::check_url(&SystemResolver, allow, url).await?;
    let port = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.port_or_known_default())
        .unwrap_or(443);
    let target = dir.join("repo.git");
    let mut cmd = git(dir);
    cmd.arg("-c")
        .arg(resolve_option(
            host.trim_start_matches('[').trim_end_matches(']'),
            port,
            &addrs,
        ))
        .args([
            "-c",
            "http.followRedirects=false",
            "-c",
            "http.proxy=",
            "-c",
            "credential.helper=",
            "-c",
            "protocol.allow=never",
            "-c",
            "protocol.http.allow=always",
            "-c",
            "protocol.https.allow=always",
            "clone",
            "--mirror",
            "--quiet",
            "--",
        ])
        .arg(url)
        .arg(&target)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| SourceError::Clone(e.to_string()))?;
    let stderr = child.stderr.take();
    let said = tokio::spawn(async move {
        let mut out = Vec::new();
        if let Some(e) = stderr {
            let _ = e.take(64 << 10).read_to_end(&mut out).await;
        }
        out
    });
    // The transfer is watched as it lands: a repository (or a server that never stops
    // sending) past the limit is cut off there, not once the disk is full.
    let watched = async {
        let mut every = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                status = child.wait() => {
                    let status = status.map_err(|e| SourceError::Clone(e.to_string()))?;
                    // What landed between the last look and the end counts too.
                    return within(&target, max_bytes).await.map(|()| status);
                }
                _ = every.tick() => within(&target, max_bytes).await?,
            }
        }
    };
    let status = match tokio::time::timeout(FETCH_TIMEOUT, watched).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            let _ = child.kill().await;
            return Err(e);
        }
        Err(_) => {
            let _ = child.kill().await;
            return Err(SourceError::Timeout);
        }
    };
    if !status.success() {
        // git's own words, without the URL (it may carry a token in its query).
        let out = said.await.unwrap_or_default();
        let said = String::from_utf8_lossy(&out).replace(url, "<repository>");
        return Err(SourceError::Clone(said.trim().chars().take(300).collect()));
    }
    Ok(())
}

/// Whether what `dir` holds on disk is within `max_bytes`.
async fn within(dir: &std::path::Path, max_bytes: u64) -> Result<(), SourceError> {
    let at = dir.to_path_buf();
    let used = tokio::task::spawn_blocking(move || disk_usage(&at))
        .await
        .unwrap_or(0);
    if used > max_bytes {
        return Err(SourceError::TooLarge(max_bytes >> 20));
    }
    Ok(())
}

/// Bytes of the files under `dir` (0 before it exists).
fn disk_usage(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_usage(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Maps every blob id to a path it has in some commit.
async fn paths(
    repo: &std::path::Path,
) -> Result<std::collections::HashMap<String, String>, SourceError> {
    let out = git(repo)
        .arg("-C")
        .arg(repo)
        .args(["rev-list", "--all", "--objects"])
        .stderr(Stdio::null())
        .output()
        .await
        .map_err(|e| SourceError::Read(e.to_string()))?;
    if !out.status.success() {
        return Err(SourceError::Read("rev-list failed".into()));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (id, path) = l.split_once(' ')?;
            Some((id.to_string(), path.to_string()))
        })
        .collect())
}

/// Clones `url` and hands every blob to `each`; more than `max_bytes` on disk or in blobs
/// is [`SourceError::TooLarge`].
pub async fn repository(
    allow: Option<&[String]>,
    url: &str,
    max_bytes: u64,
    mut each: impl FnMut(Blob<'_>),
) -> Result<Read, SourceError> {
    let dir = tempfile::tempdir().map_err(|e| SourceError::Clone(e.to_string()))?;
    clone(allow, url, dir.path(), max_bytes).await?;
    let repo = dir.path().join("repo.git");
    let names = paths(&repo).await?;
    let mut child = git(&repo)
        .arg("-C")
        .arg(&repo)
        .args([
            "cat-file",
            "--batch-all-objects",
            "--unordered",
            "--batch=%(objectname) %(objecttype) %(objectsize)",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| SourceError::Read(e.to_string()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| SourceError::Read("no output".into()))?;
    let mut reader = BufReader::with_capacity(1 << 16, stdout);
    let mut read = Read::default();
    let mut header = String::new();
    let mut body = Vec::new();
    let walk = async {
        loop {
            header.clear();
            if reader
                .read_line(&mut header)
                .await
                .map_err(|e| SourceError::Read(e.to_string()))?
                == 0
            {
                return Ok::<_, SourceError>(());
            }
            let mut parts = header.split_whitespace();
            let (Some(id), Some(kind), Some(size)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(SourceError::Read(format!(
                    "unexpected line `{}`",
                    header.trim()
                )));
            };
            let size: u64 = size
                .parse()
                .map_err(|_| SourceError::Read("bad object size".into()))?;
            let id = id.to_string();
            let keep = kind == "blob" && size <= MAX_BLOB_BYTES;
            if kind == "blob" && !keep {
                read.skipped += 1;
            }
            body.clear();
            // The object and its trailing newline.
            let mut limited = (&mut reader).take(size + 1);
            if keep {
                limited
                    .read_to_end(&mut body)
                    .await
                    .map_err(|e| SourceError::Read(e.to_string()))?;
                body.truncate(size as usize);
            } else {
                tokio::io::copy(&mut limited, &mut tokio::io::sink())
                    .await
                    .map_err(|e| SourceError::Read(e.to_string()))?;
            }
            if !keep {
                continue;
            }
            read.blobs += 1;
            read.bytes += size;
            if read.bytes > max_bytes {
                return Err(SourceError::TooLarge(max_bytes >> 20));
            }
            let path = names.get(&id).map(String::as_str).unwrap_or(id.as_str());
            each(Blob { path, bytes: &body });
        }
    };
    let walked = tokio::time::timeout(FETCH_TIMEOUT, walk)
        .await
        .map_err(|_| SourceError::Timeout)?;
    let _ = child.kill().await;
    walked?;
    Ok(read)
}

/// Fetches one page (no redirect followed) and hands its body to `each`.
pub async fn page(
    allow: Option<&[String]>,
    url: &str,
    each: impl FnOnce(Blob<'_>),
) -> Result<Read, SourceError> {
    let client = egress::http_client(&SystemResolver, allow, url, FETCH_TIMEOUT).await?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| SourceError::Fetch(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(SourceError::Status(response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| SourceError::Fetch(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > MAX_PAGE_BYTES {
            return Err(SourceError::PageTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    each(Blob {
        path: "",
        bytes: &body,
    });
    Ok(Read {
        blobs: 1,
        bytes: body.len() as u64,
        skipped: 0,
    })
}
