//! Property tests of the PostgreSQL and PgBouncer value handling: admin
//! console tables with any columns in any order and any values, DSNs, table
//! names, the application top-N. Nothing panics, and what comes out keeps
//! its invariants (no secret in an error, sums preserved, quoting closed).

use proptest::prelude::*;
use vitals::collectors::pgbouncer::{emit, parse_databases, parse_pools, parse_stats, Table};
use vitals::collectors::postgres::backoff;
use vitals::collectors::postgres::queries::quote_table;
use vitals::collectors::postgres::top_applications;
use vitals::config::parse_dsn;
use vitals::metrics::{render, Format, Output};

/// Columns PgBouncer 1.18 prints in SHOW POOLS / DATABASES / STATS, plus
/// strangers, so tables of every version and of none are produced.
const COLUMNS: &[&str] = &[
    "database",
    "user",
    "cl_active",
    "cl_waiting",
    "cl_active_cancel_req",
    "sv_active",
    "sv_idle",
    "sv_used",
    "sv_tested",
    "sv_login",
    "maxwait",
    "maxwait_us",
    "pool_mode",
    "name",
    "host",
    "port",
    "pool_size",
    "min_pool_size",
    "reserve_pool",
    "max_connections",
    "current_connections",
    "paused",
    "disabled",
    "total_xact_count",
    "total_query_count",
    "total_received",
    "total_sent",
    "total_xact_time",
    "total_query_time",
    "total_wait_time",
    "avg_query_count",
    "new_column",
];

/// Values as the console prints them, mostly, so whole tables parse often;
/// the rest is what it never should print.
fn value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        30 => (0u64..10_000).prop_map(|n| Some(n.to_string())),
        1 => Just(None),
        1 => any::<u64>().prop_map(|n| Some(n.to_string())),
        1 => any::<f64>().prop_map(|f| Some(f.to_string())),
        1 => Just(Some("-1".to_owned())),
        1 => Just(Some("NaN".to_owned())),
        1 => Just(Some("inf".to_owned())),
        1 => Just(Some(String::new())),
        1 => "[ -~]{0,12}".prop_map(Some),
    ]
}

/// Key columns hold text.
const TEXT_COLUMNS: &[&str] = &["database", "user", "name", "pool_mode", "host"];

fn table() -> impl Strategy<Value = Table> {
    // Usually with the key columns, sometimes any subset at all.
    let columns = prop_oneof![
        4 => proptest::sample::subsequence(COLUMNS[2..].to_vec(), 0..COLUMNS.len() - 2).prop_map(|mut c| {
            c.splice(0..0, ["database", "user", "name"]);
            c
        }),
        1 => proptest::sample::subsequence(COLUMNS.to_vec(), 0..COLUMNS.len()),
    ];
    columns
        .prop_shuffle()
        .prop_flat_map(|columns| {
            let cells: Vec<BoxedStrategy<Option<String>>> = columns
                .iter()
                .map(|c| {
                    if TEXT_COLUMNS.contains(c) {
                        prop_oneof![9 => "[a-z_]{1,8}".prop_map(Some), 1 => Just(None)].boxed()
                    } else {
                        value().boxed()
                    }
                })
                .collect();
            (Just(columns), proptest::collection::vec(cells, 0..5))
        })
        .prop_map(|(columns, rows)| Table {
            columns: columns.into_iter().map(str::to_owned).collect(),
            rows,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn console_tables_never_panic_and_emit_finite_values(pools in table(), dbs in table(), stats in table()) {
        let parsed = (parse_pools(&pools), parse_databases(&dbs), parse_stats(&stats));
        if let (Ok(p), Ok(d), Ok(s)) = parsed {
            let mut out = Output::new();
            emit(&mut out, "bouncer", &p, &d, &s);
            for family in &out.families {
                for sample in &family.samples {
                    prop_assert!(sample.value.is_finite(), "{} = {}", family.name, sample.value);
                    prop_assert_eq!(sample.label("target"), Some("bouncer"));
                }
            }
            // The exposition of whatever came out is well formed line by line.
            let text = render([&out], Format::Text);
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                prop_assert!(line.starts_with("vitals_pgbouncer_"), "{line}");
            }
        }
    }

    #[test]
    fn unaligned_console_text_never_panics(text in "[ -~\n|]{0,300}") {
        let t = Table::from_unaligned(&text);
        let _ = (parse_pools(&t), parse_databases(&t), parse_stats(&t));
    }

    #[test]
    fn dsn_errors_never_contain_the_password(
        before in "[ -~]{0,30}",
        after in "[ -~]{0,30}",
        secret in "[A-Za-z0-9]{8,16}",
    ) {
        let secret = format!("Pw{secret}");
        for dsn in [
            format!("{before} password={secret} {after}"),
            format!("postgresql://u:{secret}@{before}/{after}"),
            format!("{before}password='{secret}{after}"),
        ] {
            if let Err(e) = parse_dsn(&dsn) {
                prop_assert!(!e.contains(&secret), "error {e:?} contains the password");
            }
        }
    }

    #[test]
    fn quoted_table_names_stay_closed(name in "[ -~]{1,40}") {
        let quoted = quote_table(&name);
        // Each part is "…" with inner quotes doubled: removing doubled
        // quotes leaves exactly two quotes per part.
        for part in quoted.split("\".\"") {
            let inner = part.trim_start_matches('"').trim_end_matches('"');
            prop_assert_eq!(inner.replace("\"\"", "").matches('"').count(), 0, "{}", quoted);
        }
    }

    #[test]
    fn top_applications_keeps_the_total_and_bounds_cardinality(
        counts in proptest::collection::vec(("[a-z]{0,6}", 0i64..10_000), 0..40),
        top in 0usize..15,
    ) {
        // Input as the query returns it: distinct names, most connections first.
        let mut apps: Vec<(String, i64)> = Vec::new();
        for (name, n) in counts {
            if !apps.iter().any(|(a, _)| *a == name) {
                apps.push((name, n));
            }
        }
        apps.sort_by_key(|a| std::cmp::Reverse(a.1));
        let kept = top_applications(&apps, top);
        prop_assert!(kept.len() <= top + 1);
        prop_assert_eq!(kept.iter().map(|(_, n)| n).sum::<i64>(), apps.iter().map(|(_, n)| n).sum::<i64>());
        let mut names: Vec<&String> = kept.iter().map(|(a, _)| a).collect();
        names.sort();
        names.dedup();
        prop_assert_eq!(names.len(), kept.len(), "a name appears twice: {:?}", kept);
    }

    #[test]
    fn backoff_grows_and_stays_bounded(failures in any::<u32>()) {
        let d = backoff(failures);
        prop_assert!(d.as_secs() >= 1 && d.as_secs() <= 30);
        prop_assert!(backoff(failures.saturating_add(1)) >= d);
    }
}

/// The table strategy does reach the emit path (a property that only ever
/// saw parse errors would assert nothing).
#[test]
fn generated_tables_often_parse() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (table(), table(), table());
    let mut parsed = 0;
    for _ in 0..300 {
        let (p, d, s) = strategy.new_tree(&mut runner).unwrap().current();
        if parse_pools(&p).is_ok() && parse_databases(&d).is_ok() && parse_stats(&s).is_ok() {
            parsed += 1;
        }
    }
    assert!(
        parsed >= 30,
        "only {parsed} of 300 generated table sets parsed"
    );
}
