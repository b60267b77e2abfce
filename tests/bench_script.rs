//! `bench/run.sh` and `bench/redis.sh` are not part of the test run (they
//! install packages, start servers and take minutes; see the README's
//! Performance section). This keeps them from rotting silently: bash (and
//! python) must at least be able to parse them.

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

#[test]
fn redis_bench_script_is_valid_bash_and_python() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/bench");
    for (tool, args, file) in [
        ("bash", &["-n"][..], "redis.sh"),
        (
            "python3",
            &["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())"][..],
            "redis_measure.py",
        ),
    ] {
        let out = Command::new(tool)
            .args(args)
            .arg(format!("{dir}/{file}"))
            .output()
            .unwrap_or_else(|e| panic!("running {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
