//! API tokens: random secrets shown once, stored as SHA-256 hashes, looked up by a short
//! prefix of the hash and compared in constant time.

use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use kiln_model::auth::Token;
use kiln_store::KvStore;
use kiln_store::records::{self, GLOBAL};

use crate::error::{ApiError, ApiResult};

/// Prefix of generated tokens, so they are recognisable in a leaked file.
const PREFIX: &str = "kiln_";

pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub fn hash(secret: &str) -> String {
    hex::encode(digest(secret))
}

/// The public id of a token: the first 16 hex digits of its hash.
pub fn id_of(secret: &str) -> String {
    hash(secret)[..16].to_string()
}

/// A new secret: 32 random bytes.
pub fn generate() -> ApiResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::from(kiln_store::StoreError::Backend(format!("no randomness available: {e}"))))?;
    Ok(format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

pub fn new_token(secret: &str, subject: &str, description: Option<String>, expires: Option<DateTime<Utc>>) -> Token {
    Token {
        id: id_of(secret),
        subject: subject.to_string(),
        description,
        created_time: Utc::now(),
        expires_time: expires,
        revoked_time: None,
        last_used_time: None,
        hash: hash(secret),
        revision: None,
    }
}

/// Why a presented token was refused; the message never contains the token.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    Unusable(&'static str),
}

/// Finds the token a secret belongs to, comparing hashes in constant time.
pub async fn verify(store: &dyn KvStore, secret: &str) -> ApiResult<Result<Token, Refusal>> {
    let presented = hash(secret);
    let Some(entry) = store.get(&records::key::<Token>(GLOBAL, &presented[..16])).await? else {
        return Ok(Err(Refusal::Unknown));
    };
    let token: Token = records::decode(&entry)?;
    if !bool::from(token.hash.as_bytes().ct_eq(presented.as_bytes())) {
        return Ok(Err(Refusal::Unknown));
    }
    if let Err(why) = token.usable_at(Utc::now()) {
        return Ok(Err(Refusal::Unusable(why)));
    }
    Ok(Ok(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_unique_and_hash_to_their_id() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() > 40);
        let token = new_token(&a, "alice", None, None);
        assert_eq!(token.id, &token.hash[..16]);
        assert!(!serde_json::to_string(&token).unwrap().contains(&a));
    }
}
