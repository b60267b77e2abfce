//! `remote_write[]`: where vitals pushes every round, with the Prometheus
//! remote-write protocol 1.0 (see `remote_write/`).

use super::Duration;
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// `http://` or `https://` URL of the receiver's write endpoint.
    pub url: String,
    /// How often to send what the rounds produced. Default: right after
    /// each round.
    #[serde(default)]
    pub interval: Option<Duration>,
    /// Time for one request: connect, send and the receiver's answer.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Extra request headers (e.g. `X-Scope-OrgID` for Mimir). Never
    /// logged: a header may carry a key.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default)]
    pub tls: TlsClientConfig,
    /// Labels added to every series; values expand `${VAR}` from the
    /// environment when the configuration is loaded.
    #[serde(default)]
    pub external_labels: BTreeMap<String, EnvString>,
    /// Adds `job="vitals"` and `instance="<host name>"` to every series
    /// that carries neither label itself nor in `external_labels`, as
    /// Prometheus' agent does for a scrape target's series.
    #[serde(default = "yes")]
    pub job_instance_labels: bool,
    #[serde(default)]
    pub queue: RemoteQueueConfig,
    /// Prometheus relabeling of every series sent to this receiver (stale
    /// markers included), after `external_labels` and job/instance.
    #[serde(default)]
    pub write_relabel_configs: Vec<super::RelabelConfig>,
}

fn yes() -> bool {
    true
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    /// The password is read from this file at each (re)load; it never
    /// appears in the configuration itself.
    pub password_file: PathBuf,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsClientConfig {
    /// CA bundle (PEM) to verify the receiver with; default: the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The name the server's certificate must carry, when it is not the
    /// host connected to (an IP address, a tunnel).
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// The buffer of what could not be sent yet.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteQueueConfig {
    /// Samples held at most; past it the oldest rounds are dropped.
    #[serde(default = "default_max_samples")]
    pub max_samples: usize,
    /// Samples in one request at most; a round with more is split across
    /// requests, sent in order. Prometheus' own sender sends 2,000; Mimir
    /// and Cortex refuse requests much larger.
    #[serde(default = "default_max_samples_per_send")]
    pub max_samples_per_send: usize,
    /// Rounds older than this are dropped instead of sent. Default: none.
    #[serde(default)]
    pub max_age: Option<Duration>,
    /// With a directory, every buffered round is also written there and
    /// sent after a restart.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

impl Default for RemoteQueueConfig {
    fn default() -> Self {
        RemoteQueueConfig {
            max_samples: default_max_samples(),
            max_samples_per_send: default_max_samples_per_send(),
            max_age: None,
            dir: None,
        }
    }
}

/// Kept compressed (about 20 bytes a sample): ~2 MiB; over an hour of the
/// default sources every 5 s.
fn default_max_samples_per_send() -> usize {
    2_000
}

fn default_max_samples() -> usize {
    100_000
}

/// A string whose `${VAR}` parts were replaced from the environment when it
/// was deserialised (`$$` is a literal `$`). An unset variable is an error,
/// so a pod missing its downward-API env fails to start instead of pushing
/// series without the label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvString(pub String);

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        expand_env(&text, |name| std::env::var(name).ok())
            .map(EnvString)
            .map_err(de::Error::custom)
    }
}

/// Replaces `${NAME}` with `lookup(NAME)` and `$$` with `$`. A `$` followed
/// by anything else is kept as it is.
pub fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            let name = &body[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "invalid environment variable name {name:?} in {text:?}"
                ));
            }
            let value =
                lookup(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_env_table() {
        let env = |name: &str| match name {
            "POD_NAME" => Some("web-7d4b9".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        for (text, want) in [
            ("${POD_NAME}", "web-7d4b9"),
            ("pod-${POD_NAME}-x", "pod-web-7d4b9-x"),
            ("${POD_NAME}${POD_NAME}", "web-7d4b9web-7d4b9"),
            ("cost $$5", "cost $5"),
            ("$HOME stays", "$HOME stays"),
            ("a${EMPTY}b", "ab"),
            ("plain", "plain"),
            ("ends with $", "ends with $"),
        ] {
            assert_eq!(expand_env(text, env).as_deref(), Ok(want), "{text}");
        }
        for (text, message) in [
            ("${NOPE}", "environment variable NOPE is not set"),
            ("${POD_NAME", "unclosed"),
            ("${}", "invalid environment variable name"),
            ("${A-B}", "invalid environment variable name"),
        ] {
            let e = expand_env(text, env).unwrap_err();
            assert!(e.contains(message), "{text}: {e}");
        }
    }
}
