//! The admin console under `/admin/`: staff only (users, groups and keys: superusers only).
//! Every state change is a POST with CSRF, every action is logged with who did it, and every
//! page works without JavaScript.

mod applications;
mod dashboard;
mod delete_selected;
mod keys;
mod tasks;
mod tokens;
mod users;

use rocket::Route;

use crate::store::{SecretKey, Timestamp};

pub fn routes() -> Vec<Route> {
    let mut all = Vec::new();
    all.extend(dashboard::routes());
    all.extend(applications::routes());
    all.extend(tokens::routes());
    all.extend(users::routes());
    all.extend(keys::routes());
    all.extend(tasks::routes());
    all
}

pub use crate::web::screen::{Answer, see_other};

pub fn when(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "—".to_owned(), Timestamp::to_rfc3339)
}

/// A store key as it appears in admin URLs and forms.
pub fn key_hex(key: &SecretKey) -> String {
    key.0.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub fn key_from_hex(text: &str) -> Option<SecretKey> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (index, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(SecretKey(key))
}

/// A token value as lists show it: its last four characters at most.
pub fn masked(tail: &str) -> String {
    let chars: Vec<char> = tail.chars().collect();
    let shown: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    if shown.is_empty() {
        "…".to_owned()
    } else {
        format!("…{shown}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_hex_and_values_are_masked() {
        let key = SecretKey([0xab; 32]);
        assert_eq!(key_from_hex(&key_hex(&key)).map(|k| k.0), Some(key.0));
        assert!(key_from_hex("zz").is_none());
        assert!(key_from_hex(&"é".repeat(32)).is_none());
        assert_eq!(masked("abcdef"), "…cdef");
        assert_eq!(masked(""), "…");
    }
}
