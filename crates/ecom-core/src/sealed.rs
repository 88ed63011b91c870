//! Secrets kept in the database, sealed: AES-256-GCM under a key derived from the
//! platform secret (`ECOM_SECRET_KEY`) and a purpose label, so a copy of the database
//! alone (a backup, a replica, a dump shared for debugging) does not give them away.
//! Every node derives the same key, as it does for cookies.
//!
//! The sealed form is text: hex of a random 96-bit nonce, then the ciphertext with its
//! 16-byte tag. Webhook signing secrets (`"ecom webhook secrets"`) and the generated
//! Web Push key (`"ecom vapid key"`) use it.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Seals and opens one purpose's secrets.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

/// A sealed value would not open: another `ECOM_SECRET_KEY`, or a damaged value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sealed secret cannot be opened (was ECOM_SECRET_KEY changed?)")]
pub struct CannotOpen;

const NONCE: usize = 12;

impl Sealer {
    /// The key is `HMAC-SHA256(secret_key, purpose)`.
    pub fn new(secret_key: &[u8], purpose: &str) -> Self {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret_key) else {
            unreachable!("HMAC accepts keys of any length")
        };
        mac.update(purpose.as_bytes());
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        Self { cipher: Aes256Gcm::new(&key.into()) }
    }

    pub fn seal(&self, secret: &str) -> String {
        let nonce: [u8; NONCE] = rand::random();
        let Ok(sealed) = self.cipher.encrypt(Nonce::from_slice(&nonce), secret.as_bytes()) else {
            unreachable!("AES-GCM seals any message shorter than 64 GiB")
        };
        format!("{}{}", hex::encode(nonce), hex::encode(sealed))
    }

    /// The secret; never echoes the sealed value in the error.
    pub fn open(&self, sealed: &str) -> Result<String, CannotOpen> {
        let bytes = hex::decode(sealed.trim()).map_err(|_| CannotOpen)?;
        if bytes.len() < NONCE {
            return Err(CannotOpen);
        }
        let (nonce, data) = bytes.split_at(NONCE);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), data).map_err(|_| CannotOpen)?;
        String::from_utf8(plain).map_err(|_| CannotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_the_same_key_and_purpose() {
        let sealer = Sealer::new(b"platform secret", "ecom test");
        let sealed = sealer.seal("whsec_abc");
        assert!(!sealed.contains("whsec"), "{sealed}");
        assert_ne!(sealed, sealer.seal("whsec_abc"), "a fresh nonce each time");
        assert_eq!(sealer.open(&sealed).unwrap(), "whsec_abc");
        assert_eq!(Sealer::new(b"another secret", "ecom test").open(&sealed), Err(CannotOpen));
        assert_eq!(Sealer::new(b"platform secret", "ecom other").open(&sealed), Err(CannotOpen));
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(sealer.open(std::str::from_utf8(&tampered).unwrap()), Err(CannotOpen));
        assert_eq!(sealer.open("not hex"), Err(CannotOpen));
        assert_eq!(sealer.open("00"), Err(CannotOpen));
    }
}
