//! `streamx worker`: Kafka Connect's distributed mode for StreamX. Jobs are submitted as JSON to
//! a Kafka-Connect-compatible REST API, kept durably in a Kafka topic, and run as ingest tasks.
//!
//! ```text
//!   REST (axum, tokio: 2 threads)          config.storage.topic (1 partition, compacted)
//!   POST/PUT/PATCH/DELETE/pause/... ──write──► connector-<n>, target-state-<n>, barrier
//!        │  answers once its barrier                    │
//!        │  has been read back                          ▼
//!        │                              follower thread (store.rs): Registry, latest per key
//!        │                                              │ on change
//!        ▼                                              ▼
//!   GET status/metrics ◄──────────────── reconciler thread (jobs.rs): start / stop / restart
//!                                                       │
//!                              task threads: ingest::run(config, own shutdown flag, job Metrics,
//!                              the worker's one memory budget and I/O runtime)
//!                              consumer group connect-<n> on every worker => Kafka spreads the
//!                              partitions over workers and tasks; commits keep it exactly once
//! ```
//!
//! Owns: the REST listeners (http and https), the config topic clients, the job registry and
//! every task thread.
//! Contract: an answer 2xx to a write means the config topic holds it; a starting worker reads
//! the topic to its end before it starts or stops anything, then runs every job in its stored
//! state (running, paused, stopped); a task that fails is FAILED with its error as `trace`,
//! and restarted by the worker after a capped backoff when the error is external (store,
//! brokers), otherwise kept FAILED until restarted ([`restart`]). With
//! `status.storage.topic` every worker publishes its tasks' states (status thread, every
//! [`STATUS_PERIOD`]) and `/status` shows every worker's tasks. Secrets are never logged; GET config returns configs as
//! stored (tools compare them), validate answers show `[hidden]`.
//!
//! - [`config`]: worker keys and the `CONNECT_*` environment mapping.
//! - [`store`]: the config topic: writes with read-your-write, the follower, the [`store::Registry`].
//! - [`jobs`]: job lifecycle and statuses; [`restart`]: when failed tasks restart by themselves.
//! - [`service`]: the API's operations and errors; [`rest`]: the HTTP routes.
//! - [`tls`]: `https://` listeners (Connect's `listeners.https.ssl.*` keys, client certificates).

pub mod auth;
pub mod config;
pub mod jobs;
pub mod rest;
pub mod restart;
pub mod service;
pub mod store;
pub mod tls;

use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

pub use config::{WorkerConfig, WorkerConfigError};
use jobs::Jobs;
use service::Worker;
use store::{Change, ConfigStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Config(#[from] WorkerConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the REST server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot start the REST runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot start the tasks' I/O runtime: {0}")]
    IoRuntime(crate::ingest::IngestError),
}

/// Threads of the I/O runtime every task's store calls share.
const IO_THREADS: usize = 2;

/// Runs the worker until `shutdown` is set: then the REST server stops and every task commits
/// what it has open.
pub fn run(config: WorkerConfig, shutdown: Arc<AtomicBool>) -> Result<(), WorkerError> {
    let mut defaults = config.job_defaults.clone();
    defaults
        .entry("bootstrap.servers".into())
        .or_insert_with(|| config.bootstrap_servers.clone());
    // One memory budget and one I/O runtime for every task of every job (2 I/O threads: the
    // store round trips of all the tasks meet there).
    let process = crate::ingest::Process::new(config.memory_budget_bytes, IO_THREADS)
        .map_err(WorkerError::IoRuntime)?;
    let jobs = Arc::new(Jobs::new(defaults, config.restart, process));
    let (tx, rx) = mpsc::channel::<Change>();
    let reconciler = {
        let jobs = jobs.clone();
        std::thread::Builder::new()
            .name("streamx-reconcile".into())
            .spawn(move || reconcile(&jobs, &rx))
            .map_err(WorkerError::Runtime)?
    };
    let store = ConfigStore::open(&config, move |change| {
        let _ = tx.send(change);
    })?;
    let worker = Arc::new(Worker {
        cluster_id: cluster_id(&config),
        config,
        store,
        jobs: jobs.clone(),
    });
    let publisher = {
        let (worker, stop) = (worker.clone(), Arc::new(AtomicBool::new(false)));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("streamx-status".into())
            .spawn(move || publish_statuses(&worker, &flag))
            .map_err(WorkerError::Runtime)?;
        (stop, handle)
    };
    let result = serve(worker.clone(), shutdown);
    tracing::info!("worker stopping: stopping every task");
    publisher.0.store(true, Ordering::Relaxed);
    let _ = publisher.1.join();
    // Dropping the store ends the follower and with it the reconciler's channel.
    drop(worker);
    let _ = reconciler.join();
    jobs.shutdown();
    result
}

/// The reconciler thread: applies the follower's changes in order until the store closes the
/// channel, and restarts failed tasks whose backoff is over. Of several registries queued
/// together only the newest matters.
fn reconcile(jobs: &Jobs, changes: &mpsc::Receiver<Change>) {
    loop {
        let first = match changes.recv_timeout(jobs::RESTART_TICK) {
            Ok(change) => change,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                jobs.restart_due();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut queued = vec![first];
        queued.extend(changes.try_iter());
        let newest = queued
            .iter()
            .rposition(|c| matches!(c, Change::Registry(_)));
        for (i, change) in queued.into_iter().enumerate() {
            match change {
                Change::Registry(r) if Some(i) == newest => jobs.reconcile(&r),
                Change::Registry(_) => {}
                Change::Restart { name, only_failed } => {
                    tracing::info!(job = %name, only_failed, "restart asked (config topic)");
                    jobs.restart(&name, only_failed);
                }
            }
        }
    }
}

/// How often a worker publishes its task states to `status.storage.topic`.
pub const STATUS_PERIOD: Duration = Duration::from_secs(2);

/// Publishes this worker's statuses every [`STATUS_PERIOD`] until `stop`, then a tombstone.
fn publish_statuses(worker: &Worker, stop: &AtomicBool) {
    if worker.config.status_topic.is_none() {
        return;
    }
    let mut next = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if std::time::Instant::now() >= next {
            if let Err(e) = worker.publish_status(false) {
                tracing::warn!(error = %e, "cannot publish the worker status");
            }
            next += STATUS_PERIOD;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = worker.publish_status(true);
}

/// The Kafka cluster id (empty when the brokers do not say).
fn cluster_id(config: &WorkerConfig) -> String {
    let mut cc = rdkafka::config::ClientConfig::new();
    cc.set("bootstrap.servers", &config.bootstrap_servers);
    for (k, v) in &config.client {
        cc.set(k, v);
    }
    cc.create_with_context::<_, BaseConsumer<_>>(crate::source::oauth::AuthContext)
        .ok()
        .and_then(|c| c.client().fetch_cluster_id(Duration::from_secs(10)))
        .unwrap_or_default()
}

type Server = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>>;

/// Serves the API on every listener until `shutdown`; a listener that cannot bind fails the start.
fn serve(worker: Arc<Worker>, shutdown: Arc<AtomicBool>) -> Result<(), WorkerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("streamx-rest")
        .enable_all()
        .build()
        .map_err(WorkerError::Runtime)?;
    runtime.block_on(async move {
        let router = rest::router(worker.clone());
        let mut servers: Vec<Server> = Vec::new();
        for listener in &worker.config.listeners {
            let addr = listener.addr;
            let tcp = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| WorkerError::Listen { addr, source })?;
            let scheme = if listener.tls.is_some() { "https" } else { "http" };
            tracing::info!(%addr, scheme, advertised = %worker.config.advertised, "REST API listening");
            let shutdown = shutdown.clone();
            let stop = async move {
                while !shutdown.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            servers.push(match &listener.tls {
                None => Box::pin(
                    axum::serve(tcp, router.clone())
                        .with_graceful_shutdown(stop)
                        .into_future(),
                ),
                Some(config) => {
                    let tls = tls::TlsListener::new(tcp, config.clone())
                        .map_err(|source| WorkerError::Listen { addr, source })?;
                    Box::pin(
                        axum::serve(tls, router.clone())
                            .with_graceful_shutdown(stop)
                            .into_future(),
                    )
                }
            });
        }
        drop(worker);
        futures::future::try_join_all(servers)
            .await
            .map(|_| ())
            .map_err(WorkerError::Serve)
    })
}
