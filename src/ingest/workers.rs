//! Partition workers: the threads that decode, transform, encode, stage and commit.
//!
//! ```text
//!   router ──(bounded channel per worker: Command, FIFO)──► worker k ──► PartitionWriter per
//!      ▲                                                        │        owned partition
//!      └──────────────(one channel for all workers: Event)──────┘
//! ```
//!
//! Contract:
//! - Each assigned Kafka partition is owned by exactly one worker, chosen by the router at
//!   assignment. Everything about one partition (assign, records, reset, revoke) travels in its
//!   worker's one FIFO channel, so the worker applies it in the order the router consumed it:
//!   records keep their offset order and never reach a writer of another assignment.
//! - A worker owns its writers: only it pushes, ticks (idle / schedule rotation), spills and
//!   commits them. Commits run the store protocol of [`crate::commit`]; exactly-once does not
//!   depend on which thread commits, only on the store's conditional create.
//! - The command channel is bounded ([`COMMAND_QUEUE`] chunks of at most
//!   [`super::router::CHUNK_BYTES`] each): a worker that falls behind blocks the router, which
//!   stops polling (librdkafka's own prefetch is bounded by its `queued.max.messages.kbytes`).
//!   A queued chunk holds its bytes in the memory budget ([`Queued`]) until the worker has
//!   written it, so queued records and open files share `memory.budget.bytes`. The event channel
//!   is unbounded: events are a few per commit and the router drains it on every loop.
//! - A worker reports commits (for the advisory Kafka offset commit), fences (the router pauses
//!   the partition), fenced partitions whose backoff is over (the router recovers, seeks and
//!   sends [`Command::Reset`]) and its own failure, after which it stops.
//! - The memory budget is shared: a worker that finds it exceeded after a chunk flushes the
//!   largest open files of its own writers.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::wall_ms;
use crate::commit::Recovered;
use crate::decode::buffer::RecordBuffer;
use crate::sink::memory::{Accounted, MemoryBudget};
use crate::sink::rotation::RotateReason;
use crate::sink::{Committed, PartitionWriter, SinkContext};

use super::IngestError;

/// Chunks a worker's command channel holds before the router waits: deep enough that one
/// worker busy with a flush or a commit does not leave the other without records while the
/// router waits for it (at most `COMMAND_QUEUE` x [`super::router::CHUNK_BYTES`] per worker,
/// counted in the memory budget).
pub const COMMAND_QUEUE: usize = 4;

/// How often a worker ticks its writers (idle and schedule rotation, fenced backoff).
const TICK: Duration = Duration::from_millis(100);

/// A Kafka partition.
pub type TopicPartition = (Arc<str>, i32);

/// A chunk on its way to a worker, with its bytes held in the memory budget.
pub struct Queued {
    pub buffer: RecordBuffer,
    held: Accounted,
}

impl Queued {
    pub fn new(buffer: RecordBuffer, budget: &Arc<MemoryBudget>) -> Box<Self> {
        let mut held = Accounted::new(budget);
        held.set(buffer.byte_size() as u64);
        Box::new(Queued { buffer, held })
    }
}

/// What the router tells a worker.
pub enum Command {
    /// Own this partition, resuming where the store says it stands.
    Assign(TopicPartition, Recovered),
    /// Consumed records of one owned partition, in offset order.
    Records(TopicPartition, Box<Queued>),
    /// A fenced partition recovered from the store; the consumer was moved there.
    Reset(TopicPartition, Recovered),
    /// No longer owned: forget it (what is not committed is re-read by the next owner).
    Revoke(TopicPartition),
    /// Commit everything open (end of input, shutdown), then answer.
    RotateAll(RotateReason, SyncSender<()>),
}

/// What a worker tells the router.
pub enum Event {
    /// Offsets through `end` are durable in the store.
    Committed(TopicPartition, i64),
    /// Another writer won this partition's commit: pause it.
    Fenced(TopicPartition),
    /// A fenced partition's backoff is over: recover it and send [`Command::Reset`].
    Resume(TopicPartition),
    /// The worker failed and stopped.
    Failed(IngestError),
}

/// One worker's state: its writers and the buffers it hands back for reuse.
struct Worker<'a> {
    ctx: &'a SinkContext,
    writers: HashMap<TopicPartition, PartitionWriter>,
    /// Fenced partitions already reported as ready to resume.
    resume_asked: HashSet<TopicPartition>,
    events: Sender<Event>,
    spent: Sender<RecordBuffer>,
}

/// Runs one worker until its command channel closes or it fails (reported as an event).
pub fn run(
    ctx: &SinkContext,
    commands: Receiver<Command>,
    events: Sender<Event>,
    spent: Sender<RecordBuffer>,
) {
    let mut worker = Worker {
        ctx,
        writers: HashMap::new(),
        resume_asked: HashSet::new(),
        events,
        spent,
    };
    let mut last_tick = Instant::now();
    loop {
        let result = match commands.recv_timeout(TICK) {
            Ok(command) => worker.apply(command),
            Err(RecvTimeoutError::Timeout) => Ok(()),
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let now = Instant::now();
        let result = result.and_then(|()| {
            if now.duration_since(last_tick) < TICK {
                return Ok(());
            }
            last_tick = now;
            worker.tick(now)
        });
        if let Err(e) = result {
            let _ = worker.events.send(Event::Failed(e));
            return;
        }
    }
}

impl Worker<'_> {
    fn apply(&mut self, command: Command) -> Result<(), IngestError> {
        match command {
            Command::Assign(tp, recovered) => {
                let writer = PartitionWriter::new(self.ctx, &tp.0, tp.1, &recovered)?;
                self.resume_asked.remove(&tp);
                self.writers.insert(tp, writer);
            }
            Command::Records(tp, queued) => {
                let Queued { mut buffer, held } = *queued;
                self.push_all(&tp, &mut buffer)?;
                // Written into the open files, which account for it from here on.
                drop(held);
                buffer.clear();
                let _ = self.spent.send(buffer);
                if self.ctx.memory.over() {
                    self.spill_largest()?;
                }
            }
            Command::Reset(tp, recovered) => {
                self.resume_asked.remove(&tp);
                if let Some(writer) = self.writers.get_mut(&tp) {
                    writer.reset(self.ctx, &recovered)?;
                }
            }
            Command::Revoke(tp) => {
                self.resume_asked.remove(&tp);
                self.writers.remove(&tp);
            }
            Command::RotateAll(reason, done) => {
                self.rotate_all(reason)?;
                let _ = done.send(());
            }
        }
        Ok(())
    }

    fn push_all(
        &mut self,
        tp: &TopicPartition,
        buffer: &mut RecordBuffer,
    ) -> Result<(), IngestError> {
        let Some(writer) = self.writers.get_mut(tp) else {
            return Ok(());
        };
        let committed = writer.push_chunk(self.ctx, buffer)?;
        self.report(tp, committed)
    }

    fn report(&self, tp: &TopicPartition, committed: Committed) -> Result<(), IngestError> {
        let event = match committed {
            Committed::Nothing => return Ok(()),
            Committed::Through { end } => Event::Committed(tp.clone(), end),
            Committed::Fenced => Event::Fenced(tp.clone()),
        };
        let _ = self.events.send(event);
        Ok(())
    }

    /// Time-driven rotation of every writer; fenced ones past their backoff are reported once.
    fn tick(&mut self, now: Instant) -> Result<(), IngestError> {
        let wall = wall_ms();
        let mut outcomes = Vec::new();
        for (tp, writer) in &mut self.writers {
            outcomes.push((tp.clone(), writer.tick(self.ctx, now, wall)?));
            if let Some(since) = writer.fenced_since() {
                if now.duration_since(since) >= self.ctx.config.fenced_backoff
                    && self.resume_asked.insert(tp.clone())
                {
                    let _ = self.events.send(Event::Resume(tp.clone()));
                }
            }
        }
        for (tp, committed) in outcomes {
            self.report(&tp, committed)?;
        }
        Ok(())
    }

    fn rotate_all(&mut self, reason: RotateReason) -> Result<(), IngestError> {
        let mut outcomes = Vec::new();
        for (tp, writer) in &mut self.writers {
            if writer.has_open_records() {
                outcomes.push((tp.clone(), writer.rotate(self.ctx, reason)?));
            }
        }
        for (tp, committed) in outcomes {
            self.report(&tp, committed)?;
        }
        Ok(())
    }

    /// Flushes the largest open files of this worker's writers until the budget's target is
    /// reached (or this worker has nothing left to flush).
    fn spill_largest(&mut self) -> Result<(), IngestError> {
        let mut files: Vec<(u64, TopicPartition, String)> = self
            .writers
            .iter()
            .flat_map(|(tp, w)| {
                w.open_file_sizes()
                    .into_iter()
                    .map(move |(dir, size)| (size, tp.clone(), dir))
            })
            .collect();
        files.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
        let before = self.ctx.memory.used();
        let mut flushed = 0;
        for (_, tp, dir) in files {
            if self.ctx.memory.used() <= self.ctx.memory.target() {
                break;
            }
            if let Some(writer) = self.writers.get_mut(&tp) {
                writer.spill(self.ctx, &dir)?;
                flushed += 1;
            }
        }
        tracing::debug!(
            flushed,
            before,
            after = self.ctx.memory.used(),
            limit = self.ctx.memory.limit(),
            available = self.ctx.memory.available(),
            "memory budget reached; flushed the largest open files"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_chunk_holds_its_bytes_in_the_budget_until_dropped() {
        let budget = MemoryBudget::new(1 << 20);
        let mut buffer = RecordBuffer::new(false, false);
        buffer.push(7, -1, None, Some(&[b'x'; 1000]), Vec::new);
        let queued = Queued::new(buffer, &budget);
        assert_eq!(budget.used(), 1000);
        let Queued { buffer, held } = *queued;
        assert_eq!(buffer.len(), 1);
        drop(held);
        assert_eq!(budget.used(), 0);
    }
}
