//! The integrations context's application services (seed 000): what a webhook, a SIEM and a
//! report recipient receive, in each one's documented wire format, and one delivery of it
//! with retries; dead letters; integration secrets sealed under the tenant's keys. The
//! fan-out, SIEM forwarders and report scheduler that call these run in `aegis-reactors`;
//! the HTTP adapter calls them for tests, replays and manual runs.

pub mod cloud_event;
pub mod dead_letters;
pub mod notify;
pub mod reports;
pub mod siem;
pub mod webhooks;

pub use cloud_event::cloud_event;

use aegis_integrations::webhooks::SealedSecrets;
use aegis_runtime::keys::{KeyError, Sealed};
use aegis_runtime::Runtime;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Seals an integration's secrets (as JSON) as `version` of the key-store secret `name`.
pub async fn seal_json<T: Serialize>(
    rt: &Runtime,
    tenant: Uuid,
    name: &str,
    version: u64,
    value: &T,
) -> Result<SealedSecrets, KeyError> {
    let clear = Zeroizing::new(serde_json::to_vec(value).map_err(|_| KeyError::Tampered)?);
    let sealed = if version == 1 {
        rt.keys.seal_first(tenant, name, &clear).await?
    } else {
        rt.keys.seal(tenant, name, version, &clear).await?
    };
    Ok(SealedSecrets {
        version,
        nonce: sealed.nonce,
        ciphertext: sealed.ciphertext,
    })
}

/// Opens what [`seal_json`] sealed.
pub async fn open_json<T: DeserializeOwned>(
    rt: &Runtime,
    tenant: Uuid,
    name: &str,
    sealed: &SealedSecrets,
) -> Result<T, KeyError> {
    let clear = rt
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
