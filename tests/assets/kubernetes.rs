//! deploy/kubernetes: schema validation, the native and classic sidecar
//! pods, the PodMonitor, the PrometheusRule and the kustomization.

use super::*;

fn k8s(file: &str) -> Value {
    parse_yaml(&repo().join("deploy/kubernetes").join(file))
}

/// The text of deploy/kubernetes/prometheusrule.yaml for the current rule
/// files: their groups, indented under spec.
fn prometheus_rule_text() -> String {
    let mut text = String::from(
        "# Generated from alerts/*.rules.yml: the same groups, for prometheus-operator.\n\
         # Do not edit; after changing alerts/, run `UPDATE_ASSETS=1 cargo test --test assets`.\n\
         # Add the labels your Prometheus' ruleSelector requires (kube-prometheus-stack:\n\
         # release: <its release name>).\n\
         apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: vitals\n  \
         labels:\n    app.kubernetes.io/name: vitals\nspec:\n  groups:\n",
    );
    for file in rule_files() {
        text.push_str(&format!("    # {}\n", rel(&file)));
        let body = read(&file);
        let after = body
            .split_once("\ngroups:\n")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("{}: no top-level groups:", rel(&file)));
        for line in after.lines() {
            if !line.trim().is_empty() {
                text.push_str("  ");
                text.push_str(line);
            }
            text.push('\n');
        }
    }
    text
}

#[test]
fn prometheus_rule_carries_the_alert_groups() {
    let path = repo().join("deploy/kubernetes/prometheusrule.yaml");
    if std::env::var_os("UPDATE_ASSETS").is_some() {
        std::fs::write(&path, prometheus_rule_text()).expect("write prometheusrule.yaml");
    }
    let rule = parse_yaml(&path);
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["kind"], "PrometheusRule");
    let mut groups = Vec::new();
    for file in rule_files() {
        groups.extend(
            parse_yaml(&file)["groups"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }
    assert!(!groups.is_empty());
    assert!(
        rule["spec"]["groups"] == Value::Array(groups),
        "deploy/kubernetes/prometheusrule.yaml does not carry the groups of alerts/; \
         rewrite it with UPDATE_ASSETS=1 cargo test --test assets"
    );
    // And promtool accepts them as they stand in the PrometheusRule.
    let spec = serde_json::json!({ "groups": rule["spec"]["groups"] });
    promtool_check_rules_text(&serde_json::to_string(&spec).unwrap())
        .unwrap_or_else(|e| panic!("promtool refuses the PrometheusRule's groups:\n{e}"));
}

const KUBERNETES_VALIDATE: &str =
    "the PyPI package kubernetes-validate (pip install kubernetes-validate)";

#[test]
fn kubernetes_manifests_pass_schema_validation() {
    let dir = repo().join("deploy/kubernetes");
    // Native sidecars need Kubernetes 1.29 (restartPolicy on an init
    // container); the classic variant also works on older clusters. The
    // package's own default is the newest release it knows.
    let runs: &[(&str, &[&str])] = &[
        (
            "1.29.0",
            &["deployment.yaml", "configmap.yaml", "secret.yaml"],
        ),
        (
            "1.25.0",
            &[
                "deployment-classic-sidecar.yaml",
                "configmap.yaml",
                "secret.yaml",
            ],
        ),
        (
            "",
            &[
                "deployment.yaml",
                "deployment-classic-sidecar.yaml",
                "configmap.yaml",
                "secret.yaml",
            ],
        ),
    ];
    for (version, files) in runs {
        let mut args = vec!["--strict".to_owned()];
        if !version.is_empty() {
            args.push("-k".into());
            args.push((*version).into());
        }
        args.extend(
            files
                .iter()
                .map(|f| dir.join(f).to_string_lossy().into_owned()),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = tool("kubernetes-validate", &args, KUBERNETES_VALIDATE);
        let text = output_text(&out);
        assert!(
            out.status.success(),
            "kubernetes-validate {args:?}:\n{text}"
        );
        for file in *files {
            assert!(
                text.lines()
                    .any(|l| l.contains(file) && l.contains(" passed for resource ")),
                "kubernetes-validate did not validate {file}:\n{text}"
            );
        }
    }
    // It must be able to fail: restartPolicy on an init container is not in
    // the 1.27 schema.
    let out = tool(
        "kubernetes-validate",
        &[
            "--strict",
            "-k",
            "1.27.0",
            dir.join("deployment.yaml").to_str().unwrap(),
        ],
        KUBERNETES_VALIDATE,
    );
    assert!(
        !out.status.success(),
        "a native sidecar validated against 1.27:\n{}",
        output_text(&out)
    );
}

fn container<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|c| c["name"] == name)
}

fn volume<'a>(pod: &'a Value, name: &str) -> &'a Value {
    container(&pod["volumes"], name).unwrap_or(&Value::Null)
}

/// The directory a container mounts volume `name` at.
fn mount_of<'a>(c: &'a Value, name: &str) -> Option<&'a str> {
    container(&c["volumeMounts"], name).and_then(|m| m["mountPath"].as_str())
}

/// Checks the vitals container of a pod spec against the ConfigMap's
/// configuration, the Secret and the PodMonitor.
fn check_vitals_pod(file: &str, pod: &Value, vitals: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut problem = |p: String| problems.push(format!("{file}: {p}"));
    let configmap = k8s("configmap.yaml");
    let config_text = str_of(&configmap["data"], "vitals.yaml");
    if let Err(e) = vitals_check_config_text(config_text) {
        problem(format!("vitals refuses the ConfigMap's configuration: {e}"));
    }
    let config: Value = serde_saphyr::from_str(config_text).expect("config YAML");

    if pod["shareProcessNamespace"] != true {
        problem("shareProcessNamespace must be true: vitals watches the app's process".into());
    }
    let args: Vec<&str> = vitals["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let config_path = match args.as_slice() {
        ["--config", path] => Path::new(*path),
        _ => {
            problem(format!("vitals args {args:?} must be --config FILE"));
            Path::new("")
        }
    };
    // The ConfigMap, at the directory of --config.
    let config_volume = container(&vitals["volumeMounts"], "vitals-config");
    if volume(pod, "vitals-config")["configMap"]["name"] != configmap["metadata"]["name"]
        || config_volume
            .and_then(|m| m["mountPath"].as_str())
            .map(Path::new)
            != config_path.parent()
        || !configmap["data"][config_path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("")]
        .is_string()
    {
        problem("the ConfigMap is not mounted where --config reads it".into());
    }
    // The Secret, as the password_file of every PostgreSQL target.
    let secret = k8s("secret.yaml");
    let secret_dir = mount_of(vitals, "vitals-secret").unwrap_or("(not mounted)");
    if volume(pod, "vitals-secret")["secret"]["secretName"] != secret["metadata"]["name"] {
        problem("volume vitals-secret is not the Secret of secret.yaml".into());
    }
    let targets = config["sources"]["postgres"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if targets.is_empty() {
        problem("the configuration has no PostgreSQL target".into());
    }
    for target in &targets {
        let password_file = Path::new(str_of(target, "password_file"));
        let key = password_file
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("");
        if password_file.parent() != Some(Path::new(secret_dir))
            || !secret["stringData"][key].is_string()
        {
            problem(format!(
                "password_file {} is not a key of the mounted Secret",
                password_file.display()
            ));
        }
    }
    // The application's limits by the downward API, where limits_dir says.
    let items = volume(pod, "podinfo")["downwardAPI"]["items"].clone();
    let want = serde_json::json!([
        {"path": "cpu_limit", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}},
        {"path": "memory_limit", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1"}},
    ]);
    if items != want {
        problem(format!("downward API items {items}, want {want}"));
    }
    let limits_dir = str_of(&config["sources"]["cgroup"], "limits_dir");
    if limits_dir.is_empty() || mount_of(vitals, "podinfo") != Some(limits_dir) {
        problem("the podinfo volume is not mounted at the configuration's limits_dir".into());
    }
    if !config["sources"]["cgroup"]["target"]["process"].is_string() {
        problem(
            "the cgroup target must be the app's process ({process: REGEX}), not vitals' own"
                .into(),
        );
    }
    let app = container(&pod["containers"], "app").unwrap_or(&Value::Null);
    for resource in ["cpu", "memory"] {
        if app["resources"]["limits"][resource].is_null() {
            problem(format!(
                "the app has no {resource} limit for the downward API to pass on"
            ));
        }
    }
    // Locked down.
    let sc = &vitals["securityContext"];
    for (key, want) in [
        ("readOnlyRootFilesystem", true),
        ("runAsNonRoot", true),
        ("allowPrivilegeEscalation", false),
    ] {
        if sc[key] != want {
            problem(format!("vitals securityContext.{key} must be {want}"));
        }
    }
    if sc["capabilities"]["drop"] != serde_json::json!(["ALL"]) {
        problem("vitals must drop all capabilities".into());
    }
    if !sc["runAsUser"].as_u64().is_some_and(|u| u > 0) {
        problem("vitals must run as a non-zero uid".into());
    }
    // Probes and the port the PodMonitor scrapes.
    let port = &vitals["ports"][0];
    let podmonitor = k8s("podmonitor.yaml");
    let listen_port = str_of(&config, "listen").rsplit(':').next().unwrap_or("");
    if port["containerPort"] != 8482
        || listen_port != "8482"
        || podmonitor["spec"]["podMetricsEndpoints"][0]["port"] != port["name"]
    {
        problem("vitals listens on 8482, the container port the PodMonitor scrapes by name".into());
    }
    for (probe, path) in [
        ("livenessProbe", "/health/live"),
        ("readinessProbe", "/health/ready"),
    ] {
        if vitals[probe]["httpGet"]["path"] != path {
            problem(format!("vitals {probe} must GET {path}"));
        }
    }
    problems
}

fn pod_spec(file: &str) -> Value {
    let deployment = k8s(file);
    assert_eq!(deployment["kind"], "Deployment", "{file}");
    deployment["spec"]["template"]["spec"].clone()
}

#[test]
fn kubernetes_deployment_runs_vitals_as_a_native_sidecar() {
    let pod = pod_spec("deployment.yaml");
    let vitals = container(&pod["initContainers"], "vitals").expect("vitals is an init container");
    assert_eq!(
        vitals["restartPolicy"], "Always",
        "a native sidecar is an init container with restartPolicy Always"
    );
    assert!(container(&pod["containers"], "vitals").is_none());
    assert!(container(&pod["containers"], "app").is_some());
    assert_none(
        check_vitals_pod("deployment.yaml", &pod, vitals),
        "deployment.yaml",
    );
}

#[test]
fn kubernetes_classic_sidecar_is_the_same_pod_with_vitals_in_containers() {
    let classic = pod_spec("deployment-classic-sidecar.yaml");
    let vitals = container(&classic["containers"], "vitals").expect("vitals is a container");
    assert!(vitals.get("restartPolicy").is_none());
    assert!(classic.get("initContainers").is_none());
    assert_none(
        check_vitals_pod("deployment-classic-sidecar.yaml", &classic, vitals),
        "classic sidecar",
    );

    // Moving vitals back to the init containers gives the native pod.
    let mut moved = classic.clone();
    let mut vitals = vitals.clone();
    vitals
        .as_object_mut()
        .unwrap()
        .insert("restartPolicy".into(), "Always".into());
    moved["containers"] = Value::Array(
        classic["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"] != "vitals")
            .cloned()
            .collect(),
    );
    moved
        .as_object_mut()
        .unwrap()
        .insert("initContainers".into(), Value::Array(vec![vitals]));
    assert_eq!(
        moved,
        pod_spec("deployment.yaml"),
        "the two variants differ beyond where vitals runs"
    );
}

#[test]
fn podmonitor_selects_the_application_pods() {
    let podmonitor = k8s("podmonitor.yaml");
    assert_eq!(podmonitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(podmonitor["kind"], "PodMonitor");
    // The job label prometheus-operator gives is <namespace>/<name>, which
    // VitalsDown's job=~".*vitals.*" must match.
    assert!(str_of(&podmonitor["metadata"], "name").contains("vitals"));
    let endpoint = &podmonitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    let labels = &k8s("deployment.yaml")["spec"]["template"]["metadata"]["labels"];
    let selector = podmonitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels");
    assert!(!selector.is_empty());
    for (k, v) in selector {
        assert_eq!(
            &labels[k], v,
            "the PodMonitor's selector {k} does not match the pods"
        );
    }
}

#[test]
fn kustomization_lists_the_native_variant() {
    let kustomization = k8s("kustomization.yaml");
    let resources: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for file in &resources {
        assert!(
            repo().join("deploy/kubernetes").join(file).is_file(),
            "{file} does not exist"
        );
    }
    for file in [
        "configmap.yaml",
        "secret.yaml",
        "deployment.yaml",
        "podmonitor.yaml",
        "prometheusrule.yaml",
    ] {
        assert!(resources.contains(&file), "kustomization.yaml lacks {file}");
    }
    assert!(
        !resources.contains(&"deployment-classic-sidecar.yaml"),
        "both Deployments would clash"
    );
}
