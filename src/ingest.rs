//! `streamx ingest`: the loop that owns the consumer and the partition writers.
//!
//! ```text
//!   poll(100 ms) ──► rebalance events (assign: writer from the store's state; revoke: drop)
//!        │
//!        ├─ record ──► PartitionWriter::push ──► maybe commit ──► Kafka offset commit (advisory)
//!        │                                          └─ fenced ──► pause partition, retry later
//!        └─ every 100 ms ──► tick every writer (idle / schedule rotation), retry fenced ones
//! ```
//!
//! Before consuming, the store is probed for conditional writes and swept once (half-published
//! commits finished, orphaned staging deleted, [`CommitLog::sweep`]); the sweep then repeats on
//! the I/O runtime every half `staging.cleanup.age.ms`.
//!
//! With `hive.integration=true` a [`Registrar`] thread registers every commit (and, at start,
//! the partitions already in the store) in the Hive Metastore; the loop never waits for it.
//!
//! One thread does all of it; store I/O runs on a small tokio runtime through `block_on`. There is
//! no channel between stages, so memory is what the writers buffer (bounded together by
//! `memory.budget.bytes`: past it the largest open files are flushed early) and what librdkafka
//! prefetches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::clock::wall_ms;
use crate::commit::{CommitLog, StagingCleanup};
use crate::config::{Config, StartFrom};
use crate::decode::buffer::Header;
use crate::hive::registrar::Registrar;
use crate::metrics::{Metrics, Snapshot};
use crate::sink::memory::MemoryBudget;
use crate::sink::rotation::{RotateReason, RotationPolicy};
use crate::sink::{Committed, PartitionWriter, SinkContext, SinkError};
use crate::source::dlq::{DeadLetterQueue, DlqError};
use crate::source::{self, IngestContext, RebalanceEvent, SourceError};
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
    #[error("cannot start the I/O runtime: {0}")]
    Runtime(std::io::Error),
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
            IngestError::Runtime(_) => Origin::Internal,
            IngestError::MetricsListen { .. } => Origin::User,
        }
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
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            stop_at_end: false,
            shutdown: Arc::new(AtomicBool::new(false)),
            connect_timeout: Duration::from_secs(10),
            metrics: Arc::new(Metrics::default()),
            store: None,
        }
    }
}

const TICK: Duration = Duration::from_millis(100);
/// How long a stopping ingest waits for pending Hive registrations (the next start's catch-up
/// registers what is left).
const HIVE_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// How long `--stop-at-end` waits for a partition's watermarks before trying again later.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(5);

struct Slot {
    writer: PartitionWriter,
    /// A `PartitionEOF` with this slot's partition number arrived since its last record.
    /// librdkafka's end event names no topic, so this only says "worth checking";
    /// [`partition_at_end`] decides for this (topic, partition).
    eof_hint: bool,
}

/// Runs one ingest process until it is stopped, fails, or (with `stop_at_end`) is caught up.
pub fn run(config: Config, options: IngestOptions) -> Result<Snapshot, IngestError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("streamx-io")
        .enable_all()
        .build()
        .map_err(IngestError::Runtime)?;
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
    let writer_id = uuid::Uuid::new_v4().simple().to_string();
    let registrar = match &config.hive {
        Some(hive) => Some(
            Registrar::start(
                &config,
                hive.clone(),
                store.clone(),
                runtime.handle().clone(),
            )
            .map_err(IngestError::Runtime)?,
        ),
        None => None,
    };
    let commit_log =
        CommitLog::new(store, &config.topics_dir, &writer_id).keep_commits(config.keep_commits);
    // Half-published commits are finished before anything is consumed; then the sweep repeats
    // in the background until the runtime ends with `run`.
    let cleanup = StagingCleanup {
        min_age: config.staging_cleanup_age,
    };
    runtime.block_on(sweep_once(&commit_log, cleanup));
    runtime.spawn(sweep_now_and_then(commit_log.clone(), cleanup));
    let dlq = match &config.dlq_topic {
        Some(t) => Some(Arc::new(DeadLetterQueue::new(&config, t)?)),
        None => None,
    };
    let mut ctx = SinkContext {
        config: config.clone(),
        commit_log: commit_log.clone(),
        runtime: runtime.handle().clone(),
        metrics: options.metrics.clone(),
        dlq,
        inferred_schemas: Mutex::new(HashMap::new()),
        policy: RotationPolicy {
            config: config.rotation.clone(),
        },
        compiler: crate::expr::SqlCompiler::new(),
        memory: MemoryBudget::new(config.memory_budget_bytes),
        listener: None,
        registry: crate::decode::registry_for(&config)?,
    };
    ctx.listener = registrar
        .clone()
        .map(|r| r as Arc<dyn crate::sink::CommitListener>);
    let source_ctx = IngestContext::new(commit_log, runtime.handle().clone(), config.start_from);
    let consumer = source::connect(&config, source_ctx, options.connect_timeout)?;
    tracing::info!(writer = %writer_id, group = %config.group_id, store = %config.store_url, "ingest started");
    let result = ingest_loop(&consumer, &ctx, &options);
    // Leave the group now so the partitions move on without waiting for the session timeout.
    consumer.unsubscribe();
    drop(consumer);
    if let Some(r) = &registrar {
        r.shutdown(HIVE_SHUTDOWN_DEADLINE);
    }
    result.map(|()| options.metrics.snapshot())
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

fn ingest_loop(
    consumer: &BaseConsumer<IngestContext>,
    ctx: &SinkContext,
    options: &IngestOptions,
) -> Result<(), IngestError> {
    let mut slots: Slots = HashMap::new();
    let mut gauge = AssignedGauge {
        metrics: &ctx.metrics,
        owned: 0,
    };
    let mut last_tick = Instant::now();
    let mut assigned_once = false;
    loop {
        if options.shutdown.load(Ordering::Relaxed) {
            rotate_all(consumer, ctx, &mut slots, RotateReason::Shutdown)?;
            return Ok(());
        }
        let polled = consumer.poll(TICK);
        assigned_once |= apply_rebalance_events(consumer, ctx, &mut slots, &mut gauge)?;
        match polled {
            None => {}
            Some(Ok(msg)) => {
                let Some(slot) = slots
                    .get_mut(msg.topic())
                    .and_then(|m| m.get_mut(&msg.partition()))
                else {
                    continue;
                };
                let payload = msg.payload();
                Metrics::add(&ctx.metrics.records_consumed, 1);
                Metrics::add(
                    &ctx.metrics.bytes_consumed,
                    payload.map_or(0, |p| p.len() as u64),
                );
                slot.eof_hint = false;
                let committed = slot.writer.push(
                    ctx,
                    msg.offset(),
                    msg.timestamp().to_millis().unwrap_or(-1),
                    msg.key(),
                    payload,
                    || headers_of(&msg),
                )?;
                after_commit(consumer, &slot.writer, committed);
                if ctx.memory.over() {
                    spill_largest(ctx, &mut slots)?;
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                // The event carries no topic: every topic's partition of that number is checked.
                for m in slots.values_mut() {
                    if let Some(slot) = m.get_mut(&partition) {
                        slot.eof_hint = true;
                    }
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
        }
        let now = Instant::now();
        if now.duration_since(last_tick) >= TICK {
            last_tick = now;
            tick_all(consumer, ctx, &mut slots, now)?;
            if options.stop_at_end
                && assigned_once
                && caught_up(consumer, ctx.config.start_from, &mut slots)
            {
                rotate_all(consumer, ctx, &mut slots, RotateReason::EndOfInput)?;
                return Ok(());
            }
        }
    }
}

type Slots = HashMap<String, HashMap<i32, Slot>>;

/// This run's share of `partitions_assigned`, which every task of a worker job adds to (the
/// metrics are the job's): changed by differences, and given back when the run ends.
struct AssignedGauge<'a> {
    metrics: &'a Metrics,
    owned: u64,
}

impl AssignedGauge<'_> {
    fn set(&mut self, owned: u64) {
        let gauge = &self.metrics.partitions_assigned;
        if owned >= self.owned {
            gauge.fetch_add(owned - self.owned, Ordering::Relaxed);
        } else {
            gauge.fetch_sub(self.owned - owned, Ordering::Relaxed);
        }
        self.owned = owned;
    }
}

impl Drop for AssignedGauge<'_> {
    fn drop(&mut self) {
        self.set(0);
    }
}

/// Creates a writer (recovered from the store) for every assigned partition and drops the
/// writers of revoked ones. True when something was assigned.
fn apply_rebalance_events(
    consumer: &BaseConsumer<IngestContext>,
    ctx: &SinkContext,
    slots: &mut Slots,
    gauge: &mut AssignedGauge,
) -> Result<bool, IngestError> {
    let mut assigned = false;
    for event in consumer.context().take_events() {
        match event {
            RebalanceEvent::Assigned(list) => {
                assigned |= !list.is_empty();
                for (topic, partition, recovered) in list {
                    let writer = PartitionWriter::new(ctx, &topic, partition, &recovered)?;
                    let slot = Slot {
                        writer,
                        eof_hint: false,
                    };
                    slots.entry(topic).or_default().insert(partition, slot);
                }
            }
            RebalanceEvent::Revoked(list) => {
                for (topic, partition) in list {
                    if let Some(m) = slots.get_mut(&topic) {
                        m.remove(&partition);
                    }
                }
            }
            RebalanceEvent::Failed(e) => return Err(e.into()),
        }
        gauge.set(slots.values().map(HashMap::len).sum::<usize>() as u64);
    }
    Ok(assigned)
}

/// Time-driven rotation of every writer, and recovery of fenced ones after their backoff.
fn tick_all(
    consumer: &BaseConsumer<IngestContext>,
    ctx: &SinkContext,
    slots: &mut Slots,
    now: Instant,
) -> Result<(), IngestError> {
    let wall = wall_ms();
    for slot in slots.values_mut().flat_map(|m| m.values_mut()) {
        let committed = slot.writer.tick(ctx, now, wall)?;
        after_commit(consumer, &slot.writer, committed);
        if let Some(since) = slot.writer.fenced_since() {
            if now.duration_since(since) >= ctx.config.fenced_backoff {
                resume_fenced(consumer, ctx, &mut slot.writer)?;
            }
        }
    }
    Ok(())
}

/// True when every assigned partition has been read to its end. Runs the per-partition checks
/// (a watermark request each) only once every partition has had an end event.
fn caught_up(
    consumer: &BaseConsumer<IngestContext>,
    start_from: StartFrom,
    slots: &mut Slots,
) -> bool {
    let all: Vec<&mut Slot> = slots.values_mut().flat_map(|m| m.values_mut()).collect();
    if all.is_empty() || all.iter().any(|s| !s.eof_hint) {
        return false;
    }
    let positions = consumer.position().ok();
    for slot in all {
        match partition_at_end(consumer, positions.as_ref(), start_from, &slot.writer) {
            Ok(true) => {}
            Ok(false) => {
                // Records are still to come; their end event sets the hint again.
                slot.eof_hint = false;
                return false;
            }
            Err(e) => {
                // Keep the hint (no second end event comes for the same offset): retry next tick.
                tracing::debug!(topic = slot.writer.topic(), partition = slot.writer.partition(), error = %e, "watermarks unavailable; checking the end again later");
                return false;
            }
        }
    }
    true
}

/// Whether this process has consumed `writer`'s (topic, partition) up to its high watermark
/// (the last stable offset under `read_committed`, like the end events).
///
/// The next offset is the consumer's position (librdkafka moves it past transaction markers and
/// aborted records, which the writer never sees) or the writer's expected offset (the store's
/// resume point), whichever is further. With neither known nothing was consumed since the
/// assignment: the partition is at its end when it is empty, or when it started at the end
/// (`consumer.auto.offset.reset=latest` and no commit yet). A fenced writer is done: another
/// process owns the partition.
fn partition_at_end(
    consumer: &BaseConsumer<IngestContext>,
    positions: Option<&TopicPartitionList>,
    start_from: StartFrom,
    writer: &PartitionWriter,
) -> Result<bool, KafkaError> {
    if writer.fenced_since().is_some() {
        return Ok(true);
    }
    let (topic, partition) = (writer.topic(), writer.partition());
    let position = positions
        .and_then(|l| l.find_partition(topic, partition))
        .and_then(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        });
    let next = position.max(writer.expected_offset());
    let (low, high) = consumer.fetch_watermarks(topic, partition, WATERMARK_TIMEOUT)?;
    Ok(match next {
        Some(next) => next >= high,
        None => low >= high || start_from == StartFrom::Latest,
    })
}

fn rotate_all(
    consumer: &BaseConsumer<IngestContext>,
    ctx: &SinkContext,
    slots: &mut Slots,
    reason: RotateReason,
) -> Result<(), IngestError> {
    for slot in slots.values_mut().flat_map(|m| m.values_mut()) {
        if slot.writer.has_open_records() {
            let committed = slot.writer.rotate(ctx, reason)?;
            after_commit(consumer, &slot.writer, committed);
        }
    }
    Ok(())
}

/// Flushes the largest open files of every writer until the budget's target is reached.
fn spill_largest(ctx: &SinkContext, slots: &mut Slots) -> Result<(), IngestError> {
    let mut files: Vec<(u64, String, i32, String)> = slots
        .iter()
        .flat_map(|(topic, m)| {
            m.iter().flat_map(move |(p, slot)| {
                slot.writer
                    .open_file_sizes()
                    .into_iter()
                    .map(move |(dir, size)| (size, topic.clone(), *p, dir))
            })
        })
        .collect();
    files.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
    let before = ctx.memory.used();
    let mut flushed = 0;
    for (_, topic, p, dir) in files {
        if ctx.memory.used() <= ctx.memory.target() {
            break;
        }
        if let Some(slot) = slots.get_mut(&topic).and_then(|m| m.get_mut(&p)) {
            slot.writer.spill(ctx, &dir)?;
            flushed += 1;
        }
    }
    tracing::debug!(
        flushed,
        before,
        after = ctx.memory.used(),
        limit = ctx.memory.limit(),
        "memory budget reached; flushed the largest open files"
    );
    Ok(())
}

/// Commits the Kafka offset after a store commit (advisory, for lag) or pauses a fenced partition.
fn after_commit(
    consumer: &BaseConsumer<IngestContext>,
    writer: &PartitionWriter,
    committed: Committed,
) {
    let mut tpl = TopicPartitionList::new();
    match committed {
        Committed::Nothing => {}
        Committed::Through { end } => {
            let _ = tpl.add_partition_offset(
                writer.topic(),
                writer.partition(),
                Offset::Offset(end + 1),
            );
            if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
                tracing::debug!(error = %e, "Kafka offset commit failed (advisory only)");
            }
        }
        Committed::Fenced => {
            tpl.add_partition(writer.topic(), writer.partition());
            if let Err(e) = consumer.pause(&tpl) {
                tracing::warn!(error = %e, topic = writer.topic(), partition = writer.partition(), "pause failed");
            }
        }
    }
}

/// Recovers a fenced partition from the store and resumes consuming it there.
fn resume_fenced(
    consumer: &BaseConsumer<IngestContext>,
    ctx: &SinkContext,
    writer: &mut PartitionWriter,
) -> Result<(), IngestError> {
    let (topic, partition) = (writer.topic().to_string(), writer.partition());
    let recovered = consumer.context().recover(&topic, partition)?;
    writer.reset(ctx, &recovered)?;
    let offset = consumer.context().start_offset(&recovered);
    consumer
        .seek(&topic, partition, offset, Duration::from_secs(10))
        .map_err(SourceError::Consumer)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&topic, partition);
    consumer.resume(&tpl).map_err(SourceError::Consumer)?;
    tracing::info!(%topic, partition, ?offset, "resumed a fenced partition from the store");
    Ok(())
}

fn headers_of<M: Message>(msg: &M) -> Vec<Header> {
    msg.headers()
        .map(|hs| {
            hs.iter()
                .map(|h| Header {
                    key: h.key.to_string(),
                    value: h.value.map(<[u8]>::to_vec),
                })
                .collect()
        })
        .unwrap_or_default()
}
