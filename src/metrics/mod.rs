//! Counters and gauges of one ingest job, shared by the source, the sink and the summary printed
//! at exit, and their Prometheus / OpenMetrics text encoding ([`encode_prometheus`], in
//! [`encode`]); [`http`] serves it.
//!
//! Counters only grow. Gauges are either kept here by their owner (`partitions_assigned`,
//! `consumer_lag`, set by the consumer thread) or read at scrape time from the parts that hold
//! them ([`Levels`]: the memory budget, the Hive registrar), so the hot path pays nothing for
//! them.

mod encode;
pub mod http;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

pub use encode::{encode_prometheus, PROMETHEUS_CONTENT_TYPE};

/// The upper bounds (seconds) of the commit latency histogram's buckets: 5 ms to about 80 s.
fn commit_latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.005, 2.0, 15)
}

/// Counters (every field but the gauges only grows).
#[derive(Debug)]
pub struct Metrics {
    /// Kafka partitions owned now (by every run sharing these metrics; 0 once they end).
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
    /// Offsets between where the store said a partition stands and the first record the broker
    /// delivered after it: deleted by retention (or compaction) before StreamX read them.
    pub offsets_skipped_at_resume: AtomicU64,
    /// Seconds from the start of a commit (staging its open files) to its commit record,
    /// observed once per successful commit.
    pub commit_latency: Histogram,
    /// Records behind the end of each owned partition (its last stable offset): the consumer
    /// thread sets them, and removes them when the partition goes.
    pub consumer_lag: Mutex<BTreeMap<(String, i32), u64>>,
    /// Bytes the job's open files hold (every run of it), against the process's one
    /// `memory.budget.bytes`.
    pub memory_used: Levels,
    /// Directories committed and not yet registered in the Hive Metastore.
    pub hive_pending: Levels,
    /// Tasks of the job that `streamx worker` restarted by itself after a transient failure.
    pub task_restarts: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            partitions_assigned: AtomicU64::default(),
            records_consumed: AtomicU64::default(),
            bytes_consumed: AtomicU64::default(),
            records_written: AtomicU64::default(),
            records_skipped: AtomicU64::default(),
            records_dead_lettered: AtomicU64::default(),
            files_committed: AtomicU64::default(),
            files_spilled: AtomicU64::default(),
            bytes_committed: AtomicU64::default(),
            commits: AtomicU64::default(),
            commits_fenced: AtomicU64::default(),
            offsets_skipped_at_resume: AtomicU64::default(),
            commit_latency: Histogram::new(commit_latency_buckets()),
            consumer_lag: Mutex::default(),
            memory_used: Levels::default(),
            hive_pending: Levels::default(),
            task_restarts: AtomicU64::default(),
        }
    }
}

/// Something that has a level now (bytes held, directories pending), maybe out of a capacity.
pub trait Level: Send + Sync {
    fn level(&self) -> u64;

    /// The most it should hold (0: no set limit).
    fn capacity(&self) -> u64 {
        0
    }
}

/// A gauge read at scrape time: the sum of the levels of the sources still alive. A source
/// that is dropped (its run ended) stops counting.
#[derive(Default)]
pub struct Levels(Mutex<Vec<Weak<dyn Level>>>);

impl Levels {
    /// Counts `source` in this gauge while it lives.
    pub fn watch(&self, source: Weak<dyn Level>) {
        let mut sources = lock(&self.0);
        sources.retain(|s| s.strong_count() > 0);
        sources.push(source);
    }

    /// The levels of the sources alive, summed.
    pub fn sum(&self) -> u64 {
        self.sum_of(|s| s.level())
    }

    /// The capacity the sources alive draw on: the largest of theirs (the tasks of a job, and
    /// every job of a worker, share the process's one memory budget, which is not theirs to sum).
    pub fn capacity(&self) -> u64 {
        self.alive(|s| s.capacity()).into_iter().max().unwrap_or(0)
    }

    fn sum_of(&self, get: impl Fn(&dyn Level) -> u64) -> u64 {
        self.alive(get).into_iter().sum()
    }

    /// `get` of every source still alive.
    fn alive(&self, get: impl Fn(&dyn Level) -> u64) -> Vec<u64> {
        lock(&self.0)
            .iter()
            .filter_map(Weak::upgrade)
            .map(|s| get(s.as_ref()))
            .collect()
    }
}

impl std::fmt::Debug for Levels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Levels({})", self.sum())
    }
}

/// Locks a mutex of plain values (a panic elsewhere cannot leave one half-updated).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
    pub offsets_skipped_at_resume: u64,
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
            offsets_skipped_at_resume: g(&self.offsets_skipped_at_resume),
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

impl Metrics {
    /// One successful commit took `took`.
    pub fn observe_commit(&self, took: Duration) {
        self.commit_latency.observe(took.as_secs_f64());
    }

    /// Sets the lag of partitions this run owns.
    pub fn set_lag(&self, lags: impl IntoIterator<Item = ((String, i32), u64)>) {
        lock(&self.consumer_lag).extend(lags);
    }

    /// Forgets the lag of partitions no longer owned.
    pub fn remove_lag<'a>(&self, partitions: impl IntoIterator<Item = &'a (String, i32)>) {
        let mut lag = lock(&self.consumer_lag);
        for p in partitions {
            lag.remove(p);
        }
    }

    /// The lag of every owned partition now.
    pub fn lags(&self) -> BTreeMap<(String, i32), u64> {
        lock(&self.consumer_lag).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Fixed(u64);
    impl Level for Fixed {
        fn level(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn levels_sum_the_sources_alive() {
        let levels = Levels::default();
        let a: Arc<dyn Level> = Arc::new(Fixed(3));
        let b: Arc<dyn Level> = Arc::new(Fixed(4));
        levels.watch(Arc::downgrade(&a));
        levels.watch(Arc::downgrade(&b));
        assert_eq!(levels.sum(), 7);
        drop(b);
        assert_eq!(levels.sum(), 3);
    }

    #[test]
    fn lag_is_set_and_removed_per_partition() {
        let m = Metrics::default();
        m.set_lag([(("t".to_string(), 0), 5), (("t".to_string(), 1), 0)]);
        m.set_lag([(("t".to_string(), 0), 2)]);
        m.remove_lag([&("t".to_string(), 1)]);
        assert_eq!(
            m.lags().into_iter().collect::<Vec<_>>(),
            [(("t".to_string(), 0), 2)]
        );
    }
}
