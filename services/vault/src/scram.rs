//! SCRAM-SHA-256 verifiers as PostgreSQL stores them (RFC 5802, RFC 7677). A rotated role's
//! password is sent already hashed, as `psql`'s `\password` does, so the clear value never
//! reaches the database server's statement log.

use base64::Engine;
use hmac::{Mac, SimpleHmac};
use sha2::{Digest, Sha256};

const ITERATIONS: u32 = 4096;

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = <SimpleHmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256 with one output block, which is all SCRAM needs.
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &block);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        out.iter_mut().zip(u).for_each(|(o, x)| *o ^= x);
    }
    out
}

fn keys(password: &[u8], salt: &[u8], iterations: u32) -> ([u8; 32], [u8; 32]) {
    let salted = salted_password(password, salt, iterations);
    let stored: [u8; 32] = Sha256::digest(hmac(&salted, b"Client Key")).into();
    (stored, hmac(&salted, b"Server Key"))
}

/// The verifier PostgreSQL keeps in `pg_authid.rolpassword` for `password`.
pub fn verifier(password: &str) -> String {
    let salt: [u8; 16] = rand::random();
    let (stored, server) = keys(password.as_bytes(), &salt, ITERATIONS);
    let b = base64::engine::general_purpose::STANDARD;
    format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        b.encode(salt),
        b.encode(stored),
        b.encode(server)
    )
}

/// Whether `verifier` was made from `password`.
pub fn matches(verifier: &str, password: &str) -> bool {
    let b = base64::engine::general_purpose::STANDARD;
    let parse = || -> Option<bool> {
        let rest = verifier.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys_part) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys_part.split_once(':')?;
        let (s, k) = keys(
            password.as_bytes(),
            &b.decode(salt).ok()?,
            iterations.parse().ok()?,
        );
        Some(b.decode(stored).ok()? == s && b.decode(server).ok()? == k)
    };
    parse().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verifier_matches_its_password_only() {
        let v = verifier("correct horse");
        assert!(v.starts_with("SCRAM-SHA-256$4096:"));
        assert!(matches(&v, "correct horse"));
        assert!(!matches(&v, "correct horsf"));
        assert!(!matches("md5abc", "x"));
    }

    #[test]
    fn pbkdf2_matches_rfc_7914_vector() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, first 32 bytes.
        let out = salted_password(b"passwd", b"salt", 1);
        assert_eq!(
            hex::encode(out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }
}
