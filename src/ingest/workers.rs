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
//! - Revocation drops, it does not drain: the router marks the partition's [`Ownership`] as
//!   given up before it sends [`Command::Revoke`], so chunks still queued ahead of the revoke are
//!   dropped unwritten and no commit of the partition starts after that; the router then waits
//!   for the worker's answer to the revoke (any commit already under way has ended by then)
//!   before it lets librdkafka unassign the partition. So the old owner never commits after the
//!   group handed the partition to a new owner, which would fence the new one.
//! - A worker reports commits (for the advisory Kafka offset commit), fences (the router pauses
//!   the partition), fenced partitions whose backoff is over (the router recovers, seeks and
//!   sends [`Command::Reset`]) and its own failure, after which it stops.
//! - The memory budget is shared: a worker that finds it exceeded after a chunk flushes the
//!   largest open files of its own writers.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::wall_ms;
use crate::commit::Recovered;
use crate::decode::buffer::RecordBuffer;
use crate::sink::memory::{Accounted, BudgetShare};
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
    pub fn new(buffer: RecordBuffer, budget: &Arc<BudgetShare>) -> Box<Self> {
        let mut held = Accounted::new(budget);
        held.set(buffer.byte_size() as u64);
        Box::new(Queued { buffer, held })
    }
}

/// Whether one assignment of a partition still holds: shared by the router, which gives it up
/// at revocation, and the worker, which writes and commits the partition only while it holds.
#[derive(Debug, Clone, Default)]
pub struct Ownership(Arc<AtomicBool>);

impl Ownership {
    pub fn new() -> Self {
        Ownership(Arc::new(AtomicBool::new(true)))
    }

    pub fn holds(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub fn give_up(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// What the router tells a worker.
pub enum Command {
    /// Own this partition, resuming where the store says it stands, while the ownership holds.
    Assign(TopicPartition, Recovered, Ownership),
    /// Consumed records of one owned partition, in offset order.
    Records(TopicPartition, Box<Queued>),
    /// A fenced partition recovered from the store; the consumer was moved there.
    Reset(TopicPartition, Recovered),
    /// No longer owned (its ownership is given up already): forget it, then answer. What is not
    /// committed is re-read by the next owner.
    Revoke(TopicPartition, SyncSender<()>),
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

/// A writer with the assignment it writes for.
struct Owned {
    writer: PartitionWriter,
    ownership: Ownership,
}

/// One worker's state: its writers and the buffers it hands back for reuse.
struct Worker<'a> {
    ctx: &'a SinkContext,
    writers: HashMap<TopicPartition, Owned>,
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
            Command::Assign(tp, recovered, ownership) => {
                let writer = PartitionWriter::new(self.ctx, &tp.0, tp.1, &recovered)?;
                self.resume_asked.remove(&tp);
                self.writers.insert(tp, Owned { writer, ownership });
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
                if let Some(owned) = self.writers.get_mut(&tp) {
                    owned.writer.reset(self.ctx, &recovered)?;
                }
            }
            Command::Revoke(tp, done) => {
                self.resume_asked.remove(&tp);
                self.writers.remove(&tp);
                let _ = done.send(());
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
        let Some(owned) = self.writers.get_mut(tp) else {
            return Ok(());
        };
        if !owned.ownership.holds() {
            // Revoked while the chunk was queued: the next owner reads it again.
            return Ok(());
        }
        let committed = owned.writer.push_chunk(self.ctx, buffer)?;
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
        for (tp, Owned { writer, ownership }) in &mut self.writers {
            if !ownership.holds() {
                continue;
            }
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
        for (tp, Owned { writer, ownership }) in &mut self.writers {
            if ownership.holds() && writer.has_open_records() {
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
            .filter(|(_, o)| o.ownership.holds())
            .flat_map(|(tp, o)| {
                o.writer
                    .open_file_sizes()
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
            if let Some(owned) = self.writers.get_mut(&tp) {
                owned.writer.spill(self.ctx, &dir)?;
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
    use crate::sink::testing::{chunk, context, written};

    /// Chunks that reach a worker after the router gave the partition up are dropped, and
    /// nothing of the partition is committed after that: the next owner, which may already have
    /// recovered the partition, is not fenced by a late commit of the old one. Before, every
    /// chunk queued ahead of the revoke was written, and the commits they crossed were made.
    #[test]
    fn chunks_queued_ahead_of_a_revocation_are_dropped_not_committed() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path(), &runtime, &[]);
        let (commands, queue) = std::sync::mpsc::sync_channel(COMMAND_QUEUE);
        let (events_tx, events) = std::sync::mpsc::channel();
        let (spent_tx, _spent) = std::sync::mpsc::channel();
        let tp: TopicPartition = (Arc::from("t"), 0);
        let fresh = Recovered {
            next_seq: 0,
            next_offset: None,
        };
        std::thread::scope(|scope| {
            scope.spawn(|| run(&ctx, queue, events_tx, spent_tx));
            let ownership = Ownership::new();
            let assign = Command::Assign(tp.clone(), fresh.clone(), ownership.clone());
            commands.send(assign).unwrap();
            let first: Vec<i64> = (0..10).collect();
            let queued = Queued::new(chunk(&first), &ctx.memory);
            commands.send(Command::Records(tp.clone(), queued)).unwrap();
            // The router revokes while the next chunk (crossing flush.size) is queued.
            let (done, answer) = std::sync::mpsc::sync_channel(1);
            let second: Vec<i64> = (10..20).collect();
            let wait_first = std::time::Instant::now() + Duration::from_secs(30);
            while !matches!(events.try_recv(), Ok(Event::Committed(_, 9))) {
                assert!(
                    std::time::Instant::now() < wait_first,
                    "offsets 0..=9 committed"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            ownership.give_up();
            let queued = Queued::new(chunk(&second), &ctx.memory);
            commands.send(Command::Records(tp.clone(), queued)).unwrap();
            commands.send(Command::Revoke(tp.clone(), done)).unwrap();
            answer.recv().expect("the worker answers the revoke");
            drop(commands);
        });
        assert_eq!(written(dir.path()), vec![(0..10).collect::<Vec<i64>>()]);
        assert!(
            !events.try_iter().any(|e| matches!(e, Event::Committed(..))),
            "nothing committed after the revocation"
        );
        let recovered = runtime.block_on(ctx.commit_log.recover("t", 0)).unwrap();
        assert_eq!(recovered.next_offset, Some(10));
    }

    #[test]
    fn a_queued_chunk_holds_its_bytes_in_the_budget_until_dropped() {
        let budget = BudgetShare::new(&crate::sink::memory::MemoryBudget::new(1 << 20));
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
