//! Opaque bearer tokens: 32 random bytes shown once, only their SHA-256 stored.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new token and the hash to store.
pub fn generate() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("sb_{}", hex::encode(bytes));
    let hash = digest(&token);
    (token, hash)
}

pub fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// What every API key starts with: how a key is told from a session token.
pub const API_KEY_PREFIX: &str = "sbk_";

/// A new API key and the hash to store.
pub fn generate_api_key() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = format!("{API_KEY_PREFIX}{}", hex::encode(bytes));
    let hash = digest(&key);
    (key, hash)
}

/// Whether a bearer credential is an API key (not a session token).
pub fn is_api_key(credential: &str) -> bool {
    credential.starts_with(API_KEY_PREFIX)
}
