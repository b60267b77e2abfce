//! Real Prometheus is the judge of what vitals pushes (issue 20).
//!
//! One application serves the same figures in both text formats (`/text`:
//! text 0.0.4, `/om`: OpenMetrics 1.0): a histogram, a summary, counters
//! with and without `_total`, `_created` series, an info family, gauges, a
//! label with escapes Prometheus keeps as written (`\z`, `\f`), a label with
//! an empty value, and a series that goes away half-way. It is
//!
//! (a) scraped by a Prometheus 2.42 (Debian) directly, every 500 ms, and
//! (b) scraped by vitals (`app_metrics`, `export: true`, every 500 ms, so
//!     the marker of the next round comes well within the second) and pushed by remote
//!     write to a second Prometheus and to VictoriaMetrics.
//!
//! The three TSDBs, read through the HTTP API, must hold the same series
//! (ignoring `app`, `job`, `instance`) with the same values, and the series
//! that went away must be stale in all three: an instant query at its last
//! sample's time + 1 s finds nothing, where without a stale marker it would
//! be found for the 5-minute lookback.

mod common;
#[path = "common/receivers.rs"]
mod receivers;

use common::{poll, unix_now, Daemon};
use receivers::{Kind, Receiver};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The text 0.0.4 exposition; `flapping` adds the series that goes away.
fn text_body(flapping: bool) -> String {
    let mut body = String::from(
        r#"# HELP t_shop_request_duration_seconds Time to answer a request.
# TYPE t_shop_request_duration_seconds histogram
t_shop_request_duration_seconds_bucket{handler="/cart",le="0.1"} 3
t_shop_request_duration_seconds_bucket{handler="/cart",le="0.5"} 7
t_shop_request_duration_seconds_bucket{handler="/cart",le="+Inf"} 8
t_shop_request_duration_seconds_sum{handler="/cart"} 1.75
t_shop_request_duration_seconds_count{handler="/cart"} 8
t_shop_request_duration_seconds_created{handler="/cart"} 1.7000000005e+09
# HELP t_shop_rpc_latency_seconds RPC latency.
# TYPE t_shop_rpc_latency_seconds summary
t_shop_rpc_latency_seconds{quantile="0.5"} 0.25
t_shop_rpc_latency_seconds{quantile="0.99"} 1.5
t_shop_rpc_latency_seconds_sum 42.5
t_shop_rpc_latency_seconds_count 120
# HELP t_shop_orders_total Orders by state.
# TYPE t_shop_orders_total counter
t_shop_orders_total{state="paid"} 1027
t_shop_orders_total{state="failed"} 3
# TYPE t_shop_legacy_hits counter
t_shop_legacy_hits 55
# TYPE t_shop_queue_depth gauge
t_shop_queue_depth{queue="mail"} 12
t_shop_queue_depth{queue="",region="eu"} 4
t_shop_untyped_thing -0.5
# TYPE t_shop_paths gauge
t_shop_paths{path="C:\\temp\z\f",quote="say \"hi\"",nl="a\nb"} 1
"#,
    );
    if flapping {
        body.push_str("# TYPE t_shop_flapping gauge\nt_shop_flapping{phase=\"one\"} 7\n");
    }
    body
}

/// The same figures as OpenMetrics 1.0.
fn openmetrics_body(flapping: bool) -> String {
    let mut body = String::from(
        r#"# TYPE o_shop_request_duration_seconds histogram
# UNIT o_shop_request_duration_seconds seconds
# HELP o_shop_request_duration_seconds Time to answer a request.
o_shop_request_duration_seconds_bucket{handler="/cart",le="0.1"} 3
o_shop_request_duration_seconds_bucket{handler="/cart",le="0.5"} 7 # {trace_id="4bf92f"} 0.3 1700000000.1
o_shop_request_duration_seconds_bucket{handler="/cart",le="+Inf"} 8
o_shop_request_duration_seconds_sum{handler="/cart"} 1.75
o_shop_request_duration_seconds_count{handler="/cart"} 8
o_shop_request_duration_seconds_created{handler="/cart"} 1700000000.5
# TYPE o_shop_rpc_latency_seconds summary
o_shop_rpc_latency_seconds{quantile="0.5"} 0.25
o_shop_rpc_latency_seconds{quantile="0.99"} 1.5
o_shop_rpc_latency_seconds_sum 42.5
o_shop_rpc_latency_seconds_count 120
# TYPE o_shop_orders counter
# HELP o_shop_orders Orders by state.
o_shop_orders_total{state="paid"} 1027
o_shop_orders_created{state="paid"} 1700000000.25
o_shop_orders_total{state="failed"} 3
o_shop_orders_created{state="failed"} 1700000000.75
# TYPE o_shop_build info
o_shop_build_info{version="1.2.3"} 1
# TYPE o_shop_queue_depth gauge
o_shop_queue_depth{queue="mail"} 12
o_shop_queue_depth{queue="",region="eu"} 4
# TYPE o_shop_untyped_thing unknown
o_shop_untyped_thing -0.5
# TYPE o_shop_paths gauge
o_shop_paths{path="C:\\temp\z\f",quote="say \"hi\"",nl="a\nb"} 1
"#,
    );
    if flapping {
        body.push_str("# TYPE o_shop_flapping gauge\no_shop_flapping{phase=\"one\"} 7\n");
    }
    body.push_str("# EOF\n");
    body
}

const SHOP: &str = r#"{__name__=~"[to]_shop_.*"}"#;

#[test]
fn prometheus_scraping_the_app_and_vitals_pushing_it_hold_the_same_series() {
    let flapping = Arc::new(AtomicBool::new(true));
    // `/text` and `/om`; the flag says whether the series that goes away is
    // still there.
    let port = {
        let flapping = flapping.clone();
        common::serve(move |path| {
            let present = flapping.load(Ordering::SeqCst);
            if path.starts_with("/om") {
                (
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    openmetrics_body(present),
                )
            } else {
                (
                    "text/plain; version=0.0.4; charset=utf-8",
                    text_body(present),
                )
            }
        })
    };
    let direct = Receiver::start_prometheus(&format!(
        "global: {{scrape_interval: 500ms, scrape_timeout: 500ms}}\n\
         scrape_configs:\n\
         \x20 - {{job_name: text, metrics_path: /text, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}\n\
         \x20 - {{job_name: om, metrics_path: /om, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}\n"
    ));
    let pushed = Receiver::start(Kind::Prometheus);
    let victoria = Receiver::start(Kind::VictoriaMetrics);
    let d = Daemon::run(&format!(
        "interval: 500ms\ndefault_checks: false\n\
         sources:\n  host: {{enabled: false}}\n  cgroup: {{enabled: false}}\n\
         \x20 app_metrics:\n\
         \x20   - {{name: text, url: \"http://127.0.0.1:{port}/text\", export: true}}\n\
         \x20   - {{name: om, url: \"http://127.0.0.1:{port}/om\", export: true}}\n\
         remote_write:\n  - {{url: \"{}\"}}\n  - {{url: \"{}\"}}\n",
        pushed.write_url(),
        victoria.write_url()
    ));
    let dbs = [
        ("direct", &direct),
        ("pushed", &pushed),
        ("victoria", &victoria),
    ];
    let has = |db: &Receiver, name: &str| !db.query(name, unix_now()).is_empty();
    for (what, db) in dbs {
        poll(what, Duration::from_secs(60), || {
            has(db, "t_shop_flapping") && has(db, "o_shop_flapping")
        });
    }
    // A few more rounds on both sides, then the series goes away.
    std::thread::sleep(Duration::from_secs(3));
    let both = direct.series_at(SHOP, unix_now());
    flapping.store(false, Ordering::SeqCst);
    for (what, db) in dbs {
        poll(what, Duration::from_secs(30), || {
            !has(db, "t_shop_flapping") && !has(db, "o_shop_flapping")
        });
    }
    std::thread::sleep(Duration::from_secs(2));
    let now = unix_now();
    let reference = direct.series_at(SHOP, now);
    // Not vacuous: Prometheus kept every series of both formats, the odd
    // escapes as written and the empty label as no label.
    assert!(
        reference.len() >= 2 * 17,
        "Prometheus' own scrape: {reference:#?}\n{}",
        d.log()
    );
    assert!(reference.contains_key(
        r#"{"__name__": "t_shop_paths", "nl": "a\nb", "path": "C:\\temp\\z\\f", "quote": "say \"hi\""}"#
    ));
    assert!(reference.contains_key(r#"{"__name__": "o_shop_queue_depth", "region": "eu"}"#));
    assert!(reference.contains_key(
        r#"{"__name__": "t_shop_request_duration_seconds_bucket", "handler": "/cart", "le": "+Inf"}"#
    ));
    assert_eq!(both.len(), reference.len() + 2, "the two flapping series");
    for (what, db) in [("pushed", &pushed), ("victoria", &victoria)] {
        assert_eq!(
            db.series_at(SHOP, now),
            reference,
            "{what} differs from Prometheus' own scrape"
        );
    }
    // The series that went away is stale everywhere: found at its last
    // sample's time, not one second later (the lookback is 5 minutes).
    for (what, db) in dbs {
        for name in ["t_shop_flapping", "o_shop_flapping"] {
            let window = db.query(&format!("{name}[2m]"), now);
            assert_eq!(window.len(), 1, "{what} {name}: {window:?}");
            // VictoriaMetrics 1.79 lists the stale marker itself (a NaN) in
            // a range; Prometheus leaves it out.
            let &(last_ms, value) = window[0].1.iter().rev().find(|(_, v)| !v.is_nan()).unwrap();
            assert_eq!(value, 7.0, "{what} {name}: {window:?}");
            let last = last_ms as f64 / 1000.0;
            assert_eq!(db.query(name, last).len(), 1, "{what} {name} at {last}");
            assert!(
                db.query(name, last + 1.0).is_empty(),
                "{what}: {name} is not stale one second after its last sample"
            );
        }
    }
}
