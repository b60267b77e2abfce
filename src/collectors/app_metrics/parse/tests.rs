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
                # TYPE b counter\n\
                b_total 3 # {trace_id=\"abc\"} 1 1700000000\n\
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
    assert_eq!(family(&f, "b_total").samples[0].value, 3.0);
    assert_eq!(family(&f, "b_total").kind, Kind::Counter);
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

/// Bodies both formats' documents call valid, each with what it must give:
/// (body, dialect, family, sample index, its labels, its value).
#[test]
fn valid_bodies_are_accepted() {
    type Want<'a> = (&'a str, usize, &'a [(&'a str, &'a str)], f64);
    let cases: &[(&str, Dialect, Want<'_>)] = &[
        // The OpenMetrics 1.0 specification's complete example.
        (
            "# TYPE acme_http_router_request_seconds summary\n\
             # UNIT acme_http_router_request_seconds seconds\n\
             # HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.\n\
             acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n\
             acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0\n\
             acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0\n\
             acme_http_router_request_seconds_sum{path=\"/api/v2\",method=\"POST\"} 479.3\n\
             acme_http_router_request_seconds_count{path=\"/api/v2\",method=\"POST\"} 34.0\n\
             acme_http_router_request_seconds_created{path=\"/api/v2\",method=\"POST\"} 1605281325.0\n\
             # TYPE go_goroutines gauge\n\
             # HELP go_goroutines Number of goroutines that currently exist.\n\
             go_goroutines 69\n\
             # TYPE process_cpu_seconds counter\n\
             # UNIT process_cpu_seconds seconds\n\
             # HELP process_cpu_seconds Total user and system CPU time spent in seconds.\n\
             process_cpu_seconds_total 4.20072246e+06\n\
             # EOF\n",
            Dialect::OpenMetrics,
            ("acme_http_router_request_seconds", 3, &[("path", "/api/v2"), ("method", "POST")], 34.0),
        ),
        // Its histogram with exemplars (and its two spaces before a value).
        (
            "# TYPE foo histogram\n\
             foo_bucket{le=\"0.01\"} 0\n\
             foo_bucket{le=\"0.1\"} 8 # {} 0.054\n\
             foo_bucket{le=\"1\"} 11 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n\
             foo_bucket{le=\"10\"} 17 # {trace_id=\"oHg5SJYRHA0\"} 9.8 1520879607.789\n\
             foo_bucket{le=\"+Inf\"} 17\n\
             foo_count 17\n\
             foo_sum 324789.3\n\
             foo_created  1520430000.123\n\
             # EOF",
            Dialect::OpenMetrics,
            ("foo", 2, &[("le", "1")], 11.0),
        ),
        // A summary's MetricPoints at two timestamps: the later one is kept.
        (
            "# TYPE foo_seconds summary\n\
             # UNIT foo_seconds seconds\n\
             foo_seconds_count{a=\"bb\"} 0 123\n\
             foo_seconds_sum{a=\"bb\"} 0 123\n\
             foo_seconds_count{a=\"bb\"} 5 456\n\
             foo_seconds_sum{a=\"bb\"} 7 456\n\
             foo_seconds_count{a=\"ccc\"} 0 123\n\
             foo_seconds_sum{a=\"ccc\"} 0 123\n\
             foo_seconds_count{a=\"ccc\"} 0 456\n\
             foo_seconds_sum{a=\"ccc\"} 0 456\n\
             # EOF\n",
            Dialect::OpenMetrics,
            ("foo_seconds", 1, &[("a", "bb")], 7.0),
        ),
        (
            "# TYPE foo stateset\nfoo{entity=\"controller\",foo=\"a\"} 1.0\nfoo{entity=\"controller\",foo=\"bb\"} 0.0\n# EOF\n",
            Dialect::OpenMetrics,
            ("foo", 1, &[("entity", "controller"), ("foo", "bb")], 0.0),
        ),
        (
            "# TYPE foo info\nfoo_info{entity=\"replica\",name=\"prettier name\",version=\"8.1.9\"} 1.0\n# EOF\n",
            Dialect::OpenMetrics,
            ("foo_info", 0, &[("entity", "replica"), ("name", "prettier name"), ("version", "8.1.9")], 1.0),
        ),
        (
            "# TYPE foo gaugehistogram\nfoo_bucket{le=\"0.01\"} 20.0\nfoo_bucket{le=\"+Inf\"} 42.0\nfoo_gcount 42.0\nfoo_gsum 3289.3\n# EOF\n",
            Dialect::OpenMetrics,
            ("foo_gcount", 0, &[], 42.0),
        ),
        // A counter with a created sample and timestamps; empty HELP and
        // UNIT count as absent; a family with no samples.
        (
            "# TYPE foo counter\n# HELP foo \n# UNIT foo \nfoo_total 17.0 1520879607.789 # {a=\"b\"} 1\nfoo_created 1520430000.123 1520879607.789\n# TYPE bar gauge\n# EOF\n",
            Dialect::OpenMetrics,
            ("foo_total", 0, &[], 17.0),
        ),
        // An unknown escape is kept as written, in both formats.
        (
            "a{x=\"C:\\zip\\f\",y=\"\\\\\"} 1\n# EOF\n",
            Dialect::OpenMetrics,
            ("a", 0, &[("x", "C:\\zip\\f"), ("y", "\\")], 1.0),
        ),
        (
            "a{x=\"\\z\"} 1\n",
            Dialect::Text,
            ("a", 0, &[("x", "\\z")], 1.0),
        ),
        // The text format document's own example (shortened).
        (
            "# HELP http_requests_total The total number of HTTP requests.\n\
             # TYPE http_requests_total counter\n\
             http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
             http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
             \n\
             # Escaping in label values:\n\
             msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
             \n\
             # Minimalistic line:\n\
             metric_without_timestamp_and_labels 12.47\n\
             \n\
             # A weird metric from before the epoch:\n\
             something_weird{problem=\"division by zero\"} +Inf -3982045\n\
             \n\
             # HELP rpc_duration_seconds A summary of the RPC duration in seconds.\n\
             # TYPE rpc_duration_seconds summary\n\
             rpc_duration_seconds{quantile=\"0.01\"} 3102\n\
             rpc_duration_seconds_sum 1.7560473e+07\n\
             rpc_duration_seconds_count 2693\n",
            Dialect::Text,
            (
                "msdos_file_access_time_seconds",
                0,
                &[("path", "C:\\DIR\\FILE.TXT"), ("error", "Cannot find file:\n\"FILE.TXT\"")],
                1.458255915e9,
            ),
        ),
        // Text 0.0.4: comments, blank lines, leading blanks, CRLF.
        (
            "# just a comment\r\n\r\n   # TYPE a gauge\r\n\t a{x=\"1\"} 2\r\n\n",
            Dialect::Text,
            ("a", 0, &[("x", "1")], 2.0),
        ),
        // Text 0.0.4: a series repeated without timestamps keeps the
        // first, as Prometheus 2.42 does; written with its labels in
        // another order, or with an empty label, it is the same series.
        (
            "a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\na{x=\"1\",y=\"2\",z=\"\"} 3\n",
            Dialect::Text,
            ("a", 0, &[("x", "1"), ("y", "2")], 1.0),
        ),
        // With timestamps, the latest one's value, wherever it is.
        (
            "a 1 2000\na 3 3000\na 2 1000\n",
            Dialect::Text,
            ("a", 0, &[], 3.0),
        ),
        // Text 0.0.4 does not require a family's samples to be together.
        (
            "a{x=\"1\"} 1\nb 1\na{x=\"2\"} 2\n",
            Dialect::Text,
            ("a", 1, &[("x", "2")], 2.0),
        ),
    ];
    for (body, dialect, (name, index, labels, value)) in cases {
        let families = parse_exposition(body, *dialect, 100)
            .unwrap_or_else(|e| panic!("{body:?} refused: {e}"));
        let f = family(&families, name);
        let sample = f
            .samples
            .get(*index)
            .unwrap_or_else(|| panic!("{body:?}: {f:?}"));
        let want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(sample.labels, want, "{body:?}");
        assert_eq!(sample.value, *value, "{body:?}");
    }
    // Each repeated series above is kept once.
    let f = parse(
        "a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\n",
        Dialect::Text,
    );
    assert_eq!(f[0].samples.len(), 1);
}

#[test]
fn help_escapes_follow_each_format() {
    let text = parse("# HELP a Say \\\"hi\\\" \\\\ \\z\\n.\na 1\n", Dialect::Text);
    // Text 0.0.4 escapes only `\\` and `\n` in HELP.
    assert_eq!(text[0].help, "Say \\\"hi\\\" \\ \\z\n.");
    let om = parse(
        "# HELP a Say \\\"hi\\\" \\\\ \\z\\n.\na 1\n# EOF\n",
        Dialect::OpenMetrics,
    );
    assert_eq!(om[0].help, "Say \"hi\" \\ \\z\n.");
}

/// Every rule of the two documents a parser can check, broken once.
#[test]
fn invalid_bodies_are_refused_with_line_and_rule() {
    let om = Dialect::OpenMetrics;
    let text = Dialect::Text;
    let cases: &[(&str, Dialect, &str)] = &[
        (
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n# EOF\n",
            om,
            "line 5: family a again after another: OpenMetrics families must not be interleaved",
        ),
        (
            "a 1\nb 1\n# HELP a late\n# EOF\n",
            om,
            "line 3: family a again after another",
        ),
        (
            "# TYPE a gauge\na 1\n# HELP a late\n# EOF\n",
            om,
            "line 3: # HELP a after the family's samples",
        ),
        ("# TYPE a gauge\n# TYPE a gauge\n# EOF\n", om, "line 2: second TYPE for a"),
        ("# HELP a x\n# HELP a y\n# EOF\n", om, "line 2: second HELP for a"),
        (
            "# UNIT a_seconds seconds\n# UNIT a_seconds seconds\n# EOF\n",
            om,
            "line 2: second UNIT for a_seconds",
        ),
        (
            "# TYPE foo counter\n# UNIT foo seconds\n# EOF\n",
            om,
            "line 2: UNIT seconds of foo: the family's name must end with _seconds",
        ),
        (
            "# UNIT foo_seconds seconds\n# TYPE foo_seconds info\n# EOF\n",
            om,
            "line 2: UNIT seconds of foo_seconds: an info or stateset has no unit",
        ),
        ("# UNIT foo_s s!\n# EOF\n", om, "line 1: invalid unit"),
        (
            "# TYPE foo counter\nfoo 1\n# EOF\n",
            om,
            "line 2: sample foo of a family typed counter: its samples are named foo_total, foo_created",
        ),
        (
            "# TYPE h histogram\nh 1\n# EOF\n",
            om,
            "line 2: sample h of a family typed histogram",
        ),
        (
            "# TYPE i info\ni 1\n# EOF\n",
            om,
            "line 2: sample i of a family typed info: its samples are named i_info",
        ),
        (
            "# TYPE foo counter\nfoo_total 1\n# TYPE foo_created gauge\nfoo_created 1\n# EOF\n",
            om,
            "line 3: family foo_created clashes with family foo",
        ),
        (
            "# TYPE foo_count gauge\nfoo_count 1\n# TYPE foo histogram\n# EOF\n",
            om,
            "line 3: family foo clashes with family foo_count",
        ),
        ("a 1\na 2\n# EOF\n", om, "line 2: series a given twice without a later timestamp"),
        ("a 1 2\na 2 1\n# EOF\n", om, "line 2: sample a at 1 after a point of the same series at a later time"),
        (
            "# TYPE s summary\ns_count{a=\"b\"} 0 123\ns_count{a=\"c\"} 0 123\ns_count{a=\"b\"} 0 456\n# EOF\n",
            om,
            "line 4: series s_count{a=\"b\"} again after another series of s",
        ),
        (
            "# TYPE s summary\ns_count 0 123\ns_count 0 456\ns_sum 0 123\n# EOF\n",
            om,
            "line 4: sample s_sum at 123 after a point of the same series at a later time",
        ),
        ("# hello\n# EOF\n", om, "line 1: \"# hello\" is no OpenMetrics line"),
        ("a 1\n\n# EOF\n", om, "line 2: empty line"),
        ("a 1\r\n# EOF\n", om, "line 1: carriage return"),
        (
            "# TYPE g gauge\ng 1 # {} 1\n# EOF\n",
            om,
            "line 2: exemplar on g: only a counter's _total and a histogram's _bucket",
        ),
        (
            "# TYPE c counter\nc_total 1 # x 1\n# EOF\n",
            om,
            "line 2: exemplar of c_total: expected `{`",
        ),
        (
            "# TYPE c counter\nc_total 1 # {} x\n# EOF\n",
            om,
            "line 2: exemplar of c_total: invalid value",
        ),
        (
            &format!(
                "# TYPE c counter\nc_total 1 # {{trace_id=\"{}\"}} 1\n# EOF\n",
                "x".repeat(121)
            ),
            om,
            "line 2: exemplar of c_total: its labels have 129 characters",
        ),
        (
            "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n# EOF\n",
            om,
            "line 2: sample h_bucket needs a numeric `le` label",
        ),
        (
            "# TYPE s summary\ns{quantile=\"1.5\"} 1\n# EOF\n",
            om,
            "line 2: sample s needs a numeric `quantile` label between 0 and 1",
        ),
        (
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count{le=\"+Inf\"} 1\n# EOF\n",
            om,
            "line 3: sample h_count has a `le` label, which only a bucket sample has",
        ),
        (
            "# TYPE s summary\ns_sum{quantile=\"0.5\"} 1\n# EOF\n",
            om,
            "line 2: sample s_sum has a `quantile` label, which only a quantile sample has",
        ),
        (
            "# TYPE s stateset\ns{x=\"a\"} 1\n# EOF\n",
            om,
            "line 2: stateset sample s has no label s",
        ),
        ("# TYPE a untyped\n# EOF\n", om, "line 1: unknown metric type \"untyped\""),
        ("a 1 soon\n# EOF\n", om, "line 1: invalid timestamp \"soon\" of a (OpenMetrics wants seconds)"),
        ("# EOF\n\n", om, "line 2: content after `# EOF`"),
        (
            "a 1\n# TYPE a gauge\n",
            text,
            "line 2: # TYPE a after its first sample",
        ),
        (
            "a 1 1.5\n",
            text,
            "line 1: invalid timestamp \"1.5\" of a (text 0.0.4 wants integer milliseconds)",
        ),
        ("a 1 # {} 1\n", text, "line 1: invalid timestamp \"#\""),
        (
            "# TYPE h histogram\nh_sum 1\nh 2\n",
            text,
            "line 3: sample h would be untyped in the histogram family h",
        ),
    ];
    for (body, dialect, want) in cases {
        let got = parse_exposition(body, *dialect, 100)
            .map(|f| format!("accepted: {f:?}"))
            .unwrap_or_else(|e| e.to_string());
        assert!(
            got.starts_with(want),
            "{body:?}: got {got:?}, want {want:?}"
        );
    }
}
