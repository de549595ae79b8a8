//! Rotation policy: when the open files of one Kafka partition are closed and committed.
//!
//! Pure decisions over a [`RotationState`]; the writer calls the hooks at the points named by
//! each method and rotates when one returns a reason. Limits (from [`RotationConfig`]):
//! - `flush.size` records per commit (exact: checked after every record);
//! - `rotate.size.bytes` of estimated encoded output (checked after every decoded batch, so a
//!   commit can exceed it by up to one batch);
//! - `rotate.interval.ms` in the record time of `timestamp.extractor` (Kafka timestamp, a field,
//!   or the wall clock): a record whose time is at least the interval past the first record of
//!   the open files starts the next commit, even inside a decoded batch (kafka-connect-hdfs);
//!   and, unlike Kafka Connect, a partition that received nothing for the interval (wall clock)
//!   is committed too, so idle topics do not keep data back;
//! - `rotate.schedule.interval.ms`: at every wall-clock multiple of the interval since the epoch
//!   (UTC), whatever the traffic.

use std::time::{Duration, Instant};

use crate::config::RotationConfig;

/// Why files were rotated (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateReason {
    FlushSize,
    Size,
    RecordTime,
    Idle,
    Schedule,
    EndOfInput,
    Shutdown,
    /// A file staged early (memory budget) reached half of `staging.cleanup.age.ms`.
    StagedAge,
}

/// What the policy needs to know about the open commit.
#[derive(Debug, Clone)]
pub struct RotationState {
    pub records: u64,
    pub first_record_ts: Option<i64>,
    /// When new records were last seen, at tick granularity (reading the clock per record costs
    /// a few percent of the hot path).
    pub last_record_at: Instant,
    /// `records` at the previous tick.
    pub records_at_last_tick: u64,
    /// End of the schedule window the open commit started in (epoch ms).
    pub schedule_deadline_ms: Option<i64>,
}

impl RotationState {
    pub fn new(config: &RotationConfig, now: Instant, now_wall_ms: i64) -> Self {
        RotationState {
            records: 0,
            first_record_ts: None,
            last_record_at: now,
            records_at_last_tick: 0,
            schedule_deadline_ms: config
                .schedule_interval
                .map(|i| next_boundary(now_wall_ms, i)),
        }
    }
}

fn next_boundary(now_ms: i64, interval: Duration) -> i64 {
    let i = interval.as_millis().max(1) as i64;
    (now_ms.div_euclid(i) + 1) * i
}

/// The configured limits, with the decision hooks.
#[derive(Debug, Clone)]
pub struct RotationPolicy {
    pub config: RotationConfig,
}

impl RotationPolicy {
    /// The first index of `times` (record times of rows about to join the open files, in offset
    /// order; epoch ms, negative when unknown) whose time is `rotate.interval.ms` or more past
    /// the first record time of the open commit: that row starts the next commit. Records the
    /// first time of the open commit as it scans. Unknown times never rotate.
    pub fn time_cut(&self, st: &mut RotationState, times: &[i64]) -> Option<usize> {
        let interval = self.config.interval?.as_millis() as i64;
        for (i, &t) in times.iter().enumerate() {
            if t < 0 {
                continue;
            }
            match st.first_record_ts {
                None => st.first_record_ts = Some(t),
                Some(first) if t - first >= interval => return Some(i),
                Some(_) => {}
            }
        }
        None
    }

    /// After a record joined the open files.
    pub fn after_record(&self, st: &RotationState) -> Option<RotateReason> {
        let n = self.config.flush_size?;
        (st.records >= n).then_some(RotateReason::FlushSize)
    }

    /// After a batch was encoded; `estimated_bytes` is the size of every open file together.
    pub fn after_batch(&self, estimated_bytes: u64) -> Option<RotateReason> {
        let max = self.config.max_bytes?;
        (estimated_bytes >= max).then_some(RotateReason::Size)
    }

    /// On every tick of the loop (about every 100 ms), records or not.
    pub fn on_tick(
        &self,
        st: &mut RotationState,
        now: Instant,
        now_wall_ms: i64,
    ) -> Option<RotateReason> {
        if st.records != st.records_at_last_tick {
            st.records_at_last_tick = st.records;
            st.last_record_at = now;
        }
        if st.records == 0 {
            return None;
        }
        if let Some(deadline) = st.schedule_deadline_ms {
            if now_wall_ms >= deadline {
                return Some(RotateReason::Schedule);
            }
        }
        let idle = self.config.interval?;
        (now.duration_since(st.last_record_at) >= idle).then_some(RotateReason::Idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(f: impl FnOnce(&mut RotationConfig)) -> RotationPolicy {
        let mut config = RotationConfig::default();
        f(&mut config);
        RotationPolicy { config }
    }

    #[test]
    fn flush_size_is_exact() {
        let p = policy(|c| c.flush_size = Some(3));
        let mut st = RotationState::new(&p.config, Instant::now(), 0);
        st.records = 2;
        assert_eq!(p.after_record(&st), None);
        st.records = 3;
        assert_eq!(p.after_record(&st), Some(RotateReason::FlushSize));
    }

    #[test]
    fn record_time_interval_cuts_at_the_first_late_record() {
        let p = policy(|c| c.interval = Some(Duration::from_millis(1000)));
        let mut st = RotationState::new(&p.config, Instant::now(), 0);
        assert_eq!(p.time_cut(&mut st, &[-1, 5_000, 5_500]), None);
        assert_eq!(
            st.first_record_ts,
            Some(5_000),
            "the first known time starts the span"
        );
        assert_eq!(p.time_cut(&mut st, &[5_999, -1, 6_000, 7_000]), Some(2));
        let mut fresh = RotationState::new(&p.config, Instant::now(), 0);
        assert_eq!(
            p.time_cut(&mut fresh, &[-1, -1]),
            None,
            "unknown timestamps never rotate"
        );
        let none = policy(|_| {});
        assert_eq!(none.time_cut(&mut fresh, &[0, 10_000_000]), None);
    }

    #[test]
    fn idle_partition_rotates_on_wall_clock() {
        let p = policy(|c| c.interval = Some(Duration::from_millis(500)));
        let start = Instant::now();
        let mut st = RotationState::new(&p.config, start, 0);
        let later = start + Duration::from_secs(5);
        assert_eq!(p.on_tick(&mut st, later, 0), None, "nothing open");
        st.records = 1; // a record arrives; the next tick notices it
        let seen = later + Duration::from_secs(1);
        assert_eq!(
            p.on_tick(&mut st, seen, 0),
            None,
            "not idle right after a record"
        );
        assert_eq!(
            p.on_tick(&mut st, seen + Duration::from_millis(499), 0),
            None
        );
        st.records = 2;
        let again = seen + Duration::from_millis(600); // idle by then, but a record came
        assert_eq!(
            p.on_tick(&mut st, again, 0),
            None,
            "a new record restarts the idle clock"
        );
        assert_eq!(
            p.on_tick(&mut st, again + Duration::from_millis(499), 0),
            None
        );
        let idle = again + Duration::from_millis(500);
        assert_eq!(p.on_tick(&mut st, idle, 0), Some(RotateReason::Idle));
    }

    #[test]
    fn schedule_rotates_at_wall_clock_boundaries() {
        let p = policy(|c| c.schedule_interval = Some(Duration::from_secs(60)));
        let now = Instant::now();
        let mut st = RotationState::new(&p.config, now, 61_000);
        assert_eq!(st.schedule_deadline_ms, Some(120_000));
        st.records = 1;
        assert_eq!(p.on_tick(&mut st, now, 119_999), None);
        assert_eq!(
            p.on_tick(&mut st, now, 120_000),
            Some(RotateReason::Schedule)
        );
    }

    #[test]
    fn size_limit() {
        let p = policy(|c| c.max_bytes = Some(1024));
        assert_eq!(p.after_batch(1023), None);
        assert_eq!(p.after_batch(1024), Some(RotateReason::Size));
    }
}
