//! Configuration errors through the real binary: every class names
//! file:line:column and exits 64.

mod common;

use common::temp_config;
use std::process::Command;

fn check_config(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_config(dir.path(), "vitals.yaml", text);
    let out = Command::new(env!("CARGO_BIN_EXE_vitals"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).replace(path.to_str().unwrap(), "FILE");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

#[test]
fn each_error_class_names_position_and_exits_64() {
    let cases: &[(&str, &str)] = &[
        // unknown key, with did-you-mean
        (
            "interval: 5s\nsources:\n  host:\n    enabld: true\n",
            "FILE:4:5: unknown key `enabld` (key `sources.host.enabld`); did you mean `enabled`?",
        ),
        // wrong type
        ("interval: 5s\ndefault_checks: maybe\n", "FILE:2:17: key `default_checks`:"),
        // bad duration
        ("interval: 5\n", "FILE:1:11: key `interval`: duration 5 has no unit; write 5s or 5ms"),
        // bad address
        ("listen: localhost\n", "FILE:1:9: key `listen`:"),
        // YAML syntax
        ("sources: {host: [\n", "FILE:"),
        // cross-key: levels out of order
        (
            "checks:\n  - name: lag\n    metric: vitals_pg_replication_lag_seconds\n    warning: 5\n    critical: 1\n",
            "FILE:2:5: check `lag`: warning 5 is beyond critical 1",
        ),
        // unknown enum value
        ("log: {format: xml}\n", "FILE:1:15: key `log.format`: unknown variant `xml`"),
    ];
    for (text, expected) in cases {
        let (code, _, stderr) = check_config(text);
        assert_eq!(code, 64, "exit code for {text:?}: {stderr}");
        assert!(
            stderr.starts_with(expected),
            "for {text:?}\nexpected prefix: {expected}\ngot: {stderr}"
        );
    }
}

#[test]
fn valid_config_exits_0() {
    let (code, stdout, stderr) = check_config("interval: 10s\nsources:\n  host: {enabled: true}\n");
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.ends_with(": configuration is valid\n"), "{stdout}");
}

#[test]
fn example_config_is_valid() {
    let example = common::repo().join("config.example.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_vitals"))
        .arg("check-config")
        .arg(&example)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn daemon_refuses_to_start_on_bad_config_with_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_config(dir.path(), "bad.yaml", "sources:\n  hots: {}\n");
    let out = Command::new(env!("CARGO_BIN_EXE_vitals"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:2:3: unknown key `hots`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `host`?"), "{stderr}");
}

#[test]
fn missing_file_and_bad_flags_exit_64() {
    let out = Command::new(env!("CARGO_BIN_EXE_vitals"))
        .args(["check-config", "/nonexistent/vitals.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
    let out = Command::new(env!("CARGO_BIN_EXE_vitals"))
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn version_names_the_package_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_vitals"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout)
        .starts_with(&format!("vitals {}", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn once_prints_one_round() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_config(
        dir.path(),
        "v.yaml",
        "sources:\n  cgroup: {enabled: false}\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_vitals"))
        .args(["once", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        common::sample(&text, "vitals_source_success", &[("source", "host")]),
        Some(1.0)
    );
    assert!(common::sample(&text, "vitals_host_load1", &[]).is_some());
}

#[test]
fn check_config_also_checks_the_web_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let web = temp_config(
        dir.path(),
        "web.yml",
        "basic_auth_users:\n  prometheus: not-a-bcrypt-hash\n",
    );
    let path = temp_config(
        dir.path(),
        "vitals.yaml",
        &format!("web_config_file: {}\n", web.display()),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_vitals"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("web.yml:2:"), "{stderr}");
    assert!(
        !stderr.contains("not-a-bcrypt-hash"),
        "the hash is echoed: {stderr}"
    );
}
