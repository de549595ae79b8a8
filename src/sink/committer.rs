//! The per-partition committer (group commit, issue 26): store round trips overlap with
//! decoding and encoding, and a partition's commit chain stays in order.
//!
//! ```text
//!  worker thread (PartitionWriter, decode/encode)        I/O runtime (one task per partition)
//!  ─────────────────────────────────────────────         ─────────────────────────────────────
//!  spill: finish file ──────upload(file)────► channel ──► batch: the last one, or a new one
//!                                                          (seq + 1) if the last is sealed
//!  rotate: finish files, seal(start..=end,  ─► channel ──► last batch += files + seal
//!          files)  (returns at once; blocks                 every file: spawn its upload,
//!          while 16 seals / 64 files wait)                  staged under its batch's seq (its
//!      │                                                    bytes stay in the memory budget
//!      │                                                    until the upload ends)
//!      │                                                 no commit in flight, first batch sealed:
//!      ▼                                                 commit seq = that batch (start of its
//!  take(): Through { end } / Fenced / error              first seal ..= end of its last), so
//!      (polled after every chunk and tick)               what was sealed during a commit goes
//!                                                        into the NEXT record together
//!                                                           │ wait for the batch's uploads
//!                                                           │ stop asked? ──► abandon (no create)
//!                                                           │ CommitLog::commit: create record,
//!                                                           ▼ publish + prune (in line, in order)
//!                                                        Through { end } ──► status
//! ```
//!
//! Ordering: one commit at a time per partition; commit k+1's record is created only after
//! commit k's record is created and published (recovery replays only the newest commit, see
//! [`crate::commit`]). Only uploads to staging keys (invisible to readers) run ahead. A file is
//! staged under the sequence number of the commit it will be named in (its batch's): every file
//! of a batch lies before the batch's last seal (a rotation's files come in one message with its
//! seal; a file spilled after a sealed batch opens the next batch), and one batch is one commit,
//! so the store-wide sweep's rules (a staged file of seq < newest commit is an orphan) hold.
//!
//! Stopping: [`Committer::close`] (revocation, reset, worker exit) asks the task to stop and
//! waits for it: a commit whose create has not started is abandoned (the store's chain is the
//! truth; the next owner reads those records again), one whose create is under way is waited
//! for. So no commit is made after `close` returns. [`Committer::flush`] (end of input,
//! shutdown) waits until every seal is committed. A fence (another writer created the record)
//! or a store error ends the task; the writer learns it from [`Committer::take`].

use std::collections::VecDeque;
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

/// A finished file with its bytes held in the memory budget until its upload ends.
pub type Sealed = (PendingFile, Accounted);

enum Job {
    /// A file spilled into the open range, ahead of its seal.
    File(Sealed),
    /// A rotation: its last files and its offsets, together, so that no commit can start
    /// between them.
    Seal(Seal, Vec<Sealed>),
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
        self.send(Job::File((file, held)));
    }

    /// Hands over the offsets of one rotation with its last files (files spilled into its range
    /// were handed over before by [`Committer::upload`]). Blocks while too many seals are
    /// uncommitted.
    pub fn seal(&self, seal: Seal, files: Vec<Sealed>) {
        self.shared.wait(|s| s.seals < MAX_UNCOMMITTED_SEALS);
        self.shared.update(|s| {
            s.seals += 1;
            s.files += files.len();
            s.uploading += files.len();
        });
        self.send(Job::Seal(seal, files));
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

/// Files and seals of one commit to come, `seq`. Every file precedes the last seal of its
/// batch (it lies in the batch's range); a file spilled after a batch's last seal opens the
/// next batch, `seq + 1`, since it belongs to a range not sealed yet. So a file staged under
/// seq s is named by commit s or by none.
struct Batch {
    seq: u64,
    files: Vec<(JoinHandle<Result<CommittedFile, CommitError>>, Instant)>,
    seals: Vec<Seal>,
}

impl Batch {
    fn new(seq: u64) -> Self {
        Batch {
            seq,
            files: Vec::new(),
            seals: Vec::new(),
        }
    }

    /// Starts the upload of a file of this batch, staged under its seq.
    fn upload(&mut self, env: &Env, shared: &Arc<Shared>, (file, held): Sealed) {
        let upload = upload(env.clone(), shared.clone(), self.seq, file, held);
        self.files.push((tokio::spawn(upload), Instant::now()));
    }
}

/// The batch a job joins: the last one, or a new one after it when a spilled file follows the
/// last batch's seal. `next` is the seq of the next commit to start.
fn batch_for(batches: &mut VecDeque<Batch>, next: u64, spill: bool) -> &mut Batch {
    let seq = match batches.back() {
        None => Some(next),
        Some(last) if spill && !last.seals.is_empty() => Some(last.seq + 1),
        Some(_) => None,
    };
    if let Some(seq) = seq {
        batches.push_back(Batch::new(seq));
    }
    batches.back_mut().expect("a batch")
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
    let mut batches: VecDeque<Batch> = VecDeque::new();
    let mut current: Option<JoinHandle<Result<Done, CommitError>>> = None;
    let mut open = true;
    loop {
        let stop = shared.stop.load(Ordering::SeqCst);
        let ready = batches.front().is_some_and(|b| !b.seals.is_empty());
        if current.is_none() && ready && !stop {
            let work = batches.pop_front().expect("ready");
            next = work.seq + 1;
            current = Some(tokio::spawn(commit(env.clone(), shared.clone(), work)));
        }
        if current.is_none() && (!open || stop) {
            break;
        }
        tokio::select! {
            job = rx.recv(), if open => match job {
                None => open = false,
                Some(Job::File(file)) => {
                    batch_for(&mut batches, next, true).upload(&env, &shared, file);
                }
                Some(Job::Seal(seal, files)) => {
                    let batch = batch_for(&mut batches, next, false);
                    for file in files {
                        batch.upload(&env, &shared, file);
                    }
                    batch.seals.push(seal);
                }
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
    for (upload, _) in batches.into_iter().flat_map(|b| b.files) {
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
async fn commit(env: Env, shared: Arc<Shared>, batch: Batch) -> Result<Done, CommitError> {
    let seq = batch.seq;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::CommitLog;
    use crate::sink::testing::context;
    use crate::store::{delayed::DelayedStore, Store};

    fn file(first: i64, last: i64) -> PendingFile {
        PendingFile {
            final_path: format!("topics/t/partition=0/t+0+{first}+{last}.json"),
            data: bytes::Bytes::from_static(b"{}\n"),
            rows: (last - first + 1) as u64,
            first_offset: first,
            last_offset: last,
        }
    }

    fn seal(start: i64, end: i64) -> Seal {
        Seal {
            start,
            end,
            reason: RotateReason::FlushSize,
            partition_columns: Vec::new(),
            schema: None,
        }
    }

    /// A file spilled after a seal while the commit before it is in flight belongs to the range
    /// after that seal: it goes into the commit of that range, staged under that commit's seq.
    /// Found by tests/kill_restart.rs's chain check ("a file of commit 32 lies outside its
    /// range"): the spilled file joined the batch of the seal before it.
    #[test]
    fn a_file_spilled_after_a_seal_goes_into_the_commit_of_its_own_range() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = context(dir.path(), &runtime, &[]);
        let local = ctx.commit_log.store().clone();
        let delayed = DelayedStore::new(local.inner.clone(), Duration::from_millis(50));
        let store = Store {
            inner: Arc::new(delayed),
            ..local
        };
        ctx.commit_log = CommitLog::new(store, "topics", "w1");
        let held = || Accounted::new(&ctx.memory);
        let committer = Committer::start(&ctx, "t", 0, 0);
        committer.seal(seal(0, 9), vec![(file(0, 9), held())]);
        committer.seal(seal(10, 19), vec![(file(10, 19), held())]);
        committer.upload(file(20, 24), held());
        // Commit 0 made; commit 1 starts at once, while offsets 20.. are not sealed yet.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(committer.take(), Taken::Through { .. }) {
            assert!(Instant::now() < deadline, "commit 0");
            std::thread::sleep(Duration::from_millis(1));
        }
        committer.seal(seal(20, 29), vec![(file(25, 29), held())]);
        committer.flush();
        assert!(matches!(committer.take(), Taken::Through { end: 29, .. }));
        committer.close();
        let commits = runtime
            .block_on(ctx.commit_log.list_commits("t", 0))
            .unwrap();
        for c in &commits {
            for f in &c.files {
                let (first, last) = (f.first_offset, f.last_offset);
                assert!(
                    first >= c.start_offset && last <= c.end_offset,
                    "commit {} ({}..={}) names file {first}..={last}",
                    c.seq,
                    c.start_offset,
                    c.end_offset
                );
                assert!(f.staging.contains(&format!("/{:020}/", c.seq)), "{f:?}");
            }
        }
        assert_eq!(commits.last().map(|c| c.end_offset), Some(29));
    }
}
