//! Integrations (seed 000): webhook fan-out with retries and dead letters, SIEM forwarders
//! with their own checkpoints, and scheduled reports.

pub mod dead_letters;
pub mod fanout;
pub mod metrics;
pub mod nats_auth;
pub mod reports;
pub mod siem;
pub mod webhooks;

use crate::domain::integrations::webhooks::SealedSecrets;
use crate::keys::{KeyError, Sealed};
use crate::state::AppState;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Seals an integration's secrets (as JSON) as `version` of the key-store secret `name`.
pub async fn seal_json<T: Serialize>(
    state: &AppState,
    tenant: Uuid,
    name: &str,
    version: u64,
    value: &T,
) -> Result<SealedSecrets, KeyError> {
    let clear = Zeroizing::new(serde_json::to_vec(value).map_err(|_| KeyError::Tampered)?);
    let sealed = if version == 1 {
        state.keys.seal_first(tenant, name, &clear).await?
    } else {
        state.keys.seal(tenant, name, version, &clear).await?
    };
    Ok(SealedSecrets {
        version,
        nonce: sealed.nonce,
        ciphertext: sealed.ciphertext,
    })
}

/// Opens what [`seal_json`] sealed.
pub async fn open_json<T: DeserializeOwned>(
    state: &AppState,
    tenant: Uuid,
    name: &str,
    sealed: &SealedSecrets,
) -> Result<T, KeyError> {
    let clear = state
        .keys
        .open(
            tenant,
            name,
            sealed.version,
            &Sealed {
                nonce: sealed.nonce.clone(),
                ciphertext: sealed.ciphertext.clone(),
            },
        )
        .await?;
    serde_json::from_slice(&clear).map_err(|_| KeyError::Tampered)
}
