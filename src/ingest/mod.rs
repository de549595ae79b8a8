//! `streamx ingest`: the consumer, the partition workers and the hand-offs between them.
//!
//! ```text
//!                       ┌──────────────── consumer thread ([`router`]) ────────────────┐
//!   Kafka ──► librdkafka ──► poll ──► rebalance events (assign / revoke partitions)      │
//!                       │      └─► record ──► chunk of its partition (copied once)       │
//!                       └───────────┬──────────────────────────────────▲─────────────────┘
//!                 bounded channel   │ Assign / Records / Reset /        │ Committed (advisory
//!                 per worker (FIFO) │ Revoke / RotateAll                │ Kafka commit), Fenced
//!                                   ▼                                   │ (pause), Resume, Failed
//!          ┌──── worker 0 .. N-1 ([`workers`], one per core) ──────────┴──┐
//!          │ PartitionWriter per owned partition: decode ─► SQL ─► encode │
//!          │ ─► rotate ─► stage + commit ─────────────────────────────────┼──► object store
//!          │ every 100 ms: idle / schedule rotation, fenced backoff       │      (I/O runtime)
//!          └──────────────────────────────────────────────────────────────┘
//! ```
//!
//! The consumer thread only polls, copies each record once into a per-partition chunk and routes
//! chunks to the worker that owns the partition (fixed per partition, so order is kept). Each
//! worker decodes, transforms, partitions, encodes and commits its partitions; store calls run on
//! a small tokio runtime through `block_on`, so a worker waiting for the store holds up only its
//! own partitions. Hand-offs are bounded: chunks of `decode.batch.records` records or
//! [`router::CHUNK_BYTES`], at most [`workers::COMMAND_QUEUE`] queued per worker, after which the
//! consumer thread waits (and librdkafka's prefetch, itself bounded, fills). Queued chunks and
//! open files are bounded together by `memory.budget.bytes` (past it a worker flushes its largest
//! open files early).
//!
//! The memory budget and the I/O runtime are the process's ([`Process`]), not the run's: the
//! caller makes them once (`streamx ingest` for its one run, `streamx worker` at start for every
//! task of every job) and hands them to each run in [`IngestOptions::process`], so every open
//! file of the process draws on one budget (shared/DESIGN.md "Threads").
//!
//! With `--stop-at-end` a second client, which never joins the group, asks the brokers for the
//! partitions' watermarks ([`source::watermark_client`]).
//!
//! Before consuming, the store is probed for conditional writes and swept once (half-published
//! commits finished, orphaned staging deleted, [`CommitLog::sweep`]); the sweep then repeats on
//! the I/O runtime every half `staging.cleanup.age.ms`, until the run ends.
//!
//! With `hive.integration=true` a [`Registrar`] thread registers every commit (and, at start,
//! the partitions already in the store) in the Hive Metastore; nothing waits for it.

pub mod lag;
pub mod router;
pub mod workers;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::commit::{CommitLog, JobIdentity, StagingCleanup};
use crate::config::Config;
use crate::hive::registrar::Registrar;
use crate::metrics::{Metrics, Snapshot};
use crate::sink::memory::{BudgetShare, MemoryBudget};
use crate::sink::rotation::RotationPolicy;
use crate::sink::{SinkContext, SinkError};
use crate::source::dlq::{DeadLetterQueue, DlqError};
use crate::source::{self, IngestContext, SourceError};
use crate::store::{Store, StoreError};
use crate::Origin;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    DeadLetter(#[from] DlqError),
    #[error(transparent)]
    Expr(#[from] crate::expr::ExprError),
    #[error("value converter: {0}")]
    Decode(#[from] crate::decode::DecodeError),
    #[error("cannot start the I/O runtime or a worker thread: {0}")]
    Runtime(std::io::Error),
    #[error("a partition worker stopped without saying why")]
    WorkerGone,
    #[error("cannot serve metrics on {addr} (metrics.listen): {source}")]
    MetricsListen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

impl IngestError {
    pub fn origin(&self) -> Origin {
        match self {
            IngestError::Store(e) => e.origin(),
            IngestError::Source(e) => e.origin(),
            IngestError::Sink(e) => e.origin(),
            IngestError::DeadLetter(_) => Origin::External,
            IngestError::Expr(e) => e.origin(),
            IngestError::Decode(e) => e.origin(),
            IngestError::Runtime(_) | IngestError::WorkerGone => Origin::Internal,
            IngestError::MetricsListen { .. } => Origin::User,
        }
    }
}

/// What every ingest run of a process shares: the one memory budget (`memory.budget.bytes`)
/// and the tokio runtime store calls run on. Cheap to clone (both behind an `Arc`).
#[derive(Clone)]
pub struct Process {
    pub memory: Arc<MemoryBudget>,
    io: Arc<tokio::runtime::Runtime>,
}

impl Process {
    /// A budget of `budget_bytes` and an I/O runtime of `io_threads` threads.
    pub fn new(budget_bytes: u64, io_threads: usize) -> Result<Process, IngestError> {
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(io_threads.max(1))
            .thread_name("streamx-io")
            .enable_all()
            .build()
            .map_err(IngestError::Runtime)?;
        Ok(Process {
            memory: MemoryBudget::new(budget_bytes),
            io: Arc::new(io),
        })
    }

    /// The I/O runtime.
    pub fn io(&self) -> &tokio::runtime::Handle {
        self.io.handle()
    }
}

/// How an ingest run ends and what it reports to.
#[derive(Clone)]
pub struct IngestOptions {
    /// Commit and return once every assigned partition has been read to its end.
    pub stop_at_end: bool,
    /// Set to stop: open files are committed, then the run returns.
    pub shutdown: Arc<AtomicBool>,
    /// How long the brokers may take to answer the first metadata request.
    pub connect_timeout: Duration,
    pub metrics: Arc<Metrics>,
    /// The store to write to instead of the one `store.url` names (embedding; tests that wrap a
    /// real store in a fault injector).
    pub store: Option<Store>,
    /// The process's memory budget and I/O runtime; `None`: the run makes its own from the
    /// config's `memory.budget.bytes` (one run in a process, as `streamx ingest`).
    pub process: Option<Process>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            stop_at_end: false,
            shutdown: Arc::new(AtomicBool::new(false)),
            connect_timeout: Duration::from_secs(10),
            metrics: Arc::new(Metrics::default()),
            store: None,
            process: None,
        }
    }
}

/// How long a stopping ingest waits for pending Hive registrations (the next start's catch-up
/// registers what is left).
const HIVE_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// Runs one ingest process until it is stopped, fails, or (with `stop_at_end`) is caught up.
pub fn run(config: Config, options: IngestOptions) -> Result<Snapshot, IngestError> {
    let process = match &options.process {
        Some(p) => p.clone(),
        None => Process::new(config.memory_budget_bytes, 1)?,
    };
    let runtime = process.io();
    // Already done by crate::job::prepare for the command line and the worker; kept for
    // configs built otherwise (embedding, tests).
    crate::sink::pipeline::check_config(&config)?;
    let _metrics_server = match config.metrics_listen {
        Some(addr) => Some(
            crate::metrics::http::serve(addr, &config.name, options.metrics.clone())
                .map_err(|source| IngestError::MetricsListen { addr, source })?,
        ),
        None => None,
    };
    let config = Arc::new(config);
    let store = match &options.store {
        Some(store) => store.clone(),
        None => Store::with_url(&config.store_url, &config.store_options)?,
    };
    runtime.block_on(store.check_reachable(options.connect_timeout))?;
    runtime.block_on(store.probe_conditional_create(&config.topics_dir))?;
    let job = JobIdentity {
        name: config.name.clone(),
        takeover: config.takeover_job.clone(),
    };
    let writer_id = job.new_writer_id();
    let registrar = match &config.hive {
        Some(hive) => Some(
            Registrar::start(&config, hive.clone(), store.clone(), runtime.clone())
                .map_err(IngestError::Runtime)?,
        ),
        None => None,
    };
    let commit_log = CommitLog::new(store, &config.topics_dir, &writer_id)
        .keep_commits(config.keep_commits)
        .for_job(job);
    // Half-published commits are finished before anything is consumed; then the sweep repeats
    // in the background until `run` returns (the runtime outlives it).
    let cleanup = StagingCleanup {
        min_age: config.staging_cleanup_age,
    };
    runtime.block_on(sweep_once(&commit_log, cleanup));
    let _sweeping = AbortOnDrop(runtime.spawn(sweep_now_and_then(commit_log.clone(), cleanup)));
    if let Some(r) = &registrar {
        let r: Arc<dyn crate::metrics::Level> = r.clone();
        options.metrics.hive_pending.watch(Arc::downgrade(&r));
    }
    let listener = registrar
        .clone()
        .map(|r| r as Arc<dyn crate::sink::CommitListener>);
    let ctx = sink_context(&config, &options, &process, &commit_log, listener)?;
    let source_ctx = IngestContext::new(commit_log, runtime.clone(), config.start_from);
    let consumer = source::connect(&config, source_ctx, options.connect_timeout)?;
    let end_check = match options.stop_at_end {
        true => Some(source::watermark_client(&config)?),
        false => None,
    };
    tracing::info!(writer = %writer_id, group = %config.group_id, store = %crate::config::secrets::mask_urls(&config.store_url), "ingest started");
    let result = run_pipeline(&consumer, end_check.as_ref(), &ctx, &options);
    // Leave the group now so the partitions move on without waiting for the session timeout.
    consumer.unsubscribe();
    // Each librdkafka client takes about 100 ms to stop its threads: both at once.
    let closing = end_check.map(|client| std::thread::spawn(move || drop(client)));
    drop(consumer);
    if let Some(closing) = closing {
        let _ = closing.join();
    }
    if let Some(r) = &registrar {
        r.shutdown(HIVE_SHUTDOWN_DEADLINE);
    }
    result.map(|()| options.metrics.snapshot())
}

/// What every partition writer of the run shares (the memory budget through this run's share
/// of the process's).
fn sink_context(
    config: &Arc<Config>,
    options: &IngestOptions,
    process: &Process,
    commit_log: &CommitLog,
    listener: Option<Arc<dyn crate::sink::CommitListener>>,
) -> Result<SinkContext, IngestError> {
    let dlq = match &config.dlq_topic {
        Some(t) => Some(Arc::new(DeadLetterQueue::new(config, t)?)),
        None => None,
    };
    let memory = BudgetShare::new(&process.memory);
    let level: Arc<dyn crate::metrics::Level> = memory.clone();
    options.metrics.memory_used.watch(Arc::downgrade(&level));
    Ok(SinkContext {
        config: config.clone(),
        commit_log: commit_log.clone(),
        runtime: process.io().clone(),
        metrics: options.metrics.clone(),
        dlq,
        inferred_schemas: Mutex::new(HashMap::new()),
        policy: RotationPolicy {
            config: config.rotation.clone(),
        },
        compiler: crate::expr::SqlCompiler::new(),
        memory,
        listener,
        registry: crate::decode::registry_for(config)?,
    })
}

/// Ends a task spawned on the process's runtime when the run that spawned it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One store-wide sweep ([`CommitLog::sweep`]); a failure is logged, the next round retries.
async fn sweep_once(log: &CommitLog, cleanup: StagingCleanup) {
    match log.sweep(cleanup).await {
        Ok(report) => tracing::debug!(?report, "store sweep done"),
        Err(e) => tracing::warn!(error = %e, "store sweep failed; retrying later"),
    }
}

/// The sweep again every half cleanup age (between 1 s and 1 h).
async fn sweep_now_and_then(log: CommitLog, cleanup: StagingCleanup) {
    let every = (cleanup.min_age / 2).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    loop {
        tokio::time::sleep(every).await;
        sweep_once(&log, cleanup).await;
    }
}

/// The router on this thread and the partition workers on their own, until the router returns;
/// then the workers are told to stop (their channels close) and joined.
fn run_pipeline(
    consumer: &BaseConsumer<IngestContext>,
    end_check: Option<&BaseConsumer<crate::source::oauth::AuthContext>>,
    ctx: &SinkContext,
    options: &IngestOptions,
) -> Result<(), IngestError> {
    let n = worker_count();
    let (event_tx, event_rx) = mpsc::channel();
    let (spent_tx, spent_rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(n);
        for k in 0..n {
            let (tx, rx) = mpsc::sync_channel(workers::COMMAND_QUEUE);
            senders.push(tx);
            let (events, spent) = (event_tx.clone(), spent_tx.clone());
            std::thread::Builder::new()
                .name(format!("streamx-worker-{k}"))
                .spawn_scoped(scope, move || workers::run(ctx, rx, events, spent))
                .map_err(IngestError::Runtime)?;
        }
        drop((event_tx, spent_tx));
        let mut router = router::Router::new(consumer, ctx, senders, event_rx, spent_rx, end_check);
        router.run(options)
    })
}

/// Partition workers: one per core (at most 8).
pub fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(8))
}
