//! The exporter-toolkit web config parser on arbitrary text: a config or a
//! `file:line:column` error, never a panic. Paths it names resolve under a
//! directory that does not exist, so no file is read.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = vitals::server::webconfig::parse_str(
        text,
        "web.yml",
        std::path::Path::new("/nonexistent-vitals-fuzz"),
    );
});
