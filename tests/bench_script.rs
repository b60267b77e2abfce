//! `bench/run.sh` is not part of the test run (it installs packages, starts
//! servers and takes minutes; see the README's Performance section). This
//! keeps it from rotting silently: bash must at least be able to parse it.

use std::process::Command;

#[test]
fn bench_script_is_valid_bash() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/run.sh");
    let out = Command::new("bash")
        .args(["-n", script])
        .output()
        .expect("running bash -n");
    assert!(
        out.status.success(),
        "bash -n bench/run.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn overload_bench_script_is_valid_bash() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/overload.sh");
    let out = Command::new("bash")
        .args(["-n", script])
        .output()
        .expect("running bash -n");
    assert!(
        out.status.success(),
        "bash -n bench/overload.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
