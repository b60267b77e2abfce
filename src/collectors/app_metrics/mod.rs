//! The application's own Prometheus / OpenMetrics endpoint, scraped on
//! loopback each round ([`scrape`]), parsed ([`parse`]), and then either
//! re-exposed on vitals' `/metrics` with one added label `app="<name>"`
//! (`export: true`, metrics merging as service-mesh sidecars do it) or kept
//! for the checks only (`export: false`).
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `vitals_app_up{app}` | gauge | 1 if the last scrape was read and parsed within the bounds |
//! | `vitals_app_scrape_duration_seconds{app}` | gauge | connect to the parsed body, or to the failure |
//! | `vitals_app_series{app}` | gauge | samples in the last accepted scrape |
//! | `vitals_app_scrape_bytes{app}` | gauge | body size of the last scrape read whole, decompressed |
//! | `vitals_app_dropped_series{app}` | gauge | samples dropped because their name is one of vitals' own (`vitals_*`) |
//!
//! Bounds: a body over `max_bytes` (before or after gzip) or with more than
//! `max_series` samples is refused for that round: nothing of it is kept,
//! the round fails (`vitals_source_success 0`, `/status` names the bound)
//! and memory never grows past the bound, because reading and parsing stop
//! there.

pub mod parse;
pub mod scrape;

use super::{CollectError, Source};
use crate::config::AppMetricsConfig;
use crate::config::ProbeTarget as Target;
use crate::metrics::{Desc, Family, Output};
use std::time::{Duration, Instant};

pub const UP: Desc = Desc::gauge(
    "vitals_app_up",
    &["app"],
    "Whether vitals' last scrape of the application's own metrics endpoint (sources.app_metrics) was read and parsed within max_bytes and max_series (1) or not (0).",
);
pub const SCRAPE_DURATION: Desc = Desc::gauge(
    "vitals_app_scrape_duration_seconds",
    &["app"],
    "Duration of vitals' last scrape of the application's own metrics endpoint, from connecting to the parsed body, or to the failure or timeout.",
);
pub const SERIES: Desc = Desc::gauge(
    "vitals_app_series",
    &["app"],
    "Samples in the last accepted scrape of the application's own metrics endpoint, as parsed by vitals.",
);
pub const SCRAPE_BYTES: Desc = Desc::gauge(
    "vitals_app_scrape_bytes",
    &["app"],
    "Size in bytes of the body of vitals' last complete scrape of the application's own metrics endpoint, after gzip decompression.",
);
pub const DROPPED_SERIES: Desc = Desc::gauge(
    "vitals_app_dropped_series",
    &["app"],
    "Samples of the last scrape of the application's own metrics endpoint that vitals dropped because their name starts with vitals_, the prefix of its own families.",
);

pub const METRICS: &[Desc] = &[UP, SCRAPE_DURATION, SERIES, SCRAPE_BYTES, DROPPED_SERIES];

/// The label every application series gets.
pub const APP_LABEL: &str = "app";

/// One configured application endpoint.
pub struct AppMetricsSource {
    name: String,
    target: Result<Target, String>,
    timeout: Duration,
    max_series: usize,
    max_bytes: u64,
    export: bool,
}

impl AppMetricsSource {
    pub fn new(config: &AppMetricsConfig) -> Self {
        AppMetricsSource {
            name: config.name.clone(),
            target: Ok(config.url.0.clone()),
            timeout: config.timeout.as_std(),
            max_series: config.max_series,
            max_bytes: config.max_bytes,
            export: config.export,
        }
    }
}

/// The application's families as vitals shows them: `app="<name>"` added to
/// every sample (an `app` label of the application's own becomes
/// `exported_app`), and families named `vitals_*` dropped so they never
/// shadow vitals' own. Returns the number of samples dropped.
pub fn relabel(families: &mut Vec<Family>, app: &str) -> usize {
    let mut dropped = 0;
    families.retain(|f| {
        let own = f.name.starts_with("vitals_");
        if own {
            dropped += f.samples.len();
        }
        !own
    });
    for family in families.iter_mut() {
        for sample in &mut family.samples {
            if sample.labels.iter().any(|(k, _)| k == APP_LABEL) {
                let taken =
                    |name: &str, labels: &[(String, String)]| labels.iter().any(|(k, _)| k == name);
                let mut name = format!("exported_{APP_LABEL}");
                while taken(&name, &sample.labels) {
                    name = format!("exported_{name}");
                }
                for (k, _) in &mut sample.labels {
                    if k == APP_LABEL {
                        *k = name.clone();
                    }
                }
            }
            sample.labels.push((APP_LABEL.to_owned(), app.to_owned()));
        }
    }
    dropped
}

impl Source for AppMetricsSource {
    async fn collect(&mut self, out: &mut Output) -> Result<(), CollectError> {
        let labels = [(APP_LABEL, self.name.as_str())];
        let target = self
            .target
            .as_ref()
            .map_err(|e| CollectError::Other(e.clone()))?;
        let start = Instant::now();
        let fetched = tokio::time::timeout(
            self.timeout,
            scrape::scrape(target, self.max_bytes, self.timeout.as_secs_f64()),
        )
        .await;
        let result = match fetched {
            Err(_) => Err(format!(
                "no complete answer within the timeout of {}",
                crate::config::Duration(self.timeout)
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(body)) => {
                out.add(&SCRAPE_BYTES, &labels, body.text.len() as f64);
                parse::parse_exposition(&body.text, body.dialect, self.max_series)
                    .map_err(|e| format!("parsing the body: {e}"))
            }
        };
        out.add(&SCRAPE_DURATION, &labels, start.elapsed().as_secs_f64());
        let mut families = match result {
            Ok(families) => families,
            Err(e) => {
                out.add(&UP, &labels, 0.0);
                return Err(CollectError::Other(e));
            }
        };
        let series: usize = families.iter().map(|f| f.samples.len()).sum();
        let dropped = relabel(&mut families, &self.name);
        out.add(&UP, &labels, 1.0);
        out.add(&SERIES, &labels, series as f64);
        out.add(&DROPPED_SERIES, &labels, dropped as f64);
        if self.export {
            out.families.extend(families);
        } else {
            out.check_only.extend(families);
        }
        Ok(())
    }
}

/// The parser, for the property tests and the fuzz target. What it accepts
/// also goes through [`relabel`] and the renderer, and the exposition must
/// read back in both formats with every rendered sample (a panic, which the
/// property tests report, if not).
#[doc(hidden)]
pub mod fuzz {
    use super::parse::{parse_exposition, Dialect};
    use crate::collectors::FuzzParser;
    use crate::metrics::{render, Format, Output};

    pub fn parsers() -> Vec<FuzzParser> {
        fn run(b: &[u8], dialect: Dialect) -> Result<String, String> {
            let mut families = parse_exposition(&String::from_utf8_lossy(b), dialect, 10_000)
                .map_err(|e| e.to_string())?;
            let parsed = format!("{families:?}");
            super::relabel(&mut families, "fuzz");
            let out = Output {
                families,
                ..Default::default()
            };
            for (format, again) in [
                (Format::Text, Dialect::Text),
                (Format::OpenMetrics, Dialect::OpenMetrics),
            ] {
                let text = render([&out], format);
                let lines = text.lines().filter(|l| !l.starts_with('#')).count();
                match parse_exposition(&text, again, 20_000) {
                    Ok(back) => assert_eq!(
                        back.iter().map(|f| f.samples.len()).sum::<usize>(),
                        lines,
                        "{format:?} rendering lost or merged a sample:\n{text}"
                    ),
                    Err(e) => panic!("{format:?} rendering does not parse: {e}\n{text}"),
                }
            }
            Ok(parsed)
        }
        vec![
            ("app/text", |b| run(b, Dialect::Text)),
            ("app/openmetrics", |b| run(b, Dialect::OpenMetrics)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Kind, Sample};

    fn family(name: &str, labels: &[(&str, &str)]) -> Family {
        Family {
            name: name.into(),
            help: String::new(),
            kind: Kind::Gauge,
            samples: vec![Sample {
                labels: labels
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
                value: 1.0,
                suffix: "",
            }],
        }
    }

    #[test]
    fn relabel_adds_app_renames_a_clash_and_drops_vitals_names() {
        let mut families = vec![
            family("queue_size", &[("queue", "mail")]),
            family("jobs", &[("app", "worker"), ("exported_app", "x")]),
            family("vitals_app_up", &[]),
        ];
        assert_eq!(relabel(&mut families, "web"), 1);
        assert_eq!(families.len(), 2);
        let labels = |i: usize| families[i].samples[0].labels.clone();
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
        };
        assert_eq!(labels(0), pairs(&[("queue", "mail"), ("app", "web")]));
        assert_eq!(
            labels(1),
            pairs(&[
                ("exported_exported_app", "worker"),
                ("exported_app", "x"),
                ("app", "web")
            ])
        );
    }
}
