//! StreamX: copies Kafka topics into object stores as analytics-ready files, exactly once.
//!
//! ```text
//!  Kafka (consumer group) ──► source ──► RecordBuffer (raw bytes + Kafka metadata, per partition)
//!                                             │
//!                                          decode ──► RecordBatch (+ _topic, _partition, ...)
//!                                             │
//!                              expr: transform.sql (optional), partition rule, record time (SQL)
//!                                             │
//!                                        partition ──► one open file per output partition (format)
//!                                             │
//!                          sink: rotation (records, bytes, record-time, wall-clock schedule, idle)
//!                                             │
//!                          commit: stage ─► commit object (PutMode::Create) ─► publish final names
//!                                             │
//!                          Kafka offsets committed (advisory, for lag)
//! ```
//!
//! Module map: [`alloc`] sets malloc up per subcommand, [`config`] reads and validates the flat
//! key/value configuration, [`job`] prepares a job from it (the same way for every entry point), [`source`] owns the Kafka consumer and rebalances, [`decode`] turns
//! bytes into Arrow, [`expr`] compiles SQL over batches, [`partition`] names output partitions (SQL
//! rules and the classic presets), [`format`] encodes files, [`store`] builds object stores from
//! URLs, [`hive`] registers tables and partitions in a Hive Metastore, [`commit`] is the
//! exactly-once protocol, [`sink`] buffers and rotates per Kafka partition, [`ingest`] runs the
//! loop, [`query`] runs SQL over what was committed, [`compact`] merges the small files of closed
//! directories (journaled swap), [`worker`] runs jobs behind a Kafka-Connect-compatible REST API.

pub mod alloc;
pub mod clock;
pub mod commit;
pub mod compact;
pub mod config;
pub mod decode;
pub mod expr;
pub mod fault;
pub mod format;
pub mod hive;
pub mod ingest;
pub mod job;
pub mod metrics;
pub mod partition;
pub mod query;
pub mod quickstart;
pub mod sink;
pub mod source;
pub mod store;
pub mod worker;

/// Who has to act on an error: the user (fix the config or input), an external system (broker,
/// store), or StreamX itself (a bug).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    User,
    External,
    Internal,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::User => "user error",
            Origin::External => "external system error",
            Origin::Internal => "internal error (a StreamX bug)",
        })
    }
}
