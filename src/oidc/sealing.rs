//! Private signing keys encrypted at rest, when the configuration gives a key-encryption key
//! (`key_encryption_key`, `OXIDOT_KEY_ENCRYPTION_KEY` or `key_encryption_key_file`): a stolen
//! database file or backup then holds no usable signing key.
//!
//! A sealed key is a compact JWE (`dir`, `A256GCM`: josekit, already linked for signing) of
//! the private JWK, under a 256-bit key derived from the configured secret with HKDF-SHA256.
//! Its `kid` header names the derived key, so a wrong secret is reported as such rather than
//! as corrupt data. A stored key that is plain JSON is unsealed (written before a secret was
//! configured); start-up seals it.

use base64::Engine as _;
use josekit::jwe::{Dir, JweHeader};
use sha2::{Digest, Sha256};

/// Shortest accepted secret: HKDF adds no strength to a weak one.
pub const MIN_SECRET_CHARS: usize = 16;
const CONTENT_ENCRYPTION: &str = "A256GCM";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "key_encryption_key must be at least {MIN_SECRET_CHARS} characters (a random value, \
         e.g. `openssl rand -base64 32`)"
    )]
    WeakSecret,
    #[error(
        "the signing keys in the database are encrypted at rest: set key_encryption_key \
         (or OXIDOT_KEY_ENCRYPTION_KEY, or key_encryption_key_file) to the secret they were \
         encrypted with"
    )]
    SecretMissing,
    #[error(
        "the signing keys in the database were encrypted with another key_encryption_key \
         (key {found}, configured {configured})"
    )]
    WrongSecret { found: String, configured: String },
    #[error("a sealed signing key cannot be read: {0}")]
    Unreadable(String),
}

/// Seals and opens private keys with the key derived from the configured secret.
#[derive(Clone)]
pub struct KeySealer {
    key: [u8; 32],
    /// Names the derived key (not the secret): the first bytes of its SHA-256.
    id: String,
}

impl std::fmt::Debug for KeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySealer").field("id", &self.id).finish()
    }
}

/// Whether a stored private key is sealed (a compact JWE) rather than plain JSON.
pub fn is_sealed(stored: &str) -> bool {
    !stored.trim_start().starts_with('{')
}

fn header_kid(sealed: &str) -> Option<String> {
    let header = sealed.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let header: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    header.get("kid")?.as_str().map(str::to_owned)
}

impl KeySealer {
    pub fn new(secret: &str) -> Result<Self, SealError> {
        if secret.chars().count() < MIN_SECRET_CHARS {
            return Err(SealError::WeakSecret);
        }
        let hkdf = hkdf::Hkdf::<Sha256>::new(Some(b"oxidot"), secret.as_bytes());
        let mut key = [0u8; 32];
        hkdf.expand(b"signing keys at rest, v1", &mut key)
            .map_err(|_| SealError::WeakSecret)?;
        let digest = Sha256::digest(key);
        let id = digest[..6]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok(Self { key, id })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn seal(&self, private_jwk: &str) -> Result<String, SealError> {
        let mut header = JweHeader::new();
        header.set_content_encryption(CONTENT_ENCRYPTION);
        header.set_key_id(&self.id);
        let encrypter = Dir
            .encrypter_from_bytes(self.key)
            .map_err(|error| SealError::Unreadable(error.to_string()))?;
        josekit::jwe::serialize_compact(private_jwk.as_bytes(), &header, &encrypter)
            .map_err(|error| SealError::Unreadable(error.to_string()))
    }

    pub fn open(&self, sealed: &str) -> Result<String, SealError> {
        let found = header_kid(sealed).unwrap_or_default();
        if found != self.id {
            return Err(SealError::WrongSecret {
                found,
                configured: self.id.clone(),
            });
        }
        let decrypter = Dir
            .decrypter_from_bytes(self.key)
            .map_err(|error| SealError::Unreadable(error.to_string()))?;
        let (payload, _) = josekit::jwe::deserialize_compact(sealed, &decrypter)
            .map_err(|error| SealError::Unreadable(error.to_string()))?;
        String::from_utf8(payload).map_err(|error| SealError::Unreadable(error.to_string()))
    }
}

/// The private JWK of a stored key: opened when sealed, as it is when plain.
pub fn unseal(stored: &str, sealer: Option<&KeySealer>) -> Result<String, SealError> {
    if !is_sealed(stored) {
        return Ok(stored.to_owned());
    }
    sealer.ok_or(SealError::SecretMissing)?.open(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_secret() {
        let sealer = KeySealer::new("a-long-enough-secret-1").unwrap();
        let jwk = r#"{"kty":"OKP","crv":"Ed25519","d":"secret-part","x":"public"}"#;
        let sealed = sealer.seal(jwk).unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("secret-part"));
        assert_eq!(unseal(&sealed, Some(&sealer)).unwrap(), jwk);
        assert_eq!(
            unseal(jwk, None).unwrap(),
            jwk,
            "plain keys read as they are"
        );
        assert!(matches!(
            unseal(&sealed, None),
            Err(SealError::SecretMissing)
        ));
        let other = KeySealer::new("another-long-secret-2").unwrap();
        assert!(matches!(
            unseal(&sealed, Some(&other)),
            Err(SealError::WrongSecret { .. })
        ));
        assert!(matches!(
            KeySealer::new("short"),
            Err(SealError::WeakSecret)
        ));
    }
}
