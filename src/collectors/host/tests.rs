//! Table tests of the host parsers on real file contents, and the source run
//! against the fixture tree `tests/fixtures/host/proc`.
//!
//! Unless a case says otherwise, contents come from Linux 6.18.44 (x86_64),
//! the same machine the fixture tree was copied from.

use super::*;
use std::path::PathBuf;

/// A real /proc/stat (Linux 6.18.44, x86_64; the intr line cut short).
const STAT_6_18: &str = "\
cpu  15382 0 6880 581352 732 0 69 13 0 0
cpu0 6812 0 3099 292272 103 0 21 3 0 0
cpu1 8569 0 3780 289079 628 0 48 9 0 0
intr 330230 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 15 0 0 0 0 605 172 0 61
ctxt 499373
btime 1795416728
processes 11714
procs_running 1
procs_blocked 0
softirq 228705 0 41300 4 4459 65659 0 139 64569 0 52575
";

/// node_exporter's collector/fixtures/proc/stat (first lines): a host with
/// guest and guest_nice time, which the machine above has none of.
const STAT_WITH_GUEST: &str = "\
cpu  301854 612 111922 8979004 3552 2 3944 0 44 36
cpu0 44490 19 21045 1087069 220 1 3410 0 2 1
cpu1 47869 23 16474 1110787 591 0 46 0 3 2
intr 8885917 17 0 0 0 0 0 0 0 1 79281
ctxt 38014093
btime 1418183276
processes 26442
procs_running 2
procs_blocked 1
";

fn cpu(v: [u64; 10]) -> CpuTimes {
    CpuTimes::from(v)
}

#[test]
fn parse_stat_table() {
    let ok: &[(&str, &str, Stat)] = &[
        (
            "Linux 6.18.44",
            STAT_6_18,
            Stat {
                cpu: cpu([15382, 0, 6880, 581352, 732, 0, 69, 13, 0, 0]),
                boot_time: Some(1795416728),
            },
        ),
        (
            "node_exporter fixture with guest time",
            STAT_WITH_GUEST,
            Stat {
                cpu: cpu([301854, 612, 111922, 8979004, 3552, 2, 3944, 0, 44, 36]),
                boot_time: Some(1418183276),
            },
        ),
        (
            "no btime: no boot time, not an error",
            "cpu  15382 0 6880 581352 732 0 69 13 0 0\n",
            Stat {
                cpu: cpu([15382, 0, 6880, 581352, 732, 0, 69, 13, 0, 0]),
                boot_time: None,
            },
        ),
        (
            "an eleventh field from a future kernel is ignored",
            "cpu  1 2 3 4 5 6 7 8 9 10 11\nbtime 5\n",
            Stat {
                cpu: cpu([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
                boot_time: Some(5),
            },
        ),
    ];
    for (name, text, want) in ok {
        assert_eq!(parse_stat(text).as_ref(), Ok(want), "{name}");
    }

    let bad: &[(&str, &str, &str)] = &[
        ("truncated cpu line", "cpu  15382 0 6880\n", "has 3 values"),
        (
            "nine fields (Linux before 2.6.33, no guest_nice)",
            "cpu  15382 0 6880 581352 732 0 69 13 0\n",
            "has 9 values",
        ),
        (
            "non-number",
            "cpu  15382 0 6880 581352 x 0 69 13 0 0\n",
            "iowait: \"x\"",
        ),
        (
            "negative",
            "cpu  15382 -1 6880 581352 732 0 69 13 0 0\n",
            "nice: \"-1\"",
        ),
        (
            "only per-CPU lines",
            "cpu0 6812 0 3099 292272 103 0 21 3 0 0\n",
            "no aggregate cpu line",
        ),
        ("empty", "", "no aggregate cpu line"),
        (
            "btime garbage",
            "cpu  1 2 3 4 5 6 7 8 9 10\nbtime soon\n",
            "btime",
        ),
    ];
    for (name, text, needle) in bad {
        let err = parse_stat(text).expect_err(name);
        assert!(err.0.contains(needle), "{name}: {err}");
    }
}

#[test]
fn guest_time_is_not_counted_twice() {
    let stat = parse_stat(STAT_WITH_GUEST).unwrap();
    let ticks = stat.cpu.exclusive_ticks();
    // user 301854 - guest 44, nice 612 - guest_nice 36.
    assert_eq!(
        ticks,
        [301810, 576, 111922, 8979004, 3552, 2, 3944, 0, 44, 36]
    );
    // The sum over modes equals user..steal as printed, the total time.
    let total: u64 = 301854 + 612 + 111922 + 8979004 + 3552 + 2 + 3944;
    assert_eq!(ticks.iter().sum::<u64>(), total);

    // Momentarily inconsistent fields clamp at 0 instead of wrapping.
    let odd = cpu([5, 1, 0, 0, 0, 0, 0, 0, 7, 3]).exclusive_ticks();
    assert_eq!(&odd[..2], &[0, 0]);
}

#[test]
fn parse_loadavg_table() {
    let ok: &[(&str, LoadAvg)] = &[
        (
            "0.08 0.08 0.09 1/87 11731\n",
            LoadAvg {
                one: 0.08,
                five: 0.08,
                fifteen: 0.09,
            },
        ),
        (
            "0.14 0.09 0.10 1/88 11672\n",
            LoadAvg {
                one: 0.14,
                five: 0.09,
                fifteen: 0.10,
            },
        ),
        (
            "12.50 3.25 0.00 7/1024 4242\n",
            LoadAvg {
                one: 12.5,
                five: 3.25,
                fifteen: 0.0,
            },
        ),
    ];
    for (text, want) in ok {
        assert_eq!(parse_loadavg(text).as_ref(), Ok(want), "{text:?}");
    }
    for (text, needle) in [
        ("0.08 0.08\n", "missing load15"),
        ("", "missing load1"),
        ("0.08 abc 0.09 1/87 11731\n", "load5: \"abc\""),
        ("nan 0.08 0.09 1/87 11731\n", "load1: \"nan\""),
    ] {
        let err = parse_loadavg(text).expect_err(text);
        assert!(err.0.contains(needle), "{text:?}: {err}");
    }
}

/// The first lines of /proc/meminfo, Linux 6.18.44 (x86_64).
const MEMINFO_6_18: &str = "\
MemTotal:       24684084 kB
MemFree:        24264908 kB
MemAvailable:   24275548 kB
Buffers:            7192 kB
Cached:           178048 kB
SwapCached:            0 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
";

#[test]
fn parse_meminfo_table() {
    assert_eq!(
        parse_meminfo(MEMINFO_6_18),
        Ok(Meminfo {
            total_bytes: 24684084 * 1024,
            available_bytes: Some(24275548 * 1024),
        })
    );
    // The same file without its MemAvailable line, the shape of Linux < 3.14.
    let old: String = MEMINFO_6_18
        .lines()
        .filter(|l| !l.starts_with("MemAvailable"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        parse_meminfo(&old),
        Ok(Meminfo {
            total_bytes: 24684084 * 1024,
            available_bytes: None,
        })
    );
    for (text, needle) in [
        ("MemFree:        24264908 kB\n", "no MemTotal"),
        ("MemTotal:       2468x084 kB\n", "MemTotal: \"2468x084\""),
        ("MemTotal:       24684084\n", "expected unit kB"),
        (
            "MemTotal:       24684084 kB\nMemAvailable:\n",
            "MemAvailable has no value",
        ),
        ("", "no MemTotal"),
    ] {
        let err = parse_meminfo(text).expect_err(text);
        assert!(err.0.contains(needle), "{text:?}: {err}");
    }
}

#[test]
fn parse_uptime_table() {
    assert_eq!(parse_uptime("3037.03 5829.80\n"), Ok(3037.03));
    assert_eq!(parse_uptime("3003.86 5763.78\n"), Ok(3003.86));
    for (text, needle) in [("", "empty"), ("up 5829.80\n", "uptime: \"up\"")] {
        let err = parse_uptime(text).expect_err(text);
        assert!(err.0.contains(needle), "{text:?}: {err}");
    }
}

fn line(avg10: f64, avg60: f64, avg300: f64, total_micros: u64) -> PressureLine {
    PressureLine {
        avg10,
        avg60,
        avg300,
        total_micros,
    }
}

#[test]
fn parse_pressure_table() {
    let ok: &[(&str, &str, Pressure)] = &[
        (
            "/proc/pressure/cpu, Linux 6.18.44: full line present (5.13+), zero system-wide",
            "some avg10=0.05 avg60=0.23 avg300=0.40 total=19826032\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
            Pressure {
                some: Some(line(0.05, 0.23, 0.40, 19826032)),
                full: Some(line(0.0, 0.0, 0.0, 0)),
            },
        ),
        (
            "/proc/pressure/io, Linux 6.18.44",
            "some avg10=0.16 avg60=0.79 avg300=0.39 total=6554896\n\
             full avg10=0.16 avg60=0.78 avg300=0.37 total=5747430\n",
            Pressure {
                some: Some(line(0.16, 0.79, 0.39, 6554896)),
                full: Some(line(0.16, 0.78, 0.37, 5747430)),
            },
        ),
        (
            "cgroup v2 root cpu.pressure, Linux 6.18.44 (same format)",
            "some avg10=0.05 avg60=0.18 avg300=0.33 total=20152974\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
            Pressure {
                some: Some(line(0.05, 0.18, 0.33, 20152974)),
                full: Some(line(0.0, 0.0, 0.0, 0)),
            },
        ),
        (
            "cpu file as Linux 4.20-5.12 print it: the 6.18 some line alone",
            "some avg10=0.05 avg60=0.23 avg300=0.40 total=19826032\n",
            Pressure {
                some: Some(line(0.05, 0.23, 0.40, 19826032)),
                full: None,
            },
        ),
        (
            "an unknown key is ignored",
            "some avg10=1.00 avg60=2.00 avg300=3.00 avg900=4.00 total=7\n",
            Pressure {
                some: Some(line(1.0, 2.0, 3.0, 7)),
                full: None,
            },
        ),
    ];
    for (name, text, want) in ok {
        assert_eq!(parse_pressure(text).as_ref(), Ok(want), "{name}");
    }

    let bad: &[(&str, &str, &str)] = &[
        ("empty", "", "no some or full line"),
        (
            "no total",
            "some avg10=0.05 avg60=0.23 avg300=0.40\n",
            "without total",
        ),
        (
            "non-number total",
            "some avg10=0.05 avg60=0.23 avg300=0.40 total=12a\n",
            "total: \"12a\"",
        ),
        (
            "non-number average",
            "some avg10=x avg60=0.23 avg300=0.40 total=1\n",
            "avg10: \"x\"",
        ),
        (
            "negative total",
            "some avg10=0.05 avg60=0.23 avg300=0.40 total=-1\n",
            "total: \"-1\"",
        ),
        (
            "not key=value",
            "some avg10 0.05 avg60=0.23 avg300=0.40 total=1\n",
            "not key=value",
        ),
        (
            "unknown line kind",
            "half avg10=0.05 avg60=0.23 avg300=0.40 total=1\n",
            "unexpected pressure line kind",
        ),
    ];
    for (name, text, needle) in bad {
        let err = parse_pressure(text).expect_err(name);
        assert!(err.0.contains(needle), "{name}: {err}");
    }
}

#[test]
fn pressure_total_is_microseconds() {
    assert_eq!(line(0.0, 0.0, 0.0, 5747430).total_seconds(), 5.74743);
}

// ---------------------------------------------------------------------------
// The source on fixture trees.

fn fixture_proc() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/host/proc")
}

/// A source on `proc` with USER_HZ fixed at 100, so expected values do not
/// depend on the machine running the test.
fn source(proc: PathBuf) -> HostSource {
    let paths = Paths {
        proc,
        ..Paths::default()
    };
    HostSource {
        ticks_per_second: 100,
        ..HostSource::new(&paths)
    }
}

async fn run(source: &mut HostSource) -> (Output, Result<(), CollectError>) {
    let mut out = Output::new();
    let result = source.collect(&mut out).await;
    (out, result)
}

fn close(got: Option<f64>, want: f64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no sample"));
    assert!((got - want).abs() < 1e-9, "{what}: got {got}, want {want}");
}

#[tokio::test]
async fn fixture_tree_values_trace_to_the_files() {
    let mut source = source(fixture_proc());
    let (out, result) = run(&mut source).await;
    result.unwrap();

    // stat: cpu  15382 0 6886 582980 732 0 70 13 0 0 at 100 ticks/s.
    let cpu = "vitals_host_cpu_seconds_total";
    for (mode, want) in [
        ("user", 153.82),
        ("nice", 0.0),
        ("system", 68.86),
        ("idle", 5829.80),
        ("iowait", 7.32),
        ("irq", 0.0),
        ("softirq", 0.70),
        ("steal", 0.13),
        ("guest", 0.0),
        ("guest_nice", 0.0),
    ] {
        close(out.value(cpu, &[("mode", mode)]), want, mode);
    }
    assert_eq!(out.family(cpu).map(|f| f.samples.len()), Some(10));
    assert_eq!(
        out.family(cpu).map(|f| f.kind),
        Some(crate::metrics::Kind::Counter)
    );
    let sum: f64 = out
        .family(cpu)
        .map(|f| f.samples.iter().map(|s| s.value).sum())
        .unwrap_or_default();
    close(
        Some(sum),
        (15382 + 6886 + 582980 + 732 + 70 + 13) as f64 / 100.0,
        "sum over modes",
    );
    close(
        out.value("vitals_host_boot_time_seconds", &[]),
        1795416728.0,
        "btime",
    );

    // loadavg: 0.08 0.08 0.09 1/87 11731
    close(out.value("vitals_host_load1", &[]), 0.08, "load1");
    close(out.value("vitals_host_load5", &[]), 0.08, "load5");
    close(out.value("vitals_host_load15", &[]), 0.09, "load15");

    // meminfo: MemTotal 24684084 kB, MemAvailable 24276532 kB
    assert_eq!(
        out.value("vitals_host_memory_total_bytes", &[]),
        Some(25_276_502_016.0)
    );
    assert_eq!(
        out.value("vitals_host_memory_available_bytes", &[]),
        Some(24_859_168_768.0)
    );

    // uptime: 3037.03 5829.80
    close(
        out.value("vitals_host_uptime_seconds", &[]),
        3037.03,
        "uptime",
    );

    // pressure: cpu some total=19826032, full 0; memory zeros; io some
    // total=6554896, full total=5747430 (microseconds).
    for (name, want) in [
        ("vitals_host_pressure_cpu_some_seconds_total", 19.826032),
        ("vitals_host_pressure_cpu_full_seconds_total", 0.0),
        ("vitals_host_pressure_memory_some_seconds_total", 0.0),
        ("vitals_host_pressure_memory_full_seconds_total", 0.0),
        ("vitals_host_pressure_io_some_seconds_total", 6.554896),
        ("vitals_host_pressure_io_full_seconds_total", 5.74743),
    ] {
        close(out.value(name, &[]), want, name);
    }
}

/// Copies the fixture tree into a scratch directory the test may change.
fn scratch_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = fixture_proc();
    std::fs::create_dir(dir.path().join("pressure")).unwrap();
    for rel in [
        "stat",
        "loadavg",
        "meminfo",
        "uptime",
        "pressure/cpu",
        "pressure/memory",
        "pressure/io",
    ] {
        std::fs::copy(from.join(rel), dir.path().join(rel)).unwrap();
    }
    dir
}

#[tokio::test]
async fn no_psi_and_no_memavailable_are_no_data_not_errors() {
    let dir = scratch_copy();
    std::fs::remove_dir_all(dir.path().join("pressure")).unwrap();
    let meminfo = std::fs::read_to_string(dir.path().join("meminfo")).unwrap();
    let old: String = meminfo
        .lines()
        .filter(|l| !l.starts_with("MemAvailable"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("meminfo"), old).unwrap();
    // A cpu pressure file without a full line, as before Linux 5.13.
    std::fs::create_dir(dir.path().join("pressure")).unwrap();
    std::fs::write(
        dir.path().join("pressure/cpu"),
        "some avg10=0.05 avg60=0.23 avg300=0.40 total=19826032\n",
    )
    .unwrap();

    let (out, result) = run(&mut source(dir.path().to_owned())).await;
    result.unwrap();
    assert_eq!(out.value("vitals_host_memory_available_bytes", &[]), None);
    assert_eq!(
        out.value("vitals_host_memory_total_bytes", &[]),
        Some(25_276_502_016.0)
    );
    close(
        out.value("vitals_host_pressure_cpu_some_seconds_total", &[]),
        19.826032,
        "cpu some",
    );
    for absent in [
        "vitals_host_pressure_cpu_full_seconds_total",
        "vitals_host_pressure_memory_some_seconds_total",
        "vitals_host_pressure_io_full_seconds_total",
    ] {
        assert!(out.family(absent).is_none(), "{absent} should be absent");
    }
}

#[tokio::test]
async fn garbage_fails_the_round_but_keeps_the_other_files() {
    let dir = scratch_copy();
    std::fs::write(dir.path().join("loadavg"), "0.08 garbage\n").unwrap();
    let (out, result) = run(&mut source(dir.path().to_owned())).await;
    match result {
        Err(CollectError::Parse { path, message }) => {
            assert_eq!(path, dir.path().join("loadavg"));
            assert!(message.contains("load5"), "{message}");
        }
        other => panic!("expected a parse error of loadavg, got {other:?}"),
    }
    assert!(out.family("vitals_host_load1").is_none());
    close(
        out.value("vitals_host_cpu_seconds_total", &[("mode", "user")]),
        153.82,
        "user",
    );
    close(
        out.value("vitals_host_uptime_seconds", &[]),
        3037.03,
        "uptime",
    );
}

#[tokio::test]
async fn missing_stat_is_an_io_error() {
    let dir = scratch_copy();
    std::fs::remove_file(dir.path().join("stat")).unwrap();
    let (out, result) = run(&mut source(dir.path().to_owned())).await;
    assert!(
        matches!(&result, Err(CollectError::Io { path, .. }) if path == &dir.path().join("stat")),
        "{result:?}"
    );
    assert!(out.family("vitals_host_memory_total_bytes").is_some());
}

#[tokio::test]
async fn missing_uptime_and_loadavg_drop_only_their_figures() {
    let dir = scratch_copy();
    std::fs::remove_file(dir.path().join("uptime")).unwrap();
    let (out, result) = run(&mut source(dir.path().to_owned())).await;
    result.unwrap();
    assert!(out.family("vitals_host_uptime_seconds").is_none());
    close(out.value("vitals_host_load1", &[]), 0.08, "load1 kept");
    close(
        out.value("vitals_host_cpu_seconds_total", &[("mode", "user")]),
        153.82,
        "user kept",
    );

    std::fs::remove_file(dir.path().join("loadavg")).unwrap();
    let (out, result) = run(&mut source(dir.path().to_owned())).await;
    result.unwrap();
    assert!(out.family("vitals_host_load1").is_none());
    assert_eq!(
        out.value("vitals_host_memory_total_bytes", &[]),
        Some(25_276_502_016.0)
    );
}

#[tokio::test]
async fn missing_meminfo_is_an_io_error() {
    let dir = scratch_copy();
    std::fs::remove_file(dir.path().join("meminfo")).unwrap();
    let (out, result) = run(&mut source(dir.path().to_owned())).await;
    assert!(
        matches!(&result, Err(CollectError::Io { path, .. }) if path == &dir.path().join("meminfo")),
        "{result:?}"
    );
    close(out.value("vitals_host_load1", &[]), 0.08, "load1 kept");
}

#[tokio::test]
async fn cpu_counters_do_not_step_back_a_little_but_do_reset_a_lot() {
    let dir = scratch_copy();
    let stat = dir.path().join("stat");
    let mut source = source(dir.path().to_owned());
    let write = |line: &str| std::fs::write(&stat, format!("{line}\nbtime 1795416728\n")).unwrap();
    let value =
        |out: &Output, mode: &str| out.value("vitals_host_cpu_seconds_total", &[("mode", mode)]);

    write("cpu  15382 0 6886 582980 732 0 70 13 0 0");
    let (out, result) = run(&mut source).await;
    result.unwrap();
    close(value(&out, "iowait"), 7.32, "iowait first");

    // iowait 2 ticks lower (proc(5): "may decrease"): last value held.
    write("cpu  15390 0 6890 583080 730 0 70 13 0 0");
    let (out, result) = run(&mut source).await;
    result.unwrap();
    close(value(&out, "iowait"), 7.32, "iowait held");
    close(value(&out, "idle"), 5830.80, "idle advances");

    // Idle 3500 s lower (after a suspend): passed through as a reset.
    write("cpu  15400 0 6895 233080 735 0 70 13 0 0");
    let (out, result) = run(&mut source).await;
    result.unwrap();
    close(value(&out, "idle"), 2330.80, "idle reset");
    close(value(&out, "iowait"), 7.35, "iowait advances again");
}
