//! Listing an organization's repositories through its host's REST API, as each documents
//! it: GitHub's `GET /orgs/{org}/repos` (JSON media type, pinned API version, a User-Agent,
//! which GitHub requires) and GitLab's `GET /groups/{path}/projects` with subgroups. Pages of
//! 100 are read by number until one comes back short; the API's own base is the only host
//! dialled here (each clone URL it answers passes the egress guard again when cloned).
//! Anonymous: an organization's public repositories.

use super::sources::{SourceError, FETCH_TIMEOUT};
use aegis_runtime::egress::{self, SystemResolver};
use aegis_vault::leakage::organization::{Host, Organization};
use serde::Deserialize;

/// The most repositories one organization may list; a larger one fails its target rather
/// than being reported clean after a part of it.
pub const MAX_REPOSITORIES: usize = 200;
const PER_PAGE: usize = 100;
/// The most bytes of one page of the listing.
const MAX_LISTING_BYTES: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("the organization was not found")]
    NotFound,
    #[error("the host answered {0}")]
    Status(u16),
    #[error("the host's answer is not a repository list: {0}")]
    Shape(String),
    #[error("it has more than {MAX_REPOSITORIES} repositories")]
    TooMany,
}

#[derive(Deserialize)]
struct GithubRepository {
    clone_url: String,
}

#[derive(Deserialize)]
struct GitlabProject {
    http_url_to_repo: String,
}

/// The clone URLs of every repository of `org`, read from the API at `api` (the host's base,
/// `https://api.github.com` or `https://gitlab.com/api/v4`).
pub async fn repositories(
    allow: Option<&[String]>,
    api: &str,
    org: &Organization,
) -> Result<Vec<String>, ListError> {
    let mut all = Vec::new();
    for page in 1.. {
        let url = page_url(api, org, page);
        let body = fetch(allow, org.host, &url).await?;
        let urls: Vec<String> = match org.host {
            Host::Github => serde_json::from_slice::<Vec<GithubRepository>>(&body)
                .map_err(|e| ListError::Shape(e.to_string()))?
                .into_iter()
                .map(|r| r.clone_url)
                .collect(),
            Host::Gitlab => serde_json::from_slice::<Vec<GitlabProject>>(&body)
                .map_err(|e| ListError::Shape(e.to_string()))?
                .into_iter()
                .map(|p| p.http_url_to_repo)
                .collect(),
        };
        let short = urls.len() < PER_PAGE;
        all.extend(urls);
        if all.len() > MAX_REPOSITORIES {
            return Err(ListError::TooMany);
        }
        if short {
            break;
        }
    }
    Ok(all)
}

/// One page of the listing. A GitLab group's full path is one path segment, `/` encoded.
fn page_url(api: &str, org: &Organization, page: usize) -> String {
    let api = api.trim_end_matches('/');
    match org.host {
        Host::Github => format!(
            "{api}/orgs/{}/repos?type=public&per_page={PER_PAGE}&page={page}",
            org.name
        ),
        Host::Gitlab => format!(
            "{api}/groups/{}/projects?include_subgroups=true&visibility=public&per_page={PER_PAGE}&page={page}",
            org.name.replace('/', "%2F")
        ),
    }
}

async fn fetch(allow: Option<&[String]>, host: Host, url: &str) -> Result<Vec<u8>, ListError> {
    let client = egress::http_client(&SystemResolver, allow, url, FETCH_TIMEOUT)
        .await
        .map_err(SourceError::from)?;
    let mut request = client.get(url).header("User-Agent", "aegis-leak-scan");
    if host == Host::Github {
        request = request
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
    }
    let fetch_error = |e: reqwest::Error| SourceError::Fetch(e.without_url().to_string());
    let mut response = request.send().await.map_err(fetch_error)?;
    match response.status().as_u16() {
        200 => {}
        404 => return Err(ListError::NotFound),
        s => return Err(ListError::Status(s)),
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
        if body.len() + chunk.len() > MAX_LISTING_BYTES {
            return Err(ListError::Shape("the listing is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_host_is_asked_in_its_own_words() {
        let gh = Organization {
            host: Host::Github,
            name: "acme".into(),
        };
        assert_eq!(
            page_url("https://api.github.com/", &gh, 2),
            "https://api.github.com/orgs/acme/repos?type=public&per_page=100&page=2"
        );
        let gl = Organization {
            host: Host::Gitlab,
            name: "platform/infra".into(),
        };
        assert_eq!(
            page_url("https://gitlab.com/api/v4", &gl, 1),
            "https://gitlab.com/api/v4/groups/platform%2Finfra/projects?include_subgroups=true&visibility=public&per_page=100&page=1"
        );
    }
}
