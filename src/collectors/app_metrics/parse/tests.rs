use super::*;
use crate::metrics::{render, Format, Output};

/// Written by Debian 12's python3-prometheus-client 0.16.0 (`generate_latest`
/// and the OpenMetrics `generate_latest`) for the same registry: a
/// histogram, a counter with `code`, a gauge with an escaped HELP, a
/// summary and an info.
const PY_TEXT: &str =
    include_str!("../../../../tests/fixtures/app_metrics/python-client-0.16-text-0.0.4.txt");
const PY_OM: &str =
    include_str!("../../../../tests/fixtures/app_metrics/python-client-0.16-openmetrics.txt");

fn parse(text: &str, dialect: Dialect) -> Vec<Family> {
    parse_exposition(text, dialect, 1000).unwrap_or_else(|e| panic!("{e}"))
}

fn sorted(mut families: Vec<Family>) -> Vec<Family> {
    families.sort_by(|a, b| a.name.cmp(&b.name));
    families
}

fn family<'a>(families: &'a [Family], name: &str) -> &'a Family {
    families
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

#[test]
fn python_client_text_gives_the_model() {
    let f = parse(PY_TEXT, Dialect::Text);
    let h = family(&f, "http_request_duration_seconds");
    assert_eq!(h.kind, Kind::Histogram);
    assert_eq!(h.help, "Request latency.");
    assert_eq!(h.samples.len(), 7);
    let inf = &h.samples[4];
    assert_eq!(inf.suffix, "_bucket");
    assert_eq!(
        inf.labels,
        vec![
            ("le".to_owned(), "+Inf".to_owned()),
            ("method".to_owned(), "GET".to_owned())
        ]
    );
    assert_eq!(inf.value, 2.0);
    assert_eq!(h.samples[5].suffix, "_count");
    assert_eq!(h.samples[6].suffix, "_sum");
    assert_eq!(h.samples[6].value, 2.3);
    let c = family(&f, "http_requests_total");
    assert_eq!(c.kind, Kind::Counter);
    assert_eq!(c.help, "Requests by \"code\".");
    assert_eq!(c.samples[1].value, 2.0);
    assert_eq!(family(&f, "http_requests_created").kind, Kind::Gauge);
    let g = family(&f, "queue_size");
    assert_eq!(g.help, "Jobs waiting.\nSecond line \\ slash");
    assert_eq!(g.samples[0].value, 42.0);
    let s = family(&f, "job_seconds");
    assert_eq!(s.kind, Kind::Summary);
    assert_eq!(
        s.samples.iter().map(|s| s.suffix).collect::<Vec<_>>(),
        ["_count", "_sum"]
    );
    assert_eq!(family(&f, "build_info").kind, Kind::Gauge);
}

#[test]
fn openmetrics_and_text_of_the_same_registry_give_the_same_model() {
    assert_eq!(
        sorted(parse(PY_OM, Dialect::OpenMetrics)),
        sorted(parse(PY_TEXT, Dialect::Text))
    );
}

#[test]
fn rendering_the_model_and_parsing_it_again_changes_nothing() {
    for (body, dialect) in [(PY_TEXT, Dialect::Text), (PY_OM, Dialect::OpenMetrics)] {
        let families = sorted(parse(body, dialect));
        let output = Output {
            families: families.clone(),
            check_only: Vec::new(),
            ..Default::default()
        };
        for (format, again) in [
            (Format::Text, Dialect::Text),
            (Format::OpenMetrics, Dialect::OpenMetrics),
        ] {
            let text = render([&output], format);
            assert_eq!(sorted(parse(&text, again)), families, "{format:?}:\n{text}");
        }
    }
}

#[test]
fn openmetrics_rendering_of_app_kinds() {
    let families = parse(PY_TEXT, Dialect::Text);
    let output = Output {
        families,
        check_only: Vec::new(),
        ..Default::default()
    };
    let om = render([&output], Format::OpenMetrics);
    assert!(om.contains("# TYPE http_request_duration_seconds histogram\n"));
    assert!(om.contains("# TYPE http_requests counter\nhttp_requests_total{code=\"200\"} 7\n"));
    assert!(om.contains("# HELP http_requests Requests by \\\"code\\\".\n"));
    assert!(om.contains("# TYPE job_seconds summary\njob_seconds_count 1\n"));
}

#[test]
fn values_escapes_timestamps_and_exemplars() {
    let text = "# TYPE a gauge\n\
                a{path=\"C:\\\\dir\",q=\"say \\\"hi\\\"\",nl=\"x\\ny\",} NaN 1700000000000\n\
                a{path=\"b\"} +Inf\n\
                a{path=\"c\"} -Inf\n\
                a{path=\"d\"} 1.5e-3\n\
                b 3 # {trace_id=\"abc\"} 1 1700000000\n\
                c{} 7\n# EOF\n";
    let f = parse(text, Dialect::OpenMetrics);
    let a = family(&f, "a");
    assert!(a.samples[0].value.is_nan());
    assert_eq!(
        a.samples[0].labels,
        vec![
            ("path".to_owned(), "C:\\dir".to_owned()),
            ("q".to_owned(), "say \"hi\"".to_owned()),
            ("nl".to_owned(), "x\ny".to_owned()),
        ]
    );
    assert_eq!(a.samples[1].value, f64::INFINITY);
    assert_eq!(a.samples[2].value, f64::NEG_INFINITY);
    assert_eq!(a.samples[3].value, 0.0015);
    assert_eq!(family(&f, "b").samples[0].value, 3.0);
    assert_eq!(family(&f, "b").kind, Kind::Untyped);
    assert!(family(&f, "c").samples[0].labels.is_empty());
}

#[test]
fn summary_quantiles_and_text_counter_without_total() {
    // A Go client summary and a hand-written 0.0.4 counter without `_total`.
    let text = "# HELP rpc_seconds RPC latency.\n# TYPE rpc_seconds summary\n\
                rpc_seconds{quantile=\"0.5\"} 0.05\nrpc_seconds{quantile=\"0.99\"} 0.4\n\
                rpc_seconds_sum 12\nrpc_seconds_count 100\n\
                # TYPE jobs counter\njobs 5\n";
    let f = parse(text, Dialect::Text);
    let s = family(&f, "rpc_seconds");
    assert_eq!(s.kind, Kind::Summary);
    assert_eq!(s.samples.len(), 4);
    assert_eq!(s.samples[1].suffix, "");
    assert_eq!(s.samples[1].value, 0.4);
    assert_eq!(family(&f, "jobs").kind, Kind::Counter);
    let om = render(
        [&Output {
            families: f,
            check_only: Vec::new(),
            ..Default::default()
        }],
        Format::OpenMetrics,
    );
    assert!(om.contains("# TYPE jobs unknown\njobs 5\n"), "{om}");
}

#[test]
fn errors_name_the_line() {
    let cases: &[(&str, Dialect, &str)] = &[
        (
            "a 1\n{x=\"1\"} 2\n",
            Dialect::Text,
            "line 2: expected a metric name",
        ),
        (
            "a{x=\"1} 2\n",
            Dialect::Text,
            "line 1: unterminated value of label x",
        ),
        (
            "a{x=\"\\q\"} 2\n",
            Dialect::Text,
            "line 1: invalid escape `\\q`",
        ),
        (
            "a{x=\"1\",x=\"2\"} 2\n",
            Dialect::Text,
            "line 1: label x appears twice",
        ),
        ("a{x=1} 2\n", Dialect::Text, "line 1: expected `\"`"),
        (
            "a{1x=\"1\"} 2\n",
            Dialect::Text,
            "line 1: expected a label name",
        ),
        ("a\n", Dialect::Text, "line 1: expected a space and a value"),
        ("a \n", Dialect::Text, "line 1: sample a has no value"),
        ("a one\n", Dialect::Text, "line 1: invalid value \"one\""),
        ("a 1 soon\n", Dialect::Text, "line 1: invalid timestamp"),
        ("a 1 2 3\n", Dialect::Text, "line 1: unexpected text"),
        (
            "# TYPE a wibble\na 1\n",
            Dialect::Text,
            "line 1: unknown metric type",
        ),
        (
            "# TYPE a gauge\n# TYPE a counter\n",
            Dialect::Text,
            "line 2: second, different TYPE",
        ),
        (
            "# TYPE h histogram\nh_bucket 1\n",
            Dialect::Text,
            "line 2: histogram bucket h_bucket has no `le`",
        ),
        (
            "a 1\n# EOF\nb 2\n",
            Dialect::OpenMetrics,
            "line 3: content after `# EOF`",
        ),
        (
            "a 1\nb 2\n",
            Dialect::OpenMetrics,
            "the OpenMetrics body does not end with `# EOF`",
        ),
        (
            "\u{0}\u{1}garbage",
            Dialect::Text,
            "line 1: expected a metric name",
        ),
    ];
    for (body, dialect, want) in cases {
        let got = parse_exposition(body, *dialect, 100)
            .unwrap_err()
            .to_string();
        assert!(
            got.starts_with(want),
            "{body:?}: got {got:?}, want {want:?}"
        );
    }
}

#[test]
fn series_past_the_bound_refuse_the_body() {
    let body: String = (0..11).map(|i| format!("m{{i=\"{i}\"}} 1\n")).collect();
    assert_eq!(
        parse_exposition(&body, Dialect::Text, 11).map(|f| f[0].samples.len()),
        Ok(11)
    );
    assert_eq!(
        parse_exposition(&body, Dialect::Text, 10),
        Err(ParseError::TooManySeries { limit: 10 })
    );
    assert_eq!(
        ParseError::TooManySeries { limit: 10 }.to_string(),
        "more than max_series = 10 series; the whole scrape is refused"
    );
}

#[test]
fn gauge_named_like_a_suffix_stays_a_gauge() {
    let text = "# TYPE jobs_count gauge\njobs_count 3\n# TYPE x histogram\nx_bucket{le=\"+Inf\"} 1\nx_count 1\nx_sum 1\n";
    let f = parse(text, Dialect::Text);
    assert_eq!(family(&f, "jobs_count").kind, Kind::Gauge);
    assert_eq!(family(&f, "x").samples.len(), 3);
}
