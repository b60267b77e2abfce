//! Host figures from /proc (placeholder, filled in by the host source work).
use super::{CollectError, Source};
use crate::config::Paths;
use crate::metrics::Output;
use std::path::PathBuf;

pub struct HostSource {
    proc_root: PathBuf,
}

impl HostSource {
    pub fn new(paths: &Paths) -> Self {
        HostSource {
            proc_root: paths.proc.clone(),
        }
    }
}

impl Source for HostSource {
    async fn collect(&mut self, out: &mut Output) -> Result<(), CollectError> {
        let text = super::read_required(&self.proc_root.join("loadavg"))?;
        let load1: f64 = text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| CollectError::parse(&self.proc_root.join("loadavg"), "no load"))?;
        out.gauge(
            "vitals_host_load1",
            "1-minute load average, from /proc/loadavg.",
            &[],
            load1,
        );
        Ok(())
    }
}
