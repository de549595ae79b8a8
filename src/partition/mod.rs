//! Output partitioning: which directory under `<topics.dir>/<topic>/` each row goes to.
//!
//! A partition rule is a list of SQL expressions evaluated by DataFusion over each batch
//! (`partition.by`, `partition.by.file`), or one of the classic partitioners, which
//! [`preset`] spells as such expressions (`partitioner.class` = Default, Field, TimeBased,
//! Hourly, Daily, with `timestamp.extractor` = Record, RecordField, Wallclock).
//!
//! ```text
//!  config keys ──► preset::from_config ──► RuleSpec (SQL text) + TimestampSpec (SQL text)
//!                                              │ compiled once per batch schema
//!  RecordBatch ──► CompiledRule level exprs ──► arrays ──► RowConverter ──► groups of rows
//!                                                              └──► `name=value/...` (escape)
//! ```
//!
//! Owns [`escape`] (Hive path escaping), [`joda`] (`path.format`), [`preset`] and [`rule`].

pub mod escape;
pub mod joda;
pub mod preset;
pub mod rule;

pub use rule::CompiledRule;

/// Rows of a batch that go to one output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Directory relative to `<topics.dir>/<topic>/`, e.g. `partition=3` or `dt=2024-01-01/hr=10`.
    pub dir: String,
    /// Row indexes into the batch, ascending; `None` means every row.
    pub rows: Option<Vec<u32>>,
}

/// One directory level of a preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    /// Partition column name (`name=value`); `None` for a plain directory (`2024/01/...`).
    pub name: Option<String>,
    /// SQL expression of the level's value.
    pub sql: String,
}

/// A partition rule as SQL text, before compilation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSpec {
    /// `partition.by` or the contents of `partition.by.file`: `expr AS name, column, ...`.
    Sql { key: String, list: String },
    /// A preset, level by level.
    Levels {
        key: String,
        levels: Vec<Level>,
        /// Time-based presets: a record without a timestamp is a bad record (as in Kafka Connect).
        requires_timestamp: bool,
    },
}

impl RuleSpec {
    /// The config key the rule came from, for error messages.
    pub fn key(&self) -> &str {
        match self {
            RuleSpec::Sql { key, .. } | RuleSpec::Levels { key, .. } => key,
        }
    }

    pub fn requires_timestamp(&self) -> bool {
        matches!(
            self,
            RuleSpec::Levels {
                requires_timestamp: true,
                ..
            }
        )
    }
}

/// The record time of `timestamp.extractor`, as SQL (used by time-based presets and by
/// `rotate.interval.ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampSpec {
    /// Evaluates to a timestamp (or epoch-based value DataFusion casts to one).
    pub sql: String,
    /// What the timestamp is, for messages ("field 'ts'").
    pub description: String,
}
