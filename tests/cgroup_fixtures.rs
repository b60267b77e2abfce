//! The cgroup source end to end on fixture trees (tests/fixtures/cgroup/*):
//! each holds its own proc/self/{cgroup,mountinfo} and sys/fs/cgroup, so
//! `Paths { proc: <tree>/proc, sys: <tree>/sys }` reads nothing of the host.
//! Values are traceable: `usage_usec 14036781` becomes 14.036781.

mod common;

use common::copy_tree;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vitals::collectors::cgroup::CgroupSource;
use vitals::collectors::{CollectError, Source};
use vitals::config::{CgroupConfig, CgroupTarget, Paths, Pattern};
use vitals::metrics::{render, Format, Output};

fn fixture(name: &str) -> PathBuf {
    common::fixture("cgroup").join(name)
}

fn paths(root: &Path) -> Paths {
    Paths {
        proc: root.join("proc"),
        sys: root.join("sys"),
        cgroup: None,
    }
}

fn config(target: CgroupTarget, limits_dir: Option<PathBuf>) -> CgroupConfig {
    CgroupConfig {
        target,
        limits_dir,
        ..CgroupConfig::default()
    }
}

async fn try_collect(paths: &Paths, config: &CgroupConfig) -> Result<Output, CollectError> {
    let mut source = CgroupSource::new(paths, config);
    let mut out = Output::new();
    source.collect(&mut out).await?;
    common::catalog::assert_output_in_catalog(&out);
    Ok(out)
}

async fn collect_tree(name: &str) -> Output {
    try_collect(&paths(&fixture(name)), &config(CgroupTarget::Own, None))
        .await
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn value(out: &Output, name: &str) -> Option<f64> {
    out.value(name, &[])
}

/// Every (name, expected) pair: `Some(v)` must be exactly v, `None` absent.
fn assert_values(out: &Output, expected: &[(&str, Option<f64>)]) {
    for (name, want) in expected {
        assert_eq!(value(out, name), *want, "{name}");
        if want.is_none() {
            assert!(out.family(name).is_none(), "{name} must be absent, not 0");
        }
    }
}

fn info(out: &Output) -> (String, String) {
    let family = out.family("vitals_cgroup_info").expect("info series");
    assert_eq!(family.samples.len(), 1);
    let sample = &family.samples[0];
    assert_eq!(sample.value, 1.0);
    (
        sample.label("version").unwrap_or_default().to_owned(),
        sample.label("path").unwrap_or_default().to_owned(),
    )
}

fn limit_sources(out: &Output) -> Vec<(String, String)> {
    out.family("vitals_cgroup_limit_source")
        .map(|f| {
            f.samples
                .iter()
                .map(|s| {
                    assert_eq!(s.value, 1.0);
                    (
                        s.label("resource").unwrap_or_default().to_owned(),
                        s.label("source").unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn v2_limited() {
    let out = collect_tree("v2-limited").await;
    assert_eq!(
        info(&out),
        ("v2".into(), "/system.slice/app.service".into())
    );
    assert_values(
        &out,
        &[
            ("vitals_cgroup_cpu_usage_seconds_total", Some(14.036781)),
            ("vitals_cgroup_cpu_limit_cores", Some(1.5)),
            // First round: no previous sample.
            ("vitals_cgroup_cpu_limit_utilization_ratio", None),
            ("vitals_cgroup_cpu_periods_total", Some(2411.0)),
            ("vitals_cgroup_cpu_throttled_periods_total", Some(0.0)),
            ("vitals_cgroup_cpu_throttled_seconds_total", Some(0.0)),
            ("vitals_cgroup_memory_usage_bytes", Some(268435456.0)),
            // 268435456 - inactive_file 67108864
            ("vitals_cgroup_memory_working_set_bytes", Some(201326592.0)),
            ("vitals_cgroup_memory_rss_bytes", Some(150994944.0)),
            ("vitals_cgroup_memory_limit_bytes", Some(536870912.0)),
            ("vitals_cgroup_memory_limit_utilization_ratio", Some(0.375)),
            ("vitals_cgroup_memory_oom_events_total", Some(0.0)),
            ("vitals_cgroup_memory_oom_kills_total", Some(0.0)),
            ("vitals_cgroup_pids_current", Some(23.0)),
            ("vitals_cgroup_pids_limit", Some(4096.0)),
            ("vitals_cgroup_pressure_cpu_some_seconds_total", Some(1.25)),
            ("vitals_cgroup_pressure_cpu_full_seconds_total", Some(0.5)),
            (
                "vitals_cgroup_pressure_memory_some_seconds_total",
                Some(0.002),
            ),
            (
                "vitals_cgroup_pressure_memory_full_seconds_total",
                Some(0.001),
            ),
            ("vitals_cgroup_pressure_io_some_seconds_total", Some(3.5)),
            ("vitals_cgroup_pressure_io_full_seconds_total", Some(3.0)),
        ],
    );
    assert_eq!(
        limit_sources(&out),
        pairs(&[("cpu", "cgroup"), ("memory", "cgroup")])
    );
    let text = render([&out], Format::Text);
    assert!(text.contains("\nvitals_cgroup_cpu_usage_seconds_total 14.036781\n"));
    assert!(text.contains("# TYPE vitals_cgroup_cpu_usage_seconds_total counter\n"));
    assert!(text.contains("\nvitals_cgroup_memory_limit_bytes 536870912\n"));
}

#[tokio::test]
async fn v2_unlimited_limits_are_absent_not_zero() {
    let out = collect_tree("v2-unlimited").await;
    assert_eq!(info(&out), ("v2".into(), "/".into()));
    assert_values(
        &out,
        &[
            ("vitals_cgroup_cpu_usage_seconds_total", Some(2.5)),
            ("vitals_cgroup_cpu_limit_cores", None),
            ("vitals_cgroup_cpu_limit_utilization_ratio", None),
            ("vitals_cgroup_cpu_periods_total", Some(0.0)),
            ("vitals_cgroup_memory_usage_bytes", Some(73400320.0)),
            ("vitals_cgroup_memory_working_set_bytes", Some(52428800.0)),
            ("vitals_cgroup_memory_rss_bytes", Some(41943040.0)),
            ("vitals_cgroup_memory_limit_bytes", None),
            ("vitals_cgroup_memory_limit_utilization_ratio", None),
            ("vitals_cgroup_pids_current", Some(7.0)),
            ("vitals_cgroup_pids_limit", None),
            // No *.pressure files (a kernel without PSI): no series.
            ("vitals_cgroup_pressure_cpu_some_seconds_total", None),
            ("vitals_cgroup_pressure_io_full_seconds_total", None),
        ],
    );
    assert!(limit_sources(&out).is_empty());
    let text = render([&out], Format::Text);
    assert!(!text.contains("limit_bytes"), "{text}");
}

#[tokio::test]
async fn v2_unlimited_takes_limits_from_the_downward_api() {
    let root = fixture("v2-unlimited");
    let out = try_collect(
        &paths(&root),
        &config(CgroupTarget::Own, Some(root.join("podinfo"))),
    )
    .await
    .unwrap();
    assert_values(
        &out,
        &[
            // cpu_limit 500 millicores, memory_limit 134217728 bytes.
            ("vitals_cgroup_cpu_limit_cores", Some(0.5)),
            ("vitals_cgroup_memory_limit_bytes", Some(134217728.0)),
            // working set 52428800 / 134217728
            (
                "vitals_cgroup_memory_limit_utilization_ratio",
                Some(0.390625),
            ),
        ],
    );
    assert_eq!(
        limit_sources(&out),
        pairs(&[("cpu", "downward_api"), ("memory", "downward_api")])
    );
}

#[tokio::test]
async fn cgroup_limits_win_over_the_downward_api() {
    let out = try_collect(
        &paths(&fixture("v2-limited")),
        &config(
            CgroupTarget::Own,
            Some(fixture("v2-unlimited").join("podinfo")),
        ),
    )
    .await
    .unwrap();
    assert_eq!(value(&out, "vitals_cgroup_cpu_limit_cores"), Some(1.5));
    assert_eq!(
        value(&out, "vitals_cgroup_memory_limit_bytes"),
        Some(536870912.0)
    );
    assert_eq!(
        limit_sources(&out),
        pairs(&[("cpu", "cgroup"), ("memory", "cgroup")])
    );
}

#[tokio::test]
async fn v2_throttled_and_oom_killed_behind_a_namespaced_mount_root() {
    let out = collect_tree("v2-throttled-oom").await;
    assert_eq!(
        info(&out),
        (
            "v2".into(),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7d1f3b2a.slice/cri-containerd-5e3a9c.scope".into()
        )
    );
    assert_values(
        &out,
        &[
            ("vitals_cgroup_cpu_usage_seconds_total", Some(600.123456)),
            ("vitals_cgroup_cpu_limit_cores", Some(0.5)),
            ("vitals_cgroup_cpu_periods_total", Some(12000.0)),
            ("vitals_cgroup_cpu_throttled_periods_total", Some(4321.0)),
            ("vitals_cgroup_cpu_throttled_seconds_total", Some(98.765432)),
            ("vitals_cgroup_memory_usage_bytes", Some(268369920.0)),
            ("vitals_cgroup_memory_working_set_bytes", Some(267321344.0)),
            ("vitals_cgroup_memory_rss_bytes", Some(262144000.0)),
            ("vitals_cgroup_memory_limit_bytes", Some(268435456.0)),
            (
                "vitals_cgroup_memory_limit_utilization_ratio",
                Some(267321344.0 / 268435456.0),
            ),
            ("vitals_cgroup_memory_oom_events_total", Some(7.0)),
            ("vitals_cgroup_memory_oom_kills_total", Some(3.0)),
            ("vitals_cgroup_pids_current", Some(57.0)),
            ("vitals_cgroup_pids_limit", Some(1024.0)),
            ("vitals_cgroup_pressure_cpu_some_seconds_total", Some(250.5)),
            (
                "vitals_cgroup_pressure_cpu_full_seconds_total",
                Some(240.25),
            ),
            (
                "vitals_cgroup_pressure_memory_some_seconds_total",
                Some(17.0),
            ),
            (
                "vitals_cgroup_pressure_memory_full_seconds_total",
                Some(16.0),
            ),
            ("vitals_cgroup_pressure_io_some_seconds_total", Some(4.0)),
            ("vitals_cgroup_pressure_io_full_seconds_total", Some(3.9)),
        ],
    );
}

#[tokio::test]
async fn v1_with_limits_in_a_docker_container() {
    let out = collect_tree("v1").await;
    assert_eq!(info(&out), ("v1".into(), "/docker/8f2e61c0a9b4".into()));
    assert_values(
        &out,
        &[
            // cpuacct.usage 345678901234 ns
            ("vitals_cgroup_cpu_usage_seconds_total", Some(345.678901234)),
            // cfs_quota_us 200000 / cfs_period_us 100000
            ("vitals_cgroup_cpu_limit_cores", Some(2.0)),
            ("vitals_cgroup_cpu_periods_total", Some(5000.0)),
            ("vitals_cgroup_cpu_throttled_periods_total", Some(250.0)),
            // throttled_time 12500000000 ns
            ("vitals_cgroup_cpu_throttled_seconds_total", Some(12.5)),
            ("vitals_cgroup_memory_usage_bytes", Some(536870912.0)),
            // 536870912 - total_inactive_file 134217728
            ("vitals_cgroup_memory_working_set_bytes", Some(402653184.0)),
            ("vitals_cgroup_memory_rss_bytes", Some(314572800.0)),
            ("vitals_cgroup_memory_limit_bytes", Some(1073741824.0)),
            ("vitals_cgroup_memory_limit_utilization_ratio", Some(0.375)),
            // v1 has no OOM event counter (memory.failcnt 12 is not one).
            ("vitals_cgroup_memory_oom_events_total", None),
            ("vitals_cgroup_memory_oom_kills_total", Some(1.0)),
            ("vitals_cgroup_pids_current", Some(41.0)),
            ("vitals_cgroup_pids_limit", Some(512.0)),
            ("vitals_cgroup_pressure_cpu_some_seconds_total", None),
        ],
    );
    assert_eq!(
        limit_sources(&out),
        pairs(&[("cpu", "cgroup"), ("memory", "cgroup")])
    );
}

#[tokio::test]
async fn hybrid_reads_v1_controllers_and_unified_pressure() {
    let out = collect_tree("hybrid").await;
    assert_eq!(
        info(&out),
        ("hybrid".into(), "/system.slice/app.service".into())
    );
    assert_values(
        &out,
        &[
            // From v1 cpuacct.usage 14036781000 ns, not the unified cpu.stat.
            ("vitals_cgroup_cpu_usage_seconds_total", Some(14.036781)),
            // cfs_quota_us -1
            ("vitals_cgroup_cpu_limit_cores", None),
            ("vitals_cgroup_cpu_limit_utilization_ratio", None),
            ("vitals_cgroup_cpu_periods_total", Some(0.0)),
            ("vitals_cgroup_memory_usage_bytes", Some(104857600.0)),
            ("vitals_cgroup_memory_working_set_bytes", Some(73400320.0)),
            ("vitals_cgroup_memory_rss_bytes", Some(52428800.0)),
            ("vitals_cgroup_memory_limit_bytes", Some(2147483648.0)),
            (
                "vitals_cgroup_memory_limit_utilization_ratio",
                Some(0.0341796875),
            ),
            ("vitals_cgroup_memory_oom_events_total", None),
            ("vitals_cgroup_memory_oom_kills_total", Some(0.0)),
            ("vitals_cgroup_pids_current", Some(12.0)),
            ("vitals_cgroup_pids_limit", None),
            (
                "vitals_cgroup_pressure_cpu_some_seconds_total",
                Some(19.783677),
            ),
            ("vitals_cgroup_pressure_cpu_full_seconds_total", Some(0.0)),
            (
                "vitals_cgroup_pressure_memory_some_seconds_total",
                Some(0.0),
            ),
            (
                "vitals_cgroup_pressure_io_some_seconds_total",
                Some(6.550484),
            ),
            (
                "vitals_cgroup_pressure_io_full_seconds_total",
                Some(5.74369),
            ),
        ],
    );
    assert_eq!(limit_sources(&out), pairs(&[("memory", "cgroup")]));
}

#[tokio::test]
async fn paths_cgroup_as_base_for_v2_and_hybrid_trees() {
    for (name, version, usage) in [
        ("v2-limited", "v2", 14.036781),
        ("hybrid", "hybrid", 14.036781),
    ] {
        let root = fixture(name);
        let paths = Paths {
            proc: root.join("proc"),
            // Not used: paths.cgroup replaces the mountinfo mount points.
            sys: root.join("no-such-sys"),
            cgroup: Some(root.join("sys/fs/cgroup")),
        };
        let out = try_collect(&paths, &config(CgroupTarget::Own, None))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info(&out).0, version, "{name}");
        assert_eq!(
            value(&out, "vitals_cgroup_cpu_usage_seconds_total"),
            Some(usage),
            "{name}"
        );
        assert!(value(&out, "vitals_cgroup_memory_usage_bytes").is_some());
    }
}

#[tokio::test]
async fn targets_by_pid_pidfile_process_and_path() {
    let root = fixture("v2-limited");
    let scratch = tempfile::tempdir().unwrap();
    let pidfile = scratch.path().join("app.pid");
    std::fs::write(&pidfile, "4242\n").unwrap();
    let targets = [
        CgroupTarget::Pid(4242),
        CgroupTarget::Pidfile(pidfile),
        CgroupTarget::Process(Pattern(
            regex::Regex::new("^/usr/bin/app --port 8080$").unwrap(),
        )),
        CgroupTarget::Path("/system.slice/app.service".into()),
        CgroupTarget::Path("/sys/fs/cgroup/system.slice/app.service".into()),
    ];
    for target in targets {
        let label = format!("{target:?}");
        let out = try_collect(&paths(&root), &config(target, None))
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(info(&out).1, "/system.slice/app.service", "{label}");
        assert_eq!(
            value(&out, "vitals_cgroup_cpu_usage_seconds_total"),
            Some(14.036781),
            "{label}"
        );
    }
}

#[tokio::test]
async fn a_missing_target_is_a_clear_error() {
    let root = fixture("v2-limited");
    let scratch = tempfile::tempdir().unwrap();
    let garbage = scratch.path().join("garbage.pid");
    std::fs::write(&garbage, "not a pid\n").unwrap();
    let cases = [
        (
            CgroupTarget::Pid(999_999),
            "target process 999999 not found",
        ),
        (
            CgroupTarget::Process(Pattern(regex::Regex::new("^postgres").unwrap())),
            "target process not found",
        ),
        (
            CgroupTarget::Pidfile(scratch.path().join("missing.pid")),
            "target pidfile",
        ),
        (CgroupTarget::Pidfile(garbage), "target pidfile"),
        (
            CgroupTarget::Path("/system.slice/gone.service".into()),
            "does not exist",
        ),
    ];
    for (target, want) in cases {
        let label = format!("{target:?}");
        let e = try_collect(&paths(&root), &config(target, None))
            .await
            .expect_err(&label);
        assert!(e.to_string().contains(want), "{label}: {e}");
    }
}

#[tokio::test]
async fn cpu_utilization_ratio_over_the_interval() {
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(&fixture("v2-limited"), scratch.path());
    let stat = scratch
        .path()
        .join("sys/fs/cgroup/system.slice/app.service/cpu.stat");
    let original = std::fs::read_to_string(&stat).unwrap();
    let mut source = CgroupSource::new(&paths(scratch.path()), &config(CgroupTarget::Own, None));
    let t0 = Instant::now();
    let ratio = |out: &Output| value(out, "vitals_cgroup_cpu_limit_utilization_ratio");

    let mut first = Output::new();
    source.collect_at(&mut first, t0).await.unwrap();
    assert_eq!(ratio(&first), None);

    // 0.75 s of CPU in 1 s of wall time against a 1.5-core limit: 0.5.
    std::fs::write(
        &stat,
        original.replace("usage_usec 14036781", "usage_usec 14786781"),
    )
    .unwrap();
    let mut second = Output::new();
    source
        .collect_at(&mut second, t0 + Duration::from_secs(1))
        .await
        .unwrap();
    let r = ratio(&second).expect("ratio on the second round");
    // The two ratio families appear only from a second round: the catalog
    // test cannot see them, so their type and help are checked here.
    let families = common::catalog::assert_output_in_catalog(&second);
    assert!(families.contains("vitals_cgroup_cpu_throttled_ratio"));
    assert!((r - 0.5).abs() < 1e-9, "ratio {r}");
    // No period elapsed between the two readings: nothing was throttled.
    assert_eq!(
        value(&second, "vitals_cgroup_cpu_throttled_ratio"),
        Some(0.0)
    );

    // A counter that went backwards (cgroup recreated) gives no ratio.
    std::fs::write(&stat, &original).unwrap();
    let mut third = Output::new();
    source
        .collect_at(&mut third, t0 + Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(ratio(&third), None);
}

#[tokio::test]
async fn throttled_ratio_over_the_interval() {
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(&fixture("v2-limited"), scratch.path());
    let stat = scratch
        .path()
        .join("sys/fs/cgroup/system.slice/app.service/cpu.stat");
    let original = std::fs::read_to_string(&stat).unwrap();
    let periods = |text: &str, key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .unwrap()
    };
    let (p0, t0_throttled) = (
        periods(&original, "nr_periods"),
        periods(&original, "nr_throttled"),
    );
    let mut source = CgroupSource::new(&paths(scratch.path()), &config(CgroupTarget::Own, None));
    let t0 = Instant::now();
    let mut first = Output::new();
    source.collect_at(&mut first, t0).await.unwrap();
    assert_eq!(value(&first, "vitals_cgroup_cpu_throttled_ratio"), None);

    // 40 more periods, 10 of them throttled: 0.25.
    let next = original
        .replace(
            &format!("nr_periods {p0}"),
            &format!("nr_periods {}", p0 + 40),
        )
        .replace(
            &format!("nr_throttled {t0_throttled}"),
            &format!("nr_throttled {}", t0_throttled + 10),
        );
    std::fs::write(&stat, next).unwrap();
    let mut second = Output::new();
    source
        .collect_at(&mut second, t0 + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        value(&second, "vitals_cgroup_cpu_throttled_ratio"),
        Some(0.25)
    );
}

#[tokio::test]
async fn garbage_in_a_cgroup_file_fails_the_round_naming_the_file() {
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(&fixture("v2-throttled-oom"), scratch.path());
    std::fs::write(
        scratch.path().join("sys/fs/cgroup/memory.stat"),
        "anon lots\n",
    )
    .unwrap();
    let e = try_collect(&paths(scratch.path()), &config(CgroupTarget::Own, None))
        .await
        .unwrap_err();
    assert!(matches!(e, CollectError::Parse { .. }), "{e:?}");
    assert!(e.to_string().contains("memory.stat"), "{e}");
}

#[tokio::test]
async fn hybrid_without_the_unified_cgroup_keeps_v1_figures() {
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(&fixture("hybrid"), scratch.path());
    std::fs::remove_dir_all(
        scratch
            .path()
            .join("sys/fs/cgroup/unified/system.slice/app.service"),
    )
    .unwrap();
    let out = try_collect(&paths(scratch.path()), &config(CgroupTarget::Own, None))
        .await
        .unwrap();
    assert_values(
        &out,
        &[
            ("vitals_cgroup_cpu_usage_seconds_total", Some(14.036781)),
            ("vitals_cgroup_memory_limit_bytes", Some(2147483648.0)),
            ("vitals_cgroup_pressure_cpu_some_seconds_total", None),
            ("vitals_cgroup_pressure_io_some_seconds_total", None),
        ],
    );
}

/// The cgroup v2 Kubernetes node (`k8s-v2`): when the app's cgroup lies
/// outside vitals' cgroup namespace and neither way in works, the one-line
/// error says what is missing.
#[tokio::test]
async fn an_unreachable_container_cgroup_names_what_is_missing() {
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(&fixture("k8s-v2"), scratch.path());
    let root = scratch.path();
    let scope =
        "cri-containerd-4f1c2a9e7b3d5c6a8e0f1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4.scope";

    // Through the app's mounts, with its root out of reach.
    std::fs::remove_dir_all(root.join("proc/12/root")).unwrap();
    let e = try_collect(&paths(root), &config(CgroupTarget::Pid(12), None))
        .await
        .expect_err("no root")
        .to_string();
    for want in [
        &format!("/../{scope}"),
        "proc/12/root",
        "CAP_SYS_PTRACE",
        "shareProcessNamespace",
        "paths.cgroup",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }
    assert!(!e.contains('\n'), "{e}");

    // In the host tree, where no cgroup of that name lists the process.
    let host = root.join("host-cgroup");
    let procs = host
        .join("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7d0e1f2a_3b4c_4d5e_8f60_718293a4b5c6.slice")
        .join(scope)
        .join("cgroup.procs");
    std::fs::write(&procs, "99\n").unwrap();
    let host_paths = Paths {
        cgroup: Some(host),
        ..paths(root)
    };
    let e = try_collect(&host_paths, &config(CgroupTarget::Pid(12), None))
        .await
        .expect_err("not listed")
        .to_string();
    for want in [
        &format!("/../{scope}"),
        "cgroup.procs",
        "shareProcessNamespace",
        "hostPath",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }
    // Listed again: found, with its own limit.
    std::fs::write(&procs, "12\n").unwrap();
    let out = try_collect(&host_paths, &config(CgroupTarget::Pid(12), None))
        .await
        .expect("found");
    assert_eq!(
        value(&out, "vitals_cgroup_memory_limit_bytes"),
        Some(536870912.0)
    );
}

/// `container: auto` with one container that cannot be reached (its mount
/// namespace gone from under /proc): the others are still read and
/// published, and the round's error names the one that was not.
#[tokio::test]
async fn one_unreachable_container_fails_only_its_own_figures() {
    const JAVA: &str =
        "cri-containerd-4f1c2a9e7b3d5c6a8e0f1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4.scope";
    const WORKER: &str =
        "cri-containerd-9b7e6d5c4b3a29180f7e6d5c4b3a2918f0e1d2c3b4a5968778695a4b3c2d1e0f.scope";
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(&fixture("k8s-v2"), scratch.path());
    let auto = config(
        CgroupTarget::Container(vitals::config::ContainerSelect::Auto),
        None,
    );
    let usage = |out: &Output, container: &str| {
        out.value(
            "vitals_cgroup_memory_usage_bytes",
            &[("container", container)],
        )
    };
    let whole = try_collect(&paths(scratch.path()), &auto).await.unwrap();
    assert_eq!(usage(&whole, JAVA), Some(301989888.0));
    assert!(usage(&whole, WORKER).is_some());

    // The worker's first process (pid 30) is the one read through.
    std::fs::remove_dir_all(scratch.path().join("proc/30/root")).unwrap();
    let mut source = CgroupSource::new(&paths(scratch.path()), &auto);
    let mut out = Output::new();
    let e = source
        .collect(&mut out)
        .await
        .expect_err("the worker cannot be read")
        .to_string();
    assert!(e.starts_with(&format!("container {WORKER}: ")), "{e}");
    assert!(!e.contains(JAVA), "{e}");
    assert_eq!(usage(&out, JAVA), Some(301989888.0));
    assert_eq!(usage(&out, WORKER), None);
}

/// `v2-kernel-6.1`: files copied out of Debian's 6.1 cloud kernel
/// (6.1.0-57-cloud-amd64, 6.1.192) by tests/cgroup_v2_kernel.rs, as that
/// kernel wrote them: `work` (64M, 0.2 core, pids.max 32; 24 MiB held and
/// spinning, frozen), `oom` (16M after a real OOM kill) and `pressure`
/// (memory.high 8M against 12 MiB, pids.max 3 reached).
#[tokio::test]
async fn v2_files_of_a_real_6_1_kernel() {
    let root = fixture("v2-kernel-6.1");
    let out = collect_tree("v2-kernel-6.1").await;
    assert_eq!(info(&out), ("v2".into(), "/work".into()));
    assert_values(
        &out,
        &[
            ("vitals_cgroup_cpu_usage_seconds_total", Some(0.863089)),
            ("vitals_cgroup_cpu_limit_cores", Some(0.2)),
            ("vitals_cgroup_cpu_periods_total", Some(47.0)),
            ("vitals_cgroup_cpu_throttled_periods_total", Some(43.0)),
            ("vitals_cgroup_cpu_throttled_seconds_total", Some(3.280298)),
            ("vitals_cgroup_memory_usage_bytes", Some(25325568.0)),
            // inactive_file 0: all of it is the working set.
            ("vitals_cgroup_memory_working_set_bytes", Some(25325568.0)),
            ("vitals_cgroup_memory_rss_bytes", Some(25214976.0)),
            ("vitals_cgroup_memory_limit_bytes", Some(67108864.0)),
            ("vitals_cgroup_memory_oom_events_total", Some(0.0)),
            ("vitals_cgroup_memory_oom_kills_total", Some(0.0)),
            ("vitals_cgroup_pids_current", Some(1.0)),
            ("vitals_cgroup_pids_limit", Some(32.0)),
            (
                "vitals_cgroup_pressure_cpu_some_seconds_total",
                Some(3.395972),
            ),
            (
                "vitals_cgroup_pressure_cpu_full_seconds_total",
                Some(3.395972),
            ),
            (
                "vitals_cgroup_pressure_memory_some_seconds_total",
                Some(0.0),
            ),
            ("vitals_cgroup_pressure_io_some_seconds_total", Some(0.0)),
        ],
    );

    let oom = try_collect(
        &paths(&root),
        &config(CgroupTarget::Path("/oom".into()), None),
    )
    .await
    .expect("oom cgroup");
    assert_values(
        &oom,
        &[
            ("vitals_cgroup_memory_limit_bytes", Some(16777216.0)),
            ("vitals_cgroup_memory_usage_bytes", Some(114688.0)),
            ("vitals_cgroup_memory_oom_events_total", Some(1.0)),
            ("vitals_cgroup_memory_oom_kills_total", Some(1.0)),
            ("vitals_cgroup_pids_limit", None),
            ("vitals_cgroup_cpu_periods_total", Some(0.0)),
            (
                "vitals_cgroup_pressure_memory_some_seconds_total",
                Some(0.022177),
            ),
            (
                "vitals_cgroup_pressure_cpu_full_seconds_total",
                Some(0.033506),
            ),
        ],
    );

    let pressure = try_collect(
        &paths(&root),
        &config(CgroupTarget::Path("/pressure".into()), None),
    )
    .await
    .expect("pressure cgroup");
    assert_values(
        &pressure,
        &[
            ("vitals_cgroup_memory_usage_bytes", Some(9650176.0)),
            ("vitals_cgroup_memory_rss_bytes", Some(9490432.0)),
            ("vitals_cgroup_pids_current", Some(3.0)),
            ("vitals_cgroup_pids_limit", Some(3.0)),
            (
                "vitals_cgroup_pressure_memory_some_seconds_total",
                Some(5.517638),
            ),
            (
                "vitals_cgroup_pressure_memory_full_seconds_total",
                Some(5.457924),
            ),
        ],
    );
}
