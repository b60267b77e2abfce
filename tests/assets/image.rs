//! The Dockerfile: a small image that runs as non-root.

use super::*;

#[test]
fn dockerfile_builds_a_small_non_root_image() {
    let text = read(&repo().join("deploy/Dockerfile"));
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let stages: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("FROM "))
        .map(|(i, _)| i)
        .collect();
    assert!(stages.len() >= 2, "a multi-stage build");
    let last = &lines[*stages.last().unwrap()..];
    assert!(
        last[0].contains("distroless") && last[0].ends_with(":nonroot"),
        "final stage {:?} is not distroless nonroot",
        last[0]
    );
    let user = last
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER in the final stage");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("numeric USER (runAsNonRoot needs it)");
    assert_ne!(uid, 0);
    assert!(
        last.iter().any(|l| l.starts_with("COPY --from=")),
        "the final stage copies the binary only"
    );
    assert!(last.contains(&"EXPOSE 8482"));
    assert!(last.contains(&r#"ENTRYPOINT ["/usr/local/bin/vitals"]"#));
    assert!(
        !last.iter().any(|l| l.starts_with("VOLUME")),
        "nothing to write: no VOLUME"
    );
    // What the build stage copies exists and is not ignored.
    let ignore = read(&repo().join("deploy/Dockerfile.dockerignore"));
    for line in &lines[..stages[1]] {
        if let Some(args) = line.strip_prefix("COPY ") {
            let parts: Vec<&str> = args.split_whitespace().collect();
            for source in &parts[..parts.len() - 1] {
                assert!(repo().join(source).exists(), "COPY {source}: missing");
                let source = source.trim_end_matches('/');
                assert!(
                    ignore
                        .lines()
                        .any(|l| l.trim() == format!("!{source}")
                            || l.trim() == format!("!{source}/")),
                    "{source} is left out of the build context by Dockerfile.dockerignore"
                );
            }
        }
    }
}
