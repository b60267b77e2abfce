//! Checks of live output against vitals' metric catalog
//! (`vitals::collectors::catalog()`).

use std::collections::BTreeSet;
use std::sync::Mutex;

/// Families of the catalog that no fixture tree or live run of the suite
/// emits, each with the condition under which vitals does. Every name here
/// must still be in the catalog (checked by tests/catalog.rs).
pub const EMITTED_ONLY_WHEN: &[(&str, &str)] = &[
    (
        "vitals_cgroup_cpu_limit_utilization_ratio",
        "from the second round of a cgroup with a CPU limit (it compares two rounds), which \
         `vitals once` and the golden runs never reach; tests/cgroup_fixtures.rs checks its value",
    ),
    (
        "vitals_cgroup_cpu_throttled_ratio",
        "from the second round of a cgroup with a CPU limit, as above; tests/cgroup_fixtures.rs \
         checks its value",
    ),
];

/// Asserts that every family of a text-format exposition is in the catalog
/// with the same type and help text, and that each sample carries the
/// catalog's labels. Returns the family names seen.
pub fn assert_families_in_catalog(exposition: &str) -> BTreeSet<String> {
    let catalog = vitals::collectors::catalog();
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                problems.push(format!("malformed TYPE line {line:?}"));
                continue;
            };
            match catalog.iter().find(|d| d.name == name) {
                None => problems.push(format!("{name} is not in the catalog")),
                Some(d) if d.kind.as_str() != kind => problems.push(format!(
                    "{name} is a {kind} in the scrape but a {} in the catalog",
                    d.kind.as_str()
                )),
                Some(_) => {}
            }
            seen.insert(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some(d) = catalog.iter().find(|d| d.name == name) {
                let want = d.help.replace('\\', "\\\\").replace('\n', "\\n");
                if help != want {
                    problems.push(format!(
                        "{name}: HELP {help:?} is not the catalog's {want:?}"
                    ));
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            if let Some(d) = catalog.iter().find(|d| d.name == name) {
                for label in d.labels {
                    if !line.contains(&format!("{{{label}=\""))
                        && !line.contains(&format!(",{label}=\""))
                    {
                        problems.push(format!("{name}: sample without label {label}: {line}"));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "scrape does not match the catalog:\n{}",
        problems.join("\n")
    );
    seen
}

/// The same for one source's output, rendered as text.
pub fn assert_output_in_catalog(out: &vitals::metrics::Output) -> BTreeSet<String> {
    assert_families_in_catalog(&vitals::metrics::render(
        [out],
        vitals::metrics::Format::Text,
    ))
}

/// Catalog families named `prefix*` that are in neither `seen` nor
/// [`EMITTED_ONLY_WHEN`].
pub fn not_covered(prefix: &str, seen: &BTreeSet<String>) -> Vec<&'static str> {
    vitals::collectors::catalog()
        .iter()
        .map(|d| d.name)
        .filter(|n| n.starts_with(prefix))
        .filter(|n| !seen.contains(*n))
        .filter(|n| !EMITTED_ONLY_WHEN.iter().any(|(c, _)| c == n))
        .collect()
}

/// Asserts every catalog family named `prefix*` is in `seen` or listed in
/// [`EMITTED_ONLY_WHEN`], and that no listed one was seen after all (a stale
/// condition).
pub fn assert_covered(prefix: &str, seen: &BTreeSet<String>) {
    let missing = not_covered(prefix, seen);
    assert!(
        missing.is_empty(),
        "catalog families never emitted (emit them or list the condition in EMITTED_ONLY_WHEN): {missing:?}"
    );
    let stale: Vec<&str> = EMITTED_ONLY_WHEN
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| n.starts_with(prefix) && seen.contains(*n))
        .collect();
    assert!(
        stale.is_empty(),
        "listed in EMITTED_ONLY_WHEN but emitted after all; remove them: {stale:?}"
    );
}

/// Families seen by the live runs of one test binary, for a coverage
/// assertion at the end of its suite.
pub struct Seen(Mutex<BTreeSet<String>>);

impl Seen {
    pub const fn new() -> Self {
        Seen(Mutex::new(BTreeSet::new()))
    }

    /// Checks `out` against the catalog and remembers its families.
    pub fn record(&self, out: &vitals::metrics::Output) {
        let names = assert_output_in_catalog(out);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(names);
    }

    /// Asserts every catalog family named `prefix*` was seen or is listed in
    /// [`EMITTED_ONLY_WHEN`].
    pub fn assert_covered(&self, prefix: &str) {
        let seen = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_covered(prefix, &seen);
    }
}
