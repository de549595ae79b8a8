//! Hive Metastore integration: registers StreamX outputs as external Hive tables and their
//! partitions, so Hive, Spark, Trino and friends can query them.
//!
//! - [`config`]: the `hive.*` keys.
//! - [`registrar`]: registers every commit (and, at start, what is in the store) in the background;
//!   [`catchup`] reads what the store holds.
//! - [`metastore`]: the synchronous Thrift client (timeouts, retries, failover).
//! - `error` (re-exported): [`HiveError`], the client's typed error, and its origin.
//! - [`model`]: the metastore objects (`Table`, `Partition`, ...) as plain data.
//! - [`types`]: Arrow -> Hive column types, Hive type parsing and widening.
//! - [`table`]: the table and partition definitions StreamX registers, locations, evolution.
//! - `wire`, `codec`, `calls` (private): Thrift binary encoding of the objects and calls used.

mod calls;
pub mod catchup;
mod codec;
pub mod config;
mod error;
pub mod metastore;
pub mod model;
pub mod registrar;
pub mod table;
pub mod types;
mod wire;

pub use error::HiveError;
pub use metastore::{MetastoreClient, MetastoreConfig, MetastoreUri, RemoteErrorKind};
pub use table::{FileFormat, PartitionKey, SchemeMap, TableError, TableSpec};
pub use types::{HiveType, TypeError};
