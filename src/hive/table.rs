//! The Hive table and partitions StreamX registers for an output, and their schema evolution.
//!
//! A StreamX table is an `EXTERNAL_TABLE` (parameter `EXTERNAL=TRUE`: dropping it never deletes
//! data) whose columns come from the Arrow schema of the records, whose partition keys are the
//! partitioner's fields (type `string` unless told otherwise), and whose SerDe and input/output
//! formats match the file format StreamX writes:
//!
//! | format | SerDe | InputFormat / OutputFormat |
//! |---|---|---|
//! | Parquet | `ParquetHiveSerDe` | `MapredParquetInputFormat` / `MapredParquetOutputFormat` |
//! | Avro | `AvroSerDe` (+ `avro.schema.literal` when given) | `AvroContainerInputFormat` / `AvroContainerOutputFormat` |
//! | JSON lines | `org.apache.hive.hcatalog.data.JsonSerDe` | `TextInputFormat` / `HiveIgnoreKeyTextOutputFormat` |
//! | CSV | `OpenCSVSerde` (default) or `LazySimpleSerDe` | `TextInputFormat` / `HiveIgnoreKeyTextOutputFormat` |
//!
//! CSV defaults to `OpenCSVSerde` because it parses RFC 4180 quoting, which is what CSV writers
//! (arrow-csv) emit for values holding the delimiter, quotes or newlines; `LazySimpleSerDe` has
//! no quoting, so such values would silently shift columns. The price: `OpenCSVSerde` reads
//! every column as `string` (Spark fails on other declared types), so its tables declare all
//! columns `string` and readers cast. `CsvSerde::LazySimple` keeps typed columns for writers
//! that never quote.
//!
//! Partition directories are `<table location>/<k1>=<v1>/<k2>=<v2>` with Hive's path escaping
//! ([`escape_path_name`]), so they equal the names `get_partition_names` returns.
//!
//! Locations: see [`hive_location`]. `s3://` becomes `s3a://` by default ([`SchemeMap`]).

use std::collections::BTreeMap;

use arrow::datatypes::Schema;

use super::model::{FieldSchema, Partition, SerDeInfo, StorageDescriptor, Table, EXTERNAL_TABLE};
use super::types::{hive_column_name, hive_columns, HiveType, TypeError};
use crate::Origin;

/// Hive's directory name for a null (or empty) partition value.
pub const DEFAULT_PARTITION_NAME: &str = "__HIVE_DEFAULT_PARTITION__";

const TEXT_INPUT: &str = "org.apache.hadoop.mapred.TextInputFormat";
const TEXT_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error(transparent)]
    Type(#[from] TypeError),
    #[error("invalid Hive {what} name {name:?}: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("invalid table location {location:?}: {reason}")]
    InvalidLocation { location: String, reason: String },
    #[error("partition key {key:?} is given twice")]
    DuplicateKey { key: String },
    #[error("table `{table}` has {keys} partition key(s) but {values} value(s) were given")]
    PartitionArity {
        table: String,
        keys: usize,
        values: usize,
    },
    #[error("table `{table}`: empty value for partition key `{key}` (Hive's name for null is {DEFAULT_PARTITION_NAME})")]
    EmptyPartitionValue { table: String, key: String },
    #[error("table `{table}` has no location")]
    NoLocation { table: String },
    #[error("table `{table}`: column `{column}` is {existing} in the metastore but the new schema makes it {new}; Hive cannot read the existing files as the new type, so the table is left unchanged")]
    IncompatibleColumn {
        table: String,
        column: String,
        existing: String,
        new: String,
    },
}

impl TableError {
    /// Every table error comes from the configuration, the data's schema, or a table someone
    /// else defined.
    pub fn origin(&self) -> Origin {
        Origin::User
    }
}

/// How CSV files are read by Hive; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvSerde {
    /// `org.apache.hadoop.hive.serde2.OpenCSVSerde`: RFC 4180 quoting, all columns `string`.
    #[default]
    OpenCsv,
    /// `org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe` with `field.delim`: typed columns,
    /// no quoting (empty fields read as null).
    LazySimple,
}

/// The file format StreamX writes, which decides SerDe and input/output formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    /// `schema_literal`: the Avro writer schema (JSON); set as `avro.schema.literal` so Hive
    /// reads with exactly that schema instead of deriving one from the columns.
    Avro {
        schema_literal: Option<String>,
    },
    /// One JSON object per line.
    JsonLines,
    Csv {
        serde: CsvSerde,
        delimiter: char,
    },
}

impl FileFormat {
    pub fn csv() -> Self {
        FileFormat::Csv {
            serde: CsvSerde::OpenCsv,
            delimiter: ',',
        }
    }

    /// (SerDe class, SerDe parameters, InputFormat, OutputFormat).
    fn storage(
        &self,
    ) -> (
        &'static str,
        BTreeMap<String, String>,
        &'static str,
        &'static str,
    ) {
        let mut params = BTreeMap::new();
        match self {
            FileFormat::Parquet => {
                params.insert("serialization.format".into(), "1".into());
                (
                    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                    params,
                    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                )
            }
            FileFormat::Avro { schema_literal } => {
                if let Some(s) = schema_literal {
                    params.insert("avro.schema.literal".into(), s.clone());
                }
                (
                    "org.apache.hadoop.hive.serde2.avro.AvroSerDe",
                    params,
                    "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat",
                    "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat",
                )
            }
            FileFormat::JsonLines => (
                "org.apache.hive.hcatalog.data.JsonSerDe",
                params,
                TEXT_INPUT,
                TEXT_OUTPUT,
            ),
            FileFormat::Csv {
                serde: CsvSerde::OpenCsv,
                delimiter,
            } => {
                params.insert("separatorChar".into(), delimiter.to_string());
                params.insert("quoteChar".into(), "\"".into());
                params.insert("escapeChar".into(), "\\".into());
                (
                    "org.apache.hadoop.hive.serde2.OpenCSVSerde",
                    params,
                    TEXT_INPUT,
                    TEXT_OUTPUT,
                )
            }
            FileFormat::Csv {
                serde: CsvSerde::LazySimple,
                delimiter,
            } => {
                params.insert("field.delim".into(), delimiter.to_string());
                params.insert("serialization.format".into(), delimiter.to_string());
                params.insert("serialization.null.format".into(), String::new());
                (
                    "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                    params,
                    TEXT_INPUT,
                    TEXT_OUTPUT,
                )
            }
        }
    }

    /// Whether Hive sees every column of this format as `string`.
    fn all_strings(&self) -> bool {
        matches!(
            self,
            FileFormat::Csv {
                serde: CsvSerde::OpenCsv,
                ..
            }
        )
    }
}

/// A partition key: its name and Hive type (`string` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionKey {
    pub name: String,
    pub hive_type: String,
}

impl PartitionKey {
    pub fn string(name: impl Into<String>) -> Self {
        PartitionKey {
            name: name.into(),
            hive_type: "string".into(),
        }
    }

    pub fn typed(name: impl Into<String>, hive_type: impl Into<String>) -> Self {
        PartitionKey {
            name: name.into(),
            hive_type: hive_type.into(),
        }
    }
}

/// What StreamX knows about the table it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub database: String,
    pub table: String,
    /// A Hive location URI, from [`hive_location`].
    pub location: String,
    pub partition_keys: Vec<PartitionKey>,
    pub format: FileFormat,
    pub owner: Option<String>,
    /// Extra table parameters (TBLPROPERTIES).
    pub parameters: BTreeMap<String, String>,
}

/// Checks a database or table name as Hive 2.3 does (`[A-Za-z0-9_]+`) and lower-cases it.
pub fn hive_object_name(what: &'static str, name: &str) -> Result<String, TableError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(TableError::InvalidName {
            what,
            name: name.to_string(),
            reason: "Hive allows letters, digits and '_' only",
        });
    }
    Ok(name.to_ascii_lowercase())
}

/// The table definition for `spec` and the records' Arrow `schema`. Schema columns named like a
/// partition key are left out of the data columns (Hive forbids the overlap; readers take the
/// key's value from the partition directory).
pub fn build_table(spec: &TableSpec, schema: &Schema) -> Result<Table, TableError> {
    let db_name = hive_object_name("database", &spec.database)?;
    let table_name = hive_object_name("table", &spec.table)?;
    let mut partition_keys: Vec<FieldSchema> = Vec::with_capacity(spec.partition_keys.len());
    for key in &spec.partition_keys {
        let name = hive_column_name(&key.name);
        if partition_keys.iter().any(|k| k.name == name) {
            return Err(TableError::DuplicateKey {
                key: key.name.clone(),
            });
        }
        // Validates the type string.
        let t = HiveType::parse(&key.hive_type)?;
        partition_keys.push(FieldSchema::new(name, t.to_string()));
    }
    let mut cols = data_columns(schema, &partition_keys)?;
    if spec.format.all_strings() {
        for c in &mut cols {
            c.type_name = "string".into();
        }
    }
    let (serde, serde_params, input, output) = spec.format.storage();
    let mut parameters = spec.parameters.clone();
    parameters.insert("EXTERNAL".into(), "TRUE".into());
    if let FileFormat::Avro {
        schema_literal: Some(s),
    } = &spec.format
    {
        parameters.insert("avro.schema.literal".into(), s.clone());
    }
    Ok(Table {
        table_name: table_name.clone(),
        db_name,
        owner: spec.owner.clone(),
        sd: Some(StorageDescriptor {
            cols,
            location: Some(spec.location.trim_end_matches('/').to_string()),
            input_format: Some(input.into()),
            output_format: Some(output.into()),
            serde_info: Some(SerDeInfo {
                name: Some(table_name),
                serialization_lib: Some(serde.into()),
                parameters: serde_params,
            }),
            ..StorageDescriptor::default()
        }),
        partition_keys,
        parameters,
        table_type: Some(EXTERNAL_TABLE.into()),
        ..Table::default()
    })
}

fn data_columns(schema: &Schema, keys: &[FieldSchema]) -> Result<Vec<FieldSchema>, TableError> {
    let mut cols = hive_columns(schema)?;
    cols.retain(|c| !keys.iter().any(|k| k.name == c.name));
    Ok(cols)
}

/// Hive's escaping of a partition key or value in a path (`FileUtils.escapePathName`): control
/// characters and `"#%'*/:=?\{[]^` and DEL become `%XX`; everything else is kept. The same
/// escaping StreamX's partitioner writes directories with ([`crate::partition::escape`]).
pub fn escape_path_name(s: &str) -> String {
    crate::partition::escape::escape(s)
}

/// The partition's relative path / name: `k1=v1/k2=v2`, escaped as Hive does.
pub fn partition_name(keys: &[FieldSchema], values: &[String]) -> String {
    keys.iter()
        .zip(values)
        .map(|(k, v)| format!("{}={}", escape_path_name(&k.name), escape_path_name(v)))
        .collect::<Vec<_>>()
        .join("/")
}

/// The partition of `table` with `values` (one per partition key, in order), located at
/// `<table location>/<partition_name>`, with the table's storage descriptor.
pub fn build_partition(table: &Table, values: &[String]) -> Result<Partition, TableError> {
    let name = format!("{}.{}", table.db_name, table.table_name);
    if values.len() != table.partition_keys.len() {
        return Err(TableError::PartitionArity {
            table: name,
            keys: table.partition_keys.len(),
            values: values.len(),
        });
    }
    if let Some((k, _)) = table
        .partition_keys
        .iter()
        .zip(values)
        .find(|(_, v)| v.is_empty())
    {
        return Err(TableError::EmptyPartitionValue {
            table: name,
            key: k.name.clone(),
        });
    }
    let Some(table_location) = table.location() else {
        return Err(TableError::NoLocation { table: name });
    };
    let location = format!(
        "{}/{}",
        table_location.trim_end_matches('/'),
        partition_name(&table.partition_keys, values)
    );
    let mut sd = table.sd.clone().unwrap_or_default();
    sd.location = Some(location);
    Ok(Partition {
        values: values.to_vec(),
        db_name: table.db_name.clone(),
        table_name: table.table_name.clone(),
        sd: Some(sd),
        ..Partition::default()
    })
}

/// Scheme rewrites from StreamX store URLs to Hive locations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeMap {
    pairs: Vec<(String, String)>,
}

impl Default for SchemeMap {
    /// `s3` -> `s3a`: Hadoop's maintained S3 connector is S3A, and a stock Hive/Spark has no
    /// `s3://` filesystem (only EMR's EMRFS serves `s3://`: use [`SchemeMap::identity`] there).
    fn default() -> Self {
        SchemeMap::identity().with("s3", "s3a")
    }
}

impl SchemeMap {
    /// No rewriting.
    pub fn identity() -> Self {
        SchemeMap { pairs: Vec::new() }
    }

    /// Adds (or replaces) the rewrite `from` -> `to`.
    pub fn with(mut self, from: &str, to: &str) -> Self {
        let from = from.to_ascii_lowercase();
        self.pairs.retain(|(f, _)| *f != from);
        self.pairs.push((from, to.to_ascii_lowercase()));
        self
    }

    fn map<'a>(&'a self, scheme: &'a str) -> &'a str {
        self.pairs
            .iter()
            .find(|(f, _)| f == scheme)
            .map(|(_, t)| t.as_str())
            .unwrap_or(scheme)
    }
}

/// The Hive location for a StreamX location: a URL (`s3://bucket/x`, `gs://...`, `file:///x`)
/// gets its scheme rewritten by `schemes`; a local path becomes a `file://` URI (made absolute
/// against the current directory, not percent-encoded, as Hadoop's `Path` expects). Trailing
/// slashes are removed. Azure `az://container/x` needs the account in the authority for Hive
/// (`abfss://container@account.dfs.core.windows.net/x`): give that URL directly.
pub fn hive_location(location: &str, schemes: &SchemeMap) -> Result<String, TableError> {
    let invalid = |reason: &str| TableError::InvalidLocation {
        location: location.to_string(),
        reason: reason.to_string(),
    };
    if location.is_empty() {
        return Err(invalid("empty"));
    }
    let trimmed = location.trim_end_matches('/');
    if let Some((scheme, rest)) = location.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        let valid = scheme.len() > 1
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid {
            return Err(invalid("not a URL or a local path"));
        }
        if scheme == "file" {
            let path = rest.trim_end_matches('/');
            if !path.starts_with('/') {
                return Err(invalid(
                    "a file:// URL needs an absolute path (file:///dir)",
                ));
            }
            return Ok(format!("file://{path}"));
        }
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.starts_with('/') {
            return Err(invalid("no bucket or host"));
        }
        return Ok(format!("{}://{rest}", schemes.map(&scheme)));
    }
    // Hive's own normalised form, `file:/x`.
    if let Some(path) = location.strip_prefix("file:") {
        let path = path.trim_end_matches('/');
        if !path.starts_with('/') {
            return Err(invalid("a file: URL needs an absolute path (file:/dir)"));
        }
        return Ok(format!("file://{path}"));
    }
    if trimmed.contains(':') && !trimmed.starts_with('/') {
        return Err(invalid("not a URL (scheme://...) or a local path"));
    }
    let abs = std::path::absolute(if trimmed.is_empty() { "/" } else { trimmed })
        .map_err(|e| invalid(&e.to_string()))?;
    let Some(abs) = abs.to_str() else {
        return Err(invalid("not valid UTF-8"));
    };
    Ok(format!("file://{}", abs.trim_end_matches('/')))
}

/// The table altered so it can hold records of `new_schema`: columns missing from the table
/// are appended, existing columns keep their place (and comment) and are widened where the new
/// type needs it ([`HiveType::merge`]); columns the new schema lacks stay. `Ok(None)` when the
/// table needs no change. A column whose type cannot be merged is an error naming it.
pub fn evolve_table(current: &Table, new_schema: &Schema) -> Result<Option<Table>, TableError> {
    Ok(evolve(current, new_schema, false)?.0)
}

/// As [`evolve_table`], for a metastore that refuses every change of an existing column's type
/// but primitive widening (Hive's `hive.metastore.disallow.incompatible.col.type.changes`, true
/// by default: a struct that gained a field is such a change). New columns are appended and
/// primitive types widened; the other columns keep their type and are returned by name.
pub fn evolve_table_appending(
    current: &Table,
    new_schema: &Schema,
) -> Result<(Option<Table>, Vec<String>), TableError> {
    evolve(current, new_schema, true)
}

fn evolve(
    current: &Table,
    new_schema: &Schema,
    primitive_only: bool,
) -> Result<(Option<Table>, Vec<String>), TableError> {
    let name = format!("{}.{}", current.db_name, current.table_name);
    let new_cols = data_columns(new_schema, &current.partition_keys)?;
    let all_strings = current
        .sd
        .as_ref()
        .and_then(|sd| sd.serde_info.as_ref())
        .and_then(|s| s.serialization_lib.as_deref())
        == Some("org.apache.hadoop.hive.serde2.OpenCSVSerde");
    let mut cols = current.columns().to_vec();
    let mut changed = false;
    let mut kept = Vec::new();
    for new in new_cols {
        let new_type = if all_strings {
            "string".to_string()
        } else {
            new.type_name
        };
        let Some(col) = cols
            .iter_mut()
            .find(|c| c.name.eq_ignore_ascii_case(&new.name))
        else {
            cols.push(FieldSchema::new(new.name, new_type));
            changed = true;
            continue;
        };
        let existing = HiveType::parse(&col.type_name)?;
        let wanted = HiveType::parse(&new_type)?;
        let merged = existing
            .merge(&wanted)
            .ok_or_else(|| TableError::IncompatibleColumn {
                table: name.clone(),
                column: col.name.clone(),
                existing: col.type_name.clone(),
                new: new_type.clone(),
            })?;
        if merged == existing {
            continue;
        }
        let primitive = matches!(
            (&existing, &merged),
            (HiveType::Primitive(_), HiveType::Primitive(_))
        );
        if primitive_only && !primitive {
            kept.push(col.name.clone());
            continue;
        }
        col.type_name = merged.to_string();
        changed = true;
    }
    if !changed {
        return Ok((None, kept));
    }
    let mut table = current.clone();
    table.sd.get_or_insert_with(StorageDescriptor::default).cols = cols;
    Ok((Some(table), kept))
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
