//! The per-partition committer (group commit, issue 26): store round trips overlap with
//! decoding and encoding, and a partition's commit chain stays in order.
//!
//! ```text
//!  worker thread (PartitionWriter, decode/encode)        I/O runtime (one task per partition)
//!  ─────────────────────────────────────────────         ─────────────────────────────────────
//!  spill / seal: finish file ──upload(file)──► channel ──► spawn: stage file under seq `next`
//!                                                          (uploads run at once; the file's
//!                                                           bytes stay in the memory budget
//!                                                           until its upload ends)
//!  rotate: seal(start..=end) ───────────────► channel ──► batch of `next` += seal
//!      │ (returns at once; blocks only while                 │ no commit in flight and a seal
//!      │  MAX_UNCOMMITTED_SEALS seals or                     ▼ in the batch:
//!      │  MAX_PENDING_FILES files are pending)        commit `next` = every file and seal of the
//!      │                                              batch (start of the first seal ..= end of
//!      ▼                                              the last); `next` += 1, so files sealed
//!  take(): Through { end } / Fenced / error           meanwhile are staged under `next` and go
//!      (polled after every chunk and tick)            into the NEXT record together
//!                                                        │ wait for the batch's uploads
//!                                                        │ stop asked? ──► abandon (no create)
//!                                                        │ CommitLog::commit: create record,
//!                                                        ▼ publish, prune (in line, in order)
//!                                                     Through { end } ──► status
//! ```
//!
//! Ordering: one commit at a time per partition; commit k+1's record is created only after
//! commit k's record is created and published (recovery replays only the newest commit, see
//! [`crate::commit`]). Only uploads to staging keys (invisible to readers) run ahead. A file is
//! staged under the sequence number of the commit it will be named in: `next` is advanced when a
//! commit starts, and uploads and commit starts are decided by the one task in order, so the
//! store-wide sweep's rules (a staged file of seq < newest commit is an orphan) keep holding.
//!
//! Stopping: [`Committer::close`] (revocation, reset, worker exit) asks the task to stop and
//! waits for it: a commit whose create has not started is abandoned (the store's chain is the
//! truth; the next owner reads those records again), one whose create is under way is waited
//! for. So no commit is made after `close` returns. [`Committer::flush`] (end of input,
//! shutdown) waits until every seal is committed. A fence (another writer created the record)
//! or a store error ends the task; the writer learns it from [`Committer::take`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::memory::Accounted;
use super::rotation::RotateReason;
use super::{commit_info, count_commit, CommitListener, SinkContext};
use crate::commit::{CommitError, CommitLog, CommitOutcome, CommittedFile, PendingFile};
use crate::metrics::Metrics;

/// Seals (rotations) a partition may have handed over and not yet seen committed before its
/// writer waits: how far consumption runs ahead of the store.
pub const MAX_UNCOMMITTED_SEALS: usize = 16;

/// Files a partition may have handed over and not yet seen committed before its writer waits.
pub const MAX_PENDING_FILES: usize = 64;

/// One rotation's offsets, handed to the committer after its files.
pub struct Seal {
    pub start: i64,
    pub end: i64,
    pub reason: RotateReason,
    pub partition_columns: Vec<Option<String>>,
    pub schema: Option<SchemaRef>,
}

enum Job {
    File { file: PendingFile, held: Accounted },
    Seal(Seal),
}

/// What happened since the writer last asked.
pub enum Taken {
    Nothing,
    Through { end: i64, seq: u64 },
    Fenced,
    Failed(CommitError),
}

#[derive(Default)]
struct Status {
    /// Files handed over, not yet committed.
    files: usize,
    /// Seals handed over, not yet committed.
    seals: usize,
    /// Uploads under way.
    uploading: usize,
    /// Newest end offset and seq committed and not yet taken.
    through: Option<(i64, u64)>,
    fenced: bool,
    failed: Option<CommitError>,
    ended: bool,
}

struct Shared {
    status: Mutex<Status>,
    changed: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    /// Blocks the calling (worker) thread until `done` holds or the task ended.
    fn wait(&self, done: impl Fn(&Status) -> bool) {
        let mut status = self.lock();
        while !status.ended && !done(&status) {
            status = self.changed.wait(status).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// What the task needs from the sink's context.
#[derive(Clone)]
struct Env {
    log: CommitLog,
    metrics: Arc<Metrics>,
    listener: Option<Arc<dyn CommitListener>>,
    topics_dir: String,
    topic: String,
    partition: i32,
    /// A commit never names a file staged longer ago than this (3/4 of staging.cleanup.age.ms).
    stale_after: Duration,
}

/// The handle a writer holds on its partition's committer task.
pub struct Committer {
    tx: Option<mpsc::UnboundedSender<Job>>,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
    runtime: tokio::runtime::Handle,
}

impl Committer {
    /// Starts the committer of a partition whose next commit takes `next_seq`.
    pub fn start(ctx: &SinkContext, topic: &str, partition: i32, next_seq: u64) -> Self {
        let env = Env {
            log: ctx.commit_log.clone(),
            metrics: ctx.metrics.clone(),
            listener: ctx.listener.clone(),
            topics_dir: ctx.config.topics_dir.clone(),
            topic: topic.to_string(),
            partition,
            stale_after: ctx.config.staging_cleanup_age * 3 / 4,
        };
        let shared = Arc::new(Shared {
            status: Mutex::new(Status::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let task = ctx.runtime.spawn(run(env, shared.clone(), rx, next_seq));
        Committer {
            tx: Some(tx),
            shared,
            task: Some(task),
            runtime: ctx.runtime.clone(),
        }
    }

    /// Uploads a finished file to the staging area of the next commit that starts; `held`
    /// keeps its bytes in the memory budget until the upload ends. Blocks while too many files
    /// are pending and a commit that will take them is on its way (spilled files without a seal
    /// behind them wait for the writer's next rotation, so it must not block on them).
    pub fn upload(&self, file: PendingFile, held: Accounted) {
        self.shared
            .wait(|s| s.files < MAX_PENDING_FILES || s.seals == 0);
        self.shared.update(|s| {
            s.files += 1;
            s.uploading += 1;
        });
        self.send(Job::File { file, held });
    }

    /// Hands over the offsets of one rotation (its files were uploaded before). Blocks while too
    /// many seals are uncommitted.
    pub fn seal(&self, seal: Seal) {
        self.shared.wait(|s| s.seals < MAX_UNCOMMITTED_SEALS);
        self.shared.update(|s| s.seals += 1);
        self.send(Job::Seal(seal));
    }

    fn send(&self, job: Job) {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if !sent {
            // The task ended (fence or error, reported by `take`): nothing more is committed.
            self.shared.update(|s| s.ended = true);
        }
    }

    /// What was committed, fenced or failed since the last call (a fence or failure first).
    pub fn take(&self) -> Taken {
        let mut s = self.shared.lock();
        if let Some(e) = s.failed.take() {
            return Taken::Failed(e);
        }
        if s.fenced {
            return Taken::Fenced;
        }
        match s.through.take() {
            Some((end, seq)) => Taken::Through { end, seq },
            None => Taken::Nothing,
        }
    }

    /// Waits until every seal handed over is committed (or the task ended).
    pub fn flush(&self) {
        self.shared.wait(|s| s.seals == 0);
    }

    /// Waits until no upload is under way (their files no longer hold memory).
    pub fn wait_uploads(&self) {
        self.shared.wait(|s| s.uploading == 0);
    }

    /// Whether uploads are under way.
    pub fn uploading(&self) -> bool {
        self.shared.lock().uploading > 0
    }

    /// Stops the task and waits for it: commits not yet created are abandoned, one being
    /// created is waited for. No commit of this committer is made after this returns.
    pub fn close(mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.tx = None;
        if let Some(task) = self.task.take() {
            let _ = self.runtime.block_on(task);
        }
    }
}

impl Drop for Committer {
    /// Without [`Committer::close`]: asks the task to stop, without waiting.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

/// Files and seals of the next commit.
#[derive(Default)]
struct Batch {
    files: Vec<(JoinHandle<Result<CommittedFile, CommitError>>, Instant)>,
    seals: Vec<Seal>,
}

enum Done {
    Committed {
        end: i64,
        seq: u64,
        files: usize,
        seals: usize,
    },
    Abandoned,
    Fenced,
}

async fn run(env: Env, shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Job>, seq: u64) {
    let mut next = seq;
    let mut batch = Batch::default();
    let mut current: Option<JoinHandle<Result<Done, CommitError>>> = None;
    let mut open = true;
    loop {
        let stop = shared.stop.load(Ordering::SeqCst);
        if current.is_none() && !batch.seals.is_empty() && !stop {
            let work = std::mem::take(&mut batch);
            current = Some(tokio::spawn(commit(
                env.clone(),
                shared.clone(),
                next,
                work,
            )));
            next += 1;
        }
        if current.is_none() && (!open || stop) {
            break;
        }
        tokio::select! {
            job = rx.recv(), if open => match job {
                None => open = false,
                Some(Job::File { file, held }) => {
                    let upload = upload(env.clone(), shared.clone(), next, file, held);
                    batch.files.push((tokio::spawn(upload), Instant::now()));
                }
                Some(Job::Seal(seal)) => batch.seals.push(seal),
            },
            done = async { current.as_mut().expect("guarded").await }, if current.is_some() => {
                current = None;
                let done = done.unwrap_or_else(|e| Err(join_failed(&env, e)));
                if !finished(&shared, done) {
                    break;
                }
            }
        }
    }
    for (upload, _) in batch.files {
        upload.abort();
    }
    shared.update(|s| s.ended = true);
}

/// Records a commit's result; false when the task must end.
fn finished(shared: &Shared, done: Result<Done, CommitError>) -> bool {
    match done {
        Ok(Done::Committed {
            end,
            seq,
            files,
            seals,
        }) => {
            shared.update(|s| {
                s.files -= files;
                s.seals -= seals;
                s.through = Some((end, seq));
            });
            true
        }
        Ok(Done::Abandoned) => false,
        Ok(Done::Fenced) => {
            shared.update(|s| s.fenced = true);
            false
        }
        Err(e) => {
            shared.update(|s| s.failed = Some(e));
            false
        }
    }
}

fn join_failed(env: &Env, e: tokio::task::JoinError) -> CommitError {
    CommitError::Corrupt {
        path: format!("{}/{}", env.topic, env.partition),
        message: format!("the commit task of the partition ended abnormally: {e}"),
    }
}

async fn upload(
    env: Env,
    shared: Arc<Shared>,
    seq: u64,
    file: PendingFile,
    held: Accounted,
) -> Result<CommittedFile, CommitError> {
    let staged = env.log.stage(&env.topic, env.partition, seq, file).await;
    drop(held);
    shared.update(|s| s.uploading -= 1);
    staged
}

/// Commit `seq` of a batch: waits for its uploads, then creates, publishes and prunes.
async fn commit(
    env: Env,
    shared: Arc<Shared>,
    seq: u64,
    batch: Batch,
) -> Result<Done, CommitError> {
    let (files, seals) = (batch.files.len(), batch.seals.len());
    let mut staged = Vec::with_capacity(files);
    let mut oldest: Option<Instant> = None;
    for (upload, at) in batch.files {
        staged.push(upload.await.map_err(|e| join_failed(&env, e))??);
        oldest = Some(oldest.map_or(at, |o| o.min(at)));
    }
    if shared.stop.load(Ordering::SeqCst) {
        return Ok(Done::Abandoned);
    }
    let (topic, partition) = (&env.topic, env.partition);
    if oldest.is_some_and(|t| t.elapsed() >= env.stale_after) {
        tracing::warn!(%topic, partition, files, "files staged for this commit are older than 3/4 of staging.cleanup.age.ms (was the process stalled?); giving the commit up and recovering the partition from the store");
        env.log.discard_files(&staged).await;
        Metrics::add(&env.metrics.commits_fenced, 1);
        return Ok(Done::Fenced);
    }
    let (first, last) = (&batch.seals[0], &batch.seals[seals - 1]);
    let (start, end) = (first.start, last.end);
    // Like the in-line commit's latency: from the staging of its (first) file to its record.
    let began = oldest.unwrap_or_else(Instant::now);
    let outcome = env
        .log
        .commit(topic, partition, seq, start, end, Vec::new(), staged)
        .await?;
    match outcome {
        CommitOutcome::Committed(record) => {
            tracing::debug!(%topic, partition, seq, start, end, reason = ?last.reason, files = record.files.len(), seals, "committed");
            let rows = record.files.iter().map(|f| f.rows).sum();
            count_commit(&env.metrics, &record, rows, began.elapsed());
            if let Some(listener) = &env.listener {
                let columns = last.partition_columns.clone();
                let info = commit_info(&env.topics_dir, &record, columns, last.schema.clone());
                listener.committed(info);
            }
            Ok(Done::Committed {
                end,
                seq,
                files,
                seals,
            })
        }
        CommitOutcome::Fenced { seq } => {
            tracing::warn!(%topic, partition, seq, "another writer committed this sequence first; this process stops writing the partition and discards what it buffered");
            Metrics::add(&env.metrics.commits_fenced, 1);
            Ok(Done::Fenced)
        }
    }
}
