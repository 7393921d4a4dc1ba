//! PKCE: verifier syntax and the S256/plain check. No panic, and a malformed verifier never
//! verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidot::oauth::pkce::{is_well_formed, verifies};

fuzz_target!(|input: (&str, &str, &str)| {
    let (method, challenge, verifier) = input;
    let well_formed = is_well_formed(verifier);
    let verified = verifies(method, challenge, verifier);
    if verified && method == "plain" {
        assert_eq!(challenge, verifier);
    }
    let _ = well_formed;
});
