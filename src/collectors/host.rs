//! Host figures from `<proc>`: CPU seconds by mode, load, memory, PSI,
//! boot time and uptime.
//!
//! | metric                                         | from                          |
//! |------------------------------------------------|-------------------------------|
//! | `vitals_host_cpu_seconds_total{mode}`          | `stat`, the `cpu` line        |
//! | `vitals_host_boot_time_seconds`                | `stat`, `btime`               |
//! | `vitals_host_load1` / `load5` / `load15`       | `loadavg`                     |
//! | `vitals_host_memory_total_bytes`               | `meminfo`, `MemTotal`         |
//! | `vitals_host_memory_available_bytes`           | `meminfo`, `MemAvailable`     |
//! | `vitals_host_pressure_{cpu,memory,io}_{some,full}_seconds_total` | `pressure/*`, `total=` |
//! | `vitals_host_uptime_seconds`                   | `uptime`, first field         |
//!
//! `stat` and `meminfo` are required; a missing `loadavg`, `uptime` or
//! `pressure/*` drops only its own figures (see [`HostSource`]'s `collect`).
//!
//! Parsing is pure (`parse_*`); [`HostSource`] only reads files under the
//! configured proc root. [`parse_pressure`] is public because cgroup v2
//! `*.pressure` files have the same format.

use super::{CollectError, Source};
use crate::config::Paths;
use crate::metrics::{Desc, Output};
use std::path::{Path, PathBuf};

pub use super::procfs::ParseError;

// ---------------------------------------------------------------------------
// <proc>/stat

/// The ten fields of the aggregate `cpu` line, in USER_HZ ticks, exactly as
/// the kernel prints them (so `user` still includes `guest`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
    pub guest: u64,
    pub guest_nice: u64,
}

impl From<[u64; 10]> for CpuTimes {
    /// The fields in `/proc/stat` order.
    fn from(v: [u64; 10]) -> Self {
        let [user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice] = v;
        CpuTimes {
            user,
            nice,
            system,
            idle,
            iowait,
            irq,
            softirq,
            steal,
            guest,
            guest_nice,
        }
    }
}

/// The modes exported in the `mode` label, in `/proc/stat` order.
pub const CPU_MODES: [&str; 10] = [
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
];

impl CpuTimes {
    /// Ticks per mode (order of [`CPU_MODES`]) without double counting.
    ///
    /// The kernel adds guest time to `user` and guest_nice time to `nice` as
    /// well as to `guest`/`guest_nice` (account_guest_time(), since Linux
    /// 2.6.24 / 2.6.33). Exporting them as printed would make
    /// `sum by (instance) (rate(vitals_host_cpu_seconds_total[...]))` exceed
    /// the number of CPUs on a VM host, so `user` and `nice` here are the
    /// non-guest part; the sum over all modes is then the total time. The
    /// subtraction saturates at 0 because the two fields are read without a
    /// common lock and may be momentarily inconsistent.
    pub fn exclusive_ticks(&self) -> [u64; 10] {
        [
            self.user.saturating_sub(self.guest),
            self.nice.saturating_sub(self.guest_nice),
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
            self.guest,
            self.guest_nice,
        ]
    }
}

/// What vitals uses of `<proc>/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub cpu: CpuTimes,
    /// `btime`: boot time, seconds since the Unix epoch. Absent = no sample.
    pub boot_time: Option<u64>,
}

/// Parses `<proc>/stat`: the aggregate `cpu` line (required, all ten fields,
/// present since Linux 2.6.33) and `btime` (optional).
pub fn parse_stat(text: &str) -> Result<Stat, ParseError> {
    let mut cpu = None;
    let mut boot_time = None;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let mut values = [0u64; 10];
                for (i, slot) in values.iter_mut().enumerate() {
                    let field = fields.next().ok_or_else(|| {
                        ParseError::new(format!(
                            "cpu line has {i} values, expected at least 10 (user..guest_nice)"
                        ))
                    })?;
                    *slot = parse_u64(field, CPU_MODES.get(i).copied().unwrap_or("cpu"))?;
                }
                // Later kernels may append fields; they are ignored.
                cpu = Some(CpuTimes::from(values));
            }
            Some("btime") => {
                let field = fields
                    .next()
                    .ok_or_else(|| ParseError::new("btime line has no value"))?;
                boot_time = Some(parse_u64(field, "btime")?);
            }
            _ => {}
        }
    }
    let cpu = cpu.ok_or_else(|| ParseError::new("no aggregate cpu line"))?;
    Ok(Stat { cpu, boot_time })
}

fn parse_u64(field: &str, what: &str) -> Result<u64, ParseError> {
    field
        .parse()
        .map_err(|_| ParseError::new(format!("{what}: {field:?} is not a whole number")))
}

fn parse_f64(field: &str, what: &str) -> Result<f64, ParseError> {
    match field.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(ParseError::new(format!(
            "{what}: {field:?} is not a number"
        ))),
    }
}

// ---------------------------------------------------------------------------
// <proc>/loadavg

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// Parses `<proc>/loadavg` ("0.08 0.08 0.09 1/87 11731"); only the three
/// averages are used.
pub fn parse_loadavg(text: &str) -> Result<LoadAvg, ParseError> {
    let mut fields = text.split_whitespace();
    let mut next = |what: &str| {
        let field = fields
            .next()
            .ok_or_else(|| ParseError::new(format!("missing {what}")))?;
        parse_f64(field, what)
    };
    Ok(LoadAvg {
        one: next("load1")?,
        five: next("load5")?,
        fifteen: next("load15")?,
    })
}

// ---------------------------------------------------------------------------
// <proc>/meminfo

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meminfo {
    pub total_bytes: u64,
    /// `MemAvailable` appeared in Linux 3.14; absent on older kernels.
    pub available_bytes: Option<u64>,
}

/// Parses `<proc>/meminfo`. `MemTotal` is required; values are in kB
/// (KiB: the kernel prints pages << (PAGE_SHIFT - 10)) and become bytes.
pub fn parse_meminfo(text: &str) -> Result<Meminfo, ParseError> {
    let mut total = None;
    let mut available = None;
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "MemTotal" => &mut total,
            "MemAvailable" => &mut available,
            _ => continue,
        };
        *slot = Some(parse_kb(key.trim(), rest)?);
    }
    Ok(Meminfo {
        total_bytes: total.ok_or_else(|| ParseError::new("no MemTotal line"))?,
        available_bytes: available,
    })
}

/// "       24684084 kB" → bytes.
fn parse_kb(key: &str, rest: &str) -> Result<u64, ParseError> {
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| ParseError::new(format!("{key} has no value")))?;
    let kb = parse_u64(value, key)?;
    match fields.next() {
        Some("kB") => kb
            .checked_mul(1024)
            .ok_or_else(|| ParseError::new(format!("{key}: {kb} kB overflows"))),
        other => Err(ParseError::new(format!(
            "{key}: expected unit kB, found {other:?}"
        ))),
    }
}

// ---------------------------------------------------------------------------
// <proc>/uptime

/// Parses `<proc>/uptime` ("3037.03 5829.80"): seconds since boot, the first
/// field (the second is idle time summed over CPUs, unused).
pub fn parse_uptime(text: &str) -> Result<f64, ParseError> {
    let field = text
        .split_whitespace()
        .next()
        .ok_or_else(|| ParseError::new("empty uptime"))?;
    parse_f64(field, "uptime")
}

// ---------------------------------------------------------------------------
// Pressure stall information: <proc>/pressure/{cpu,memory,io} and the cgroup v2
// {cpu,memory,io}.pressure files.

/// One `some` or `full` line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PressureLine {
    /// Percent of wall time stalled over the last 10, 60 and 300 seconds.
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Total stall time, microseconds (`total=`).
    pub total_micros: u64,
}

impl PressureLine {
    pub fn total_seconds(&self) -> f64 {
        self.total_micros as f64 / 1e6
    }
}

/// A whole pressure file. `full` is absent from the system-wide `cpu` file
/// before Linux 5.13; since then it is present (and all zeros system-wide).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pressure {
    pub some: Option<PressureLine>,
    pub full: Option<PressureLine>,
}

/// Parses a PSI file:
/// ```text
/// some avg10=0.16 avg60=0.79 avg300=0.39 total=6554896
/// full avg10=0.16 avg60=0.78 avg300=0.37 total=5747430
/// ```
/// Unknown `key=value` pairs are ignored (room for new averages); an unknown
/// line kind, a missing field or a non-number is an error, as is a file with
/// neither line.
pub fn parse_pressure(text: &str) -> Result<Pressure, ParseError> {
    let mut pressure = Pressure::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let slot = match fields.next() {
            None => continue,
            Some("some") => &mut pressure.some,
            Some("full") => &mut pressure.full,
            Some(other) => {
                return Err(ParseError::new(format!(
                    "unexpected pressure line kind {other:?}"
                )))
            }
        };
        let (mut avg10, mut avg60, mut avg300, mut total) = (None, None, None, None);
        for field in fields {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| ParseError::new(format!("{field:?} is not key=value")))?;
            match key {
                "avg10" => avg10 = Some(parse_f64(value, key)?),
                "avg60" => avg60 = Some(parse_f64(value, key)?),
                "avg300" => avg300 = Some(parse_f64(value, key)?),
                "total" => total = Some(parse_u64(value, key)?),
                _ => {}
            }
        }
        let missing = |what: &str| ParseError::new(format!("pressure line without {what}"));
        *slot = Some(PressureLine {
            avg10: avg10.ok_or_else(|| missing("avg10"))?,
            avg60: avg60.ok_or_else(|| missing("avg60"))?,
            avg300: avg300.ok_or_else(|| missing("avg300"))?,
            total_micros: total.ok_or_else(|| missing("total"))?,
        });
    }
    if pressure.some.is_none() && pressure.full.is_none() {
        return Err(ParseError::new("no some or full line"));
    }
    Ok(pressure)
}

// ---------------------------------------------------------------------------
// The source

/// Backwards steps of a CPU mode smaller than this many seconds are held at
/// the previous value; larger ones are passed through as a counter reset.
const CPU_JUMP_BACK_SECONDS: u64 = 3;

/// USER_HZ when sysconf cannot tell: 100 on every mainstream Linux
/// architecture (x86, arm, arm64, ppc, s390, riscv).
const DEFAULT_TICKS_PER_SECOND: u64 = 100;

#[derive(Clone)]
pub struct HostSource {
    proc_root: PathBuf,
    /// USER_HZ, the unit of `/proc/stat` CPU times (sysconf(_SC_CLK_TCK),
    /// 100 on Linux), read once.
    ticks_per_second: u64,
    /// Per-mode ticks exported last round, see [`HostSource::monotonic`].
    last_cpu: Option<[u64; 10]>,
}

impl HostSource {
    pub fn new(paths: &Paths) -> Self {
        let ticks = procfs::ticks_per_second();
        HostSource {
            proc_root: paths.proc.clone(),
            ticks_per_second: if ticks == 0 {
                DEFAULT_TICKS_PER_SECOND
            } else {
                ticks
            },
            last_cpu: None,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.proc_root.join(rel)
    }

    /// Keeps the exported CPU counters from going backwards. proc(5) says of
    /// iowait "the value in this field may decrease in certain conditions",
    /// and idle can step back on NO_HZ kernels; rate() would read a small
    /// dip as a counter reset and show a spike. As node_exporter does, a
    /// small dip keeps last round's value; a large one (idle after a
    /// suspend, seen on Linux 5.15) is passed through as a reset, because
    /// holding it would hide idle time for as long as the jump.
    fn monotonic(&mut self, mut ticks: [u64; 10]) -> [u64; 10] {
        if let Some(last) = self.last_cpu {
            let small = CPU_JUMP_BACK_SECONDS.saturating_mul(self.ticks_per_second);
            for ((now, before), mode) in ticks.iter_mut().zip(last).zip(CPU_MODES) {
                if *now < before && before - *now < small {
                    tracing::debug!(
                        mode,
                        before,
                        now = *now,
                        "CPU counter stepped back; holding"
                    );
                    *now = before;
                }
            }
        }
        self.last_cpu = Some(ticks);
        ticks
    }

    fn collect_stat(&mut self, out: &mut Output) -> Result<(), CollectError> {
        let path = self.path("stat");
        let stat = parse(&path, &super::read_required(&path)?, parse_stat)?;
        let ticks = self.monotonic(stat.cpu.exclusive_ticks());
        let hz = self.ticks_per_second as f64;
        for (mode, t) in CPU_MODES.iter().zip(ticks) {
            out.add(&CPU_SECONDS, &[("mode", mode)], t as f64 / hz);
        }
        if let Some(btime) = stat.boot_time {
            out.add(&BOOT_TIME_SECONDS, &[], btime as f64);
        }
        Ok(())
    }

    fn collect_loadavg(&self, out: &mut Output) -> Result<(), CollectError> {
        let path = self.path("loadavg");
        let Some(text) = super::read_optional(&path)? else {
            return Ok(());
        };
        let load = parse(&path, &text, parse_loadavg)?;
        out.add(&LOAD1, &[], load.one);
        out.add(&LOAD5, &[], load.five);
        out.add(&LOAD15, &[], load.fifteen);
        Ok(())
    }

    fn collect_meminfo(&self, out: &mut Output) -> Result<(), CollectError> {
        let path = self.path("meminfo");
        let mem = parse(&path, &super::read_required(&path)?, parse_meminfo)?;
        out.add(&MEMORY_TOTAL_BYTES, &[], mem.total_bytes as f64);
        match mem.available_bytes {
            Some(available) => out.add(&MEMORY_AVAILABLE_BYTES, &[], available as f64),
            None => tracing::debug!(
                path = %path.display(),
                "no MemAvailable (Linux before 3.14); no sample"
            ),
        }
        Ok(())
    }

    fn collect_uptime(&self, out: &mut Output) -> Result<(), CollectError> {
        let path = self.path("uptime");
        let Some(text) = super::read_optional(&path)? else {
            return Ok(());
        };
        let uptime = parse(&path, &text, parse_uptime)?;
        out.add(&UPTIME_SECONDS, &[], uptime);
        Ok(())
    }

    /// PSI needs Linux 4.20 with CONFIG_PSI and not `psi=0`; without it the
    /// directory is absent, which is "no data".
    fn collect_pressure(&self, out: &mut Output) -> Result<(), CollectError> {
        for (resource, some_desc, full_desc) in PRESSURE {
            let path = self.path("pressure").join(resource);
            let Some(text) = super::read_optional(&path)? else {
                continue;
            };
            let pressure = parse(&path, &text, parse_pressure)?;
            if let Some(some) = pressure.some {
                out.add(some_desc, &[], some.total_seconds());
            }
            if let Some(full) = pressure.full {
                out.add(full_desc, &[], full.total_seconds());
            }
        }
        Ok(())
    }
}

pub const CPU_SECONDS: Desc = Desc::counter(
    "vitals_host_cpu_seconds_total",
    &["mode"],
    "Seconds all CPUs spent in each mode since boot, from the cpu line of /proc/stat; \
     user and nice exclude guest time so that modes add up to the total.",
);
pub const BOOT_TIME_SECONDS: Desc = Desc::gauge(
    "vitals_host_boot_time_seconds",
    &[],
    "Time the host booted, seconds since the Unix epoch, from btime in /proc/stat.",
);
pub const LOAD1: Desc = Desc::gauge(
    "vitals_host_load1",
    &[],
    "Load average over 1 minute, from /proc/loadavg.",
);
pub const LOAD5: Desc = Desc::gauge(
    "vitals_host_load5",
    &[],
    "Load average over 5 minutes, from /proc/loadavg.",
);
pub const LOAD15: Desc = Desc::gauge(
    "vitals_host_load15",
    &[],
    "Load average over 15 minutes, from /proc/loadavg.",
);
pub const MEMORY_TOTAL_BYTES: Desc = Desc::gauge(
    "vitals_host_memory_total_bytes",
    &[],
    "Usable RAM in bytes, from MemTotal in /proc/meminfo.",
);
pub const MEMORY_AVAILABLE_BYTES: Desc = Desc::gauge(
    "vitals_host_memory_available_bytes",
    &[],
    "Memory available for new work without swapping, in bytes, \
     from MemAvailable in /proc/meminfo.",
);
pub const UPTIME_SECONDS: Desc = Desc::gauge(
    "vitals_host_uptime_seconds",
    &[],
    "Seconds since the host booted, from the first field of /proc/uptime.",
);
pub const PRESSURE_CPU_SOME: Desc = Desc::counter(
    "vitals_host_pressure_cpu_some_seconds_total",
    &[],
    "Seconds in which at least one runnable task waited for a CPU, \
     from total= of the some line of /proc/pressure/cpu.",
);
pub const PRESSURE_CPU_FULL: Desc = Desc::counter(
    "vitals_host_pressure_cpu_full_seconds_total",
    &[],
    "Seconds in which all non-idle tasks waited for a CPU, from total= of the full line \
     of /proc/pressure/cpu (Linux 5.13+; always 0 system-wide).",
);
pub const PRESSURE_MEMORY_SOME: Desc = Desc::counter(
    "vitals_host_pressure_memory_some_seconds_total",
    &[],
    "Seconds in which at least one task stalled on memory, \
     from total= of the some line of /proc/pressure/memory.",
);
pub const PRESSURE_MEMORY_FULL: Desc = Desc::counter(
    "vitals_host_pressure_memory_full_seconds_total",
    &[],
    "Seconds in which all non-idle tasks stalled on memory at once, \
     from total= of the full line of /proc/pressure/memory.",
);
pub const PRESSURE_IO_SOME: Desc = Desc::counter(
    "vitals_host_pressure_io_some_seconds_total",
    &[],
    "Seconds in which at least one task stalled on I/O, \
     from total= of the some line of /proc/pressure/io.",
);
pub const PRESSURE_IO_FULL: Desc = Desc::counter(
    "vitals_host_pressure_io_full_seconds_total",
    &[],
    "Seconds in which all non-idle tasks stalled on I/O at once, \
     from total= of the full line of /proc/pressure/io.",
);

/// The file under `<proc>/pressure/` and its some and full families.
const PRESSURE: [(&str, &Desc, &Desc); 3] = [
    ("cpu", &PRESSURE_CPU_SOME, &PRESSURE_CPU_FULL),
    ("memory", &PRESSURE_MEMORY_SOME, &PRESSURE_MEMORY_FULL),
    ("io", &PRESSURE_IO_SOME, &PRESSURE_IO_FULL),
];

/// Every family the host source exports, for `collectors::catalog()`.
pub const METRICS: &[Desc] = &[
    CPU_SECONDS,
    BOOT_TIME_SECONDS,
    LOAD1,
    LOAD5,
    LOAD15,
    MEMORY_TOTAL_BYTES,
    MEMORY_AVAILABLE_BYTES,
    UPTIME_SECONDS,
    PRESSURE_CPU_SOME,
    PRESSURE_CPU_FULL,
    PRESSURE_MEMORY_SOME,
    PRESSURE_MEMORY_FULL,
    PRESSURE_IO_SOME,
    PRESSURE_IO_FULL,
];

fn parse<T>(
    path: &Path,
    text: &str,
    parser: fn(&str) -> Result<T, ParseError>,
) -> Result<T, CollectError> {
    parser(text).map_err(|e| CollectError::parse(path, e.0))
}

impl Source for HostSource {
    /// Every file is tried even when an earlier one fails, so a garbled
    /// loadavg does not hide CPU and memory; the first error is returned.
    ///
    /// `stat` and `meminfo` are required: every Linux since 2.6 has them, so
    /// their absence means the configured proc root is not a procfs (a wrong
    /// `paths.proc`), which must fail the round loudly rather than report a
    /// successful round with no figures. `loadavg`, `uptime` and
    /// `pressure/*` are optional: sandboxes (gVisor, some LXCFS setups) hide
    /// or omit them and PSI needs Linux 4.20, so a missing one drops only its
    /// own figures, with a debug log line.
    ///
    /// The files are read on the blocking pool, each read bounded (see
    /// [`super::fsread`]): a hung `/proc` read fails the round instead of
    /// hanging it, and never holds an async worker.
    async fn collect(&mut self, out: &mut Output) -> Result<(), CollectError> {
        let mut worker = self.clone();
        let (round, result, worker) = tokio::task::spawn_blocking(move || {
            let mut round = Output::new();
            let result = worker.collect_blocking(&mut round);
            (round, result, worker)
        })
        .await
        .map_err(|e| CollectError::Other(format!("host read task failed: {e}")))?;
        *self = worker;
        out.extend(round);
        result
    }
}

impl HostSource {
    fn collect_blocking(&mut self, out: &mut Output) -> Result<(), CollectError> {
        let results = [
            self.collect_stat(out),
            self.collect_loadavg(out),
            self.collect_meminfo(out),
            self.collect_uptime(out),
            self.collect_pressure(out),
        ];
        let mut first = None;
        for error in results.into_iter().filter_map(Result::err) {
            if first.is_none() {
                first = Some(error);
            } else {
                tracing::warn!(%error, "host source: further error in the same round");
            }
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests;
