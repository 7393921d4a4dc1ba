//! Unguessable values: session ids, CSRF tokens, and later tokens and codes.

use base64::Engine as _;

#[derive(Debug, Clone, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

/// `bytes` random bytes, base64url without padding (32 bytes → 43 characters, 256 bits).
pub fn token(bytes: usize) -> Result<String, RandomError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|error| RandomError(error.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer))
}

/// `length` characters from A–Z, a–z and 0–9, as DOT generates client ids and secrets.
pub fn alphanumeric(length: usize) -> Result<String, RandomError> {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut text = String::with_capacity(length);
    let mut buffer = [0u8; 64];
    while text.len() < length {
        getrandom::fill(&mut buffer).map_err(|error| RandomError(error.to_string()))?;
        // 248 = 4 × 62: bytes at or above it are dropped so every character is equally likely.
        for byte in buffer.iter().filter(|byte| **byte < 248) {
            if text.len() == length {
                break;
            }
            text.push(char::from(ALPHABET[usize::from(*byte % 62)]));
        }
    }
    Ok(text)
}

/// A token or code in oxidot's ordered layout (see `store::records::ORDERED_TOKEN_VERSION`),
/// issued at `issued_micros`: 54 characters, 256 random bits.
pub fn ordered_token(issued_micros: i64) -> Result<String, RandomError> {
    use crate::store::{ORDERED_PREFIX_BYTES, ORDERED_TOKEN_BYTES, ORDERED_TOKEN_VERSION};
    let mut buffer = [0u8; ORDERED_TOKEN_BYTES];
    let time = u64::try_from(issued_micros).unwrap_or(0).to_be_bytes();
    buffer[0] = ORDERED_TOKEN_VERSION;
    buffer[1..ORDERED_PREFIX_BYTES].copy_from_slice(&time[1..]);
    getrandom::fill(&mut buffer[ORDERED_PREFIX_BYTES..])
        .map_err(|error| RandomError(error.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer))
}

#[cfg(test)]
mod tests {
    use crate::store::SecretKey;

    #[test]
    fn alphanumeric_values_have_their_length_and_alphabet() {
        let value = super::alphanumeric(128).unwrap();
        assert_eq!(value.len(), 128);
        assert!(value.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(value, super::alphanumeric(128).unwrap());
    }

    #[test]
    fn ordered_tokens_sort_by_issue_time_and_keep_their_randomness() {
        let earlier = super::ordered_token(1_700_000_000_000_000).unwrap();
        let later = super::ordered_token(1_700_000_000_000_001).unwrap();
        let twin = super::ordered_token(1_700_000_000_000_001).unwrap();
        assert_eq!(earlier.len(), 54);
        assert_ne!(later, twin);
        assert!(SecretKey::of_token(&earlier).0 < SecretKey::of_token(&later).0);
        assert_ne!(SecretKey::of_token(&later), SecretKey::of_token(&twin));
        // The key holds no more of the token than its public prefix.
        assert_ne!(SecretKey::of_token(&later).0[8..], later.as_bytes()[8..32]);
    }

    #[test]
    fn tokens_of_other_shapes_are_keyed_by_their_checksum() {
        for value in ["dot-style-30-characters-token0", &"A".repeat(54), ""] {
            assert_eq!(SecretKey::of_token(value), SecretKey::of(value));
        }
    }

    #[test]
    fn tokens_are_url_safe_and_distinct() {
        let a = super::token(32).unwrap();
        let b = super::token(32).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
