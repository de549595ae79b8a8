//! What the store already holds, for registration at start and for tables created without a
//! commit's schema: the partition directories of a topic that have committed files, the topics
//! under `topics.dir`, and the Arrow schema of a directory's first data file (a Parquet file's
//! footer, an Avro object container file's header).
//!
//! A directory counts when a published data file lies in it, or when the newest commit of a
//! Kafka partition names a file in it (a process killed between the commit and publishing its
//! files: the commit is durable, the files appear when the partition is recovered).

use std::collections::{BTreeMap, BTreeSet};

use arrow::datatypes::SchemaRef;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::table::FileFormat;
use crate::commit::reader::Reader;
use crate::store::Store;

/// Bytes of an Avro file read first for its header (the writer schema is usually far smaller);
/// a larger header makes the whole file be read.
const AVRO_HEADER_PREFIX: u64 = 64 * 1024;

/// A failed store read during catch-up (retried by the registrar).
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error("Hive catch-up: cannot {op} {path}: {source}")]
    Store {
        op: &'static str,
        path: String,
        source: Box<object_store::Error>,
    },
    #[error("Hive catch-up: {path} is not a readable Parquet file: {message}")]
    Footer { path: String, message: String },
    #[error("Hive catch-up: {path} is not a readable Avro object container file: {message}")]
    AvroHeader { path: String, message: String },
    #[error(transparent)]
    Commit(#[from] crate::commit::CommitError),
}

fn store_err(op: &'static str, path: &Path) -> impl FnOnce(object_store::Error) -> CatchUpError {
    let path = path.to_string();
    move |source| CatchUpError::Store {
        op,
        path,
        source: Box::new(source),
    }
}

/// True for a path segment readers skip (`_streamx`, `.tmp`, `_SUCCESS`).
fn hidden(segment: &str) -> bool {
    segment.starts_with('_') || segment.starts_with('.')
}

/// `location` relative to `prefix` (both full store paths), when it lies below it.
fn relative<'a>(location: &'a Path, prefix: &Path) -> Option<&'a str> {
    let p = prefix.as_ref();
    let rest = location.as_ref().strip_prefix(p)?;
    Some(if p.is_empty() {
        rest
    } else {
        rest.strip_prefix('/')?
    })
}

/// Reads the store under one `topics.dir`.
#[derive(Debug, Clone)]
pub struct StoreScan {
    store: Store,
    topics_dir: String,
}

impl StoreScan {
    pub fn new(store: Store, topics_dir: &str) -> Self {
        StoreScan {
            store,
            topics_dir: topics_dir.trim_matches('/').to_string(),
        }
    }

    fn topic_root(&self, topic: &str) -> Path {
        self.store.path(&format!("{}/{topic}", self.topics_dir))
    }

    fn commits_root(&self) -> Path {
        self.store
            .path(&crate::commit::Layout::new(&self.topics_dir).commits_root())
    }

    /// Every object below `root`.
    async fn list_all(&self, root: &Path) -> Result<Vec<object_store::ObjectMeta>, CatchUpError> {
        self.store
            .inner
            .list(Some(root))
            .try_collect()
            .await
            .map_err(store_err("list", root))
    }

    /// The objects and subdirectories directly in `root`.
    async fn list_dir(&self, root: &Path) -> Result<object_store::ListResult, CatchUpError> {
        self.store
            .inner
            .list_with_delimiter(Some(root))
            .await
            .map_err(store_err("list", root))
    }

    /// Topics that have commits under `topics.dir` (for `topics.regex` jobs).
    pub async fn topics(&self) -> Result<Vec<String>, CatchUpError> {
        let root = self.commits_root();
        let topics = self
            .store
            .child_dir_names(&root)
            .await
            .map_err(store_err("list", &root))?;
        Ok(topics)
    }

    /// Directories (relative to `<topics.dir>/<topic>`, e.g. `year=2024/month=01`) that hold
    /// committed files of `topic`, sorted.
    pub async fn committed_dirs(&self, topic: &str) -> Result<BTreeSet<String>, CatchUpError> {
        let root = self.topic_root(topic);
        let mut dirs = BTreeSet::new();
        for meta in &self.list_all(&root).await? {
            let Some(rel) = relative(&meta.location, &root) else {
                continue;
            };
            let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
            let name = rel.rsplit('/').next().unwrap_or(rel);
            if !hidden(name) && !dir.split('/').any(hidden) {
                dirs.insert(dir.to_string());
            }
        }
        // The newest commit of each Kafka partition may not be published yet.
        let log = Reader::new(self.store.clone(), &self.topics_dir);
        let prefix = format!("{}/{topic}/", self.topics_dir);
        for path in self.newest_commits(topic).await? {
            let record = log.read_commit(&path).await?;
            for f in &record.files {
                if let Some(rel) = f.final_path.strip_prefix(&prefix) {
                    dirs.insert(rel.rsplit_once('/').map_or("", |(d, _)| d).to_string());
                }
            }
        }
        Ok(dirs)
    }

    /// The newest commit object of every Kafka partition of `topic`.
    async fn newest_commits(&self, topic: &str) -> Result<Vec<Path>, CatchUpError> {
        let root = self.commits_root().join(topic);
        let mut newest: BTreeMap<String, (u64, Path)> = BTreeMap::new();
        for meta in self.list_all(&root).await? {
            let Some(rel) = relative(&meta.location, &root) else {
                continue;
            };
            let Some((partition, file)) = rel.split_once('/') else {
                continue;
            };
            let Some(seq) = file
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let entry = newest
                .entry(partition.to_string())
                .or_insert((seq, meta.location.clone()));
            if seq > entry.0 {
                *entry = (seq, meta.location.clone());
            }
        }
        Ok(newest.into_values().map(|(_, p)| p).collect())
    }

    /// The Arrow schema of the table of `topic` in `format`, from the first data file in `dir`:
    /// a Parquet footer or an Avro header. `None` when the directory has no such file or the
    /// format has no schema in its files.
    pub async fn table_schema(
        &self,
        topic: &str,
        dir: &str,
        format: &FileFormat,
    ) -> Result<Option<SchemaRef>, CatchUpError> {
        match format {
            FileFormat::Parquet => self.parquet_schema(topic, dir).await,
            FileFormat::Avro { .. } => self.avro_schema(topic, dir).await,
            _ => Ok(None),
        }
    }

    /// The first (by name) published file ending in `.{ext}` in `dir` of `topic`.
    async fn first_file(
        &self,
        topic: &str,
        dir: &str,
        ext: &str,
    ) -> Result<Option<object_store::ObjectMeta>, CatchUpError> {
        let root = self
            .store
            .path(&format!("{}/{topic}/{dir}", self.topics_dir));
        let suffix = format!(".{ext}");
        let listing = self.list_dir(&root).await?;
        Ok(listing
            .objects
            .into_iter()
            .filter(|m| {
                m.location
                    .filename()
                    .is_some_and(|n| !hidden(n) && n.ends_with(&suffix))
            })
            .min_by(|a, b| a.location.cmp(&b.location)))
    }

    /// The Arrow schema of the first Avro file in `dir` of `topic`, from the writer schema in
    /// its header (arrow-avro's Avro -> Arrow mapping, as a reader of the file gets it); `None`
    /// when the directory has no Avro file.
    pub async fn avro_schema(
        &self,
        topic: &str,
        dir: &str,
    ) -> Result<Option<SchemaRef>, CatchUpError> {
        let Some(meta) = self.first_file(topic, dir, "avro").await? else {
            return Ok(None);
        };
        let path = &meta.location;
        let prefix = self
            .store
            .inner
            .get_range(path, 0..meta.size.min(AVRO_HEADER_PREFIX))
            .await
            .map_err(store_err("read", path))?;
        let schema = match avro_header_schema(&prefix) {
            Ok(schema) => schema,
            Err(_) if meta.size > AVRO_HEADER_PREFIX => {
                let whole = self
                    .store
                    .inner
                    .get(path)
                    .await
                    .map_err(store_err("read", path))?
                    .bytes()
                    .await
                    .map_err(store_err("read", path))?;
                avro_header_schema(&whole).map_err(|message| CatchUpError::AvroHeader {
                    path: path.to_string(),
                    message,
                })?
            }
            Err(message) => {
                return Err(CatchUpError::AvroHeader {
                    path: path.to_string(),
                    message,
                })
            }
        };
        Ok(Some(schema))
    }

    /// The Arrow schema of the first Parquet file in `dir` of `topic` (read from its footer
    /// only); `None` when the directory has no Parquet file.
    pub async fn parquet_schema(
        &self,
        topic: &str,
        dir: &str,
    ) -> Result<Option<SchemaRef>, CatchUpError> {
        let Some(meta) = self.first_file(topic, dir, "parquet").await? else {
            return Ok(None);
        };
        let path = &meta.location;
        let footer_err = |message: String| CatchUpError::Footer {
            path: path.to_string(),
            message,
        };
        let size = meta.size;
        if size < 12 {
            return Err(footer_err(format!("{size} bytes")));
        }
        let tail = self
            .store
            .inner
            .get_range(path, size - 8..size)
            .await
            .map_err(store_err("read", path))?;
        if tail.len() != 8 || &tail[4..] != b"PAR1" {
            return Err(footer_err("no PAR1 footer".into()));
        }
        let len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
        if len + 8 > size {
            return Err(footer_err(format!(
                "footer of {len} bytes in a {size}-byte file"
            )));
        }
        let footer = self
            .store
            .inner
            .get_range(path, size - 8 - len..size - 8)
            .await
            .map_err(store_err("read", path))?;
        let metadata = parquet::file::metadata::ParquetMetaDataReader::decode_metadata(&footer)
            .map_err(|e| footer_err(e.to_string()))?;
        let file = metadata.file_metadata();
        let schema =
            parquet::arrow::parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
                .map_err(|e| footer_err(e.to_string()))?;
        Ok(Some(std::sync::Arc::new(schema)))
    }
}

/// The Arrow schema of the Avro object container file starting with `bytes` (at least its
/// whole header).
fn avro_header_schema(bytes: &[u8]) -> Result<SchemaRef, String> {
    let reader = arrow_avro::reader::ReaderBuilder::new()
        .build(std::io::Cursor::new(bytes))
        .map_err(|e| e.to_string())?;
    Ok(reader.schema())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let root = Path::from("a/topics/t");
        assert_eq!(
            relative(&Path::from("a/topics/t/x=1/f.parquet"), &root),
            Some("x=1/f.parquet")
        );
        assert_eq!(relative(&Path::from("a/topics/tt/f"), &root), None);
        assert_eq!(relative(&Path::from("t/f"), &Path::from("")), Some("t/f"));
        assert!(hidden("_streamx") && hidden(".tmp") && !hidden("x=_a"));
    }

    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema};
    use bytes::Bytes;

    use crate::format::avro::{AvroFileWriter, AvroWriterOptions};
    use crate::format::FileWriter;
    use crate::hive::types::hive_columns;

    /// An empty Avro file of `schema`, stored as `topics/t/<dir>/<name>` in a local store.
    fn store_avro(root: &std::path::Path, dir: &str, name: &str, schema: &Schema) -> Store {
        let store = Store::with_url(root.to_str().unwrap(), &BTreeMap::new()).unwrap();
        let writer = Box::new(
            AvroFileWriter::new(Arc::new(schema.clone()), AvroWriterOptions::default()).unwrap(),
        );
        let bytes: Bytes = writer.finish().unwrap();
        let path = store.path(&format!("topics/t/{dir}/{name}"));
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(store.inner.put(&path, bytes.into())).unwrap();
        store
    }

    fn read_avro_schema(store: &Store, dir: &str) -> Option<SchemaRef> {
        let scan = StoreScan::new(store.clone(), "topics");
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(scan.table_schema(
            "t",
            dir,
            &FileFormat::Avro {
                schema_literal: None,
            },
        ))
        .unwrap()
    }

    #[test]
    fn avro_header_gives_the_hive_columns_of_the_written_schema() {
        let mut fields = vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
            Field::new("ok", DataType::Boolean, true),
            Field::new("day", DataType::Date32, true),
            Field::new("price", DataType::Decimal128(10, 2), true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
                true,
            ),
        ];
        fields.extend(crate::decode::metadata::fields());
        let schema = Schema::new(fields);
        let dir = tempfile::tempdir().unwrap();
        let store = store_avro(
            dir.path(),
            "year=2024",
            "t+0+0000000000+0000000009.avro",
            &schema,
        );
        let read = read_avro_schema(&store, "year=2024").expect("an Avro file is there");
        assert_eq!(
            hive_columns(&read).unwrap(),
            hive_columns(&schema).unwrap(),
            "{read:?}"
        );
        assert_eq!(
            read_avro_schema(&store, "year=2025"),
            None,
            "no file, no schema"
        );
    }

    #[test]
    fn avro_header_larger_than_the_first_read_is_read_whole() {
        let fields: Vec<Field> = (0..2000)
            .map(|i| {
                Field::new(
                    format!("a_rather_long_column_name_{i:04}"),
                    DataType::Int32,
                    true,
                )
            })
            .collect();
        let schema = Schema::new(fields);
        let dir = tempfile::tempdir().unwrap();
        let store = store_avro(dir.path(), "", "t+0+0000000000+0000000009.avro", &schema);
        let file = dir.path().join("topics/t/t+0+0000000000+0000000009.avro");
        assert!(std::fs::metadata(file).unwrap().len() > AVRO_HEADER_PREFIX);
        let read = read_avro_schema(&store, "").expect("an Avro file is there");
        assert_eq!(read.fields().len(), 2000);
        assert_eq!(hive_columns(&read).unwrap(), hive_columns(&schema).unwrap());
    }

    #[test]
    fn a_broken_avro_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::with_url(dir.path().to_str().unwrap(), &BTreeMap::new()).unwrap();
        let path = store.path("topics/t/x=1/t+0+0000000000+0000000009.avro");
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(
            store
                .inner
                .put(&path, Bytes::from_static(b"Obj\x01garbage").into()),
        )
        .unwrap();
        let scan = StoreScan::new(store, "topics");
        let e = rt.block_on(scan.avro_schema("t", "x=1")).unwrap_err();
        assert!(matches!(e, CatchUpError::AvroHeader { .. }), "{e:?}");
        assert!(
            e.to_string().contains("t+0+0000000000+0000000009.avro"),
            "{e}"
        );
    }
}
