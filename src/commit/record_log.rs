//! Create-once record logs: the one way StreamX keeps a numbered history of records in the store
//! (shared/DESIGN.md: "one owner of stored state"). Three logs use it:
//!
//! ```text
//!  commit log          <topics.dir>/_streamx/commits/<topic>/<partition>/<seq:020>.json  (CommitLog)
//!  compaction journal  <topics.dir>/_streamx/compactions/<topic>/<dir>/<seq:020>.json   (compact::Journal)
//!  schema history      <topics.dir>/_streamx/schemas/<topic>/<n>.json                   (decode::SchemaStore)
//! ```
//!
//! A [`RecordLog`] is one directory of one log: record `seq` lives at `<dir>/<seq>.json`
//! ([`LogKeys`], made by [`super::Layout`]), is written once and never changed.
//!
//! Contract of [`RecordLog::create`] (`PutMode::Create`, the atomic step of each log):
//! - [`Created::Won`]: the record did not exist; ours is stored now.
//! - [`Created::Retried`]: the store answered `AlreadyExists`, and the record there equals ours:
//!   an earlier attempt of this very create landed and its answer was lost (a client retry of a
//!   conditional PUT sees its own first attempt). It is ours: go on exactly as after `Won`.
//! - [`Created::Lost`]: another writer's record holds `seq`; it is handed back (the winner). The
//!   caller must not treat `seq` as its own (a commit is fenced, a compactor backs off, a schema
//!   writer re-reads and merges).
//!
//! A record equal to ours counts as ours: the records of every log name their writer (writer id,
//! compaction run) or are pure values (a schema version: the same fields are the same version),
//! so an equal record by someone else is harmless. Any other store error is returned as is: the
//! outcome is unknown and the caller stops or retries the same create.
//!
//! Who may call: the owner of each log (the three above) only; the sequence number it creates is
//! the one after the newest it read (a race for it is what `Lost` reports). [`RecordLog::prune`]
//! is best effort and the owner decides what is old enough (never the newest record).

use std::collections::BTreeMap;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::ObjectStoreExt;

use crate::store::Store;

/// A record kept in a [`RecordLog`]: how it is stored and read back.
pub trait StoredRecord: Sized + PartialEq {
    /// What it is called in messages ("commit", "compaction record", "schema version").
    const KIND: &'static str;
    /// The bytes stored (deterministic: a retried create stores the same bytes).
    fn to_bytes(&self) -> Vec<u8>;
    /// Parses stored bytes; the message says what is wrong (a newer format included).
    fn from_bytes(bytes: &[u8]) -> Result<Self, String>;
}

/// What a create came to (see the module doc).
#[derive(Debug, PartialEq, Eq)]
pub enum Created<R> {
    Won,
    Retried,
    /// Another writer's record holds the sequence number.
    Lost(R),
}

impl<R> Created<R> {
    /// True for `Won` and `Retried`: the record at the key is ours.
    pub fn is_ours(&self) -> bool {
        !matches!(self, Created::Lost(_))
    }
}

/// A failed store call or an unreadable record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("store operation {op} on {path} failed: {source}")]
    Store {
        op: &'static str,
        path: String,
        source: Box<object_store::Error>,
    },
    #[error("{kind} {path} is unreadable: {message}")]
    Corrupt {
        kind: &'static str,
        path: String,
        message: String,
    },
}

impl RecordError {
    /// True when the record (or the log) is not there: pruned since a listing, say.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RecordError::Store { source, .. } if matches!(**source, object_store::Error::NotFound { .. }))
    }
}

/// The keys of one log directory: `<dir>/<seq>.json`, `seq` zero-padded to `pad` digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKeys {
    pub dir: String,
    pub pad: usize,
}

impl LogKeys {
    /// Key of record `seq`, relative to the store root.
    pub fn key(&self, seq: u64) -> String {
        format!("{}/{seq:0pad$}.json", self.dir, pad = self.pad)
    }
}

/// A record as listed: its sequence number and when it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub seq: u64,
    pub modified_ms: i64,
}

/// One directory of create-once records of kind `R` (see the module doc).
#[derive(Debug, Clone)]
pub struct RecordLog<R> {
    store: Store,
    keys: LogKeys,
    kind: std::marker::PhantomData<fn() -> R>,
}

impl<R: StoredRecord> RecordLog<R> {
    pub fn new(store: Store, keys: LogKeys) -> Self {
        RecordLog {
            store,
            keys,
            kind: std::marker::PhantomData,
        }
    }

    /// Store path of record `seq`.
    pub fn path(&self, seq: u64) -> Path {
        self.store.path(&self.keys.key(seq))
    }

    /// The records of this directory, oldest first, in one listing.
    pub async fn list(&self) -> Result<Vec<Listed>, RecordError> {
        let dir = self.store.path(&self.keys.dir);
        let mut by_dir = list_logs(&self.store, &dir).await?;
        Ok(by_dir.remove("").unwrap_or_default())
    }

    /// Reads record `seq`.
    pub async fn read(&self, seq: u64) -> Result<R, RecordError> {
        read_path(&self.store, &self.path(seq)).await
    }

    /// The newest record, if any (listed again when it is pruned between listing and reading).
    pub async fn newest(&self) -> Result<Option<(u64, R)>, RecordError> {
        loop {
            let Some(last) = self.list().await?.last().copied() else {
                return Ok(None);
            };
            match self.read(last.seq).await {
                Ok(r) => return Ok(Some((last.seq, r))),
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates record `seq` once (the contract is in the module doc).
    pub async fn create(&self, seq: u64, record: &R) -> Result<Created<R>, RecordError> {
        let path = self.path(seq);
        match self.store.create(&path, record.to_bytes()).await {
            Ok(()) => Ok(Created::Won),
            Err(object_store::Error::AlreadyExists { .. }) => {
                let existing = read_path::<R>(&self.store, &path).await?;
                if existing == *record {
                    tracing::info!(kind = R::KIND, path = %path, "the record exists and is ours: an earlier attempt of this create succeeded (a retried request)");
                    Ok(Created::Retried)
                } else {
                    Ok(Created::Lost(existing))
                }
            }
            Err(source) => Err(store_err("put (create)", &path, source)),
        }
    }

    /// Best effort: deletes record `seq` (gone already is fine; a failure is logged).
    pub async fn prune(&self, seq: u64) {
        let path = self.path(seq);
        match self.store.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(kind = R::KIND, path = %path, error = %e, "could not prune an old record")
            }
        }
    }
}

/// Reads and parses the record at `path`.
pub async fn read_path<R: StoredRecord>(store: &Store, path: &Path) -> Result<R, RecordError> {
    let bytes = async { store.inner.get(path).await?.bytes().await }
        .await
        .map_err(|source| store_err("get", path, source))?;
    R::from_bytes(&bytes).map_err(|message| RecordError::Corrupt {
        kind: R::KIND,
        path: path.to_string(),
        message,
    })
}

/// Every record log below `prefix`, in one listing: `<log dir relative to prefix>` (empty for
/// `prefix` itself) -> its records, oldest first. Objects not named `<number>.json` are skipped.
pub async fn list_logs(
    store: &Store,
    prefix: &Path,
) -> Result<BTreeMap<String, Vec<Listed>>, RecordError> {
    let metas: Vec<_> = store
        .inner
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|source| store_err("list", prefix, source))?;
    let mut out: BTreeMap<String, Vec<Listed>> = BTreeMap::new();
    for m in metas {
        let Some(parts) = m.location.prefix_match(prefix) else {
            continue;
        };
        let mut parts: Vec<String> = parts.map(|p| p.as_ref().to_string()).collect();
        let Some(name) = parts.pop() else {
            continue;
        };
        let Some(seq) = name.strip_suffix(".json").and_then(|s| s.parse().ok()) else {
            continue;
        };
        out.entry(parts.join("/")).or_default().push(Listed {
            seq,
            modified_ms: m.last_modified.timestamp_millis(),
        });
    }
    for records in out.values_mut() {
        records.sort_by_key(|l| l.seq);
    }
    Ok(out)
}

fn store_err(op: &'static str, path: &Path, source: object_store::Error) -> RecordError {
    RecordError::Store {
        op,
        path: path.to_string(),
        source: Box::new(source),
    }
}

#[cfg(test)]
#[path = "record_log_tests.rs"]
mod tests;
