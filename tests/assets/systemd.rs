//! The systemd unit: hardened, and `systemd-analyze verify` clean.

use super::*;
fn unit_settings(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(k.trim().to_owned())
                .or_default()
                .push(v.trim().to_owned());
        }
    }
    out
}

#[test]
fn systemd_unit_is_hardened_and_verifies() {
    let path = repo().join("deploy/systemd/vitals.service");
    let text = read(&path);
    let s = unit_settings(&text);
    let one = |k: &str| {
        s.get(k)
            .and_then(|v| v.last())
            .map(String::as_str)
            .unwrap_or("")
    };
    for (key, want) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestartPreventExitStatus", "64"),
    ] {
        assert_eq!(one(key), want, "{key}");
        assert!(s.contains_key(key), "{key} is not set");
    }
    // vitals reads other processes' /proc entries and host-wide /proc files.
    assert!(!s.contains_key("ProtectProc") && !s.contains_key("ProcSubset"));

    let exec: Vec<&str> = one("ExecStart").split_whitespace().collect();
    assert_eq!(
        exec.get(..2),
        Some(&["/usr/local/bin/vitals", "--config"][..])
    );
    let config = repo()
        .join("deploy/systemd")
        .join(Path::new(exec[2]).file_name().unwrap());
    vitals_check_config(&config).unwrap_or_else(|e| panic!("vitals refuses {}: {e}", rel(&config)));
    // The password arrives as a credential the dynamic user may read.
    let credentials: Vec<&str> = s["LoadCredential"]
        .iter()
        .filter_map(|c| c.split(':').next())
        .collect();
    for target in parse_yaml(&config)["sources"]["postgres"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let file = str_of(target, "password_file");
        let name = file
            .strip_prefix("/run/credentials/vitals.service/")
            .unwrap_or("");
        assert!(
            credentials.contains(&name),
            "password_file {file} is not a LoadCredential of the unit"
        );
    }

    // systemd's own check, with the binary where the unit expects it.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("vitals.service");
    std::fs::write(
        &unit,
        text.replace("/usr/local/bin/vitals", env!("CARGO_BIN_EXE_vitals")),
    )
    .unwrap();
    let out = tool(
        "systemd-analyze",
        &["verify", unit.to_str().unwrap()],
        "the Debian package `systemd` (systemd-analyze)",
    );
    let complaints = output_text(&out);
    assert!(
        out.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify:\n{complaints}"
    );
}
