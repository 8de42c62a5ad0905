//! Secrets at rest: with `SWITCHBOARD_SECRET_KEY` (32 bytes, base64) numbers' access tokens are
//! stored sealed with XChaCha20-Poly1305 (a random 24-byte nonce per value), as
//! `enc:v1:<base64 of nonce and ciphertext>`. Plaintext values still in the database are sealed
//! at start; a database holding sealed values refuses to start without the key that opens
//! them; `switchboard rotate-key` re-seals everything with a new key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use uuid::Uuid;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::on_db;

const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 24;
/// Binds a sealed value to what it is: a token can't be passed off as another kind of secret.
const AAD_ACCESS_TOKEN: &[u8] = b"switchboard numbers.access_token";

/// The key, if one is configured. Cheap to clone.
#[derive(Clone, Default)]
pub struct Secrets {
    key: Option<Key>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.key.is_some() { "Secrets(key set)" } else { "Secrets(no key)" })
    }
}

impl Secrets {
    /// From `SWITCHBOARD_SECRET_KEY`: 32 bytes in base64, or nothing.
    pub fn from_base64(key: Option<&str>) -> anyhow::Result<Secrets> {
        let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else { return Ok(Secrets::default()) };
        let bytes = B64
            .decode(key)
            .map_err(|_| anyhow::anyhow!("SWITCHBOARD_SECRET_KEY must be base64 (try `openssl rand -base64 32`)"))?;
        anyhow::ensure!(
            bytes.len() == 32,
            "SWITCHBOARD_SECRET_KEY must be 32 bytes in base64, got {} bytes (try `openssl rand -base64 32`)",
            bytes.len()
        );
        Ok(Secrets { key: Some(*Key::from_slice(&bytes)) })
    }

    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// The value to store for the access token `plain`: sealed with the key, as is without one.
    pub fn seal(&self, plain: &str) -> String {
        let Some(key) = &self.key else { return plain.to_owned() };
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = XChaCha20Poly1305::new(key)
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain.as_bytes(), aad: AAD_ACCESS_TOKEN })
            .expect("sealing a short value cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", B64.encode(out))
    }

    /// The access token behind a stored value (a plaintext value is returned as it is).
    pub fn open(&self, stored: &str) -> Result<String> {
        let Some(b64) = stored.strip_prefix(PREFIX) else { return Ok(stored.to_owned()) };
        let key = self.key.as_ref().ok_or_else(|| {
            Error::Internal("an access token is encrypted and SWITCHBOARD_SECRET_KEY is not set".into())
        })?;
        let raw = B64.decode(b64).map_err(|_| Error::Internal("a sealed access token is not base64".into()))?;
        if raw.len() < NONCE_LEN {
            return Err(Error::Internal("a sealed access token is truncated".into()));
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let plain = XChaCha20Poly1305::new(key)
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: AAD_ACCESS_TOKEN })
            .map_err(|_| Error::Internal("an access token does not open with SWITCHBOARD_SECRET_KEY".into()))?;
        String::from_utf8(plain).map_err(|_| Error::Internal("a sealed access token is not text".into()))
    }
}

pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

#[derive(sqlx::FromRow)]
struct Stored {
    id: Uuid,
    access_token: String,
}

async fn stored(db: &Db) -> sqlx::Result<Vec<Stored>> {
    on_db!(db, |p| sqlx::query_as("SELECT id, access_token FROM numbers ORDER BY id").fetch_all(p).await)
}

/// At start: refuses a database whose tokens the configured key can't open (sealed values and
/// no key, or another key), and seals the plaintext tokens when a key is set. Returns how many
/// it sealed.
pub async fn check_and_seal(db: &Db, secrets: &Secrets) -> anyhow::Result<usize> {
    let rows = stored(db).await?;
    let sealed = rows.iter().filter(|r| is_sealed(&r.access_token)).count();
    if !secrets.has_key() {
        anyhow::ensure!(
            sealed == 0,
            "{sealed} access token(s) in the database are encrypted and SWITCHBOARD_SECRET_KEY is not set: \
             start with the key they were encrypted with"
        );
        return Ok(0);
    }
    if let Some(r) = rows.iter().find(|r| is_sealed(&r.access_token) && secrets.open(&r.access_token).is_err()) {
        anyhow::bail!(
            "SWITCHBOARD_SECRET_KEY does not open the access token of number {}: start with the key the tokens \
             were encrypted with (or run `switchboard rotate-key` with that key to change it)",
            r.id
        );
    }
    let mut done = 0;
    for r in rows.iter().filter(|r| !is_sealed(&r.access_token)) {
        done += reseal(db, r, &secrets.seal(&r.access_token)).await?;
    }
    if done > 0 {
        tracing::info!(tokens = done, "encrypted plaintext access tokens with SWITCHBOARD_SECRET_KEY");
    }
    Ok(done)
}

/// `switchboard rotate-key`: opens every token with `old` (plaintext ones as they are) and
/// seals it with `new`. Run it with the servers stopped, then start them with the new key.
pub async fn rotate(db: &Db, old: &Secrets, new: &Secrets) -> anyhow::Result<usize> {
    anyhow::ensure!(new.has_key(), "rotate-key needs --new-key");
    let rows = stored(db).await?;
    let mut opened = Vec::with_capacity(rows.len());
    for r in &rows {
        let plain = old.open(&r.access_token).map_err(|e| anyhow::anyhow!("number {}: {e}", r.id))?;
        opened.push((r, plain));
    }
    let mut done = 0;
    for (r, plain) in opened {
        done += reseal(db, r, &new.seal(&plain)).await?;
    }
    Ok(done)
}

/// Stores `value` for a row, only if it still holds what was read (a token changed meanwhile
/// is left alone: it was stored by a server with the right key).
async fn reseal(db: &Db, r: &Stored, value: &str) -> sqlx::Result<usize> {
    let n = on_db!(db, |p| sqlx::query("UPDATE numbers SET access_token = $1 WHERE id = $2 AND access_token = $3")
        .bind(value)
        .bind(r.id)
        .bind(&r.access_token)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Secrets {
        Secrets::from_base64(Some(&B64.encode([byte; 32]))).unwrap()
    }

    #[test]
    fn seals_and_opens() {
        let s = key(7);
        let sealed = s.seal("EAAG-secret");
        assert!(is_sealed(&sealed) && !sealed.contains("EAAG"));
        assert_ne!(sealed, s.seal("EAAG-secret"), "a fresh nonce each time");
        assert_eq!(s.open(&sealed).unwrap(), "EAAG-secret");
        assert!(key(8).open(&sealed).is_err(), "another key does not open it");
        assert!(Secrets::default().open(&sealed).is_err(), "no key does not open it");
        assert_eq!(Secrets::default().seal("plain"), "plain");
        assert_eq!(s.open("plain").unwrap(), "plain");
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(Secrets::from_base64(Some("not base64!")).is_err());
        assert!(Secrets::from_base64(Some(&B64.encode([1u8; 16]))).is_err());
        assert!(!Secrets::from_base64(None).unwrap().has_key());
    }
}
