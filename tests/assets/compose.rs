//! deploy/compose: the stack is complete and consistent, and the
//! configurations it mounts are valid once filled in.

use super::*;

fn compose_dir() -> PathBuf {
    repo().join("deploy/compose")
}

/// A service's bind mounts as (host path, container path).
fn binds(service: &Value) -> Vec<(PathBuf, String)> {
    service["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|v| {
            let mut parts = v.split(':');
            let (host, inside) = (parts.next()?, parts.next()?);
            (host.starts_with('.') || host.starts_with('/'))
                .then(|| (compose_dir().join(host), inside.to_owned()))
        })
        .collect()
}

/// Where a container path of a service comes from on the host.
fn host_path(service: &Value, inside: &str) -> Option<PathBuf> {
    binds(service).into_iter().find_map(|(host, mount)| {
        let rest = Path::new(inside).strip_prefix(&mount).ok()?;
        Some(if rest.as_os_str().is_empty() {
            host
        } else {
            host.join(rest)
        })
    })
}

fn glob_files(pattern: &Path) -> BTreeSet<PathBuf> {
    // Only `dir/*suffix` patterns are used.
    let dir = pattern.parent().expect("dir");
    let name = pattern.file_name().and_then(|f| f.to_str()).expect("name");
    let suffix = name.strip_prefix('*').expect("a * pattern");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
        .map(|p| p.canonicalize().unwrap())
        .collect()
}

#[test]
fn compose_file_is_complete_and_consistent() {
    let compose = parse_yaml(&compose_dir().join("compose.yaml"));
    let services = compose["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "alertmanager",
            "app",
            "grafana",
            "pgbouncer",
            "postgres-primary",
            "postgres-standby",
            "prometheus",
            "vitals"
        ]),
    );
    let mut problems = Vec::new();
    let secrets = compose["secrets"].as_object().cloned().unwrap_or_default();
    for (name, service) in services {
        for port in service["ports"].as_array().into_iter().flatten() {
            if !port.as_str().is_some_and(|p| p.starts_with("127.0.0.1:")) {
                problems.push(format!(
                    "{name}: port {port} is not published on loopback only"
                ));
            }
        }
        for (host, _) in binds(service) {
            if !host.exists() {
                problems.push(format!(
                    "{name}: mounts {} which does not exist",
                    host.display()
                ));
            }
        }
        for secret in service["secrets"].as_array().into_iter().flatten() {
            let secret = secret
                .as_str()
                .or_else(|| secret["source"].as_str())
                .unwrap_or("");
            if !secrets.contains_key(secret) {
                problems.push(format!("{name}: secret {secret} is not declared"));
            }
        }
        for dep in service["depends_on"]
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .or_else(|| {
                service["depends_on"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|d| d.as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default()
        {
            if !services.contains_key(&dep) {
                problems.push(format!("{name}: depends on unknown service {dep}"));
            }
        }
    }
    for (name, secret) in &secrets {
        let file = compose_dir().join(str_of(secret, "file"));
        if !file.is_file() {
            problems.push(format!("secret {name}: {} does not exist", file.display()));
        }
    }

    // vitals: the image built here, locked down, a sidecar of app.
    let vitals = &services["vitals"];
    let build = compose_dir().join(str_of(&vitals["build"], "context"));
    if !build.join(str_of(&vitals["build"], "dockerfile")).is_file() {
        problems.push("vitals: the Dockerfile of its build does not exist".into());
    }
    if vitals["read_only"] != true {
        problems.push("vitals: read_only must be true".into());
    }
    if str_of(vitals, "user").starts_with("0") || str_of(vitals, "user").is_empty() {
        problems.push("vitals: must run as a non-root user".into());
    }
    if vitals["network_mode"] != "service:app" || vitals["pid"] != "service:app" {
        problems.push("vitals: must share app's network and process namespaces".into());
    }
    let config_path = host_path(vitals, "/etc/vitals/vitals.yaml").expect("vitals config mounted");
    if let Err(e) = vitals_check_config(&config_path) {
        problems.push(format!("vitals refuses deploy/compose/vitals.yaml: {e}"));
    }
    let config = parse_yaml(&config_path);
    let listen_port = str_of(&config, "listen")
        .rsplit(':')
        .next()
        .unwrap_or("")
        .to_owned();
    if !services["app"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| {
            p.as_str()
                .is_some_and(|p| p.ends_with(&format!(":{listen_port}")))
        })
    {
        problems.push(format!("app does not publish vitals' port {listen_port}"));
    }
    let vitals_secrets: BTreeSet<String> = vitals["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "/run/secrets/{}",
                s.as_str().or_else(|| s["source"].as_str()).unwrap_or("")
            )
        })
        .collect();
    let monitor_password = read(&compose_dir().join("secrets/pg_monitor_password"));
    for kind in ["postgres", "pgbouncer"] {
        for target in config["sources"][kind].as_array().into_iter().flatten() {
            let file = str_of(target, "password_file");
            if !vitals_secrets.contains(file) {
                problems.push(format!("vitals.yaml {kind} {}: password_file {file} is not a secret of the vitals service", target["name"]));
            }
            let dsn = str_of(target, "dsn");
            let host = dsn
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix("host="))
                .unwrap_or("");
            if !services.contains_key(host) {
                problems.push(format!(
                    "vitals.yaml {kind} {}: host {host} is not a service",
                    target["name"]
                ));
            }
        }
    }
    // PgBouncer lets vitals' user read its admin console with that password.
    let userlist = read(&compose_dir().join("pgbouncer/userlist.txt"));
    if !userlist.contains(&format!("\"vitals\" \"{}\"", monitor_password.trim())) {
        problems.push("pgbouncer/userlist.txt does not give vitals the password of secrets/pg_monitor_password".into());
    }
    if !read(&compose_dir().join("pgbouncer/pgbouncer.ini"))
        .lines()
        .any(|l| l.replace(' ', "") == "stats_users=vitals")
    {
        problems.push("pgbouncer.ini: vitals is not a stats user".into());
    }

    // Prometheus: loads exactly the rule files, scrapes vitals, sends to Alertmanager.
    let prometheus = &services["prometheus"];
    let prom_config_path =
        host_path(prometheus, "/etc/prometheus/prometheus.yml").expect("prometheus.yml mounted");
    let prom_config = parse_yaml(&prom_config_path);
    let mut loaded = BTreeSet::new();
    for pattern in prom_config["rule_files"].as_array().into_iter().flatten() {
        match host_path(prometheus, pattern.as_str().unwrap_or("")) {
            Some(host) => loaded.extend(glob_files(&host)),
            None => problems.push(format!("prometheus: rule_files {pattern} is not mounted")),
        }
    }
    let want: BTreeSet<PathBuf> = rule_files()
        .iter()
        .map(|f| f.canonicalize().unwrap())
        .collect();
    if loaded != want {
        problems.push(format!(
            "prometheus loads {loaded:?}, want the rule files {want:?}"
        ));
    }
    let scrape_targets: Vec<&str> = prom_config["scrape_configs"][0]["static_configs"][0]
        ["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if scrape_targets != [format!("app:{listen_port}")] {
        problems.push(format!("prometheus scrapes {scrape_targets:?}, want app:{listen_port} (vitals in app's network)"));
    }
    let am = prom_config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
        .as_str()
        .unwrap_or("");
    if am.split(':').next() != Some("alertmanager") {
        problems.push(format!(
            "prometheus sends alerts to {am}, not the alertmanager service"
        ));
    }
    let out = tool(
        "promtool",
        &[
            "check",
            "config",
            "--syntax-only",
            prom_config_path.to_str().unwrap(),
        ],
        PROMTOOL,
    );
    if !out.status.success() {
        problems.push(format!(
            "promtool check config prometheus.yml:\n{}",
            output_text(&out)
        ));
    }
    let am_config = host_path(
        &services["alertmanager"],
        "/etc/alertmanager/alertmanager.yml",
    )
    .expect("alertmanager.yml mounted");
    let out = tool(
        "amtool",
        &["check-config", am_config.to_str().unwrap()],
        AMTOOL,
    );
    if !out.status.success() {
        problems.push(format!(
            "amtool check-config alertmanager.yml:\n{}",
            output_text(&out)
        ));
    }

    // Grafana: provisioned with the Prometheus service and the dashboards.
    let grafana = &services["grafana"];
    let provisioning =
        host_path(grafana, "/etc/grafana/provisioning").expect("provisioning mounted");
    let datasources = parse_yaml(&provisioning.join("datasources/vitals.yml"));
    let url = str_of(&datasources["datasources"][0], "url");
    if url != "http://prometheus:9090" || datasources["datasources"][0]["type"] != "prometheus" {
        problems.push(format!(
            "grafana datasource {url} is not the prometheus service"
        ));
    }
    let providers = parse_yaml(&provisioning.join("dashboards/vitals.yml"));
    let path = str_of(&providers["providers"][0]["options"], "path");
    let shown: BTreeSet<PathBuf> = host_path(grafana, path)
        .map(|p| glob_files(&p.join("*.json")))
        .unwrap_or_default();
    let want: BTreeSet<PathBuf> = dashboard_files()
        .iter()
        .map(|f| f.canonicalize().unwrap())
        .collect();
    if shown != want {
        problems.push(format!(
            "grafana provisions {shown:?} from {path}, want the dashboards"
        ));
    }

    // Scripts the PostgreSQL containers run.
    for script in ["postgres/primary-init.sh", "postgres/standby-entrypoint.sh"] {
        let out = tool(
            "sh",
            &["-n", compose_dir().join(script).to_str().unwrap()],
            "a POSIX sh",
        );
        if !out.status.success() {
            problems.push(format!("{script}: {}", output_text(&out)));
        }
    }
    assert_none(problems, "deploy/compose");
}

const AMTOOL: &str = "the Debian package `prometheus-alertmanager` (amtool)";

#[test]
fn end_to_end_configs_are_valid_once_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = repo().join("tests/fixtures/e2e");
    let rules = repo().join("alerts/*.rules.yml");
    let prom = read(&fixtures.join("prometheus.yml"))
        .replace("@VITALS@", "127.0.0.1:18482")
        .replace("@ALERTMANAGER@", "127.0.0.1:19093")
        .replace("@RULES@", rules.to_str().unwrap());
    let am = read(&fixtures.join("alertmanager.yml"))
        .replace("@WEBHOOK@", "http://127.0.0.1:19999/alerts");
    assert!(
        !prom.contains('@') && !am.contains('@'),
        "a placeholder is left"
    );
    std::fs::write(dir.path().join("prometheus.yml"), &prom).unwrap();
    std::fs::write(dir.path().join("alertmanager.yml"), &am).unwrap();
    // Not --syntax-only: promtool also loads the rule files the glob names.
    let out = tool(
        "promtool",
        &[
            "check",
            "config",
            dir.path().join("prometheus.yml").to_str().unwrap(),
        ],
        PROMTOOL,
    );
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    for file in rule_files() {
        assert!(
            text.contains(file.file_name().unwrap().to_str().unwrap()),
            "promtool did not load {}:\n{text}",
            rel(&file)
        );
    }
    let out = tool(
        "amtool",
        &[
            "check-config",
            dir.path().join("alertmanager.yml").to_str().unwrap(),
        ],
        AMTOOL,
    );
    assert!(out.status.success(), "{}", output_text(&out));
}
