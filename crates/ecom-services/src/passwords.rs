//! argon2id password hashing, off the async executor.

use crate::{Result, ServiceError};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// Hashes a password with argon2id and the crate's recommended parameters
/// (19 MiB, 2 passes), returning a PHC string.
pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ServiceError::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("password hashing task failed: {e}")))?
}

/// Checks a password against a PHC string. An unparsable hash counts as a mismatch.
pub async fn verify(password: String, phc: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), phc.as_str())
            .is_ok()
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("password check task failed: {e}")))
}

/// A hash of a random password, verified against when an email is unknown so that
/// "no such account" takes as long as "wrong password" and cannot be told apart.
pub(crate) async fn verify_dummy(password: String) -> Result<()> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let phc = DUMMY.get_or_init(|| {
            let random: [u8; 16] = rand::random();
            Argon2::default()
                .hash_password(&random)
                .map(|h| h.to_string())
                .unwrap_or_default()
        });
        let _ = Argon2::default().verify_password(password.as_bytes(), phc.as_str());
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("password check task failed: {e}")))
}
