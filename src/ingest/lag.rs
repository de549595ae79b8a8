//! The consumer lag gauge of one ingest run: per owned partition, the records between the
//! consumed position and the partition's end (its last stable offset), from librdkafka's
//! statistics ([`crate::source::stats`]). The run sets its partitions' values in the shared
//! [`Metrics`] and removes them when a partition goes and when the run ends.

use std::collections::HashSet;
use std::sync::Arc;

use crate::config::StartFrom;
use crate::metrics::Metrics;
use crate::source::stats::PartitionOffsets;
use crate::source::Offsets;

/// The lag values this run has set.
pub struct LagGauge {
    metrics: Arc<Metrics>,
    set: HashSet<(String, i32)>,
}

impl LagGauge {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        LagGauge {
            metrics,
            set: HashSet::new(),
        }
    }

    /// Sets the lag of each owned partition, given as (topic, partition, next offset expected,
    /// fenced), that the statistics know.
    pub fn update<'a>(
        &mut self,
        offsets: &Offsets,
        owned: impl Iterator<Item = (&'a str, i32, Option<i64>, bool)>,
        start_from: StartFrom,
    ) {
        let mut values = Vec::new();
        for (topic, partition, expected, fenced) in owned {
            let key = (topic.to_string(), partition);
            if fenced {
                // Another process owns it now: its lag is theirs.
                self.forget(&key);
                continue;
            }
            let Some(lag) = offsets
                .get(&key)
                .and_then(|o| lag(*o, expected, start_from))
            else {
                continue;
            };
            self.set.insert(key.clone());
            values.push((key, lag));
        }
        self.metrics.set_lag(values);
    }

    /// Removes a partition this run no longer owns.
    pub fn forget(&mut self, key: &(String, i32)) {
        if self.set.remove(key) {
            self.metrics.remove_lag([key]);
        }
    }
}

impl Drop for LagGauge {
    fn drop(&mut self) {
        self.metrics.remove_lag(self.set.iter());
    }
}

/// Records from the next offset to consume to the end. The next offset is the consumer's
/// position (which moves past transaction markers) or the next offset routed, whichever is
/// further; with neither, nothing was consumed since the assignment, which started at the
/// beginning or at the end (`start_from`) of the partition. `None` while the end is unknown.
fn lag(o: PartitionOffsets, expected: Option<i64>, start_from: StartFrom) -> Option<u64> {
    if o.end < 0 {
        return None;
    }
    let consumed = (o.consumed >= 0).then_some(o.consumed);
    let next = match consumed.max(expected) {
        Some(next) => next,
        None if start_from == StartFrom::Latest => o.end,
        None => o.low.max(0),
    };
    Some(u64::try_from(o.end - next).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(low: i64, end: i64, consumed: i64) -> PartitionOffsets {
        PartitionOffsets { low, end, consumed }
    }

    #[test]
    fn lag_counts_from_the_furthest_known_position() {
        let e = StartFrom::Earliest;
        assert_eq!(lag(offsets(0, 10, 4), None, e), Some(6));
        assert_eq!(lag(offsets(0, 10, 4), Some(7), e), Some(3));
        assert_eq!(lag(offsets(2, 10, -1), None, e), Some(8));
        assert_eq!(lag(offsets(0, 10, -1), None, StartFrom::Latest), Some(0));
        assert_eq!(lag(offsets(0, 10, 12), None, e), Some(0), "never negative");
        assert_eq!(lag(offsets(0, -1, 3), None, e), None);
    }

    #[test]
    fn values_leave_with_their_partitions_and_the_run() {
        let metrics = Arc::new(Metrics::default());
        let mut gauge = LagGauge::new(metrics.clone());
        let stats: Offsets = [
            (("t".to_string(), 0), offsets(0, 10, 4)),
            (("t".to_string(), 1), offsets(0, 5, 5)),
        ]
        .into();
        let owned = [("t", 0, None, false), ("t", 1, None, false)];
        gauge.update(&stats, owned.into_iter(), StartFrom::Earliest);
        assert_eq!(metrics.lags().len(), 2);
        gauge.forget(&("t".to_string(), 1));
        assert_eq!(metrics.lags().values().collect::<Vec<_>>(), [&6]);
        drop(gauge);
        assert!(metrics.lags().is_empty());
    }
}
