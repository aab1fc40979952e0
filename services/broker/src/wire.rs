//! Agents' wire keys: the X25519 public key an agent registers so that what Aegis hands it
//! (data keys now, values later) travels sealed to it with HPKE (RFC 9180), not only inside
//! TLS. A key is exactly 32 bytes of standard base64, and never one of low order: those make
//! every shared secret the same known value, so nothing sealed to them would be secret.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

/// The one algorithm agents register keys for today.
pub const ALGORITHM: &str = "x25519";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireKeyError {
    #[error("public_key is not valid base64")]
    NotBase64,
    #[error("an x25519 public key is exactly 32 bytes, not {0}")]
    Length(usize),
    #[error("the public key is a low-order point: nothing sealed to it would be secret")]
    LowOrder,
    #[error("public_key_algorithm `{0}` is not supported (only x25519)")]
    Algorithm(String),
}

/// A registered wire key: the key from its base64 form, checked.
pub fn parse(public_key: &str, algorithm: Option<&str>) -> Result<[u8; 32], WireKeyError> {
    if let Some(a) = algorithm.filter(|a| !a.eq_ignore_ascii_case(ALGORITHM)) {
        return Err(WireKeyError::Algorithm(a.to_string()));
    }
    let bytes = STANDARD
        .decode(public_key.trim())
        .map_err(|_| WireKeyError::NotBase64)?;
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| WireKeyError::Length(bytes.len()))?;
    // A clamped scalar is a multiple of the cofactor, so a point of low order (there are a
    // handful, in several encodings) always yields the all-zero secret: one exchange with any
    // fixed scalar tells them all apart, with no list to keep.
    let probe = StaticSecret::from([0x5a; 32]);
    if !probe
        .diffie_hellman(&PublicKey::from(key))
        .was_contributory()
    {
        return Err(WireKeyError::LowOrder);
    }
    Ok(key)
}

/// How a wire key is named in audit records and answers: hex SHA-256 of its bytes.
pub fn fingerprint(key: &[u8; 32]) -> String {
    hex::encode(Sha256::digest(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_32_byte_key_of_full_order_is_taken() {
        let good = PublicKey::from(&StaticSecret::from([7u8; 32]));
        let b64 = STANDARD.encode(good.as_bytes());
        assert_eq!(parse(&b64, None), Ok(*good.as_bytes()));
        assert_eq!(parse(&b64, Some("X25519")), Ok(*good.as_bytes()));
        assert_eq!(
            parse(&b64, Some("rsa-pkcs1")),
            Err(WireKeyError::Algorithm("rsa-pkcs1".into()))
        );
        assert_eq!(parse("not base64!", None), Err(WireKeyError::NotBase64));
        assert_eq!(
            parse(&STANDARD.encode([1u8; 31]), None),
            Err(WireKeyError::Length(31))
        );
        // Zero, one, and a point of order 8.
        let mut order8 = [0u8; 32];
        order8.copy_from_slice(
            &hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
                .expect("hex"),
        );
        let mut one = [0u8; 32];
        one[0] = 1;
        for low in [[0u8; 32], one, order8] {
            assert_eq!(
                parse(&STANDARD.encode(low), None),
                Err(WireKeyError::LowOrder)
            );
        }
    }

    #[test]
    fn a_fingerprint_names_one_key() {
        let a = fingerprint(&[1u8; 32]);
        assert_eq!(a.len(), 64);
        assert_ne!(a, fingerprint(&[2u8; 32]));
    }
}
