//! The vault context's application services: reading credentials and their values (every
//! value read recorded first), rotating them, and what reaches outside Aegis: rotators (a
//! value generated, or asked of an HTTP endpoint, or set on a PostgreSQL role), the SCRAM
//! verifier PostgreSQL keeps, and the n8n client, which dial only through the runtime's SSRF
//! guard. The context's deciders stay pure in `contexts/vault`; HTTP, NATS requests, the
//! auto-response actions and the rotation reactor all call these.

pub mod access;
pub mod dynamic;
pub mod error;
pub mod fingerprints;
pub mod keys;
pub mod leakage;
pub mod n8n;
pub mod rotation;
pub mod rotators;
pub mod scram;
pub mod versioned;

pub use access::{current, for_value_read, load, open, record_read};
pub use error::VaultError;
pub use rotation::{rotate, Rotated};

use uuid::Uuid;

/// Follows tenant key destructions until `stop`: another instance's erasure drops this
/// instance's cached keys of that tenant, so nothing it sealed opens here either.
pub async fn follow_tenant_keys(
    keys: aegis_runtime::keys::KeyStore,
    client: async_nats::Client,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), async_nats::SubscribeError> {
    use futures::StreamExt;
    let mut events = client.subscribe("aegis.evt.*.vault.tenant_key.>").await?;
    loop {
        tokio::select! {
            msg = events.next() => match msg {
                Some(msg) => {
                    let tenant = msg.subject.as_str().split('.').nth(2).and_then(|t| Uuid::parse_str(t).ok());
                    if let Some(t) = tenant {
                        keys.forget_tenant(t);
                    }
                }
                None => return Ok(()),
            },
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
    }
}
