//! Configuration errors through the real binary: every class names
//! file:line:column and the dotted key, and exits 64.

mod common;

use common::{run_to_exit, temp_config};

/// `vitals check-config` on a file holding `text`: exit code, stdout, and
/// stderr with the file's path written FILE.
fn check_config(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_config(dir.path(), "vitals.yaml", text);
    let path = path.to_str().unwrap();
    let (status, stdout, stderr) = run_to_exit(&["check-config", path]);
    (
        status.code().unwrap_or(-1),
        stdout,
        stderr.replace(path, "FILE"),
    )
}

/// Every class of error in block and in flow style (the style the README
/// uses for list items): the same dotted key, each at its own position.
#[test]
fn each_error_class_names_path_and_position_in_both_styles_and_exits_64() {
    const PG: &str = "sources:\n  postgres:\n";
    let cases: &[(String, &str)] = &[
        // unknown key, with did-you-mean
        (
            "interval: 5s\nsources:\n  host:\n    enabld: true\n".into(),
            "FILE:4:5: unknown key `enabld` (key `sources.host.enabld`); did you mean `enabled`?",
        ),
        (
            "interval: 5s\nsources:\n  host: {enabld: true}\n".into(),
            "FILE:3:10: unknown key `enabld` (key `sources.host.enabld`); did you mean `enabled`?",
        ),
        (
            format!("{PG}    - name: a\n      dsn: \"host=127.0.0.1\"\n      intervl: 5s\n"),
            "FILE:5:7: unknown key `intervl` (key `sources.postgres[0].intervl`); did you mean `interval`?",
        ),
        (
            format!("{PG}    - {{name: a, dsn: \"host=127.0.0.1\", intervl: 5s}}\n"),
            "FILE:3:40: unknown key `intervl` (key `sources.postgres[0].intervl`); did you mean `interval`?",
        ),
        // wrong type
        (
            "interval: 5s\ndefault_checks: maybe\n".into(),
            "FILE:2:17: key `default_checks`: ",
        ),
        (
            "{interval: 5s, default_checks: maybe}\n".into(),
            "FILE:1:32: key `default_checks`: ",
        ),
        // bad duration
        (
            "sources:\n  host:\n    interval: 5\n".into(),
            "FILE:3:15: key `sources.host.interval`: duration 5 has no unit; write 5s or 5ms",
        ),
        (
            "sources:\n  host: {interval: 5}\n".into(),
            "FILE:2:20: key `sources.host.interval`: duration 5 has no unit; write 5s or 5ms",
        ),
        // bad address
        ("listen: localhost\n".into(), "FILE:1:9: key `listen`: "),
        ("{listen: localhost}\n".into(), "FILE:1:10: key `listen`: "),
        // bad DSN
        (
            format!("{PG}    - name: a\n      dsn: \"host=127.0.0.1 port=x\"\n"),
            "FILE:4:12: key `sources.postgres[0].dsn`: invalid dsn: ",
        ),
        (
            format!("{PG}    - {{name: a, dsn: \"host=127.0.0.1 port=x\"}}\n"),
            "FILE:3:22: key `sources.postgres[0].dsn`: invalid dsn: ",
        ),
        // bad probe URL
        (
            "sources:\n  http_probes:\n    - name: app\n      url: ftp://127.0.0.1/\n".into(),
            "FILE:4:12: key `sources.http_probes[0].url`: probe URL \"ftp://127.0.0.1/\" must start with http://",
        ),
        (
            "sources:\n  http_probes:\n    - {name: app, url: ftp://127.0.0.1/}\n".into(),
            "FILE:3:24: key `sources.http_probes[0].url`: probe URL \"ftp://127.0.0.1/\" must start with http://",
        ),
        // bad selector
        (
            "checks:\n  - name: lag\n    metric: 'lag{target=\"r\"'\n    critical: 5\n".into(),
            "FILE:3:13: key `checks[0].metric`: invalid selector ",
        ),
        (
            "checks:\n  - {name: lag, metric: 'lag{target=\"r\"', critical: 5}\n".into(),
            "FILE:2:25: key `checks[0].metric`: invalid selector ",
        ),
        // levels out of order
        (
            "checks:\n  - name: lag\n    metric: vitals_pg_replication_lag_seconds\n    warning: 5\n    critical: 1\n".into(),
            "FILE:4:14: key `checks[0].warning`: check `lag`: warning 5 is beyond critical 1",
        ),
        (
            "checks:\n  - {name: lag, metric: vitals_pg_up, warning: 5, critical: 1}\n".into(),
            "FILE:2:48: key `checks[0].warning`: check `lag`: warning 5 is beyond critical 1",
        ),
        // unknown enum value
        (
            "log:\n  format: xml\n".into(),
            "FILE:2:11: key `log.format`: unknown variant `xml`",
        ),
        (
            "log: {format: xml}\n".into(),
            "FILE:1:15: key `log.format`: unknown variant `xml`",
        ),
        // YAML syntax
        (
            "sources:\n  host:\n    interval: \"5s\n".into(),
            "FILE:3:15: key `sources.host.interval`: unclosed quote",
        ),
        (
            "sources:\n  host: {interval: 5s]\n".into(),
            "FILE:2:9: key `sources.host`: mismatched bracket",
        ),
    ];
    let mut wrong = Vec::new();
    for (text, expected) in cases {
        let (code, _, stderr) = check_config(text);
        if code != 64 || !stderr.starts_with(expected) {
            wrong.push(format!(
                "for {text:?}\n  expected exit 64 and: {expected}\n  got exit {code} and: {stderr}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A password inside a DSN is never repeated, whatever is wrong with it.
#[test]
fn a_bad_dsn_never_echoes_its_password() {
    for dsn in [
        "host=127.0.0.1 password=hunter2hunter2 port=x",
        "host=127.0.0.1 password='hunter2hunter2",
        "postgresql://u:hunter2hunter2@127.0.0.1:x/db",
    ] {
        for text in [
            format!("sources:\n  postgres:\n    - name: a\n      dsn: {dsn:?}\n"),
            format!("sources:\n  pgbouncer:\n    - {{name: a, dsn: {dsn:?}}}\n"),
        ] {
            let (code, stdout, stderr) = check_config(&text);
            assert_eq!(code, 64, "{stderr}");
            assert!(stderr.contains("invalid dsn"), "{stderr}");
            assert!(!stderr.contains("hunter2"), "{stderr}");
            assert!(!stdout.contains("hunter2"), "{stdout}");
        }
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
    let (status, _, stderr) = run_to_exit(&["check-config", example.to_str().unwrap()]);
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn daemon_refuses_to_start_on_bad_config_with_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_config(dir.path(), "bad.yaml", "sources:\n  hots: {}\n");
    let (status, _, stderr) = run_to_exit(&["--config", path.to_str().unwrap()]);
    assert_eq!(status.code(), Some(64));
    assert!(
        stderr.contains("bad.yaml:2:3: unknown key `hots` (key `sources.hots`)"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `host`?"), "{stderr}");
}

#[test]
fn missing_file_and_bad_flags_exit_64() {
    let (status, _, stderr) = run_to_exit(&["check-config", "/nonexistent/vitals.yaml"]);
    assert_eq!(status.code(), Some(64));
    assert!(stderr.contains("cannot read config file"), "{stderr}");
    let (status, _, _) = run_to_exit(&["--listen", "not-an-address"]);
    assert_eq!(status.code(), Some(64));
}

#[test]
fn version_names_the_package_version() {
    let (status, stdout, _) = run_to_exit(&["--version"]);
    assert!(status.success());
    assert!(stdout.starts_with(&format!("vitals {}", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn once_prints_one_round() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_config(
        dir.path(),
        "v.yaml",
        "sources:\n  cgroup: {enabled: false}\n",
    );
    let (status, text, stderr) = run_to_exit(&["once", "--config", path.to_str().unwrap()]);
    assert!(status.success(), "{stderr}");
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
    let (code, _, stderr) = check_config(&format!("web_config_file: {}\n", web.display()));
    assert_eq!(code, 64);
    assert!(stderr.contains("web.yml:2:"), "{stderr}");
    assert!(
        !stderr.contains("not-a-bcrypt-hash"),
        "the hash is echoed: {stderr}"
    );
}

/// Issue 28's first hour: a misspelt family in a check was "valid" and the
/// check stayed unknown forever. Now check-config and start refuse it at
/// its key, with the catalog's closest name.
#[test]
fn a_check_on_a_misspelt_family_or_label_is_refused_by_check_config_and_start() {
    let typo = "checks:\n  - name: replica_lag\n    metric: 'vitals_pg_replication_lag_second{target=\"replica\"}'\n    readiness: true\n";
    let (code, _, stderr) = check_config(typo);
    assert_eq!(code, 64, "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "FILE:3:13: key `checks[0].metric`: check `replica_lag`: `vitals_pg_replication_lag_second` is not a metric vitals exports (see the README metric reference); did you mean `vitals_pg_replication_lag_seconds`?"
    );
    let (code, _, stderr) = check_config(
        "checks:\n  - {name: lag, metric: 'vitals_pg_replication_lag_seconds{standby=\"r\"}', warning: 1}\n",
    );
    assert_eq!(code, 64);
    assert!(
        stderr.starts_with("FILE:2:25: key `checks[0].metric`: check `lag`: `vitals_pg_replication_lag_seconds` has no label `standby`"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = temp_config(dir.path(), "typo.yaml", typo);
    let (status, _, stderr) = run_to_exit(&["--config", path.to_str().unwrap()]);
    assert_eq!(status.code(), Some(64));
    assert!(
        stderr.contains("typo.yaml:3:13: key `checks[0].metric`"),
        "{stderr}"
    );
}

/// A check on an application family is accepted; check-config says which
/// app source must provide it. A partial override of a built-in check and a
/// percentage level on a ratio family are valid.
#[test]
fn check_config_names_the_app_source_of_an_app_family() {
    let (code, stdout, stderr) = check_config(
        "sources:\n  app_metrics:\n    - {name: api, url: 'http://127.0.0.1:9/metrics'}\nchecks:\n  - {name: jobs, metric: 'job_queue_size{queue=\"mail\"}', warning: 100}\n  - {name: replica_lag, warning: 2}\n  - {name: pgbouncer_pool, warning: 70%}\n",
    );
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].ends_with(": note: check `jobs` metric `job_queue_size` is an application metric, expected from app source `api`"),
        "{stdout}"
    );
    assert!(lines[1].ends_with(": configuration is valid"));
}

/// The README's check examples, copied from the README by the test so the
/// docs cannot drift: each is a valid config (with the app source `web`
/// they name), through check-config as a user would run it.
#[test]
fn the_readme_check_examples_are_valid() {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    let mut found = 0;
    for heading in [
        "## Checks\n",
        "### Derived checks: rate, ratio, quantile, trend\n",
    ] {
        let at = readme.find(heading).expect(heading) + heading.len();
        let rest = &readme[at..];
        let start = rest.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
        let block = &rest[start..start + rest[start..].find("```").unwrap()];
        assert!(block.contains("checks:"), "{block}");
        let text = format!(
            "{block}sources:\n  app_metrics:\n    - {{name: web, url: 'http://127.0.0.1:9/metrics'}}\n"
        );
        let (code, stdout, stderr) = check_config(&text);
        assert_eq!(code, 0, "{heading}: {stderr}\n{text}");
        assert!(stdout.ends_with(": configuration is valid\n"), "{stdout}");
        found += 1;
    }
    assert_eq!(found, 2);
}
