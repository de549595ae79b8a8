//! `streamx query`: registers each topic's committed output as a DataFusion table (named after
//! the topic, with its Hive-style partition columns) and runs one SQL statement over them, so a
//! user can check what was written without another tool.
//!
//! ```text
//!  store.url/<topics.dir>/ ──list──► topics (not `_`-prefixed) ──► first data file's directory
//!        ──► partition columns (`name=value` levels, as strings) ──► ListingTable per topic
//!        ──► SessionContext::sql ──► pretty-printed batches
//! ```
//!
//! Only committed files are visible: staging lives under `<topics.dir>/_streamx/`, outside every
//! table's location. Listings go through [`crate::compact::view::JournalView`], which hides the
//! files of a compaction swap in flight, so a query never sees a row twice.

use std::sync::Arc;

use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::{SessionConfig, SessionContext};
use futures::TryStreamExt;
use object_store::path::Path;

use crate::config::{Config, OutputFormat};
use crate::store::{Store, StoreError};
use crate::Origin;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("listing {path} failed: {source}")]
    List {
        path: String,
        source: object_store::Error,
    },
    #[error("format.class={0} cannot be queried (only Parquet output can, for now)")]
    Format(&'static str),
    #[error("table '{table}': {message}")]
    Table { table: String, message: String },
    #[error("query failed: {0}")]
    Sql(String),
    #[error("cannot start the I/O runtime: {0}")]
    Runtime(std::io::Error),
}

impl QueryError {
    pub fn origin(&self) -> Origin {
        match self {
            QueryError::Store(e) => e.origin(),
            QueryError::List { .. } => Origin::External,
            QueryError::Format(_) | QueryError::Sql(_) => Origin::User,
            QueryError::Table { .. } => Origin::External,
            QueryError::Runtime(_) => Origin::Internal,
        }
    }
}

/// The URL DataFusion reaches the configured store under.
const STORE_URL: &str = "streamx://store";

/// Runs `sql` over the committed output of every topic under `topics.dir`.
pub fn run(config: &Config, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(QueryError::Runtime)?;
    runtime.block_on(run_async(config, sql))
}

/// [`run`], pretty-printed.
pub fn run_to_string(config: &Config, sql: &str) -> Result<String, QueryError> {
    let batches = run(config, sql)?;
    arrow::util::pretty::pretty_format_batches(&batches)
        .map(|t| t.to_string())
        .map_err(|e| QueryError::Sql(e.to_string()))
}

async fn run_async(config: &Config, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
    let (format, ext): (Arc<ParquetFormat>, &str) = match config.format {
        OutputFormat::Parquet => (Arc::new(ParquetFormat::default()), ".parquet"),
        other => return Err(QueryError::Format(other.extension())),
    };
    let store = Store::with_url(&config.store_url, &config.store_options)?;
    let mut session = SessionConfig::new();
    session.options_mut().sql_parser.enable_ident_normalization = false;
    let ctx = SessionContext::new_with_config(session);
    let base = url::Url::parse(STORE_URL).map_err(|e| QueryError::Sql(e.to_string()))?;
    // Listings that hide the files of in-flight compaction swaps: no row is seen twice.
    let view = crate::compact::view::JournalView::new(store.clone(), &config.topics_dir);
    ctx.register_object_store(&base, Arc::new(view));
    let topics_dir = store.path(&config.topics_dir);
    for topic in list_topics(&store, &topics_dir).await? {
        let table_dir = store.path(&format!("{}/{topic}", config.topics_dir));
        let columns = partition_columns(&store, &table_dir, ext).await?;
        let table_err = |message: String| QueryError::Table {
            table: topic.clone(),
            message,
        };
        let url = ListingTableUrl::parse(format!("{STORE_URL}/{table_dir}/"))
            .map_err(|e| table_err(e.to_string()))?;
        let plain = ListingOptions::new(format.clone()).with_file_extension(ext);
        let file_schema = plain
            .infer_schema(&ctx.state(), &url)
            .await
            .map_err(|e| table_err(e.to_string()))?;
        // A level named like a column of the files (Field partitioning keeps the field) is
        // already in the data; it is not added again.
        let columns: Vec<(String, DataType)> = columns
            .into_iter()
            .filter(|c| file_schema.field_with_name(c).is_err())
            .map(|c| (c, DataType::Utf8))
            .collect();
        let cfg = ListingTableConfig::new(url)
            .with_listing_options(plain.with_table_partition_cols(columns))
            .with_schema(file_schema);
        let table = ListingTable::try_new(cfg).map_err(|e| table_err(e.to_string()))?;
        ctx.register_table(TableReference::bare(topic.as_str()), Arc::new(table))
            .map_err(|e| table_err(e.to_string()))?;
    }
    let df = ctx
        .sql(sql)
        .await
        .map_err(|e| QueryError::Sql(e.to_string()))?;
    df.collect()
        .await
        .map_err(|e| QueryError::Sql(e.to_string()))
}

/// Topic directories under `topics.dir` (StreamX's own `_streamx` and other `_`/`.` names skipped).
async fn list_topics(store: &Store, dir: &Path) -> Result<Vec<String>, QueryError> {
    let listing = store
        .inner
        .list_with_delimiter(Some(dir))
        .await
        .map_err(|source| QueryError::List {
            path: dir.to_string(),
            source,
        })?;
    let mut topics: Vec<String> = listing
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .filter(|name| !name.starts_with('_') && !name.starts_with('.'))
        .collect();
    topics.sort();
    Ok(topics)
}

/// The partition column names of a table: the `name=` levels between the table directory and
/// its first data file (none when a level is not `name=value`).
async fn partition_columns(
    store: &Store,
    table_dir: &Path,
    ext: &str,
) -> Result<Vec<String>, QueryError> {
    let mut files = store.inner.list(Some(table_dir));
    while let Some(meta) = files.try_next().await.map_err(|source| QueryError::List {
        path: table_dir.to_string(),
        source,
    })? {
        let Some(rel) = meta.location.prefix_match(table_dir) else {
            continue;
        };
        let parts: Vec<String> = rel.map(|p| p.as_ref().to_string()).collect();
        let Some((file, dirs)) = parts.split_last() else {
            continue;
        };
        if !file.ends_with(ext)
            || dirs
                .iter()
                .any(|d| d.starts_with('_') || d.starts_with('.'))
        {
            continue;
        }
        let names: Option<Vec<String>> = dirs
            .iter()
            .map(|d| d.split_once('=').map(|(n, _)| n.to_string()))
            .collect();
        return Ok(names.unwrap_or_default());
    }
    Ok(Vec::new())
}
