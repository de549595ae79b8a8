//! [`JsonDecoder`]: one JSON object per record value, decoded straight into Arrow by arrow-json's
//! tape decoder (no per-record `serde_json::Value` on the hot path).
//!
//! Declared schema (`value.schema`): records decode into it; fields it does not name are ignored;
//! a value that does not fit is a bad record (`errors.tolerance`). No inference, no evolution.
//!
//! Inferred schema (no `value.schema`): the decoder follows its topic's [`TopicSchema`] (shared by
//! the partitions of the process and, with a store, by every process and restart). Before each
//! buffer it takes the newest version (one atomic load). With no version yet it infers one from
//! its first buffer (the first [`INFERENCE_SAMPLE`] JSON objects) together with the first records
//! every partition of the topic offered ([`TopicSchema::offer_sample`]); objects that do not infer
//! together are inferred each alone and merged. Fields are sorted by name at every level; a field
//! seen only as null or empty (`null`, `[]`, `{}`) has no type yet: it decodes into a Utf8
//! placeholder until a value gives it one, and with `add-new-columns` the placeholder is not
//! written (`super::untyped`); JSON
//! numbers and booleans are coerced into Utf8 columns; every version ends with the rescued-data
//! column ([`TopicSchema::rescued_column`]). Then, per buffer, by `json.schema.evolution`:
//! - Fast path (every mode): arrow-json in strict mode (`none`: lenient, new fields ignored), one
//!   reused decoder, one flush. When it succeeds and no column without a type got a value, that
//!   is the result: a stable schema costs nothing more than before.
//! - `add-new-columns`: otherwise the whole buffer is inferred and merged into the topic's schema
//!   (new nullable columns, first real types, safe widening; a new stored version when it adds
//!   something, within `json.schema.max.fields` and `json.schema.max.versions`), and the buffer
//!   is decoded again with the newest version; what the caps left out is rescued (below).
//! - Rescue (every mode, the slow path): each record is decoded alone; a record that fails is
//!   split by top-level field, each field decoded alone; the fields that fit are decoded, the
//!   others are written as one JSON object (text) into the rescued-data column of that row. No
//!   value of a JSON object record is dropped. `fail-on-new-columns`: a top-level field the schema
//!   lacks stops the job ([`DecodeError::NewColumns`]) instead.
//!
//! Every fast path below first tries [`DirectDecoder`] (one pass, about twice arrow-json's
//! speed), which gives up on buffers it cannot decode exactly as arrow-json would; those are
//! decoded by arrow-json. After [`DIRECT_GIVE_UPS`] buffers in a row given up on, a decoder stops
//! trying until its schema changes (data that always needs arrow-json would pay twice).
//!
//! [`JsonDecoder::with_header`] skips a fixed header before each value's JSON text (JSON Schema
//! values in the Confluent wire format, [`super::json_schema`]); the decoding is the same.
//!
//! A record must be exactly one JSON object: a value that is not (top-level array, number,
//! string, boolean, `null`, invalid or truncated JSON, two values) is a bad record, as are
//! tombstones and empty values. After each record the fast path checks that it was one complete
//! JSON value (a truncated record must not merge with the next one). Timestamp columns with a
//! named zone (`UTC`) need arrow's `chrono-tz` feature (enabled through DataFusion).

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::reader::{infer_json_schema_from_iterator, Decoder, ReaderBuilder};
use arrow::record_batch::RecordBatch;

use super::json_direct::DirectDecoder;
use super::shared_schema::{merge_schemas, Scalars, SchemaVersion, TopicSchema};
use super::{DecodeError, Decoded, RecordBuffer, RecordError, ValueDecoder};
use crate::config::formats::JsonEvolution;

/// Buffers in a row the direct decoder may give up on before it is no longer tried.
pub const DIRECT_GIVE_UPS: u32 = 8;

/// How many JSON objects of the first buffer the first version is inferred from.
pub const INFERENCE_SAMPLE: usize = 1000;

/// Decodes JSON record values into RecordBatches of a declared or inferred schema.
#[derive(Debug)]
pub struct JsonDecoder {
    topic: String,
    schema: Option<SchemaRef>,
    batch_records: usize,
    /// The reused fast-path decoder and the number of rows it accepts before flushing.
    fast: Option<(Decoder, usize)>,
    /// The one-pass decoder tried first (schemas of the types it handles) and how many buffers
    /// in a row it gave up on.
    direct: Option<DirectDecoder>,
    direct_give_ups: u32,
    /// The topic's inferred schema (`None`: declared schema).
    shared: Option<Arc<TopicSchema>>,
    evolution: JsonEvolution,
    /// The version of `shared` that `schema` is (0 before the first).
    version: u64,
    /// The inferred types of that version: where a column has no type yet.
    inferred: Option<SchemaRef>,
    /// Whether decoded batches carry untyped placeholders to strip (`add-new-columns` only: the
    /// other modes never give such a column a type, so its coerced values stay in it).
    strip_untyped: bool,
    /// Bytes before the JSON text of every value (the Confluent header of JSON Schema values,
    /// checked by the caller), 0 for plain JSON.
    header: usize,
}

impl JsonDecoder {
    /// A decoder for `topic`; `declared` is `value.schema` (`None`: an inferred schema of its own,
    /// in memory, evolving with `add-new-columns`); `batch_records` sizes the decoder for the
    /// usual number of records per buffer.
    pub fn new(topic: String, declared: Option<SchemaRef>, batch_records: usize) -> Self {
        let shared = match declared {
            Some(_) => None,
            None => Some(Arc::new(TopicSchema::default())),
        };
        JsonDecoder {
            topic,
            direct: declared.as_ref().and_then(|s| DirectDecoder::new(s, false)),
            direct_give_ups: 0,
            schema: declared,
            batch_records: batch_records.max(1),
            fast: None,
            shared,
            evolution: JsonEvolution::AddNewColumns,
            version: 0,
            inferred: None,
            strip_untyped: false,
            header: 0,
        }
    }

    /// The same decoder for values whose JSON text starts after `header` bytes that the caller
    /// has checked (the Confluent wire format header of [`super::json_schema`]).
    pub fn with_header(mut self, header: usize) -> Self {
        self.header = header;
        self
    }

    /// A decoder for `topic` without a declared schema, following `shared` (see the module doc).
    pub fn shared(
        topic: String,
        shared: Arc<TopicSchema>,
        evolution: JsonEvolution,
        batch_records: usize,
    ) -> Self {
        JsonDecoder {
            shared: Some(shared),
            evolution,
            ..JsonDecoder::new(topic, None, batch_records)
        }
    }

    /// Takes a newer version of the shared schema if there is one: one atomic load per buffer.
    fn follow_shared(&mut self) {
        let Some(shared) = &self.shared else {
            return;
        };
        if shared.version() == self.version {
            return;
        }
        if let Some(newest) = shared.current() {
            self.take(newest);
        }
    }

    fn take(&mut self, version: SchemaVersion) {
        self.strip_untyped = self.evolution == JsonEvolution::AddNewColumns
            && super::untyped::has_untyped(&version.inferred);
        self.schema = Some(version.schema);
        self.inferred = Some(version.inferred);
        self.version = version.version;
        // The fast decoders were built for the previous schema.
        self.fast = None;
        let strict = self.evolution != JsonEvolution::None;
        self.direct = self
            .schema
            .as_ref()
            .and_then(|s| DirectDecoder::new(s, strict));
        self.direct_give_ups = 0;
    }

    /// Merges `inferred` into the shared schema and decodes with the newest version.
    fn adopt(&mut self, inferred: &Schema) -> Result<(), DecodeError> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let (newest, conflicts) = shared.merge(inferred)?;
        for conflict in conflicts {
            tracing::warn!(topic = %self.topic, "inferred JSON schema: {conflict}");
        }
        if newest.version != self.version || self.schema.is_none() {
            self.take(newest);
        }
        Ok(())
    }

    fn new_decoder(&self, schema: &SchemaRef, rows: usize) -> Result<Decoder, ArrowError> {
        let inferred = self.shared.is_some();
        ReaderBuilder::new(schema.clone())
            .with_batch_size(rows.max(1))
            .with_coerce_primitive(inferred)
            .with_strict_mode(inferred && self.evolution != JsonEvolution::None)
            .build_decoder()
    }

    /// The fast-path decoder, able to take `rows` records before a flush.
    fn fast_decoder(
        &mut self,
        schema: &SchemaRef,
        rows: usize,
    ) -> Result<&mut Decoder, ArrowError> {
        let reusable = matches!(&self.fast, Some((_, capacity)) if *capacity >= rows);
        if !reusable {
            let capacity = rows.max(self.batch_records);
            self.fast = Some((self.new_decoder(schema, capacity)?, capacity));
        }
        match &mut self.fast {
            Some((decoder, _)) => Ok(decoder),
            None => Err(ArrowError::JsonError("fast decoder missing".into())),
        }
    }

    /// The direct decoder's batch, unless it is off or gives up (see the module doc).
    fn decode_direct(&mut self, buffer: &RecordBuffer) -> Option<Decoded> {
        let header = self.header;
        let decoded = self
            .direct
            .as_mut()?
            .decode(buffer, |b, i| value_of(b, i, header));
        match decoded {
            Some(_) => self.direct_give_ups = 0,
            None => {
                self.direct_give_ups += 1;
                if self.direct_give_ups >= DIRECT_GIVE_UPS {
                    self.direct = None;
                }
            }
        }
        decoded
    }

    /// The fast path: the direct decoder, else every record into one arrow-json decoder, one
    /// flush; `None` if any record failed.
    fn decode_fast(
        &mut self,
        schema: &SchemaRef,
        buffer: &RecordBuffer,
    ) -> Result<Option<Decoded>, DecodeError> {
        if let Some(decoded) = self.decode_direct(buffer) {
            return Ok(Some(decoded));
        }
        let n = buffer.len();
        let mut rejected = Vec::new();
        let header = self.header;
        let decoder = self.fast_decoder(schema, n)?;
        for i in 0..n {
            match value_of(buffer, i, header) {
                Err(e) => rejected.push((i, e)),
                Ok(v) => {
                    if feed(decoder, v).is_err() {
                        // The decoder holds a failed record: drop it.
                        self.fast = None;
                        return Ok(None);
                    }
                }
            }
        }
        match decoder.flush() {
            Ok(batch) => {
                let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
                Ok(Some(Decoded { batch, rejected }))
            }
            Err(_) => {
                self.fast = None;
                Ok(None)
            }
        }
    }

    /// The slow path: decodes each record alone; a record that fails is rescued field by field
    /// (inferred schema) or rejected (declared schema). Then decodes the kept records together.
    fn decode_isolating(
        &mut self,
        schema: &SchemaRef,
        buffer: &RecordBuffer,
    ) -> Result<Decoded, DecodeError> {
        let n = buffer.len();
        let mut rejected = Vec::new();
        let mut kept: Vec<Cow<'_, [u8]>> = Vec::with_capacity(n);
        let mut probe = Probe::new(self, schema)?;
        for i in 0..n {
            let v = match value_of(buffer, i, self.header) {
                Ok(v) => v,
                Err(e) => {
                    rejected.push((i, e));
                    continue;
                }
            };
            let Err(e) = probe.fits(self, v)? else {
                kept.push(Cow::Borrowed(v));
                continue;
            };
            match self.rescue(&mut probe, schema, buffer, i, v)? {
                Some(rescued) => kept.push(Cow::Owned(rescued)),
                None => rejected.push((i, e)),
            }
        }
        let decoder = self.fast_decoder(schema, n)?;
        let mut result = Ok(());
        for v in &kept {
            if let Err(e) = feed(decoder, v) {
                result = Err(ArrowError::JsonError(format!(
                    "a record that decodes alone failed among others: {e}"
                )));
                break;
            }
        }
        match result.and_then(|()| decoder.flush()) {
            Ok(batch) => {
                let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
                Ok(Decoded { batch, rejected })
            }
            Err(e) => {
                self.fast = None;
                Err(DecodeError::Arrow(e))
            }
        }
    }

    /// Record `i` (a JSON object that does not decode) rewritten so that it does: the top-level
    /// fields that do not fit leave the object and go, as a JSON object in text, into the
    /// rescued-data column. `None`: not rescuable (declared schema, not a JSON object).
    fn rescue(
        &self,
        probe: &mut Probe,
        schema: &SchemaRef,
        buffer: &RecordBuffer,
        i: usize,
        value: &[u8],
    ) -> Result<Option<Vec<u8>>, DecodeError> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(value) else {
            return Ok(None);
        };
        let column = shared.rescued_column();
        let mut fit = serde_json::Map::new();
        let mut misfit = serde_json::Map::new();
        for (key, v) in fields {
            let one = serde_json::to_vec(&serde_json::json!({ key.as_str(): &v }))
                .map_err(|e| ArrowError::JsonError(e.to_string()))?;
            if key != column && probe.fits(self, &one)?.is_ok() {
                fit.insert(key, v);
            } else {
                misfit.insert(key, v);
            }
        }
        if self.evolution == JsonEvolution::FailOnNewColumns {
            let new: Vec<String> = (misfit.keys())
                .filter(|k| schema.field_with_name(k).is_err())
                .cloned()
                .collect();
            if !new.is_empty() {
                return Err(DecodeError::NewColumns {
                    topic: self.topic.clone(),
                    offset: buffer.offsets[i],
                    fields: new,
                });
            }
        }
        let text = serde_json::Value::Object(misfit).to_string();
        fit.insert(column.to_string(), serde_json::Value::String(text));
        Ok(Some(
            serde_json::Value::Object(fit).to_string().into_bytes(),
        ))
    }

    /// Whether a column without a type yet (see the module doc) got a value in `batch`.
    fn untyped_got_values(&self, batch: &RecordBatch) -> bool {
        let Some(inferred) = &self.inferred else {
            return false;
        };
        inferred.fields().iter().any(|f| {
            batch
                .column_by_name(f.name())
                .is_some_and(|c| fills_untyped(c.as_ref(), f.data_type()))
        })
    }

    /// The schema of the whole buffer (all its JSON objects), for evolution.
    fn infer_buffer(&self, buffer: &RecordBuffer) -> Result<Option<Schema>, DecodeError> {
        Ok(self.infer(buffer, usize::MAX, &[])?.ok())
    }

    /// Infers the schema from the first `sample` JSON objects of `buffer` and the JSON objects of
    /// `others` (other partitions' first records; as arrow-json infers it, fields null in every
    /// sample have type `Null`; objects that do not infer together are inferred alone and
    /// merged). `Ok(Err(rejected))` when no value is a usable JSON object: every record of the
    /// buffer is rejected with its cause.
    fn infer(
        &self,
        buffer: &RecordBuffer,
        sample: usize,
        others: &[Vec<u8>],
    ) -> Result<Result<Schema, Vec<(usize, RecordError)>>, DecodeError> {
        let mut objects = Vec::new();
        let mut rejected = Vec::new();
        for i in 0..buffer.len() {
            if objects.len() >= sample {
                break;
            }
            let v = match value_of(buffer, i, self.header) {
                Ok(v) => v,
                Err(e) => {
                    rejected.push((i, e));
                    continue;
                }
            };
            match serde_json::from_slice::<serde_json::Value>(v) {
                Ok(value @ serde_json::Value::Object(_)) => objects.push(value),
                Ok(other) => rejected.push((i, not_an_object(&other))),
                Err(e) => rejected.push((i, RecordError(format!("invalid JSON: {e}")))),
            }
        }
        // Values that are not objects are rejected by their own partition's decoder.
        objects.extend(
            others
                .iter()
                .filter_map(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
                .filter(serde_json::Value::is_object),
        );
        if objects.is_empty() {
            return Ok(Err(rejected));
        }
        let schema = infer_together(&objects).map_err(|e| DecodeError::Inference {
            topic: self.topic.clone(),
            message: e.to_string(),
        })?;
        if schema.fields().is_empty() {
            // Only `{}` so far: nothing to build columns from yet.
            let cause = "cannot infer a schema: the JSON objects have no fields";
            let all = (0..buffer.len())
                .map(|i| match value_of(buffer, i, self.header) {
                    Err(e) => (i, e),
                    Ok(_) => (i, RecordError(cause.to_string())),
                })
                .collect();
            return Ok(Err(all));
        }
        Ok(Ok(schema))
    }

    /// Decodes with the inferred schema, evolving it per `json.schema.evolution`.
    fn decode_inferred(&mut self, buffer: &RecordBuffer) -> Result<Decoded, DecodeError> {
        if self.schema.is_none() {
            let others = self
                .shared
                .as_ref()
                .map(|s| s.sampled())
                .unwrap_or_default();
            match self.infer(buffer, INFERENCE_SAMPLE, &others)? {
                Ok(inferred) => self.adopt(&inferred)?,
                Err(rejected) => {
                    let batch = RecordBatch::new_empty(Arc::new(Schema::empty()));
                    return Ok(Decoded { batch, rejected });
                }
            }
        }
        let evolve = self.evolution == JsonEvolution::AddNewColumns;
        let schema = self
            .schema
            .clone()
            .unwrap_or_else(|| Arc::new(Schema::empty()));
        if let Some(decoded) = self.decode_fast(&schema, buffer)? {
            if !(evolve && self.untyped_got_values(&decoded.batch)) {
                return Ok(decoded);
            }
        }
        if evolve {
            if let Some(inferred) = self.infer_buffer(buffer)? {
                self.adopt(&inferred)?;
            }
        }
        let schema = self.schema.clone().unwrap_or(schema);
        if let Some(decoded) = self.decode_fast(&schema, buffer)? {
            return Ok(decoded);
        }
        self.decode_isolating(&schema, buffer)
    }
}

impl ValueDecoder for JsonDecoder {
    fn decode(&mut self, buffer: &RecordBuffer) -> Result<Decoded, DecodeError> {
        if self.shared.is_some() {
            self.follow_shared();
            let mut decoded = self.decode_inferred(buffer)?;
            if let (true, Some(inferred)) = (self.strip_untyped, &self.inferred) {
                decoded.batch = super::untyped::strip(&decoded.batch, inferred).map_err(|e| {
                    DecodeError::Inference {
                        topic: self.topic.clone(),
                        message: e.to_string(),
                    }
                })?;
            }
            return Ok(decoded);
        }
        let schema = self
            .schema
            .clone()
            .unwrap_or_else(|| Arc::new(Schema::empty()));
        match self.decode_fast(&schema, buffer)? {
            Some(decoded) => Ok(decoded),
            None => self.decode_isolating(&schema, buffer),
        }
    }

    fn schema(&self) -> Option<SchemaRef> {
        self.schema.clone()
    }
}

/// A one-record decoder: does a value decode alone?
struct Probe {
    schema: SchemaRef,
    decoder: Decoder,
}

impl Probe {
    fn new(owner: &JsonDecoder, schema: &SchemaRef) -> Result<Self, ArrowError> {
        Ok(Probe {
            schema: schema.clone(),
            decoder: owner.new_decoder(schema, 1)?,
        })
    }

    /// `Ok(Err(cause))` when `value` does not decode alone.
    fn fits(
        &mut self,
        owner: &JsonDecoder,
        value: &[u8],
    ) -> Result<Result<(), RecordError>, ArrowError> {
        let result = feed(&mut self.decoder, value).and_then(|()| {
            self.decoder
                .flush()
                .map(|_| ())
                .map_err(|e| RecordError(e.to_string()))
        });
        if result.is_err() {
            // A failed decoder keeps its state: start afresh.
            self.decoder = owner.new_decoder(&self.schema, 1)?;
        }
        Ok(result)
    }
}

/// The schema of JSON objects inferred together, else each alone and merged (a struct in one and
/// a scalar in another: the first seen is kept, the other values will be rescued).
fn infer_together(objects: &[serde_json::Value]) -> Result<Schema, ArrowError> {
    if let Ok(schema) = infer_json_schema_from_iterator(objects.iter().map(Ok)) {
        return Ok(schema);
    }
    let mut schema = Schema::empty();
    for object in objects {
        let one = infer_json_schema_from_iterator(std::iter::once(Ok(object)))?;
        schema = merge_schemas(&schema, &one, Scalars::Widen).0;
    }
    Ok(schema)
}

/// Whether `array` (decoded from a column of inferred type `inferred`) holds a value where the
/// inferred type has no type yet (`Null`, a struct without fields, at any depth).
fn fills_untyped(array: &dyn Array, inferred: &DataType) -> bool {
    match inferred {
        DataType::Null => array.null_count() < array.len(),
        DataType::Struct(f) if f.is_empty() => array.null_count() < array.len(),
        DataType::List(item) => match array.as_list_opt::<i32>() {
            Some(list) => fills_untyped(list.values().as_ref(), item.data_type()),
            None => false,
        },
        DataType::Struct(fields) => match array.as_struct_opt() {
            Some(s) => fields.iter().any(|f| {
                s.column_by_name(f.name())
                    .is_some_and(|c| fills_untyped(c.as_ref(), f.data_type()))
            }),
            None => false,
        },
        _ => false,
    }
}

/// The value of record `i` after its first `header` bytes, or why it cannot be a JSON object.
fn value_of(buffer: &RecordBuffer, i: usize, header: usize) -> Result<&[u8], RecordError> {
    match buffer.value(i) {
        None => Err(RecordError("null value (tombstone)".to_string())),
        Some(v) if v.len() <= header => Err(RecordError("empty value".to_string())),
        Some(v) => Ok(&v[header..]),
    }
}

/// Feeds one record to `decoder`, checking it was exactly one complete JSON value.
fn feed(decoder: &mut Decoder, value: &[u8]) -> Result<(), RecordError> {
    let before = decoder.len();
    let consumed = decoder
        .decode(value)
        .map_err(|e| RecordError(e.to_string()))?;
    if decoder.has_partial_record() {
        // A bare number is complete only once a delimiter follows; anything else is truncated.
        decoder
            .decode(b" ")
            .map_err(|e| RecordError(e.to_string()))?;
        if decoder.has_partial_record() {
            return Err(RecordError("truncated JSON value".to_string()));
        }
    }
    match decoder.len() - before {
        0 => Err(RecordError("no JSON value (only whitespace)".to_string())),
        1 if consumed == value.len() => Ok(()),
        _ => Err(RecordError(
            "unexpected data after the JSON value".to_string(),
        )),
    }
}

fn not_an_object(value: &serde_json::Value) -> RecordError {
    let kind = match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    };
    RecordError(format!("expected a JSON object, got {kind}"))
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
