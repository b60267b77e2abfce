//! The parser of an application's metrics body (Prometheus text 0.0.4 and
//! OpenMetrics) on arbitrary bytes: the first byte picks the format. A
//! value or an error, never a panic, and never more than max_series
//! samples. What it accepts goes through the app source's relabeling and
//! vitals' renderer, and the exposition must read back in both formats
//! (OpenMetrics to the letter of its specification) with every rendered
//! sample kept: no repeated series, no clash, nothing interleaved.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vitals::collectors::app_metrics::parse::{parse_exposition, Dialect};
use vitals::collectors::app_metrics::relabel;
use vitals::metrics::{render, Format, Output};

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
    let Ok(mut families) = parse_exposition(&text, dialect, 100) else {
        return;
    };
    assert!(families.iter().map(|f| f.samples.len()).sum::<usize>() <= 100);
    relabel(&mut families, "fuzz");
    let out = Output {
        families,
        ..Default::default()
    };
    for (format, again) in [
        (Format::Text, Dialect::Text),
        (Format::OpenMetrics, Dialect::OpenMetrics),
    ] {
        let rendered = render([&out], format);
        let lines = rendered
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        match parse_exposition(&rendered, again, 1000) {
            Ok(back) => assert_eq!(
                back.iter().map(|f| f.samples.len()).sum::<usize>(),
                lines,
                "{format:?} lost or merged a sample:\n{rendered}"
            ),
            Err(e) => panic!("{format:?} rendering does not parse: {e}\n{rendered}"),
        }
    }
});
