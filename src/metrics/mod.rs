//! Counters of one ingest job, shared by the source, the sink and the summary printed at exit,
//! and their Prometheus / OpenMetrics text encoding ([`encode_prometheus`]); [`http`] serves it.

pub mod http;

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters (every field but `partitions_assigned`, a gauge, only grows).
#[derive(Debug, Default)]
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

/// Counters of several jobs in the Prometheus / OpenMetrics text format (the content type is
/// [`PROMETHEUS_CONTENT_TYPE`]), one series per job labelled `job="<name>"`, encoded by the
/// `prometheus-client` crate. Counter names end in `_total`.
pub fn encode_prometheus(jobs: &[(String, &Metrics)]) -> String {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;
    type Labels = Vec<(String, String)>;

    let mut registry = Registry::with_prefix("streamx");
    type Counted = (&'static str, &'static str, fn(&Snapshot) -> u64);
    let counters: [Counted; 10] = [
        ("records_consumed", "Records read from Kafka", |s| {
            s.records_consumed
        }),
        (
            "bytes_consumed",
            "Bytes of record values read from Kafka",
            |s| s.bytes_consumed,
        ),
        (
            "records_written",
            "Rows written into committed files",
            |s| s.records_written,
        ),
        (
            "records_skipped",
            "Bad records skipped (errors.tolerance=all)",
            |s| s.records_skipped,
        ),
        (
            "records_dead_lettered",
            "Records sent to the dead letter queue",
            |s| s.records_dead_lettered,
        ),
        ("files_committed", "Files committed to the store", |s| {
            s.files_committed
        }),
        (
            "files_spilled",
            "Files staged early because the memory budget was reached",
            |s| s.files_spilled,
        ),
        ("bytes_committed", "Bytes of committed files", |s| {
            s.bytes_committed
        }),
        (
            "commits",
            "Commits (one per Kafka partition and rotation)",
            |s| s.commits,
        ),
        (
            "commits_fenced",
            "Commits lost to another writer of the same partition",
            |s| s.commits_fenced,
        ),
    ];
    let labels = |job: &str| -> Labels { vec![("job".to_string(), job.to_string())] };
    for (name, help, get) in counters {
        let family = Family::<Labels, Counter>::default();
        for (job, m) in jobs {
            family
                .get_or_create(&labels(job))
                .inc_by(get(&m.snapshot()));
        }
        registry.register(name, help, family);
    }
    let assigned = Family::<Labels, Gauge>::default();
    for (job, m) in jobs {
        let n = m.partitions_assigned.load(Ordering::Relaxed);
        assigned
            .get_or_create(&labels(job))
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    registry.register(
        "partitions_assigned",
        "Kafka partitions this process owns now",
        assigned,
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// The content type of [`encode_prometheus`]'s output.
pub const PROMETHEUS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_every_counter_per_job() {
        let a = Metrics::default();
        Metrics::add(&a.records_consumed, 7);
        Metrics::add(&a.files_committed, 2);
        a.partitions_assigned.store(3, Ordering::Relaxed);
        let b = Metrics::default();
        let text = encode_prometheus(&[("a".into(), &a), ("b".into(), &b)]);
        assert!(
            text.contains("streamx_records_consumed_total{job=\"a\"} 7"),
            "{text}"
        );
        assert!(text.contains("streamx_files_committed_total{job=\"a\"} 2"));
        assert!(text.contains("streamx_records_consumed_total{job=\"b\"} 0"));
        assert!(text.contains("streamx_partitions_assigned{job=\"a\"} 3"));
        assert!(text.ends_with("# EOF\n"));
    }
}
