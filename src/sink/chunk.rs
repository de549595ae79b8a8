//! [`PartitionWriter::push_chunk`]: a chunk of consumed records joins a writer's buffer.
//!
//! Contract: the records written, the files they land in at `flush.size` and record-time
//! rotation, the commits and the errors are those of [`PartitionWriter::push`] called on each
//! record of the chunk in order. One difference: a chunk never straddles two decode batches;
//! when the buffered records and the chunk together exceed `decode.batch.records`, the buffered
//! ones are encoded first as a shorter batch (so a size rotation, checked after each batch, may
//! come a batch earlier). A chunk that does not pass `flush.size` and needs no record looked at
//! alone (schema sampling, tombstones dropped by `null.values=ignore`) joins whole: if the
//! buffer is empty the writer swaps buffers with it, so the records are not copied a second
//! time on their way from librdkafka to the decoder (the router's full chunks are one decode
//! batch each), else it is appended with one copy per column. Any other chunk is pushed record
//! by record.

use super::{Committed, PartitionWriter, SinkContext, SinkError, WriterState};
use crate::config::formats::NullValues;
use crate::decode::buffer::RecordBuffer;

impl PartitionWriter {
    /// Adds a chunk of this partition's records in offset order (see the module doc). `chunk`
    /// is left empty (its allocation may be another buffer's), ready for reuse.
    pub fn push_chunk(
        &mut self,
        ctx: &SinkContext,
        chunk: &mut RecordBuffer,
    ) -> Result<Committed, SinkError> {
        let mut encoded = Committed::Nothing;
        if self.overflows_batch(ctx, chunk) {
            encoded = self.encode_buffer(ctx)?;
            if encoded == Committed::Fenced {
                return Ok(encoded);
            }
        }
        if !self.takes_whole(ctx, chunk) {
            return Ok(encoded.then(self.push_each(ctx, chunk)?));
        }
        let WriterState::Active(a) = &mut self.state else {
            return Ok(encoded);
        };
        a.range_start = a.range_start.or(chunk.offsets.first().copied());
        a.last_offset = chunk.offsets.last().copied();
        a.rotation.records += chunk.len() as u64;
        if a.buffer.is_empty() {
            std::mem::swap(&mut a.buffer, chunk);
        } else {
            a.buffer.append(chunk);
        }
        Ok(encoded.then(self.after_push(ctx)?))
    }

    /// Whether the records buffered and the chunk together are more than a decode batch: then
    /// the buffered ones are encoded first, as a shorter batch, so that batches start at chunk
    /// boundaries again (one chunk cut short, e.g. when the consumer had nothing more, would
    /// otherwise leave every later chunk straddling two batches, copied record by record).
    fn overflows_batch(&self, ctx: &SinkContext, chunk: &RecordBuffer) -> bool {
        let WriterState::Active(a) = &self.state else {
            return false;
        };
        !a.buffer.is_empty() && a.buffer.len() + chunk.len() > ctx.config.decode_batch_records
    }

    /// Whether `chunk` can join the buffer whole: swapped in if the buffer is empty, else
    /// appended in one copy (see the module doc).
    fn takes_whole(&self, ctx: &SinkContext, chunk: &RecordBuffer) -> bool {
        let WriterState::Active(a) = &self.state else {
            return false;
        };
        let (Some(&first), n) = (chunk.offsets.first(), chunk.len()) else {
            return false;
        };
        let in_order = a
            .last_offset
            .map(|o| o + 1)
            .or(a.range_start)
            .is_none_or(|expected| first >= expected);
        let fits_file = ctx
            .policy
            .config
            .flush_size
            .is_none_or(|size| a.rotation.records + n as u64 <= size);
        let keeps_every_record = ctx.config.formats.null_values != NullValues::Ignore
            || chunk.value_present.iter().all(|&present| present);
        a.sampling.is_none()
            && a.buffer.len() + n <= ctx.config.decode_batch_records
            && in_order
            && fits_file
            && keeps_every_record
            && (chunk.keep_keys, chunk.keep_headers) == (a.buffer.keep_keys, a.buffer.keep_headers)
    }

    /// Pushes the chunk's records one by one; stops at a fence (the rest is not this writer's).
    fn push_each(
        &mut self,
        ctx: &SinkContext,
        chunk: &mut RecordBuffer,
    ) -> Result<Committed, SinkError> {
        let mut outcome = Committed::Nothing;
        for i in 0..chunk.len() {
            let headers = chunk.headers.get_mut(i).map(std::mem::take);
            let committed = self.push(
                ctx,
                chunk.offsets[i],
                chunk.timestamps[i],
                chunk.key(i),
                chunk.value(i),
                || headers.unwrap_or_default(),
            )?;
            if committed == Committed::Fenced {
                outcome = Committed::Fenced;
                break;
            }
            if committed != Committed::Nothing {
                outcome = committed;
            }
        }
        chunk.clear();
        Ok(outcome)
    }
}
