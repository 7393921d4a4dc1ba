//! `loaddata`'s parsers and record checks (YAML and JSON, Django's fixture format): any file
//! is loaded or refused with a message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidot::fixtures::{self, Source};

fuzz_target!(|input: (bool, &str)| {
    let (json, contents) = input;
    let name = if json { "fuzz.json" } else { "fuzz.yaml" };
    let _ = fixtures::check(&[Source::Text {
        name: name.to_owned(),
        contents: contents.to_owned(),
    }]);
});
