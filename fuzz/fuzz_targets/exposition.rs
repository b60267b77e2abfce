//! The parser of an application's metrics body (Prometheus text 0.0.4 and
//! OpenMetrics) on arbitrary bytes: the first byte picks the format. A
//! value or an error, never a panic, and never more than max_series samples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vitals::collectors::app_metrics::parse::{parse_exposition, Dialect};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let dialect = if pick % 2 == 0 {
        Dialect::Text
    } else {
        Dialect::OpenMetrics
    };
    let text = String::from_utf8_lossy(input);
    if let Ok(families) = parse_exposition(&text, dialect, 100) {
        assert!(families.iter().map(|f| f.samples.len()).sum::<usize>() <= 100);
    }
});
