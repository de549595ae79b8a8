//! Job lifecycle on this worker: each job is `tasks.max` tasks, each task one [`ingest::run`] on
//! its own thread with its own shutdown flag; the tasks of a job share its consumer group
//! (`connect-<name>` unless the config sets `group.id`) and its [`Metrics`].
//!
//! ```text
//!   Registry (from the config topic) ──► reconcile ──► per job: config changed or target not
//!                                                      RUNNING => stop tasks (commit, leave group)
//!                                                      target RUNNING and no tasks => start them
//!   task thread ends with an error ──► FAILED, the error as `trace`
//!        External error (store, brokers): restarted after a backoff ([`super::restart`]),
//!            `restarts` counted in the status and in `streamx_task_restarts_total`
//!        User or Internal error: FAILED until `restart`
//! ```
//!
//! A job's config as stored is validated again here with this worker's defaults; a config this
//! worker cannot run (e.g. a `${file:..}` missing on this host) makes the job FAILED with the
//! reason, never a crash of the worker.
//!
//! Every task of every job runs with the worker's one [`Process`]: one memory budget (the
//! worker's `memory.budget.bytes`) and one I/O runtime for the whole worker, as for a single
//! `streamx ingest`. A job's own `memory.budget.bytes` is accepted (the same configs are valid
//! everywhere) and ignored, with a warning when the job is created or changed: a budget per job
//! would let the jobs together exceed what the worker may hold.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::config::{Config, ConfigError, RawConfig, Source};
use crate::ingest::{self, IngestOptions, Process};
use crate::job::PrepareError;
use crate::metrics::Metrics;
use crate::Origin;

use super::restart::{Failure, RestartPolicy};
use super::store::{Registry, TargetState};

/// A state as Kafka Connect names it, with the error when FAILED, and (StreamX's own) how
/// often the worker restarted the task by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub state: &'static str,
    pub trace: Option<String>,
    pub restarts: u64,
}

impl State {
    pub fn of(state: &'static str) -> State {
        State {
            state,
            trace: None,
            restarts: 0,
        }
    }
}

/// The status of one job on this worker.
#[derive(Debug, Clone)]
pub struct JobStatus {
    pub connector: State,
    /// `(task id, state)`.
    pub tasks: Vec<(usize, State)>,
}

struct Task {
    stop: Arc<AtomicBool>,
    handle: Mutex<Option<JoinHandle<()>>>,
    /// Set when the thread ends: `Err` when it failed.
    outcome: Mutex<Option<Result<(), Failure>>>,
    started: Instant,
    /// Automatic restarts of this task (its earlier runs) since it was last started by the
    /// reconciler or a restart request.
    restarts: u64,
    /// Of those, the ones in a row after short runs: the backoff's exponent.
    streak: u32,
}

impl Task {
    /// RUNNING until the thread has ended (also while it stops: it may still write), then
    /// PAUSED (job paused), FAILED with the error (also while waiting for an automatic
    /// restart, which the trace announces), or UNASSIGNED (about to be started again).
    fn state(&self, target: TargetState, policy: &RestartPolicy) -> State {
        let mut state = match lock(&self.outcome).as_ref() {
            None => State::of("RUNNING"),
            Some(Ok(())) if target == TargetState::Paused => State::of("PAUSED"),
            Some(Ok(())) => State::of("UNASSIGNED"),
            Some(Err(f)) => State {
                state: "FAILED",
                trace: Some(self.annotated(f, policy, target)),
                restarts: 0,
            },
        };
        state.restarts = self.restarts;
        state
    }

    /// The failure's trace and what happens next.
    fn annotated(&self, f: &Failure, policy: &RestartPolicy, target: TargetState) -> String {
        let next = match self.retry_after(f, policy) {
            Some(at) if target == TargetState::Running => {
                let wait = at.saturating_duration_since(Instant::now()).as_secs_f64();
                format!(
                    "restarting automatically in {wait:.1} s (automatic restart {}; task.restart.backoff.max.ms)",
                    self.restarts + 1
                )
            }
            _ if policy.enabled() && f.origin != Origin::External => {
                "not restarted automatically (restarting cannot fix this error); fix the cause, then POST /connectors/<name>/restart".into()
            }
            _ => "restart it with POST /connectors/<name>/restart".into(),
        };
        format!("{}\n{next}", f.trace)
    }

    /// When the worker restarts this failed task by itself; `None` when it does not.
    fn retry_at(&self, policy: &RestartPolicy) -> Option<Instant> {
        match lock(&self.outcome).as_ref() {
            Some(Err(f)) => self.retry_after(f, policy),
            _ => None,
        }
    }

    /// When the worker restarts this task after failure `f`.
    fn retry_after(&self, f: &Failure, policy: &RestartPolicy) -> Option<Instant> {
        if !policy.restarts(f.origin) {
            return None;
        }
        let streak = policy.streak_after(self.streak, self.started, f.at);
        Some(f.at + policy.delay(streak))
    }

    fn failed(&self) -> bool {
        matches!(lock(&self.outcome).as_ref(), Some(Err(_)))
    }

    fn ended_ok(&self) -> bool {
        matches!(lock(&self.outcome).as_ref(), Some(Ok(())))
    }

    /// Asks the task to stop and waits for its thread.
    fn join(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let handle = lock(&self.handle).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

struct Job {
    /// As stored.
    config: BTreeMap<String, String>,
    target: TargetState,
    metrics: Arc<Metrics>,
    tasks: Vec<Arc<Task>>,
    /// Why the job cannot run on this worker (its config, with this worker's defaults).
    failure: Option<String>,
}

impl Job {
    /// The tasks `which` selects, removed from the job unless `keep`, to be stopped by
    /// [`stop_one_by_one`].
    fn stop_tasks(&mut self, which: impl Fn(&Task) -> bool, keep: bool) -> Vec<Arc<Task>> {
        let chosen: Vec<Arc<Task>> = self.tasks.iter().filter(|t| which(t)).cloned().collect();
        if !keep {
            self.tasks
                .retain(|t| !chosen.iter().any(|c| Arc::ptr_eq(c, t)));
        }
        chosen
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The jobs this worker runs.
pub struct Jobs {
    /// Keys every job's config starts from (bootstrap.servers, converters, consumer.*).
    defaults: BTreeMap<String, String>,
    jobs: Mutex<BTreeMap<String, Job>>,
    /// Held for a whole reconcile or restart (stops included), so lifecycle changes never
    /// overlap: consumers of a group leave one at a time, never together (tansu stops assigning
    /// a group whose members leave at the same moment, shared/notes/kafka.md).
    lifecycle: Mutex<()>,
    /// When failed tasks restart by themselves.
    policy: RestartPolicy,
    /// The memory budget and I/O runtime every task draws on.
    process: Process,
}

/// `${env:VAR}` and `${file:path:key}` (a properties file) in a value, resolved when a task
/// starts; the stored config keeps the reference, so secrets stay out of the topic. One
/// implementation for the worker and `streamx ingest` ([`crate::config::secrets`]).
pub use crate::config::secrets::resolve_providers;

impl Jobs {
    /// `defaults` are the worker's job defaults with `bootstrap.servers` among them; every
    /// task runs with `process` (the worker's one memory budget and I/O runtime).
    pub fn new(
        defaults: BTreeMap<String, String>,
        policy: RestartPolicy,
        process: Process,
    ) -> Jobs {
        Jobs {
            defaults,
            jobs: Mutex::new(BTreeMap::new()),
            lifecycle: Mutex::new(()),
            policy,
            process,
        }
    }

    /// The memory budget and I/O runtime every task of this worker runs with.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// The ingest config of job `name`: the worker's defaults, the consumer group
    /// `connect-<name>`, then the stored keys (winning), with `${env:..}` / `${file:..}`
    /// references resolved when `resolve` is set; prepared as every entry point prepares a job
    /// ([`crate::job::prepare`]: its SQL compiled too).
    pub fn ingest_config(
        &self,
        name: &str,
        stored: &BTreeMap<String, String>,
        resolve: bool,
    ) -> Result<Config, PrepareError> {
        let mut raw = RawConfig::default();
        for (k, v) in &self.defaults {
            raw.set(k, v, Source::Default);
        }
        raw.set("group.id", &format!("connect-{name}"), Source::Default);
        for (k, v) in stored {
            let v = if resolve {
                resolve_providers(v).map_err(|why| ConfigError::InvalidValue {
                    key: k.clone(),
                    value: "[hidden]".into(),
                    allowed: why,
                })?
            } else {
                v.clone()
            };
            raw.set(k, &v, Source::Override);
        }
        let mut config = crate::job::prepare(&raw)?;
        // The worker serves every job's counters on its REST port.
        config.metrics_listen = None;
        Ok(config)
    }

    /// Brings the jobs in line with the registry: removed jobs stop, changed ones restart,
    /// paused/stopped ones stop (a paused job keeps its ended tasks, shown PAUSED), running ones
    /// get their missing tasks started.
    pub fn reconcile(&self, registry: &Registry) {
        let _turn = lock(&self.lifecycle);
        let mut to_join = Vec::new();
        {
            let mut jobs = lock(&self.jobs);
            jobs.retain(|name, job| {
                let keep = registry.configs.contains_key(name);
                if !keep {
                    tracing::info!(job = %name, "job deleted");
                    to_join.extend(job.stop_tasks(|_| true, false));
                }
                keep
            });
            for (name, config) in &registry.configs {
                let target = registry.target(name);
                let new = !jobs.contains_key(name);
                let job = jobs.entry(name.clone()).or_insert_with(|| Job {
                    config: config.clone(),
                    target,
                    metrics: Arc::new(Metrics::default()),
                    tasks: Vec::new(),
                    failure: None,
                });
                let changed = job.config != *config;
                if changed || job.target != target {
                    tracing::info!(job = %name, ?target, changed, "job updated");
                }
                if changed || new {
                    warn_own_budget(name, config, self.process.memory.limit());
                }
                if changed || target != TargetState::Running {
                    let keep = !changed && target == TargetState::Paused;
                    to_join.extend(job.stop_tasks(|_| true, keep));
                }
                job.config = config.clone();
                job.target = target;
            }
        }
        stop_one_by_one(&to_join);
        self.start_missing();
    }

    /// Starts, for every RUNNING job, the tasks it lacks (failed tasks wait for a restart).
    fn start_missing(&self) {
        let mut jobs = lock(&self.jobs);
        for (name, job) in jobs.iter_mut() {
            if job.target != TargetState::Running {
                continue;
            }
            job.tasks.retain(|t| !t.ended_ok());
            let Some(config) = self.runnable(name, job) else {
                continue;
            };
            while job.tasks.len() < config.tasks_max {
                let id = job.tasks.len();
                let run = self.run_options(job.metrics.clone());
                job.tasks.push(spawn(name, id, config.clone(), run, (0, 0)));
            }
        }
    }

    /// The config job `name`'s tasks run with on this worker; `None` (and the job FAILED with
    /// the reason) when it cannot run here.
    fn runnable(&self, name: &str, job: &mut Job) -> Option<Config> {
        match self.ingest_config(name, &job.config, true) {
            Ok(config) => {
                job.failure = None;
                Some(config)
            }
            Err(e) => {
                if job.failure.is_none() {
                    tracing::error!(job = %name, error = %e, "job cannot run on this worker");
                }
                job.failure = Some(e.to_string());
                None
            }
        }
    }

    /// Restarts the failed tasks whose backoff is over ([`super::restart`]); the reconciler
    /// calls it every [`RESTART_TICK`].
    pub fn restart_due(&self) {
        if !self.policy.enabled() {
            return;
        }
        let _turn = lock(&self.lifecycle);
        let now = Instant::now();
        let mut jobs = lock(&self.jobs);
        for (name, job) in jobs.iter_mut() {
            let due = |t: &Arc<Task>| t.retry_at(&self.policy).is_some_and(|at| at <= now);
            if job.target != TargetState::Running || !job.tasks.iter().any(due) {
                continue;
            }
            let Some(config) = self.runnable(name, job) else {
                continue;
            };
            for id in 0..job.tasks.len() {
                let old = &job.tasks[id];
                if !due(old) {
                    continue;
                }
                // Its thread has ended: the join returns at once.
                old.join();
                let failed_at = match lock(&old.outcome).as_ref() {
                    Some(Err(f)) => f.at,
                    _ => now,
                };
                let streak = self.policy.streak_after(old.streak, old.started, failed_at);
                let restarts = old.restarts + 1;
                tracing::warn!(job = %name, task = id, restarts, "restarting a task that failed on an external error");
                Metrics::add(&job.metrics.task_restarts, 1);
                let run = self.run_options(job.metrics.clone());
                job.tasks[id] = spawn(name, id, config.clone(), run, (restarts, streak + 1));
            }
        }
    }

    /// Restarts job `name`'s tasks (only the failed ones with `only_failed`); false when there
    /// is no such job.
    pub fn restart(&self, name: &str, only_failed: bool) -> bool {
        let _turn = lock(&self.lifecycle);
        let to_join = {
            let mut jobs = lock(&self.jobs);
            let Some(job) = jobs.get_mut(name) else {
                return false;
            };
            job.stop_tasks(|t| !only_failed || t.failed(), false)
        };
        stop_one_by_one(&to_join);
        self.start_missing();
        true
    }

    /// The status of `name` on this worker, `None` when unknown.
    pub fn status(&self, name: &str) -> Option<JobStatus> {
        let jobs = lock(&self.jobs);
        let job = jobs.get(name)?;
        let connector = match (&job.failure, job.target) {
            (Some(f), _) => State {
                state: "FAILED",
                trace: Some(f.clone()),
                restarts: 0,
            },
            (None, TargetState::Running) => State::of("RUNNING"),
            (None, TargetState::Paused) => State::of("PAUSED"),
            (None, TargetState::Stopped) => State::of("STOPPED"),
        };
        let tasks = job
            .tasks
            .iter()
            .enumerate()
            .map(|(id, t)| (id, t.state(job.target, &self.policy)))
            .collect();
        Some(JobStatus { connector, tasks })
    }

    /// The status of every job on this worker.
    pub fn statuses(&self) -> Vec<(String, JobStatus)> {
        let names: Vec<String> = lock(&self.jobs).keys().cloned().collect();
        names
            .into_iter()
            .filter_map(|n| self.status(&n).map(|s| (n, s)))
            .collect()
    }

    /// `(job, metrics)` of every job on this worker.
    pub fn metrics(&self) -> Vec<(String, Arc<Metrics>)> {
        lock(&self.jobs)
            .iter()
            .map(|(n, j)| (n.clone(), j.metrics.clone()))
            .collect()
    }

    /// Stops every task (open files committed) and forgets the jobs.
    pub fn shutdown(&self) {
        let _turn = lock(&self.lifecycle);
        let tasks: Vec<Arc<Task>> = {
            let mut jobs = lock(&self.jobs);
            let all = std::mem::take(&mut *jobs);
            all.into_values().flat_map(|j| j.tasks).collect()
        };
        stop_one_by_one(&tasks);
    }
}

impl Jobs {
    /// A task's options: the job's metrics, the worker's process (its own shutdown flag comes
    /// in [`spawn`]).
    fn run_options(&self, metrics: Arc<Metrics>) -> IngestOptions {
        IngestOptions {
            metrics,
            process: Some(self.process.clone()),
            ..Default::default()
        }
    }
}

/// Logs that job `name`'s own `memory.budget.bytes` is not used: its tasks draw on the worker's
/// (`limit` bytes).
fn warn_own_budget(name: &str, stored: &BTreeMap<String, String>, limit: u64) {
    if let Some(own) = stored.get(super::config::MEMORY_BUDGET) {
        tracing::warn!(job = %name, job_budget = %own, worker_budget = limit,
            "the job's memory.budget.bytes is ignored: every task of this worker draws on the worker's memory.budget.bytes");
    }
}

/// Stops tasks one after the other: each commits what it has open and leaves its group before
/// the next is asked to.
fn stop_one_by_one(tasks: &[Arc<Task>]) {
    for t in tasks {
        t.join();
    }
}

/// How often the reconciler looks for failed tasks to restart.
pub const RESTART_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// Starts task `id` of job `name`; `(restarts, streak)` carry over from the run it replaces.
fn spawn(
    name: &str,
    id: usize,
    config: Config,
    options: IngestOptions,
    (restarts, streak): (u64, u32),
) -> Arc<Task> {
    let stop = Arc::new(AtomicBool::new(false));
    let task = Arc::new(Task {
        stop: stop.clone(),
        handle: Mutex::new(None),
        outcome: Mutex::new(None),
        started: Instant::now(),
        restarts,
        streak,
    });
    let options = IngestOptions {
        shutdown: stop,
        ..options
    };
    let (job, me) = (name.to_string(), task.clone());
    let handle = std::thread::Builder::new()
        .name(format!("streamx-task-{id}"))
        .spawn(move || {
            tracing::info!(%job, task = id, "task started");
            let result = match ingest::run(config, options) {
                Ok(snapshot) => {
                    tracing::info!(%job, task = id, %snapshot, "task stopped");
                    Ok(())
                }
                Err(e) => {
                    tracing::error!(%job, task = id, error = %e, origin = %e.origin(), "task failed");
                    Err(Failure {
                        trace: format!("[{}] {e}", e.origin()),
                        origin: e.origin(),
                        at: Instant::now(),
                    })
                }
            };
            *lock(&me.outcome) = Some(result);
        });
    match handle {
        Ok(h) => *lock(&task.handle) = Some(h),
        // The system refused a thread (a resource limit): worth trying again later.
        Err(e) => {
            *lock(&task.outcome) = Some(Err(Failure {
                trace: format!("[{}] cannot start the task thread: {e}", Origin::External),
                origin: Origin::External,
                at: Instant::now(),
            }))
        }
    }
    task
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_resolve_env_and_file() {
        std::env::set_var("STREAMX_WORKER_TEST_SECRET", "s3cr3t");
        assert_eq!(
            resolve_providers("a-${env:STREAMX_WORKER_TEST_SECRET}-b").unwrap(),
            "a-s3cr3t-b"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("creds.properties");
        std::fs::write(&file, "key=v1\nother=v2\n").unwrap();
        let r = format!("${{file:{}:other}}", file.display());
        assert_eq!(resolve_providers(&r).unwrap(), "v2");
        let e = resolve_providers("${env:STREAMX_WORKER_TEST_NOPE}").unwrap_err();
        assert!(e.contains("STREAMX_WORKER_TEST_NOPE"), "{e}");
        assert_eq!(resolve_providers("plain").unwrap(), "plain");
    }

    #[test]
    fn ingest_config_layers_defaults_group_and_stored() {
        let defaults = [
            ("bootstrap.servers", "b:9092"),
            (
                "value.converter",
                "org.apache.kafka.connect.converters.ByteArrayConverter",
            ),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        let process = Process::new(1 << 20, 1).unwrap();
        let jobs = Jobs::new(defaults, RestartPolicy::default(), process);
        let stored: BTreeMap<String, String> = [
            ("name", "clickstream"),
            ("connector.class", "com.qubole.streamx.s3.S3SinkConnector"),
            ("format.class", "com.qubole.streamx.SourceFormat"),
            ("tasks.max", "2"),
            ("topics", "adclicks"),
            ("flush.size", "2"),
            ("s3.url", "s3://streamx/demo"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        let c = jobs.ingest_config("clickstream", &stored, true).unwrap();
        assert_eq!(c.group_id, "connect-clickstream");
        assert_eq!(c.tasks_max, 2);
        assert_eq!(c.bootstrap_servers, "b:9092");
        assert_eq!(c.store_url, "s3://streamx/demo");
    }
}
