//! The Hive Metastore objects StreamX reads and writes, as plain Rust data: the subset of
//! `hive_metastore.thrift` (Hive 2.3) that registering external tables and partitions needs.
//!
//! Field names follow the IDL (snake_cased); the Thrift field ids live in `codec.rs`. Fields of
//! the IDL that are not modelled here (privileges, skewed info, catalog names, constraints) are
//! skipped when a reply is decoded and left unset when an object is sent, which the metastore
//! treats as "absent" (as the Java client does when they are null).

use std::collections::BTreeMap;

/// `TableType` value of an external table (data not owned by Hive).
pub const EXTERNAL_TABLE: &str = "EXTERNAL_TABLE";

/// A column or partition key (`FieldSchema`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSchema {
    pub name: String,
    /// Hive type string, e.g. `bigint`, `array<string>`, `struct<a:int>`.
    pub type_name: String,
    pub comment: Option<String>,
}

impl FieldSchema {
    pub fn new(name: impl Into<String>, type_name: impl Into<String>) -> Self {
        FieldSchema {
            name: name.into(),
            type_name: type_name.into(),
            comment: None,
        }
    }
}

/// `SerDeInfo`: which SerDe reads and writes the files, and its parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SerDeInfo {
    pub name: Option<String>,
    pub serialization_lib: Option<String>,
    pub parameters: BTreeMap<String, String>,
}

/// `Order`: a sort column of a bucketed table (`order` 1 = ascending, 0 = descending).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Order {
    pub col: String,
    pub order: i32,
}

/// `StorageDescriptor`: columns, location and file format of a table or partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageDescriptor {
    pub cols: Vec<FieldSchema>,
    pub location: Option<String>,
    pub input_format: Option<String>,
    pub output_format: Option<String>,
    pub compressed: bool,
    /// -1 when the table is not bucketed.
    pub num_buckets: i32,
    pub serde_info: Option<SerDeInfo>,
    pub bucket_cols: Vec<String>,
    pub sort_cols: Vec<Order>,
    pub parameters: BTreeMap<String, String>,
    pub stored_as_sub_directories: Option<bool>,
}

impl Default for StorageDescriptor {
    fn default() -> Self {
        StorageDescriptor {
            cols: Vec::new(),
            location: None,
            input_format: None,
            output_format: None,
            compressed: false,
            num_buckets: -1,
            serde_info: None,
            bucket_cols: Vec::new(),
            sort_cols: Vec::new(),
            parameters: BTreeMap::new(),
            stored_as_sub_directories: None,
        }
    }
}

/// `Table`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub table_name: String,
    pub db_name: String,
    pub owner: Option<String>,
    /// Seconds since the epoch; 0 lets the metastore set it.
    pub create_time: i32,
    pub last_access_time: i32,
    pub retention: i32,
    pub sd: Option<StorageDescriptor>,
    pub partition_keys: Vec<FieldSchema>,
    pub parameters: BTreeMap<String, String>,
    pub view_original_text: Option<String>,
    pub view_expanded_text: Option<String>,
    /// `EXTERNAL_TABLE`, `MANAGED_TABLE`, `VIRTUAL_VIEW`, ...
    pub table_type: Option<String>,
    pub temporary: Option<bool>,
    pub rewrite_enabled: Option<bool>,
}

impl Table {
    /// The table's location, if it has a storage descriptor with one.
    pub fn location(&self) -> Option<&str> {
        self.sd.as_ref().and_then(|sd| sd.location.as_deref())
    }

    /// The table's data columns (not the partition keys).
    pub fn columns(&self) -> &[FieldSchema] {
        self.sd.as_ref().map(|sd| sd.cols.as_slice()).unwrap_or(&[])
    }
}

/// `Database`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Database {
    pub name: String,
    pub description: Option<String>,
    /// None lets the metastore put it under its warehouse directory.
    pub location_uri: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub owner_name: Option<String>,
    /// `PrincipalType`: 1 = USER, 2 = ROLE, 3 = GROUP.
    pub owner_type: Option<i32>,
}

impl Database {
    pub fn new(name: impl Into<String>) -> Self {
        Database {
            name: name.into(),
            ..Database::default()
        }
    }
}

/// `Partition`: one set of partition-key values, with its own storage descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partition {
    /// One value per partition key, in the table's key order.
    pub values: Vec<String>,
    pub db_name: String,
    pub table_name: String,
    pub create_time: i32,
    pub last_access_time: i32,
    pub sd: Option<StorageDescriptor>,
    pub parameters: BTreeMap<String, String>,
}

/// `AddPartitionsRequest` of `add_partitions_req`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddPartitionsRequest {
    pub db_name: String,
    pub tbl_name: String,
    pub parts: Vec<Partition>,
    /// True: partitions that exist already are skipped instead of failing the whole call.
    pub if_not_exists: bool,
    /// False: the metastore does not send the added partitions back (the IDL default is true).
    pub need_result: Option<bool>,
}

/// `AddPartitionsResult`: the partitions that were added (only when `need_result`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddPartitionsResult {
    pub partitions: Option<Vec<Partition>>,
}
