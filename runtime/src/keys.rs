//! Envelope encryption. The master key (configuration) wraps a root secret and one data key
//! per tenant; a tenant's key wraps one key per secret; a secret's key seals its values.
//! Wrapped keys live in the `AEGIS_KEYS` bucket, never in the log, so destroying one
//! crypto-shreds every ciphertext it sealed while the log itself stays immutable.
//!
//! Every seal binds its context as associated data (tenant, secret, version), so a ciphertext
//! copied to another secret, tenant or version fails to open rather than decrypting wrongly.

use async_nats::jetstream::kv;
use futures::TryStreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;
use zeroize::Zeroizing;

pub type Key = Zeroizing<[u8; 32]>;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key that sealed this value was destroyed: the value is gone for good.
    #[error("the key that sealed this value was destroyed")]
    Shredded,
    /// Wrong key, wrong context or altered bytes: the AEAD refused it.
    #[error("the sealed value does not open in this context")]
    Tampered,
    /// The tenant's data key was destroyed: nothing of the tenant's opens, and nothing new
    /// is sealed for it.
    #[error("the tenant's data key was destroyed")]
    TenantErased,
    #[error("no configured master key opens `{entry}` (wrapped under master key {kid}); set AEGIS_MASTER_KEY or AEGIS_MASTER_KEY_PREVIOUS")]
    UnknownMaster { entry: String, kid: String },
    #[error("key store: {0}")]
    Store(String),
}

fn store_err(e: impl std::fmt::Display) -> KeyError {
    KeyError::Store(e.to_string())
}

pub use aegis_kernel::Sealed;

#[path = "keys_wrapping.rs"]
mod wrapping;
pub use wrapping::MasterKeys;
use wrapping::{decode_wrapped, encode_wrapped, open_with, seal_with, to_key};

const ROOT: &str = "root";

/// What a key lookup may do when the key is not in the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Only an existing key: a missing one was destroyed.
    Existing,
    /// Read it, or create it when missing.
    OrCreate,
    /// Create it without reading first (its id was just minted); read it if it exists.
    New,
}

fn tenant_entry(tenant: Uuid) -> String {
    format!("tenant.{tenant}")
}

/// Left where a destroyed tenant key was, so no new key is made in its place.
fn erased_entry(tenant: Uuid) -> String {
    format!("erased.{tenant}")
}

fn secret_entry(tenant: Uuid, secret: &str) -> String {
    format!("secret.{tenant}.{secret}")
}

/// What a value's seal binds: the tenant, the secret and the version.
pub fn value_aad(tenant: Uuid, secret: &str, version: u64) -> Vec<u8> {
    format!("aegis/vault/v1\0{tenant}\0{secret}\0{version}").into_bytes()
}

/// What `aegis rewrap` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rewrapped {
    pub moved: usize,
    pub current: usize,
}

/// The key hierarchy over the `AEGIS_KEYS` bucket, with unwrapped keys cached in memory.
#[derive(Clone)]
pub struct KeyStore {
    kv: kv::Store,
    master: Arc<MasterKeys>,
    cache: Arc<Mutex<Cache>>,
}

/// Unwrapped keys, and how many destructions this instance has carried out: a key read from
/// the bucket is cached only if no destruction happened while it was read, since the read may
/// have raced the purge, and a key cached after its destruction would keep opening what it
/// sealed here.
#[derive(Default)]
struct Cache {
    keys: HashMap<String, Key>,
    destructions: u64,
}

impl Cache {
    /// Caches a key read from the bucket, unless a destruction happened since the read began
    /// (when `destructions` was counted).
    fn remember_read(&mut self, entry: &str, key: &Key, destructions: u64) {
        if self.destructions == destructions {
            self.keys.insert(entry.to_string(), key.clone());
        }
    }

    /// Forgets after a destruction, and makes reads that began before it uncacheable.
    fn destroyed(&mut self, prefixes: &[&str]) {
        self.destructions += 1;
        self.keys
            .retain(|k, _| !prefixes.iter().any(|p| k.starts_with(p)));
    }
}

impl KeyStore {
    pub fn new(kv: kv::Store, master: MasterKeys) -> Self {
        Self {
            kv,
            master: Arc::new(master),
            cache: Arc::default(),
        }
    }

    /// The id of the master key new wraps use.
    pub fn current_kid(&self) -> &str {
        self.master.current_kid()
    }

    fn cached(&self, entry: &str) -> Option<Key> {
        self.cache.lock().ok()?.keys.get(entry).cloned()
    }

    fn remember(&self, entry: &str, key: &Key) {
        if let Ok(mut c) = self.cache.lock() {
            c.keys.insert(entry.to_string(), key.clone());
        }
    }

    /// How many destructions this instance has carried out so far.
    fn destructions(&self) -> Option<u64> {
        self.cache.lock().ok().map(|c| c.destructions)
    }

    fn remember_read(&self, entry: &str, key: &Key, destructions: Option<u64>) {
        if let (Ok(mut c), Some(d)) = (self.cache.lock(), destructions) {
            c.remember_read(entry, key, d);
        }
    }

    fn forget(&self, prefix: &str) {
        if let Ok(mut c) = self.cache.lock() {
            c.keys.retain(|k, _| !k.starts_with(prefix));
        }
    }

    fn destroyed(&self, prefixes: &[&str]) {
        if let Ok(mut c) = self.cache.lock() {
            c.destroyed(prefixes);
        }
    }

    /// Reads `entry`, or creates it with a fresh key as `want` says. Two instances creating at
    /// once both end up with the one the bucket accepted first.
    async fn entry(
        &self,
        entry: &str,
        want: Want,
        unwrap: impl Fn(&[u8]) -> Result<Key, KeyError>,
        wrap: impl Fn(&[u8; 32]) -> Result<Vec<u8>, KeyError>,
    ) -> Result<Key, KeyError> {
        if let Some(k) = self.cached(entry) {
            return Ok(k);
        }
        for attempt in 0..3 {
            // A key just minted an id for cannot exist yet: try creating it first.
            let look = !(want == Want::New && attempt == 0);
            if look {
                let destructions = self.destructions();
                if let Some(stored) = self.kv.get(entry).await.map_err(store_err)? {
                    let key = unwrap(&stored)?;
                    self.remember_read(entry, &key, destructions);
                    return Ok(key);
                }
                if want == Want::Existing {
                    return Err(KeyError::Shredded);
                }
            }
            let fresh: Key = Zeroizing::new(rand::random());
            match self.kv.create(entry, wrap(&fresh)?.into()).await {
                Ok(_) => {
                    self.remember(entry, &fresh);
                    return Ok(fresh);
                }
                // Someone else created it first: read theirs.
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(KeyError::Store(format!("`{entry}` keeps changing")))
    }

    /// The root secret every derived credential key (JWT signing, API key pepper, audit
    /// signing) comes from. Created on first start; survives master key rotation.
    pub async fn root(&self) -> Result<Key, KeyError> {
        let m = self.master.clone();
        let w = self.master.clone();
        self.entry(
            ROOT,
            Want::OrCreate,
            move |s| m.unwrap(ROOT, s).map(|(k, _)| k),
            move |k| Ok(w.wrap(ROOT, k)),
        )
        .await
    }

    async fn tenant_key(&self, tenant: Uuid, want: Want) -> Result<Key, KeyError> {
        let entry = tenant_entry(tenant);
        if self.cached(&entry).is_none()
            && self
                .kv
                .get(erased_entry(tenant))
                .await
                .map_err(store_err)?
                .is_some()
        {
            return Err(KeyError::TenantErased);
        }
        let (m, w) = (self.master.clone(), self.master.clone());
        let (e1, e2) = (entry.clone(), entry.clone());
        // A new secret's tenant usually has its key already.
        let want = if want == Want::New {
            Want::OrCreate
        } else {
            want
        };
        self.entry(
            &entry,
            want,
            move |s| m.unwrap(&e1, s).map(|(k, _)| k),
            move |k| Ok(w.wrap(&e2, k)),
        )
        .await
    }

    async fn secret_key(&self, tenant: Uuid, secret: &str, want: Want) -> Result<Key, KeyError> {
        let tenant_key = self.tenant_key(tenant, want).await?;
        let entry = secret_entry(tenant, secret);
        let (t1, t2) = (tenant_key.clone(), tenant_key);
        let (e1, e2) = (entry.clone(), entry.clone());
        self.entry(
            &entry,
            want,
            move |s| {
                let (_, sealed) = decode_wrapped(s)?;
                to_key(&open_with(&t1, e1.as_bytes(), &sealed)?)
            },
            move |k| Ok(encode_wrapped("tenant", &seal_with(&t2, e2.as_bytes(), k))),
        )
        .await
    }

    /// Seals `value` as `version` of `secret`, creating the secret's key on first use.
    pub async fn seal(
        &self,
        tenant: Uuid,
        secret: &str,
        version: u64,
        value: &[u8],
    ) -> Result<Sealed, KeyError> {
        let key = self.secret_key(tenant, secret, Want::OrCreate).await?;
        Ok(seal_with(&key, &value_aad(tenant, secret, version), value))
    }

    /// Seals the first value of a secret whose key cannot exist yet (its id was just minted):
    /// the key is created without looking first, one round trip instead of two.
    pub async fn seal_first(
        &self,
        tenant: Uuid,
        secret: &str,
        value: &[u8],
    ) -> Result<Sealed, KeyError> {
        self.seal_new(tenant, secret, 1, value).await
    }

    /// Seals `value` as `version` of a secret whose key is new (a key per version): created
    /// without looking first, and read instead if a retry finds it made.
    pub async fn seal_new(
        &self,
        tenant: Uuid,
        secret: &str,
        version: u64,
        value: &[u8],
    ) -> Result<Sealed, KeyError> {
        let key = self.secret_key(tenant, secret, Want::New).await?;
        Ok(seal_with(&key, &value_aad(tenant, secret, version), value))
    }

    /// A tenant's key for keyed digests of `purpose` (leak fingerprints): wrapped under the
    /// tenant's key like any secret's, so it goes when the tenant's key goes, and never
    /// leaves this process.
    pub async fn mac_key(&self, tenant: Uuid, purpose: &str) -> Result<Key, KeyError> {
        self.secret_key(tenant, &format!("mac.{purpose}"), Want::OrCreate)
            .await
    }

    /// Opens what [`KeyStore::seal`] sealed; `Shredded` once the key is destroyed.
    pub async fn open(
        &self,
        tenant: Uuid,
        secret: &str,
        version: u64,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let key = self.secret_key(tenant, secret, Want::Existing).await?;
        open_with(&key, &value_aad(tenant, secret, version), sealed)
    }

    /// Whether the secret's key still exists (false once destroyed).
    pub async fn holds(&self, tenant: Uuid, secret: &str) -> Result<bool, KeyError> {
        match self.secret_key(tenant, secret, Want::Existing).await {
            Ok(_) => Ok(true),
            Err(KeyError::Shredded | KeyError::TenantErased) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Drops every cached key of a tenant (another instance destroyed its key).
    pub fn forget_tenant(&self, tenant: Uuid) {
        self.forget(&tenant_entry(tenant));
        self.forget(&format!("secret.{tenant}."));
    }

    /// Destroys a secret's key: every version it sealed becomes unreadable, everywhere.
    pub async fn destroy_secret(&self, tenant: Uuid, secret: &str) -> Result<(), KeyError> {
        let entry = secret_entry(tenant, secret);
        self.forget(&entry);
        self.kv.purge(&entry).await.map_err(store_err)?;
        // A read of this instance may have fetched the key between the two.
        self.destroyed(&[&entry]);
        Ok(())
    }

    /// Destroys a tenant's key, and with it every secret key it wrapped; a marker keeps a new
    /// key from being made in its place. Other instances' caches are bounded by their
    /// credentials' state: a value is opened only after its credential is loaded from the log.
    pub async fn destroy_tenant(&self, tenant: Uuid) -> Result<(), KeyError> {
        let entry = tenant_entry(tenant);
        self.kv
            .put(erased_entry(tenant), b"destroyed".to_vec().into())
            .await
            .map_err(store_err)?;
        self.forget(&entry);
        self.forget(&format!("secret.{tenant}."));
        self.kv.purge(&entry).await.map_err(store_err)?;
        let secrets: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(store_err)?
            .try_collect()
            .await
            .map_err(store_err)?;
        let prefix = format!("secret.{tenant}.");
        for key in secrets.into_iter().filter(|k| k.starts_with(&prefix)) {
            self.kv.purge(&key).await.map_err(store_err)?;
        }
        self.destroyed(&[&entry, &prefix]);
        Ok(())
    }

    /// Rewraps every key the master wraps under the current master key. Safe to run while
    /// servers run: each entry moves by compare-and-set, and both keys open it meanwhile.
    pub async fn rewrap(&self) -> Result<Rewrapped, KeyError> {
        let mut keys: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(store_err)?
            .try_collect()
            .await
            .map_err(store_err)?;
        keys.retain(|k| k == ROOT || k.starts_with("tenant."));
        let mut done = Rewrapped::default();
        for entry in keys {
            let Some(found) = self.kv.entry(&entry).await.map_err(store_err)? else {
                continue;
            };
            if found.operation != kv::Operation::Put {
                continue;
            }
            let (key, current) = self.master.unwrap(&entry, &found.value)?;
            if current {
                done.current += 1;
                continue;
            }
            self.kv
                .update(
                    &entry,
                    self.master.wrap(&entry, &key).into(),
                    found.revision,
                )
                .await
                .map_err(store_err)?;
            done.moved += 1;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_opens_only_in_its_own_context() {
        let key = [7u8; 32];
        let t = Uuid::now_v7();
        let sealed = seal_with(&key, &value_aad(t, "cred_a", 1), b"hunter2");
        assert_eq!(
            open_with(&key, &value_aad(t, "cred_a", 1), &sealed)
                .expect("opens")
                .as_slice(),
            b"hunter2"
        );
        for aad in [
            value_aad(t, "cred_b", 1),
            value_aad(t, "cred_a", 2),
            value_aad(Uuid::now_v7(), "cred_a", 1),
        ] {
            assert!(matches!(
                open_with(&key, &aad, &sealed),
                Err(KeyError::Tampered)
            ));
        }
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert!(open_with(&key, &value_aad(t, "cred_a", 1), &altered).is_err());
        assert!(open_with(&[8u8; 32], &value_aad(t, "cred_a", 1), &sealed).is_err());
    }

    #[test]
    fn a_key_read_while_it_was_destroyed_is_not_cached() {
        let mut cache = Cache::default();
        let key: Key = Zeroizing::new([5u8; 32]);
        // A read begins, the key is destroyed (purged, forgotten), the read lands after.
        let began = cache.destructions;
        cache.destroyed(&["secret.t.wrap"]);
        cache.remember_read("secret.t.wrap", &key, began);
        assert!(!cache.keys.contains_key("secret.t.wrap"));
        // A read that lands before the destruction is forgotten by it.
        let began = cache.destructions;
        cache.remember_read("secret.t.other", &key, began);
        cache.destroyed(&["secret.t.other"]);
        assert!(!cache.keys.contains_key("secret.t.other"));
        // With no destruction in between, a read is cached.
        let began = cache.destructions;
        cache.remember_read("secret.t.kept", &key, began);
        assert!(cache.keys.contains_key("secret.t.kept"));
    }

    #[test]
    fn a_previous_master_key_still_unwraps_and_is_reported_as_old() {
        let old = MasterKeys::new(&[1u8; 32], &[]).expect("keys");
        let wrapped = old.wrap("tenant.x", &[9u8; 32]);
        let rotated = MasterKeys::new(&[2u8; 32], &[vec![1u8; 32]]).expect("keys");
        let (key, current) = rotated.unwrap("tenant.x", &wrapped).expect("unwraps");
        assert_eq!(*key, [9u8; 32]);
        assert!(!current);
        // Wrapped for one entry, it does not unwrap as another.
        assert!(rotated.unwrap("tenant.y", &wrapped).is_err());
        let fresh = MasterKeys::new(&[3u8; 32], &[]).expect("keys");
        assert!(matches!(
            fresh.unwrap("tenant.x", &wrapped),
            Err(KeyError::UnknownMaster { .. })
        ));
    }
}
