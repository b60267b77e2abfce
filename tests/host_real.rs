//! The host source against this machine's real /proc: its figures must agree
//! with what the test reads from the same files around the round.

use std::path::PathBuf;
use vitals::collectors::host::HostSource;
use vitals::collectors::Source;
use vitals::config::Paths;
use vitals::metrics::Output;

const PROC: &str = "/proc";

fn read(rel: &str) -> String {
    std::fs::read_to_string(PathBuf::from(PROC).join(rel))
        .unwrap_or_else(|e| panic!("reading {PROC}/{rel}: {e}"))
}

/// Sum of user..steal of the aggregate cpu line, in ticks. guest and
/// guest_nice are already inside user and nice, so this is the total time.
fn cpu_total_ticks() -> u64 {
    let stat = read("stat");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))
        .expect("aggregate cpu line");
    line.split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse::<u64>().expect("cpu field is a number"))
        .sum()
}

fn load1() -> f64 {
    read("loadavg")
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .expect("load1")
}

fn mem_total_kb() -> u64 {
    read("meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|f| f.parse().ok())
        .expect("MemTotal")
}

#[tokio::test]
async fn host_source_agrees_with_real_proc() {
    if !PathBuf::from(PROC).join("stat").exists() {
        println!("skipped: no {PROC}/stat on this system");
        return;
    }
    let paths = Paths {
        proc: PROC.into(),
        ..Paths::default()
    };
    let mut source = HostSource::new(&paths);
    let hz = procfs::ticks_per_second() as f64;

    let ticks_before = cpu_total_ticks();
    let load_before = load1();
    let mut out = Output::new();
    source.collect(&mut out).await.expect("host round");
    let ticks_after = cpu_total_ticks();
    let load_after = load1();

    let cpu = out
        .family("vitals_host_cpu_seconds_total")
        .expect("cpu seconds");
    assert_eq!(cpu.samples.len(), 10, "one sample per mode");
    let sum: f64 = cpu.samples.iter().map(|s| s.value).sum();
    let (lo, hi) = (ticks_before as f64 / hz, ticks_after as f64 / hz);
    // A tolerance of a rounding error only: sums of hundredths in f64.
    assert!(
        sum >= lo - 1e-6 && sum <= hi + 1e-6,
        "sum over modes {sum} s not within [{lo}, {hi}] s read around the round"
    );

    assert_eq!(
        out.value("vitals_host_memory_total_bytes", &[]),
        Some((mem_total_kb() * 1024) as f64)
    );

    let load = out.value("vitals_host_load1", &[]).expect("load1");
    let (lo, hi) = (load_before.min(load_after), load_before.max(load_after));
    assert!(
        load >= lo && load <= hi,
        "load1 {load} not within [{lo}, {hi}] read around the round"
    );

    let uptime = out
        .value("vitals_host_uptime_seconds", &[])
        .expect("uptime");
    let boot = out
        .value("vitals_host_boot_time_seconds", &[])
        .expect("boot time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    assert!(uptime > 0.0, "uptime {uptime}");
    assert!(boot > 0.0 && boot < now, "boot time {boot}, now {now}");
}
