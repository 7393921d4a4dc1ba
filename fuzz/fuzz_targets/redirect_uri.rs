//! Redirect-URI matching: exact, plus any port on the loopback addresses (RFC 8252). Whatever
//! the strings, a URI matches itself when its scheme is allowed, and a different one never
//! matches unless both are loopback URIs that differ in the port only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidot::oauth::redirect::is_registered;

fuzz_target!(|input: (&str, &str)| {
    let (requested, registered) = input;
    let schemes = ["http".to_owned(), "https".to_owned(), "com.example.app".to_owned()];
    let matched = is_registered(requested, &[registered.to_owned()], &schemes);
    if matched && requested != registered {
        let loopback = |uri: &str| {
            uri.starts_with("http://127.0.0.1") || uri.starts_with("http://[::1]")
        };
        assert!(
            loopback(requested) && loopback(registered),
            "{requested:?} matched {registered:?}"
        );
    }
});
