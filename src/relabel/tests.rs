//! The rule table: Prometheus YAML rules, a label set, and what Prometheus
//! 2.42's `relabel.Process` makes of it (hashmod values computed with
//! Python's hashlib: the last 8 bytes of the MD5, big-endian, modulo).

use super::*;
use crate::metrics::{Family, Kind, Output, Sample};

fn rules(yaml: &str) -> Vec<RelabelConfig> {
    let rules: Vec<RelabelConfig> =
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    crate::config::relabel::check_rules(&rules).unwrap_or_else(|e| panic!("{yaml}: {e:?}"));
    rules
}

/// `a=1,b=2` as labels (values hold no comma).
fn labels(text: &str) -> Labels {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').expect("k=v");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn show(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn rule_table() {
    // (rules, input, output or None when dropped)
    let table: &[(&str, &str, Option<&str>)] = &[
        // replace
        ("- {source_labels: [a], target_label: b}", "a=x", Some("a=x,b=x")),
        ("- {source_labels: [a], regex: '(.)-(.*)', target_label: b, replacement: '$2_$1'}", "a=x-yz", Some("a=x-yz,b=x")),
        // `$2_` is the group named `2_` (absent), as in Go: write `${2}_`.
        ("- {source_labels: [a], regex: '(.)-(.*)', target_label: b, replacement: '${2}_$1'}", "a=x-yz", Some("a=x-yz,b=yz_x")),
        ("- {source_labels: [a], regex: nomatch, target_label: b}", "a=x", Some("a=x")),
        ("- {source_labels: [missing], target_label: a}", "a=1,c=2", Some("c=2")),
        ("- {source_labels: [a, b], separator: '-', target_label: c}", "a=1,b=2", Some("a=1,b=2,c=1-2")),
        ("- {source_labels: [a, b], target_label: c}", "a=1", Some("a=1,c=1;")),
        ("- {source_labels: [a], target_label: 'x_${1}', replacement: v}", "a=foo", Some("a=foo,x_foo=v")),
        ("- {source_labels: [a], target_label: '${1}', replacement: v}", "a=1bad", Some("a=1bad")),
        ("- {source_labels: [a], regex: '(a)', target_label: b, replacement: '$1x'}", "a=a,b=old", Some("a=a")),
        ("- {source_labels: [a], regex: '(a)', target_label: b, replacement: '${1}x'}", "a=a", Some("a=a,b=ax")),
        ("- {source_labels: [a], target_label: b, replacement: '$$1'}", "a=a", Some("a=a,b=$1")),
        ("- {source_labels: [a], regex: '(?P<first>[a-z]+)-.*', target_label: b, replacement: '${first}!'}", "a=web-1", Some("a=web-1,b=web!")),
        ("- {target_label: env, replacement: prod}", "a=1", Some("a=1,env=prod")),
        ("- {source_labels: [a], regex: b, target_label: c, replacement: hit}", "a=abc", Some("a=abc")),
        ("- {source_labels: [__name__], regex: '(foo|bar)_(.*)', target_label: kind, replacement: '$1'}", "__name__=bar_total", Some("__name__=bar_total,kind=bar")),
        ("- {source_labels: [__name__], regex: 'old_(.*)', target_label: __name__, replacement: 'new_$1'}", "__name__=old_x,a=1", Some("__name__=new_x,a=1")),
        ("- {source_labels: [a], regex: '(a)', target_label: b, replacement: '$3'}", "a=a,b=1", Some("a=a")),
        ("- {source_labels: [a], target_label: b, replacement: 'x$-y'}", "a=a", Some("a=a,b=x$-y")),
        ("- {source_labels: [a], target_label: b, replacement: 'x${1'}", "a=a", Some("a=a,b=x${1")),
        ("- {source_labels: [a], target_label: b, replacement: '${01}-$01'}", "a=a", Some("a=a,b=-")),
        ("- {source_labels: [a], regex: '(.*)', target_label: b, replacement: ''}", "a=a,b=2", Some("a=a")),
        // keep / drop
        ("- {source_labels: [a], regex: 'x|y', action: keep}", "a=y", Some("a=y")),
        ("- {source_labels: [a], regex: 'x|y', action: keep}", "a=xy", None),
        ("- {source_labels: [missing], regex: '', action: keep}", "a=1", Some("a=1")),
        ("- {source_labels: [__name__], regex: 'go_.*', action: drop}", "__name__=go_gc", None),
        ("- {source_labels: [__name__], regex: 'go_.*', action: drop}", "__name__=http_go", Some("__name__=http_go")),
        ("- {source_labels: [a, b], regex: '1;2', action: drop}", "a=1,b=2", None),
        ("- {source_labels: [a], regex: '1', action: keep}\n- {source_labels: [b], regex: '2', action: drop}", "a=1,b=2", None),
        ("- {source_labels: [a], regex: '1', action: KeEp}", "a=1", Some("a=1")),
        ("- {source_labels: [a], regex: '(?i)foo', action: keep}", "a=FOO", Some("a=FOO")),
        // keepequal / dropequal
        ("- {source_labels: [a], target_label: b, action: keepequal}", "a=1,b=1", Some("a=1,b=1")),
        ("- {source_labels: [a], target_label: b, action: keepequal}", "a=1,b=2", None),
        ("- {source_labels: [a], target_label: b, action: dropequal}", "a=1,b=1", None),
        ("- {source_labels: [a], target_label: b, action: dropequal}", "c=1", None),
        ("- {source_labels: [a, c], target_label: b, action: keepequal}", "a=1,b=1;2,c=2", Some("a=1,b=1;2,c=2")),
        // hashmod
        ("- {source_labels: [a], modulus: 1000, target_label: shard, action: hashmod}", "a=foo", Some("a=foo,shard=696")),
        ("- {source_labels: [a, b], modulus: 16, target_label: shard, action: hashmod}", "a=a,b=b", Some("a=a,b=b,shard=10")),
        ("- {source_labels: [a], modulus: 10, target_label: shard, action: hashmod}", "c=1", Some("c=1,shard=8")),
        ("- {source_labels: [pod], modulus: 2, target_label: s, action: hashmod}\n- {source_labels: [s], regex: '1', action: keep}", "pod=web-1", None),
        ("- {source_labels: [pod], modulus: 2, target_label: s, action: hashmod}\n- {source_labels: [s], regex: '1', action: keep}", "pod=web-2", Some("pod=web-2,s=1")),
        // labelmap
        ("- {regex: 'tag_(.+)', replacement: '${1}', action: labelmap}", "tag_env=prod,x=1", Some("env=prod,tag_env=prod,x=1")),
        ("- {regex: '(a)', action: labelmap}", "a=1,b=2", Some("a=1,b=2")),
        ("- {regex: 'x_(.*)', action: labelmap}", "b=1,x_b=2", Some("b=2,x_b=2")),
        ("- {regex: '(?:p|q)_(.*)', action: labelmap}", "p_a=1,q_a=2", Some("a=2,p_a=1,q_a=2")),
        ("- {regex: 'tag_(.+)', replacement: 'k_${1}_v', action: labelmap}", "tag_x=1", Some("k_x_v=1,tag_x=1")),
        // labeldrop / labelkeep
        ("- {regex: 'tmp_.*', action: labeldrop}", "a=1,tmp_x=2,tmp_y=3", Some("a=1")),
        ("- {regex: 'a', action: labeldrop}", "a=1,ab=2", Some("ab=2")),
        ("- {regex: '__name__|job', action: labelkeep}", "__name__=m,job=j,pod=p", Some("__name__=m,job=j")),
        ("- {regex: 'pod', action: labelkeep}", "__name__=m,pod=p", Some("pod=p")),
        // lowercase / uppercase, with Go's simple case mappings
        ("- {source_labels: [a], target_label: b, action: lowercase}", "a=FooBAR", Some("a=FooBAR,b=foobar")),
        ("- {source_labels: [a], target_label: a, action: uppercase}", "a=straße", Some("a=STRAßE")),
        ("- {source_labels: [a], target_label: b, action: lowercase}", "a=İSTANBUL", Some("a=İSTANBUL,b=istanbul")),
        ("- {source_labels: [a], target_label: b, action: lowercase}", "a=ΟΔΟΣ", Some("a=ΟΔΟΣ,b=οδοσ")),
        ("- {source_labels: [a], target_label: b, action: uppercase}", "a=ᾀǆ", Some("a=ᾀǆ,b=ᾈǄ")),
        ("- {source_labels: [missing], target_label: b, action: uppercase}", "a=1,b=x", Some("a=1")),
        // RE2's ASCII-only Perl classes
        ("- {source_labels: [a], regex: '\\d+', action: drop}", "a=٣", Some("a=٣")),
        ("- {source_labels: [a], regex: '\\d+', action: drop}", "a=3", None),
        ("- {source_labels: [a], regex: '\\w+', action: keep}", "a=café", None),
        ("- {source_labels: [a], regex: '\\QA.B\\E', action: keep}", "a=A.B", Some("a=A.B")),
        ("- {source_labels: [a], regex: '\\QA.B\\E', action: keep}", "a=AxB", None),
        // empty values are absent labels
        ("- {source_labels: [a], regex: '', action: keep}", "a=,b=1", Some("b=1")),
    ];
    assert!(table.len() >= 40);
    for (yaml, input, want) in table {
        let got = process(labels(input), &rules(yaml));
        assert_eq!(
            got.as_ref().map(show).as_deref(),
            *want,
            "rules {yaml} on {input}"
        );
    }
}

#[test]
fn newline_is_no_dot() {
    // `^(?:.*)$` in Go: `.` does not match a newline (no `s` flag in 2.42).
    let keep = rules("- {source_labels: [a], regex: '.*', action: keep}");
    let input = vec![("a".to_owned(), "x\ny".to_owned())];
    assert_eq!(process(input, &keep), None);
}

/// (suffix, labels, value)
type TestSample<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

fn family(name: &str, kind: Kind, samples: &[TestSample<'_>]) -> Family {
    Family {
        name: name.into(),
        help: format!("{name} help"),
        kind,
        samples: samples
            .iter()
            .map(|(suffix, labels, value)| Sample {
                labels: labels
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
                value: *value,
                suffix: match *suffix {
                    "_bucket" => "_bucket",
                    "_count" => "_count",
                    "_sum" => "_sum",
                    _ => "",
                },
            })
            .collect(),
    }
}

#[test]
fn apply_drops_renames_counts_and_dedups() {
    let mut families = vec![
        family(
            "req_seconds",
            Kind::Histogram,
            &[
                ("_bucket", &[("le", "1"), ("pod", "a")], 1.0),
                ("_bucket", &[("le", "+Inf"), ("pod", "a")], 2.0),
                ("_sum", &[("pod", "a")], 0.5),
                ("_count", &[("pod", "a")], 2.0),
            ],
        ),
        family(
            "jobs",
            Kind::Gauge,
            &[
                ("", &[("pod", "a")], 1.0),
                ("", &[("pod", "b")], 2.0),
                ("", &[("queue", "x")], 3.0),
            ],
        ),
        family("untouched", Kind::Gauge, &[("", &[], 9.0)]),
    ];
    let rules = rules(
        "
- {source_labels: [__name__], regex: 'req_seconds_sum', action: drop}
- {source_labels: [__name__], regex: 'req_seconds_count', target_label: __name__, replacement: requests_total}
- {regex: pod, action: labeldrop}
- {source_labels: [queue], regex: x, target_label: __name__, replacement: ''}
",
    );
    let mut stats = Stats::new("test", &rules);
    apply(&mut families, &rules, |f| f.name != "untouched", &mut stats);
    // The _sum dropped by rule 0; the two `jobs` series collapsed into one
    // by the labeldrop; the `queue=x` series lost its name.
    assert_eq!(stats.dropped_by_rule, vec![1, 0, 0, 0]);
    assert_eq!(stats.duplicates, 1);
    assert_eq!(stats.invalid_name, 1);
    assert_eq!(stats.dropped(), 3);
    let find = |name: &str| families.iter().find(|f| f.name == name).unwrap();
    let hist = find("req_seconds");
    assert_eq!(hist.samples.len(), 2);
    assert_eq!(hist.samples[0].suffix, "_bucket");
    assert_eq!(hist.samples[0].labels, vec![("le".into(), "1".into())]);
    let jobs = find("jobs");
    assert_eq!(jobs.samples.len(), 1);
    assert_eq!(
        jobs.samples[0].value, 1.0,
        "the first of two duplicates stays"
    );
    let renamed = find("requests_total");
    assert_eq!(renamed.kind, Kind::Untyped);
    assert_eq!(renamed.samples[0].suffix, "");
    assert_eq!(renamed.samples[0].value, 2.0);
    assert_eq!(find("untouched").samples.len(), 1);
    // No rules: nothing changes, not even label order.
    let before = families.clone();
    apply(&mut families, &[], |_| true, &mut Stats::default());
    assert_eq!(families, before);
}

#[test]
fn expand_follows_go() {
    let re = regex::Regex::new("^(?:(?P<x>a)(b)?)$").unwrap();
    let caps = re.captures("a").unwrap();
    for (template, want) in [
        ("$1", "a"),
        ("$1x", ""),
        ("${1}x", "ax"),
        ("$x", "a"),
        ("${x}", "a"),
        ("$2", ""),
        ("$9", ""),
        ("$$", "$"),
        ("$", "$"),
        ("a$", "a$"),
        ("$-", "$-"),
        ("${", "${"),
        ("${}", "${}"),
        ("${x-y}", "${x-y}"),
        ("$0", "a"),
        ("$01", ""),
    ] {
        assert_eq!(expand(&caps, template), want, "{template}");
    }
}

#[test]
fn own_stage_relabels_only_vitals_families_and_reports() {
    let mut out = Output::new();
    out.gauge("vitals_pg_up", "Up.", &[("target", "a")], 1.0);
    out.gauge(
        "vitals_pg_statement_calls",
        "Calls.",
        &[("target", "a"), ("queryid", "1")],
        5.0,
    );
    out.families
        .push(family("app_series", Kind::Gauge, &[("", &[], 1.0)]));
    out.details = Some(serde_json::json!({"top": 1}));
    let rules = rules(
        "- {source_labels: [__name__], regex: 'vitals_pg_statement_.*|app_series', action: drop}",
    );
    own_stage(&mut out, "postgres/a", &rules);
    assert!(out.family("vitals_pg_statement_calls").is_none());
    assert!(
        out.family("app_series").is_some(),
        "not vitals' own: untouched"
    );
    assert_eq!(out.value("vitals_pg_up", &[("target", "a")]), Some(1.0));
    assert_eq!(
        out.value(DROPPED_SERIES.name, &[("source", "postgres/a")]),
        Some(1.0)
    );
    let details = out.details.as_ref().unwrap();
    assert_eq!(details["top"], 1);
    assert_eq!(details["relabel"][0]["dropped_by_rule"][0], 1);
    assert_eq!(details["relabel"][0]["rules_key"], "metric_relabel_configs");
    // A second stage on the same round adds to the gauge.
    let more =
        super::tests::rules("- {source_labels: [__name__], regex: 'vitals_pg_up', action: drop}");
    own_stage(&mut out, "postgres/a", &more);
    assert_eq!(
        out.value(DROPPED_SERIES.name, &[("source", "postgres/a")]),
        Some(2.0)
    );
}
