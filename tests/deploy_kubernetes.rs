//! deploy/kubernetes against what reading the application container's
//! cgroup from a sidecar needs, and no more: a shared process namespace,
//! ptrace-read access to the app by the same uid and gid (so no capability),
//! a read-only root, no hostPath, and a ConfigMap mounted so that updates
//! reach vitals (not through subPath, which the kubelet never updates).
//! Schema validation stays in tests/assets/kubernetes.rs.

mod bundled;
mod common;

use bundled::{parse_yaml, repo};
use serde_json::Value;

const VARIANTS: [(&str, &str); 2] = [
    ("deployment.yaml", "initContainers"),
    ("deployment-classic-sidecar.yaml", "containers"),
];

fn pod(file: &str) -> Value {
    parse_yaml(&repo().join("deploy/kubernetes").join(file))["spec"]["template"]["spec"].clone()
}

fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or(&Value::Null)
}

#[test]
fn the_sidecar_reaches_the_app_with_least_privilege() {
    for (file, list) in VARIANTS {
        let pod = pod(file);
        let vitals = named(&pod[list], "vitals");
        let app = named(&pod["containers"], "app");
        assert!(vitals.is_object() && app.is_object(), "{file}");
        assert_eq!(pod["shareProcessNamespace"], true, "{file}");
        let (v, a) = (&vitals["securityContext"], &app["securityContext"]);
        // ptrace-read access without CAP_SYS_PTRACE: uid and gid equal.
        for key in ["runAsUser", "runAsGroup"] {
            assert!(v[key].as_u64().is_some_and(|id| id > 0), "{file}: {key}");
            assert_eq!(v[key], a[key], "{file}: vitals and app differ in {key}");
        }
        assert_eq!(v["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert!(
            v["capabilities"]["add"].is_null(),
            "{file}: no capability is needed when the uids match"
        );
        assert_eq!(v["readOnlyRootFilesystem"], true, "{file}");
        assert_eq!(v["allowPrivilegeEscalation"], false, "{file}");
        for volume in pod["volumes"].as_array().into_iter().flatten() {
            assert!(
                volume["hostPath"].is_null(),
                "{file}: hostPath {} is the opt-in host-tree mode, not the default",
                volume["name"]
            );
        }
    }
}

#[test]
fn configmap_updates_reach_vitals() {
    for (file, list) in VARIANTS {
        let pod = pod(file);
        let vitals = named(&pod[list], "vitals");
        let mount = named(&vitals["volumeMounts"], "vitals-config");
        assert!(mount.is_object(), "{file}: the ConfigMap is not mounted");
        assert!(
            mount["subPath"].is_null(),
            "{file}: a subPath mount never sees ConfigMap updates"
        );
        assert!(named(&pod["volumes"], "vitals-config")["configMap"].is_object());
    }
}

#[test]
fn the_configmap_watches_the_app_not_the_sidecar() {
    let configmap = parse_yaml(&repo().join("deploy/kubernetes/configmap.yaml"));
    let text = configmap["data"]["vitals.yaml"]
        .as_str()
        .expect("vitals.yaml");
    let config: Value = serde_saphyr::from_str(text).expect("the embedded config is YAML");
    let target = &config["sources"]["cgroup"]["target"];
    assert!(
        target["process"].is_string() || target["container"] == "auto",
        "target {target} must be the app's process or {{container: auto}}"
    );
    assert!(
        config["paths"]["cgroup"].is_null(),
        "no host tree by default"
    );
}
