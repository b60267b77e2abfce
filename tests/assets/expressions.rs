//! Every PromQL expression of the dashboards and rules: it parses with
//! promtool and names only metrics vitals exports.

use super::*;

#[test]
fn every_expression_parses_with_promtool() {
    let exprs = all_exprs();
    assert!(exprs.len() > 100, "only {} expressions found", exprs.len());
    // Each expression becomes a recording rule named after where it comes
    // from, so promtool's complaint names the panel or the alert.
    let mut text = String::from("groups:\n  - name: bundled-expressions\n    rules:\n");
    let mut names = BTreeMap::new();
    for (i, expr) in exprs.iter().enumerate() {
        let promql = if expr.from_grafana {
            grafana_to_promql(&expr.promql)
        } else {
            expr.promql.clone()
        };
        assert!(
            !promql.contains('$') || !expr.from_grafana,
            "{}: variable left in {promql}",
            expr.origin
        );
        let record: String = format!("expr_{i}_{}", expr.origin)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        names.insert(record.clone(), expr.origin.clone());
        text.push_str(&format!(
            "      - record: {record}\n        expr: {}\n",
            serde_json::to_string(&promql).unwrap()
        ));
    }
    if let Err(e) = promtool_check_rules_text(&text) {
        panic!("promtool refuses an expression (the record name says where it is from):\n{e}");
    }
}

#[test]
fn a_broken_expression_is_caught_by_the_promtool_wrapper() {
    // The wrapper above must be able to fail.
    let text =
        "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: \"rate(x[1m]\"\n";
    assert!(promtool_check_rules_text(text).is_err());
}

#[test]
fn every_referenced_metric_is_exported() {
    let referenced = referenced_metrics().unwrap_or_else(|e| panic!("{e}"));
    // The extraction must find what the assets are about.
    for name in [
        "vitals_pg_replication_lag_seconds",
        "vitals_cgroup_cpu_usage_seconds_total",
        "vitals_check_status",
        "vitals_build_info",
        "process_resident_memory_bytes",
        "up",
    ] {
        assert!(
            referenced.contains_key(name),
            "{name} not found in the assets"
        );
    }
    let exported = exported_metrics_list();
    assert_none(
        missing_metrics(&referenced, &exported),
        "dashboards or rules use metrics vitals does not export (collectors::catalog())",
    );
    for name in referenced.keys() {
        assert!(
            // vitals' own footprint uses the conventional process_* names;
            // they are in the catalog like every vitals_ family.
            name.starts_with("vitals_")
                || name.starts_with("process_")
                || FROM_PROMETHEUS.contains(&name.as_str()),
            "{name} is not a vitals metric"
        );
    }
}
