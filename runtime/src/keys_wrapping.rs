//! Sealing with a 256-bit key (XChaCha20-Poly1305, the context bound as associated data), and
//! how a wrapped key is stored: which key wrapped it, and the AEAD output.

use super::{Key, KeyError, Sealed};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use zeroize::Zeroizing;

/// A key as stored: which key wrapped it, and the AEAD output.
#[derive(Serialize, Deserialize)]
struct Wrapped {
    /// The wrapping master key's id, or `tenant` for a secret's key.
    kid: String,
    nonce: String,
    key: String,
}

pub(super) fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

pub(super) fn seal_with(key: &[u8; 32], aad: &[u8], msg: &[u8]) -> Sealed {
    let nonce: [u8; 24] = rand::random();
    let ciphertext = XChaCha20Poly1305::new(key.into())
        .encrypt(XNonce::from_slice(&nonce), Payload { msg, aad })
        .unwrap_or_else(|_| unreachable!("XChaCha20-Poly1305 encrypts any length we hand it"));
    Sealed {
        nonce: nonce.to_vec(),
        ciphertext,
    }
}

pub(super) fn open_with(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if sealed.nonce.len() != 24 {
        return Err(KeyError::Tampered);
    }
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(&sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| KeyError::Tampered)
}

pub(super) fn to_key(bytes: &[u8]) -> Result<Key, KeyError> {
    <[u8; 32]>::try_from(bytes)
        .map(Zeroizing::new)
        .map_err(|_| KeyError::Tampered)
}

/// The configured master keys: the current one wraps, every one unwraps.
pub struct MasterKeys {
    current: (String, Key),
    previous: Vec<(String, Key)>,
}

impl MasterKeys {
    pub fn new(current: &[u8], previous: &[Vec<u8>]) -> Result<Self, KeyError> {
        let entry =
            |k: &[u8]| -> Result<(String, Key), KeyError> { Ok((Self::kid(k), to_key(k)?)) };
        Ok(Self {
            current: entry(current)?,
            previous: previous
                .iter()
                .map(|k| entry(k))
                .collect::<Result<_, _>>()?,
        })
    }

    /// A master key's public id: recorded beside what it wraps, so a rewrap knows what to move.
    fn kid(key: &[u8]) -> String {
        let digest = sha2::Sha256::new_with_prefix(b"aegis/master-kid/v1")
            .chain_update(key)
            .finalize();
        hex::encode(&digest[..8])
    }

    pub fn current_kid(&self) -> &str {
        &self.current.0
    }

    pub(super) fn wrap(&self, entry: &str, key: &[u8; 32]) -> Vec<u8> {
        let (kid, master) = &self.current;
        let sealed = seal_with(master, entry.as_bytes(), key);
        encode_wrapped(kid, &sealed)
    }

    pub(super) fn unwrap(&self, entry: &str, stored: &[u8]) -> Result<(Key, bool), KeyError> {
        let (kid, sealed) = decode_wrapped(stored)?;
        let master = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|(k, _)| *k == kid)
            .ok_or_else(|| KeyError::UnknownMaster {
                entry: entry.to_string(),
                kid: kid.clone(),
            })?;
        let key = to_key(&open_with(&master.1, entry.as_bytes(), &sealed)?)?;
        Ok((key, kid == self.current.0))
    }
}

pub(super) fn encode_wrapped(kid: &str, sealed: &Sealed) -> Vec<u8> {
    serde_json::to_vec(&Wrapped {
        kid: kid.to_string(),
        nonce: b64().encode(&sealed.nonce),
        key: b64().encode(&sealed.ciphertext),
    })
    .unwrap_or_else(|_| unreachable!("a struct of strings serialises"))
}

pub(super) fn decode_wrapped(stored: &[u8]) -> Result<(String, Sealed), KeyError> {
    let w: Wrapped = serde_json::from_slice(stored).map_err(|_| KeyError::Tampered)?;
    let nonce = b64().decode(w.nonce).map_err(|_| KeyError::Tampered)?;
    let ciphertext = b64().decode(w.key).map_err(|_| KeyError::Tampered)?;
    Ok((w.kid, Sealed { nonce, ciphertext }))
}
