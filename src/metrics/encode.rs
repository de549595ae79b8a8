//! The Prometheus / OpenMetrics text encoding of several jobs' metrics, by the
//! `prometheus-client` crate: one [`Collector`] reads every job's [`Metrics`] at scrape time, so
//! the values (the commit latency histogram included) are encoded as they are, not copied.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::{Metrics, Snapshot};

/// The content type of [`encode_prometheus`]'s output.
pub const PROMETHEUS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Several jobs' metrics in the Prometheus / OpenMetrics text format (the content type is
/// [`PROMETHEUS_CONTENT_TYPE`]), one series per job labelled `job="<name>"` (the consumer lag
/// also by `topic` and `partition`), every name prefixed `streamx_`. Counter names end in
/// `_total`.
pub fn encode_prometheus(jobs: &[(String, Arc<Metrics>)]) -> String {
    let mut registry = Registry::with_prefix("streamx");
    registry.register_collector(Box::new(Jobs(jobs.to_vec())));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

type Labels = Vec<(&'static str, String)>;

fn job_labels(job: &str) -> Labels {
    vec![("job", job.to_string())]
}

type Counted = (&'static str, &'static str, fn(&Snapshot) -> u64);

const COUNTERS: [Counted; 11] = [
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
        "offsets_skipped_at_resume",
        "Offsets the broker no longer had when a partition resumed where the store said (deleted by retention or compaction before they were read)",
        |s| s.offsets_skipped_at_resume,
    ),
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

type Gauged = (&'static str, &'static str, fn(&Metrics) -> u64);

const GAUGES: [Gauged; 4] = [
    (
        "partitions_assigned",
        "Kafka partitions this process owns now",
        |m| m.partitions_assigned.load(Ordering::Relaxed),
    ),
    (
        "memory_budget_used_bytes",
        "Bytes held by the job's open files against the process's memory.budget.bytes",
        |m| m.memory_used.sum(),
    ),
    (
        "memory_budget_bytes",
        "The process's memory budget (memory.budget.bytes) the job's running tasks share with every other job of the process",
        |m| m.memory_used.capacity(),
    ),
    (
        "hive_registrations_pending",
        "Committed directories not yet registered in the Hive Metastore",
        |m| m.hive_pending.sum(),
    ),
];

/// Every job's metrics, read when encoded.
#[derive(Debug)]
struct Jobs(Vec<(String, Arc<Metrics>)>);

impl Collector for Jobs {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshots: Vec<Snapshot> = self.0.iter().map(|(_, m)| m.snapshot()).collect();
        for (name, help, get) in COUNTERS {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for ((job, _), s) in self.0.iter().zip(&snapshots) {
                let labels = job_labels(job);
                ConstCounter::new(get(s)).encode(family.encode_family(&labels)?)?;
            }
        }
        for (name, help, get) in GAUGES {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (job, m) in &self.0 {
                let labels = job_labels(job);
                let value = i64::try_from(get(m)).unwrap_or(i64::MAX);
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        self.encode_commit_latency(&mut encoder)?;
        self.encode_lag(&mut encoder)?;
        self.encode_task_restarts(&mut encoder)
    }
}

impl Jobs {
    fn encode_task_restarts(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut family = encoder.encode_descriptor(
            "task_restarts",
            "Tasks restarted by the worker itself after a transient (external) failure",
            None,
            MetricType::Counter,
        )?;
        for (job, m) in &self.0 {
            let value = m.task_restarts.load(Ordering::Relaxed);
            ConstCounter::new(value).encode(family.encode_family(&job_labels(job))?)?;
        }
        Ok(())
    }

    fn encode_commit_latency(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut family = encoder.encode_descriptor(
            "commit_latency",
            "Time from the start of a commit (staging its open files) to its commit record",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (job, m) in &self.0 {
            let labels = job_labels(job);
            m.commit_latency.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn encode_lag(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut family = encoder.encode_descriptor(
            "consumer_lag",
            "Records between the consumed position and the end of each owned Kafka partition",
            None,
            MetricType::Gauge,
        )?;
        for (job, m) in &self.0 {
            for ((topic, partition), lag) in m.lags() {
                let mut labels = job_labels(job);
                labels.push(("topic", topic));
                labels.push(("partition", partition.to_string()));
                let value = i64::try_from(lag).unwrap_or(i64::MAX);
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn prometheus_text_has_every_metric_per_job() {
        let a = Arc::new(Metrics::default());
        Metrics::add(&a.records_consumed, 7);
        Metrics::add(&a.files_committed, 2);
        Metrics::add(&a.task_restarts, 3);
        a.partitions_assigned.store(3, Ordering::Relaxed);
        a.observe_commit(Duration::from_millis(30));
        a.set_lag([(("t".to_string(), 1), 9)]);
        let b = Arc::new(Metrics::default());
        let text = encode_prometheus(&[("a".into(), a), ("b".into(), b)]);
        for line in [
            "streamx_records_consumed_total{job=\"a\"} 7",
            "streamx_files_committed_total{job=\"a\"} 2",
            "streamx_records_consumed_total{job=\"b\"} 0",
            "streamx_partitions_assigned{job=\"a\"} 3",
            "streamx_commit_latency_seconds_count{job=\"a\"} 1",
            "streamx_commit_latency_seconds_count{job=\"b\"} 0",
            "streamx_consumer_lag{job=\"a\",topic=\"t\",partition=\"1\"} 9",
            "streamx_memory_budget_used_bytes{job=\"b\"} 0",
            "streamx_hive_registrations_pending{job=\"a\"} 0",
            "streamx_task_restarts_total{job=\"a\"} 3",
            "streamx_task_restarts_total{job=\"b\"} 0",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert_eq!(
            text.matches("# TYPE streamx_commit_latency_seconds")
                .count(),
            1
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
