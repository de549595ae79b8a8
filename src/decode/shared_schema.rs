//! The inferred JSON schema of a topic, shared by the partitions of that topic within one process
//! and, through the store, by every process and restart.
//!
//! Contract:
//! - One [`TopicSchema`] per topic per process, found in [`InferredSchemas`] (owned by the sink
//!   context) with [`topic_schema`]. It is used only when the input is JSON and no `value.schema`
//!   is declared.
//! - Until the first version exists, the writers of every partition offer their first records
//!   ([`TopicSchema::offer_sample`], up to [`INFERENCE_SAMPLE`] per partition); the decoder that
//!   needs the first version infers it from its first buffer together with that sample (the first
//!   records of every partition this process has read), so version 1 is not one partition's view.
//!   A decoder whose buffer does not fit infers from that buffer (`add-new-columns`); both
//!   [`TopicSchema::merge`] what they inferred.
//!   The topic's schema is a sequence of versions 1, 2, ...; version k+1 is version k merged
//!   with one inference, created only when that adds something. A decoder
//!   decodes with the newest version it has seen and checks [`TopicSchema::version`] (one atomic
//!   load) before each buffer, so partitions switch to a newer version at their next buffer and a
//!   stable schema costs nothing per record.
//! - Merge rules ([`merge_schemas`]): fields are the union (every field nullable, sorted by name
//!   at every level); lists and structs merge element- and field-wise; `Null` and `{}` (a field
//!   null or empty in every sampled record, decoded into a placeholder that is never written, see
//!   `super::untyped`) take the other type. Two different scalar types: within one inference
//!   ([`Scalars::Widen`]) as arrow-json infers a mixed sample (`Int64` and `Float64` give
//!   `Float64`, other mixes `Utf8`); between versions ([`Scalars::Keep`]) the topic keeps the
//!   type it has, because files already written hold that type and Parquet readers (Spark, Hive)
//!   cannot read them under another (Spark 4.0.1 fails on an INT64 column read as DOUBLE).
//!   Anything else (struct vs scalar, list vs struct, list vs scalar) is a [`Conflict`] too: the
//!   topic keeps the type it already had, and the values that do not fit it go to the
//!   rescued-data column of their rows (see `super::json`), never silently emptied.
//! - Stored ([`super::schema_store`]): with a [`SchemaStore`], a [`TopicSchema`] starts from the
//!   newest stored version and every new version is created in the store first (`PutMode::Create`);
//!   losing that race re-reads the newest stored version and merges into it. So the partitions,
//!   the processes of the group and every restart share one history; version numbers are the
//!   stored ones. Without a store (tests, `JsonDecoder::new`) versions live in memory.
//! - Hints (`value.schema.hints`): a hinted top-level field has the hinted type in every version,
//!   whatever inference says; conflicts on it are not reported.
//! - The decodable schema ([`decodable`]) maps types not known yet (`Null`, a struct with no
//!   fields) to `Utf8` and ends with the rescued-data column (`json.rescued.data.column`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};

use super::schema_store::SchemaStore;
use super::DecodeError;
use crate::config::formats::JsonInference;
use crate::decode::json::INFERENCE_SAMPLE;

/// The shared schemas of one process, by topic.
pub type InferredSchemas = Mutex<HashMap<String, Arc<TopicSchema>>>;

/// The shared schema of `topic`, made by `make` on first use (which loads the stored versions).
pub fn topic_schema(
    all: &InferredSchemas,
    topic: &str,
    make: impl FnOnce() -> Result<TopicSchema, DecodeError>,
) -> Result<Arc<TopicSchema>, DecodeError> {
    let mut map = all.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = map.get(topic) {
        return Ok(existing.clone());
    }
    let made = Arc::new(make()?);
    map.insert(topic.to_string(), made.clone());
    Ok(made)
}

/// The versions of one topic's inferred schema.
#[derive(Debug)]
pub struct TopicSchema {
    topic: String,
    /// The version of `current` (0: nothing inferred yet), readable without the lock.
    version: AtomicU64,
    current: Mutex<Option<SchemaVersion>>,
    store: Option<SchemaStore>,
    hints: Option<SchemaRef>,
    rescued_column: String,
    /// The first records of each partition, gathered until the first version exists.
    sample: Mutex<Sample>,
}

/// The first record values of every partition of a topic in this process: what the first version
/// is inferred from, so it is not one partition's first buffer.
#[derive(Debug, Default)]
struct Sample {
    values: Vec<Vec<u8>>,
    bytes: usize,
    per_partition: HashMap<i32, usize>,
}

/// At most this many bytes of record values are kept for the first inference.
const SAMPLE_MAX_BYTES: usize = 16 << 20;

impl Default for TopicSchema {
    /// In memory, no hints, the default rescued-data column.
    fn default() -> Self {
        TopicSchema::in_memory("", &JsonInference::default())
    }
}

/// One version of a topic's inferred schema.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaVersion {
    pub version: u64,
    /// What inference found, merged over the partitions (`Null`: no type known yet).
    pub inferred: SchemaRef,
    /// The schema records decode into: `inferred` with `Null` as `Utf8` ([`decodable`]).
    pub schema: SchemaRef,
}

impl TopicSchema {
    /// A topic schema kept in memory only, starting empty.
    pub fn in_memory(topic: &str, options: &JsonInference) -> Self {
        TopicSchema {
            topic: topic.to_string(),
            version: AtomicU64::new(0),
            current: Mutex::new(None),
            store: None,
            hints: options.hints.clone(),
            rescued_column: options.rescued_column.clone(),
            sample: Mutex::new(Sample::default()),
        }
    }

    /// Offers a record value of `partition` for the first inference. `false` once no more of that
    /// partition's values are wanted (a version exists, or the partition gave its share): the
    /// caller stops offering.
    pub fn offer_sample(&self, partition: i32, value: &[u8]) -> bool {
        if self.version() > 0 {
            return false;
        }
        let mut guard = self.sample.lock().unwrap_or_else(PoisonError::into_inner);
        let sample = &mut *guard;
        let taken = sample.per_partition.entry(partition).or_default();
        if *taken >= INFERENCE_SAMPLE || sample.bytes + value.len() > SAMPLE_MAX_BYTES {
            return false;
        }
        *taken += 1;
        sample.bytes += value.len();
        sample.values.push(value.to_vec());
        true
    }

    /// The values offered so far (every partition's first records), for the first inference.
    pub fn sampled(&self) -> Vec<Vec<u8>> {
        if self.version() > 0 {
            return Vec::new();
        }
        let sample = self.sample.lock().unwrap_or_else(PoisonError::into_inner);
        sample.values.clone()
    }

    /// A topic schema kept in `store`, starting from its newest stored version.
    pub fn stored(
        topic: &str,
        options: &JsonInference,
        store: SchemaStore,
    ) -> Result<Self, DecodeError> {
        let mut made = TopicSchema::in_memory(topic, options);
        if let Some((n, inferred)) = store.newest(topic)? {
            made.version = AtomicU64::new(n);
            made.current = Mutex::new(Some(made.version_of(n, inferred)));
        }
        made.store = Some(store);
        Ok(made)
    }

    /// The rescued-data column every decodable version ends with.
    pub fn rescued_column(&self) -> &str {
        &self.rescued_column
    }

    fn version_of(&self, version: u64, inferred: Schema) -> SchemaVersion {
        SchemaVersion {
            version,
            schema: decodable(&inferred, Some(&self.rescued_column)),
            inferred: Arc::new(inferred),
        }
    }

    /// `current` merged with `inferred`, hinted fields set to their hinted types.
    fn merged(&self, current: &Schema, inferred: &Schema) -> (Schema, Vec<Conflict>) {
        let (merged, mut conflicts) = merge_schemas(current, inferred, Scalars::Keep);
        let Some(hints) = &self.hints else {
            return (merged, conflicts);
        };
        let hinted = |name: &str| hints.field_with_name(name).ok();
        conflicts.retain(|c| hinted(c.field.split(['.', '[']).next().unwrap_or("")).is_none());
        let fields: Vec<FieldRef> = merged
            .fields()
            .iter()
            .map(|f| match hinted(f.name()) {
                Some(h) => Arc::new(Field::new(f.name(), h.data_type().clone(), true)),
                None => f.clone(),
            })
            .collect();
        (Schema::new(fields), conflicts)
    }

    /// The newest version number (0 before the first merge). Cheap: one atomic load.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The newest version, if any.
    pub fn current(&self) -> Option<SchemaVersion> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Merges an inferred schema (of one partition's records) into the topic's; returns the
    /// resulting newest version (a new one only when the merge added something; stored first when
    /// there is a store) and the conflicts (fields whose inferred type could not be merged; the
    /// topic kept its type).
    pub fn merge(&self, inferred: &Schema) -> Result<(SchemaVersion, Vec<Conflict>), DecodeError> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut merged, conflicts, mut base) = match current.as_ref() {
            None => {
                let (merged, _) = self.merged(&Schema::empty(), inferred);
                (merged, Vec::new(), 0)
            }
            Some(v) => {
                let (merged, conflicts) = self.merged(&v.inferred, inferred);
                if merged == *v.inferred {
                    return Ok((v.clone(), conflicts));
                }
                (merged, conflicts, v.version)
            }
        };
        if let Some(store) = &self.store {
            // Create base + 1; a lost race re-reads the newest stored version and merges into it.
            while !store.create(&self.topic, base + 1, &merged)? {
                let Some((n, stored)) = store.newest(&self.topic)? else {
                    continue;
                };
                let (again, _) = self.merged(&stored, &merged);
                base = n;
                if again == stored {
                    base = n - 1;
                    merged = stored;
                    break;
                }
                merged = again;
            }
        }
        let next = self.version_of(base + 1, merged);
        *current = Some(next.clone());
        self.version.store(base + 1, Ordering::Release);
        // The first version exists: the sample has served.
        *self.sample.lock().unwrap_or_else(PoisonError::into_inner) = Sample::default();
        Ok((next, conflicts))
    }
}

/// A field whose type in one partition's inference could not be merged into the topic's.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// Dotted path of the field (`[]` for list elements), e.g. `device.tags[]`.
    pub field: String,
    /// The topic's type, which is kept.
    pub kept: DataType,
    /// The type this partition inferred, which is not used.
    pub inferred: DataType,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "field '{}' is {} in the topic's inferred schema but {} in this partition's records; \
             the topic keeps {}, values that do not fit go to the rescued-data column; \
             declare value.schema or value.schema.hints to choose",
            self.field, self.kept, self.inferred, self.kept
        )
    }
}

/// How two different scalar types of one field merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalars {
    /// As arrow-json infers over one mixed sample: `Int64` and `Float64` give `Float64`, other
    /// mixes `Utf8`. For schemas inferred together, before any file is written with them.
    Widen,
    /// A typed scalar keeps its type and the other is a [`Conflict`] (its values are rescued).
    /// Between versions: files of every version must keep a column's type, as Parquet readers
    /// (Spark, Hive) read older files only under the type they were written with.
    Keep,
}

/// `current` merged with `inferred` (fields sorted by name), and the conflicts found.
pub fn merge_schemas(
    current: &Schema,
    inferred: &Schema,
    scalars: Scalars,
) -> (Schema, Vec<Conflict>) {
    let mut conflicts = Vec::new();
    let mut merge = Merge {
        scalars,
        conflicts: &mut conflicts,
    };
    let fields = merge.fields("", current.fields(), inferred.fields());
    (Schema::new(fields), conflicts)
}

/// The schema records decode into: fields sorted by name at every level, types not known yet
/// (`Null`, a struct without fields) as `Utf8`, then the rescued-data column if named.
pub fn decodable(inferred: &Schema, rescued: Option<&str>) -> SchemaRef {
    let mut fields = map_fields(inferred.fields(), &|t| match t {
        DataType::Null => DataType::Utf8,
        DataType::Struct(f) if f.is_empty() => DataType::Utf8,
        other => other.clone(),
    });
    if let Some(name) = rescued {
        fields.retain(|f| f.name() != name);
        fields.push(Arc::new(Field::new(name, DataType::Utf8, true)));
    }
    Arc::new(Schema::new(fields))
}

struct Merge<'a> {
    scalars: Scalars,
    conflicts: &'a mut Vec<Conflict>,
}

impl Merge<'_> {
    /// The union of two field lists by name, sorted, every field nullable.
    fn fields(&mut self, prefix: &str, current: &Fields, inferred: &Fields) -> Fields {
        let mut by_name: BTreeMap<&str, DataType> = BTreeMap::new();
        for f in current.iter() {
            by_name.insert(f.name().as_str(), sorted(f.data_type()));
        }
        for f in inferred.iter() {
            let path = format!("{prefix}{}", f.name());
            let merged = match by_name.get(f.name().as_str()) {
                Some(have) => self.types(&path, have, f.data_type()),
                None => sorted(f.data_type()),
            };
            by_name.insert(f.name().as_str(), merged);
        }
        by_name
            .into_iter()
            .map(|(name, t)| Field::new(name, t, true))
            .collect()
    }

    /// The merge of two inferred types (see the module doc); `current` wins a conflict.
    fn types(&mut self, path: &str, current: &DataType, inferred: &DataType) -> DataType {
        use DataType::*;
        let widen = self.scalars == Scalars::Widen;
        match (current, inferred) {
            (c, i) if c == i => c.clone(),
            (Null, other) | (other, Null) => sorted(other),
            (Struct(f), other) | (other, Struct(f)) if f.is_empty() => sorted(other),
            (Int64, Float64) | (Float64, Int64) if widen => Float64,
            (c, i) if widen && is_scalar(c) && is_scalar(i) => Utf8,
            (List(c), List(i)) => {
                let item = self.types(&format!("{path}[]"), c.data_type(), i.data_type());
                List(Arc::new(Field::new(c.name(), item, true)))
            }
            (Struct(c), Struct(i)) => Struct(self.fields(&format!("{path}."), c, i)),
            (c, i) => {
                self.conflicts.push(Conflict {
                    field: path.to_string(),
                    kept: c.clone(),
                    inferred: i.clone(),
                });
                c.clone()
            }
        }
    }
}

/// The scalar types JSON inference produces.
fn is_scalar(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Boolean | DataType::Int64 | DataType::Float64 | DataType::Utf8
    )
}

/// `t` with struct fields sorted by name at every level.
fn sorted(t: &DataType) -> DataType {
    map_type(t, &DataType::clone)
}

fn map_fields(fields: &Fields, leaf: &dyn Fn(&DataType) -> DataType) -> Vec<FieldRef> {
    let mut out: Vec<FieldRef> = fields
        .iter()
        .map(|f| {
            let t = map_type(f.data_type(), leaf);
            Arc::new(f.as_ref().clone().with_data_type(t))
        })
        .collect();
    out.sort_by(|a, b| a.name().cmp(b.name()));
    out
}

/// `t` with `leaf` applied to every non-nested type and struct fields sorted.
fn map_type(t: &DataType, leaf: &dyn Fn(&DataType) -> DataType) -> DataType {
    match t {
        DataType::List(item) => DataType::List(Arc::new(
            item.as_ref()
                .clone()
                .with_data_type(map_type(item.data_type(), leaf)),
        )),
        DataType::Struct(fields) if !fields.is_empty() => {
            DataType::Struct(map_fields(fields, leaf).into())
        }
        other => leaf(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DataType::*;

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    fn strukt(fields: &[(&str, DataType)]) -> DataType {
        Struct(schema(fields).fields().clone())
    }

    fn list(item: DataType) -> DataType {
        List(Arc::new(Field::new_list_field(item, true)))
    }

    /// The merged type of one field `x`, in both orders, with the conflicts of each order.
    fn merged(a: DataType, b: DataType) -> [(DataType, usize); 2] {
        let (sa, sb) = (schema(&[("x", a)]), schema(&[("x", b)]));
        [(&sa, &sb), (&sb, &sa)].map(|(c, i)| {
            let (m, conflicts) = merge_schemas(c, i, Scalars::Widen);
            (m.field(0).data_type().clone(), conflicts.len())
        })
    }

    #[test]
    fn merge_rules() {
        // Union of fields, sorted, nullable: nothing of either side is lost.
        let (m, c) = merge_schemas(
            &schema(&[("id", Int64), ("a", Utf8)]),
            &schema(&[("b", Boolean), ("id", Int64)]),
            Scalars::Widen,
        );
        assert!(c.is_empty());
        assert_eq!(m, schema(&[("a", Utf8), ("b", Boolean), ("id", Int64)]));
        // Safe widening, as arrow-json's inference does over mixed samples; order does not matter.
        assert_eq!(merged(Int64, Float64), [(Float64, 0), (Float64, 0)]);
        assert_eq!(merged(Int64, Utf8), [(Utf8, 0), (Utf8, 0)]);
        assert_eq!(merged(Boolean, Float64), [(Utf8, 0), (Utf8, 0)]);
        assert_eq!(merged(Null, Int64), [(Int64, 0), (Int64, 0)]);
        assert_eq!(merged(strukt(&[]), Int64), [(Int64, 0), (Int64, 0)]);
        assert_eq!(
            merged(list(Int64), list(Float64)),
            [(list(Float64), 0), (list(Float64), 0)]
        );
        // Structs merge field-wise, at any depth.
        let s = merged(
            strukt(&[("y", Int64), ("z", strukt(&[("k", Utf8)]))]),
            strukt(&[("z", strukt(&[("j", Null)])), ("w", Float64)]),
        );
        let want = strukt(&[
            ("w", Float64),
            ("y", Int64),
            ("z", strukt(&[("j", Null), ("k", Utf8)])),
        ]);
        assert_eq!(s, [(want.clone(), 0), (want, 0)]);
    }

    #[test]
    fn a_conflict_keeps_the_topics_type_and_names_the_field() {
        for (a, b) in [
            (strukt(&[("k", Int64)]), Utf8),
            (list(Int64), Int64),
            (list(Utf8), strukt(&[("k", Int64)])),
        ] {
            assert_eq!(merged(a.clone(), b.clone()), [(a, 1), (b, 1)]);
        }
        let (m, c) = merge_schemas(
            &schema(&[("s", strukt(&[("t", list(Int64))]))]),
            &schema(&[("s", strukt(&[("t", list(strukt(&[("u", Int64)])))]))]),
            Scalars::Widen,
        );
        assert_eq!(m, schema(&[("s", strukt(&[("t", list(Int64))]))]));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "s.t[]");
        let text = c[0].to_string();
        assert!(text.contains("field 's.t[]' is Int64"), "{text}");
    }

    #[test]
    fn versions_grow_only_when_a_merge_adds_something() {
        let shared = TopicSchema::default();
        assert_eq!(shared.version(), 0);
        assert!(shared.current().is_none());
        let (v1, _) = shared
            .merge(&schema(&[("id", Int64), ("n", Null)]))
            .unwrap();
        assert_eq!((v1.version, shared.version()), (1, 1));
        let rescued = ("_rescued_data", Utf8);
        assert_eq!(
            *v1.schema,
            schema(&[("id", Int64), ("n", Utf8), rescued.clone()])
        );
        // Nothing new: same version.
        let (same, _) = shared.merge(&schema(&[("id", Int64)])).unwrap();
        assert_eq!(same, v1);
        // Between versions a typed scalar keeps its type (files of every version agree on it).
        let (v2, conflicts) = shared
            .merge(&schema(&[("b", Utf8), ("id", Float64), ("n", Int64)]))
            .unwrap();
        assert_eq!((v2.version, conflicts.len()), (2, 1));
        assert_eq!(conflicts[0].field, "id");
        let want = schema(&[("b", Utf8), ("id", Int64), ("n", Int64), rescued]);
        assert_eq!(*v2.schema, want);
        assert_eq!(shared.current(), Some(v2));
        // A conflict alone adds nothing either.
        let (v, conflicts) = shared
            .merge(&schema(&[("b", strukt(&[("k", Int64)]))]))
            .unwrap();
        assert_eq!((v.version, conflicts.len()), (2, 1));
    }

    #[test]
    fn one_topic_schema_per_topic() {
        let all = InferredSchemas::default();
        let make = || Ok(TopicSchema::default());
        let a = topic_schema(&all, "a", make).unwrap();
        a.merge(&schema(&[("x", Int64)])).unwrap();
        assert_eq!(topic_schema(&all, "a", make).unwrap().version(), 1);
        assert_eq!(topic_schema(&all, "b", make).unwrap().version(), 0);
    }
}
