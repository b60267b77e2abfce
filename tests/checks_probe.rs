//! The http probe against a local server that answers 500 or slowly, feeding
//! the check engine: the probe checks go critical / warning and back.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vitals::checks::{CheckEngine, Now, SourceRound, State};
use vitals::collectors::http_probe::HttpProbeSource;
use vitals::collectors::Source;
use vitals::config::parse_str;
use vitals::metrics::Output;

const OK: u8 = 0;
const FAIL: u8 = 1;
const SLOW: u8 = 2;

/// A loopback server whose behaviour the test switches; it serves at most
/// `max` connections so the thread ends on its own.
fn server(mode: Arc<AtomicU8>, max: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().take(max) {
            let Ok(mut conn) = conn else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 512];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let reply: &[u8] = match mode.load(Ordering::SeqCst) {
                FAIL => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
                SLOW => {
                    // Longer than the configured latency levels below.
                    std::thread::sleep(Duration::from_millis(300));
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                }
                _ => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            };
            let _ = conn.write_all(reply);
        }
    });
    url
}

#[tokio::test]
async fn a_failing_then_slow_application_drives_the_probe_checks() {
    let mode = Arc::new(AtomicU8::new(OK));
    let url = server(mode.clone(), 20);
    // The default probe_errors check (5% / 10%), and probe_latency replaced
    // with levels a 300 ms answer crosses.
    let config = parse_str(
        &format!(
            "sources:
  host: {{enabled: false}}
  cgroup: {{enabled: false}}
  http_probes:
    - {{name: app, url: \"{url}\", timeout: 5s, window: 1m}}
checks:
  - {{name: probe_latency, metric: vitals_probe_duration_seconds, warning: 0.2, critical: 10, readiness: true, for: 0s, clear_for: 0s}}
"
        ),
        "test.yaml",
    )
    .unwrap();
    let scheduled = vitals::collectors::build(&config);
    assert_eq!(scheduled.len(), 1);
    assert_eq!(scheduled[0].id, "probe/app");
    let mut probe = HttpProbeSource::new(&config.sources.http_probes[0]);
    let mut engine = CheckEngine::new(&config);
    let start = Now::system();

    let mut log = Vec::new();
    let mut states = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    // (mode, rounds): 2 good, 1 failing (1/3 errors > 10%), 1 slow.
    for (i, m) in [OK, OK, FAIL, SLOW].into_iter().enumerate() {
        mode.store(m, Ordering::SeqCst);
        let mut out = Output::new();
        probe.collect(&mut out).await.unwrap();
        seen.extend(common::catalog::assert_output_in_catalog(&out));
        let (checks, transitions) = engine.evaluate(
            [SourceRound {
                source: "probe/app",
                output: &out,
                failed: false,
            }],
            start.after(i as f64 * 5.0),
        );
        seen.extend(common::catalog::assert_output_in_catalog(&checks));
        log.extend(transitions.iter().map(ToString::to_string));
        let state = |check: &str| {
            checks
                .value("vitals_check_status", &[("check", check), ("probe", "app")])
                .unwrap()
        };
        states.push((state("probe_errors"), state("probe_latency")));
    }
    assert_eq!(
        states,
        vec![(0.0, 0.0), (0.0, 0.0), (2.0, 0.0), (2.0, 1.0)],
        "{log:?}"
    );
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        log[0],
        "check=probe_errors instance={probe=\"app\"} ok -> critical value=0.3333333333333333"
    );
    assert!(
        log[1].starts_with("check=probe_latency instance={probe=\"app\"} ok -> warning value="),
        "{log:?}"
    );
    // Warning is not critical: readiness holds.
    assert!(engine.failing_readiness().is_empty());
    let snap = engine.snapshot();
    let latency = snap.iter().find(|s| s.check == "probe_latency").unwrap();
    assert_eq!(latency.state, State::Warning);
    assert!(latency.value.is_some_and(|v| v >= 0.3));
    // Every probe family of the catalog was emitted by these rounds.
    common::catalog::assert_covered("vitals_probe_", &seen);
}
