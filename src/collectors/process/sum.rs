//! A target's processes summed into one set of figures.

/// One process's figures, in the kernel's units.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProcSample {
    pub(crate) cpu_ticks: u64,
    pub(crate) rss_bytes: u64,
    /// Virtual memory size, stat's vsize.
    pub(crate) virtual_bytes: u64,
    pub(crate) threads: u64,
    pub(crate) start_ticks: u64,
    /// `None`: the fd directory could not be read.
    pub(crate) open_fds: Option<u64>,
    pub(crate) max_fds: MaxFds,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum MaxFds {
    Limit(u64),
    Unlimited,
    /// limits could not be read.
    Unknown,
}

/// One target's figures: all its processes together.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Figures {
    pub(super) count: u64,
    pub(super) cpu_ticks: u64,
    pub(super) rss_bytes: u64,
    pub(super) threads: u64,
    pub(super) oldest_start_ticks: u64,
    /// Absent unless every process's fd directory was read: a partial sum
    /// would look like a drop.
    pub(super) open_fds: Option<u64>,
    /// The lowest soft limit; absent when all are unlimited or one is unknown.
    pub(super) max_fds: Option<u64>,
}

/// Sums a target's processes; `None` when there are none (`up 0`).
pub(super) fn aggregate(samples: &[ProcSample]) -> Option<Figures> {
    let first = samples.first()?;
    let mut f = Figures {
        count: 0,
        cpu_ticks: 0,
        rss_bytes: 0,
        threads: 0,
        oldest_start_ticks: first.start_ticks,
        open_fds: Some(0),
        max_fds: None,
    };
    let mut max_known = true;
    for s in samples {
        f.count += 1;
        f.cpu_ticks = f.cpu_ticks.saturating_add(s.cpu_ticks);
        f.rss_bytes = f.rss_bytes.saturating_add(s.rss_bytes);
        f.threads = f.threads.saturating_add(s.threads);
        f.oldest_start_ticks = f.oldest_start_ticks.min(s.start_ticks);
        f.open_fds = match (f.open_fds, s.open_fds) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            _ => None,
        };
        match s.max_fds {
            MaxFds::Limit(l) => f.max_fds = Some(f.max_fds.map_or(l, |m| m.min(l))),
            MaxFds::Unlimited => {}
            MaxFds::Unknown => max_known = false,
        }
    }
    if !max_known {
        f.max_fds = None;
    }
    Some(f)
}
