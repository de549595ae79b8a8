//! [`CompactError`]: everything that can go wrong in `streamx compact`, with the path or
//! directory it concerns.

use crate::commit::CommitError;
use crate::store::StoreError;
use crate::Origin;

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("store operation {op} on {path} failed: {source}")]
    StoreOp {
        op: &'static str,
        path: String,
        source: Box<object_store::Error>,
    },
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error("compaction record {path} is unreadable: {message}")]
    CorruptRecord { path: String, message: String },
    #[error("compaction record {record} lists output {file}, but neither its staged copy nor the published file exists (another run deleted it: a frozen compactor, clock skew, or a smaller compact.retention.ms); the directory is skipped, its inputs are kept, until the record is resolved")]
    MissingOutput { record: String, file: String },
    #[error("directory {dir}: input {path} is corrupt or unreadable ({message}); the directory is skipped and nothing in it was deleted")]
    CorruptInput {
        dir: String,
        path: String,
        message: String,
    },
    #[error("directory {dir}: input {path} vanished while it was read (another compactor took the directory)")]
    InputGone { dir: String, path: String },
    #[error(
        "directory {dir}: the files have incompatible schemas ({detail}); the directory is skipped"
    )]
    Incompatible { dir: String, detail: String },
    #[error("directory {dir}: writing a compacted file failed: {message}")]
    Write { dir: String, message: String },
    #[error("--where {expr:?}: {message}")]
    Where { expr: String, message: String },
    #[error("Hive metastore, {what}: {source}")]
    Hive {
        what: String,
        source: Box<crate::hive::HiveError>,
    },
    #[error("compaction record {record} switched a Hive partition to its staged outputs and no run has confirmed it back home, but this run has no Hive settings: set hive.integration=true and hive.metastore.uris as the job does; until then the directory and its staged files are left as they are")]
    HiveNeeded { record: String },
    #[error("cannot start the I/O runtime: {0}")]
    Runtime(std::io::Error),
}

impl CompactError {
    pub fn origin(&self) -> Origin {
        match self {
            CompactError::Store(e) => e.origin(),
            CompactError::Commit(e) => e.origin(),
            CompactError::Where { .. } => Origin::User,
            CompactError::Runtime(_) => Origin::Internal,
            CompactError::Hive { source, .. } => source.origin(),
            CompactError::HiveNeeded { .. } => Origin::User,
            _ => Origin::External,
        }
    }

    /// Whether the problem is confined to one directory (reported, the run goes on with the
    /// others) rather than to the store or the whole run.
    pub fn is_directory_local(&self) -> bool {
        matches!(
            self,
            CompactError::CorruptInput { .. }
                | CompactError::Incompatible { .. }
                | CompactError::Write { .. }
        )
    }
}

pub(crate) fn store_err(
    op: &'static str,
    path: &object_store::path::Path,
    source: object_store::Error,
) -> CompactError {
    CompactError::StoreOp {
        op,
        path: path.to_string(),
        source: Box::new(source),
    }
}
