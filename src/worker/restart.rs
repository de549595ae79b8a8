//! When a failed task is restarted by the worker itself, without anyone calling restart.
//!
//! The rule: a task whose run ended with an error of [`Origin::External`] (the store, the
//! brokers, the network, the metastore: something that may come back) is restarted after a
//! backoff; errors of [`Origin::User`] (a config this worker cannot run, a bad record with
//! `errors.tolerance=none`) and [`Origin::Internal`] (a StreamX bug) are not, because running
//! the same config on the same records again cannot help: they stay FAILED with their trace
//! until a restart is asked (`POST /connectors/<name>/restart`), as in Kafka Connect.
//!
//! The backoff doubles from `task.restart.backoff.initial.ms` up to
//! `task.restart.backoff.max.ms` with every restart that follows a short run; a run that lasted
//! at least the cap before failing starts again from the initial backoff.
//! `task.restart.backoff.max.ms=0` turns automatic restarts off.
//!
//! ```text
//!   task fails (External) ── FAILED + trace ── backoff(streak) ──► restarted: RUNNING,
//!        ▲                                                          restarts + 1, counted in
//!        └──────────────── fails again (streak + 1, or 0 after a long run) ◄─┘ streamx_task_restarts_total
//! ```

use std::time::{Duration, Instant};

use crate::Origin;

/// Default of `task.restart.backoff.initial.ms`.
pub const DEFAULT_INITIAL: Duration = Duration::from_secs(1);
/// Default of `task.restart.backoff.max.ms`.
pub const DEFAULT_MAX: Duration = Duration::from_secs(60);

/// How failed tasks are restarted (worker keys `task.restart.backoff.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// The wait before the first restart.
    pub initial: Duration,
    /// The longest wait, and how long a run must last to start again from `initial`;
    /// zero: failed tasks wait for a restart request.
    pub max: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial: DEFAULT_INITIAL,
            max: DEFAULT_MAX,
        }
    }
}

/// Why a task's run ended, as its status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `[<origin>] <error>`: Kafka Connect's `trace`.
    pub trace: String,
    pub origin: Origin,
    /// When the run ended.
    pub at: Instant,
}

impl RestartPolicy {
    /// Whether failed tasks are ever restarted automatically.
    pub fn enabled(&self) -> bool {
        !self.max.is_zero()
    }

    /// Whether a failure of this origin is restarted automatically.
    pub fn restarts(&self, origin: Origin) -> bool {
        self.enabled() && origin == Origin::External
    }

    /// The wait before the restart that follows `streak` restarts after short runs.
    pub fn delay(&self, streak: u32) -> Duration {
        let factor = 1u32.checked_shl(streak.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The streak to count a run that started at `started` and failed at `failed` in: a run
    /// of at least `max` was healthy, and the backoff starts over.
    pub fn streak_after(&self, streak: u32, started: Instant, failed: Instant) -> u32 {
        if failed.saturating_duration_since(started) >= self.max {
            0
        } else {
            streak
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RestartPolicy::default();
        let secs: Vec<u64> = (0..9).map(|s| p.delay(s).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(p.delay(u32::MAX), DEFAULT_MAX);
        let small = RestartPolicy {
            initial: Duration::from_millis(300),
            max: Duration::from_millis(1000),
        };
        assert_eq!(small.delay(1), Duration::from_millis(600));
        assert_eq!(small.delay(2), Duration::from_millis(1000));
    }

    #[test]
    fn only_external_failures_restart_and_zero_turns_it_off() {
        let p = RestartPolicy::default();
        assert!(p.restarts(Origin::External));
        assert!(!p.restarts(Origin::User));
        assert!(!p.restarts(Origin::Internal));
        let off = RestartPolicy {
            max: Duration::ZERO,
            ..p
        };
        assert!(!off.enabled());
        assert!(!off.restarts(Origin::External));
    }

    #[test]
    fn a_long_run_starts_the_backoff_over() {
        let p = RestartPolicy::default();
        let t0 = Instant::now();
        assert_eq!(p.streak_after(5, t0, t0 + Duration::from_secs(59)), 5);
        assert_eq!(p.streak_after(5, t0, t0 + DEFAULT_MAX), 0);
    }
}
