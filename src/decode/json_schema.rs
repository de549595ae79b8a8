//! [`JsonSchemaDecoder`]: values written by Confluent's `JsonSchemaConverter` /
//! `KafkaJsonSchemaSerializer` (magic byte `0x00`, 4-byte big-endian schema id, JSON text),
//! decoded into the Arrow columns their registered JSON Schema declares.
//!
//! Schemas are fetched by id from a [`SchemaSource`] (the registry client, cached) the first time
//! an id is seen, with their registry `references` (other subjects' schemas, fetched by subject
//! and version, recursively) so that `$ref`s into them resolve, and mapped to Arrow by
//! [`super::json_schema_map`]. The JSON text is decoded by a [`JsonDecoder`] with that schema
//! declared, skipping the 5-byte header: the same one-pass decoder, speed and per-record
//! behaviour as JSON with `value.schema`.
//!
//! Schema versions mirror [`super::avro::AvroDecoder`]: the output schema is the mapping of the
//! newest (highest) schema id seen (`schema.compatibility` `BACKWARD`, `FULL`, `NONE`; the
//! oldest with `FORWARD`), and a newer id replaces it only if it is compatible with it under the
//! mode ([`compatibility`]); then [`ValueDecoder::schema`] changes and the caller starts a new
//! file. Records of an id whose columns do not decode into the output columns are rejected with
//! the cause.
//!
//! Bad records (rejected with the cause, so `errors.tolerance` and the dead letter queue apply):
//! tombstones, empty values, a wrong magic byte or a value too short for the header (not the wire
//! format), an unknown schema id (registry 404), a schema that is not JSON Schema or cannot be
//! mapped (its root is not an object with typed properties, an unresolvable `$ref`), and JSON
//! text that does not fit the columns (invalid JSON, a string where the schema says integer, ...).
//! Registry outages fail the call with [`DecodeError::Registry`], as for Avro.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use serde_json::Value;

use super::avro_compat::Compat;
use super::json::JsonDecoder;
use super::json_schema_map::{can_read, compatibility, to_arrow};
use super::registry::{RegisteredSchema, RegistryError, SchemaSource};
use super::{DecodeError, Decoded, RecordBuffer, RecordError, ValueDecoder};

/// Confluent header: magic byte and 4-byte schema id.
const HEADER_LEN: usize = 5;
/// Most registry references followed for one schema (transitively).
const MAX_REFERENCES: usize = 100;

/// A schema id seen: its columns (or why it is unusable) and whether its records decode into the
/// output columns (or why not).
struct Writer {
    schema: Result<SchemaRef, String>,
    status: Result<(), String>,
}

/// Decodes Confluent JSON Schema values into RecordBatches (see the module doc).
pub struct JsonSchemaDecoder {
    topic: String,
    source: Arc<dyn SchemaSource>,
    compat: Compat,
    batch_records: usize,
    writers: BTreeMap<u32, Writer>,
    /// The output schema: the id it maps, its columns, and the decoder built for them.
    reader: Option<(u32, SchemaRef, JsonDecoder)>,
}

impl std::fmt::Debug for JsonSchemaDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonSchemaDecoder")
            .field("topic", &self.topic)
            .field("compat", &self.compat)
            .field("reader_id", &self.reader_schema_id())
            .field("writer_ids", &self.writers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl JsonSchemaDecoder {
    /// A decoder of `topic`'s values with schemas from `source`.
    pub fn new(
        topic: String,
        source: Arc<dyn SchemaSource>,
        compat: Compat,
        batch_records: usize,
    ) -> Self {
        JsonSchemaDecoder {
            topic,
            source,
            compat,
            batch_records,
            writers: BTreeMap::new(),
            reader: None,
        }
    }

    /// The schema id whose columns are the output (`None` before the first usable one).
    pub fn reader_schema_id(&self) -> Option<u32> {
        self.reader.as_ref().map(|(id, _, _)| *id)
    }

    /// The schema id of record `i`, or why it is not in the wire format.
    fn frame(buffer: &RecordBuffer, i: usize) -> Result<u32, RecordError> {
        let value = match buffer.value(i) {
            None => return Err(RecordError("null value (tombstone)".to_string())),
            Some([]) => return Err(RecordError("empty value".to_string())),
            Some(v) => v,
        };
        if value[0] != 0 {
            return Err(RecordError(format!(
                "wrong magic byte 0x{:02x}: not the Confluent wire format (0x00, 4-byte schema \
                 id, JSON text)",
                value[0]
            )));
        }
        if value.len() < HEADER_LEN {
            return Err(RecordError(format!(
                "value of {} bytes is too short for the Confluent wire format (magic byte and \
                 4-byte schema id)",
                value.len()
            )));
        }
        let id = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
        if value.len() == HEADER_LEN {
            return Err(RecordError(format!(
                "no JSON after the Confluent header (schema id {id})"
            )));
        }
        Ok(id)
    }

    /// Fetches and maps a schema id seen for the first time.
    fn learn(&mut self, id: u32) -> Result<(), DecodeError> {
        let schema = match self.source.schema_by_id(id) {
            Ok(registered) if registered.schema_type != "JSON" => Err(format!(
                "schema id {id} is a {} schema, not JSON Schema",
                registered.schema_type
            )),
            Ok(registered) => self.columns(&registered)?,
            Err(e @ RegistryError::NotFound { .. }) => Err(format!("unknown schema id {id}: {e}")),
            Err(e) => return Err(DecodeError::Registry(e)),
        };
        let status = schema.as_ref().map(|_| ()).map_err(Clone::clone);
        self.writers.insert(id, Writer { schema, status });
        Ok(())
    }

    /// The columns of a registered JSON Schema, or why it cannot be used.
    fn columns(
        &self,
        registered: &RegisteredSchema,
    ) -> Result<Result<SchemaRef, String>, DecodeError> {
        let id = registered.id;
        let root: Value = match serde_json::from_str(&registered.schema) {
            Ok(v) => v,
            Err(e) => return Ok(Err(format!("schema id {id} is not JSON: {e}"))),
        };
        let referenced = match self.references(registered)? {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match to_arrow(&root, &referenced) {
            Ok(mapped) => {
                if !mapped.skipped.is_empty() {
                    tracing::warn!(
                        topic = %self.topic,
                        "JSON Schema id {id}: properties without a single Arrow type are not \
                         written: {:?}",
                        mapped.skipped
                    );
                }
                Ok(Arc::new(mapped.schema))
            }
            Err(e) => Err(format!("schema id {id} cannot be mapped to columns: {e}")),
        })
    }

    /// The documents of `registered`'s references (and theirs), by reference name.
    fn references(
        &self,
        registered: &RegisteredSchema,
    ) -> Result<Result<HashMap<String, Value>, String>, DecodeError> {
        let id = registered.id;
        let mut documents = HashMap::new();
        let mut pending: Vec<_> = registered.references.clone();
        while let Some(reference) = pending.pop() {
            if documents.contains_key(&reference.name) {
                continue;
            }
            if documents.len() >= MAX_REFERENCES {
                return Ok(Err(format!(
                    "schema id {id} has more than {MAX_REFERENCES} references"
                )));
            }
            let target = match self.source.referenced(id, &reference) {
                Ok(t) => t,
                Err(e @ RegistryError::NotFound { .. }) => {
                    return Ok(Err(format!("schema id {id}: {e}")))
                }
                Err(e) => return Err(DecodeError::Registry(e)),
            };
            match serde_json::from_str::<Value>(&target.schema) {
                Ok(doc) => documents.insert(reference.name.clone(), doc),
                Err(e) => {
                    return Ok(Err(format!(
                        "schema id {id}: reference '{}' is not JSON: {e}",
                        reference.name
                    )))
                }
            };
            pending.extend(target.references.iter().cloned());
        }
        Ok(Ok(documents))
    }

    fn schema_of(&self, id: u32) -> Option<SchemaRef> {
        self.writers.get(&id).and_then(|w| w.schema.clone().ok())
    }

    /// Picks a (newer) output schema among the usable ids of this buffer, as the Avro decoder.
    fn choose_reader(&mut self, ids: &BTreeSet<u32>) {
        let usable: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|id| self.schema_of(*id).is_some())
            .collect();
        let forward = self.compat == Compat::Forward;
        let next = match &self.reader {
            None => if forward {
                usable.first()
            } else {
                usable.last()
            }
            .and_then(|&id| self.schema_of(id).map(|s| (id, s))),
            Some((current, current_schema, _)) if !forward => {
                let mut chosen: Option<(u32, SchemaRef)> = None;
                for &id in usable.iter().filter(|&&id| id > *current) {
                    let Some(candidate) = self.schema_of(id) else {
                        continue;
                    };
                    let base = chosen.as_ref().map_or(current_schema, |(_, s)| s);
                    if compatibility(base, &candidate, self.compat).is_ok() {
                        chosen = Some((id, candidate));
                    }
                }
                chosen
            }
            Some(_) => None,
        };
        if let Some((id, schema)) = next {
            let decoder =
                JsonDecoder::new(self.topic.clone(), Some(schema.clone()), self.batch_records)
                    .with_header(HEADER_LEN);
            self.reader = Some((id, schema, decoder));
            self.refresh_statuses();
        }
    }

    /// Recomputes whether each id's records decode into the output columns.
    fn refresh_statuses(&mut self) {
        let ids: Vec<u32> = self.writers.keys().copied().collect();
        for id in ids {
            let status = self.status_of(id);
            if let Some(writer) = self.writers.get_mut(&id) {
                writer.status = status;
            }
        }
    }

    fn status_of(&self, id: u32) -> Result<(), String> {
        let writer = self
            .writers
            .get(&id)
            .ok_or_else(|| format!("unknown schema id {id}"))?;
        let schema = writer.schema.as_ref().map_err(Clone::clone)?;
        let Some((reader_id, reader, _)) = &self.reader else {
            return Ok(());
        };
        if *reader_id == id {
            return Ok(());
        }
        let (old, new) = if id > *reader_id {
            (reader, schema)
        } else {
            (schema, reader)
        };
        let mode = self.compat;
        compatibility(old, new, mode).map_err(|e| {
            format!("schema id {id} is not {mode}-compatible with the output schema (schema id {reader_id}): {e}")
        })?;
        can_read(reader, schema).map_err(|e| {
            format!(
                "schema id {id} cannot be read as the output schema (schema id {reader_id}): {e}"
            )
        })
    }
}

impl ValueDecoder for JsonSchemaDecoder {
    fn decode(&mut self, buffer: &RecordBuffer) -> Result<Decoded, DecodeError> {
        let mut rejected = Vec::new();
        let mut framed = Vec::with_capacity(buffer.len());
        for i in 0..buffer.len() {
            match Self::frame(buffer, i) {
                Ok(id) => framed.push((i, id)),
                Err(e) => rejected.push((i, e)),
            }
        }
        let ids: BTreeSet<u32> = framed.iter().map(|(_, id)| *id).collect();
        for &id in &ids {
            if !self.writers.contains_key(&id) {
                self.learn(id)?;
            }
        }
        self.choose_reader(&ids);
        let mut kept = Vec::with_capacity(framed.len());
        for (i, id) in framed {
            match self.writers.get(&id).map(|w| &w.status) {
                Some(Ok(())) => kept.push((i, id)),
                Some(Err(cause)) => rejected.push((i, RecordError(cause.clone()))),
                None => rejected.push((i, RecordError(format!("unknown schema id {id}")))),
            }
        }
        let batch = match (&mut self.reader, kept.is_empty()) {
            (Some((_, _, decoder)), false) => decode_kept(decoder, buffer, &kept, &mut rejected)?,
            (Some((_, schema, _)), true) => RecordBatch::new_empty(schema.clone()),
            (None, _) => RecordBatch::new_empty(Arc::new(Schema::empty())),
        };
        rejected.sort_by_key(|(i, _)| *i);
        Ok(Decoded { batch, rejected })
    }

    fn schema(&self) -> Option<SchemaRef> {
        self.reader.as_ref().map(|(_, schema, _)| schema.clone())
    }
}

/// Decodes the `kept` records (buffer index, schema id) with `decoder`: the buffer itself when
/// every record is kept (no copy), else a buffer of the kept values. Rejections of the JSON
/// decoder are added to `rejected` with the buffer index and the schema id.
fn decode_kept(
    decoder: &mut JsonDecoder,
    buffer: &RecordBuffer,
    kept: &[(usize, u32)],
    rejected: &mut Vec<(usize, RecordError)>,
) -> Result<RecordBatch, DecodeError> {
    let decoded = if kept.len() == buffer.len() {
        decoder.decode(buffer)?
    } else {
        let mut subset = RecordBuffer::new(false, false);
        for &(i, _) in kept {
            subset.push(
                buffer.offsets[i],
                buffer.timestamps[i],
                None,
                buffer.value(i),
                Vec::new,
            );
        }
        decoder.decode(&subset)?
    };
    for (k, cause) in decoded.rejected {
        let (i, id) = kept[k];
        rejected.push((i, RecordError(format!("{cause} (JSON Schema id {id})"))));
    }
    Ok(decoded.batch)
}

#[cfg(test)]
#[path = "json_schema_tests.rs"]
mod tests;
