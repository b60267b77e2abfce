//! The HTML page at `/`, opened in headless Chromium (Debian package
//! `chromium`): its DOM shows the check table with each instance's state.

mod common;

use common::{chromium, screenshot, Daemon};

#[test]
fn index_page_shows_checks_coloured_by_state() {
    // Three checks with known outcomes on this machine: memory total is far
    // above 2 bytes (critical), far above 1 byte going "below" (ok), and a
    // metric no series has (unknown).
    let d = Daemon::run(
        "interval: 1s\ndefault_checks: false\nsources:\n  cgroup: {enabled: false}\nchecks:\n\
         \x20 - {name: memory_is_huge, metric: vitals_host_memory_total_bytes, warning: 1, critical: 2}\n\
         \x20 - {name: memory_present, metric: vitals_host_memory_total_bytes, direction: below, warning: 1}\n\
         \x20 - {name: nothing_here, metric: 'vitals_process_up{process=\"absent\"}', critical: 1}\n",
    );
    d.wait_until("checks evaluated", |d| {
        d.get("/").text().contains("memory_is_huge")
    });
    let url = format!("http://{}/", d.addr);
    let profile = d.dir().join("profile");
    let out = chromium(&["--dump-dom", &url], &profile);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each row's class is its state; the state cell says it in words.
    for (check, state) in [
        ("memory_is_huge", "critical"),
        ("memory_present", "ok"),
        ("nothing_here", "unknown"),
    ] {
        let row = dom
            .split("<tr")
            .find(|r| r.contains(&format!("<td>{check}</td>")))
            .unwrap_or_else(|| panic!("no row for {check} in the DOM:\n{dom}"));
        assert!(
            row.starts_with(&format!(" class=\"{state}\"")),
            "{check}: {row}"
        );
        assert!(
            row.contains(&format!("<td class=\"state\">{state}</td>")),
            "{check}: {row}"
        );
    }
    assert!(dom.contains("Some checks are critical."), "{dom}");
    // A screenshot for people looking at a failed run.
    screenshot(&url, &d.dir().join("index.png"), "1000,500", &profile);
}
