//! Which key seals a credential's version. Every version written now is sealed under a key of
//! its own (`<credential id>.v<version>`), so destroying that key destroys that version alone
//! (seed 003's `destroyed` state). Versions written before share the credential's key
//! (`<credential id>`), and go only with the whole credential.

use aegis_runtime::keys::{KeyError, Sealed};
use aegis_runtime::Runtime;
use aegis_vault::versions::Version;
use aegis_vault::Credential;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The key-store secret of a version with a key of its own.
pub fn version_secret(credential_id: &str, version: u64) -> String {
    format!("{credential_id}.v{version}")
}

/// Seals `clear` as `version` of the credential `credential_id`, under a new key of its own,
/// and keeps its leak fingerprint (see `crate::fingerprints`).
pub async fn seal_version(
    rt: &Runtime,
    tenant: Uuid,
    credential_id: &str,
    version: u64,
    clear: &[u8],
) -> Result<Sealed, KeyError> {
    let sealed = rt
        .keys
        .seal_new(
            tenant,
            &version_secret(credential_id, version),
            version,
            clear,
        )
        .await?;
    crate::fingerprints::remember(rt, tenant, credential_id, version, clear).await;
    Ok(sealed)
}

/// Opens one version of `c` with the key that sealed it.
pub async fn open_version(
    rt: &Runtime,
    tenant: Uuid,
    c: &Credential,
    v: &Version,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let secret = secret_of(c, v);
    rt.keys.open(tenant, &secret, v.version, &v.sealed).await
}

fn secret_of(c: &Credential, v: &Version) -> String {
    if v.own_key {
        version_secret(&c.id, v.version)
    } else {
        c.id.clone()
    }
}

/// Destroys the key of one version that has its own.
pub async fn destroy_version(
    rt: &Runtime,
    tenant: Uuid,
    c: &Credential,
    version: u64,
) -> Result<(), KeyError> {
    rt.keys
        .destroy_secret(tenant, &version_secret(&c.id, version))
        .await
}

/// Destroys every key that sealed a version of `c`: nothing of it opens again.
pub async fn destroy_all(rt: &Runtime, tenant: Uuid, c: &Credential) -> Result<(), KeyError> {
    rt.keys.destroy_secret(tenant, &c.id).await?;
    for v in c.versions.iter().filter(|v| v.own_key) {
        destroy_version(rt, tenant, c, v.version).await?;
    }
    Ok(())
}
