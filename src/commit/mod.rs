//! The exactly-once commit protocol (shared/DESIGN.md, "Exactly-once").
//!
//! ```text
//!  PartitionWriter (one Kafka partition, commit k covers offsets start..=end)
//!     │ 1. stage:   put every file at  <topics.dir>/_streamx/staging/<topic>/<p>/<writer>/<k>/<name>
//!     │ 2. commit:  put_opts(PutMode::Create) <topics.dir>/_streamx/commits/<topic>/<p>/<k>.json
//!     │             └─ AlreadyExists => read it back: our own record (a retried create that had
//!     │                succeeded) => go on; another writer's => Fenced: delete our staging
//!     │ 3. publish: rename staging -> <topics.dir>/<topic>/<partition path>/<topic>+<p>+<first>+<last>.<ext>
//!     │             (idempotent; replayed by recovery and by the store-wide sweep, [`garbage`])
//!     ▼ 4. prune:   delete commit record k - keep (best effort)
//!  Recovery on assignment: newest commit k -> check k starts at (k-1).end + 1 -> replay its
//!  publish -> resume at end+1 with seq k+1
//! ```
//!
//! Every path shape lives in [`Layout`]. The commit records of a partition are a [`RecordLog`]
//! (the create-once log the compaction journal and the schema history use too): its
//! [`Created::Retried`] is the retried create of step 2, [`Created::Lost`] the fence.
//!
//! Why only the newest commit is replayed: a writer publishes commit k completely before it
//! stages commit k+1, and a recovering writer replays k before it writes anything, so every commit
//! older than the newest was published by whoever created the one after it.
//!
//! Everything before step 2 is invisible to readers (it lives under `_streamx`, a segment starting
//! with `_` that Hive, Spark, DuckDB and DataFusion skip); everything after it is idempotent. The
//! commit object is the single atomic step that makes a commit durable, and `PutMode::Create`
//! makes two writers of one partition unable to both commit the same sequence number.

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::fault;
use crate::store::Store;
use crate::Origin;
pub use layout::Layout;

mod garbage;
mod layout;
pub mod reader;
pub mod record_log;
pub use garbage::{CleanupReport, StagingCleanup, FOREIGN_STAGING_AGE};
pub use record_log::{Created, Listed, LogKeys, RecordError, RecordLog, StoredRecord};

/// Version of the commit object layout; bumped on incompatible changes.
pub const COMMIT_FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("store operation {op} on {path} failed: {source}")]
    Store {
        op: &'static str,
        path: String,
        source: Box<object_store::Error>,
    },
    #[error("commit object {path} is unreadable: {message}")]
    Corrupt { path: String, message: String },
    #[error("commit {commit} lists {file}, but neither its staged copy nor the final file exists")]
    MissingFile { commit: String, file: String },
    #[error("topic '{topic}' partition {partition} under topics.dir '{topics_dir}' is written by job '{owner}' (its commit {seq}); this job is '{ours}'. Two jobs on one topic and one topics.dir would share one commit chain, so each would skip what the other wrote. Give this job a topics.dir of its own, or, to take the partition over from job '{owner}' (which must no longer run), set commit.takeover.job={owner}")]
    OtherJob {
        topic: String,
        partition: i32,
        topics_dir: String,
        seq: u64,
        owner: String,
        ours: String,
    },
    #[error("the commits of topic '{topic}' partition {partition} do not form a chain: {message}. The store does not hold what StreamX wrote (a store without conditional writes, two processes with different topics.dir settings writing one place, or commit records deleted by hand); stopping rather than guessing which data is right")]
    BrokenChain {
        topic: String,
        partition: i32,
        message: String,
    },
}

impl From<RecordError> for CommitError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Store { op, path, source } => CommitError::Store { op, path, source },
            RecordError::Corrupt { path, message, .. } => CommitError::Corrupt { path, message },
        }
    }
}

impl CommitError {
    pub fn origin(&self) -> Origin {
        match self {
            CommitError::Store { .. } => Origin::External,
            CommitError::Corrupt { .. }
            | CommitError::MissingFile { .. }
            | CommitError::BrokenChain { .. } => Origin::External,
            CommitError::OtherJob { .. } => Origin::User,
        }
    }
}

/// One file of a commit, as recorded in the commit object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedFile {
    /// Staging key, relative to the store root.
    pub staging: String,
    /// Final key, relative to the store root.
    #[serde(rename = "final")]
    pub final_path: String,
    pub rows: u64,
    pub bytes: u64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// The content of a commit object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub version: u32,
    pub topic: String,
    pub partition: i32,
    pub seq: u64,
    /// First offset covered (the previous commit's `end_offset + 1`, or the first consumed).
    pub start_offset: i64,
    /// Last offset covered, inclusive. Records skipped by `errors.tolerance=all` or absent
    /// (compaction, transaction markers) are covered too: they are consumed.
    pub end_offset: i64,
    /// Id of the process that created the commit.
    pub writer: String,
    /// Name of the job (`name`) that created the commit; `None` in records written before jobs
    /// were recorded, and by tools that write without one. Recovery refuses a chain whose newest
    /// commit names another job (see [`CommitError::OtherJob`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    pub files: Vec<CommittedFile>,
}

impl StoredRecord for CommitRecord {
    const KIND: &'static str = "commit";

    fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("commit record serialises")
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let record: CommitRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if record.version > COMMIT_FORMAT_VERSION {
            return Err(format!(
                "commit format version {} is newer than this StreamX understands ({})",
                record.version, COMMIT_FORMAT_VERSION
            ));
        }
        Ok(record)
    }
}

/// A finished file handed to [`CommitLog::commit`].
#[derive(Debug, Clone)]
pub struct PendingFile {
    /// Final key relative to the store root.
    pub final_path: String,
    pub data: Bytes,
    pub rows: u64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// What became of a commit attempt.
#[derive(Debug)]
pub enum CommitOutcome {
    Committed(CommitRecord),
    /// Another writer created commit `seq` first; nothing of ours is visible.
    Fenced {
        seq: u64,
    },
}

/// Where a Kafka partition stands according to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Sequence number the next commit must take.
    pub next_seq: u64,
    /// First offset not yet committed; `None` when the partition has no commit yet.
    pub next_offset: Option<i64>,
}

/// The job a commit log writes for: its name, recorded in every commit, and the job whose
/// chains it may take over (`commit.takeover.job`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobIdentity {
    pub name: String,
    pub takeover: Option<String>,
}

impl JobIdentity {
    /// The prefix of this job's writer ids (`<tag>-<process id>`): a stable hash of the name, so
    /// the store-wide sweep can tell its own job's staged files from other jobs' (see
    /// [`garbage`]).
    pub fn tag(&self) -> String {
        job_tag(&self.name)
    }

    /// A writer id for one process of this job.
    pub fn new_writer_id(&self) -> String {
        format!("{}-{}", self.tag(), uuid::Uuid::new_v4().simple())
    }
}

/// 16 hex digits of the FNV-1a hash of a job name (stable across builds and platforms).
pub fn job_tag(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The job tag a writer id starts with, if it has one (ids of older versions have none).
pub fn writer_job_tag(writer: &str) -> Option<&str> {
    let (tag, _) = writer.split_once('-')?;
    (tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit())).then_some(tag)
}

/// The commit log of every Kafka partition under one `topics.dir`.
#[derive(Debug, Clone)]
pub struct CommitLog {
    store: Store,
    layout: Layout,
    writer_id: String,
    /// The job this log commits for; `None` for readers and tools.
    job: Option<JobIdentity>,
    /// Commit records kept per Kafka partition (older ones are pruned); at least 2, so that
    /// recovery can check that the newest commit starts right after the one before it.
    keep_commits: u64,
}

/// Default number of commit records kept per Kafka partition.
pub const DEFAULT_KEEP_COMMITS: u64 = 10;

/// Partitions whose commits are read and replayed at once, by recovery on assignment and by the
/// store-wide sweep (consumption waits for both). Each takes a few store round trips in turn, so
/// with a store 60 ms away 256 partitions take 256 x 5 x 60 ms = 77 s one at a time, 2.4 s 32 at
/// a time.
pub const PARTITIONS_AT_ONCE: usize = 32;

impl CommitLog {
    pub fn new(store: Store, topics_dir: &str, writer_id: &str) -> Self {
        CommitLog {
            store,
            layout: Layout::new(topics_dir),
            writer_id: writer_id.to_string(),
            job: None,
            keep_commits: DEFAULT_KEEP_COMMITS,
        }
    }

    /// Commits for `job`: its name goes into every commit record, and recovery refuses another
    /// job's chain unless `job.takeover` names that job.
    pub fn for_job(mut self, job: JobIdentity) -> Self {
        self.job = Some(job);
        self
    }

    pub fn job(&self) -> Option<&JobIdentity> {
        self.job.as_ref()
    }

    /// Keeps the newest `n` commit records per partition (at least 2).
    pub fn keep_commits(mut self, n: u64) -> Self {
        self.keep_commits = n.max(2);
        self
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn writer_id(&self) -> &str {
        &self.writer_id
    }

    /// Read-only access to this log (what recovery and tools read).
    pub fn reader(&self) -> reader::Reader {
        reader::Reader::with_layout(self.store.clone(), self.layout.clone())
    }

    /// The commit records of a Kafka partition.
    fn records(&self, topic: &str, partition: i32) -> RecordLog<CommitRecord> {
        self.reader().records(topic, partition)
    }

    /// Key of commit `seq` of a Kafka partition.
    pub fn commit_path(&self, topic: &str, partition: i32, seq: u64) -> Path {
        self.store.path(&self.layout.commit(topic, partition, seq))
    }

    fn staging_rel(&self, topic: &str, partition: i32, seq: u64, name: &str) -> String {
        self.layout
            .staging(topic, partition, &self.writer_id, seq, name)
    }

    /// Uploads one file to the staging area of commit `seq` (invisible to readers) and returns
    /// its entry for the commit object. Used for files flushed early under memory pressure;
    /// [`CommitLog::commit`] stages the rest.
    pub async fn stage(
        &self,
        topic: &str,
        partition: i32,
        seq: u64,
        file: PendingFile,
    ) -> Result<CommittedFile, CommitError> {
        let name = file
            .final_path
            .rsplit('/')
            .next()
            .unwrap_or(&file.final_path)
            .to_string();
        let staging = self.staging_rel(topic, partition, seq, &name);
        let bytes = file.data.len() as u64;
        let path = self.store.path(&staging);
        self.store
            .inner
            .put(&path, PutPayload::from_bytes(file.data))
            .await
            .map_err(|source| store_err("put (stage)", &path, source))?;
        Ok(CommittedFile {
            staging,
            final_path: file.final_path,
            rows: file.rows,
            bytes,
            first_offset: file.first_offset,
            last_offset: file.last_offset,
        })
    }

    /// Commits offsets `start_offset..=end_offset` of a partition as commit `seq` with `files`
    /// (staged here) and `staged` (staged earlier by [`CommitLog::stage`] under the same `seq`):
    /// stage, create the commit object (the atomic step), publish. `Fenced` when another writer
    /// created commit `seq` first; this writer's staged files are then deleted.
    #[allow(clippy::too_many_arguments)]
    pub async fn commit(
        &self,
        topic: &str,
        partition: i32,
        seq: u64,
        start_offset: i64,
        end_offset: i64,
        files: Vec<PendingFile>,
        staged: Vec<CommittedFile>,
    ) -> Result<CommitOutcome, CommitError> {
        let mut record = CommitRecord {
            version: COMMIT_FORMAT_VERSION,
            topic: topic.to_string(),
            partition,
            seq,
            start_offset,
            end_offset,
            writer: self.writer_id.clone(),
            job: self.job.as_ref().map(|j| j.name.clone()),
            files: staged,
        };
        for f in files {
            let staged = self.stage(topic, partition, seq, f).await?;
            record.files.push(staged);
        }
        fault::point("commit.after_stage");
        // 2. the atomic step
        // A retried create that had landed (our own record) goes on; another writer's fences,
        // and so does a record of ours for other offsets.
        let records = self.records(topic, partition);
        if let Created::Lost(_) = records.create(seq, &record).await? {
            self.discard_staged(&record).await;
            return Ok(CommitOutcome::Fenced { seq });
        }
        fault::point("commit.after_commit_object");
        // 3. publish
        self.publish(&record, &records.path(seq)).await?;
        fault::point("commit.after_publish");
        if let Some(old) = seq.checked_sub(self.keep_commits) {
            records.prune(old).await;
        }
        Ok(CommitOutcome::Committed(record))
    }

    /// Moves every staged file of `record` to its final key. Idempotent: a file already moved
    /// (by us before a crash, or by another writer replaying the same commit) is left as it is.
    /// Returns how many files it moved.
    async fn publish(
        &self,
        record: &CommitRecord,
        commit_path: &Path,
    ) -> Result<usize, CommitError> {
        let mut moved = 0;
        for (i, f) in record.files.iter().enumerate() {
            let from = self.store.path(&f.staging);
            let to = self.store.path(&f.final_path);
            match self.store.inner.rename(&from, &to).await {
                Ok(()) => moved += 1,
                Err(object_store::Error::NotFound { .. }) => {
                    if let Err(source) = self.store.inner.head(&to).await {
                        return Err(match source {
                            object_store::Error::NotFound { .. } => CommitError::MissingFile {
                                commit: commit_path.to_string(),
                                file: f.final_path.clone(),
                            },
                            source => store_err("head (publish)", &to, source),
                        });
                    }
                }
                Err(source) => return Err(store_err("rename (publish)", &from, source)),
            }
            if i == 0 {
                fault::point("commit.after_first_publish");
            }
        }
        Ok(moved)
    }

    /// Best effort: a fenced writer removes its staged files (they are invisible either way).
    async fn discard_staged(&self, record: &CommitRecord) {
        self.discard_files(&record.files).await
    }

    /// Best effort: deletes staged files that no commit will name.
    pub async fn discard_files(&self, files: &[CommittedFile]) {
        for f in files {
            let path = self.store.path(&f.staging);
            if let Err(e) = self.store.inner.delete(&path).await {
                tracing::warn!(path = %path, error = %e, "could not delete a fenced staging file");
            }
        }
    }

    /// Reads the newest commit of a Kafka partition, checks that it continues the one before it,
    /// replays its publish step, prunes records older than the newest `keep_commits`, and says
    /// where consumption resumes.
    pub async fn recover(&self, topic: &str, partition: i32) -> Result<Recovered, CommitError> {
        let seqs = self.commit_seqs(topic, partition).await?;
        let Some(&seq) = seqs.last() else {
            return Ok(Recovered {
                next_seq: 0,
                next_offset: None,
            });
        };
        let path = self.commit_path(topic, partition, seq);
        // Both names come from the listing: one round trip for the two reads, not two.
        let (record, previous) = futures::join!(
            self.read_commit(&path),
            self.read_previous(topic, partition, &seqs)
        );
        let record = record?;
        check_identity(&record, &path, topic, partition, seq)?;
        self.check_owner(&record)?;
        check_chain(&record, &seqs, previous?)?;
        self.publish(&record, &path).await?;
        let records = self.records(topic, partition);
        for &old in seqs
            .iter()
            .take(seqs.len().saturating_sub(self.keep_commits as usize))
        {
            records.prune(old).await;
        }
        Ok(Recovered {
            next_seq: seq + 1,
            next_offset: Some(record.end_offset + 1),
        })
    }

    /// The newest commit record of a Kafka partition, if any (for readers such as compaction,
    /// which must leave the files it names in place: recovery replays it).
    pub async fn newest_commit(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<CommitRecord>, CommitError> {
        self.reader().newest_commit(topic, partition).await
    }

    /// Sequence numbers of the commit records of a partition, ascending.
    async fn commit_seqs(&self, topic: &str, partition: i32) -> Result<Vec<u64>, CommitError> {
        let listed = self.records(topic, partition).list().await?;
        Ok(listed.iter().map(|l| l.seq).collect())
    }

    /// The commit before the newest in `seqs` (ascending), for [`check_chain`]: `None` when
    /// there is a single commit, when the listing lacks the one before the newest (the chain
    /// check reports that), or when another member pruned it between our list and our read
    /// (that member saw the chain whole).
    async fn read_previous(
        &self,
        topic: &str,
        partition: i32,
        seqs: &[u64],
    ) -> Result<Option<CommitRecord>, CommitError> {
        let [.., previous, newest] = seqs else {
            return Ok(None);
        };
        if *previous + 1 != *newest {
            return Ok(None);
        }
        match self
            .read_commit(&self.commit_path(topic, partition, *previous))
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(CommitError::Store { source, .. })
                if matches!(*source, object_store::Error::NotFound { .. }) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A chain whose newest commit names another job is not ours to continue: two jobs on one
    /// topic and `topics.dir` would each resume after what the other wrote (and skip it). A
    /// commit without a job name (older records, tools) is continued by anyone.
    fn check_owner(&self, newest: &CommitRecord) -> Result<(), CommitError> {
        let (Some(ours), Some(owner)) = (&self.job, &newest.job) else {
            return Ok(());
        };
        if *owner == ours.name || ours.takeover.as_ref() == Some(owner) {
            return Ok(());
        }
        Err(CommitError::OtherJob {
            topic: newest.topic.clone(),
            partition: newest.partition,
            topics_dir: self.layout.topics_dir().to_string(),
            seq: newest.seq,
            owner: owner.clone(),
            ours: ours.name.clone(),
        })
    }

    /// Reads and parses one commit object.
    pub async fn read_commit(&self, path: &Path) -> Result<CommitRecord, CommitError> {
        self.reader().read_commit(path).await
    }

    /// Every commit of a Kafka partition, oldest first (for tests, `query` and tools).
    pub async fn list_commits(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<CommitRecord>, CommitError> {
        let records = self.records(topic, partition);
        let listed = records.list().await?;
        let mut out = Vec::with_capacity(listed.len());
        for l in &listed {
            out.push(records.read(l.seq).await?);
        }
        Ok(out)
    }
}

/// The newest commit must start right after the one before it (commit k+1 covers the offsets
/// after commit k's end, shared/DESIGN.md). A gap or an overlap means the store holds something
/// the protocol cannot produce. `previous` is commit k-1 as read by
/// [`CommitLog::read_previous`] (`None`: not listed, or pruned since the listing).
fn check_chain(
    newest: &CommitRecord,
    seqs: &[u64],
    previous: Option<CommitRecord>,
) -> Result<(), CommitError> {
    let (topic, partition, seq) = (&newest.topic, newest.partition, newest.seq);
    let broken = |message: String| CommitError::BrokenChain {
        topic: topic.clone(),
        partition,
        message,
    };
    if seq == 0 {
        return Ok(());
    }
    if seqs.len() < 2 || seqs[seqs.len() - 2] != seq - 1 {
        return Err(broken(format!(
            "commit {seq} is the newest, but commit {} is missing",
            seq - 1
        )));
    }
    // Pruned by another member between our list and our read: it saw the chain whole.
    let Some(previous) = previous else {
        return Ok(());
    };
    if newest.start_offset != previous.end_offset + 1 {
        return Err(broken(format!(
            "commit {seq} (writer {}) covers offsets {}..={}, but commit {} (writer {}) ended at {}",
            newest.writer,
            newest.start_offset,
            newest.end_offset,
            seq - 1,
            previous.writer,
            previous.end_offset
        )));
    }
    Ok(())
}

fn check_identity(
    record: &CommitRecord,
    path: &Path,
    topic: &str,
    partition: i32,
    seq: u64,
) -> Result<(), CommitError> {
    if record.seq != seq || record.topic != topic || record.partition != partition {
        return Err(CommitError::Corrupt {
            path: path.to_string(),
            message: format!(
                "it describes {}/{} seq {}, expected {topic}/{partition} seq {seq}",
                record.topic, record.partition, record.seq
            ),
        });
    }
    Ok(())
}

fn store_err(op: &'static str, path: &Path, source: object_store::Error) -> CommitError {
    CommitError::Store {
        op,
        path: path.to_string(),
        source: Box::new(source),
    }
}

/// The final file name of kafka-connect-hdfs: `<topic>+<partition>+<first>+<last>.<ext>`, offsets
/// zero-padded to `pad` digits.
pub fn final_file_name(
    topic: &str,
    partition: i32,
    first: i64,
    last: i64,
    pad: usize,
    ext: &str,
) -> String {
    format!("{topic}+{partition}+{first:0pad$}+{last:0pad$}.{ext}")
}

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod tests;
