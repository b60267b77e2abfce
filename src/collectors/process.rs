//! Named target processes (placeholder, filled in by the process source work).
use super::{CollectError, Source};
use crate::config::{Paths, ProcessConfig};
use crate::metrics::Output;

pub struct ProcessSource {}

impl ProcessSource {
    pub fn new(_paths: &Paths, _targets: &[ProcessConfig]) -> Self {
        ProcessSource {}
    }
}

impl Source for ProcessSource {
    async fn collect(&mut self, _out: &mut Output) -> Result<(), CollectError> {
        Ok(())
    }
}
