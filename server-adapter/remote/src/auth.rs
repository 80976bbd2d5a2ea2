//! The handshake. The server speaks first:
//!
//! 1. server → client [`ServerHello`]: magic, protocol version, whether a
//!    secret is required, a fresh 32-byte nonce, its frame limit;
//! 2. client → server [`ClientHello`]: magic, version, and when required
//!    the proof `HMAC-SHA256(secret, "mxstate-serve-v1" || nonce)`;
//! 3. server → client [`Welcome`]: accepted, or refused with the reason
//!    (then the server closes).
//!
//! The secret never crosses the wire, a proof is good for one connection
//! only, and the server compares proofs in constant time.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The first four bytes of both hellos.
pub const MAGIC: [u8; 4] = *b"MXST";
/// The protocol version this build speaks.
pub const VERSION: u16 = 3;
const CONTEXT: &[u8] = b"mxstate-serve-v1";

/// The server's greeting.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerHello {
    pub magic: [u8; 4],
    pub version: u16,
    pub secret_required: bool,
    pub nonce: [u8; 32],
    /// The largest frame the server accepts: clients send no larger ones.
    pub max_frame: u32,
}

/// The client's answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientHello {
    pub magic: [u8; 4],
    pub version: u16,
    pub proof: Option<[u8; 32]>,
}

/// The server's verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Welcome {
    Accepted,
    Refused(String),
}

/// A shared secret (the bytes of a secret file, surrounding whitespace
/// removed).
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A secret from bytes; at least 16 of them.
    pub fn new(bytes: &[u8]) -> Option<Secret> {
        let trimmed = bytes.trim_ascii();
        (trimmed.len() >= 16).then(|| Secret(trimmed.to_vec()))
    }

    fn mac(&self, nonce: &[u8; 32]) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("invariant: HMAC takes keys of any length");
        m.update(CONTEXT);
        m.update(nonce);
        m
    }

    /// The proof for a server's nonce.
    pub fn prove(&self, nonce: &[u8; 32]) -> [u8; 32] {
        self.mac(nonce).finalize().into_bytes().into()
    }

    /// Whether `proof` answers `nonce`, compared in constant time.
    pub fn verify(&self, nonce: &[u8; 32], proof: &[u8; 32]) -> bool {
        self.mac(nonce).verify_slice(proof).is_ok()
    }
}

/// A fresh nonce from the operating system's random source.
pub fn nonce() -> std::io::Result<[u8; 32]> {
    let mut n = [0u8; 32];
    getrandom::getrandom(&mut n).map_err(std::io::Error::other)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_bind_secret_and_nonce() {
        let s = Secret::new(b"0123456789abcdef\n").unwrap();
        let other = Secret::new(b"0123456789abcdeX").unwrap();
        let (n1, n2) = ([1u8; 32], [2u8; 32]);
        let p = s.prove(&n1);
        assert!(s.verify(&n1, &p));
        assert!(!s.verify(&n2, &p), "a proof is good for its nonce only");
        assert!(!other.verify(&n1, &p), "another secret does not verify");
        assert!(Secret::new(b"short").is_none());
    }
}
