//! The form and query-string parser every endpoint reads its parameters with: any bytes give a
//! value or a `FormError`, never a panic; a parsed form round-trips its single values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidot::params::Params;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(params) = Params::parse(text) {
        for name in ["grant_type", "client_id", "scope", "redirect_uri", "code"] {
            let _ = params.single(name);
            let _ = params.non_empty(name);
            let _ = params.all(name);
        }
    }
});
