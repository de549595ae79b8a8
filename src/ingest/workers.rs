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
//!   seals them. Each writer's commits run in its partition's committer task on the I/O runtime
//!   ([`crate::sink::committer`]), one at a time and in order, while the worker goes on
//!   encoding; the worker picks up what they committed after every chunk and tick. Commits run
//!   the store protocol of [`crate::commit`]; exactly-once does not depend on which thread
//!   commits, only on the store's conditional create and the chain's order.
//! - The command channel is bounded ([`COMMAND_QUEUE`] chunks of at most
//!   [`super::router::CHUNK_BYTES`] each): a worker that falls behind blocks the router, which
//!   stops polling (librdkafka's own prefetch is bounded by its `queued.max.messages.kbytes`).
//!   A queued chunk holds its bytes in the memory budget ([`Queued`]) until the worker has
//!   written it, so queued records and open files share `memory.budget.bytes`. The event channel
//!   is unbounded: events are a few per commit and the router drains it on every loop.
//! - Revocation drops, it does not drain: the router marks the partition's [`Ownership`] as
//!   given up before it sends [`Command::Revoke`], so chunks still queued ahead of the revoke are
//!   dropped unwritten and no commit of the partition starts after that; the worker closes the
//!   partition's committer before it answers the revoke (commits without a record yet are
//!   abandoned, a create under way is waited for), and the router waits for that answer
//!   before it lets librdkafka unassign the partition. So the old owner never commits after the
//!   group handed the partition to a new owner, which would fence the new one.
//! - A worker reports commits (for the advisory Kafka offset commit), fences (the router pauses
//!   the partition), fenced partitions whose backoff is over (the router recovers, seeks and
//!   sends [`Command::Reset`]) and its own failure, after which it stops.
//! - The memory budget is shared: a worker that finds it exceeded after a chunk flushes the
//!   largest open files of its own writers, and if it is still exceeded waits for its files
//!   being uploaded (they count in the budget until their upload ends).
//! - [`Command::RotateAll`] (end of input, shutdown) seals what is open and waits until every
//!   seal of the worker's writers is committed before it answers.

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
            Err(RecvTimeoutError::Disconnected) => {
                worker.close_all();
                return;
            }
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
            worker.close_all();
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
                if let Some(mut owned) = self.writers.remove(&tp) {
                    // Abandons or finishes the commit in flight: none is made after the answer.
                    owned.writer.close();
                }
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
        let committed = committed.then(owned.writer.take_commits()?);
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
            let ticked = writer.tick(self.ctx, now, wall)?;
            outcomes.push((tp.clone(), ticked.then(writer.take_commits()?)));
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

    /// Stops every writer's committer (see [`PartitionWriter::close`]).
    fn close_all(&mut self) {
        for owned in self.writers.values_mut() {
            owned.writer.close();
        }
    }

    fn rotate_all(&mut self, reason: RotateReason) -> Result<(), IngestError> {
        let mut outcomes = Vec::new();
        for (tp, Owned { writer, ownership }) in &mut self.writers {
            if !ownership.holds() {
                continue;
            }
            let mut committed = Committed::Nothing;
            if writer.has_open_records() {
                committed = writer.rotate(self.ctx, reason)?;
            }
            // Group commit: what is sealed is durable before the answer.
            outcomes.push((tp.clone(), committed.then(writer.flush_commits()?)));
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
        // Files waiting for their upload hold memory too: consumption waits for them.
        if self.ctx.memory.over() {
            for owned in self.writers.values().filter(|o| o.writer.uploading()) {
                owned.writer.wait_uploads();
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

    /// Group commit: a revocation answered while the partition's commits are in flight (a
    /// store 50 ms away) is followed by no store call at all: the committer abandoned what had
    /// no record yet and finished a create under way before the answer, so it cannot fence the
    /// next owner. What the store holds is a whole chain: a prefix of the offsets, each once.
    #[test]
    fn no_store_call_after_a_revocation_answered_with_commits_in_flight() {
        use crate::commit::CommitLog;
        use crate::store::{delayed::DelayedStore, Store};
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = context(dir.path(), &runtime, &[]);
        let local = ctx.commit_log.store().clone();
        let delay = Duration::from_millis(50);
        let delayed = Arc::new(DelayedStore::new(local.inner.clone(), delay));
        let store = Store {
            inner: delayed.clone(),
            ..local
        };
        ctx.commit_log = CommitLog::new(store, "topics", "w1");
        ctx.group_commit = true;
        let (commands, queue) = std::sync::mpsc::sync_channel(COMMAND_QUEUE);
        let (events_tx, events) = std::sync::mpsc::channel();
        let (spent_tx, _spent) = std::sync::mpsc::channel();
        let tp: TopicPartition = (Arc::from("t"), 0);
        let fresh = Recovered {
            next_seq: 0,
            next_offset: None,
        };
        let calls_at_answer = std::thread::scope(|scope| {
            scope.spawn(|| run(&ctx, queue, events_tx, spent_tx));
            let ownership = Ownership::new();
            let assign = Command::Assign(tp.clone(), fresh, ownership.clone());
            commands.send(assign).unwrap();
            for n in 0..10 {
                let offsets: Vec<i64> = (n * 10..n * 10 + 10).collect();
                let queued = Queued::new(chunk(&offsets), &ctx.memory);
                commands.send(Command::Records(tp.clone(), queued)).unwrap();
            }
            // The first commit is made; the next one (the files sealed meanwhile, uploaded
            // during the first) is being created when the partition is revoked.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !matches!(events.try_recv(), Ok(Event::Committed(..))) {
                assert!(std::time::Instant::now() < deadline, "a first commit");
                std::thread::sleep(Duration::from_millis(1));
            }
            ownership.give_up();
            let (done, answer) = std::sync::mpsc::sync_channel(1);
            commands.send(Command::Revoke(tp.clone(), done)).unwrap();
            answer.recv().expect("the worker answers the revoke");
            let calls = delayed.calls();
            // Not a synchronisation: a window (10 store delays) in which nothing may happen.
            std::thread::sleep(delay * 10);
            drop(commands);
            calls
        });
        assert_eq!(
            delayed.calls(),
            calls_at_answer,
            "store calls were made after the revocation was answered"
        );
        let recovered = runtime.block_on(ctx.commit_log.recover("t", 0)).unwrap();
        let through = recovered.next_offset.unwrap_or(0);
        let written: Vec<i64> = written(dir.path()).into_iter().flatten().collect();
        assert_eq!(written, (0..through).collect::<Vec<i64>>());
        eprintln!(
            "committed through {through} in {} commits",
            recovered.next_seq
        );
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
