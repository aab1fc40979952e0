//! n8n's public REST API (v1), as much as the vault needs: create a credential, read and
//! update a workflow, list workflows. Authenticated with `X-N8N-API-KEY`; every call goes
//! through the egress guard. The tenant's connection is itself a vault credential (its value
//! the API key, its `base_url` metadata the instance), so no n8n secret lives in configuration.

use aegis_runtime::egress::{self, EgressError, SystemResolver};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(15);
/// n8n pages workflow listings; a tenant with more than this many pages is cut off (and the
/// sync says how many it saw).
const MAX_PAGES: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum N8nError {
    #[error(transparent)]
    Egress(#[from] EgressError),
    #[error("n8n: {0}")]
    Call(String),
    #[error("n8n answered {status} to {what}")]
    Status { status: u16, what: String },
    #[error("workflow `{workflow}` has no node named `{node}`")]
    NoSuchNode { workflow: String, node: String },
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

/// A credential a workflow node uses, as n8n names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCredential {
    pub id: String,
    pub name: String,
    pub credential_type: String,
}

impl Client {
    pub async fn connect(
        allow: Option<&[String]>,
        base_url: &str,
        api_key: &str,
    ) -> Result<Self, N8nError> {
        let base = base_url.trim_end_matches('/').to_string();
        let http = egress::http_client(&SystemResolver, allow, &base, TIMEOUT).await?;
        Ok(Self {
            http,
            base,
            key: api_key.to_string(),
        })
    }

    async fn send(&self, what: &str, request: reqwest::RequestBuilder) -> Result<Value, N8nError> {
        let response = request
            .header("X-N8N-API-KEY", &self.key)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| N8nError::Call(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(N8nError::Status {
                status: status.as_u16(),
                what: what.to_string(),
            });
        }
        aegis_runtime::egress::read_json(response)
            .await
            .map_err(|e| N8nError::Call(format!("{what}: {e}")))
    }

    /// `POST /api/v1/credentials`: returns the new credential's id.
    pub async fn create_credential(
        &self,
        name: &str,
        credential_type: &str,
        data: Value,
    ) -> Result<String, N8nError> {
        let created = self
            .send(
                "POST /api/v1/credentials",
                self.http
                    .post(format!("{}/api/v1/credentials", self.base))
                    .json(&json!({ "name": name, "type": credential_type, "data": data })),
            )
            .await?;
        created["id"]
            .as_str()
            .map(str::to_string)
            .or_else(|| created["id"].as_u64().map(|n| n.to_string()))
            .ok_or_else(|| N8nError::Call("the created credential has no id".into()))
    }

    /// Points `node` of `workflow` at the credential: `GET` then `PUT /api/v1/workflows/{id}`
    /// with the fields n8n accepts back (name, nodes, connections, settings).
    pub async fn attach(
        &self,
        workflow: &str,
        node: &str,
        credential: &NodeCredential,
    ) -> Result<(), N8nError> {
        let url = format!("{}/api/v1/workflows/{}", self.base, urlencode(workflow));
        let mut wf = self
            .send("GET /api/v1/workflows/{id}", self.http.get(&url))
            .await?;
        let target = wf["nodes"]
            .as_array_mut()
            .and_then(|nodes| nodes.iter_mut().find(|n| n["name"] == node))
            .ok_or_else(|| N8nError::NoSuchNode {
                workflow: workflow.into(),
                node: node.into(),
            })?;
        if !target["credentials"].is_object() {
            target["credentials"] = json!({});
        }
        target["credentials"][&credential.credential_type] =
            json!({ "id": credential.id, "name": credential.name });
        let body = json!({
            "name": wf["name"],
            "nodes": wf["nodes"],
            "connections": wf["connections"],
            "settings": if wf["settings"].is_object() { wf["settings"].clone() } else { json!({}) },
        });
        self.send(
            "PUT /api/v1/workflows/{id}",
            self.http.put(&url).json(&body),
        )
        .await?;
        Ok(())
    }

    /// Every credential the workflows' nodes reference (n8n lists no credentials itself, and
    /// never returns their data). Returns them and whether the listing was cut off.
    pub async fn referenced_credentials(&self) -> Result<(Vec<NodeCredential>, bool), N8nError> {
        #[derive(Deserialize)]
        struct Page {
            data: Vec<Value>,
            #[serde(rename = "nextCursor")]
            next_cursor: Option<String>,
        }
        let mut found: Vec<NodeCredential> = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut request = self
                .http
                .get(format!("{}/api/v1/workflows", self.base))
                .query(&[("limit", "100")]);
            if let Some(c) = &cursor {
                request = request.query(&[("cursor", c.as_str())]);
            }
            let page: Page =
                serde_json::from_value(self.send("GET /api/v1/workflows", request).await?)
                    .map_err(|e| N8nError::Call(format!("workflow listing: {e}")))?;
            for wf in &page.data {
                for node in wf["nodes"].as_array().into_iter().flatten() {
                    let Some(creds) = node["credentials"].as_object() else {
                        continue;
                    };
                    for (credential_type, c) in creds {
                        let id = c["id"]
                            .as_str()
                            .map(str::to_string)
                            .or_else(|| c["id"].as_u64().map(|n| n.to_string()));
                        if let Some(id) = id {
                            if !found.iter().any(|f| f.id == id) {
                                found.push(NodeCredential {
                                    id,
                                    name: c["name"].as_str().unwrap_or_default().to_string(),
                                    credential_type: credential_type.clone(),
                                });
                            }
                        }
                    }
                }
            }
            match page.next_cursor {
                Some(c) if !c.is_empty() => cursor = Some(c),
                _ => return Ok((found, false)),
            }
        }
        Ok((found, true))
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A vault name for an n8n credential: `n8n-` and its name, lower-cased and path-safe.
pub fn vault_name(n8n_name: &str, id: &str) -> String {
    let mut slug: String = n8n_name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    slug = slug.trim_matches('-').to_string();
    if slug.is_empty() {
        slug = id.to_lowercase();
    }
    let mut name = format!("n8n-{slug}");
    name.truncate(128);
    name
}

/// The data an n8n credential of `credential_type` takes for a single secret value:
/// `httpHeaderAuth` gets a header, anything else the field `field` (default `apiKey`).
pub fn credential_data(credential_type: &str, field: Option<&str>, value: &str) -> Value {
    if credential_type == "httpHeaderAuth" {
        json!({ "name": field.unwrap_or("Authorization"), "value": value })
    } else {
        json!({ field.unwrap_or("apiKey"): value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n8n_names_become_path_safe_vault_names() {
        assert_eq!(vault_name("OpenAI account", "7"), "n8n-openai-account");
        assert_eq!(vault_name("***", "AbC"), "n8n-abc");
        assert!(vault_name(&"x".repeat(300), "1").len() <= 128);
    }

    #[test]
    fn single_values_fit_the_n8n_credential_shape() {
        assert_eq!(
            credential_data("httpHeaderAuth", None, "v"),
            json!({ "name": "Authorization", "value": "v" })
        );
        assert_eq!(
            credential_data("openAiApi", None, "v"),
            json!({ "apiKey": "v" })
        );
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }
}
