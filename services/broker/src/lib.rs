//! The secret broker's application services (seed 004): agents' wire keys (`wire`), the
//! data keys they encrypt with (`deks`), the jobs they claim (`jobs`), the values they hand
//! over once (`wraps`) and what they discover (`discovery`), over the runtime;
//! the HTTP adapter and, later, the reactors call these.

pub mod deks;
pub mod discovery;
pub mod error;
pub mod jobs;
pub mod wire;
pub mod wraps;

pub use error::BrokerError;

/// HMAC-SHA256 of `value` under a tenant key (`KeyStore::mac_key`), hex: tells values apart
/// (a discovered secret's checksum, a wrap's content) and reveals nothing without the key.
pub(crate) fn keyed_digest(key: &aegis_runtime::keys::Key, value: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.as_ref())
        .expect("HMAC takes keys of any length");
    mac.update(value);
    hex::encode(mac.finalize().into_bytes())
}
