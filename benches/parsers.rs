//! The kernel-file parsers and one round of each file-based source.
//!
//! Inputs are the committed fixtures (real files from Linux 6.18, see
//! tests/fixtures/*/README.md) plus a `/proc/stat` grown to 64 CPUs from the
//! fixture's own lines, since that file's size follows the machine. The
//! process round reads the live `/proc` for the benchmark's own pid (the
//! fixture tree lacks the `fd/` links).

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;
use vitals::collectors::cgroup::CgroupSource;
use vitals::collectors::host::{
    parse_loadavg, parse_meminfo, parse_pressure, parse_stat, parse_uptime, HostSource,
};
use vitals::collectors::process::ProcessSource;
use vitals::collectors::Source;
use vitals::config::{CgroupConfig, Paths, ProcessConfig, ProcessMatch};
use vitals::metrics::Output;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The fixture's /proc/stat with cpu0..cpu63 instead of cpu0..cpu1.
fn stat_64_cpus(stat: &str) -> String {
    let per_cpu: Vec<&str> = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .collect();
    let mut out = String::new();
    for line in stat.lines() {
        if line.starts_with("cpu0") {
            for i in 0..64 {
                let fields = per_cpu[i % per_cpu.len()]
                    .split_once(' ')
                    .map(|(_, f)| f)
                    .unwrap_or("");
                out.push_str(&format!("cpu{i} {fields}\n"));
            }
        } else if line.starts_with("cpu") && !line.starts_with("cpu ") {
            continue;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn bench_host_parsers(c: &mut Criterion) {
    let stat = read("host/proc/stat");
    let stat64 = stat_64_cpus(&stat);
    let meminfo = read("host/proc/meminfo");
    let loadavg = read("host/proc/loadavg");
    let uptime = read("host/proc/uptime");
    let pressure = read("host/proc/pressure/memory");
    assert!(parse_stat(&stat64).is_ok());

    let mut g = c.benchmark_group("host_parse");
    g.bench_function("stat_2_cpus", |b| b.iter(|| parse_stat(black_box(&stat))));
    g.bench_function("stat_64_cpus", |b| {
        b.iter(|| parse_stat(black_box(&stat64)))
    });
    g.bench_function("meminfo", |b| b.iter(|| parse_meminfo(black_box(&meminfo))));
    g.bench_function("loadavg", |b| b.iter(|| parse_loadavg(black_box(&loadavg))));
    g.bench_function("uptime", |b| b.iter(|| parse_uptime(black_box(&uptime))));
    g.bench_function("pressure", |b| {
        b.iter(|| parse_pressure(black_box(&pressure)))
    });
    g.finish();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One round of a source, from reading the files to filling an `Output`.
fn bench_rounds(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("round");

    let host_paths = Paths {
        proc: fixture("host/proc"),
        sys: fixture("host/proc"),
        cgroup: None,
    };
    let mut host = HostSource::new(&host_paths);
    let mut out = Output::new();
    rt.block_on(host.collect(&mut out))
        .expect("host fixture round");
    assert!(out.value("vitals_host_memory_total_bytes", &[]).is_some());
    g.bench_function("host_fixture", |b| {
        b.iter(|| {
            let mut out = Output::new();
            rt.block_on(host.collect(&mut out)).expect("host round");
            out
        })
    });

    for case in ["v2-limited", "v1", "hybrid"] {
        let paths = Paths {
            proc: fixture(&format!("cgroup/{case}/proc")),
            sys: fixture(&format!("cgroup/{case}/sys")),
            cgroup: None,
        };
        let mut source = CgroupSource::new(&paths, &CgroupConfig::default());
        let mut out = Output::new();
        rt.block_on(source.collect(&mut out))
            .unwrap_or_else(|e| panic!("cgroup {case} fixture round: {e}"));
        assert!(out.family("vitals_cgroup_memory_usage_bytes").is_some());
        g.bench_function(format!("cgroup_{case}_fixture"), |b| {
            b.iter(|| {
                let mut out = Output::new();
                rt.block_on(source.collect(&mut out)).expect("cgroup round");
                out
            })
        });
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("bench.pid");
    std::fs::write(&pidfile, format!("{}\n", std::process::id())).expect("pid file");
    let targets = [ProcessConfig {
        name: "bench".into(),
        matcher: ProcessMatch::Pidfile(pidfile),
    }];
    let mut process = ProcessSource::new(&Paths::default(), &targets);
    let mut out = Output::new();
    rt.block_on(process.collect(&mut out))
        .expect("process round");
    assert_eq!(
        out.value("vitals_process_up", &[("process", "bench")]),
        Some(1.0)
    );
    g.bench_function("process_pidfile_live_proc", |b| {
        b.iter(|| {
            let mut out = Output::new();
            rt.block_on(process.collect(&mut out))
                .expect("process round");
            out
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_host_parsers, bench_rounds
}
criterion_main!(benches);
