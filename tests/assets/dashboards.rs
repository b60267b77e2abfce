//! The Grafana dashboards: conventions per panel, and thresholds drawn at
//! the built-in checks' levels.

use super::*;

fn uses_variable(m: Option<&bundled::promql::Matcher>, variable: &str) -> bool {
    m.is_some_and(|m| {
        m.op == "=~" && (m.value == format!("${variable}") || m.value == format!("${{{variable}}}"))
    })
}

fn selector_problems(selector: &Selector) -> Vec<String> {
    let mut out = Vec::new();
    let name = selector.metric.as_deref().unwrap_or("{...}");
    for variable in ["job", "instance"] {
        if !uses_variable(selector.matcher(variable), variable) {
            out.push(format!("{name} lacks {variable}=~\"${variable}\""));
        }
    }
    if let Some(range) = &selector.range {
        if range != "$__rate_interval" {
            out.push(format!("{name}[{range}] should use [$__rate_interval]"));
        }
    }
    out
}

#[test]
fn dashboards_follow_the_conventions() {
    let files: Vec<String> = dashboard_files()
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let expected: Vec<String> = DASHBOARDS.iter().map(|d| d.0.to_owned()).collect();
    assert_eq!(
        files, expected,
        "dashboards/ holds exactly these dashboards"
    );

    let mut problems = Vec::new();
    for (file, uid, title) in DASHBOARDS {
        let dashboard = parse_json(&repo().join("dashboards").join(file));
        let mut problem = |p: String| problems.push(format!("{file}: {p}"));
        if str_of(&dashboard, "uid") != *uid {
            problem(format!("uid {} is not {uid}", dashboard["uid"]));
        }
        if str_of(&dashboard, "title") != *title {
            problem(format!("title {} is not {title:?}", dashboard["title"]));
        }
        if dashboard.get("__inputs").is_some() {
            problem("has __inputs: use the datasource variable instead".into());
        }
        if !dashboard["id"].is_null() {
            problem("id must be null (Grafana assigns it)".into());
        }
        if str_of(&dashboard, "description").is_empty() {
            problem("no description".into());
        }

        // Variables: datasource, then job, then instance, then the rest, each
        // narrowed by the ones before it.
        let variables = variables(&dashboard);
        let names: Vec<&str> = variables.iter().map(|v| str_of(v, "name")).collect();
        if names.get(..3) != Some(&["datasource", "job", "instance"][..]) {
            problem(format!(
                "variables {names:?} must start with datasource, job, instance"
            ));
        }
        for variable in &variables {
            let name = str_of(variable, "name");
            if name == "datasource" {
                if str_of(variable, "type") != "datasource"
                    || str_of(variable, "query") != "prometheus"
                {
                    problem(
                        "variable datasource must be of type datasource, query prometheus".into(),
                    );
                }
                continue;
            }
            if str_of(variable, "type") != "query" {
                problem(format!("variable {name} is not a query variable"));
            }
            if variable["datasource"]["uid"] != "${datasource}" {
                problem(format!("variable {name} does not use ${{datasource}}"));
            }
            let query = variable_query(variable).unwrap_or("");
            let narrowed_by: &[&str] = match name {
                "job" => &[],
                "instance" => &["job"],
                _ => &["job", "instance"],
            };
            match variable_promql(query) {
                Ok(Some(expr)) => {
                    for selector in selectors_in_expr(&expr).unwrap_or_default() {
                        for v in narrowed_by {
                            if !uses_variable(selector.matcher(v), v) {
                                problem(format!(
                                    "variable {name}: {query} is not narrowed by ${v}"
                                ));
                            }
                        }
                    }
                }
                Ok(None) => problem(format!("variable {name}: {query} reads no series")),
                Err(e) => problem(format!("variable {name}: {e}")),
            }
        }

        let mut ids = BTreeSet::new();
        for panel in panels(&dashboard) {
            let id = panel["id"].as_u64().unwrap_or(0);
            let ptitle = str_of(panel, "title");
            let mut problem =
                |p: String| problems.push(format!("{file} panel {id} {ptitle:?}: {p}"));
            if !ids.insert(id) {
                problem("duplicate or missing id".into());
            }
            if ptitle.is_empty() {
                problem("no title".into());
            }
            if !panel["gridPos"]["w"].is_u64() || !panel["gridPos"]["h"].is_u64() {
                problem("no gridPos".into());
            }
            if panel["type"] == "row" {
                continue;
            }
            if str_of(panel, "description").len() < 20 {
                problem("no description".into());
            }
            if str_of(&panel["fieldConfig"]["defaults"], "unit").is_empty() {
                problem("no unit".into());
            }
            if panel["datasource"]["uid"] != "${datasource}" {
                problem("panel datasource is not ${datasource}".into());
            }
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                problem("no queries".into());
            }
            for target in &targets {
                let refid = str_of(target, "refId");
                if target["datasource"]["uid"] != "${datasource}" {
                    problem(format!("target {refid} datasource is not ${{datasource}}"));
                }
                let expr = str_of(target, "expr");
                match selectors_in_expr(expr) {
                    Ok(selectors) if selectors.is_empty() => {
                        problem(format!("target {refid} reads no series: {expr}"))
                    }
                    Ok(selectors) => {
                        for p in selectors.iter().flat_map(selector_problems) {
                            problem(format!("target {refid}: {p}"));
                        }
                    }
                    Err(e) => problem(format!("target {refid}: {e}")),
                }
            }
        }
    }
    assert_none(problems, "dashboard conventions broken");
}

/// A panel's threshold steps: (value, color), the first with no value.
fn threshold_steps(defaults: &Value) -> Vec<(Option<f64>, &str)> {
    defaults["thresholds"]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (s["value"].as_f64(), str_of(s, "color")))
        .collect()
}

/// A time series panel draws its thresholds (other kinds color by them).
fn thresholds_drawn(panel: &Value) -> bool {
    panel["type"] != "timeseries"
        || !matches!(
            panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"].as_str(),
            None | Some("off")
        )
}

#[test]
fn dashboard_thresholds_sit_at_the_default_check_levels() {
    let mut problems = Vec::new();
    let mut drawn: BTreeSet<&str> = BTreeSet::new();
    for file in dashboard_files() {
        let dashboard = parse_json(&file);
        for panel in panels(&dashboard) {
            let mut levels: Vec<&Level> = Vec::new();
            for target in panel["targets"].as_array().into_iter().flatten() {
                for selector in selectors_in_expr(str_of(target, "expr")).unwrap_or_default() {
                    if let Some(level) = selector.metric.as_deref().and_then(level_of) {
                        levels.push(level);
                    }
                }
            }
            let Some(first) = levels.first() else {
                continue;
            };
            let at = format!("{} panel {:?}", rel(&file), str_of(panel, "title"));
            if levels.iter().any(|l| {
                (l.warning, l.critical, l.above) != (first.warning, first.critical, first.above)
            }) {
                problems.push(format!("{at}: mixes metrics with different check levels"));
                continue;
            }
            let defaults = &panel["fieldConfig"]["defaults"];
            let steps = threshold_steps(defaults);
            let want: Vec<(Option<f64>, &str)> = match (first.above, first.warning) {
                (true, Some(w)) => vec![
                    (None, "green"),
                    (Some(w), "orange"),
                    (Some(first.critical), "red"),
                ],
                (true, None) => vec![(None, "green"), (Some(first.critical), "red")],
                (false, _) => vec![(None, "red"), (Some(first.critical), "green")],
            };
            if steps != want {
                problems.push(format!(
                    "{at}: thresholds {steps:?}, want the {} levels {want:?}",
                    first.check
                ));
            }
            if !thresholds_drawn(panel) {
                problems.push(format!(
                    "{at}: thresholds are not drawn (thresholdsStyle off)"
                ));
            }
            drawn.insert(first.check.as_str());
        }
    }
    for level in default_levels() {
        if !drawn.contains(level.check.as_str()) {
            problems.push(format!(
                "no panel shows {} ({}) with its levels",
                level.metric, level.check
            ));
        }
    }
    assert_none(problems, "dashboard thresholds");
}

/// Threshold steps of a panel drawing a check with these levels: green,
/// orange from the warning, red from the critical (reversed below).
fn steps_for(
    warning: Option<f64>,
    critical: Option<f64>,
    above: bool,
) -> Vec<(Option<f64>, &'static str)> {
    let mut steps = vec![(None, "green")];
    if above {
        steps.extend(warning.map(|w| (Some(w), "orange")));
        steps.extend(critical.map(|c| (Some(c), "red")));
    } else {
        steps = vec![(None, "red")];
        match (critical, warning) {
            (Some(c), Some(w)) => steps.extend([(Some(c), "orange"), (Some(w), "green")]),
            (Some(c), None) => steps.push((Some(c), "green")),
            (None, Some(w)) => steps = vec![(None, "orange"), (Some(w), "green")],
            (None, None) => {}
        }
    }
    steps
}

#[test]
fn dashboard_draws_the_app_checks_at_their_levels() {
    // The app defaults read derived values, so their panels select them by
    // check name on vitals_check_value; their levels come from the agent.
    let config = vitals::config::parse_str(
        "sources:\n  app_metrics:\n    - {name: web, url: 'http://127.0.0.1:1/metrics', queue: jobs}\n",
        "t.yaml",
    )
    .expect("config with an app source");
    let checks = vitals::checks::app_defaults::checks(&config);
    assert!(checks.len() >= 5, "app defaults: {}", checks.len());
    let mut problems = Vec::new();
    let mut drawn: BTreeSet<String> = BTreeSet::new();
    for file in dashboard_files() {
        let dashboard = parse_json(&file);
        for panel in panels(&dashboard) {
            let mut shown: Vec<&vitals::config::CheckConfig> = Vec::new();
            for target in panel["targets"].as_array().into_iter().flatten() {
                for selector in selectors_in_expr(str_of(target, "expr")).unwrap_or_default() {
                    if selector.metric.as_deref() != Some("vitals_check_value") {
                        continue;
                    }
                    let Some(m) = selector.matcher("check") else {
                        continue;
                    };
                    let re = regex::Regex::new(&format!("^(?:{})$", m.value)).unwrap();
                    shown.extend(checks.iter().filter(|c| match m.op.as_str() {
                        "=" => c.name == m.value,
                        "=~" => re.is_match(&c.name),
                        _ => false,
                    }));
                }
            }
            let Some(first) = shown.first() else {
                continue;
            };
            let at = format!("{} panel {:?}", rel(&file), str_of(panel, "title"));
            let levels = |c: &vitals::config::CheckConfig| (c.warning, c.critical, c.direction);
            if shown.iter().any(|c| levels(c) != levels(first)) {
                problems.push(format!("{at}: mixes checks with different levels"));
                continue;
            }
            let defaults = &panel["fieldConfig"]["defaults"];
            let steps = threshold_steps(defaults);
            let want = steps_for(
                first.warning,
                first.critical,
                first.direction == vitals::config::Direction::Above,
            );
            if steps != want {
                problems.push(format!(
                    "{at}: thresholds {steps:?}, want the {} levels {want:?}",
                    first.name
                ));
            }
            if !thresholds_drawn(panel) {
                problems.push(format!("{at}: thresholds are not drawn"));
            }
            drawn.extend(shown.iter().map(|c| c.name.clone()));
        }
    }
    for c in &checks {
        if !drawn.contains(&c.name) {
            problems.push(format!(
                "no panel shows the app check {} with its levels",
                c.name
            ));
        }
    }
    assert_none(problems, "app check panels");
}

#[test]
fn app_check_threshold_steps_follow_the_direction() {
    // The leak check fires below its levels: red under the critical.
    assert_eq!(
        steps_for(Some(14400.0), Some(3600.0), false),
        [
            (None, "red"),
            (Some(3600.0), "orange"),
            (Some(14400.0), "green")
        ]
    );
    assert_eq!(
        steps_for(Some(1.0), Some(5.0), true),
        [(None, "green"), (Some(1.0), "orange"), (Some(5.0), "red")]
    );
}
