//! The compaction journal: one record per swap of one directory, created with `PutMode::Create`
//! at `_streamx/compactions/<topic>/<dir>/<seq>.json` (the atomic point), then completed.
//!
//! ```text
//!  newest record k of the directory (none: k = -1)
//!     │  complete k if a killed run left it half done (publish outputs, inputs to the trash: idempotent)
//!     │  stage outputs at _streamx/compaction-staging/<topic>/<dir>/<k+1>/<run>/
//!     │  create record k+1 ── AlreadyExists ──► another compactor owns the directory: back off
//!     ▼  complete k+1; delete staging of seqs <= k+1; prune records older than compact.retention.ms
//!  a later run deletes the trash of swaps older than compact.input.grace.ms
//! ```
//!
//! The records of a directory are a [`RecordLog`] (the create-once log of commits and schema
//! versions too): [`Created::Retried`] (our own create, retried after its answer was lost) is
//! won, [`Created::Lost`] means another compactor owns the directory.
//!
//! Only the newest record of a directory can be incomplete: a run completes it before it plans
//! the directory again, so completing means replaying the newest. A record is never pruned while
//! it is the newest, and a run never creates a record for a plan older than half of
//! `compact.retention.ms`; so a record key a stale run could still try to create stays taken.

use std::collections::{BTreeMap, BTreeSet};

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::error::{store_err, CompactError};
use super::hive::{HiveSwap, PartitionSwap};
use crate::commit::{record_log, Layout, RecordError, RecordLog, StoredRecord};
pub use crate::commit::{Created, Listed};
use crate::fault;
use crate::store::Store;

/// Version of the compaction record layout: 2 adds `hive` (a location swap), which older
/// StreamX would not know to undo; records without it are written as version 1.
pub const RECORD_VERSION: u32 = 2;

/// An input file of a compaction (moved to the trash by the swap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordInput {
    /// Key relative to the store root.
    pub path: String,
    pub bytes: u64,
}

/// An output file of a compaction (published by the swap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordOutput {
    pub staging: String,
    #[serde(rename = "final")]
    pub final_path: String,
    pub bytes: u64,
    pub rows: u64,
}

/// The content of a compaction record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionRecord {
    pub version: u32,
    pub topic: String,
    /// Directory relative to the topic directory.
    pub dir: String,
    pub seq: u64,
    /// Id of the run that created it.
    pub run: String,
    pub created_ms: i64,
    pub inputs: Vec<RecordInput>,
    pub outputs: Vec<RecordOutput>,
    /// With `compact.hive.swap=location`: the partition pointed at the staged outputs during the
    /// swap (see [`super::hive`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hive: Option<PartitionSwap>,
}

impl StoredRecord for CompactionRecord {
    const KIND: &'static str = "compaction record";

    fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("compaction record serialises")
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let record: CompactionRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if record.version > RECORD_VERSION {
            return Err(format!(
                "record version {} is newer than this StreamX understands ({RECORD_VERSION})",
                record.version
            ));
        }
        Ok(record)
    }
}

impl From<RecordError> for CompactError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Store { op, path, source } => CompactError::StoreOp { op, path, source },
            RecordError::Corrupt { path, message, .. } => {
                CompactError::CorruptRecord { path, message }
            }
        }
    }
}

/// The records of one topic, by directory, oldest first.
pub type TopicRecords = BTreeMap<String, Vec<Listed>>;

/// Reads and writes the compaction records under one `topics.dir`.
#[derive(Debug, Clone)]
pub struct Journal {
    store: Store,
    layout: Layout,
}

impl Journal {
    pub fn new(store: Store, layout: Layout) -> Self {
        Journal { store, layout }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The records of one data directory.
    fn records(&self, topic: &str, dir: &str) -> RecordLog<CompactionRecord> {
        RecordLog::new(self.store.clone(), self.layout.compaction_keys(topic, dir))
    }

    /// Every record of a topic, in one listing.
    pub async fn list(&self, topic: &str) -> Result<TopicRecords, CompactError> {
        let root = self.layout.compactions_dir(topic, "");
        Ok(record_log::list_logs(&self.store, &self.store.path(&root)).await?)
    }

    pub async fn read(
        &self,
        topic: &str,
        dir: &str,
        seq: u64,
    ) -> Result<CompactionRecord, CompactError> {
        let records = self.records(topic, dir);
        let record = records.read(seq).await?;
        check_identity(&record, records.path(seq), (topic, dir, seq))?;
        Ok(record)
    }

    /// The atomic point of a swap (see [`RecordLog::create`]): `Won` or `Retried` (our own
    /// record, created by an earlier attempt whose answer was lost) make the directory ours;
    /// `Lost` when another compactor created `record.seq` of this directory first.
    pub async fn create(
        &self,
        record: &CompactionRecord,
    ) -> Result<Created<CompactionRecord>, CompactError> {
        let (topic, dir, seq) = (&record.topic, &record.dir, record.seq);
        let records = self.records(topic, dir);
        let created = records.create(seq, record).await?;
        if let Created::Lost(winner) = &created {
            check_identity(winner, records.path(seq), (topic, dir, seq))?;
        }
        Ok(created)
    }

    /// Whether a record's swap has finished: inputs leave their directory in order after every
    /// output is published, so a missing last input means everything was done.
    pub async fn is_complete(&self, record: &CompactionRecord) -> Result<bool, CompactError> {
        let Some(last) = record.inputs.last() else {
            return Ok(true);
        };
        Ok(!self.exists(&last.path).await?)
    }

    /// Publishes every output of a record (staging -> final, idempotent), then moves its
    /// inputs into the record's trash (deleted by a later run after `compact.input.grace.ms`).
    /// Returns how many outputs and inputs moved. A location swap (`record.hive`)
    /// first points the partition at the staged outputs, publishes copies (the staged files stay
    /// for readers planned on them) and finally points the partition back home.
    pub async fn complete(
        &self,
        record: &CompactionRecord,
        hive: Option<&HiveSwap>,
    ) -> Result<(usize, usize), CompactError> {
        let switch = match (&record.hive, hive) {
            (Some(swap), Some(client)) => Some((swap, client)),
            (Some(_), None) => {
                return Err(CompactError::HiveNeeded {
                    record: self.record_key(record),
                })
            }
            (None, _) => None,
        };
        if let Some((swap, client)) = switch {
            self.carry(&swap.carried).await?;
            client.point(swap, &swap.swap)?;
            fault::point("compact.after_switch");
        }
        let published = self.publish(record, switch.is_some()).await?;
        fault::point("compact.after_publish");
        let mut moved = 0;
        for (i, input) in record.inputs.iter().enumerate() {
            if self.trash(record, input).await? {
                moved += 1;
            }
            if i == 0 {
                fault::point("compact.after_first_delete");
            }
        }
        if let Some((swap, client)) = switch {
            fault::point("compact.before_switch_back");
            self.put_home(record, swap, client).await?;
        }
        Ok((published, moved))
    }

    /// Moves an input out of its directory into the trash of its record (idempotent: false
    /// when it is gone already).
    async fn trash(
        &self,
        record: &CompactionRecord,
        input: &RecordInput,
    ) -> Result<bool, CompactError> {
        let name = input.path.rsplit('/').next().unwrap_or(&input.path);
        let from = self.store.path(&input.path);
        let to = self.store.path(&self.layout.compaction_trash(
            &record.topic,
            &record.dir,
            record.seq,
            name,
        ));
        match self.store.inner.rename(&from, &to).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_err("rename (compacted input to the trash)", &from, e)),
        }
    }

    /// Points a location swap's partition back home and marks the record so (`<record>.home`):
    /// runs skip the metastore for it from then on, and a run without Hive settings knows the
    /// staged directory is no longer needed. True when the partition was altered.
    pub async fn put_home(
        &self,
        record: &CompactionRecord,
        swap: &PartitionSwap,
        client: &HiveSwap,
    ) -> Result<bool, CompactError> {
        let altered = client.point(swap, &swap.home)?;
        let mark = self.store.path(&self.home_mark(record));
        self.store
            .inner
            .put(&mark, Vec::new().into())
            .await
            .map_err(|e| store_err("put (compaction record home mark)", &mark, e))?;
        Ok(altered)
    }

    /// Whether the partition of a location swap is known to be back home (see [`Self::put_home`]).
    pub async fn is_home(&self, record: &CompactionRecord) -> Result<bool, CompactError> {
        self.exists(&self.home_mark(record)).await
    }

    fn home_mark(&self, record: &CompactionRecord) -> String {
        self.layout
            .compaction_record_home(&record.topic, &record.dir, record.seq)
    }

    /// Copies the files a location swap carries into the staged directory (idempotent; a file
    /// gone since the plan is skipped).
    async fn carry(&self, carried: &[(String, String)]) -> Result<(), CompactError> {
        for (from, to) in carried {
            if self.exists(to).await? {
                continue;
            }
            let from = self.store.path(from);
            match self.store.inner.copy(&from, &self.store.path(to)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_err("copy (carry into staging)", &from, e)),
            }
        }
        Ok(())
    }

    fn record_key(&self, record: &CompactionRecord) -> String {
        self.layout
            .compaction_record(&record.topic, &record.dir, record.seq)
    }

    /// Moves (or, with `keep_staged`, copies) every staged output to its final path.
    async fn publish(
        &self,
        record: &CompactionRecord,
        keep_staged: bool,
    ) -> Result<usize, CompactError> {
        let mut published = 0;
        for (i, out) in record.outputs.iter().enumerate() {
            let from = self.store.path(&out.staging);
            let to = self.store.path(&out.final_path);
            let moved = if keep_staged {
                // A copy lands whole (staged and renamed) so an existing final file is done; and
                // the local store's copy of a file onto a hard link of itself leaves its staged
                // `<name>#0` behind.
                if self.exists(&out.final_path).await? {
                    continue;
                }
                self.store.inner.copy(&from, &to).await
            } else {
                self.store.inner.rename(&from, &to).await
            };
            match moved {
                Ok(()) => published += 1,
                Err(object_store::Error::NotFound { .. }) => {
                    if !self.exists(&out.final_path).await? {
                        return Err(CompactError::MissingOutput {
                            record: self.record_key(record),
                            file: out.final_path.clone(),
                        });
                    }
                }
                Err(e) => return Err(store_err("rename (publish compacted)", &from, e)),
            }
            if i == 0 {
                fault::point("compact.after_first_publish");
            }
        }
        Ok(published)
    }

    async fn exists(&self, rel: &str) -> Result<bool, CompactError> {
        let path = self.store.path(rel);
        match self.store.inner.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_err("head", &path, e)),
        }
    }

    /// Deletes staged outputs that no swap will publish: those of directories' sequence numbers
    /// up to their newest record (completed, or lost to another run), and any older than
    /// `max_age_ms` (no run creates a record for a plan that old). `only` limits it to one
    /// directory. Published staging (location swaps: readers may have planned on it) is kept
    /// until older than `keep_published_ms`. The staging of the directories in `hold` is kept
    /// whole (a partition may still point at it). Best effort; returns how many went.
    pub async fn clean_staging(
        &self,
        topic: &str,
        newest: &BTreeMap<String, u64>,
        only: Option<&str>,
        (max_age_ms, keep_published_ms): (i64, i64),
        hold: &BTreeSet<String>,
    ) -> Result<usize, CompactError> {
        let root = self.layout.compaction_staging_root();
        let root_path = self.store.path(&root);
        let prefix = self.store.path(&format!("{root}/{topic}"));
        let metas = list_all(&self.store, &prefix, "list (compaction staging)").await?;
        let now = crate::clock::wall_ms();
        let mut deleted = 0;
        for m in metas {
            let Some(rel) = relative(&root_path, &m.location) else {
                continue;
            };
            let Some((t, dir, seq)) = Layout::parse_compaction_staging(&rel) else {
                continue;
            };
            if t != topic || only.is_some_and(|o| o != dir) || hold.contains(&dir) {
                continue;
            }
            let settled = newest.get(&dir).is_some_and(|&n| seq <= n);
            let age = now - m.last_modified.timestamp_millis();
            let due = if settled {
                age > keep_published_ms
            } else {
                age > max_age_ms
            };
            if !due {
                continue;
            }
            match self.store.inner.delete(&m.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => {
                    tracing::warn!(path = %m.location, error = %e, "could not delete a staged compaction output")
                }
            }
        }
        Ok(deleted)
    }

    /// Best effort: deletes records older than `retention_ms`, never the newest of a directory.
    pub async fn prune(&self, topic: &str, dir: &str, listed: &[Listed], retention_ms: i64) {
        let now = crate::clock::wall_ms();
        let Some((_, older)) = listed.split_last() else {
            return;
        };
        let records = self.records(topic, dir);
        for l in older.iter().filter(|l| now - l.modified_ms > retention_ms) {
            records.prune(l.seq).await;
            let mark = self
                .store
                .path(&self.layout.compaction_record_home(topic, dir, l.seq));
            let _ = self.store.inner.delete(&mark).await;
        }
    }

    /// Deletes the trashed inputs of `topic` whose swap is older than `grace_ms`: its record's
    /// time as listed in `records` (or, for a pruned record, the trashed file's own time),
    /// whichever is later. The trash of `fresh` directories' newest swaps (completed by this
    /// run) and of swaps newer than `records` is kept. Returns how many files went.
    pub async fn clean_trash(
        &self,
        topic: &str,
        records: &TopicRecords,
        grace_ms: i64,
        fresh: &BTreeSet<String>,
    ) -> Result<usize, CompactError> {
        let root = self.layout.compaction_trash_root();
        let root_path = self.store.path(&root);
        let prefix = self.store.path(&format!("{root}/{topic}"));
        let metas = list_all(&self.store, &prefix, "list (compaction trash)").await?;
        let now = crate::clock::wall_ms();
        let mut deleted = 0;
        for m in metas {
            let Some(rel) = relative(&root_path, &m.location) else {
                continue;
            };
            let Some((t, dir, seq)) = Layout::parse_compaction_trash(&rel) else {
                continue;
            };
            let Some(newest) = records.get(&dir).and_then(|l| l.last()) else {
                continue;
            };
            if t != topic || seq > newest.seq || (seq == newest.seq && fresh.contains(&dir)) {
                continue;
            }
            let listed = records[&dir].iter().find(|l| l.seq == seq);
            let since = listed
                .map_or(i64::MIN, |l| l.modified_ms)
                .max(m.last_modified.timestamp_millis());
            if now - since < grace_ms {
                continue;
            }
            match self.store.inner.delete(&m.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => {
                    tracing::warn!(path = %m.location, error = %e, "could not delete a compacted input from the trash")
                }
            }
        }
        Ok(deleted)
    }

    /// Best effort: deletes staged files of an attempt that will not be published.
    pub async fn discard(&self, outputs: &[RecordOutput]) {
        for o in outputs {
            let path = self.store.path(&o.staging);
            if let Err(e) = self.store.inner.delete(&path).await {
                tracing::warn!(path = %path, error = %e, "could not delete a staged compaction output");
            }
        }
    }
}

/// A record must describe the directory and sequence number it is stored at.
fn check_identity(
    record: &CompactionRecord,
    path: Path,
    (topic, dir, seq): (&str, &str, u64),
) -> Result<(), CompactError> {
    if (record.topic.as_str(), record.dir.as_str(), record.seq) != (topic, dir, seq) {
        return Err(CompactError::CorruptRecord {
            path: path.to_string(),
            message: "it describes another directory or sequence".into(),
        });
    }
    Ok(())
}

/// Every object below `prefix`, in one listing.
pub(crate) async fn list_all(
    store: &Store,
    prefix: &Path,
    op: &'static str,
) -> Result<Vec<ObjectMeta>, CompactError> {
    store
        .inner
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| store_err(op, prefix, e))
}

/// `location` relative to `root` (both store paths), when below it.
pub(crate) fn relative(root: &Path, location: &Path) -> Option<String> {
    let parts: Vec<String> = location
        .prefix_match(root)?
        .map(|p| p.as_ref().to_string())
        .collect();
    Some(parts.join("/"))
}
