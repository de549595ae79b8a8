//! Process-wide counters, shared by the source, the sink and the summary printed at exit.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters (every field but `partitions_assigned`, a gauge, only grows).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Kafka partitions this process owns now.
    pub partitions_assigned: AtomicU64,
    pub records_consumed: AtomicU64,
    pub bytes_consumed: AtomicU64,
    pub records_written: AtomicU64,
    pub records_skipped: AtomicU64,
    pub records_dead_lettered: AtomicU64,
    pub files_committed: AtomicU64,
    /// Files staged early because the memory budget was reached.
    pub files_spilled: AtomicU64,
    pub bytes_committed: AtomicU64,
    pub commits: AtomicU64,
    pub commits_fenced: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub records_consumed: u64,
    pub bytes_consumed: u64,
    pub records_written: u64,
    pub records_skipped: u64,
    pub records_dead_lettered: u64,
    pub files_committed: u64,
    pub files_spilled: u64,
    pub bytes_committed: u64,
    pub commits: u64,
    pub commits_fenced: u64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            records_consumed: g(&self.records_consumed),
            bytes_consumed: g(&self.bytes_consumed),
            records_written: g(&self.records_written),
            records_skipped: g(&self.records_skipped),
            records_dead_lettered: g(&self.records_dead_lettered),
            files_committed: g(&self.files_committed),
            files_spilled: g(&self.files_spilled),
            bytes_committed: g(&self.bytes_committed),
            commits: g(&self.commits),
            commits_fenced: g(&self.commits_fenced),
        }
    }
}

impl std::fmt::Display for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "consumed {} records ({} bytes), wrote {} rows in {} files ({} bytes) over {} commits, \
             skipped {} ({} to the dead letter queue), lost {} commit races, flushed {} files early \
             (memory budget)",
            self.records_consumed,
            self.bytes_consumed,
            self.records_written,
            self.files_committed,
            self.bytes_committed,
            self.commits,
            self.records_skipped,
            self.records_dead_lettered,
            self.commits_fenced,
            self.files_spilled
        )
    }
}
