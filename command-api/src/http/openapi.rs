//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations as
//! the router is built (utoipa-axum), so a route cannot exist without its spec. Served at
//! `/openapi.json`, rendered at `/docs` by a self-contained page (no CDN).

use crate::state::AppState;
use axum::response::Html;
use axum::Json;
use serde::Serialize;
use std::sync::Arc;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;
use utoipa::{Modify, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// DESIGN.md's error body. Some errors add fields (`field`, `allowed`, `required_permission`,
/// `retry_after_ms`, `current_version`, ...), so other properties are allowed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// snake_case code, e.g. `validation_failed`.
    pub error: String,
    pub message: String,
}

/// The refusals every authenticated operation can answer with. Documentation only.
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub enum AuthErrors {
    #[response(
        status = 400,
        description = "Bad input, or X-Tenant-ID missing or malformed"
    )]
    BadRequest(ErrorBody),
    #[response(
        status = 401,
        description = "No credentials, or a credential that is not valid"
    )]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "The principal lacks the permission (`required_permission`)"
    )]
    Forbidden(ErrorBody),
}

/// The refusals of every operation that takes a JSON body. Documentation only.
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub enum BodyErrors {
    #[response(status = 413, description = "Body over 1 MiB")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "Not JSON")]
    NotJson(ErrorBody),
    #[response(
        status = 422,
        description = "Invalid values or unknown fields (`field` names the culprit)"
    )]
    Invalid(ErrorBody),
}

pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let header = |name: &str, what: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, what)))
        };
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A JWT, an `acp_` API key, or the bootstrap token (platform admin)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "internal_secret",
            header("X-Internal-Secret", "Internal-only routes (seed 000)"),
        );
        components.add_security_scheme(
            "secbeat_api_key",
            header("X-SecBeat-API-Key", "Edge manager (seed 002)"),
        );
        components.add_security_scheme(
            "agent_secret",
            header("X-Agent-Secret", "Agents (seed 004)"),
        );
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Aegis", description = "Security control plane: every change an immutable event."),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody)),
    tags(
        (name = "admin", description = "Platform administration (seed 000)"),
        (name = "incidents", description = "SOC incidents (seed 000)"),
        (name = "auth", description = "Login (seed 004)"),
        (name = "users", description = "Users of a tenant"),
        (name = "roles", description = "Roles, role assignments and the permission catalog (seed 004)"),
        (name = "api-keys", description = "API keys (seed 000)"),
        (name = "agents", description = "Agents (seed 004)"),
        (name = "audit", description = "The audit log (seeds 001, 004)"),
        (name = "vault", description = "The credential vault (seed 001)"),
        (name = "auto-response", description = "Auto-response rules (seed 000)"),
        (name = "integrations", description = "Webhooks and their dead letters, SIEM connections, scheduled reports (seed 000)"),
        (name = "internal", description = "Routes for internal services only (`X-Internal-Secret`)"),
        (name = "probes", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// The finished document, published once the router has been assembled.
static SPEC: OnceLock<Arc<OpenApi>> = OnceLock::new();

pub fn publish(api: OpenApi) {
    let _ = SPEC.set(Arc::new(api));
}

/// Serves the document and the reference page.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(docs))
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json", tag = "probes", responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi_json() -> Json<serde_json::Value> {
    Json(
        SPEC.get()
            .and_then(|s| serde_json::to_value(s.as_ref()).ok())
            .unwrap_or_default(),
    )
}

/// The rendered reference, self-contained (works offline).
#[utoipa::path(get, path = "/docs", tag = "probes", responses((status = 200, description = "HTML reference page", content_type = "text/html")))]
async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

/// Header parameters shared by many operations. Documentation only: the extractors in
/// `extract` read these headers.
pub mod params {
    #![allow(dead_code)]
    use utoipa::IntoParams;

    /// The tenant the request acts in.
    #[derive(IntoParams)]
    #[into_params(names("X-Tenant-ID"), parameter_in = Header)]
    pub struct Tenant(pub uuid::Uuid);

    /// Read your own writes: wait (bounded) until the read model reached this log position.
    #[derive(IntoParams)]
    #[into_params(names("Aegis-Min-Position"), parameter_in = Header)]
    pub struct MinPosition(pub Option<u64>);

    /// `Idempotency-Key`: a retry returns the first answer and appends nothing.
    #[derive(IntoParams)]
    #[into_params(names("Idempotency-Key"), parameter_in = Header)]
    pub struct Idempotency(pub Option<String>);

    /// `If-Match`: the ETag (version) the client read; a stale one gets 409.
    #[derive(IntoParams)]
    #[into_params(names("If-Match"), parameter_in = Header)]
    pub struct IfMatch(pub Option<String>);
}

#[cfg(test)]
mod tests {
    /// utoipa keys component schemas by type name and lets a later one replace an earlier one
    /// silently, so two answer types of one name would document one route with the other's
    /// shape. Every type that derives `ToSchema` (directly or through `word_enum!`) must
    /// have a name of its own.
    #[test]
    fn schema_names_are_unique_across_the_crate() {
        let mut seen: std::collections::HashMap<String, String> = Default::default();
        for (path, text) in crate::source_files() {
            let mut derives = false;
            for line in text.lines().map(str::trim) {
                if line.starts_with("#[derive(") && line.contains("ToSchema") {
                    derives = true;
                    continue;
                }
                let name = line
                    .strip_prefix("word_enum!(")
                    .map(|rest| rest.split([' ', '{']).next().unwrap_or_default())
                    .or_else(|| {
                        derives
                            .then(|| {
                                line.strip_prefix("pub struct ")
                                    .or_else(|| line.strip_prefix("pub enum "))
                            })
                            .flatten()
                            .map(|rest| {
                                rest.split([' ', '{', '(', '<', ';'])
                                    .next()
                                    .unwrap_or_default()
                            })
                    });
                if let Some(name) = name.filter(|n| !n.is_empty()) {
                    let here = path.display().to_string();
                    if let Some(first) = seen.insert(name.to_string(), here.clone()) {
                        panic!("two schemas named `{name}`: {first} and {here}");
                    }
                    derives = false;
                } else if !line.starts_with("#[") && !line.starts_with("///") {
                    derives = false;
                }
            }
        }
        assert!(seen.len() > 50, "found only {} schema types", seen.len());
    }
}
