//! What the integration handlers (webhooks, SIEM connections, reports) check a body's fields
//! with, and the secrets a webhook body configures.

use crate::error::ApiError;
use crate::http::extract::max_chars;
use crate::state::AppState;
use aegis_integrations::webhooks::WebhookKind;
use aegis_integrations_services::webhooks::{Secrets, PAGERDUTY_EVENTS_URL};
use aegis_runtime::egress::{self, SystemResolver};

pub(crate) fn name(raw: &str) -> Result<String, ApiError> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "name",
            "name must be 1 to 100 printable characters",
        ));
    }
    Ok(n.to_string())
}

pub(crate) fn token(field: &str, raw: &str, min: usize) -> Result<String, ApiError> {
    let n = raw.chars().count();
    if n < min || n > 256 || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ApiError::validation(
            field,
            format!("{field} must be {min} to 256 characters without spaces"),
        ));
    }
    Ok(raw.to_string())
}

/// The URL's shape and every address it resolves to, now; the host, for display.
pub(crate) async fn checked_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    max_chars("url", Some(url), 2000)?;
    let (host, _) = egress::check_url(&SystemResolver, state.config.egress(), url)
        .await
        .map_err(|e| ApiError::validation("url", e.to_string()))?;
    Ok(host)
}

/// A signing secret for a generic webhook that was given none: 256 random bits.
fn new_signing_secret() -> String {
    format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()))
}

/// The secrets a body configures, checked; the signing secret when this call made it.
pub(crate) fn secrets_of(
    kind: WebhookKind,
    url: Option<&str>,
    routing_key: Option<&str>,
    signing_secret: Option<&str>,
) -> Result<(Secrets, Option<String>), ApiError> {
    let refuse = |field: &str| {
        Err(ApiError::validation(
            field,
            format!("`{field}` does not apply to a {kind} webhook"),
        ))
    };
    let mut generated = None;
    let secrets = match kind {
        WebhookKind::Slack | WebhookKind::Generic => Secrets {
            url: url
                .ok_or_else(|| {
                    ApiError::validation("url", format!("a {kind} webhook needs its url"))
                })?
                .to_string(),
            routing_key: match routing_key {
                Some(_) => return refuse("routing_key"),
                None => None,
            },
            signing_secret: match (kind, signing_secret) {
                (WebhookKind::Slack, Some(_)) => return refuse("signing_secret"),
                (WebhookKind::Slack, None) => None,
                (_, Some(s)) => Some(token("signing_secret", s, 16)?),
                (_, None) => {
                    let s = new_signing_secret();
                    generated = Some(s.clone());
                    Some(s)
                }
            },
        },
        WebhookKind::Pagerduty => Secrets {
            url: url.unwrap_or(PAGERDUTY_EVENTS_URL).to_string(),
            routing_key: Some(token(
                "routing_key",
                routing_key.ok_or_else(|| {
                    ApiError::validation("routing_key", "a pagerduty webhook needs its routing_key")
                })?,
                1,
            )?),
            signing_secret: match signing_secret {
                Some(_) => return refuse("signing_secret"),
                None => None,
            },
        },
    };
    Ok((secrets, generated))
}

pub(crate) fn key_error(e: aegis_runtime::keys::KeyError) -> ApiError {
    ApiError::internal(&e)
}
