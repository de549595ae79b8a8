//! The encode step of a [`PartitionWriter`]: decode the buffer, add the metadata columns, run the
//! [`Pipeline`], apply `errors.tolerance` to rejected records, cut the batch where the record
//! time passes `rotate.interval.ms` (committing the part before the cut), and append each group
//! of rows to the open file of its directory.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::UInt32Array;
use arrow::record_batch::RecordBatch;

use super::memory::Accounted;
use super::pipeline::Pipeline;
use super::rotation::{RotateReason, RotationState};
use super::{Active, Committed, OpenFile, PartitionWriter, SinkContext, SinkError, WriterState};
use crate::config::formats::NullValues;
use crate::config::ErrorTolerance;
use crate::decode::{metadata, RecordBuffer};
use crate::expr::ExprError;
use crate::format::parquet::PlainColumns;
use crate::format::{self, FormatError};
use crate::metrics::Metrics;
use crate::partition::Group;

impl PartitionWriter {
    /// Decodes the buffered records and writes them into the open files; may commit when the
    /// record time crosses `rotate.interval.ms` inside the buffer.
    pub(super) fn encode_buffer(&mut self, ctx: &SinkContext) -> Result<Committed, SinkError> {
        let WriterState::Active(a) = &mut self.state else {
            return Ok(Committed::Nothing);
        };
        if a.buffer.is_empty() {
            return Ok(Committed::Nothing);
        }
        let fresh = RecordBuffer::new(a.buffer.keep_keys, a.buffer.keep_headers);
        let mut buffer = std::mem::replace(&mut a.buffer, fresh);
        let result = self.encode(ctx, &buffer);
        if let WriterState::Active(a) = &mut self.state {
            // Keep the allocation for the next records.
            buffer.clear();
            a.buffer = buffer;
        }
        result
    }

    /// The stages, in order: decode (+ metadata columns), SQL (transform and partition rule),
    /// write (with record-time cuts).
    fn encode(&mut self, ctx: &SinkContext, buffer: &RecordBuffer) -> Result<Committed, SinkError> {
        let Some((batch, accepted)) = self.decode_stage(ctx, buffer)? else {
            return Ok(Committed::Nothing);
        };
        let Some(processed) = self.sql_stage(ctx, buffer, &batch, &accepted)? else {
            return Ok(Committed::Nothing);
        };
        self.write_stage(ctx, buffer, &processed)
    }

    /// Decodes the buffer, applies `errors.tolerance` to what was rejected and adds the metadata
    /// columns. `None` when no record was accepted; else the batch and, per row, its index in
    /// the buffer.
    fn decode_stage(
        &mut self,
        ctx: &SinkContext,
        buffer: &RecordBuffer,
    ) -> Result<Option<(RecordBatch, Vec<usize>)>, SinkError> {
        let (topic, partition) = (self.topic.as_str(), self.partition);
        let WriterState::Active(a) = &mut self.state else {
            return Ok(None);
        };
        let mut decoded = a
            .decoder
            .decode(buffer)
            .map_err(|source| SinkError::Decode {
                topic: topic.to_string(),
                partition,
                source: Box::new(source),
            })?;
        let metadata_err = |source| SinkError::Metadata {
            topic: topic.to_string(),
            partition,
            source: Box::new(source),
        };
        if ctx.config.formats.null_values == NullValues::Write {
            write_tombstones(&mut decoded, buffer).map_err(metadata_err)?;
        }
        if !decoded.rejected.is_empty() {
            handle_rejects(ctx, topic, partition, buffer, &decoded.rejected)?;
        }
        let accepted = decoded.accepted_indexes(buffer.len());
        if accepted.is_empty() {
            return Ok(None);
        }
        let batch = metadata::append_metadata(&decoded.batch, topic, partition, buffer, &accepted)
            .map_err(metadata_err)?;
        Ok(Some((batch, accepted)))
    }

    /// Runs the transform and the partition rule (compiled for the batch's schema; a new schema
    /// closes the open files once). Rows the SQL fails on are rejected. `None` when the writer
    /// was fenced meanwhile.
    fn sql_stage(
        &mut self,
        ctx: &SinkContext,
        buffer: &RecordBuffer,
        batch: &RecordBatch,
        accepted: &[usize],
    ) -> Result<Option<Processed>, SinkError> {
        let (topic, partition) = (self.topic.clone(), self.partition);
        let expr_err = |source: ExprError| SinkError::Expr {
            topic: topic.clone(),
            partition,
            source: Box::new(source),
        };
        let WriterState::Active(a) = &mut self.state else {
            return Ok(None);
        };
        let previous = a.pipeline.as_ref().map(|p| p.output_schema().clone());
        let pipeline = pipeline_for(ctx, a, batch).map_err(expr_err)?;
        if previous.is_some_and(|s| s != *pipeline.output_schema()) && !a.files.is_empty() {
            // The value schema moved (Avro schema evolution, an inferred JSON schema widened by
            // another partition): the open files are closed once and join the next commit; new
            // ones start with the new schema.
            let dirs: Vec<String> = a.files.keys().cloned().collect();
            for dir in dirs {
                self.spill(ctx, &dir)?;
            }
        }
        let processed = pipeline.process(batch).map_err(expr_err)?;
        if !processed.failed.is_empty() {
            let rejected: Vec<(usize, crate::decode::RecordError)> = processed
                .failed
                .iter()
                .map(|(r, m)| (accepted[*r], crate::decode::RecordError(m.clone())))
                .collect();
            handle_rejects(ctx, &topic, partition, buffer, &rejected)?;
        }
        // Buffer index and offset of every output row.
        let buf_rows: Vec<usize> = processed.rows.iter().map(|&r| accepted[r]).collect();
        let offsets: Vec<i64> = buf_rows.iter().map(|&i| buffer.offsets[i]).collect();
        Ok(Some(Processed {
            output: processed,
            buf_rows,
            offsets,
        }))
    }

    /// Appends the rows to the open files of their directories. Where the record time passes
    /// `rotate.interval.ms` inside the batch, commits everything before the cut first.
    fn write_stage(
        &mut self,
        ctx: &SinkContext,
        buffer: &RecordBuffer,
        processed: &Processed,
    ) -> Result<Committed, SinkError> {
        let (out, offsets) = (&processed.output, &processed.offsets);
        let n = offsets.len();
        let interval = ctx.policy.config.interval;
        let mut result = Committed::Nothing;
        let mut from = 0;
        loop {
            let WriterState::Active(a) = &mut self.state else {
                return Ok(result);
            };
            let cut = match (&out.times, interval) {
                (Some(times), Some(_)) => ctx
                    .policy
                    .time_cut(&mut a.rotation, &times[from..])
                    .map_or(n, |i| from + i),
                _ => n,
            };
            if cut > from {
                let rows = RowsToWrite {
                    batch: &out.batch,
                    groups: &out.groups,
                    offsets,
                    range: from..cut,
                };
                let files = (&mut a.files, &a.plain_columns);
                write_rows(ctx, &self.topic, self.partition, files, rows)?;
            }
            if cut >= n {
                return Ok(result);
            }
            // The record at `cut` is past the interval: commit everything before it.
            let end = offsets[cut] - 1;
            let remaining = (buffer.len() - processed.buf_rows[cut]) as u64;
            let committed = self.commit_through(ctx, end, RotateReason::RecordTime)?;
            result = result.then(committed);
            let WriterState::Active(a) = &mut self.state else {
                return Ok(result);
            };
            // The rest of the buffer belongs to the new commit.
            a.rotation = RotationState::new(
                &ctx.policy.config,
                std::time::Instant::now(),
                crate::clock::wall_ms(),
            );
            a.rotation.records = remaining;
            from = cut;
        }
    }
}

/// What the SQL stage gives the write stage.
struct Processed {
    output: super::pipeline::Processed,
    /// Per output row: its index in the buffer.
    buf_rows: Vec<usize>,
    /// Per output row: its Kafka offset.
    offsets: Vec<i64>,
}

/// Rows `range` of `batch`, grouped by output directory.
struct RowsToWrite<'a> {
    batch: &'a RecordBatch,
    groups: &'a [Group],
    offsets: &'a [i64],
    range: std::ops::Range<usize>,
}

/// `behavior.on.null.values=write`: tombstones the decoder rejected become rows whose value
/// columns are all null, in buffer order. Every value column is made nullable (in every batch,
/// so the output schema does not change when a batch has no tombstone).
fn write_tombstones(
    decoded: &mut crate::decode::Decoded,
    buffer: &RecordBuffer,
) -> Result<(), arrow::error::ArrowError> {
    let fields: Vec<arrow::datatypes::Field> = decoded
        .batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(fields));
    decoded.batch = RecordBatch::try_new(schema.clone(), decoded.batch.columns().to_vec())?;
    let tombstones: Vec<usize> = decoded
        .rejected
        .iter()
        .map(|(i, _)| *i)
        .filter(|&i| buffer.value(i).is_none())
        .collect();
    if tombstones.is_empty() {
        return Ok(());
    }
    let accepted = decoded.accepted_indexes(buffer.len());
    let nulls = RecordBatch::try_new(
        schema.clone(),
        schema
            .fields()
            .iter()
            .map(|f| arrow::array::new_null_array(f.data_type(), tombstones.len()))
            .collect(),
    )?;
    let all = arrow::compute::concat_batches(&schema, [&decoded.batch, &nulls])?;
    // Row of `all` for each buffer index, merged in buffer order.
    let (mut a, mut t) = (0, 0);
    let mut order = Vec::with_capacity(accepted.len() + tombstones.len());
    while a < accepted.len() || t < tombstones.len() {
        if t >= tombstones.len() || (a < accepted.len() && accepted[a] < tombstones[t]) {
            order.push(a as u32);
            a += 1;
        } else {
            order.push((accepted.len() + t) as u32);
            t += 1;
        }
    }
    decoded.batch = arrow::compute::take_record_batch(&all, &UInt32Array::from(order))?;
    decoded.rejected.retain(|(i, _)| buffer.value(*i).is_some());
    Ok(())
}

/// The pipeline for the schema of `batch`, compiled on first use and again when it changes.
fn pipeline_for(
    ctx: &SinkContext,
    a: &mut Active,
    batch: &RecordBatch,
) -> Result<Arc<Pipeline>, ExprError> {
    if let Some(p) = &a.pipeline {
        if p.input_schema().as_ref() == batch.schema().as_ref() {
            return Ok(p.clone());
        }
    }
    let need_time = ctx.policy.config.interval.is_some();
    let p = Arc::new(Pipeline::compile(
        &ctx.compiler,
        &ctx.config,
        &batch.schema(),
        need_time,
    )?);
    a.pipeline = Some(p.clone());
    Ok(p)
}

/// Appends the rows to the open files of their groups.
fn write_rows(
    ctx: &SinkContext,
    topic: &str,
    partition: i32,
    (files, plain_columns): (&mut BTreeMap<String, OpenFile>, &Arc<PlainColumns>),
    rows_to_write: RowsToWrite<'_>,
) -> Result<(), SinkError> {
    let RowsToWrite {
        batch,
        groups,
        offsets,
        range,
    } = rows_to_write;
    let fmt_err = |source: FormatError| SinkError::Format {
        topic: topic.to_string(),
        partition,
        source: Box::new(source),
    };
    let whole = range.start == 0 && range.end == batch.num_rows();
    for group in groups {
        let rows: Option<Vec<u32>> = match (&group.rows, whole) {
            (None, true) => None,
            (None, false) => Some((range.start as u32..range.end as u32).collect()),
            (Some(rows), true) => Some(rows.clone()),
            (Some(rows), false) => Some(
                rows.iter()
                    .copied()
                    .filter(|&r| range.contains(&(r as usize)))
                    .collect(),
            ),
        };
        let (part, first, last) = match rows {
            None => (batch.clone(), offsets[0], offsets[offsets.len() - 1]),
            Some(rows) if rows.is_empty() => continue,
            Some(rows) => {
                let first = offsets[rows[0] as usize];
                let last = offsets[rows[rows.len() - 1] as usize];
                let part = arrow::compute::take_record_batch(batch, &UInt32Array::from(rows))
                    .map_err(|source| SinkError::Metadata {
                        topic: topic.to_string(),
                        partition,
                        source: Box::new(source),
                    })?;
                (part, first, last)
            }
        };
        let file = match files.get_mut(&group.dir) {
            Some(f) => f,
            None => {
                let writer = format::new_writer(&ctx.config, part.schema(), plain_columns)
                    .map_err(fmt_err)?;
                files.entry(group.dir.clone()).or_insert(OpenFile {
                    writer,
                    first_offset: first,
                    last_offset: last,
                    rows: 0,
                    memory: Accounted::new(&ctx.memory),
                })
            }
        };
        file.writer.write(&part).map_err(fmt_err)?;
        file.first_offset = file.first_offset.min(first);
        file.last_offset = file.last_offset.max(last);
        file.rows += part.num_rows() as u64;
        file.memory.set(file.writer.memory_size() as u64);
    }
    Ok(())
}

/// Applies `errors.tolerance` to rejected records (buffer indexes, ascending).
fn handle_rejects(
    ctx: &SinkContext,
    topic: &str,
    partition: i32,
    buffer: &RecordBuffer,
    rejected: &[(usize, crate::decode::RecordError)],
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
        tracing::warn!(%topic, partition, offset, cause = %cause, "skipping a bad record (errors.tolerance=all)");
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
