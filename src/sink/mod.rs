//! The sink: one [`PartitionWriter`] per assigned Kafka partition buffers records, decodes them in
//! batches, writes them into one open file per output partition and commits through the
//! [`CommitLog`] when the [`rotation`] policy says so.
//!
//! ```text
//!  push(record) ──► RecordBuffer ──(decode.batch.records)──► ValueDecoder ──► RecordBatch
//!                                                                │ rejected ──► errors.tolerance / DLQ
//!                                                         Partitioner::split
//!                                                                │
//!                                           open files: BTreeMap<dir, OpenFile(FileWriter)>
//!                                                                │ rotate (RotationPolicy)
//!                                                   CommitLog::commit(seq, start..=end, files)
//! ```
//!
//! Writer states ([`WriterState`]): `Active` while it owns the partition; `Fenced` after it lost a
//! commit race (another process committed the same sequence number): it drops what it buffered
//! and accepts nothing until the ingest loop recovers it from the store.

pub mod rotation;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use std::collections::HashMap;

use crate::commit::{
    final_file_name, CommitError, CommitLog, CommitOutcome, PendingFile, Recovered,
};
use crate::config::{Config, ErrorTolerance};
use crate::decode::buffer::Header;
use crate::decode::{self, metadata, DecodeError, RecordBuffer, ValueDecoder};
use crate::format::{self, FileWriter, FormatError};
use crate::metrics::Metrics;
use crate::partition::Partitioner;
use crate::source::dlq::{DeadLetterQueue, DlqError};
use crate::Origin;
use rotation::{RotateReason, RotationPolicy, RotationState};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot decode record at topic '{topic}' partition {partition} offset {offset}: {cause} (errors.tolerance=none stops here; set errors.tolerance=all to skip such records)")]
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
}

impl SinkError {
    pub fn origin(&self) -> Origin {
        match self {
            SinkError::BadRecord { .. } => Origin::User,
            SinkError::Decode { .. } | SinkError::Metadata { .. } => Origin::Internal,
            SinkError::Format { source, .. } => source.origin(),
            SinkError::Commit { source, .. } => source.origin(),
            SinkError::DeadLetter { .. } => Origin::External,
        }
    }
}

/// What every writer of one process shares.
pub struct SinkContext {
    pub config: Arc<Config>,
    pub commit_log: CommitLog,
    pub runtime: tokio::runtime::Handle,
    pub metrics: Arc<Metrics>,
    pub partitioner: Arc<dyn Partitioner>,
    pub dlq: Option<Arc<DeadLetterQueue>>,
    /// JSON schemas inferred per topic, so every partition of a topic writes the same schema.
    pub inferred_schemas: Mutex<HashMap<String, SchemaRef>>,
    pub policy: RotationPolicy,
}

impl SinkContext {
    fn keep_keys(&self) -> bool {
        self.config.include_kafka_metadata || self.dlq.is_some()
    }
    fn keep_headers(&self) -> bool {
        self.keep_keys()
    }
}

/// A file being written for one output directory.
struct OpenFile {
    writer: Box<dyn FileWriter>,
    first_offset: i64,
    last_offset: i64,
    rows: u64,
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
    files: BTreeMap<String, OpenFile>,
    rotation: RotationState,
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

/// Buffers, encodes and commits one Kafka partition.
pub struct PartitionWriter {
    topic: String,
    partition: i32,
    state: WriterState,
}

impl PartitionWriter {
    /// A writer resuming where the store says the partition stands.
    pub fn new(ctx: &SinkContext, topic: &str, partition: i32, recovered: &Recovered) -> Self {
        let mut w = PartitionWriter {
            topic: topic.to_string(),
            partition,
            state: WriterState::Fenced {
                since: Instant::now(),
            },
        };
        w.reset(ctx, recovered);
        w
    }

    /// Forgets everything buffered and resumes from `recovered`.
    pub fn reset(&mut self, ctx: &SinkContext, recovered: &Recovered) {
        // Every partition of a topic decodes with the schema the first one inferred.
        let inferred = ctx
            .inferred_schemas
            .lock()
            .ok()
            .and_then(|m| m.get(&self.topic).cloned());
        self.state = WriterState::Active(Box::new(Active {
            seq: recovered.next_seq,
            range_start: recovered.next_offset,
            last_offset: None,
            buffer: RecordBuffer::new(ctx.keep_keys(), ctx.keep_headers()),
            decoder: decode::decoder_for(&ctx.config, &self.topic, inferred),
            files: BTreeMap::new(),
            rotation: RotationState::new(&ctx.policy.config, Instant::now(), wall_ms()),
        }));
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

    /// Adds one record. May rotate (and so commit) before or after it.
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
                // Redelivered after a seek: already covered by a commit or buffered.
                return Ok(Committed::Nothing);
            }
        }
        let mut result = Committed::Nothing;
        if ctx.policy.before_record(&a.rotation, timestamp).is_some() {
            result = self.rotate(ctx, RotateReason::RecordTime)?;
            if result == Committed::Fenced {
                return Ok(result);
            }
        }
        let WriterState::Active(a) = &mut self.state else {
            return Ok(result);
        };
        if a.range_start.is_none() {
            a.range_start = Some(offset);
        }
        a.buffer.push(offset, timestamp, key, value, headers);
        a.last_offset = Some(offset);
        a.rotation.records += 1;
        if a.rotation.first_record_ts.is_none() && timestamp >= 0 {
            a.rotation.first_record_ts = Some(timestamp);
        }
        if a.buffer.len() >= ctx.config.decode_batch_records {
            self.encode_buffer(ctx)?;
            if let WriterState::Active(a) = &self.state {
                let size: usize = a.files.values().map(|f| f.writer.estimated_size()).sum();
                if ctx.policy.after_batch(size as u64).is_some() {
                    return self.rotate(ctx, RotateReason::Size);
                }
            }
        }
        if let WriterState::Active(a) = &self.state {
            if ctx.policy.after_record(&a.rotation).is_some() {
                return self.rotate(ctx, RotateReason::FlushSize);
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
        match ctx.policy.on_tick(&mut a.rotation, now, now_wall_ms) {
            Some(reason) => self.rotate(ctx, reason),
            None => Ok(Committed::Nothing),
        }
    }

    /// Whether records are waiting for a commit.
    pub fn has_open_records(&self) -> bool {
        matches!(&self.state, WriterState::Active(a) if a.rotation.records > 0)
    }

    /// Decodes the buffered records and writes them into the open files.
    fn encode_buffer(&mut self, ctx: &SinkContext) -> Result<(), SinkError> {
        let WriterState::Active(a) = &mut self.state else {
            return Ok(());
        };
        if a.buffer.is_empty() {
            return Ok(());
        }
        let (topic, partition) = (self.topic.as_str(), self.partition);
        let decoded = a
            .decoder
            .decode(&a.buffer)
            .map_err(|source| SinkError::Decode {
                topic: topic.to_string(),
                partition,
                source: Box::new(source),
            })?;
        if ctx.config.value_schema.is_none() {
            if let (Some(schema), Ok(mut m)) = (a.decoder.schema(), ctx.inferred_schemas.lock()) {
                m.entry(topic.to_string()).or_insert(schema);
            }
        }
        if !decoded.rejected.is_empty() {
            handle_rejects(ctx, topic, partition, &a.buffer, &decoded.rejected)?;
        }
        let rows = decoded.accepted_indexes(a.buffer.len());
        let mut batch = decoded.batch;
        if ctx.config.include_kafka_metadata {
            batch = metadata::append_metadata(&batch, topic, partition, &a.buffer, &rows).map_err(
                |source| SinkError::Metadata {
                    topic: topic.to_string(),
                    partition,
                    source: Box::new(source),
                },
            )?;
        }
        if batch.num_rows() > 0 {
            let offsets: Vec<i64> = rows.iter().map(|&i| a.buffer.offsets[i]).collect();
            write_groups(ctx, topic, partition, &mut a.files, &batch, &offsets)?;
        }
        a.buffer.clear();
        Ok(())
    }

    /// Closes the open files and commits them with everything consumed since the last commit.
    pub fn rotate(
        &mut self,
        ctx: &SinkContext,
        reason: RotateReason,
    ) -> Result<Committed, SinkError> {
        self.encode_buffer(ctx)?;
        let WriterState::Active(a) = &mut self.state else {
            return Ok(Committed::Nothing);
        };
        let (Some(start), Some(end)) = (a.range_start, a.last_offset) else {
            return Ok(Committed::Nothing);
        };
        let (topic, partition) = (self.topic.clone(), self.partition);
        let fmt_err = |source: FormatError| SinkError::Format {
            topic: topic.clone(),
            partition,
            source: Box::new(source),
        };
        let mut pending = Vec::with_capacity(a.files.len());
        let mut rows_total = 0;
        let ext = ctx.config.format.extension();
        for (dir, f) in std::mem::take(&mut a.files) {
            let data = f.writer.finish().map_err(fmt_err)?;
            let name = final_file_name(
                &topic,
                partition,
                f.first_offset,
                f.last_offset,
                ctx.config.offset_pad_width,
                ext,
            );
            rows_total += f.rows;
            pending.push(PendingFile {
                final_path: format!(
                    "{}/{topic}/{dir}/{name}",
                    ctx.config.topics_dir.trim_matches('/')
                ),
                data,
                rows: f.rows,
                first_offset: f.first_offset,
                last_offset: f.last_offset,
            });
        }
        if let Some(dlq) = &ctx.dlq {
            // Dead-lettered records must be durable before the store says they were consumed.
            dlq.flush().map_err(|source| SinkError::DeadLetter {
                topic: topic.clone(),
                partition,
                offset: end,
                source: Box::new(source),
            })?;
        }
        let outcome = ctx
            .runtime
            .block_on(
                ctx.commit_log
                    .commit(&topic, partition, a.seq, start, end, pending),
            )
            .map_err(|source| SinkError::Commit {
                topic: topic.clone(),
                partition,
                source: Box::new(source),
            })?;
        match outcome {
            CommitOutcome::Committed(record) => {
                tracing::debug!(%topic, partition, seq = record.seq, start, end, ?reason, files = record.files.len(), "committed");
                Metrics::add(&ctx.metrics.commits, 1);
                Metrics::add(&ctx.metrics.files_committed, record.files.len() as u64);
                Metrics::add(&ctx.metrics.records_written, rows_total);
                Metrics::add(
                    &ctx.metrics.bytes_committed,
                    record.files.iter().map(|f| f.bytes).sum(),
                );
                a.seq += 1;
                a.range_start = Some(end + 1);
                a.last_offset = None;
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

/// Applies `errors.tolerance` to rejected records.
fn handle_rejects(
    ctx: &SinkContext,
    topic: &str,
    partition: i32,
    buffer: &RecordBuffer,
    rejected: &[(usize, decode::RecordError)],
) -> Result<(), SinkError> {
    if ctx.config.errors_tolerance == ErrorTolerance::None {
        let (i, cause) = &rejected[0];
        return Err(SinkError::BadRecord {
            topic: topic.to_string(),
            partition,
            offset: buffer.offsets[*i],
            cause: cause.0.clone(),
        });
    }
    for (i, cause) in rejected {
        let offset = buffer.offsets[*i];
        tracing::warn!(%topic, partition, offset, cause = %cause, "skipping a record that cannot be decoded (errors.tolerance=all)");
        Metrics::add(&ctx.metrics.records_skipped, 1);
        if let Some(dlq) = &ctx.dlq {
            let headers = buffer.headers.get(*i).map(Vec::as_slice).unwrap_or(&[]);
            dlq.send(
                topic,
                partition,
                offset,
                buffer.key(*i),
                buffer.value(*i),
                headers,
                &cause.0,
            )
            .map_err(|source| SinkError::DeadLetter {
                topic: topic.to_string(),
                partition,
                offset,
                source: Box::new(source),
            })?;
            Metrics::add(&ctx.metrics.records_dead_lettered, 1);
        }
    }
    Ok(())
}

/// Splits a batch by output directory and appends each part to its open file.
fn write_groups(
    ctx: &SinkContext,
    topic: &str,
    partition: i32,
    files: &mut BTreeMap<String, OpenFile>,
    batch: &RecordBatch,
    offsets: &[i64],
) -> Result<(), SinkError> {
    let fmt_err = |source: FormatError| SinkError::Format {
        topic: topic.to_string(),
        partition,
        source: Box::new(source),
    };
    for group in ctx.partitioner.split(partition, batch) {
        let (part, first, last) = match &group.rows {
            None => (batch.clone(), offsets[0], offsets[offsets.len() - 1]),
            Some(rows) => {
                let idx = arrow::array::UInt32Array::from(rows.clone());
                let part = arrow::compute::take_record_batch(batch, &idx).map_err(|source| {
                    SinkError::Metadata {
                        topic: topic.to_string(),
                        partition,
                        source: Box::new(source),
                    }
                })?;
                let first = rows.iter().map(|&r| offsets[r as usize]).min().unwrap_or(0);
                let last = rows.iter().map(|&r| offsets[r as usize]).max().unwrap_or(0);
                (part, first, last)
            }
        };
        let file = match files.get_mut(&group.dir) {
            Some(f) => f,
            None => {
                let writer = format::new_writer(&ctx.config, part.schema()).map_err(fmt_err)?;
                files.entry(group.dir.clone()).or_insert(OpenFile {
                    writer,
                    first_offset: first,
                    last_offset: last,
                    rows: 0,
                })
            }
        };
        file.writer.write(&part).map_err(fmt_err)?;
        file.first_offset = file.first_offset.min(first);
        file.last_offset = file.last_offset.max(last);
        file.rows += part.num_rows() as u64;
    }
    Ok(())
}

/// Milliseconds since the epoch, wall clock.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
