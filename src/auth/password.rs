//! Password hashing with argon2 (PHC strings), run off the async threads.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{Error, Result};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 1024;

/// Checks the length rules; the message is shown to the user.
pub fn validate(password: &str) -> Result<()> {
    if password.chars().count() < MIN_LEN {
        return Err(Error::unprocessable("weak_password", format!("password must have at least {MIN_LEN} characters")));
    }
    if password.len() > MAX_LEN {
        return Err(Error::unprocessable("invalid_password", "password is too long"));
    }
    Ok(())
}

pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(|e| Error::internal(format!("hash task: {e}")))?
    .map_err(|e| Error::internal(format!("hash: {e}")))
}

/// Verifies `password` against a PHC string. With `None` it still does the work, so an
/// unknown email takes as long as a wrong password.
pub async fn verify(password: String, phc: Option<String>) -> bool {
    static DUMMY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(b"not-a-real-password", &salt).map(|h| h.to_string()).unwrap_or_default()
    });
    tokio::task::spawn_blocking(move || {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| DUMMY.clone());
        let Ok(parsed) = PasswordHash::new(&phc) else { return false };
        Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && known
    })
    .await
    .unwrap_or(false)
}
