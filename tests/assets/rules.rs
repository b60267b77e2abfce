//! The Prometheus rules: promtool check and unit tests, conventions,
//! runbook sections, and raw-metric rules at the built-in checks' levels.

use super::*;

#[test]
fn rules_pass_promtool_check_rules() {
    let files = rule_files();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let expected: Vec<&str> = RULE_GROUPS.iter().map(|g| g.0).collect();
    assert_eq!(names, expected, "alerts/ holds exactly these rule files");
    let mut args = vec!["check", "rules"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = tool("promtool", &args, PROMTOOL);
    let text = output_text(&out);
    assert!(out.status.success(), "promtool check rules:\n{text}");
    assert!(
        !text.contains("WARNING"),
        "promtool check rules warns:\n{text}"
    );
}

/// Issue 28: six alert names of `vitals rules` also existed, with other
/// expressions, in vitals-raw.rules.yml. Every bundled rule file and the
/// rules generated for the default configuration load together in one
/// promtool run, and no alert name is defined in two of them (within one
/// file, a warning and a critical rule share their alert's name).
#[test]
fn bundled_and_generated_rules_load_together_with_unique_alert_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vitals"))
        .arg("rules")
        .env_remove("RUST_LOG")
        .output()
        .expect("run vitals rules");
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(out.stderr.is_empty(), "{}", output_text(&out));
    let generated = dir.path().join("vitals-generated.rules.yml");
    std::fs::write(&generated, &out.stdout).unwrap();
    let mut files = rule_files();
    files.push(generated);
    let mut args = vec!["check", "rules"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = tool("promtool", &args, PROMTOOL);
    assert!(out.status.success(), "{}", output_text(&out));
    let mut defined: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let parsed = parse_yaml(file);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for group in parsed["groups"].as_array().into_iter().flatten() {
            for rule in group["rules"].as_array().into_iter().flatten() {
                if let Some(alert) = rule["alert"].as_str() {
                    defined
                        .entry(alert.to_owned())
                        .or_default()
                        .insert(name.clone());
                }
            }
        }
    }
    assert!(defined.len() > 50, "only {} alert names", defined.len());
    let twice: Vec<String> = defined
        .iter()
        .filter(|(_, files)| files.len() > 1)
        .map(|(alert, files)| format!("{alert} in {files:?}"))
        .collect();
    assert!(
        twice.is_empty(),
        "alert names defined in more than one file:\n{}",
        twice.join("\n")
    );
}

/// The built-in checks whose generated alerts have a runbook section: the
/// defaults and the application defaults of an app source (those named
/// after an app have none).
fn generated_checks() -> Vec<vitals::checks::Check> {
    let config = vitals::checks::resolve::parse_str(
        "sources:\n  app_metrics:\n    - {name: api, url: 'http://127.0.0.1:9/metrics', export: true}\n",
        "t.yaml",
    )
    .unwrap();
    vitals::checks::effective_checks(&config)
        .into_iter()
        .filter(|c| c.config.runbook_url.is_some())
        .collect()
}

const GENERATED_BEGIN: &str =
    "<!-- The sections below are generated from the built-in checks (checks::rules::runbook_section); VITALS_UPDATE_DOCS=1 cargo test --test assets rewrites them. -->\n";
const GENERATED_END: &str = "<!-- End of the generated sections. -->\n";

/// Issue 28: some generated alerts had no runbook section, and the
/// runbook's durations differed from the checks'. The sections of the
/// generated alerts come from the checks themselves; each links to the
/// raw-metric alert on the same figure from the runbook's check table.
#[test]
fn runbook_has_a_generated_section_for_each_built_in_check() {
    let path = repo().join("docs/runbook.md");
    let text = read(&path);
    let same: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("| `")?;
            let (check, rest) = l.split_once("` | [")?;
            let (alert, _) = rest.split_once(']')?;
            Some((check.to_owned(), alert.to_owned()))
        })
        .collect();
    assert!(same.len() >= 23, "check table: {same:?}");
    let mut want = String::from(GENERATED_BEGIN);
    for check in generated_checks() {
        let url = check.config.runbook_url.clone().unwrap();
        let name = vitals::checks::rules::alert_name(&check.config.name);
        assert_eq!(url, format!("{RUNBOOK_URL}#{}", name.to_lowercase()));
        want.push('\n');
        want.push_str(&vitals::checks::rules::runbook_section(
            &check,
            same.get(&check.config.name).map(String::as_str),
        ));
    }
    want.push('\n');
    want.push_str(GENERATED_END);
    let (before, after) = match (text.find(GENERATED_BEGIN), text.find(GENERATED_END)) {
        (Some(b), Some(e)) => (&text[..b], &text[e + GENERATED_END.len()..]),
        _ => (text.as_str(), ""),
    };
    let fresh = format!("{before}{want}{after}");
    if std::env::var_os("VITALS_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    assert!(
        fresh == text,
        "docs/runbook.md's generated sections are not the built-in checks'; run VITALS_UPDATE_DOCS=1 cargo test --test assets runbook_has"
    );
}

/// Every duration a section's **Meaning.** states ("for 5 minutes",
/// "for 30s") is the `for` of its alert's rules (bundled or generated).
#[test]
fn runbook_durations_are_the_rules() {
    let sections = runbook_sections();
    let mut fors: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for rule in rules() {
        if let Some(f) = rule.rule["for"].as_str() {
            let secs = duration_seconds(f).unwrap() as u64;
            fors.entry(rule.alert().to_owned())
                .or_default()
                .insert(secs);
        }
    }
    for check in generated_checks() {
        if let Some(f) = check.config.for_ {
            fors.entry(vitals::checks::rules::alert_name(&check.config.name))
                .or_default()
                .insert(f.as_secs_f64() as u64);
        }
    }
    let phrase = regex::Regex::new(
        r"\bfor (\d+) ?(seconds?|minutes?|hours?|s|m|h)\b|\bfor ((?:\d+[hms])+)\b",
    )
    .unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (alert, body) in &sections {
        let meaning = body.split("**Confirm.**").next().unwrap_or("");
        for m in phrase.captures_iter(meaning) {
            let secs = if let Some(compact) = m.get(3) {
                vitals::config::parse_duration(compact.as_str())
                    .unwrap()
                    .as_secs_f64() as u64
            } else {
                let n: u64 = m[1].parse().unwrap();
                n * match &m[2][..1] {
                    "s" => 1,
                    "m" => 60,
                    _ => 3600,
                }
            };
            checked += 1;
            if !fors.get(alert).is_some_and(|f| f.contains(&secs)) {
                problems.push(format!(
                    "{alert}: the runbook says {:?}, the rule's for is {:?} s",
                    &m[0],
                    fors.get(alert)
                ));
            }
        }
    }
    assert!(checked >= 30, "only {checked} durations found");
    assert_none(problems, "runbook durations differ from the rules'");
}

#[test]
fn rules_pass_their_promtool_unit_tests() {
    let files = rule_test_files();
    assert_eq!(
        files.len(),
        RULE_GROUPS.len(),
        "one unit test file per rule file"
    );
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = tool("promtool", &args, PROMTOOL);
    assert!(
        out.status.success(),
        "promtool test rules:\n{}",
        output_text(&out)
    );
}

/// `## Heading` → the body up to the next `## `.
fn runbook_sections() -> BTreeMap<String, String> {
    let text = read(&repo().join("docs/runbook.md"));
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            if let Some((h, body)) = current.take() {
                out.insert(h, body);
            }
            current = Some((heading.trim().to_owned(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((h, body)) = current {
        out.insert(h, body);
    }
    out
}

fn duration_seconds(text: &str) -> Option<f64> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    Some(match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    })
}

#[test]
fn rules_follow_the_conventions() {
    let name_re = regex::Regex::new(r"^Vitals[A-Z][A-Za-z0-9]+$").unwrap();
    let sections = runbook_sections();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (file, group) in RULE_GROUPS {
        let parsed = parse_yaml(&repo().join("alerts").join(file));
        let groups: Vec<&str> = parsed["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| str_of(g, "name"))
            .collect();
        if groups != [*group] {
            problems.push(format!("{file}: groups {groups:?}, want [{group}]"));
        }
    }
    let rules = rules();
    assert!(rules.len() >= 30, "only {} rules", rules.len());
    for rule in &rules {
        let name = rule.alert();
        let at = format!("{} {name} ({})", rel(&rule.file), rule.severity());
        let mut problem = |p: &str| problems.push(format!("{at}: {p}"));
        if !name_re.is_match(name) {
            problem("alert name is not CamelCase with the Vitals prefix");
        }
        if !["warning", "critical"].contains(&rule.severity()) {
            problem("severity must be warning or critical");
        }
        if !seen.insert((name.to_owned(), rule.severity().to_owned())) {
            problem("defined twice");
        }
        let labels: Vec<&String> = rule.rule["labels"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        if labels != ["severity"] {
            problem("labels must be exactly severity (routing uses it)");
        }
        let annotations: BTreeSet<&str> = rule.rule["annotations"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        if annotations != BTreeSet::from(["summary", "description", "runbook_url"]) {
            problem("annotations must be summary, description, runbook_url");
        }
        for key in ["summary", "description"] {
            if str_of(&rule.rule["annotations"], key).len() < 20 {
                problem(&format!("{key} is missing or too short"));
            }
        }
        let url = str_of(&rule.rule["annotations"], "runbook_url");
        if url != format!("{RUNBOOK_URL}#{}", name.to_lowercase()) {
            problem(&format!(
                "runbook_url {url} is not the runbook's section of this alert"
            ));
        }
        match sections.get(name) {
            None => problem("docs/runbook.md has no section for it"),
            Some(body) => {
                for part in ["**Meaning.**", "**Confirm.**", "**Act.**"] {
                    if !body.contains(part) {
                        problem(&format!("its runbook section lacks {part}"));
                    }
                }
            }
        }
        // The agent already debounces its checks: a short `for` only.
        if rule.group == "vitals-checks" {
            let f = str_of(&rule.rule, "for");
            if !duration_seconds(f).is_some_and(|s| s <= 60.0) {
                problem(&format!("for {f:?} should be at most 1m"));
            }
        }
    }
    let mut alerts: BTreeSet<String> = rules.iter().map(|r| r.alert().to_owned()).collect();
    alerts.extend(
        generated_checks()
            .iter()
            .map(|c| vitals::checks::rules::alert_name(&c.config.name)),
    );
    for heading in sections.keys() {
        if heading.starts_with("Vitals") && !alerts.contains(heading) {
            problems.push(format!("docs/runbook.md section {heading} has no alert"));
        }
    }
    assert_none(problems, "rule conventions broken");
}

#[test]
fn every_alert_has_a_firing_and_a_silent_unit_test() {
    // (alertname, severity) -> [fires at some eval, silent at some eval]
    let mut seen: BTreeMap<(String, String), [bool; 2]> = BTreeMap::new();
    let rules = rules();
    for rule in &rules {
        seen.insert(
            (rule.alert().to_owned(), rule.severity().to_owned()),
            [false; 2],
        );
    }
    let mut tested_files = BTreeSet::new();
    for file in rule_test_files() {
        let parsed = parse_yaml(&file);
        for rule_file in parsed["rule_files"].as_array().into_iter().flatten() {
            let path = file
                .parent()
                .unwrap()
                .join(rule_file.as_str().unwrap_or(""));
            tested_files.insert(path.canonicalize().unwrap_or(path));
        }
        for test in parsed["tests"].as_array().into_iter().flatten() {
            for eval in test["alert_rule_test"].as_array().into_iter().flatten() {
                let name = str_of(eval, "alertname");
                let firing: BTreeSet<&str> = eval["exp_alerts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a["exp_labels"]["severity"].as_str().unwrap_or(""))
                    .collect();
                for ((alert, severity), cases) in seen.iter_mut() {
                    if alert == name {
                        if firing.contains(severity.as_str()) {
                            cases[0] = true;
                        } else {
                            cases[1] = true;
                        }
                    }
                }
            }
        }
    }
    let mut problems = Vec::new();
    for file in rule_files() {
        if !tested_files.contains(&file.canonicalize().unwrap()) {
            problems.push(format!("{} is in no unit test file", rel(&file)));
        }
    }
    for ((alert, severity), [fires, silent]) in &seen {
        if !fires {
            problems.push(format!(
                "{alert} ({severity}) has no test case where it fires"
            ));
        }
        if !silent {
            problems.push(format!(
                "{alert} ({severity}) has no test case where it must stay silent"
            ));
        }
    }
    assert_none(problems, "alerts without unit tests");
}

#[test]
fn raw_rules_fire_at_the_default_check_levels() {
    let form = regex::Regex::new(
        r#"^(\w+) ([<>]) ([0-9.]+) unless on\(job, instance\) vitals_check_status\{check="(\w+)"\}$"#,
    )
    .unwrap();
    let mut covered: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut problems = Vec::new();
    for rule in rules().iter().filter(|r| r.group == "vitals-raw") {
        let expr = rule.expr();
        let Some(c) = form.captures(expr) else {
            // The rules without a check counterpart (down, OOM kills).
            if selectors_in_expr(expr)
                .unwrap_or_default()
                .iter()
                .any(|s| s.metric.as_deref().and_then(level_of).is_some())
            {
                problems.push(format!(
                    "{}: {expr} reads a checked metric but not in the checked form",
                    rule.alert()
                ));
            }
            continue;
        };
        let (metric, op, value, check) =
            (&c[1], &c[2], c[3].parse::<f64>().unwrap_or(f64::NAN), &c[4]);
        let Some(level) = level_of(metric) else {
            problems.push(format!("{}: {metric} has no default check", rule.alert()));
            continue;
        };
        let want = match rule.severity() {
            "warning" => level.warning,
            _ => Some(level.critical),
        };
        if want != Some(value) {
            problems.push(format!(
                "{} ({}): level {value}, the default check has {want:?}",
                rule.alert(),
                rule.severity()
            ));
        }
        if (op == ">") != level.above {
            problems.push(format!(
                "{}: direction {op} is wrong for {}",
                rule.alert(),
                level.check
            ));
        }
        if check != level.check {
            problems.push(format!(
                "{}: silenced by check {check}, the check of {metric} is {}",
                rule.alert(),
                level.check
            ));
        }
        covered.insert((
            level.check.as_str(),
            if rule.severity() == "warning" {
                "warning"
            } else {
                "critical"
            },
        ));
    }
    for level in default_levels() {
        let check = level.check.as_str();
        if level.warning.is_some() && !covered.contains(&(check, "warning")) {
            problems.push(format!("no warning rule for {}", level.check));
        }
        if !covered.contains(&(check, "critical")) {
            problems.push(format!("no critical rule for {}", level.check));
        }
    }
    assert_none(problems, "raw-metric rules and default levels disagree");
}
