//! Property tests of every pure kernel-file parser: arbitrary bytes and
//! real files (the fixtures) mangled the way a broken or racing kernel
//! interface could — truncated, numbers replaced by huge, negative or
//! non-numbers, lines dropped or doubled — must give a value or an error,
//! never a panic; well-formed files round-trip; and the invariants the
//! metrics rely on hold (a limit is never 0, a period is never 0).
//! The cargo-fuzz targets in fuzz/ run the same parsers for longer.

mod common;

use proptest::prelude::*;
use vitals::collectors::{host, kernel_file_parsers, FuzzParser};

fn fixture(rel: &str) -> Vec<u8> {
    let path = common::fixture(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Real files for each parser, to mutate.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let v2 = "cgroup/v2-throttled-oom/sys/fs/cgroup";
    let v1 = "cgroup/v1/sys/fs/cgroup";
    let pid = "process/proc/12177";
    let info = fixture("redis/info-7.0.15-primary.txt");
    // The INFO reply as it comes off the wire: a RESP bulk string.
    let mut resp = format!("${}\r\n", info.len()).into_bytes();
    resp.extend_from_slice(&info);
    resp.extend_from_slice(b"\r\n");
    let mut seeds = vec![
        ("redis/info", info.clone()),
        ("redis/info", fixture("redis/info-7.0.15-replica.txt")),
        ("redis/resp", resp),
        (
            "redis/resp",
            b"*2\r\n:150\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
                .to_vec(),
        ),
        ("host/stat", fixture("host/proc/stat")),
        ("host/loadavg", fixture("host/proc/loadavg")),
        ("host/meminfo", fixture("host/proc/meminfo")),
        ("host/uptime", fixture("host/proc/uptime")),
        ("host/pressure", fixture("host/proc/pressure/cpu")),
        ("host/pressure", fixture(&format!("{v2}/memory.pressure"))),
        (
            "cgroup/mountinfo",
            fixture("cgroup/hybrid/proc/self/mountinfo"),
        ),
        ("cgroup/mountinfo", fixture("cgroup/v1/proc/self/mountinfo")),
        (
            "cgroup/proc_cgroup",
            fixture("cgroup/hybrid/proc/self/cgroup"),
        ),
        ("cgroup/u64", fixture(&format!("{v2}/memory.current"))),
        ("cgroup/max_or_u64", fixture(&format!("{v2}/memory.max"))),
        (
            "cgroup/max_or_u64",
            fixture("cgroup/v2-unlimited/sys/fs/cgroup/pids.max"),
        ),
        ("cgroup/key_values", fixture(&format!("{v2}/cpu.stat"))),
        ("cgroup/key_values", fixture(&format!("{v2}/memory.stat"))),
        (
            "cgroup/key_values",
            fixture(&format!("{v1}/memory/memory.oom_control")),
        ),
        (
            "cgroup/v1_cfs_quota",
            fixture(&format!("{v1}/cpu,cpuacct/cpu.cfs_quota_us")),
        ),
        (
            "cgroup/v1_limit_in_bytes",
            fixture(&format!("{v1}/memory/memory.limit_in_bytes")),
        ),
        ("cgroup/v2_cpu_max", fixture(&format!("{v2}/cpu.max"))),
        ("process/stat", fixture(&format!("{pid}/stat"))),
        ("process/status", fixture(&format!("{pid}/status"))),
        ("process/limits", fixture(&format!("{pid}/limits"))),
        ("process/btime", fixture("process/proc/stat")),
        ("process/comm", fixture(&format!("{pid}/comm"))),
        ("process/cmdline", fixture(&format!("{pid}/cmdline"))),
        (
            "process/pidfile",
            b"12177\n/var/lib/postgresql/15/main\n".to_vec(),
        ),
        (
            "app/text",
            fixture("app_metrics/python-client-0.16-text-0.0.4.txt"),
        ),
        (
            "app/openmetrics",
            fixture("app_metrics/python-client-0.16-openmetrics.txt"),
        ),
        // Every OpenMetrics type, exemplars, UNIT, timestamps, escapes (the
        // specification's own examples, shortened).
        (
            "app/openmetrics",
            b"# TYPE foo histogram\nfoo_bucket{le=\"0.1\"} 8 # {} 0.054\n\
              foo_bucket{le=\"1\"} 11 # {trace_id=\"KOO5S4vxi0o\"} 0.67\nfoo_bucket{le=\"+Inf\"} 17\n\
              foo_count 17\nfoo_sum 324789.3\nfoo_created 1520430000.123\n\
              # TYPE s_seconds summary\n# UNIT s_seconds seconds\ns_seconds_count{a=\"bb\"} 0 123\n\
              s_seconds_sum{a=\"bb\"} 0 123\ns_seconds_count{a=\"bb\"} 1 456\ns_seconds_sum{a=\"bb\"} 2 456\n\
              s_seconds{a=\"c\\z\",quantile=\"0.5\"} 1\n\
              # TYPE st stateset\nst{st=\"a\"} 1\nst{st=\"b\"} 0\n# TYPE i info\ni_info{v=\"8.2\"} 1\n\
              # TYPE g gaugehistogram\ng_bucket{le=\"+Inf\"} 4\ng_gcount 4\ng_gsum 3\n\
              # TYPE c counter\n# HELP c Say \\\"hi\\\".\nc_total 17 1520879607.789 # {a=\"b\"} 1\nc_created 1520430000.123\n# EOF\n"
                .to_vec(),
        ),
        (
            "app/text",
            b"# comment\r\n  a{x=\"\\z\"} 1 1000\r\na{x=\"\\z\"} 2 2000\nb 1\na{x=\"y\"} 3\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n"
                .to_vec(),
        ),
    ];
    // Every parser has at least one seed, and every seed parses as it is.
    let parsers = kernel_file_parsers();
    for (name, _) in &parsers {
        assert!(seeds.iter().any(|(n, _)| n == name), "no seed for {name}");
    }
    for (name, bytes) in &seeds {
        let parse = parser(&parsers, name);
        assert!(parse(bytes).is_ok(), "seed for {name} does not parse");
    }
    seeds.sort_by_key(|(n, _)| *n);
    seeds
}

fn parser(parsers: &[FuzzParser], name: &str) -> fn(&[u8]) -> Result<String, String> {
    parsers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no parser {name}"))
}

/// Words that replace a token of a real file.
const NASTY: &[&str] = &[
    "",
    "-1",
    "-0",
    "+5",
    "0",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "1e309",
    "-1e309",
    "NaN",
    "inf",
    "0x10",
    "max",
    "kB",
    "=",
    "total=",
    "some",
    "full",
    "-",
    ":",
    "(",
    ")",
    "\u{0}",
    "\u{fffd}",
    "é",
];

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    ReplaceToken(usize, usize),
    DeleteLine(usize),
    DuplicateLine(usize),
    Insert(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0..NASTY.len()).prop_map(|(t, w)| Mutation::ReplaceToken(t, w)),
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
    ]
}

fn apply(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    match m {
        Mutation::Truncate(at) => {
            let at = at % (bytes.len() + 1);
            bytes.truncate(at);
            bytes
        }
        Mutation::Insert(at, extra) => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, extra.iter().copied());
            bytes
        }
        Mutation::ReplaceToken(t, w) => {
            // Token boundaries: runs of bytes that are not whitespace.
            let spans: Vec<(usize, usize)> = {
                let mut spans = Vec::new();
                let mut start = None;
                for (i, b) in bytes.iter().enumerate() {
                    match (b.is_ascii_whitespace(), start) {
                        (false, None) => start = Some(i),
                        (true, Some(s)) => {
                            spans.push((s, i));
                            start = None;
                        }
                        _ => {}
                    }
                }
                if let Some(s) = start {
                    spans.push((s, bytes.len()));
                }
                spans
            };
            if spans.is_empty() {
                return bytes;
            }
            let (s, e) = spans[t % spans.len()];
            // Keep a `key=` prefix half the time, so values inside
            // key=value pairs get replaced too.
            let keep = bytes[s..e]
                .iter()
                .position(|&b| b == b'=')
                .filter(|_| t % 2 == 0)
                .map_or(s, |p| s + p + 1);
            bytes.splice(keep..e, NASTY[*w].bytes());
            bytes
        }
        Mutation::DeleteLine(l) | Mutation::DuplicateLine(l) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
            if lines.is_empty() {
                return bytes;
            }
            let i = l % lines.len();
            if matches!(m, Mutation::DeleteLine(_)) {
                lines.remove(i);
            } else {
                lines.insert(i, lines[i]);
            }
            lines.concat().into_bytes()
        }
    }
}

/// Checks that hold for any input a parser accepts.
fn invariants(name: &str, result: &Result<String, String>) {
    let Ok(value) = result else { return };
    match name {
        // An unlimited limit is absent, never 0.
        "cgroup/v1_limit_in_bytes" | "cgroup/v1_cfs_quota" => {
            assert_ne!(value, "Some(0)", "{name}")
        }
        "cgroup/v2_cpu_max" => assert!(!value.contains("period_us: 0 "), "{name}: {value}"),
        "process/pidfile" => assert_ne!(value, "Some(0)", "{name}"),
        "redis/info" => assert!(!value.contains("maxmemory: Some(0.0)"), "{name}: {value}"),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for (name, parse) in kernel_file_parsers() {
            let result = parse(&bytes);
            invariants(name, &result);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[ -~\n\t]{0,400}") {
        for (name, parse) in kernel_file_parsers() {
            let result = parse(text.as_bytes());
            invariants(name, &result);
        }
    }

    #[test]
    fn mangled_real_files_never_panic(
        seed in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let seeds = seeds();
        let (name, original) = &seeds[seed % seeds.len()];
        let bytes = mutations.iter().fold(original.clone(), apply);
        let parse = parser(&kernel_file_parsers(), name);
        let result = parse(&bytes);
        invariants(name, &result);
    }

    #[test]
    fn stat_round_trips(ticks in proptest::array::uniform10(any::<u64>()), btime in proptest::option::of(any::<u64>())) {
        let mut text = format!(
            "cpu  {}\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1 2 3\nctxt 99\n",
            ticks.map(|t| t.to_string()).join(" ")
        );
        if let Some(b) = btime {
            text.push_str(&format!("btime {b}\n"));
        }
        let stat = host::parse_stat(&text).unwrap();
        let c = stat.cpu;
        prop_assert_eq!(
            [c.user, c.nice, c.system, c.idle, c.iowait, c.irq, c.softirq, c.steal, c.guest, c.guest_nice],
            ticks
        );
        prop_assert_eq!(stat.boot_time, btime);
        // Guest time is never counted twice, and nothing goes negative.
        let exclusive = c.exclusive_ticks();
        prop_assert!(exclusive[0] <= c.user && exclusive[1] <= c.nice);
    }

    #[test]
    fn meminfo_converts_kib_and_refuses_overflow(total in any::<u64>(), available in proptest::option::of(any::<u64>())) {
        let mut text = format!("MemTotal:       {total} kB\nMemFree:          12 kB\n");
        if let Some(a) = available {
            text.push_str(&format!("MemAvailable:   {a} kB\n"));
        }
        let fits = |kb: u64| kb.checked_mul(1024);
        match (fits(total), available.map(fits)) {
            (Some(t), None) => {
                let m = host::parse_meminfo(&text).unwrap();
                prop_assert_eq!(m.total_bytes, t);
                prop_assert_eq!(m.available_bytes, None);
            }
            (Some(t), Some(Some(a))) => {
                let m = host::parse_meminfo(&text).unwrap();
                prop_assert_eq!((m.total_bytes, m.available_bytes), (t, Some(a)));
            }
            // A value that does not fit in bytes is an error, not a wrap.
            _ => prop_assert!(host::parse_meminfo(&text).is_err()),
        }
    }

    #[test]
    fn loadavg_and_uptime_round_trip(a in 0u32..10_000_000, b in 0u32..10_000_000, c in 0u32..10_000_000) {
        let text = format!("{}.{:02} {}.{:02} {}.{:02} 3/1234 5678\n", a / 100, a % 100, b / 100, b % 100, c / 100, c % 100);
        let l = host::parse_loadavg(&text).unwrap();
        let close = |x: f64, hundredths: u32| (x - f64::from(hundredths) / 100.0).abs() < 1e-6;
        prop_assert!(close(l.one, a) && close(l.five, b) && close(l.fifteen, c), "{text} -> {l:?}");
        let up = host::parse_uptime(&format!("{}.{:02} 1.00\n", a / 100, a % 100)).unwrap();
        prop_assert!(close(up, a));
    }

    #[test]
    fn pressure_round_trips(
        avgs in proptest::array::uniform3(0u32..10_000),
        total in any::<u64>(),
        with_full in any::<bool>(),
    ) {
        let line = |kind: &str| format!(
            "{kind} avg10={}.{:02} avg60={}.{:02} avg300={}.{:02} total={total}\n",
            avgs[0] / 100, avgs[0] % 100, avgs[1] / 100, avgs[1] % 100, avgs[2] / 100, avgs[2] % 100
        );
        let mut text = line("some");
        if with_full {
            text.push_str(&line("full"));
        }
        let p = host::parse_pressure(&text).unwrap();
        let some = p.some.unwrap();
        prop_assert_eq!(some.total_micros, total);
        prop_assert!((some.avg300 - f64::from(avgs[2]) / 100.0).abs() < 1e-6);
        prop_assert_eq!(p.full.is_some(), with_full);
    }

    #[test]
    fn cgroup_single_values_round_trip(n in any::<u64>()) {
        let parsers = kernel_file_parsers();
        let text = format!("{n}\n");
        prop_assert_eq!(parser(&parsers, "cgroup/u64")(text.as_bytes()), Ok(n.to_string()));
        prop_assert_eq!(parser(&parsers, "cgroup/max_or_u64")(text.as_bytes()), Ok(format!("Some({n})")));
        prop_assert_eq!(parser(&parsers, "cgroup/max_or_u64")(b"max\n"), Ok("None".to_owned()));
        // One past u64::MAX is an error, not a wrap or a saturation.
        let past = format!("{}0\n", u64::MAX);
        prop_assert!(parser(&parsers, "cgroup/u64")(past.as_bytes()).is_err());
    }

    #[test]
    fn key_value_files_keep_every_pair(pairs in proptest::collection::vec(("[a-z_]{1,20}", any::<u64>()), 0..20)) {
        let text: String = pairs.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        let out = parser(&kernel_file_parsers(), "cgroup/key_values")(text.as_bytes()).unwrap();
        for (k, v) in &pairs {
            let pair = format!("(\"{k}\", {v})");
            prop_assert!(out.contains(&pair), "{} missing from {}", pair, out);
        }
    }

    #[test]
    fn process_stat_takes_fields_after_the_last_paren(comm in "[ -~]{0,15}", utime in any::<u64>(), threads in any::<u64>()) {
        let text = format!(
            "12177 ({comm}) S 1 12177 12177 0 -1 4194560 1029 0 0 0 {utime} 7 0 0 20 0 {threads} 0 12345 100000 300\n"
        );
        let out = parser(&kernel_file_parsers(), "process/stat")(text.as_bytes()).unwrap();
        let utime_field = format!("utime: {utime},");
        let threads_field = format!("num_threads: {threads},");
        prop_assert!(out.contains(&utime_field), "{}", out);
        prop_assert!(out.contains(&threads_field), "{}", out);
    }
}

/// The config and web config parsers on text cargo-fuzz found to panic the
/// config's key-path lookup (a multi-byte character before the error).
#[test]
fn config_parsers_regressions() {
    for text in [
        "\u{677}\0\r",
        "é: [\n",
        "sources:\n  hôst: {enabled: true}\n",
    ] {
        let e = vitals::config::parse_str(text, "vitals.yaml").err();
        assert!(e.is_some(), "{text:?} should be refused");
        let _ = vitals::server::webconfig::parse_str(
            text,
            "web.yml",
            std::path::Path::new("/nonexistent"),
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// YAML-ish text with non-ASCII characters: an error with a position or
    /// a config, never a panic.
    #[test]
    fn config_parsers_never_panic(text in "([a-z_]{1,8}|[:\\-\\[\\]{},\"' \n]|é|ٷ|\u{0}|[0-9]{1,3}){0,40}") {
        let _ = vitals::config::parse_str(&text, "vitals.yaml");
        let _ = vitals::server::webconfig::parse_str(&text, "web.yml", std::path::Path::new("/nonexistent"));
    }
}

proptest! {
    /// An application's body as vitals re-exposes it parses back to the same
    /// model in both formats: any label value (quotes, backslashes, new
    /// lines, any Unicode) and any value but NaN (which equals nothing); a
    /// carriage return in HELP is left out.
    #[test]
    fn app_exposition_round_trips(
        series in proptest::collection::vec(
            ("[a-z_][a-z0-9_]{0,8}", ".{0,12}", any::<f64>().prop_filter("not NaN", |v| !v.is_nan())),
            1..20,
        )
    ) {
        use vitals::collectors::app_metrics::parse::{parse_exposition, Dialect};
        use vitals::metrics::{render, Format, Output};
        let mut out = Output::new();
        for (i, (label, value, v)) in series.iter().enumerate() {
            out.families.push(vitals::metrics::Family {
                name: format!("app_gauge_{i}"),
                help: format!("Help with \\ and \"{value}\"."),
                kind: vitals::metrics::Kind::Gauge,
                samples: vec![vitals::metrics::Sample {
                    labels: vec![(format!("l{label}"), value.clone())],
                    value: *v,
                    suffix: "",
                }],
            });
        }
        for (format, dialect) in [(Format::Text, Dialect::Text), (Format::OpenMetrics, Dialect::OpenMetrics)] {
            let text = render([&out], format);
            let mut back = parse_exposition(&text, dialect, 100).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            back.sort_by(|a, b| a.name.cmp(&b.name));
            let mut want = out.families.clone();
            want.sort_by(|a, b| a.name.cmp(&b.name));
            // A carriage return has no escape in HELP: it is left out.
            for f in &mut want {
                f.help = f.help.replace('\r', "");
            }
            prop_assert_eq!(back, want);
        }
    }
}

/// Arbitrary application expositions, through the app parser, the app
/// source's relabeling and vitals' renderer, must give an exposition that
/// is valid in both formats whatever the application wrote: no repeated
/// series, one TYPE per family, no interleaved family or series, no sample
/// name two families could both give, valid names, and nothing invented.
mod exposition {
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};
    use vitals::collectors::app_metrics::parse::{parse_exposition, Dialect};
    use vitals::collectors::app_metrics::relabel;
    use vitals::metrics::{render, Format, Kind, Output};

    /// Family names that collide with each other's sample names in one way
    /// or another, and `solo`, which collides with nothing.
    const NAMES: &[&str] = &[
        "x",
        "x_total",
        "x_count",
        "x_sum",
        "x_bucket",
        "x_created",
        "y_total",
        "y_created",
        "y",
        "solo",
        "vitals_own",
    ];
    const KINDS: &[&str] = &["gauge", "counter", "histogram", "summary", "untyped", ""];
    const LABELS: &[&str] = &["a", "b", "app", "le", "quantile"];
    /// Label values as written in the body: escapes known and unknown,
    /// quotes, new lines, Unicode, empty.
    const VALUES: &[&str] = &[
        "",
        "v",
        "\\z",
        "\\\"q\\\"",
        "x\\ny",
        "\\\\",
        "é ٷ",
        "+Inf",
        "0.5",
        "a b,c",
    ];

    /// A sample: its suffix (by index), labels (name, value indices), value
    /// (negative: NaN).
    type Line = (usize, Vec<(usize, usize)>, i32);

    #[derive(Debug, Clone)]
    pub struct Fam {
        name: usize,
        kind: usize,
        samples: Vec<Line>,
    }

    fn fam() -> impl Strategy<Value = Fam> {
        (
            0..NAMES.len(),
            0..KINDS.len(),
            proptest::collection::vec(
                (
                    0..4usize,
                    proptest::collection::vec((0..LABELS.len(), 0..VALUES.len()), 0..3),
                    -2i32..5,
                ),
                0..6,
            ),
        )
            .prop_map(|(name, kind, samples)| Fam {
                name,
                kind,
                samples,
            })
    }

    pub fn body() -> impl Strategy<Value = Vec<Fam>> {
        proptest::collection::vec(fam(), 1..7)
    }

    /// The text 0.0.4 body of `families`: each family's TYPE line (if any)
    /// and its samples, with its kind's suffixes.
    pub fn write(families: &[Fam]) -> String {
        let mut out = String::new();
        for f in families {
            let name = NAMES[f.name];
            let kind = KINDS[f.kind];
            if !kind.is_empty() {
                out.push_str(&format!(
                    "# HELP {name} Help of {name}.\n# TYPE {name} {kind}\n"
                ));
            }
            let suffixes: &[&str] = match kind {
                "histogram" => &["_bucket", "_bucket", "_sum", "_count"],
                "summary" => &["", "_sum", "_count", ""],
                _ => &["", "", "", ""],
            };
            for (suffix, labels, value) in &f.samples {
                let mut seen = HashSet::new();
                let pairs: Vec<String> = labels
                    .iter()
                    .filter(|(l, _)| seen.insert(*l))
                    .map(|(l, v)| format!("{}=\"{}\"", LABELS[*l], VALUES[*v]))
                    .collect();
                let value = if *value < 0 {
                    "NaN".to_owned()
                } else {
                    value.to_string()
                };
                out.push_str(&format!(
                    "{name}{}{{{}}} {value}\n",
                    suffixes[*suffix],
                    pairs.join(",")
                ));
            }
        }
        out
    }

    /// The series of an exposition, as Prometheus identifies them: the
    /// sample name and the label set without empty values.
    type Series = (String, Vec<(String, String)>);

    /// A strict reader of what vitals renders (it writes only `\\`, `\"`
    /// and `\n` escapes): every rule above, or the reason it is broken.
    /// Returns the series.
    pub fn strict(text: &str, format: Format) -> Result<HashSet<Series>, String> {
        let om = format == Format::OpenMetrics;
        let body = if om {
            text.strip_suffix("# EOF\n")
                .ok_or("no `# EOF` at the end")?
        } else {
            text
        };
        let mut types: HashMap<String, String> = HashMap::new();
        let mut owner: HashMap<String, String> = HashMap::new();
        let mut ended: HashSet<String> = HashSet::new();
        let mut current: Option<String> = None;
        let mut series: HashSet<Series> = HashSet::new();
        let mut groups_ended: HashSet<Vec<(String, String)>> = HashSet::new();
        let mut group: Option<Vec<(String, String)>> = None;
        for (i, line) in body.lines().enumerate() {
            let fail = |m: String| format!("line {}: {m}: {line:?}", i + 1);
            if let Some(meta) = line.strip_prefix("# ") {
                let mut words = meta.splitn(3, ' ');
                let keyword = words.next().unwrap_or("");
                let name = words.next().unwrap_or("").to_owned();
                if !valid_name(&name, true) {
                    return Err(fail("invalid family name".into()));
                }
                if current.as_deref() != Some(&name) {
                    if ended.contains(&name) {
                        return Err(fail("family again after another".into()));
                    }
                    if let Some(done) = current.replace(name.clone()) {
                        ended.insert(done);
                    }
                    groups_ended.clear();
                    group = None;
                }
                match keyword {
                    "TYPE" => {
                        let kind = words.next().unwrap_or("").to_owned();
                        if types.insert(name, kind).is_some() {
                            return Err(fail("second TYPE".into()));
                        }
                    }
                    "HELP" => {}
                    _ => return Err(fail("a comment that is no metadata".into())),
                }
                continue;
            }
            let family = current
                .clone()
                .ok_or_else(|| fail("sample before any TYPE".into()))?;
            let kind = types.get(&family).cloned().unwrap_or_default();
            let (name, labels) = sample(line).map_err(fail)?;
            let allowed: Vec<String> = match (om, kind.as_str()) {
                (true, "counter") => vec!["_total", "_created"],
                (false, "histogram") => vec!["_bucket", "_sum", "_count"],
                (true, "histogram") => vec!["_bucket", "_sum", "_count", "_created"],
                (false, "summary") => vec!["", "_sum", "_count"],
                (true, "summary") => vec!["", "_sum", "_count", "_created"],
                _ => vec![""],
            }
            .into_iter()
            .map(|s| format!("{family}{s}"))
            .collect();
            if !allowed.contains(&name) {
                return Err(fail(format!("sample outside its family {family} ({kind})")));
            }
            if let Some(other) = owner.insert(name.clone(), family.clone()) {
                if other != family {
                    return Err(fail(format!("sample name of family {other} too")));
                }
            }
            if kind == "histogram"
                && name.ends_with("_bucket")
                && !labels.iter().any(|(k, _)| k == "le")
            {
                return Err(fail("bucket without le".into()));
            }
            let key: Vec<(String, String)> = {
                let mut l: Vec<(String, String)> = labels
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .cloned()
                    .collect();
                l.sort();
                l
            };
            // The series (labels but le and quantile) must be together.
            let point_label = match kind.as_str() {
                "histogram" => "le",
                "summary" => "quantile",
                _ => "",
            };
            let point: Vec<(String, String)> = key
                .iter()
                .filter(|(k, _)| k != point_label)
                .cloned()
                .collect();
            if group.as_ref() != Some(&point) {
                if groups_ended.contains(&point) {
                    return Err(fail("series interleaved".into()));
                }
                if let Some(done) = group.replace(point) {
                    groups_ended.insert(done);
                }
            }
            if !series.insert((name, key)) {
                return Err(fail("repeated series".into()));
            }
        }
        // OpenMetrics: no family's name is another's possible sample name.
        if om {
            let mut reserved: HashMap<String, String> = HashMap::new();
            for (family, kind) in &types {
                let suffixes: &[&str] = match kind.as_str() {
                    "counter" => &["", "_total", "_created"],
                    "histogram" => &["", "_bucket", "_sum", "_count", "_created"],
                    "summary" => &["", "_sum", "_count", "_created"],
                    _ => &[""],
                };
                for s in suffixes {
                    if let Some(other) = reserved.insert(format!("{family}{s}"), family.clone()) {
                        return Err(format!(
                            "families {other} and {family} clash on {family}{s}"
                        ));
                    }
                }
            }
        }
        Ok(series)
    }

    fn valid_name(name: &str, colon: bool) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }

    /// `name{labels} value`, strictly as vitals writes it.
    fn sample(line: &str) -> Result<(String, Vec<(String, String)>), String> {
        let end = line.find(['{', ' ']).ok_or("no value")?;
        let name = &line[..end];
        if !valid_name(name, true) {
            return Err("invalid metric name".into());
        }
        let mut rest = &line[end..];
        let mut labels: Vec<(String, String)> = Vec::new();
        if let Some(mut s) = rest.strip_prefix('{') {
            loop {
                let eq = s.find('=').ok_or("label without =")?;
                let label = &s[..eq];
                if !valid_name(label, false) || labels.iter().any(|(k, _)| k == label) {
                    return Err(format!("invalid or repeated label name {label:?}"));
                }
                s = s[eq + 1..]
                    .strip_prefix('"')
                    .ok_or("label value without \"")?;
                let mut value = String::new();
                let mut chars = s.char_indices();
                let close = loop {
                    match chars.next().ok_or("unterminated label value")? {
                        (i, '"') => break i,
                        (_, '\\') => match chars.next().ok_or("lone backslash")?.1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            c => return Err(format!("escape \\{c} vitals never writes")),
                        },
                        (_, '\n') => return Err("raw new line".into()),
                        (_, c) => value.push(c),
                    }
                };
                labels.push((label.to_owned(), value));
                s = &s[close + 1..];
                if let Some(after) = s.strip_prefix(',') {
                    s = after;
                } else {
                    rest = s.strip_prefix('}').ok_or("expected , or }")?;
                    break;
                }
            }
        }
        let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
        if !(value == "NaN" || value == "+Inf" || value == "-Inf" || value.parse::<f64>().is_ok()) {
            return Err(format!("invalid value {value:?}"));
        }
        Ok((name.to_owned(), labels))
    }

    /// Parses `body` as an app's text 0.0.4 and renders it as vitals shows
    /// it, beside the same body from a second app; `None` when the parser
    /// refuses the body.
    /// Also returns the series of `solo` that are valid as their kind
    /// wants (a bucket's `le` a number, a quantile's `quantile` one between
    /// 0 and 1, neither on another sample), which no rule may drop.
    pub fn through_vitals(body: &str) -> Option<(Output, HashSet<Series>, HashSet<Series>)> {
        let mut out = Output::new();
        for app in ["web", "api"] {
            let mut families = parse_exposition(body, Dialect::Text, 10_000).ok()?;
            relabel(&mut families, app);
            out.families.extend(families);
        }
        let input: HashSet<Series> = out
            .families
            .iter()
            .flat_map(|f| {
                f.samples.iter().map(move |s| {
                    let mut l: Vec<(String, String)> = s
                        .labels
                        .iter()
                        .filter(|(_, v)| !v.is_empty())
                        .cloned()
                        .collect();
                    l.sort();
                    (format!("{}{}", f.name, s.suffix), l)
                })
            })
            .collect();
        let number = |v: Option<&str>| v.and_then(|v| v.parse::<f64>().ok());
        let solo: HashSet<Series> =
            out.families
                .iter()
                .filter(|f| f.name == "solo")
                .flat_map(|f| {
                    f.samples
                        .iter()
                        .filter(move |s| match (f.kind, s.suffix) {
                            (Kind::Histogram, "_bucket") => {
                                number(s.label("le")).is_some_and(|v| !v.is_nan())
                            }
                            (Kind::Summary, "") => number(s.label("quantile"))
                                .is_some_and(|v| (0.0..=1.0).contains(&v)),
                            // A histogram's or summary's series has no label
                            // `le` or `quantile` of its own.
                            (Kind::Histogram, _) => s.label("le").is_none(),
                            (Kind::Summary, _) => s.label("quantile").is_none(),
                            _ => true,
                        })
                        .map(move |s| {
                            let mut l: Vec<(String, String)> = s
                                .labels
                                .iter()
                                .filter(|(_, v)| !v.is_empty())
                                .cloned()
                                .collect();
                            l.sort();
                            (format!("{}{}", f.name, s.suffix), l)
                        })
                })
                .collect();
        Some((out, input, solo))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn any_app_exposition_renders_valid(families in body()) {
            let body = write(&families);
            let Some((out, input, solo)) = through_vitals(&body) else {
                return Ok(()); // refused: nothing of it is rendered
            };
            for (format, dialect) in [(Format::Text, Dialect::Text), (Format::OpenMetrics, Dialect::OpenMetrics)] {
                let text = render([&out], format);
                let series = strict(&text, format)
                    .map_err(|e| TestCaseError::fail(format!("{format:?}: {e}\nbody:\n{body}\nrendered:\n{text}")))?;
                // Nothing invented; `solo` collides with nothing, so it is all there.
                prop_assert!(series.is_subset(&input), "{:?}", series.difference(&input).collect::<Vec<_>>());
                for s in &solo {
                    prop_assert!(series.contains(s), "{format:?}: {s:?} lost\n{text}");
                }
                // vitals' own parser reads it back, OpenMetrics to the letter.
                let back = parse_exposition(&text, dialect, 10_000)
                    .map_err(|e| TestCaseError::fail(format!("{format:?}: {e}\nrendered:\n{text}")))?;
                let n: usize = back.iter().map(|f| f.samples.len()).sum();
                prop_assert_eq!(n, series.len());
            }
        }
    }
}

/// A handful of the expositions above through Prometheus' own parser:
/// `promtool check metrics` (Debian's prometheus 2.42) must find no
/// parsing error (its lint warnings, such as a missing HELP, are not
/// counted).
#[test]
fn generated_expositions_pass_promtool() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    use std::io::Write as _;
    let mut runner = TestRunner::deterministic();
    let mut checked = 0;
    while checked < 8 {
        let families = exposition::body().new_tree(&mut runner).unwrap().current();
        let Some((out, _, _)) = exposition::through_vitals(&exposition::write(&families)) else {
            continue;
        };
        let text = vitals::metrics::render([&out], vitals::metrics::Format::Text);
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool (Debian package prometheus)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let done = child.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&done.stdout).into_owned()
            + &String::from_utf8_lossy(&done.stderr);
        // Exit 1 is an error; 3 only lint problems.
        assert_ne!(done.status.code(), Some(1), "{said}\n{text}");
        assert!(!said.contains("error"), "{said}\n{text}");
        checked += 1;
    }
}
