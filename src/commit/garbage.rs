//! The store-wide sweep every ingest process runs at start and then now and then: it finishes the
//! publish of the newest commit of every partition under `topics.dir` (so a half-published commit
//! converges without waiting for its partition's next owner) and deletes orphaned staging files.
//!
//! ```text
//!  list _streamx/commits/<topic>/<p>  ──► newest commit k of each partition ──► replay its publish
//!  list _streamx/staging/**           ──► for each staged file of (topic, p, writer, seq):
//!        seq <  k                          orphan (commit k was staged after k-1..0 were published)
//!        seq == k, not named by commit k   orphan (a fenced writer's, or a crash before its create)
//!        seq == k, named by commit k       kept (its publish is in flight or failed; recovery owns it)
//!        seq >  k  or no commit yet        deleted only once older than staging.cleanup.age.ms
//! ```
//!
//! The age rule is what keeps a live writer's files: a writer never keeps a staged file longer
//! than half that age (the sink commits a partition whose oldest spilled file reaches it, and a
//! commit refuses to name a file staged longer ago than three quarters of it).
//!
//! The age is the sweeping job's own `staging.cleanup.age.ms`, and another job on the same
//! `topics.dir` may have set a longer one. So the age applies to the files of this job's writers
//! only (a writer id starts with its job's tag, [`super::job_tag`]); other jobs' files wait for
//! [`FOREIGN_STAGING_AGE`], the longest age any job may set. Files of writers without a tag
//! (versions before the tag) take this job's age, as before.

use std::collections::HashMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::ObjectStoreExt;

use super::{store_err, CommitError, CommitLog, CommitRecord, Layout};

/// How old another job's unexplained staged file must be before this job's sweep deletes it:
/// the largest `staging.cleanup.age.ms` a job may set, so no job's sweep takes a file its writer
/// may still name.
pub const FOREIGN_STAGING_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Staging cleanup settings.
#[derive(Debug, Clone, Copy)]
pub struct StagingCleanup {
    /// A staged file not explained by a commit is deleted once older than this.
    pub min_age: Duration,
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Partitions with at least one commit.
    pub partitions: usize,
    /// Staged files moved to their final key by the replay of a newest commit.
    pub published: usize,
    pub staging_deleted: usize,
    pub staging_kept: usize,
}

type Newest = HashMap<(String, i32), CommitRecord>;

impl CommitLog {
    /// Replays the newest commit of every partition, then cleans the staging area.
    pub async fn sweep(&self, cleanup: StagingCleanup) -> Result<CleanupReport, CommitError> {
        let (newest, published) = self.publish_every_newest().await?;
        let (staging_deleted, staging_kept) = self.clean_staging(&newest, cleanup).await?;
        Ok(CleanupReport {
            partitions: newest.len(),
            published,
            staging_deleted,
            staging_kept,
        })
    }

    /// Every (topic, partition) with commit records under this `topics.dir`.
    async fn partitions_with_commits(&self) -> Result<Vec<(String, i32)>, CommitError> {
        let root = self.layout.commits_root();
        let mut out = Vec::new();
        for topic in self.child_dirs(&self.store.path(&root)).await? {
            let topic_dir = self.store.path(&format!("{root}/{topic}"));
            for p in self.child_dirs(&topic_dir).await? {
                if let Ok(partition) = p.parse() {
                    out.push((topic.clone(), partition));
                }
            }
        }
        Ok(out)
    }

    async fn child_dirs(&self, prefix: &Path) -> Result<Vec<String>, CommitError> {
        self.store
            .child_dir_names(prefix)
            .await
            .map_err(|source| store_err("list (sweep)", prefix, source))
    }

    /// Replays the publish of each partition's newest commit; returns them and how many files
    /// moved.
    async fn publish_every_newest(&self) -> Result<(Newest, usize), CommitError> {
        let partitions = self.partitions_with_commits().await?;
        let results: Vec<_> = futures::stream::iter(partitions)
            .map(|(topic, partition)| async move {
                let r = self.replay_newest(&topic, partition).await;
                ((topic, partition), r)
            })
            .buffer_unordered(super::PARTITIONS_AT_ONCE)
            .collect()
            .await;
        let mut newest = HashMap::new();
        let mut published = 0;
        for ((topic, partition), result) in results {
            match result {
                Ok(Some((record, moved))) => {
                    published += moved;
                    newest.insert((topic, partition), record);
                }
                Ok(None) => {}
                // One broken partition must not stop the sweep of the others; its owner's
                // recovery reports it.
                Err(e) => {
                    tracing::warn!(%topic, partition, error = %e, "sweep: cannot replay the newest commit")
                }
            }
        }
        Ok((newest, published))
    }

    /// Reads the newest commit of a partition and replays its publish; how many files moved.
    async fn replay_newest(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<(CommitRecord, usize)>, CommitError> {
        let Some(&seq) = self.commit_seqs(topic, partition).await?.last() else {
            return Ok(None);
        };
        let path = self.commit_path(topic, partition, seq);
        let record = match self.read_commit(&path).await {
            Ok(r) => r,
            Err(CommitError::Store { source, .. })
                if matches!(*source, object_store::Error::NotFound { .. }) =>
            {
                return Ok(None); // pruned since the listing
            }
            Err(e) => return Err(e),
        };
        let moved = self.publish(&record, &path).await?;
        if moved > 0 {
            tracing::info!(%topic, partition, seq, files = moved, "sweep: finished the publish of a commit its writer left half done");
        }
        Ok(Some((record, moved)))
    }

    /// Deletes orphaned staged files (see the module doc); returns (deleted, kept).
    async fn clean_staging(
        &self,
        newest: &Newest,
        cleanup: StagingCleanup,
    ) -> Result<(usize, usize), CommitError> {
        let root = self.store.path(&self.layout.staging_root());
        let metas: Vec<_> = self
            .store
            .inner
            .list(Some(&root))
            .try_collect()
            .await
            .map_err(|source| store_err("list (staging cleanup)", &root, source))?;
        let now = crate::clock::wall_ms();
        let own_tag = self.job.as_ref().map(|j| j.tag());
        let (mut deleted, mut kept) = (0, 0);
        for meta in metas {
            let rel = meta.location.as_ref();
            let rel = rel.strip_prefix(root.as_ref()).unwrap_or(rel);
            let Some(key) = Layout::parse_staging(rel) else {
                continue;
            };
            let age_ms = now - meta.last_modified.timestamp_millis();
            let min_age = match super::writer_job_tag(&key.writer) {
                Some(tag) if Some(tag) != own_tag.as_deref() => {
                    cleanup.min_age.max(FOREIGN_STAGING_AGE)
                }
                _ => cleanup.min_age,
            };
            let old_enough = age_ms >= min_age.as_millis() as i64;
            let orphan = match newest.get(&(key.topic.clone(), key.partition)) {
                Some(commit) if key.seq < commit.seq => true,
                Some(commit) if key.seq == commit.seq => !commit
                    .files
                    .iter()
                    .any(|f| self.store.path(&f.staging) == meta.location),
                _ => old_enough,
            };
            if !orphan {
                kept += 1;
                continue;
            }
            match self.store.inner.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => {
                    tracing::warn!(path = %meta.location, error = %e, "could not delete an orphaned staging file")
                }
            }
        }
        if deleted > 0 {
            tracing::info!(deleted, kept, "sweep: deleted orphaned staging files");
        }
        Ok((deleted, kept))
    }
}
