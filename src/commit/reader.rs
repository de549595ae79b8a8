//! Read-only access to the commit log, for every caller that does not write it: compaction's
//! pinned files, Hive catch-up, the worker's offsets endpoint. A [`Reader`] needs no writer id
//! (only a writer names its commits) and cannot create, publish or prune anything.
//!
//! It sees what recovery sees: the commit records under
//! `<topics.dir>/_streamx/commits/<topic>/<partition>/`, read through the one [`RecordLog`].

use object_store::path::Path;

use super::record_log::{self, RecordLog};
use super::{CommitError, CommitRecord, Layout};
use crate::store::Store;

/// Reads the commit log of one `topics.dir` in one store.
#[derive(Clone)]
pub struct Reader {
    store: Store,
    layout: Layout,
}

impl Reader {
    pub fn new(store: Store, topics_dir: &str) -> Self {
        Reader {
            store,
            layout: Layout::new(topics_dir),
        }
    }

    /// The reader of a writer's store and layout ([`super::CommitLog`] reads through it).
    pub(super) fn with_layout(store: Store, layout: Layout) -> Self {
        Reader { store, layout }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The commit records of a Kafka partition.
    pub(super) fn records(&self, topic: &str, partition: i32) -> RecordLog<CommitRecord> {
        RecordLog::new(
            self.store.clone(),
            self.layout.commit_keys(topic, partition),
        )
    }

    fn listing_error(&self, what: &'static str, dir: &Path, e: object_store::Error) -> CommitError {
        CommitError::Store {
            op: what,
            path: dir.to_string(),
            source: Box::new(e),
        }
    }

    /// The topics with at least one commit, sorted.
    pub async fn topics(&self) -> Result<Vec<String>, CommitError> {
        let dir = self.store.path(&self.layout.commits_root());
        let names = self.store.child_dir_names(&dir).await;
        names.map_err(|e| self.listing_error("list (commit topics)", &dir, e))
    }

    /// The Kafka partitions of `topic` with at least one commit, ascending.
    pub async fn partitions(&self, topic: &str) -> Result<Vec<i32>, CommitError> {
        let dir = self
            .store
            .path(&format!("{}/{topic}", self.layout.commits_root()));
        let names = self.store.child_dir_names(&dir).await;
        let names = names.map_err(|e| self.listing_error("list (commit partitions)", &dir, e))?;
        let mut partitions: Vec<i32> = names.iter().filter_map(|p| p.parse().ok()).collect();
        partitions.sort_unstable();
        Ok(partitions)
    }

    /// The newest commit record of a Kafka partition, if any.
    pub async fn newest_commit(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<CommitRecord>, CommitError> {
        // Pruned between listing and reading: a newer one exists; the log lists again.
        let newest = self.records(topic, partition).newest().await?;
        Ok(newest.map(|(_, record)| record))
    }

    /// Reads and parses one commit object.
    pub async fn read_commit(&self, path: &Path) -> Result<CommitRecord, CommitError> {
        Ok(record_log::read_path(&self.store, path).await?)
    }
}
