//! `bench/run.sh` is not part of the test run (it installs packages, starts
//! servers and takes minutes; see the README's Performance section). This
//! keeps it from rotting silently: bash must at least be able to parse it.

mod common;

use std::process::Command;

#[test]
fn bench_script_is_valid_bash() {
    for script in ["bench/run.sh", "bench/app_metrics.sh"] {
        let out = Command::new("bash")
            .arg("-n")
            .arg(common::repo().join(script))
            .output()
            .expect("running bash -n");
        assert!(
            out.status.success(),
            "bash -n {script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
