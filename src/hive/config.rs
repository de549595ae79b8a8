//! The validated `hive.*` settings ([`HiveConfig`], `Config::hive`) and the table naming and
//! location rules they imply. The keys are parsed by `config::hive` (which imports this module;
//! this module imports nothing from `config`, so there is no import circle).
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `hive.integration` | `false` | register tables and partitions |
//! | `hive.metastore.uris` | (required) | `thrift://host:port[,...]`, tried in order (failover) |
//! | `hive.database` | `default` | created if missing |
//! | `hive.table.name` | topic as identifier | [`table_name_for_topic`] |
//! | `hive.location.scheme.map` | `s3=s3a` | scheme rewrites of table locations |
//! | `hive.table.properties` | | `k=v,k2=v2` table parameters |
//! | `hive.retry.backoff.max.ms` | `30000` | longest pause between attempts while the metastore is down |

use std::collections::BTreeMap;
use std::time::Duration;

use super::metastore::MetastoreConfig;
use super::table::{hive_location, FileFormat, SchemeMap};

/// The validated `hive.*` settings; present in `Config::hive` only when `hive.integration=true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiveConfig {
    /// `hive.metastore.uris` with the client's timeouts; `retries` is kept low because the
    /// registrar retries with its own backoff.
    pub metastore: MetastoreConfig,
    /// `hive.database`, lower-cased.
    pub database: String,
    /// `hive.table.name`, lower-cased; `None` = one table per topic named after it.
    pub table_name: Option<String>,
    /// `hive.location.scheme.map`.
    pub schemes: SchemeMap,
    /// `hive.table.properties`.
    pub table_properties: BTreeMap<String, String>,
    /// `hive.retry.backoff.max.ms`.
    pub max_backoff: Duration,
    /// SerDe and input/output formats of the tables.
    pub format: FileFormat,
}

impl HiveConfig {
    /// The table the files of `topic` are registered in.
    pub fn table_for(&self, topic: &str) -> String {
        self.table_name
            .clone()
            .unwrap_or_else(|| table_name_for_topic(topic))
    }

    /// The Hive location of `topic`'s table: `<store.url>/<topics.dir>/<topic>` as Hive expects
    /// it (a local path becomes `file:///abs`, schemes rewritten by `hive.location.scheme.map`).
    pub fn location_for(
        &self,
        store_url: &str,
        topics_dir: &str,
        topic: &str,
    ) -> Result<String, super::TableError> {
        let base = store_url.trim_end_matches('/');
        let base = if base.is_empty() { "/" } else { base };
        hive_location(
            &format!("{base}/{}/{topic}", topics_dir.trim_matches('/')),
            &self.schemes,
        )
    }
}

/// A topic name made a Hive identifier: lower-case, every character other than `[a-z0-9_]`
/// replaced by `_` (`Orders.EU-1` -> `orders_eu_1`).
pub fn table_name_for_topic(topic: &str) -> String {
    topic
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_become_identifiers() {
        assert_eq!(table_name_for_topic("clicks"), "clicks");
        assert_eq!(table_name_for_topic("Web.Clicks-v2"), "web_clicks_v2");
        assert_eq!(table_name_for_topic("ünï"), "_n_");
    }
}
