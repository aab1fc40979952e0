//! Seed 003's surface frame: every row of its route table is routed (at both spellings where
//! the document lists a service under `/v1`) and documented; a row whose handler is not built
//! yet answers 501 after authentication, authorization and the tenant's controls, so nothing
//! about the surface waits for its handlers. Answers on this surface carry the document's error
//! body (`crate::error::platform_body`) and a request id.

use crate::auth::platform_routes::{self, PlatformRoute, PLATFORM};
use crate::error::{platform_body, ApiError};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::MethodFilter;
use axum::Router;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};
use utoipa::ToSchema;

/// The most an error body is read to be reshaped; Aegis's own are far smaller.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// The tag OpenAPI gives the rows not built yet (scripts/test leaves them out of the fuzzing:
/// a 501 is their documented answer).
pub const PLANNED_TAG: &str = "planned";

/// Seed 003's error body.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformErrorBody {
    status_code: u16,
    /// The status's name in capitals: `BAD_REQUEST`, `NOT_IMPLEMENTED`.
    error: String,
    message: String,
    /// `code`: the machine code every Aegis error carries; then the error's own fields.
    details: Map<String, Value>,
    request_id: String,
    timestamp: String,
}

/// The refusals every seed 003 operation can answer with, in the document's body.
/// Documentation only.
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub enum PlatformErrors {
    #[response(status = 400, description = "Bad input, or X-Tenant-ID malformed")]
    BadRequest(PlatformErrorBody),
    #[response(status = 401, description = "Missing or invalid credentials")]
    Unauthorized(PlatformErrorBody),
    #[response(
        status = 403,
        description = "Lacks the permission, or the tenant lacks an entitlement"
    )]
    Forbidden(PlatformErrorBody),
    #[response(status = 404, description = "No such secret or version")]
    NotFound(PlatformErrorBody),
    #[response(
        status = 409,
        description = "The state does not allow it, or If-Match is stale"
    )]
    Conflict(PlatformErrorBody),
    #[response(status = 410, description = "Destroyed: the value is gone")]
    Gone(PlatformErrorBody),
    #[response(status = 413, description = "Body over 1 MiB")]
    TooLarge(PlatformErrorBody),
    #[response(status = 415, description = "Not JSON")]
    NotJson(PlatformErrorBody),
    #[response(
        status = 422,
        description = "Invalid values (`details.field` names it)"
    )]
    Invalid(PlatformErrorBody),
    #[response(status = 429, description = "The tenant's rate or quota is used up")]
    Limited(PlatformErrorBody),
}

fn filter(method: &str) -> Option<MethodFilter> {
    MethodFilter::try_from(method.parse::<Method>().ok()?).ok()
}

/// The operation `api` documents for `method` at `path`, if a handler serves it.
fn documented<'a>(
    api: &'a utoipa::openapi::OpenApi,
    method: &str,
    path: &str,
) -> Option<&'a utoipa::openapi::path::Operation> {
    let item = api.paths.paths.get(path)?;
    match method {
        "GET" => item.get.as_ref(),
        "POST" => item.post.as_ref(),
        "PUT" => item.put.as_ref(),
        "PATCH" => item.patch.as_ref(),
        "DELETE" => item.delete.as_ref(),
        _ => None,
    }
}

/// Every seed 003 row `api` (the built handlers' document) does not document yet, at each
/// of its spellings: a built row's handlers register both of theirs.
pub fn router(api: &utoipa::openapi::OpenApi) -> Router<AppState> {
    let mut by_path: BTreeMap<String, axum::routing::MethodRouter<AppState>> = BTreeMap::new();
    for row in PLATFORM {
        let Some(method) = filter(row.route.method) else {
            continue;
        };
        if documented(api, row.route.method, row.route.path).is_some() {
            continue;
        }
        for path in spellings(row) {
            let routed = by_path.remove(&path).unwrap_or_default();
            by_path.insert(path, routed.on(method, not_built));
        }
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, routed)| {
            router.route(&path, routed)
        })
}

fn spellings(row: &PlatformRoute) -> impl Iterator<Item = String> {
    std::iter::once(row.route.path.to_string()).chain(row.alias())
}

/// The answer of a row whose handler is not built yet.
async fn not_built(method: Method, path: MatchedPath) -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
        format!(
            "{method} {} is part of the QNSP surface (seed 003) but is not built yet; it answers 501 until it is",
            path.as_str()
        ),
    )
    .with("route", format!("{method} {}", path.as_str()))
}

/// Reshapes error answers on seed 003's surface into its body, and gives every answer there a
/// request id (the caller's `X-Request-ID`, or a new one).
pub async fn surface(req: Request, next: Next) -> Response {
    if !platform_routes::on_surface(req.uri().path()) {
        return next.run(req).await;
    }
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_string);
    let mut req = req;
    req.extensions_mut()
        .insert(crate::access_log::RequestId(request_id.clone()));
    let response = next.run(req).await;
    let (mut parts, body) = response.into_parts();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        parts.headers.insert("x-request-id", v);
    }
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(parts.status.is_client_error() || parts.status.is_server_error()) || !json {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, ERROR_BODY_LIMIT).await else {
        return Response::from_parts(parts, Body::empty());
    };
    match serde_json::from_slice::<Map<String, Value>>(&bytes) {
        Ok(aegis) if aegis.get("error").is_some_and(Value::is_string) => {
            let reshaped = platform_body(parts.status, aegis, &request_id, chrono::Utc::now());
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(reshaped.to_string()))
        }
        _ => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// Adds every seed 003 row to the API document: its service's tag and `planned`, the
/// document's summary, what it needs, and its answers.
pub fn document(api: &mut utoipa::openapi::OpenApi) {
    let components = api.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        PlatformErrorBody::name().into_owned(),
        <PlatformErrorBody as utoipa::PartialSchema>::schema(),
    );
    for row in PLATFORM {
        let Some(method) = http_method(row.route.method) else {
            continue;
        };
        // A built row is documented by its handler; its other spelling is the same operation.
        if let Some(built) = documented(api, row.route.method, row.route.path).cloned() {
            if let Some(alias) = row.alias() {
                let mut op = built;
                op.operation_id = op.operation_id.map(|id| {
                    format!(
                        "{id}_at_{}",
                        row.alias_base
                            .unwrap_or_default()
                            .replace('/', "_")
                            .trim_matches('_')
                    )
                });
                api.paths.add_path_operation(&alias, vec![method], op);
            }
            continue;
        }
        for path in spellings(row) {
            api.paths
                .add_path_operation(&path, vec![method.clone()], operation(row, &path));
        }
    }
}

fn http_method(method: &str) -> Option<HttpMethod> {
    Some(match method {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => return None,
    })
}

fn operation(row: &PlatformRoute, path: &str) -> utoipa::openapi::path::Operation {
    let controls: Vec<&str> = crate::auth::route::controls::NAMES
        .iter()
        .filter(|(bit, _)| row.route.controlled_by(*bit))
        .map(|(_, name)| *name)
        .collect();
    let mut needs = format!(
        "Not built yet: answers 501 once the caller is authenticated and authorized. Needs `{}`.",
        row.route.permission.as_str()
    );
    if !controls.is_empty() {
        needs.push_str(&format!(" Controls: {}.", controls.join(", ")));
    }
    let addons: Vec<&str> = row.route.addons().map(|a| a.as_str()).collect();
    if !addons.is_empty() {
        needs.push_str(&format!(" Entitlements: {}.", addons.join(", ")));
    }
    if let Some(op) = row.route.meter {
        needs.push_str(&format!(" Billable operation: `{op}`."));
    }
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("PlatformErrorBody")))
                    .build(),
            )
            .build()
    };
    let mut op = OperationBuilder::new()
        .tag(row.service.as_str())
        .tag(PLANNED_TAG)
        .summary(Some(row.summary))
        .description(Some(needs))
        .operation_id(Some(operation_id(row.route.method, path)))
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .parameter(
            ParameterBuilder::new()
                .name("X-Tenant-ID")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some("The tenant to act in (a platform admin's choice)"))
                .schema(Some(String::schema())),
        )
        .response("401", error("Missing or invalid credentials"))
        .response(
            "403",
            error("Lacks the permission, or the tenant lacks an entitlement"),
        )
        .response("429", error("The tenant's rate or quota is used up"))
        .response("501", error("Not built yet"));
    for name in path_parameters(path) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(String::schema())),
        );
    }
    op.build()
}

fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// A stable, unique operation id: `post_kms_v1_byohsm_keys`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for part in path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.extend(
            part.trim_matches(|c| c == '{' || c == '}')
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

use utoipa::PartialSchema as _;
