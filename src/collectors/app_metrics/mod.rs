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
//! | `vitals_app_limit_exceeded_total{app,limit}` | counter | scrapes refused by a limit, per limit that is set |
//! | `vitals_relabel_dropped_series{source}` | gauge | series the `metric_relabel_configs` removed (`crate::relabel`) |
//!
//! Bounds: a body over `max_bytes` (before or after gzip) or with more than
//! `max_series` samples is refused for that round: nothing of it is kept,
//! the round fails (`vitals_source_success 0`, `/status` names the bound)
//! and memory never grows past the bound, because reading and parsing stop
//! there. With `metric_relabel_configs`, `max_series` (`sample_limit`)
//! counts the series left after the rules, as in Prometheus, so parsing is
//! bounded by `max_bytes` alone; the label limits also apply after them.

pub mod parse;
pub mod scrape;

use super::{CollectError, Source};
use crate::config::ProbeTarget as Target;
use crate::config::{AppMetricsConfig, RelabelConfig};
use crate::metrics::{Desc, Family, Output};
use crate::relabel;
use std::collections::BTreeMap;
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

pub const LIMIT_EXCEEDED: Desc = Desc::counter(
    "vitals_app_limit_exceeded_total",
    &["app", "limit"],
    "Scrapes of the application's own metrics endpoint refused whole because, after relabeling, they exceeded a limit (sample_limit, label_limit, label_name_length_limit, label_value_length_limit), as Prometheus' scrape limits; counted since the source started, for every limit that is set.",
);

pub const METRICS: &[Desc] = &[
    UP,
    SCRAPE_DURATION,
    SERIES,
    SCRAPE_BYTES,
    DROPPED_SERIES,
    LIMIT_EXCEEDED,
];

/// The label every application series gets.
pub const APP_LABEL: &str = "app";

/// One configured application endpoint.
pub struct AppMetricsSource {
    name: String,
    target: Result<Target, String>,
    timeout: Duration,
    limits: Limits,
    max_bytes: u64,
    export: bool,
    rules: std::sync::Arc<[RelabelConfig]>,
    /// Scrapes refused per limit, since the source started.
    exceeded: BTreeMap<&'static str, u64>,
}

impl AppMetricsSource {
    pub fn new(config: &AppMetricsConfig) -> Self {
        AppMetricsSource {
            name: config.name.clone(),
            target: Ok(config.url.0.clone()),
            timeout: config.timeout.as_std(),
            limits: Limits {
                sample_limit: config.max_series,
                label_limit: config.label_limit,
                label_name_length_limit: config.label_name_length_limit,
                label_value_length_limit: config.label_value_length_limit,
            },
            max_bytes: config.max_bytes,
            export: config.export,
            rules: config.metric_relabel_configs.clone().into(),
            exceeded: BTreeMap::new(),
        }
    }

    /// Where the rules are configured, as `/status` names them.
    fn rules_key(&self) -> String {
        "sources.app_metrics[].metric_relabel_configs".to_owned()
    }
}

/// Prometheus' scrape limits, on the series as they are after relabeling
/// (0: no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// `sample_limit`, the same key as `max_series`.
    pub sample_limit: usize,
    pub label_limit: usize,
    pub label_name_length_limit: usize,
    pub label_value_length_limit: usize,
}

impl Limits {
    /// The limits that are set, by their config key.
    fn set(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            ("sample_limit", self.sample_limit),
            ("label_limit", self.label_limit),
            ("label_name_length_limit", self.label_name_length_limit),
            ("label_value_length_limit", self.label_value_length_limit),
        ]
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, _)| k)
    }

    /// The first limit `families` exceed, and how: the whole scrape is
    /// refused then, as Prometheus does. A series' labels are counted with
    /// `__name__` (whose value is the metric name) and `app`.
    pub fn check(&self, families: &[Family]) -> Result<(), (&'static str, String)> {
        let samples: usize = families.iter().map(|f| f.samples.len()).sum();
        if self.sample_limit > 0 && samples > self.sample_limit {
            return Err((
                "sample_limit",
                format!(
                    "{samples} series after relabeling exceed sample_limit {}; the whole scrape is refused",
                    self.sample_limit
                ),
            ));
        }
        for family in families {
            for sample in &family.samples {
                let name_len = family.name.len() + sample.suffix.len();
                let count = 1 + sample.labels.len();
                if self.label_limit > 0 && count > self.label_limit {
                    return Err((
                        "label_limit",
                        format!(
                            "a series of {}{} has {count} labels, over label_limit {}; the whole scrape is refused",
                            family.name, sample.suffix, self.label_limit
                        ),
                    ));
                }
                let names = std::iter::once(relabel::NAME.len())
                    .chain(sample.labels.iter().map(|(k, _)| k.len()));
                if let Some(long) = names.max().filter(|l| {
                    self.label_name_length_limit > 0 && *l > self.label_name_length_limit
                }) {
                    return Err((
                        "label_name_length_limit",
                        format!(
                            "a series of {}{} has a label name of {long} bytes, over label_name_length_limit {}; the whole scrape is refused",
                            family.name, sample.suffix, self.label_name_length_limit
                        ),
                    ));
                }
                let values =
                    std::iter::once(name_len).chain(sample.labels.iter().map(|(_, v)| v.len()));
                if let Some(long) = values.max().filter(|l| {
                    self.label_value_length_limit > 0 && *l > self.label_value_length_limit
                }) {
                    return Err((
                        "label_value_length_limit",
                        format!(
                            "a series of {}{} has a label value of {long} bytes, over label_value_length_limit {}; the whole scrape is refused",
                            family.name, sample.suffix, self.label_value_length_limit
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The application's families as vitals shows them: `app="<name>"` added to
/// every sample (an `app` label of the application's own becomes
/// `exported_app`), and families named `vitals_*` dropped so they never
/// shadow vitals' own. Returns the number of samples dropped.
pub fn relabel(families: &mut Vec<Family>, app: &str) -> usize {
    let dropped = drop_own_names(families);
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
        let result = self.scrape_round(out).await;
        let name = self.name.clone();
        let limits: Vec<&'static str> = self.limits.set().collect();
        for limit in limits {
            let n = self.exceeded.get(limit).copied().unwrap_or(0);
            out.add(
                &LIMIT_EXCEEDED,
                &[(APP_LABEL, name.as_str()), ("limit", limit)],
                n as f64,
            );
        }
        result
    }
}

impl AppMetricsSource {
    /// Scrape, parse, relabel, limits: `vitals_app_up` says how it went.
    async fn scrape_round(&mut self, out: &mut Output) -> Result<(), CollectError> {
        let labels = [(APP_LABEL, self.name.as_str())];
        let target = self
            .target
            .as_ref()
            .map_err(|e| CollectError::Other(e.clone()))?;
        // With rules, sample_limit counts the series left after them (as
        // in Prometheus): parsing is then bounded by max_bytes alone.
        let parse_bound = match self.limits.sample_limit {
            0 => usize::MAX,
            _ if !self.rules.is_empty() => usize::MAX,
            n => n,
        };
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
                parse::parse_exposition(&body.text, body.dialect, parse_bound).map_err(|e| {
                    if let parse::ParseError::TooManySeries { limit } = e {
                        *self.exceeded.entry("sample_limit").or_default() += 1;
                        return format!(
                            "sample_limit: more than max_series = {limit} series; the whole scrape is refused"
                        );
                    }
                    format!("parsing the body: {e}")
                })
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
        let mut dropped = relabel(&mut families, &self.name);
        if !self.rules.is_empty() {
            let mut stats = relabel::Stats::new(&self.rules_key(), &self.rules);
            relabel::apply(&mut families, &self.rules, |_| true, &mut stats);
            // A rule may not name a series into vitals' own namespace.
            dropped += drop_own_names(&mut families);
            out.add(
                &relabel::DROPPED_SERIES,
                &[("source", &format!("app/{}", self.name))],
                stats.dropped() as f64,
            );
            out.details = Some(serde_json::json!({ "relabel": [stats] }));
        }
        if let Err((limit, message)) = self.limits.check(&families) {
            *self.exceeded.entry(limit).or_default() += 1;
            out.add(&UP, &labels, 0.0);
            out.add(&SERIES, &labels, series as f64);
            return Err(CollectError::Other(message));
        }
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

/// Drops the families named `vitals_*`; returns the samples dropped.
fn drop_own_names(families: &mut Vec<Family>) -> usize {
    let mut dropped = 0;
    families.retain(|f| {
        let own = f.name.starts_with("vitals_");
        if own {
            dropped += f.samples.len();
        }
        !own
    });
    dropped
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

    #[test]
    fn limits_refuse_on_the_first_series_over_them() {
        let families = vec![
            family("queue_size", &[("queue", "mail"), ("app", "web")]),
            family("jobs", &[("app", "web")]),
        ];
        let none = Limits::default();
        assert_eq!(none.check(&families), Ok(()));
        // (limits, which refuses): at the bound passes, one past refuses.
        let cases = [
            (
                Limits {
                    sample_limit: 2,
                    ..none
                },
                None,
            ),
            (
                Limits {
                    sample_limit: 1,
                    ..none
                },
                Some("sample_limit"),
            ),
            (
                Limits {
                    label_limit: 3,
                    ..none
                },
                None,
            ),
            (
                Limits {
                    label_limit: 2,
                    ..none
                },
                Some("label_limit"),
            ),
            // `__name__` is the longest name.
            (
                Limits {
                    label_name_length_limit: 8,
                    ..none
                },
                None,
            ),
            (
                Limits {
                    label_name_length_limit: 7,
                    ..none
                },
                Some("label_name_length_limit"),
            ),
            // The metric name `queue_size` (10 bytes) is a label value.
            (
                Limits {
                    label_value_length_limit: 10,
                    ..none
                },
                None,
            ),
            (
                Limits {
                    label_value_length_limit: 9,
                    ..none
                },
                Some("label_value_length_limit"),
            ),
        ];
        for (limits, refused) in cases {
            let got = limits.check(&families).err().map(|(l, _)| l);
            assert_eq!(got, refused, "{limits:?}");
            assert_eq!(limits.set().count(), 1);
        }
        let (_, message) = Limits {
            label_limit: 2,
            ..none
        }
        .check(&families)
        .unwrap_err();
        assert_eq!(
            message,
            "a series of queue_size has 3 labels, over label_limit 2; the whole scrape is refused"
        );
    }
}
