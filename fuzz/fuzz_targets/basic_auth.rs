//! Client authentication as presented: an `Authorization` header (Basic, form-encoded id and
//! secret inside base64) with a form body. Any input gives a client, none, or an OAuth error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidot::oauth::presented_client;
use oxidot::params::Params;

fuzz_target!(|input: (&str, &str)| {
    let (header, body) = input;
    let params = Params::parse(body).unwrap_or_default();
    let _ = presented_client(Some(header), &params);
    let _ = presented_client(Some(&format!("Basic {header}")), &params);
});
