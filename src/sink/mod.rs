//! The sink: one [`PartitionWriter`] per assigned Kafka partition buffers records, decodes them in
//! batches, writes them into one open file per output partition and commits through the
//! [`CommitLog`] when the [`rotation`] policy says so.
//!
//! ```text
//!  push(record) ──► RecordBuffer ──(decode.batch.records)──► ValueDecoder ──► RecordBatch
//!                                                                │ rejected ──► errors.tolerance / DLQ
//!                                          + metadata columns ──► Pipeline (transform.sql,
//!                                                                │  partition rule, record time)
//!                                                                │ rejected ──► errors.tolerance / DLQ
//!                                           open files: BTreeMap<dir, OpenFile(FileWriter)>
//!                                                                │ rotate (RotationPolicy; a record-time
//!                                                                │ cut can fall inside a batch)
//!                                                   CommitLog::commit(seq, start..=end, files)
//! ```
//!
//! Under memory pressure ([`memory`]) the largest open files are staged early
//! ([`PartitionWriter::spill`]) and join the next commit of their partition.
//!
//! Writer states ([`WriterState`]): `Active` while it owns the partition; `Fenced` after it lost a
//! commit race (another process committed the same sequence number): it drops what it buffered
//! and accepts nothing until the ingest loop recovers it from the store.

mod chunk;
mod encode;
pub mod memory;
pub mod pipeline;
pub mod rotation;
#[cfg(test)]
mod staged_tests;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::SchemaRef;

use crate::clock::wall_ms;
use crate::commit::{
    final_file_name, CommitError, CommitLog, CommitOutcome, CommittedFile, PendingFile, Recovered,
};
use crate::config::formats::NullValues;
use crate::config::Config;
use crate::decode::buffer::Header;
use crate::decode::{self, DecodeError, RecordBuffer, ValueDecoder};
use crate::expr::{ExprError, SqlCompiler};
use crate::format::parquet::PlainColumns;
use crate::format::{FileWriter, FormatError};
use crate::metrics::Metrics;
use crate::source::dlq::{DeadLetterQueue, DlqError};
use crate::Origin;
use memory::{Accounted, BudgetShare};
use pipeline::Pipeline;
use rotation::{RotateReason, RotationPolicy, RotationState};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("bad record at topic '{topic}' partition {partition} offset {offset}: {cause} (errors.tolerance=none stops here; set errors.tolerance=all to skip such records)")]
    BadRecord {
        topic: String,
        partition: i32,
        offset: i64,
        cause: String,
    },
    #[error("topic '{topic}' partition {partition}: {source}")]
    Decode {
        topic: String,
        partition: i32,
        source: Box<DecodeError>,
    },
    #[error("topic '{topic}' partition {partition}: {source}")]
    Expr {
        topic: String,
        partition: i32,
        source: Box<ExprError>,
    },
    #[error("topic '{topic}' partition {partition}: {source}")]
    Format {
        topic: String,
        partition: i32,
        source: Box<FormatError>,
    },
    #[error("topic '{topic}' partition {partition}: commit failed: {source}")]
    Commit {
        topic: String,
        partition: i32,
        source: Box<CommitError>,
    },
    #[error("topic '{topic}' partition {partition} offset {offset}: {source}")]
    DeadLetter {
        topic: String,
        partition: i32,
        offset: i64,
        source: Box<DlqError>,
    },
    #[error("topic '{topic}' partition {partition}: metadata columns: {source}")]
    Metadata {
        topic: String,
        partition: i32,
        source: Box<arrow::error::ArrowError>,
    },
    #[error("topic '{topic}' partition {partition}: the broker delivered offset {offset}, but the store's commits already cover offsets up to {committed_through} (commit {seq}): the partition's log went back (topic deleted and recreated, or log truncated), so those offsets now hold other records than the ones written. Stopping rather than dropping them. To write the new log, give this job a new topics.dir (or store.url): what is under the old one stays as it is. Do not move the commit records aside: the new log starts again at low offsets, so its files would take the old files' names and replace them")]
    LogRewound {
        topic: String,
        partition: i32,
        offset: i64,
        committed_through: i64,
        seq: u64,
    },
}

impl SinkError {
    pub fn origin(&self) -> Origin {
        match self {
            SinkError::BadRecord { .. } => Origin::User,
            SinkError::Decode { .. } | SinkError::Metadata { .. } => Origin::Internal,
            SinkError::Expr { source, .. } => source.origin(),
            SinkError::Format { source, .. } => source.origin(),
            SinkError::Commit { source, .. } => source.origin(),
            SinkError::DeadLetter { .. } | SinkError::LogRewound { .. } => Origin::External,
        }
    }
}

/// What a commit made visible, for whoever registers it elsewhere (the Hive Metastore).
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub topic: String,
    pub partition: i32,
    /// Directories (relative to `<topics.dir>/<topic>/`, e.g. `dt=2024-01-01/hr=10`) that
    /// received files in this commit, sorted and without duplicates.
    pub dirs: Vec<String>,
    /// Partition column names of the rule, in directory order (`None` for unnamed levels).
    pub partition_columns: Vec<Option<String>>,
    /// Schema of the rows written (the pipeline's output), when known.
    pub schema: Option<SchemaRef>,
}

/// Told about every successful commit, after it is durable. Contract: returns quickly (queue the
/// work); never fails the commit, which already happened.
pub trait CommitListener: Send + Sync {
    fn committed(&self, info: CommitInfo);
}

/// What every writer of one process shares.
pub struct SinkContext {
    pub config: Arc<Config>,
    pub commit_log: CommitLog,
    pub runtime: tokio::runtime::Handle,
    pub metrics: Arc<Metrics>,
    pub dlq: Option<Arc<DeadLetterQueue>>,
    /// JSON schemas inferred per topic, merged over the partitions of the process.
    pub inferred_schemas: decode::shared_schema::InferredSchemas,
    pub policy: RotationPolicy,
    pub compiler: SqlCompiler,
    /// This run's share of the process's one memory budget.
    pub memory: Arc<BudgetShare>,
    /// Receives every commit (Hive registration); `None` when nothing listens.
    pub listener: Option<Arc<dyn CommitListener>>,
    /// The Schema Registry client every Avro decoder of the process shares.
    pub registry: Option<crate::decode::registry::RegistryClient>,
}

impl SinkContext {
    /// The inferred JSON schema of `topic`, shared by its partitions (and, through the store, by
    /// every process and restart); loaded from the store on first use.
    pub fn topic_schema(
        &self,
        topic: &str,
    ) -> Result<Arc<decode::shared_schema::TopicSchema>, decode::DecodeError> {
        let options = &self.config.formats.json;
        decode::shared_schema::topic_schema(&self.inferred_schemas, topic, || {
            let store = decode::schema_store::SchemaStore::new(
                self.commit_log.store().clone(),
                self.commit_log.layout().clone(),
                self.runtime.clone(),
            );
            decode::shared_schema::TopicSchema::stored(topic, options, store)
        })
    }

    /// Keys and headers are copied out of librdkafka only when something reads them.
    pub fn keep_keys(&self) -> bool {
        self.config.include_kafka_metadata
            || self.dlq.is_some()
            || self.config.sql_reads_keys()
            || self.config.formats.store_keys
    }
    pub fn keep_headers(&self) -> bool {
        self.keep_keys() || self.config.formats.store_headers
    }
}

/// A file being written for one output directory.
struct OpenFile {
    writer: Box<dyn FileWriter>,
    first_offset: i64,
    last_offset: i64,
    rows: u64,
    memory: Accounted,
}

/// The state of the open commit of an active writer.
struct Active {
    /// Sequence number the next commit takes.
    seq: u64,
    /// First offset of the open commit; `None` until known (no commit yet and no record yet).
    range_start: Option<i64>,
    /// Last offset consumed into the open commit.
    last_offset: Option<i64>,
    buffer: RecordBuffer,
    decoder: Box<dyn ValueDecoder>,
    /// The SQL stages compiled for the current value schema.
    pipeline: Option<Arc<Pipeline>>,
    files: BTreeMap<String, OpenFile>,
    /// Files of the open commit already staged under memory pressure.
    staged: Vec<CommittedFile>,
    /// When the oldest of `staged` was staged: a writer commits before half of
    /// `staging.cleanup.age.ms` and never names a file older than three quarters of it.
    first_staged: Option<Instant>,
    /// Whether a redelivered offset was already reported (once per writer).
    redelivery_warned: bool,
    rotation: RotationState,
    /// Parquet columns whose dictionary fell back in this writer's files: later files write
    /// them plain.
    plain_columns: Arc<PlainColumns>,
    /// The topic's inferred schema while it has no version: record values are offered to it
    /// for the first inference (see [`decode::shared_schema`]).
    sampling: Option<Arc<decode::shared_schema::TopicSchema>>,
}

/// Versioned, explicit state of a writer.
enum WriterState {
    Active(Box<Active>),
    /// Lost commit `seq` to another writer; holds nothing.
    Fenced {
        since: Instant,
    },
}

/// Result of a commit attempt, for the ingest loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Nothing was open.
    Nothing,
    /// Offsets up to and including `end` are durable in the store.
    Through { end: i64 },
    /// Another writer won; the partition must be paused and recovered later.
    Fenced,
}

impl Committed {
    /// The later of two outcomes of one call (a fence wins).
    fn then(self, next: Committed) -> Committed {
        match (self, next) {
            (Committed::Fenced, _) | (_, Committed::Fenced) => Committed::Fenced,
            (c, Committed::Nothing) => c,
            (_, c) => c,
        }
    }
}

/// Buffers, encodes and commits one Kafka partition.
pub struct PartitionWriter {
    topic: String,
    partition: i32,
    state: WriterState,
}

impl PartitionWriter {
    /// A writer resuming where the store says the partition stands.
    pub fn new(
        ctx: &SinkContext,
        topic: &str,
        partition: i32,
        recovered: &Recovered,
    ) -> Result<Self, SinkError> {
        let mut w = PartitionWriter {
            topic: topic.to_string(),
            partition,
            state: WriterState::Fenced {
                since: Instant::now(),
            },
        };
        w.reset(ctx, recovered)?;
        Ok(w)
    }

    /// Forgets everything buffered and resumes from `recovered`.
    pub fn reset(&mut self, ctx: &SinkContext, recovered: &Recovered) -> Result<(), SinkError> {
        // The partitions of a topic merge what they infer into one schema.
        let decode_err = |source| SinkError::Decode {
            topic: self.topic.clone(),
            partition: self.partition,
            source: Box::new(source),
        };
        let config = &ctx.config;
        let inferred = if config.input_format == crate::config::InputFormat::Json
            && config.value_schema.is_none()
        {
            Some(ctx.topic_schema(&self.topic).map_err(decode_err)?)
        } else {
            None
        };
        let sampling = inferred.clone().filter(|schema| schema.version() == 0);
        self.state = WriterState::Active(Box::new(Active {
            seq: recovered.next_seq,
            range_start: recovered.next_offset,
            last_offset: None,
            buffer: RecordBuffer::new(ctx.keep_keys(), ctx.keep_headers()),
            decoder: decode::decoder_for(&ctx.config, &self.topic, inferred, ctx.registry.as_ref())
                .map_err(|source| SinkError::Decode {
                    topic: self.topic.clone(),
                    partition: self.partition,
                    source: Box::new(source),
                })?,
            pipeline: None,
            files: BTreeMap::new(),
            staged: Vec::new(),
            first_staged: None,
            redelivery_warned: false,
            rotation: RotationState::new(&ctx.policy.config, Instant::now(), wall_ms()),
            plain_columns: Arc::default(),
            sampling,
        }));
        Ok(())
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// `Some(since)` when fenced.
    pub fn fenced_since(&self) -> Option<Instant> {
        match self.state {
            WriterState::Fenced { since } => Some(since),
            WriterState::Active(_) => None,
        }
    }

    /// Offset the next record should have, if known.
    pub fn expected_offset(&self) -> Option<i64> {
        match &self.state {
            WriterState::Active(a) => a.last_offset.map(|o| o + 1).or(a.range_start),
            WriterState::Fenced { .. } => None,
        }
    }

    /// Adds one record. May rotate (and so commit) after it.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        ctx: &SinkContext,
        offset: i64,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl FnOnce() -> Vec<Header>,
    ) -> Result<Committed, SinkError> {
        let WriterState::Active(a) = &mut self.state else {
            return Ok(Committed::Nothing);
        };
        if let Some(expected) = a.last_offset.map(|o| o + 1).or(a.range_start) {
            if offset < expected {
                return behind_expected(&self.topic, self.partition, a, offset, expected);
            }
        }
        if a.range_start.is_none() {
            a.range_start = Some(offset);
        }
        if let (Some(schema), Some(v)) = (&a.sampling, value) {
            if !schema.offer_sample(self.partition, v) {
                a.sampling = None;
            }
        }
        if value.is_some() || ctx.config.formats.null_values != NullValues::Ignore {
            a.buffer.push(offset, timestamp, key, value, headers);
        }
        a.last_offset = Some(offset);
        a.rotation.records += 1;
        self.after_push(ctx)
    }

    /// After records joined the buffer: encodes a full batch (rotating on size after it), then
    /// rotates at `flush.size`.
    fn after_push(&mut self, ctx: &SinkContext) -> Result<Committed, SinkError> {
        let WriterState::Active(a) = &self.state else {
            return Ok(Committed::Nothing);
        };
        let mut result = Committed::Nothing;
        if a.buffer.len() >= ctx.config.decode_batch_records {
            result = self.encode_buffer(ctx)?;
            if result == Committed::Fenced {
                return Ok(result);
            }
            if let WriterState::Active(a) = &self.state {
                let size: usize = a.files.values().map(|f| f.writer.estimated_size()).sum();
                let staged: u64 = a.staged.iter().map(|f| f.bytes).sum();
                if ctx.policy.after_batch(size as u64 + staged).is_some() {
                    return Ok(result.then(self.rotate(ctx, RotateReason::Size)?));
                }
            }
        }
        if let WriterState::Active(a) = &self.state {
            if ctx.policy.after_record(&a.rotation).is_some() {
                return Ok(result.then(self.rotate(ctx, RotateReason::FlushSize)?));
            }
        }
        Ok(result)
    }

    /// Time-driven rotation (idle partitions, wall-clock schedule).
    pub fn tick(
        &mut self,
        ctx: &SinkContext,
        now: Instant,
        now_wall_ms: i64,
    ) -> Result<Committed, SinkError> {
        let WriterState::Active(a) = &mut self.state else {
            return Ok(Committed::Nothing);
        };
        let staged_limit = ctx.config.staging_cleanup_age / 2;
        if a.first_staged
            .is_some_and(|t| now.duration_since(t) >= staged_limit)
        {
            return self.rotate(ctx, RotateReason::StagedAge);
        }
        match ctx.policy.on_tick(&mut a.rotation, now, now_wall_ms) {
            Some(reason) => self.rotate(ctx, reason),
            None => Ok(Committed::Nothing),
        }
    }

    /// Whether records are waiting for a commit.
    pub fn has_open_records(&self) -> bool {
        matches!(&self.state, WriterState::Active(a) if a.rotation.records > 0)
    }

    /// Encodes what is buffered, then commits everything consumed since the last commit.
    pub fn rotate(
        &mut self,
        ctx: &SinkContext,
        reason: RotateReason,
    ) -> Result<Committed, SinkError> {
        let encoded = self.encode_buffer(ctx)?;
        if encoded == Committed::Fenced {
            return Ok(encoded);
        }
        let end = match &self.state {
            WriterState::Active(a) => a.last_offset,
            WriterState::Fenced { .. } => None,
        };
        match end {
            Some(end) => Ok(encoded.then(self.commit_through(ctx, end, reason)?)),
            None => Ok(encoded),
        }
    }

    /// Open files with their in-memory sizes, for the memory budget.
    pub fn open_file_sizes(&self) -> Vec<(String, u64)> {
        match &self.state {
            WriterState::Active(a) => a
                .files
                .iter()
                .map(|(dir, f)| (dir.clone(), f.memory.bytes()))
                .collect(),
            WriterState::Fenced { .. } => Vec::new(),
        }
    }

    /// Closes the open file of `dir` and stages it now; it joins the next commit.
    pub fn spill(&mut self, ctx: &SinkContext, dir: &str) -> Result<(), SinkError> {
        let WriterState::Active(a) = &mut self.state else {
            return Ok(());
        };
        let Some(file) = a.files.remove(dir) else {
            return Ok(());
        };
        let pending = finish_file(ctx, &self.topic, self.partition, dir, file)?;
        // Before the upload: the store's clock starts the file's age no earlier than this.
        a.first_staged.get_or_insert_with(Instant::now);
        let staged = ctx
            .runtime
            .block_on(
                ctx.commit_log
                    .stage(&self.topic, self.partition, a.seq, pending),
            )
            .map_err(|source| SinkError::Commit {
                topic: self.topic.clone(),
                partition: self.partition,
                source: Box::new(source),
            })?;
        Metrics::add(&ctx.metrics.files_spilled, 1);
        a.staged.push(staged);
        Ok(())
    }

    /// Closes the open files and commits offsets `range_start..=end` with them. Records after
    /// `end` (later in the buffer just encoded) stay for the next commit.
    fn commit_through(
        &mut self,
        ctx: &SinkContext,
        end: i64,
        reason: RotateReason,
    ) -> Result<Committed, SinkError> {
        let WriterState::Active(a) = &mut self.state else {
            return Ok(Committed::Nothing);
        };
        let Some(start) = a.range_start.filter(|&s| s <= end) else {
            return Ok(Committed::Nothing);
        };
        let began = Instant::now();
        let (topic, partition) = (self.topic.clone(), self.partition);
        let commit_err = |source| SinkError::Commit {
            topic: topic.clone(),
            partition,
            source: Box::new(source),
        };
        stage_open_files(ctx, &topic, partition, a)?;
        let rows_total: u64 = a.staged.iter().map(|f| f.rows).sum();
        if let Some(dlq) = &ctx.dlq {
            // Dead-lettered records must be durable before the store says they were consumed.
            dlq.flush().map_err(|source| SinkError::DeadLetter {
                topic: topic.clone(),
                partition,
                offset: end,
                source: Box::new(source),
            })?;
        }
        let staged = std::mem::take(&mut a.staged);
        if let Some(t) = a.first_staged.take() {
            if t.elapsed() >= ctx.config.staging_cleanup_age * 3 / 4 {
                return Ok(self.give_up_stale_commit(ctx, staged));
            }
        }
        let outcome = ctx
            .runtime
            .block_on(ctx.commit_log.commit(
                &topic,
                partition,
                a.seq,
                start,
                end,
                Vec::new(),
                staged,
            ))
            .map_err(commit_err)?;
        match outcome {
            CommitOutcome::Committed(record) => {
                tracing::debug!(%topic, partition, seq = record.seq, start, end, ?reason, files = record.files.len(), "committed");
                count_commit(&ctx.metrics, &record, rows_total, began.elapsed());
                if let Some(listener) = &ctx.listener {
                    listener.committed(commit_info(ctx, &topic, partition, &record, a));
                }
                a.seq += 1;
                a.range_start = Some(end + 1);
                if a.last_offset.is_some_and(|l| l <= end) {
                    a.last_offset = None;
                }
                a.rotation = RotationState::new(&ctx.policy.config, Instant::now(), wall_ms());
                Ok(Committed::Through { end })
            }
            CommitOutcome::Fenced { seq } => {
                tracing::warn!(%topic, partition, seq, "another writer committed this sequence first; this process stops writing the partition and discards what it buffered");
                Metrics::add(&ctx.metrics.commits_fenced, 1);
                self.state = WriterState::Fenced {
                    since: Instant::now(),
                };
                Ok(Committed::Fenced)
            }
        }
    }
}

impl PartitionWriter {
    /// Files staged for the open commit are so old that the store-wide sweep may have deleted
    /// them as orphans (this process was stalled, e.g. frozen or swapped out): naming them in a
    /// commit could commit missing files. The commit is given up like a lost race; the partition
    /// is recovered from the store and its records consumed again.
    fn give_up_stale_commit(&mut self, ctx: &SinkContext, staged: Vec<CommittedFile>) -> Committed {
        tracing::warn!(topic = %self.topic, partition = self.partition, files = staged.len(), "files staged for this commit are older than 3/4 of staging.cleanup.age.ms (was the process stalled?); giving the commit up and recovering the partition from the store");
        ctx.runtime.block_on(ctx.commit_log.discard_files(&staged));
        Metrics::add(&ctx.metrics.commits_fenced, 1);
        self.state = WriterState::Fenced {
            since: Instant::now(),
        };
        Committed::Fenced
    }
}

/// Counts one successful commit of `rows` rows that took `took`.
fn count_commit(
    metrics: &Metrics,
    record: &crate::commit::CommitRecord,
    rows: u64,
    took: std::time::Duration,
) {
    Metrics::add(&metrics.commits, 1);
    metrics.observe_commit(took);
    Metrics::add(&metrics.files_committed, record.files.len() as u64);
    Metrics::add(&metrics.records_written, rows);
    let bytes = record.files.iter().map(|f| f.bytes).sum();
    Metrics::add(&metrics.bytes_committed, bytes);
}

/// A record below the offset the writer expects. Inside the open commit it is a redelivery
/// (warned once, skipped: it is buffered already). Below what the store's commits already cover
/// it means the partition's log went back (topic recreated, log truncated): those offsets now
/// hold other records than the ones written, so the writer stops instead of dropping them.
fn behind_expected(
    topic: &str,
    partition: i32,
    a: &mut Active,
    offset: i64,
    expected: i64,
) -> Result<Committed, SinkError> {
    let committed_before = a.range_start.filter(|_| a.seq > 0);
    if let Some(start) = committed_before.filter(|&s| offset < s) {
        return Err(SinkError::LogRewound {
            topic: topic.to_string(),
            partition,
            offset,
            committed_through: start - 1,
            seq: a.seq - 1,
        });
    }
    if !a.redelivery_warned {
        a.redelivery_warned = true;
        tracing::warn!(%topic, partition, offset, expected, "the broker delivered an offset below the next expected one (a redelivery after a seek); it is buffered already and skipped");
    }
    Ok(Committed::Nothing)
}

/// Closes every open file of the commit and stages it. Each file is staged as soon as it is
/// encoded, so only one encoded file is in memory at a time.
fn stage_open_files(
    ctx: &SinkContext,
    topic: &str,
    partition: i32,
    a: &mut Active,
) -> Result<(), SinkError> {
    for (dir, f) in std::mem::take(&mut a.files) {
        let file = finish_file(ctx, topic, partition, &dir, f)?;
        let staged = ctx
            .runtime
            .block_on(ctx.commit_log.stage(topic, partition, a.seq, file))
            .map_err(|source| SinkError::Commit {
                topic: topic.to_string(),
                partition,
                source: Box::new(source),
            })?;
        a.staged.push(staged);
    }
    Ok(())
}

/// The [`CommitInfo`] of a commit record.
fn commit_info(
    ctx: &SinkContext,
    topic: &str,
    partition: i32,
    record: &crate::commit::CommitRecord,
    a: &Active,
) -> CommitInfo {
    let prefix = format!("{}/{topic}/", ctx.config.topics_dir.trim_matches('/'));
    let mut dirs: Vec<String> = record
        .files
        .iter()
        .filter_map(|f| {
            let rel = f.final_path.strip_prefix(&prefix)?;
            Some(rel.rsplit_once('/').map_or("", |(d, _)| d).to_string())
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    CommitInfo {
        topic: topic.to_string(),
        partition,
        dirs,
        partition_columns: a
            .pipeline
            .as_ref()
            .map(|p| p.partition_columns())
            .unwrap_or_default(),
        schema: a.pipeline.as_ref().map(|p| p.output_schema().clone()),
    }
}

/// Finishes an open file into the pending file of its final path.
fn finish_file(
    ctx: &SinkContext,
    topic: &str,
    partition: i32,
    dir: &str,
    f: OpenFile,
) -> Result<PendingFile, SinkError> {
    let data = f.writer.finish().map_err(|source| SinkError::Format {
        topic: topic.to_string(),
        partition,
        source: Box::new(source),
    })?;
    let name = final_file_name(
        topic,
        partition,
        f.first_offset,
        f.last_offset,
        ctx.config.offset_pad_width,
        ctx.config.file_extension(),
    );
    Ok(PendingFile {
        final_path: format!(
            "{}/{topic}/{dir}/{name}",
            ctx.config.topics_dir.trim_matches('/')
        ),
        data,
        rows: f.rows,
        first_offset: f.first_offset,
        last_offset: f.last_offset,
    })
}
