//! `id_token_hint` (and any JOSE compact token a client hands back): split, base64url, JSON,
//! then the signature against this server's keys. Arbitrary input is refused with a message,
//! never accepted and never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use oxidot::clock::Clock;
use oxidot::oidc::KeyRing;
use oxidot::oidc::id_token::IdTokens;
use oxidot::store::{Store, Timestamp};

fn id_tokens() -> &'static IdTokens {
    static TOKENS: OnceLock<(tempfile::TempDir, IdTokens)> = OnceLock::new();
    &TOKENS
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let (store, _) = Store::open(&dir.path().join("fuzz.redb"), 1 << 20).unwrap();
            let keys = KeyRing::open(&store, None, 3600, 3600, Timestamp(0), None).unwrap();
            let tokens = IdTokens::new(keys, store, 3600, Clock::system());
            (dir, tokens)
        })
        .1
}

fuzz_target!(|token: &str| {
    assert!(id_tokens().read_own(token).is_err());
});
