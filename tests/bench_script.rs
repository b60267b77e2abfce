//! `bench/run.sh` is not part of the test run (it installs packages, starts
//! servers and takes minutes; see the README's Performance section). This
//! keeps it from rotting silently: bash must at least be able to parse it.

mod common;

use std::process::Command;

#[test]
fn bench_script_is_valid_bash() {
    let script = common::repo().join("bench/run.sh");
    let out = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("running bash -n");
    assert!(
        out.status.success(),
        "bash -n bench/run.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
