//! The bench scripts are not part of the test run (they install packages,
//! start servers and take minutes; see the README's Performance section).
//! This keeps them from rotting silently: bash must at least be able to
//! parse every one of them.

mod common;

use std::process::Command;

fn assert_bash_parses(script: &std::path::Path) {
    let out = Command::new("bash")
        .arg("-n")
        .arg(script)
        .output()
        .expect("running bash -n");
    assert!(
        out.status.success(),
        "bash -n {}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_bench_script_is_valid_bash() {
    let dir = common::repo().join("bench");
    let mut scripts: Vec<_> = std::fs::read_dir(&dir)
        .expect("reading bench/")
        .map(|e| e.expect("bench/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    scripts.sort();
    // The listing must find the scripts the README names.
    for name in [
        "run.sh",
        "overload.sh",
        "redis.sh",
        "pg_deep.sh",
        "app_metrics.sh",
        "db_tls.sh",
        "relabel.sh",
    ] {
        assert!(
            scripts.iter().any(|p| p.ends_with(name)),
            "bench/{name} not found in {scripts:?}"
        );
    }
    for script in &scripts {
        assert_bash_parses(script);
    }
}

#[test]
fn every_bench_python_helper_parses() {
    let dir = common::repo().join("bench");
    let helpers: Vec<_> = std::fs::read_dir(&dir)
        .expect("reading bench/")
        .map(|e| e.expect("bench/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    assert!(!helpers.is_empty(), "no Python helper found in bench/");
    for helper in &helpers {
        let out = Command::new("python3")
            .args(["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())"])
            .arg(helper)
            .output()
            .expect("running python3");
        assert!(
            out.status.success(),
            "python3 {}: {}",
            helper.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_broken_script_is_caught() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broken.sh");
    std::fs::write(&path, "if true; then\n  echo missing fi\n").expect("writing");
    let out = Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("bash");
    assert!(!out.status.success(), "bash -n accepted a broken script");
}
