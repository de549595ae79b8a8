//! The consumer thread: polls, routes records to the partition workers, and does everything that
//! needs the consumer (rebalances, pauses, seeks, advisory offset commits, the end-of-input
//! check).
//!
//! Records are copied out of librdkafka once, into a chunk ([`RecordBuffer`]) per partition,
//! which goes to the partition's worker when it holds `decode.batch.records` records or
//! [`CHUNK_BYTES`], when the consumer has nothing more right now, or [`CHUNK_LINGER`] after its
//! first record. A full chunk is one decode batch, which the partition's writer takes over
//! without copying it again ([`crate::sink::PartitionWriter::push_chunk`]). Emptied chunks come
//! back from the workers for reuse.
//!
//! Rebalances: a revocation is handled in two halves. The rebalance callback only queues it; the
//! router gives the partitions' [`Ownership`] up (their queued chunks are dropped, no new commit
//! starts), waits for their workers to answer the revoke, sends the advisory Kafka commits they
//! made, and only then unassigns them ([`crate::source::unassign`]). A new assignment starts
//! unpaused, whatever an earlier fence paused.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ahash::RandomState;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::lag::LagGauge;
use super::workers::{Command, Event, Ownership, Queued, TopicPartition};
use super::{IngestError, IngestOptions};
use crate::commit::Recovered;
use crate::config::StartFrom;
use crate::decode::buffer::{Header, RecordBuffer};
use crate::metrics::Metrics;
use crate::sink::rotation::RotateReason;
use crate::sink::SinkContext;
use crate::source::oauth::AuthContext;
use crate::source::{IngestContext, RebalanceEvent, SourceError};

/// Bytes (values and keys) after which a chunk is sent with fewer than `decode.batch.records`
/// records.
pub const CHUNK_BYTES: usize = 4 << 20;
/// The longest a consumed record waits in a chunk before the chunk is sent.
///
/// Long enough for a busy partition to fill its chunk to a whole decode batch (2,048 records
/// arrive in about 60 ms at 32k records/s per partition), which its writer then takes without a
/// copy; records reach the store only at a commit, seconds later, so this delay is not seen.
pub const CHUNK_LINGER: Duration = Duration::from_millis(100);

const POLL: Duration = Duration::from_millis(100);
/// Records routed between two rounds of [`Router::chores`] while records keep coming.
const CHORES_EVERY: usize = 64;
/// How often the lag gauge is updated and the end of input checked (`--stop-at-end`).
const END_CHECK: Duration = Duration::from_millis(100);
/// How long `--stop-at-end` waits for a partition's watermarks before trying again later.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the router knows of one owned partition.
struct Owned {
    tp: TopicPartition,
    worker: usize,
    /// Given up at revocation, before the worker hears of it.
    ownership: Ownership,
    chunk: RecordBuffer,
    /// The next offset a record of this partition should have (the store's resume point, then
    /// past the last record routed).
    expected: Option<i64>,
    /// Whether a record was routed since the partition was assigned or reset: the first one is
    /// checked against the store's resume point for a retention gap.
    resumed: bool,
    fenced: bool,
    /// A `PartitionEOF` with this partition number arrived since its last record. librdkafka's
    /// end event names no topic, so this only says "worth checking".
    eof_hint: bool,
}

pub struct Router<'a> {
    consumer: &'a BaseConsumer<IngestContext>,
    ctx: &'a SinkContext,
    workers: Vec<SyncSender<Command>>,
    events: Receiver<Event>,
    spent: Receiver<RecordBuffer>,
    /// Looked up for every record: hashed with ahash, a fraction of SipHash's cost.
    owned: HashMap<Arc<str>, HashMap<i32, Owned, RandomState>, RandomState>,
    /// When the oldest record not yet sent to a worker was routed.
    unsent_since: Option<Instant>,
    /// This run's share of `partitions_assigned`.
    assigned_gauge: AssignedGauge,
    /// The consumer lag of this run's partitions.
    lag_gauge: LagGauge,
    /// Startup: when the group first handed this run partitions, until its first record.
    startup: Startup,
    /// With `--stop-at-end`: the client that asks the brokers where each partition ends.
    end_check: Option<&'a BaseConsumer<AuthContext>>,
    /// Whether the group has handed this run partitions yet (the end check waits for it).
    assigned_once: bool,
}

/// A chore due once per period.
struct Every {
    period: Duration,
    last: Instant,
}

impl Every {
    fn new(period: Duration) -> Self {
        Every {
            period,
            last: Instant::now(),
        }
    }

    /// True (and the period starts over) when a period has passed since the last time.
    fn due(&mut self, now: Instant) -> bool {
        if now.duration_since(self.last) < self.period {
            return false;
        }
        self.last = now;
        true
    }
}

/// Where startup stands: logged once, as the time from the first group join (recovery included)
/// to the first record consumed, the figure `scripts/bench.sh` reports.
enum Startup {
    WaitingForJoin,
    Joined(Instant),
    Done,
}

/// This run's share of `partitions_assigned`, which every task of a worker job adds to (the
/// metrics are the job's): changed by differences, and given back when the run ends.
struct AssignedGauge {
    metrics: Arc<Metrics>,
    owned: u64,
}

impl AssignedGauge {
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

impl Drop for AssignedGauge {
    fn drop(&mut self) {
        self.set(0);
    }
}

impl<'a> Router<'a> {
    pub fn new(
        consumer: &'a BaseConsumer<IngestContext>,
        ctx: &'a SinkContext,
        workers: Vec<SyncSender<Command>>,
        events: Receiver<Event>,
        spent: Receiver<RecordBuffer>,
        end_check: Option<&'a BaseConsumer<AuthContext>>,
    ) -> Self {
        Router {
            consumer,
            ctx,
            workers,
            events,
            spent,
            owned: HashMap::default(),
            unsent_since: None,
            assigned_gauge: AssignedGauge {
                metrics: ctx.metrics.clone(),
                owned: 0,
            },
            lag_gauge: LagGauge::new(ctx.metrics.clone()),
            startup: Startup::WaitingForJoin,
            end_check,
            assigned_once: false,
        }
    }

    /// Polls and routes until stopped, failed, or (with an end check) caught up; then has every
    /// worker commit what is open.
    pub fn run(&mut self, options: &IngestOptions) -> Result<(), IngestError> {
        // Revocations are unassigned here, once the workers let go ([`Router::revoke`]); before
        // and after this run the rebalance callback unassigns by itself.
        let context = self.consumer.context();
        context.set_router_unassigns(true);
        let result = self.route_until_done(options);
        context.set_router_unassigns(false);
        result
    }

    fn route_until_done(&mut self, options: &IngestOptions) -> Result<(), IngestError> {
        let mut periodic = Every::new(END_CHECK);
        let mut routed_since_chores = 0;
        loop {
            if options.shutdown.load(Ordering::Relaxed) {
                return self.finish(RotateReason::Shutdown);
            }
            let routed = self.poll_once()?;
            // Between records the chores wait for a few more: each reads the clock.
            routed_since_chores += usize::from(routed);
            if routed && routed_since_chores < CHORES_EVERY {
                continue;
            }
            routed_since_chores = 0;
            if self.chores(&mut periodic)? {
                return self.finish(RotateReason::EndOfInput);
            }
        }
    }

    /// One poll: a record routed (true), or an event handled, or nothing within [`POLL`].
    fn poll_once(&mut self) -> Result<bool, IngestError> {
        let polled = self.consumer.poll(POLL);
        self.assigned_once |= self.apply_rebalance_events()?;
        match polled {
            None => self.send_all_chunks()?,
            Some(Ok(msg)) => {
                self.route(&msg)?;
                return Ok(true);
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                // The event carries no topic: every topic's partition of that number.
                for m in self.owned.values_mut() {
                    if let Some(o) = m.get_mut(&partition) {
                        o.eof_hint = true;
                    }
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
        }
        Ok(false)
    }

    /// What the consumer thread does besides routing: lingering chunks sent, worker events
    /// applied, and when `periodic` is due the lag gauge updated and (with an end check) the end
    /// of input checked. True when the input is consumed to its end.
    fn chores(&mut self, periodic: &mut Every) -> Result<bool, IngestError> {
        let now = Instant::now();
        if self
            .unsent_since
            .is_some_and(|t| now.duration_since(t) >= CHUNK_LINGER)
        {
            self.send_all_chunks()?;
        }
        self.apply_worker_events()?;
        if !periodic.due(now) {
            return Ok(false);
        }
        // Statistics come once a second: not worth a lock per polled record.
        self.update_lag();
        match self.end_check {
            Some(watermarks) if self.assigned_once => Ok(self.caught_up(watermarks)),
            _ => Ok(false),
        }
    }

    /// Copies one record into its partition's chunk.
    fn route<M: Message>(&mut self, msg: &M) -> Result<(), IngestError> {
        let Some(o) = self
            .owned
            .get_mut(msg.topic())
            .and_then(|m| m.get_mut(&msg.partition()))
        else {
            return Ok(());
        };
        if let Startup::Joined(joined) = self.startup {
            tracing::info!(
                after_join_ms = joined.elapsed().as_millis() as u64,
                "first record consumed"
            );
            self.startup = Startup::Done;
        }
        let payload = msg.payload();
        Metrics::add(&self.ctx.metrics.records_consumed, 1);
        Metrics::add(
            &self.ctx.metrics.bytes_consumed,
            payload.map_or(0, |p| p.len() as u64),
        );
        o.eof_hint = false;
        if !o.resumed {
            o.resumed = true;
            check_resume_gap(self.consumer, &self.ctx.metrics, o, msg.offset());
        }
        o.expected = Some(msg.offset() + 1);
        o.chunk.push(
            msg.offset(),
            msg.timestamp().to_millis().unwrap_or(-1),
            msg.key(),
            payload,
            || headers_of(msg),
        );
        self.unsent_since.get_or_insert_with(Instant::now);
        if o.chunk.len() >= self.ctx.config.decode_batch_records
            || o.chunk.byte_size() >= CHUNK_BYTES
        {
            let (topic, partition) = (o.tp.0.clone(), o.tp.1);
            self.send_chunk(&topic, partition)?;
        }
        Ok(())
    }

    fn send_chunk(&mut self, topic: &str, partition: i32) -> Result<(), IngestError> {
        let fresh = self.fresh_chunk();
        let Some(o) = self
            .owned
            .get_mut(topic)
            .and_then(|m| m.get_mut(&partition))
        else {
            return Ok(());
        };
        if o.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut o.chunk, fresh);
        let (worker, tp) = (o.worker, o.tp.clone());
        let queued = Queued::new(chunk, &self.ctx.memory);
        self.send(worker, Command::Records(tp, queued))
    }

    fn send_all_chunks(&mut self) -> Result<(), IngestError> {
        let pending: Vec<(Arc<str>, i32)> = self
            .owned
            .values()
            .flat_map(|m| m.values())
            .filter(|o| !o.chunk.is_empty())
            .map(|o| o.tp.clone())
            .collect();
        for (topic, partition) in pending {
            self.send_chunk(&topic, partition)?;
        }
        self.unsent_since = None;
        Ok(())
    }

    /// An emptied chunk handed back by a worker, or a new one.
    fn fresh_chunk(&self) -> RecordBuffer {
        self.spent
            .try_recv()
            .unwrap_or_else(|_| RecordBuffer::new(self.ctx.keep_keys(), self.ctx.keep_headers()))
    }

    /// Sets the consumer lag of the owned partitions when new statistics came.
    fn update_lag(&mut self) {
        let Some(offsets) = self.consumer.context().take_offsets() else {
            return;
        };
        let owned = self
            .owned
            .values()
            .flat_map(|m| m.values())
            .map(|o| (&*o.tp.0, o.tp.1, o.expected, o.fenced));
        self.lag_gauge
            .update(&offsets, owned, self.ctx.config.start_from);
    }

    /// Sends to a worker, waiting while its queue is full. A worker that is gone has failed:
    /// its event says why.
    fn send(&mut self, worker: usize, command: Command) -> Result<(), IngestError> {
        if self.workers[worker].send(command).is_ok() {
            return Ok(());
        }
        Err(self.worker_failure())
    }

    /// Why a worker stopped: its `Failed` event, which it sends just after it drops its end of
    /// the channels.
    fn worker_failure(&mut self) -> IngestError {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Failed(e)) => return e,
                Ok(_) => {}
                Err(_) => return IngestError::WorkerGone,
            }
        }
    }

    /// Gives new partitions to their workers (recovered from the store by the consumer context)
    /// and takes revoked ones away. True when something was assigned.
    fn apply_rebalance_events(&mut self) -> Result<bool, IngestError> {
        let mut assigned = false;
        for event in self.consumer.context().take_events() {
            match event {
                RebalanceEvent::Assigned(list, joined) => {
                    assigned |= !list.is_empty();
                    if matches!(self.startup, Startup::WaitingForJoin) && !list.is_empty() {
                        self.startup = Startup::Joined(joined);
                    }
                    for (topic, partition, recovered) in list {
                        self.assign(Arc::from(topic), partition, recovered)?;
                    }
                }
                RebalanceEvent::Revoked(list, unassign) => {
                    self.revoke(list)?;
                    if let Some(tpl) = unassign {
                        crate::source::unassign(self.consumer, &tpl);
                    }
                }
                RebalanceEvent::Failed(e) => return Err(e.into()),
            }
            let owned = self.owned.values().map(HashMap::len).sum::<usize>() as u64;
            self.assigned_gauge.set(owned);
        }
        Ok(assigned)
    }

    /// Takes revoked partitions from their workers: the ownership is given up first (queued
    /// chunks are dropped, no new commit starts), then each worker answers the revoke once any
    /// commit under way has ended, and the advisory Kafka commits of what they committed go out
    /// while the partitions are still assigned. Only then may librdkafka unassign them.
    fn revoke(&mut self, list: Vec<(String, i32)>) -> Result<(), IngestError> {
        let mut answers = Vec::new();
        for (topic, partition) in &list {
            let Some(o) = self
                .owned
                .get(topic.as_str())
                .and_then(|m| m.get(partition))
            else {
                continue;
            };
            o.ownership.give_up();
            let (worker, tp) = (o.worker, o.tp.clone());
            let (done, answer) = std::sync::mpsc::sync_channel(1);
            self.send(worker, Command::Revoke(tp, done))?;
            answers.push(answer);
        }
        for answer in answers {
            if answer.recv().is_err() {
                self.apply_worker_events()?;
                return Err(self.worker_failure());
            }
        }
        self.apply_worker_events()?;
        for (topic, partition) in list {
            if let Some(m) = self.owned.get_mut(topic.as_str()) {
                m.remove(&partition);
            }
            self.lag_gauge.forget(&(topic, partition));
        }
        Ok(())
    }

    fn assign(
        &mut self,
        topic: Arc<str>,
        partition: i32,
        recovered: Recovered,
    ) -> Result<(), IngestError> {
        let worker = worker_for(&topic, partition, self.workers.len());
        let tp: TopicPartition = (topic.clone(), partition);
        let ownership = Ownership::new();
        let o = Owned {
            tp: tp.clone(),
            worker,
            ownership: ownership.clone(),
            chunk: self.fresh_chunk(),
            expected: recovered.next_offset,
            resumed: false,
            fenced: false,
            eof_hint: false,
        };
        self.owned.entry(topic).or_default().insert(partition, o);
        self.send(worker, Command::Assign(tp, recovered, ownership))
    }

    /// Commits, fences, fenced partitions ready to resume and failures reported by the workers.
    fn apply_worker_events(&mut self) -> Result<(), IngestError> {
        while let Ok(event) = self.events.try_recv() {
            match event {
                Event::Committed((topic, partition), end) => {
                    if !self.owns(&topic, partition) {
                        continue; // another member owns it now; its offsets are not ours to set
                    }
                    let mut tpl = TopicPartitionList::new();
                    let _ = tpl.add_partition_offset(&topic, partition, Offset::Offset(end + 1));
                    if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                        tracing::debug!(error = %e, "Kafka offset commit failed (advisory only)");
                    }
                }
                Event::Fenced(tp) => self.pause_fenced(&tp),
                Event::Resume(tp) => self.resume_fenced(&tp)?,
                Event::Failed(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn owns(&self, topic: &str, partition: i32) -> bool {
        self.owned
            .get(topic)
            .is_some_and(|m| m.contains_key(&partition))
    }

    fn pause_fenced(&mut self, (topic, partition): &TopicPartition) {
        let Some(o) = self
            .owned
            .get_mut(&**topic)
            .and_then(|m| m.get_mut(partition))
        else {
            return;
        };
        o.fenced = true;
        o.chunk.clear();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, *partition);
        if let Err(e) = self.consumer.pause(&tpl) {
            tracing::warn!(error = %e, %topic, partition, "pause failed");
        }
    }

    /// Recovers a fenced partition from the store, moves the consumer there, resumes it, and has
    /// its worker start over from there.
    fn resume_fenced(&mut self, tp: &TopicPartition) -> Result<(), IngestError> {
        let (topic, partition) = (&*tp.0, tp.1);
        if !self.owns(topic, partition) {
            return Ok(());
        }
        let recovered = self.consumer.context().recover(topic, partition)?;
        let offset = self.consumer.context().start_offset(&recovered);
        self.consumer
            .seek(topic, partition, offset, Duration::from_secs(10))
            .map_err(SourceError::Consumer)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        self.consumer.resume(&tpl).map_err(SourceError::Consumer)?;
        let worker = match self
            .owned
            .get_mut(topic)
            .and_then(|m| m.get_mut(&partition))
        {
            Some(o) => {
                o.fenced = false;
                o.expected = recovered.next_offset;
                o.resumed = false;
                o.chunk.clear();
                o.worker
            }
            None => return Ok(()),
        };
        tracing::info!(%topic, partition, ?offset, "resumed a fenced partition from the store");
        self.send(worker, Command::Reset(tp.clone(), recovered))
    }

    /// Sends what is routed, has every worker commit what is open, and waits for them.
    fn finish(&mut self, reason: RotateReason) -> Result<(), IngestError> {
        self.send_all_chunks()?;
        let mut answers = Vec::with_capacity(self.workers.len());
        for worker in 0..self.workers.len() {
            let (done, answer) = std::sync::mpsc::sync_channel(1);
            self.send(worker, Command::RotateAll(reason, done))?;
            answers.push(answer);
        }
        for answer in answers {
            if answer.recv().is_err() {
                // The worker stopped without answering: it failed.
                self.apply_worker_events()?;
                return Err(self.worker_failure());
            }
        }
        self.apply_worker_events()
    }

    /// True when every owned partition has been read to its end. Runs the per-partition checks
    /// (a watermark request each) only once every partition has had an end event.
    fn caught_up(&mut self, watermarks: &BaseConsumer<AuthContext>) -> bool {
        let start_from = self.ctx.config.start_from;
        let consumer = self.consumer;
        let all: Vec<&mut Owned> = self
            .owned
            .values_mut()
            .flat_map(|m| m.values_mut())
            .collect();
        if all.is_empty() || all.iter().any(|o| !o.eof_hint) {
            return false;
        }
        let positions = consumer.position().ok();
        for o in all {
            match partition_at_end(watermarks, positions.as_ref(), start_from, o) {
                Ok(true) => {}
                Ok(false) => {
                    // Records are still to come; their end event sets the hint again.
                    o.eof_hint = false;
                    return false;
                }
                Err(e) => {
                    // Keep the hint (no second end event comes for the same offset).
                    tracing::debug!(topic = %o.tp.0, partition = o.tp.1, error = %e, "watermarks unavailable; checking the end again later");
                    return false;
                }
            }
        }
        true
    }
}

/// The worker of a partition: fixed by (topic, partition), so a partition revoked and assigned
/// again goes to the same worker, after its revocation.
fn worker_for(topic: &str, partition: i32, workers: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    topic.hash(&mut h);
    (h.finish() as usize).wrapping_add(partition as usize) % workers.max(1)
}

/// Whether this process has consumed the partition up to its high watermark (the last stable
/// offset under `read_committed`, like the end events).
///
/// The next offset is the consumer's position (librdkafka moves it past transaction markers and
/// aborted records, which are never routed) or the next offset routed (from the store's resume
/// point on), whichever is further. With neither known nothing was consumed since the
/// assignment: the partition is at its end when it is empty, or when it started at the end
/// (`consumer.auto.offset.reset=latest` and no commit yet). A fenced partition is done: another
/// process owns it.
fn partition_at_end(
    watermarks: &BaseConsumer<AuthContext>,
    positions: Option<&TopicPartitionList>,
    start_from: StartFrom,
    o: &Owned,
) -> Result<bool, KafkaError> {
    if o.fenced {
        return Ok(true);
    }
    let (topic, partition) = (&*o.tp.0, o.tp.1);
    let position = positions
        .and_then(|l| l.find_partition(topic, partition))
        .and_then(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        });
    let next = position.max(o.expected);
    let (low, high) = watermarks.fetch_watermarks(topic, partition, WATERMARK_TIMEOUT)?;
    Ok(match next {
        Some(next) => next >= high,
        None => low >= high || start_from == StartFrom::Latest,
    })
}

/// The first record after a partition resumed where the store said. Offsets skipped before it
/// are normal when they held control records (transaction markers) or were compacted away; below
/// the partition's log start offset they were deleted by retention before this job read them.
/// Those cannot be written: they are counted and logged, once per resumption.
fn check_resume_gap<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    metrics: &Metrics,
    o: &Owned,
    first: i64,
) {
    let Some(resume_at) = o.expected.filter(|&r| first > r) else {
        return;
    };
    let (topic, partition) = (&*o.tp.0, o.tp.1);
    let log_start = match consumer.fetch_watermarks(topic, partition, WATERMARK_TIMEOUT) {
        Ok((low, _)) => low,
        Err(e) => {
            tracing::warn!(%topic, partition, from = resume_at, to = first - 1, error = %e, "offsets skipped at resumption (retention, compaction or transaction markers: the log start offset is unavailable to tell)");
            return;
        }
    };
    let Some(deleted) = deleted_before_read(resume_at, first, log_start) else {
        tracing::debug!(%topic, partition, from = resume_at, to = first - 1, "offsets skipped at resumption (compaction or transaction markers)");
        return;
    };
    let (deleted_to, missing) = (deleted.end, (deleted.end - deleted.start) as u64);
    Metrics::add(&metrics.offsets_skipped_at_resume, missing);
    tracing::warn!(%topic, partition, from = resume_at, to = deleted_to - 1, missing, log_start, "the broker deleted these offsets (retention) before this job read them; they cannot be written. Resuming at the first offset it has");
}

/// The offsets retention deleted before they were read: from the resume point up to the log
/// start offset (or the first record delivered, if that is lower); `None` when the gap lies
/// above the log start (transaction markers, compaction) or there is none.
fn deleted_before_read(resume_at: i64, first: i64, log_start: i64) -> Option<std::ops::Range<i64>> {
    let deleted_to = log_start.min(first);
    (deleted_to > resume_at).then_some(resume_at..deleted_to)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_below_the_log_start_is_counted_as_deleted_by_retention() {
        // Resumed at 100; the broker's log starts at 150 and delivers 150 first.
        assert_eq!(deleted_before_read(100, 150, 150), Some(100..150));
        // Log start 150 but the first record delivered is 120 (a stale start offset): only
        // what lies below the first record is gone.
        assert_eq!(deleted_before_read(100, 120, 150), Some(100..120));
        // A transaction marker or a compacted-away record at the resume point: no retention.
        assert_eq!(deleted_before_read(100, 101, 0), None);
        assert_eq!(deleted_before_read(100, 180, 90), None);
        // No gap.
        assert_eq!(deleted_before_read(100, 100, 150), None);
    }

    #[test]
    fn partitions_of_a_topic_spread_over_the_workers() {
        let mut per_worker = [0; 2];
        for p in 0..4 {
            per_worker[worker_for("t", p, 2)] += 1;
        }
        assert_eq!(per_worker, [2, 2]);
        assert_eq!(worker_for("t", 3, 1), 0);
    }
}
