//! The vitals configuration parser and validator on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = vitals::config::parse_str(text, "vitals.yaml");
});
