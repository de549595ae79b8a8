//! The writer's side of group commit ([`super::committer`]): a rotation hands its files and
//! offsets to the partition's committer instead of committing in line, and what the committer
//! did comes back through [`PartitionWriter::take_commits`].
//!
//! The writer moves on as if the sealed offsets were committed (the next commit starts at
//! `end + 1`); they are durable once [`Committed::Through`] is reported. A fence or a commit
//! error reported by the committer is the same as before: the writer stops writing the partition
//! (fence) or the worker fails (error).

use std::time::Instant;

use super::committer::{Seal, Taken};
use super::memory::Accounted;
use super::rotation::{RotateReason, RotationState};
use super::{finish_file, Committed, PartitionWriter, SinkContext, SinkError, WriterState};
use crate::clock::wall_ms;
use crate::commit::PendingFile;

/// A finished file's bytes, held in the memory budget until its upload ends.
pub(super) fn held(ctx: &SinkContext, file: &PendingFile) -> Accounted {
    let mut held = Accounted::new(&ctx.memory);
    held.set(file.data.len() as u64);
    held
}

impl PartitionWriter {
    /// Closes the open files, hands them and offsets `start..=end` to the committer, and
    /// starts the next commit at `end + 1`.
    pub(super) fn seal_through(
        &mut self,
        ctx: &SinkContext,
        start: i64,
        end: i64,
        reason: RotateReason,
    ) -> Result<Committed, SinkError> {
        let WriterState::Active(a) = &mut self.state else {
            return Ok(Committed::Nothing);
        };
        let (topic, partition) = (self.topic.as_str(), self.partition);
        let committer = a.committer.as_ref().expect("seal_through with a committer");
        let mut files = Vec::with_capacity(a.files.len());
        for (dir, f) in std::mem::take(&mut a.files) {
            let file = finish_file(ctx, topic, partition, &dir, f)?;
            let held = held(ctx, &file);
            files.push((file, held));
        }
        if let Some(dlq) = &ctx.dlq {
            // Dead-lettered records must be durable before the store says they were consumed.
            dlq.flush().map_err(|source| SinkError::DeadLetter {
                topic: topic.to_string(),
                partition,
                offset: end,
                source: Box::new(source),
            })?;
        }
        let seal = Seal {
            start,
            end,
            reason,
            partition_columns: a
                .pipeline
                .as_ref()
                .map(|p| p.partition_columns())
                .unwrap_or_default(),
            schema: a.pipeline.as_ref().map(|p| p.output_schema().clone()),
        };
        committer.seal(seal, files);
        a.first_staged = None;
        a.spilled_bytes = 0;
        a.range_start = Some(end + 1);
        if a.last_offset.is_some_and(|l| l <= end) {
            a.last_offset = None;
        }
        a.rotation = RotationState::new(&ctx.policy.config, Instant::now(), wall_ms());
        self.take_commits()
    }

    /// What the committer committed (the newest end offset), or its fence or failure, since
    /// the last call. A fence stops the writer, as a lost race in line does.
    pub fn take_commits(&mut self) -> Result<Committed, SinkError> {
        let WriterState::Active(a) = &mut self.state else {
            return Ok(Committed::Nothing);
        };
        let Some(committer) = &a.committer else {
            return Ok(Committed::Nothing);
        };
        match committer.take() {
            Taken::Nothing => Ok(Committed::Nothing),
            Taken::Through { end, seq } => {
                a.seq = seq + 1;
                Ok(Committed::Through { end })
            }
            Taken::Fenced => {
                self.close();
                self.state = WriterState::Fenced {
                    since: Instant::now(),
                };
                Ok(Committed::Fenced)
            }
            Taken::Failed(source) => Err(SinkError::Commit {
                topic: self.topic.clone(),
                partition: self.partition,
                source: Box::new(source),
            }),
        }
    }

    /// Waits until everything sealed is committed (end of input, shutdown), then reports it.
    pub fn flush_commits(&mut self) -> Result<Committed, SinkError> {
        if let WriterState::Active(a) = &self.state {
            if let Some(committer) = &a.committer {
                committer.flush();
            }
        }
        self.take_commits()
    }

    /// Stops the committer and waits for it (see [`super::committer::Committer::close`]): no
    /// commit of this writer is made after this returns. What was not committed is read again
    /// by whoever owns the partition next.
    pub fn close(&mut self) {
        if let WriterState::Active(a) = &mut self.state {
            if let Some(committer) = a.committer.take() {
                committer.close();
            }
        }
    }

    /// Whether files of this writer are being uploaded (they hold memory until then).
    pub fn uploading(&self) -> bool {
        match &self.state {
            WriterState::Active(a) => a.committer.as_ref().is_some_and(|c| c.uploading()),
            WriterState::Fenced { .. } => false,
        }
    }

    /// Waits until this writer's uploads have ended.
    pub fn wait_uploads(&self) {
        if let WriterState::Active(a) = &self.state {
            if let Some(committer) = &a.committer {
                committer.wait_uploads();
            }
        }
    }
}
