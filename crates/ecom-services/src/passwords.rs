//! argon2id password hashing, off the async executor.

use crate::{Result, ServiceError};
use argon2::Argon2;
use std::sync::OnceLock;

/// argon2id with m = 7 MiB, t = 5, p = 1: one of the parameter sets OWASP lists as
/// equivalent to the library default (19 MiB, t = 2), chosen because memory is what
/// a busy node runs short of first. Verification reads the parameters from the
/// stored hash, so hashes made with other settings keep working.
fn hasher() -> Argon2<'static> {
    match argon2::Params::new(7 * 1024, 5, 1, None) {
        Ok(params) => Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params),
        Err(_) => Argon2::default(),
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A few dedicated threads (half the cores, at least one) do all hashing, so the other
/// cores keep serving pages during a burst of sign-ins. Each hash takes 7 MiB and
/// a core for a few tens of milliseconds: a burst of sign-ins queues here instead of
/// starting hundreds of blocking threads, and the allocator keeps hash memory in at
/// most this many per-thread arenas (with tokio's rotating blocking threads, idle
/// memory grew by 7 MiB for every thread that ever hashed).
fn pool() -> &'static std::sync::Mutex<std::sync::mpsc::Sender<Job>> {
    static POOL: OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("ecom-hash-{i}")).spawn(move || {
                loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        std::sync::Mutex::new(tx)
    })
}

async fn bounded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(work());
    });
    pool()
        .lock()
        .map_err(|_| ServiceError::Internal("password hashing pool poisoned".into()))?
        .send(job)
        .map_err(|_| ServiceError::Internal("password hashing pool stopped".into()))?;
    rx.await.map_err(|_| ServiceError::Internal("password hashing task failed".into()))
}

thread_local! {
    /// The hashing thread's work area, kept between hashes. Allocating and freeing
    /// 7 MiB per hash left the freed memory resident in the allocator's arenas (idle
    /// memory grew by tens of MiB after a few sign-ins); reusing one buffer keeps it
    /// at one work area per hashing thread.
    static WORK_AREA: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs argon2 into `out` with this thread's reusable work area.
fn argon2_into(
    argon: &Argon2<'_>,
    blocks: usize,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> std::result::Result<(), argon2::Error> {
    WORK_AREA.with(|area| {
        let mut area = area.borrow_mut();
        if area.len() < blocks {
            area.resize(blocks, argon2::Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut area[..blocks])
    })
}

/// Hashes a password with argon2id (see [`hasher`]), returning a PHC string.
pub async fn hash(password: String) -> Result<String> {
    bounded(move || hash_now(password.as_bytes())).await?
}

fn hash_now(password: &[u8]) -> Result<String> {
    use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
    let fail = |e: &dyn std::fmt::Display| ServiceError::Internal(format!("password hashing failed: {e}"));
    let argon = hasher();
    let params = argon.params().clone();
    let salt_bytes: [u8; 16] = rand::random();
    let mut out = [0u8; 32];
    argon2_into(&argon, params.block_count(), password, &salt_bytes, &mut out).map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(argon2::Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| fail(&e))?,
        salt: Some(Salt::new(&salt_bytes).map_err(|e| fail(&e))?),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string. A string that does not parse, or uses
/// another algorithm, counts as a mismatch.
fn verify_now(password: &[u8], phc: &str) -> bool {
    use argon2::password_hash::phc::{Output, PasswordHash};
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
        None => argon2::Version::V0x13,
    };
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    if argon2_into(&argon, blocks, password, salt.as_ref(), &mut out).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|actual| actual == *expected)
}

/// Checks a password against a PHC string. An unparsable hash counts as a mismatch.
pub async fn verify(password: String, phc: String) -> Result<bool> {
    bounded(move || verify_now(password.as_bytes(), &phc)).await
}

/// A hash of a random password, verified against when an email is unknown so that
/// "no such account" takes as long as "wrong password" and cannot be told apart.
pub(crate) async fn verify_dummy(password: String) -> Result<()> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    bounded(move || {
        let phc = DUMMY.get_or_init(|| hash_now(&rand::random::<[u8; 16]>()).unwrap_or_default());
        verify_now(password.as_bytes(), phc);
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[test]
    fn hashes_verify_here_and_with_the_reference_implementation() {
        let phc = hash_now(b"correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{phc}");
        assert!(verify_now(b"correct horse", &phc));
        assert!(!verify_now(b"wrong horse", &phc));
        assert!(!verify_now(b"correct horse", "not a hash"));
        assert!(Argon2::default().verify_password(b"correct horse", phc.as_str()).is_ok());
        // A hash made by the library with its default parameters verifies too.
        let reference = argon2::PasswordHasher::hash_password(&Argon2::default(), b"pw 1234567").unwrap().to_string();
        assert!(verify_now(b"pw 1234567", &reference));
    }
}
