//! The stored versions of each topic's inferred JSON schema:
//! `<topics.dir>/_streamx/schemas/<topic>/<n>.json` in the store the commit log uses
//! ([`Layout::schema_version`]).
//!
//! Contract:
//! - The versions of a topic are a [`RecordLog`] (the create-once log of commits and compaction
//!   records too). Version `n` is written once, with `PutMode::Create`: two writers of the same
//!   `n` (two processes of the group, two partitions racing) cannot both succeed; the loser
//!   ([`Created::Lost`]) re-reads the newest version, merges what it had into it and tries `n + 1`
//!   ([`super::shared_schema::TopicSchema::merge`]). A create whose first attempt landed but whose
//!   answer was lost ([`Created::Retried`]: the version there is exactly ours) is won, not a lost
//!   race. So every partition, process and restart sees one history, and version `n + 1` always
//!   accepts everything version `n` accepted.
//! - A version holds the inferred types, `Null` included (a field seen only as null or empty
//!   keeps no type until a value gives one), as JSON: `{"topic", "version", "fields": [{"name",
//!   "type"}]}` where `type` is Arrow's `DataType` text (`Int64`, `List(Utf8)`,
//!   `Struct("a": Int64)`), parsed back with `DataType::from_str`; a list or struct whose text
//!   does not parse back to the same type (field names with quotes, backslashes, control
//!   characters, the empty name: JSON allows any key) is spelled out instead,
//!   `{"struct": [{"name", "type"}, ...]}` or `{"list": {"name", "type"}}`, and a field that is
//!   not nullable says `"nullable": false`. Before a version is created it is read back from the
//!   bytes to store and must equal the schema exactly ([`DecodeError::SchemaText`] otherwise), so
//!   every reader of a version sees the fields it was created with and never stores them again.
//! - [`SchemaStore`]'s methods block on the runtime handle: they are called from the sink thread
//!   (as the commit log's calls are), never from inside an async task.

use std::str::FromStr;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

use super::DecodeError;
use crate::commit::{Created, Layout, RecordError, RecordLog, StoredRecord};
use crate::store::Store;

/// The schema versions of every topic under one `topics.dir`.
#[derive(Debug, Clone)]
pub struct SchemaStore {
    store: Store,
    layout: Layout,
    runtime: tokio::runtime::Handle,
}

/// One stored version of a topic's inferred schema: the record of the schema history.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    pub topic: String,
    pub version: u64,
    pub schema: Schema,
}

impl StoredRecord for VersionRecord {
    const KIND: &'static str = "schema version";

    fn to_bytes(&self) -> Vec<u8> {
        to_json(&self.topic, self.version, &self.schema)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let stored: StoredVersion = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let fields = stored
            .fields
            .into_iter()
            .map(|f| field_of(f).map(Arc::new))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(VersionRecord {
            topic: stored.topic,
            version: stored.version,
            schema: Schema::new(fields),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredVersion {
    topic: String,
    version: u64,
    fields: Vec<StoredField>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredField {
    name: String,
    #[serde(rename = "type")]
    data_type: StoredType,
    #[serde(default = "nullable", skip_serializing_if = "is_nullable")]
    nullable: bool,
}

/// A field's type: Arrow's `DataType` text when it parses back to the same type, else (a struct
/// whose field names the text cannot carry: quotes, backslashes, control characters, the empty
/// name) the list or struct spelled out as JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum StoredType {
    Text(String),
    Nested(Nested),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Nested {
    List(Box<StoredField>),
    Struct(Vec<StoredField>),
}

fn nullable() -> bool {
    true
}

fn is_nullable(n: &bool) -> bool {
    *n
}

impl SchemaStore {
    pub fn new(store: Store, layout: Layout, runtime: tokio::runtime::Handle) -> Self {
        SchemaStore {
            store,
            layout,
            runtime,
        }
    }

    /// The newest stored version of `topic`, if any.
    pub fn newest(&self, topic: &str) -> Result<Option<(u64, Schema)>, DecodeError> {
        let newest = self
            .runtime
            .block_on(history(&self.store, &self.layout, topic).newest());
        let newest = newest.map_err(|e| record_error(topic, e))?;
        Ok(newest.map(|(n, v)| (n, v.schema)))
    }

    /// Creates version `n` of `topic`: `Ok(true)` when version `n` is ours (created now, or by an
    /// earlier attempt of this create whose answer was lost), `Ok(false)` when another writer
    /// created it first.
    pub fn create(&self, topic: &str, n: u64, schema: &Schema) -> Result<bool, DecodeError> {
        let record = VersionRecord {
            topic: topic.to_string(),
            version: n,
            schema: schema.clone(),
        };
        let body = record.to_bytes();
        // What is stored must read back as exactly this schema: else every reader of the version
        // (a restart, the loser of a race) would see other fields and store them again.
        let back = from_json(&body);
        if back.as_ref() != Ok(schema) {
            return Err(DecodeError::SchemaText {
                topic: topic.to_string(),
                version: n,
                message: match back {
                    Ok(other) => format!("it reads back as {other:?}, not as {schema:?}"),
                    Err(e) => e,
                },
            });
        }
        let log = history(&self.store, &self.layout, topic);
        let created = self.runtime.block_on(log.create(n, &record));
        let created: Created<VersionRecord> = created.map_err(|e| record_error(topic, e))?;
        Ok(created.is_ours())
    }
}

/// The schema history of `topic`.
fn history(store: &Store, layout: &Layout, topic: &str) -> RecordLog<VersionRecord> {
    RecordLog::new(store.clone(), layout.schema_keys(topic))
}

/// `streamx schema`: the stored versions of every topic under the configured `topics.dir`, one
/// line per version (`<topic> v<n>: <field> <type>, ...`; `Null`: no type seen yet).
pub fn show(config: &crate::config::Config) -> Result<String, DecodeError> {
    let root = format!("{}/_streamx/schemas", config.topics_dir);
    let err = |message: String| store_error("*", &root, message);
    let store = Store::with_url(&config.store_url, &config.store_options)
        .map_err(|e| err(e.to_string()))?;
    let layout = Layout::new(&config.topics_dir);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| err(e.to_string()))?;
    runtime.block_on(async {
        let mut out = String::new();
        for topic in topics(&store, &layout).await? {
            for (n, schema) in versions(&store, &layout, &topic).await? {
                let fields: Vec<String> = (schema.fields().iter())
                    .map(|f| format!("{} {}", f.name(), f.data_type()))
                    .collect();
                out.push_str(&format!("{topic} v{n}: {}\n", fields.join(", ")));
            }
        }
        if out.is_empty() {
            out = format!("# no inferred JSON schema versions under {root}\n");
        }
        Ok(out)
    })
}

/// Every stored version of `topic`, oldest first (for `streamx schema`).
pub async fn versions(
    store: &Store,
    layout: &Layout,
    topic: &str,
) -> Result<Vec<(u64, Schema)>, DecodeError> {
    let log = history(store, layout, topic);
    let err = |e| record_error(topic, e);
    let mut out = Vec::new();
    for listed in log.list().await.map_err(err)? {
        let version = log.read(listed.seq).await.map_err(err)?;
        out.push((listed.seq, version.schema));
    }
    Ok(out)
}

/// The topics that have stored schema versions, sorted.
pub async fn topics(store: &Store, layout: &Layout) -> Result<Vec<String>, DecodeError> {
    let root = layout.schemas_root();
    let topics = store
        .child_dir_names(&store.path(&root))
        .await
        .map_err(|e| store_error("*", &root, e.to_string()))?;
    Ok(topics)
}

fn record_error(topic: &str, e: RecordError) -> DecodeError {
    match e {
        RecordError::Store { path, source, .. } => store_error(topic, &path, source.to_string()),
        RecordError::Corrupt { path, message, .. } => store_error(topic, &path, message),
    }
}

fn store_error(topic: &str, path: &str, message: String) -> DecodeError {
    DecodeError::SchemaStore {
        topic: topic.to_string(),
        path: path.to_string(),
        message,
    }
}

fn to_json(topic: &str, version: u64, schema: &Schema) -> Vec<u8> {
    let stored = StoredVersion {
        topic: topic.to_string(),
        version,
        fields: schema.fields().iter().map(|f| stored_field(f)).collect(),
    };
    serde_json::to_vec_pretty(&stored).expect("a schema version serialises")
}

fn stored_field(field: &Field) -> StoredField {
    StoredField {
        name: field.name().clone(),
        data_type: stored_type(field.data_type()),
        nullable: field.is_nullable(),
    }
}

fn stored_type(t: &DataType) -> StoredType {
    let text = t.to_string();
    if DataType::from_str(&text).is_ok_and(|back| back == *t) {
        return StoredType::Text(text);
    }
    match t {
        DataType::List(item) => StoredType::Nested(Nested::List(Box::new(stored_field(item)))),
        DataType::Struct(fields) => StoredType::Nested(Nested::Struct(
            fields.iter().map(|f| stored_field(f)).collect(),
        )),
        _ => StoredType::Text(text),
    }
}

fn from_json(bytes: &[u8]) -> Result<Schema, String> {
    VersionRecord::from_bytes(bytes).map(|v| v.schema)
}

fn field_of(f: StoredField) -> Result<Field, String> {
    let t = match f.data_type {
        StoredType::Text(text) => DataType::from_str(&text)
            .map_err(|e| format!("field '{}': type '{text}': {e}", f.name))?,
        StoredType::Nested(Nested::List(item)) => DataType::List(Arc::new(field_of(*item)?)),
        StoredType::Nested(Nested::Struct(fields)) => DataType::Struct(
            fields
                .into_iter()
                .map(field_of)
                .collect::<Result<Vec<_>, String>>()?
                .into(),
        ),
    };
    Ok(Field::new(f.name, t, f.nullable))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Fields, TimeUnit};

    #[test]
    fn inferred_types_round_trip_through_the_stored_json() {
        let inner = Fields::from(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("variant", DataType::Null, true),
        ]);
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("e", DataType::new_list(DataType::Struct(inner), true), true),
            Field::new("n", DataType::Null, true),
            Field::new("t", DataType::new_list(DataType::Null, true), true),
            Field::new("u", DataType::Struct(Fields::empty()), true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("d", DataType::Decimal128(10, 2), true),
        ]);
        let text = to_json("t", 3, &schema);
        assert_eq!(from_json(&text).unwrap(), schema);
        // Types whose text parses back are stored as text, as versions always were.
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains(r#""type": "List(Struct(\"id\": Utf8, \"variant\": Null))""#),
            "{text}"
        );
        assert!(!text.contains("nullable"), "{text}");
        let err = from_json(br#"{"topic":"t","version":1,"fields":[{"name":"x","type":"Nope"}]}"#)
            .unwrap_err();
        assert!(err.contains("field 'x'"), "{err}");
    }

    /// JSON object keys are arbitrary strings: quotes, backslashes, control characters, the
    /// empty key, at any depth. A stored version must read back as exactly the schema written,
    /// or a restart (or the loser of a create race) sees a different schema and makes a new,
    /// spurious version of the same fields (or cannot read the version at all).
    #[test]
    fn any_json_key_round_trips_through_the_stored_json() {
        use super::super::shared_schema::TopicSchema;
        use crate::config::formats::JsonInference;
        let keys = [
            "a\"b",
            "back\\slash",
            "",
            "new\nline",
            "tab\t",
            "ünï ✓",
            "x: y, z",
            "'q'",
        ];
        let inner: Fields = keys
            .iter()
            .map(|k| Field::new(*k, DataType::Int64, true))
            .collect();
        let deep = DataType::Struct(Fields::from(vec![Field::new(
            "\"",
            DataType::Struct(inner.clone()),
            true,
        )]));
        let schema = Schema::new(vec![
            Field::new("s", DataType::Struct(inner.clone()), true),
            Field::new("l", DataType::new_list(DataType::Struct(inner), true), true),
            Field::new("d", deep, true),
            Field::new("", DataType::Utf8, true),
        ]);
        let back = from_json(&to_json("t", 1, &schema));
        assert_eq!(back.as_ref(), Ok(&schema));

        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().to_str().unwrap();
        let store = Store::with_url(url, &std::collections::BTreeMap::new()).unwrap();
        let schemas = SchemaStore::new(store, Layout::new("topics"), runtime.handle().clone());
        let options = JsonInference::default();
        let open = || TopicSchema::stored("keys", &options, schemas.clone()).unwrap();
        let (v1, _) = open().merge(&schema).unwrap();
        assert_eq!(v1.version, 1);
        // A restart and a second process see version 1 as it was written: nothing new to store.
        let (again, _) = open().merge(&schema).unwrap();
        assert_eq!(again.version, 1, "no spurious version of the same fields");
        assert_eq!(again.inferred, v1.inferred);
    }

    /// A create whose first attempt landed but whose answer was lost is retried by the client,
    /// and the store answers the retry with `AlreadyExists`: the version is ours, not a lost race.
    #[test]
    fn a_retried_create_that_had_succeeded_is_our_version_not_a_lost_race() {
        use crate::store::faults::{FaultAction, FaultRule, FaultyStore, Op};
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().to_str().unwrap();
        let real = Store::with_url(url, &std::collections::BTreeMap::new()).unwrap();
        let faults = Arc::new(FaultyStore::new(real.inner.clone()));
        let store = Store {
            inner: faults.clone(),
            ..real
        };
        faults.add(FaultRule::new(
            Op::Put,
            "_streamx/schemas/",
            FaultAction::ApplyThenAlreadyExists,
        ));
        let schemas = SchemaStore::new(store, Layout::new("topics"), runtime.handle().clone());
        let created = schemas.create("t", 1, &fields(&["x"])).unwrap();
        assert_eq!(faults.fired(), 1);
        assert!(
            created,
            "our own retried create of version 1 was reported as lost to another writer"
        );
        // Another writer's version 1 still loses us the race.
        assert!(!schemas.create("t", 1, &fields(&["y"])).unwrap());
    }

    fn fields(names: &[&str]) -> Schema {
        Schema::new(
            names
                .iter()
                .map(|n| Field::new(*n, DataType::Int64, true))
                .collect::<Vec<_>>(),
        )
    }

    fn names(v: &super::super::shared_schema::SchemaVersion) -> Vec<String> {
        v.inferred
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// Two processes (two `TopicSchema`s on one store) and a restart share one version history:
    /// a lost create race re-reads and merges, a restart starts from the newest stored version.
    #[test]
    fn processes_and_restarts_share_the_stored_versions() {
        use super::super::shared_schema::TopicSchema;
        use crate::config::formats::JsonInference;
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().to_str().unwrap();
        let store = Store::with_url(url, &std::collections::BTreeMap::new()).unwrap();
        let layout = Layout::new("topics");
        let schemas = SchemaStore::new(store.clone(), layout.clone(), runtime.handle().clone());
        let options = JsonInference::default();
        let open = || TopicSchema::stored("clicks", &options, schemas.clone()).unwrap();
        let (a, b, late) = (open(), open(), open());
        assert_eq!(a.version(), 0);
        let (v1, _) = a.merge(&fields(&["x"])).unwrap();
        assert_eq!((v1.version, names(&v1)), (1, vec!["x".to_string()]));
        // B has not seen version 1: its create of 1 loses, it merges into 1 and creates 2.
        let (v2, _) = b.merge(&fields(&["y"])).unwrap();
        assert_eq!((v2.version, names(&v2)), (2, vec!["x".into(), "y".into()]));
        // A, still at 1, loses the race for 2 and creates 3 = 2 + its field.
        let (v3, _) = a.merge(&fields(&["z"])).unwrap();
        assert_eq!(v3.version, 3);
        assert_eq!(names(&v3), ["x", "y", "z"]);
        // A process whose fields are already stored adopts the stored version, creating nothing.
        let (same, _) = late.merge(&fields(&["y"])).unwrap();
        assert_eq!((same.version, names(&same)), (3, names(&v3)));
        // A restart starts from the newest stored version.
        let restarted = open();
        assert_eq!(restarted.version(), 3);
        assert_eq!(restarted.current().unwrap(), v3);
        let stored = runtime
            .block_on(versions(&store, &layout, "clicks"))
            .unwrap();
        let numbers: Vec<u64> = stored.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 2, 3]);
        let listed = runtime.block_on(topics(&store, &layout)).unwrap();
        assert_eq!(listed, ["clicks"]);
        assert!(dir
            .path()
            .join("topics/_streamx/schemas/clicks/3.json")
            .exists());
    }
}
