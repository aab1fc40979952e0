//! Seed 001's answers for what the vault's services refuse: one mapping, used by every vault
//! handler.

use crate::error::{ApiError, IntoApi};
use aegis_runtime::keys::KeyError;
use aegis_vault::CredentialError;
use aegis_vault_services::VaultError;
use axum::http::StatusCode;

/// Seed 001's 404 for a credential the tenant does not have.
pub fn missing(name: &str) -> ApiError {
    ApiError::not_found(format!("Credential not found: {name}"))
}

/// Maps the credential decider's refusals to seed 001's error bodies.
pub fn credential_error(name: &str) -> impl FnOnce(CredentialError) -> ApiError + '_ {
    move |e| match e {
        CredentialError::NotFound => missing(name),
        CredentialError::NameTaken => {
            ApiError::bad_request("Credential name already exists").with("credential", name)
        }
        CredentialError::NotActive(l) => {
            ApiError::conflict(format!("the credential is {l}")).with("credential", name)
        }
        CredentialError::Rotating { retry_after_ms } => {
            ApiError::conflict("Credential is currently being rotated")
                .with("retry_after_ms", retry_after_ms)
                .with("credential", name)
        }
        e @ CredentialError::VersionRaced { .. } => ApiError::conflict(e.to_string())
            .with("retry_after_ms", 100)
            .with("credential", name),
        e @ CredentialError::NoSuchRotation(_) => ApiError::conflict(e.to_string()),
        e @ (CredentialError::NoSuchVersion(_) | CredentialError::NoValue) => {
            ApiError::validation("version", e.to_string())
        }
        e @ (CredentialError::VersionDestroyed(_) | CredentialError::Version(_)) => {
            ApiError::conflict(e.to_string()).with("credential", name)
        }
    }
}

pub fn key_error(name: &str, e: KeyError) -> ApiError {
    match e {
        KeyError::Shredded => ApiError::new(
            StatusCode::GONE,
            "gone",
            format!("the values of `{name}` were destroyed (crypto-shredded) and cannot be read"),
        ),
        KeyError::TenantErased => ApiError::new(
            StatusCode::GONE,
            "gone",
            "this tenant's data key was destroyed: no value can be read or sealed for it",
        ),
        other => ApiError::internal(&other),
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Missing(name) => missing(&name),
            VaultError::Credential { name, error } => error.into_api(credential_error(&name)),
            VaultError::Key { name, error } => key_error(&name, error),
            e @ (VaultError::NoSuchVersion(_) | VaultError::AlreadyCurrent(_)) => {
                ApiError::validation("version", e.to_string())
            }
            VaultError::NoValue(name) => {
                ApiError::conflict("the credential has no value yet").with("credential", name)
            }
            VaultError::RefusedRead { refusal, position } => {
                ApiError::from(*refusal).recorded_at(Some(position))
            }
            VaultError::Recording(error) => error.into_api(|e| ApiError::internal(&e)),
            VaultError::RotationFailed {
                name,
                previous,
                error,
                incident,
                position,
            } => {
                let mut err = ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "rotation_failed",
                    format!(
                        "rotation of `{name}` failed; version {previous} stays active: {error}"
                    ),
                )
                .with("credential", name)
                .with("active_version", previous);
                if let Some(id) = incident {
                    err = err.with("incident_id", id.to_string());
                }
                err.recorded_at(position)
            }
        }
    }
}
