//! `compact.hive.swap=location`: while the files of a directory are swapped, its Hive partition
//! points at the staged outputs, so metastore readers (Spark, Hive, Trino through the table)
//! never see a row twice.
//!
//! ```text
//!  record created (lists the partition, its home = the data directory, and the staged directory)
//!   ──► the directory's other files (not inputs) copied next to the staged outputs
//!   ──► alter_partition: location = staged outputs     metastore readers: outputs only
//!   ──► publish: copy staged -> data directory          (the staged copy stays for readers)
//!   ──► inputs moved to the trash
//!   ──► alter_partition: location = home                metastore readers: outputs + late rows
//!   ──► <record>.home written (later runs skip the metastore; a Hive-less run may go on)
//!  staged copy deleted by a later run once older than compact.retention.ms
//! ```
//!
//! The partition goes back home because ingest writes late records into the data directory
//! (its path comes from the layout, never from the metastore): pointing the partition anywhere
//! else for good would hide them. Each step is idempotent, so the next run replays the newest
//! record of a directory (and puts its partition back home) whatever step a kill interrupted.
//! A run without Hive settings cannot see where a partition points: it leaves a directory whose
//! newest location swap has no `.home` marker, and that swap's staged files, as they are.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::error::CompactError;
use crate::config::Config;
use crate::hive::config::HiveConfig;
use crate::hive::table::hive_location;
use crate::hive::{HiveError, MetastoreClient};

/// The partition a compaction record switches, as the record stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSwap {
    pub database: String,
    pub table: String,
    /// Partition values in key order.
    pub values: Vec<String>,
    /// The data directory's Hive location, where the partition points before and after.
    pub home: String,
    /// The staged outputs' Hive location, where it points during the swap.
    pub swap: String,
    /// (file, its copy in the staged directory): the files of the directory that are not
    /// inputs, copied next to the outputs before the switch so the partition keeps showing them.
    #[serde(default)]
    pub carried: Vec<(String, String)>,
}

/// A metastore client for location swaps.
pub struct HiveSwap {
    client: Mutex<MetastoreClient>,
    hive: HiveConfig,
    store_url: String,
    topics_dir: String,
}

impl std::fmt::Debug for HiveSwap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HiveSwap({})", self.hive.database)
    }
}

impl HiveSwap {
    /// A client when `hive.integration=true` (needed to finish records of location swaps even
    /// when this run swaps files).
    pub fn from_config(config: &Config) -> Result<Option<Self>, CompactError> {
        let Some(hive) = &config.hive else {
            return Ok(None);
        };
        let client =
            MetastoreClient::new(hive.metastore.clone()).map_err(|source| CompactError::Hive {
                what: "connect".into(),
                source: Box::new(source),
            })?;
        Ok(Some(HiveSwap {
            client: Mutex::new(client),
            hive: hive.clone(),
            store_url: config.store_url.clone(),
            topics_dir: config.topics_dir.clone(),
        }))
    }

    /// The swap of directory `dir` of `topic` to the staged directory `staged` (relative to the
    /// store root), or `None` when the partition is not registered (no metastore reader sees it).
    pub fn plan(
        &self,
        topic: &str,
        dir: &str,
        staged: &str,
    ) -> Result<Option<PartitionSwap>, CompactError> {
        let table = self.hive.table_for(topic);
        let values: Vec<String> = super::plan::partition_values(dir)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        let what = || format!("get_partition {table} {dir}");
        let found = self.call(|c| c.get_partition(&self.hive.database, &table, &values));
        match found {
            Ok(_) => {}
            Err(e) if e.is_no_such_object() => return Ok(None),
            Err(source) => {
                return Err(CompactError::Hive {
                    what: what(),
                    source: Box::new(source),
                })
            }
        }
        let bad = |e: crate::hive::TableError| CompactError::Write {
            dir: format!("{topic}/{dir}"),
            message: format!("no Hive location: {e}"),
        };
        // As the ingest registrar sets it: the table location and the directory.
        let home = self
            .hive
            .location_for(&self.store_url, &self.topics_dir, topic)
            .map_err(bad)?;
        let base = self.store_url.trim_end_matches('/');
        let base = if base.is_empty() { "/" } else { base };
        Ok(Some(PartitionSwap {
            database: self.hive.database.clone(),
            table,
            values,
            home: format!("{home}/{dir}"),
            swap: hive_location(&format!("{base}/{staged}"), &self.hive.schemes).map_err(bad)?,
            carried: Vec::new(),
        }))
    }

    /// Points the partition at `location` (one `alter_partition`, skipped when it already
    /// does). True when it was altered.
    pub fn point(&self, swap: &PartitionSwap, location: &str) -> Result<bool, CompactError> {
        let what = || {
            format!(
                "alter_partition {}.{} -> {location}",
                swap.database, swap.table
            )
        };
        let hive_err = |source: HiveError| CompactError::Hive {
            what: what(),
            source: Box::new(source),
        };
        let mut partition = self
            .call(|c| c.get_partition(&swap.database, &swap.table, &swap.values))
            .map_err(hive_err)?;
        let Some(sd) = partition.sd.as_mut() else {
            return Err(CompactError::Write {
                dir: format!("{}.{} {:?}", swap.database, swap.table, swap.values),
                message: "the Hive partition has no storage descriptor to relocate".into(),
            });
        };
        if sd.location.as_deref() == Some(location) {
            return Ok(false);
        }
        sd.location = Some(location.to_string());
        self.call(|c| c.alter_partition(&swap.database, &swap.table, &partition))
            .map_err(hive_err)?;
        tracing::info!(table = %swap.table, values = ?swap.values, %location, "Hive partition location switched");
        Ok(true)
    }

    /// Runs a blocking metastore call without stalling the async runtime.
    fn call<T>(
        &self,
        f: impl FnOnce(&mut MetastoreClient) -> Result<T, HiveError>,
    ) -> Result<T, HiveError> {
        tokio::task::block_in_place(|| {
            let mut client = self.client.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut client)
        })
    }
}
