//! The bench scripts are not part of the test run (they install packages,
//! start servers and take minutes; see the README's Performance section).
//! This keeps them from rotting silently: bash must at least be able to
//! parse them.

use std::process::Command;

fn assert_bash_parses(script: &str) {
    let path = format!("{}/bench/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .args(["-n", &path])
        .output()
        .expect("running bash -n");
    assert!(
        out.status.success(),
        "bash -n bench/{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bench_script_is_valid_bash() {
    assert_bash_parses("run.sh");
}

#[test]
fn overload_bench_script_is_valid_bash() {
    assert_bash_parses("overload.sh");
}
