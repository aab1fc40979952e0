//! The secret broker's application services (seed 004): agents' wire keys (`wire`), the
//! data keys they encrypt with (`deks`), the jobs they claim (`jobs`), the values they hand
//! over once (`wraps`), what they discover (`discovery`), and the access requests people make
//! and approve (`requests`) under the tenant's workflows and policies (`rules`), about its
//! projects and environments (`tenancy`), and its GitOps integrations (`gitops`); the HTTP
//! adapter and the reactors call these.

pub mod deks;
pub mod discovery;
pub mod error;
pub mod gitops;
pub mod jobs;
pub mod requests;
pub mod rules;
pub mod tenancy;
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

/// `ctx` with an access request's id as its correlation id: every record of a request, its
/// job's and its wraps' is one trail (`GET /api/v1/audit-events?correlation_id=<id>`).
pub fn correlated(
    ctx: &aegis_runtime::command::CommandContext,
    request_id: &str,
) -> aegis_runtime::command::CommandContext {
    let mut ctx = ctx.clone();
    if uuid::Uuid::parse_str(request_id).is_ok() {
        ctx.meta.correlation_id = request_id.to_string();
    }
    ctx
}
