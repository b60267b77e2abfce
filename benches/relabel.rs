//! What `metric_relabel_configs` cost an application source's round: parsing
//! a 20,000-series scrape and adding the `app` label, alone and followed by
//! ten rules of the kinds users write (drop families, keep by status,
//! rename a label, hashmod, labelmap, labeldrop, lowercase, keepequal).
//! The issue's bar: the rules cost less than parsing (round with rules /
//! round without ≤ 1.3).

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::Duration;
use vitals::collectors::app_metrics::{parse, relabel as app_label};
use vitals::config::RelabelConfig;
use vitals::relabel::{apply, Stats};

/// 200 families of 100 series, 4 labels each, as a JVM service exposes.
fn body() -> String {
    let mut out = String::new();
    for f in 0..200 {
        let prefix = ["jvm", "http", "db", "cache"][f % 4];
        let name = format!("{prefix}_family_{f}_total");
        out.push_str(&format!(
            "# HELP {name} A counter.\n# TYPE {name} counter\n"
        ));
        for s in 0..100 {
            out.push_str(&format!(
                "{name}{{handler=\"/api/v{}/items\",status=\"{}\",pod=\"web-{}\",tag_team=\"Team{}\"}} {}\n",
                s % 7,
                [200, 201, 404, 500][s % 4],
                s % 13,
                s % 3,
                s * 17 + f
            ));
        }
    }
    out
}

const RULES: &str = r#"
- {source_labels: [__name__], regex: 'jvm_family_1[0-9]+_total', action: drop}
- {source_labels: [status], regex: '(2..|5..)?', action: keep}
- {source_labels: [handler], regex: '/api/(v[0-9]+)/.*', target_label: api_version, replacement: '$1'}
- {source_labels: [pod], modulus: 8, target_label: shard, action: hashmod}
- {regex: 'tag_(.+)', replacement: 'label_${1}', action: labelmap}
- {regex: 'tag_.*', action: labeldrop}
- {source_labels: [label_team], target_label: team, action: lowercase}
- {regex: 'label_team', action: labeldrop}
- {source_labels: [app], target_label: app, action: keepequal}
- {source_labels: [__name__, status], regex: 'db_.*;500', action: drop}
"#;

fn bench(c: &mut Criterion) {
    let text = body();
    let rules: Vec<RelabelConfig> = serde_saphyr::from_str(RULES).unwrap();
    let round = |rules: &[RelabelConfig]| {
        let mut families =
            parse::parse_exposition(black_box(&text), parse::Dialect::Text, usize::MAX).unwrap();
        app_label(&mut families, "web");
        let mut stats = Stats::new("bench", rules);
        apply(&mut families, rules, |_| true, &mut stats);
        families
    };
    let with = round(&rules);
    let kept: usize = with.iter().map(|f| f.samples.len()).sum();
    eprintln!("20,000 series, {kept} kept by the rules");
    let mut group = c.benchmark_group("app_round_20000_series");
    group.bench_function("parse_no_rules", |b| b.iter(|| round(&[])));
    group.bench_function("parse_10_rules", |b| b.iter(|| round(&rules)));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).sample_size(20);
    targets = bench
}
criterion_main!(benches);
