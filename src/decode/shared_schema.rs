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
//! - Caps ([`Caps`]), so JSON whose keys are data (a user id per key) cannot make a version, and a
//!   rotation of every open file, per key: a merge adds fields only while the version has at
//!   most `json.schema.max.fields` fields counted at every level ([`count_fields`]; new fields
//!   are taken in name order, each with all its nested fields or not at all, [`merge_within`]);
//!   version `json.schema.max.versions` is the last one: later merges change nothing. What is
//!   left out reaches the rescued-data column through the decoder's rescue path (the record's
//!   fields that do not fit), never dropped; each cap is logged once per topic and process.
//!   In the last version under `add-new-columns` a field without a type decodes as `Null`
//!   ([`decodable_last`]), so a value for it is rescued rather than put in a placeholder that is
//!   never written.
//! - Hints (`value.schema.hints`): a hinted top-level field has the hinted type in every version,
//!   whatever inference says; conflicts on it are not reported.
//! - The decodable schema ([`decodable`]) maps types not known yet (`Null`, a struct with no
//!   fields) to `Utf8` and ends with the rescued-data column (`json.rescued.data.column`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};

use super::schema_store::SchemaStore;
use super::DecodeError;
use crate::config::formats::{JsonEvolution, JsonInference};
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
    /// `json.schema.max.fields` and `json.schema.max.versions` (see [`Caps`]).
    caps: Caps,
}

/// The bounds of a topic's schema (`json.schema.max.fields`, `json.schema.max.versions`), so
/// JSON whose keys are data (a user id per key) cannot make a version, and a rotation of every
/// open file, per key.
#[derive(Debug)]
struct Caps {
    /// The most fields, counted at every level (a struct's fields, a list's element struct's
    /// fields), a version may have. Fields past it are not added: their values go to the
    /// rescued-data column.
    max_fields: usize,
    /// The last version: once it exists the schema no longer changes.
    max_versions: u64,
    /// Whether fields without a type are kept `Null` in the decodable schema of the last version
    /// (`add-new-columns`, whose placeholders are never written: the values they would get go to
    /// the rescued-data column instead, as no later version can give them a type).
    freeze_untyped: bool,
    /// Whether each cap was reported (logged once per topic and process).
    fields_reported: AtomicBool,
    versions_reported: AtomicBool,
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
            caps: Caps {
                max_fields: options.max_fields,
                max_versions: options.max_versions.max(1),
                freeze_untyped: options.evolution == JsonEvolution::AddNewColumns,
                fields_reported: AtomicBool::new(false),
                versions_reported: AtomicBool::new(false),
            },
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
        let last = version >= self.caps.max_versions && self.caps.freeze_untyped;
        let schema = match last {
            true => decodable_last(&inferred, &self.rescued_column),
            false => decodable(&inferred, Some(&self.rescued_column)),
        };
        SchemaVersion {
            version,
            schema,
            inferred: Arc::new(inferred),
        }
    }

    /// `current` merged with `inferred` within `json.schema.max.fields` (fields past it are left
    /// out and reported once), hinted fields set to their hinted types.
    fn merged(&self, current: &Schema, inferred: &Schema) -> (Schema, Vec<Conflict>) {
        let budget = self
            .caps
            .max_fields
            .saturating_sub(count_fields(current.fields()));
        let (merged, mut conflicts, left_out) =
            merge_within(current, inferred, Scalars::Keep, budget);
        if let Some(first) = left_out.first() {
            if !self.caps.fields_reported.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    topic = %self.topic,
                    "the inferred JSON schema has reached json.schema.max.fields={}: new fields \
                     ({} in this batch, e.g. '{first}') are not added as columns; their values go \
                     to the rescued-data column '{}'",
                    self.caps.max_fields,
                    left_out.len(),
                    self.rescued_column
                );
            }
        }
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
                if v.version >= self.caps.max_versions {
                    self.report_last_version(v.version);
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
                if n >= self.caps.max_versions {
                    // Another writer made the last version: it is the schema from now on.
                    self.report_last_version(n);
                    (base, merged) = (n - 1, stored);
                    break;
                }
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

impl TopicSchema {
    fn report_last_version(&self, version: u64) {
        if !self.caps.versions_reported.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                topic = %self.topic,
                "the inferred JSON schema is at version {version}, json.schema.max.versions={}: \
                 it no longer changes; new fields and values of fields without a type go to the \
                 rescued-data column '{}'",
                self.caps.max_versions,
                self.rescued_column
            );
        }
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
    let (merged, conflicts, _) = merge_within(current, inferred, scalars, usize::MAX);
    (merged, conflicts)
}

/// [`merge_schemas`] adding at most `budget` fields (counted as [`count_fields`] does): new
/// fields are taken in name order, depth first, each with everything under it or not at all;
/// a field without a type keeps it when its first type would bring more fields than are left.
/// Also returns the paths of the fields left out.
pub fn merge_within(
    current: &Schema,
    inferred: &Schema,
    scalars: Scalars,
    budget: usize,
) -> (Schema, Vec<Conflict>, Vec<String>) {
    let mut conflicts = Vec::new();
    let mut merge = Merge {
        scalars,
        conflicts: &mut conflicts,
        budget,
        left_out: Vec::new(),
    };
    let fields = merge.fields("", current.fields(), inferred.fields());
    let left_out = std::mem::take(&mut merge.left_out);
    (Schema::new(fields), conflicts, left_out)
}

/// The fields of `fields` at every level: each field, plus the fields of its type.
pub fn count_fields(fields: &Fields) -> usize {
    fields.iter().map(|f| 1 + count_type(f.data_type())).sum()
}

/// The fields inside `t` (a struct's, a list element's).
fn count_type(t: &DataType) -> usize {
    match t {
        DataType::Struct(fields) => count_fields(fields),
        DataType::List(item) | DataType::LargeList(item) => count_type(item.data_type()),
        _ => 0,
    }
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

/// The decodable schema of a topic's last version (`json.schema.max.versions`) under
/// `add-new-columns`: as [`decodable`], but a field without a type stays `Null` (a struct without
/// fields stays so): a value arriving for it no longer decodes into a placeholder that would be
/// dropped, it fails the record's field, which goes to the rescued-data column.
pub fn decodable_last(inferred: &Schema, rescued: &str) -> SchemaRef {
    let mut fields = map_fields(inferred.fields(), &DataType::clone);
    fields.retain(|f| f.name() != rescued);
    fields.push(Arc::new(Field::new(rescued, DataType::Utf8, true)));
    Arc::new(Schema::new(fields))
}

struct Merge<'a> {
    scalars: Scalars,
    conflicts: &'a mut Vec<Conflict>,
    /// How many more fields may be added.
    budget: usize,
    /// The paths of the fields not added for want of budget.
    left_out: Vec<String>,
}

impl Merge<'_> {
    /// The union of two field lists by name, sorted, every field nullable (new fields within the
    /// budget, taken in name order).
    fn fields(&mut self, prefix: &str, current: &Fields, inferred: &Fields) -> Fields {
        let mut by_name: BTreeMap<&str, DataType> = BTreeMap::new();
        for f in current.iter() {
            by_name.insert(f.name().as_str(), sorted(f.data_type()));
        }
        let mut inferred: Vec<&FieldRef> = inferred.iter().collect();
        inferred.sort_by(|a, b| a.name().cmp(b.name()));
        for f in inferred {
            let path = format!("{prefix}{}", f.name());
            let merged = match by_name.get(f.name().as_str()) {
                Some(have) => self.types(&path, have, f.data_type()),
                None => match self.take(&path, 1 + count_type(f.data_type())) {
                    true => sorted(f.data_type()),
                    false => continue,
                },
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
            // A first type may bring fields (a struct, a list of structs): within the budget.
            (Null, i) => self.first_type(path, current, i),
            (c, Null) => sorted(c),
            (Struct(f), i) if f.is_empty() => self.first_type(path, current, i),
            (c, Struct(f)) if f.is_empty() => sorted(c),
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

impl Merge<'_> {
    /// Whether `cost` more fields fit in the budget (then taken from it); else `path` is left out.
    fn take(&mut self, path: &str, cost: usize) -> bool {
        if cost > self.budget {
            self.left_out.push(path.to_string());
            return false;
        }
        self.budget -= cost;
        true
    }

    /// `inferred` as the first type of a field without one (`untyped`), if its fields fit.
    fn first_type(&mut self, path: &str, untyped: &DataType, inferred: &DataType) -> DataType {
        match self.take(path, count_type(inferred)) {
            true => sorted(inferred),
            false => untyped.clone(),
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
    fn fields_past_the_cap_are_left_out_in_name_order() {
        let s = |f: &[(&str, DataType)]| strukt(f);
        let current = schema(&[("a", Int64), ("n", Null), ("s", s(&[("x", Int64)]))]);
        assert_eq!(count_fields(current.fields()), 4);
        let inferred = schema(&[
            ("d", Utf8),
            ("c", s(&[("k", Int64)])),
            ("b", Boolean),
            ("s", s(&[("y", Int64), ("w", Int64)])),
            ("n", s(&[("k", Int64)])),
        ]);
        // Budget 3: `b` (1), then `c` with its field (2); `d` does not fit, nor `s.w`, `s.y`,
        // nor `n`'s first type (a struct with a field).
        let (m, conflicts, left_out) = merge_within(&current, &inferred, Scalars::Keep, 3);
        assert!(conflicts.is_empty());
        assert_eq!(left_out, ["d", "n", "s.w", "s.y"]);
        let want = schema(&[
            ("a", Int64),
            ("b", Boolean),
            ("c", s(&[("k", Int64)])),
            ("n", Null),
            ("s", s(&[("x", Int64)])),
        ]);
        assert_eq!(m, want);
        // A first type without fields costs nothing.
        let (m, _, left_out) =
            merge_within(&current, &schema(&[("n", list(Utf8))]), Scalars::Keep, 0);
        assert!(left_out.is_empty());
        assert_eq!(m.field_with_name("n").unwrap().data_type(), &list(Utf8));
        // Without a cap nothing is left out.
        let (m, _) = merge_schemas(&current, &inferred, Scalars::Keep);
        assert_eq!(count_fields(m.fields()), 11);
    }

    #[test]
    fn the_topic_stops_at_max_fields_and_max_versions() {
        let options = JsonInference {
            max_fields: 5,
            max_versions: 2,
            ..Default::default()
        };
        let shared = TopicSchema::in_memory("t", &options);
        let first = schema(&[("a", Int64), ("n", Null), ("s", strukt(&[("x", Int64)]))]);
        let (v1, _) = shared.merge(&first).unwrap();
        assert_eq!(v1.version, 1);
        // One field fits (`b`, first by name); `c` is left out.
        let (v2, _) = shared.merge(&schema(&[("c", Utf8), ("b", Utf8)])).unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(count_fields(v2.inferred.fields()), 5);
        assert!(v2.inferred.field_with_name("c").is_err());
        // Version 2 is the last: `n` keeps no type (and decodes as Null, so a value for it is
        // rescued instead of landing in a placeholder that is never written).
        let (same, _) = shared.merge(&schema(&[("n", Int64)])).unwrap();
        assert_eq!(same, v2);
        assert_eq!(shared.version(), 2);
        assert_eq!(v2.schema.field_with_name("n").unwrap().data_type(), &Null);
        assert_eq!(v1.schema.field_with_name("n").unwrap().data_type(), &Utf8);
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
