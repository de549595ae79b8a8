//! [`AvroDecoder`]: Avro record values decoded straight into Arrow by arrow-avro's streaming
//! `Decoder` (column builders fed from the bytes; no per-record value tree).
//!
//! Framing ([`AvroFraming`]):
//! * `Confluent`: magic byte `0x00`, 4-byte big-endian schema id, Avro binary. Writer schemas are
//!   fetched by id from a [`SchemaSource`] (the [`super::registry::RegistryClient`], which caches)
//!   the first time an id is seen, and kept for the life of the decoder.
//! * `Plain`: Avro binary written with one schema given in config. Each value is fed to arrow-avro
//!   behind a synthetic 5-byte header, so no bytes are copied.
//!
//! Output schema: the *reader* schema, into which every writer schema is resolved with Avro
//! schema resolution (added fields take their default, removed fields are skipped, `int` reads as
//! `long`, `float` as `double`, ...). It is the configured `reader_schema` when there is one;
//! otherwise it follows kafka-connect-hdfs's `schema.compatibility`: with `BACKWARD`, `FULL` and
//! `NONE` it is the newest (highest id) writer schema seen so far, with `FORWARD` the oldest seen
//! in the first buffer. A newer id becomes the reader only if [`compatibility`]`(current, newer,
//! mode)` holds; then [`ValueDecoder::schema`] changes and the caller must start a new file
//! (declare `reader_schema` for an output schema that never changes). Records of a writer schema
//! that is not compatible with the reader under the mode, or that Avro resolution cannot read,
//! are rejected with the cause. Timestamps are `Timestamp(_, "UTC")`, enums
//! `Dictionary(Int32, Utf8)`, decimals `Decimal128`/`Decimal256`, `fixed` and `uuid`
//! `FixedSizeBinary`, `date` `Date32`, `time-millis`/`time-micros` `Time32`/`Time64`.
//!
//! Errors: tombstones, empty values, a wrong magic byte, a header without data, an unknown
//! schema id (registry 404), non-Avro or unusable schemas, truncated or garbage bytes and
//! trailing bytes are rejected per record with the cause. Registry outages (after the client's
//! retries) fail the whole call with [`DecodeError::Registry`]: nothing is decoded and the same
//! buffer can be decoded later.
//!
//! Decoding ([`super::avro_feed`]): records are fed grouped by writer schema id to one reused
//! decoder (one flush per id, however ids interleave; rows are put back in buffer order), with a
//! check after each feed that exactly one row was added and every byte consumed. On any failure a
//! slow path probes the records (a decoder per id, rebuilt after each bad record, the cause taken
//! from decoding the bad record alone), then decodes the good ones together, or one by one if an
//! error shows only at flush (invalid UTF-8). A buffer in which no record decodes (a JSON topic
//! read with `value.avro.schema`) gives an empty batch and every record rejected with its cause,
//! like any bad record (`errors.tolerance`, dead letter queue), never a failed call.
//! Known limit of the fast path: a value whose valid Avro body is followed by exactly a 5-byte
//! `0x00` + known schema id tail is accepted (the tail is ignored) when it is the last record fed
//! of a buffer; anywhere else the next record fed fails the checks and the buffer takes the slow
//! path, which rejects it. Schemas whose records encode to zero bytes (records without fields)
//! are not supported: such values are rejected as having no data.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow_avro::reader::Decoder;
use arrow_avro::schema::AvroSchema;

pub use super::avro_compat::{can_read, compatibility, Compat};
use super::avro_feed::{
    assemble, build, decode_one, feed_all, feed_checked, grouped, strip_metadata, Planned,
    HEADER_LEN,
};
use super::registry::{RegistryError, SchemaSource};
use super::{DecodeError, Decoded, RecordBuffer, RecordError, ValueDecoder};

/// Schema id under which the plain-mode schema is registered internally.
const PLAIN_ID: u32 = 0;
/// The header fed before each plain-mode value.
const PLAIN_HEADER: [u8; HEADER_LEN] = [0, 0, 0, 0, 0];
/// Records per decode call that the decoder is sized for by default.
pub const DEFAULT_BATCH_RECORDS: usize = 1024;

/// How values are framed.
#[derive(Clone)]
pub enum AvroFraming {
    /// Confluent wire format, writer schemas by id from this source.
    Confluent(Arc<dyn SchemaSource>),
    /// Plain Avro binary written with this schema (Avro schema JSON).
    Plain(String),
}

/// Decoder settings (the config keys are wired by the caller).
#[derive(Debug, Clone)]
pub struct AvroDecoderOptions {
    /// Output (reader) schema, Avro schema JSON; `None`: chosen among writer schemas by `compat`.
    pub reader_schema: Option<String>,
    /// `schema.compatibility`.
    pub compat: Compat,
    /// The usual number of records per buffer (sizes the decoder).
    pub batch_records: usize,
}

impl Default for AvroDecoderOptions {
    fn default() -> Self {
        AvroDecoderOptions {
            reader_schema: None,
            compat: Compat::Backward,
            batch_records: DEFAULT_BATCH_RECORDS,
        }
    }
}

/// A writer schema known to the decoder.
struct WriterSchema {
    /// The schema, or why it cannot be used at all (unknown id, not Avro, invalid).
    schema: Result<AvroSchema, String>,
    /// Whether its records decode into the current reader schema, else the cause.
    status: Result<(), String>,
}

/// The reader (output) schema: a writer id, or `None` for a configured schema.
struct Reader {
    id: Option<u32>,
    schema: AvroSchema,
}

/// Decodes Avro record values (Confluent-framed or plain) into RecordBatches.
pub struct AvroDecoder {
    source: Option<Arc<dyn SchemaSource>>,
    options: AvroDecoderOptions,
    reader: Option<Reader>,
    writers: BTreeMap<u32, WriterSchema>,
    /// The reused decoder, the writer ids it knows and its batch size.
    decoder: Option<(Decoder, Vec<u32>, usize)>,
    output: Option<SchemaRef>,
    stats: AvroDecodeStats,
}

/// How buffers were decoded (for metrics and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AvroDecodeStats {
    /// Buffers decoded by the fast path.
    pub fast_buffers: u64,
    /// Buffers that needed record-by-record decoding.
    pub slow_buffers: u64,
}

impl std::fmt::Debug for AvroDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroDecoder")
            .field("plain", &self.source.is_none())
            .field("compat", &self.options.compat)
            .field("reader_id", &self.reader.as_ref().map(|r| r.id))
            .field("writer_ids", &self.writers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl AvroDecoder {
    /// A decoder for `framing`. Fails when the plain schema or the configured reader schema is
    /// invalid, or when the plain schema cannot be read as the reader schema.
    pub fn new(framing: AvroFraming, options: AvroDecoderOptions) -> Result<Self, DecodeError> {
        let mut decoder = AvroDecoder {
            source: None,
            options,
            reader: None,
            writers: BTreeMap::new(),
            decoder: None,
            output: None,
            stats: AvroDecodeStats::default(),
        };
        if let Some(json) = decoder.options.reader_schema.clone() {
            let schema = AvroSchema::new(json);
            validate(&schema).map_err(|message| DecodeError::Schema {
                what: "Avro reader schema".to_string(),
                message,
            })?;
            decoder.set_reader(Reader { id: None, schema })?;
        }
        match framing {
            AvroFraming::Confluent(source) => decoder.source = Some(source),
            AvroFraming::Plain(json) => {
                let schema = AvroSchema::new(json);
                validate(&schema).map_err(|message| DecodeError::Schema {
                    what: "Avro value schema".to_string(),
                    message,
                })?;
                decoder.writers.insert(
                    PLAIN_ID,
                    WriterSchema {
                        schema: Ok(schema.clone()),
                        status: Ok(()),
                    },
                );
                match &decoder.reader {
                    None => decoder.set_reader(Reader {
                        id: Some(PLAIN_ID),
                        schema,
                    })?,
                    Some(_) => {
                        decoder.refresh_statuses();
                        if let Some(Err(message)) =
                            decoder.writers.get(&PLAIN_ID).map(|w| w.status.clone())
                        {
                            return Err(DecodeError::Schema {
                                what: "Avro value schema".to_string(),
                                message,
                            });
                        }
                    }
                }
            }
        }
        Ok(decoder)
    }

    /// A Confluent wire format decoder with writer schemas from `source`.
    pub fn confluent(
        source: Arc<dyn SchemaSource>,
        options: AvroDecoderOptions,
    ) -> Result<Self, DecodeError> {
        Self::new(AvroFraming::Confluent(source), options)
    }

    /// A plain Avro binary decoder for values written with `writer_schema` (JSON).
    pub fn plain(writer_schema: &str, options: AvroDecoderOptions) -> Result<Self, DecodeError> {
        Self::new(AvroFraming::Plain(writer_schema.to_string()), options)
    }

    pub fn stats(&self) -> AvroDecodeStats {
        self.stats
    }

    /// The id of the writer schema currently used as the reader (`None`: configured or unknown).
    pub fn reader_schema_id(&self) -> Option<u32> {
        self.reader.as_ref().and_then(|r| r.id)
    }

    fn writer_name(&self, id: u32) -> String {
        match self.source {
            Some(_) => format!("schema id {id}"),
            None => "the configured schema".to_string(),
        }
    }

    /// Splits record `i` into writer id, header and body, or says why it cannot be Avro.
    fn frame<'a>(&self, buffer: &'a RecordBuffer, i: usize) -> Result<Planned<'a>, RecordError> {
        let value = match buffer.value(i) {
            None => return Err(RecordError("null value (tombstone)".to_string())),
            Some([]) => return Err(RecordError("empty value".to_string())),
            Some(v) => v,
        };
        if self.source.is_none() {
            return Ok(Planned {
                index: i,
                id: PLAIN_ID,
                header: &PLAIN_HEADER,
                body: value,
            });
        }
        if value[0] != 0 {
            return Err(RecordError(format!(
                "wrong magic byte 0x{:02x}: not the Confluent wire format (0x00, 4-byte schema id, Avro data)",
                value[0]
            )));
        }
        if value.len() < HEADER_LEN {
            return Err(RecordError(format!(
                "value of {} bytes is too short for the Confluent wire format (magic byte and 4-byte schema id)",
                value.len()
            )));
        }
        let id = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
        if value.len() == HEADER_LEN {
            return Err(RecordError(format!(
                "no Avro data after the Confluent header (schema id {id})"
            )));
        }
        Ok(Planned {
            index: i,
            id,
            header: &value[..HEADER_LEN],
            body: &value[HEADER_LEN..],
        })
    }

    /// Fetches and validates a writer schema seen for the first time.
    fn learn(&mut self, id: u32) -> Result<(), DecodeError> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        let schema = match source.schema_by_id(id) {
            Ok(registered) => {
                if registered.schema_type != "AVRO" {
                    Err(format!(
                        "schema id {id} is a {} schema, not Avro",
                        registered.schema_type
                    ))
                } else if !registered.references.is_empty() {
                    Err(format!(
                        "schema id {id} uses schema references, which are not supported"
                    ))
                } else {
                    let schema = AvroSchema::new(registered.schema.clone());
                    validate(&schema)
                        .map(|()| schema)
                        .map_err(|e| format!("schema id {id} is not a usable Avro schema: {e}"))
                }
            }
            Err(e @ RegistryError::NotFound { .. }) => Err(format!("unknown schema id {id}: {e}")),
            Err(e) => return Err(DecodeError::Registry(e)),
        };
        let status = schema.as_ref().map(|_| ()).map_err(Clone::clone);
        self.writers.insert(id, WriterSchema { schema, status });
        let status = self.status_of(id);
        if let Some(writer) = self.writers.get_mut(&id) {
            writer.status = status;
        }
        Ok(())
    }

    /// Makes `reader` the output schema and re-checks every writer against it.
    fn set_reader(&mut self, reader: Reader) -> Result<(), DecodeError> {
        let decoder = build(&[(u32::MAX, &reader.schema)], Some(&reader.schema), 1)?;
        self.output = Some(strip_metadata(decoder.schema()));
        self.reader = Some(reader);
        self.decoder = None;
        self.refresh_statuses();
        Ok(())
    }

    /// Picks a (newer) reader schema among the usable writer ids of this buffer, per the mode.
    fn choose_reader(&mut self, ids: &BTreeSet<u32>) -> Result<(), DecodeError> {
        let usable: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|id| self.writers.get(id).is_some_and(|w| w.schema.is_ok()))
            .collect();
        let schema_of = |writers: &BTreeMap<u32, WriterSchema>, id: u32| {
            writers.get(&id).and_then(|w| w.schema.clone().ok())
        };
        let forward = self.options.compat == Compat::Forward;
        let current = self.reader.as_ref().map(|r| (r.id, r.schema.clone()));
        let next = match current {
            None => {
                let pick = if forward {
                    usable.first()
                } else {
                    usable.last()
                };
                pick.and_then(|&id| schema_of(&self.writers, id).map(|s| (id, s)))
            }
            Some((Some(current_id), current_schema)) if !forward => {
                let mut chosen: Option<(u32, AvroSchema)> = None;
                for &id in usable.iter().filter(|&&id| id > current_id) {
                    let Some(candidate) = schema_of(&self.writers, id) else {
                        continue;
                    };
                    let base = chosen.as_ref().map_or(&current_schema, |(_, s)| s);
                    if compatibility(base, &candidate, self.options.compat).is_ok() {
                        chosen = Some((id, candidate));
                    }
                }
                chosen
            }
            Some(_) => None,
        };
        match next {
            Some((id, schema)) => self.set_reader(Reader {
                id: Some(id),
                schema,
            }),
            None => Ok(()),
        }
    }

    /// Recomputes whether each writer's records decode into the current reader schema.
    fn refresh_statuses(&mut self) {
        let ids: Vec<u32> = self.writers.keys().copied().collect();
        for id in ids {
            let status = self.status_of(id);
            if let Some(writer) = self.writers.get_mut(&id) {
                writer.status = status;
            }
        }
    }

    /// Whether the records of writer `id` decode into the current reader schema, else why not.
    fn status_of(&self, id: u32) -> Result<(), String> {
        let Some(writer) = self.writers.get(&id) else {
            return Err(format!("unknown schema id {id}"));
        };
        let schema = writer.schema.as_ref().map_err(Clone::clone)?;
        let Some(reader) = &self.reader else {
            return Ok(());
        };
        if reader.id == Some(id) || schema.json_string == reader.schema.json_string {
            return Ok(());
        }
        let mode = self.options.compat;
        let name = self.writer_name(id);
        let reader_name = match reader.id {
            Some(r) => self.writer_name(r),
            None => "the configured reader schema".to_string(),
        };
        let (old, new) = match reader.id {
            Some(r) if id > r => (&reader.schema, schema),
            _ => (schema, &reader.schema),
        };
        compatibility(old, new, mode).map_err(|e| {
            format!("{name} is not {mode}-compatible with the output schema ({reader_name}): {e}")
        })?;
        can_read(&reader.schema, schema).map_err(|e| {
            format!("{name} cannot be read as the output schema ({reader_name}): {e}")
        })?;
        build(&[(id, schema)], Some(&reader.schema), 1).map_err(|e| {
            format!("{name} cannot be resolved to the output schema ({reader_name}): {e}")
        })?;
        Ok(())
    }

    /// The reused decoder, knowing every usable writer and sized for `rows` records.
    fn decoder(&mut self, rows: usize) -> Result<&mut (Decoder, Vec<u32>, usize), DecodeError> {
        let ids: Vec<u32> = self
            .writers
            .iter()
            .filter(|(_, w)| w.status.is_ok() && w.schema.is_ok())
            .map(|(&id, _)| id)
            .collect();
        let reusable =
            matches!(&self.decoder, Some((_, known, size)) if *known == ids && *size >= rows);
        if !reusable {
            let size = rows.max(self.options.batch_records).max(1);
            let decoder = self.build_main(&ids, size)?;
            self.decoder = Some((decoder, ids, size));
        }
        self.decoder
            .as_mut()
            .ok_or_else(|| DecodeError::Arrow(ArrowError::AvroError("no decoder".to_string())))
    }

    fn build_main(&self, ids: &[u32], size: usize) -> Result<Decoder, DecodeError> {
        let schemas: Vec<(u32, &AvroSchema)> = ids
            .iter()
            .filter_map(|id| {
                let schema = self.writers.get(id)?.schema.as_ref().ok()?;
                Some((*id, schema))
            })
            .collect();
        let reader = self.reader.as_ref().map(|r| &r.schema);
        Ok(build(&schemas, reader, size)?)
    }

    /// Decodes all records with the reused decoder; `None` if anything looked wrong.
    fn decode_fast(
        &mut self,
        ordered: &[&Planned],
    ) -> Result<Option<Vec<RecordBatch>>, DecodeError> {
        let (decoder, _, size) = self.decoder(ordered.len())?;
        let size = *size;
        let result = feed_all(decoder, size, ordered);
        if result.is_none() {
            self.decoder = None;
        }
        Ok(result)
    }

    /// The slow path: a probe pass (a decoder per writer id, rebuilt after each bad record) finds
    /// the records that do not decode, then the good ones are decoded together. Errors seen only
    /// at flush (invalid UTF-8, decimal overflow) make it decode the good ones one by one.
    fn decode_slow(
        &mut self,
        schema: &SchemaRef,
        ordered: &[&Planned],
        rejected: &mut Vec<(usize, RecordError)>,
    ) -> Result<RecordBatch, DecodeError> {
        let mut good: Vec<&Planned> = Vec::with_capacity(ordered.len());
        for group in ordered.chunk_by(|a, b| a.id == b.id) {
            let (id, size) = (group[0].id, group.len());
            let mut decoder = self.build_main(&[id], size)?;
            let mut rows = 0;
            for &p in group {
                if feed_checked(&mut decoder, size, rows, p) {
                    rows += 1;
                    good.push(p);
                    continue;
                }
                match self.decode_alone(p)? {
                    Err(cause) => rejected.push((p.index, self.cause(p, cause))),
                    Ok(_) => {
                        // Fine alone: the previous record left bytes the decoder took for a header.
                        if let Some(&prev) = good.last().filter(|q| q.id == id) {
                            if let Err(cause) = self.decode_alone(prev)? {
                                good.pop();
                                rejected.push((prev.index, self.cause(prev, cause)));
                            }
                        }
                        good.push(p);
                    }
                }
                decoder = self.build_main(&[id], size)?;
                rows = 0;
            }
        }
        if good.is_empty() {
            // Every record was bad (say a JSON topic read as Avro): nothing to decode, and
            // arrow-avro refuses a decoder without writer schemas.
            return Ok(RecordBatch::new_empty(schema.clone()));
        }
        let ids: Vec<u32> = good
            .iter()
            .map(|p| p.id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let size = good.len().max(1);
        let mut decoder = self.build_main(&ids, size)?;
        if let Some(batches) = feed_all(&mut decoder, size, &good) {
            if let Ok(batch) = assemble(schema, &batches, &good) {
                return Ok(batch);
            }
        }
        let mut one = self.build_main(&ids, 1)?;
        let (mut batches, mut kept) = (Vec::new(), Vec::new());
        for p in good {
            match decode_one(&mut one, p) {
                Ok(batch) => {
                    batches.push(batch);
                    kept.push(p);
                }
                Err(cause) => {
                    rejected.push((p.index, self.cause(p, cause)));
                    one = self.build_main(&ids, 1)?;
                }
            }
        }
        Ok(assemble(schema, &batches, &kept)?)
    }

    /// Decodes `p` with a fresh decoder of batch size 1.
    fn decode_alone(&self, p: &Planned) -> Result<Result<RecordBatch, String>, DecodeError> {
        let mut decoder = self.build_main(&[p.id], 1)?;
        Ok(decode_one(&mut decoder, p))
    }

    fn cause(&self, p: &Planned, cause: String) -> RecordError {
        RecordError(format!("{cause} ({})", self.writer_name(p.id)))
    }

    fn empty_batch(&self) -> RecordBatch {
        let schema = self
            .output
            .clone()
            .unwrap_or_else(|| Arc::new(Schema::empty()));
        RecordBatch::new_empty(schema)
    }
}

impl ValueDecoder for AvroDecoder {
    fn decode(&mut self, buffer: &RecordBuffer) -> Result<Decoded, DecodeError> {
        let mut rejected = Vec::new();
        let mut framed = Vec::with_capacity(buffer.len());
        for i in 0..buffer.len() {
            match self.frame(buffer, i) {
                Ok(p) => framed.push(p),
                Err(e) => rejected.push((i, e)),
            }
        }
        let ids: BTreeSet<u32> = framed.iter().map(|p| p.id).collect();
        for &id in &ids {
            if !self.writers.contains_key(&id) {
                self.learn(id)?;
            }
        }
        if self.options.reader_schema.is_none() {
            self.choose_reader(&ids)?;
        }
        let mut plan = Vec::with_capacity(framed.len());
        for p in framed {
            match self.writers.get(&p.id).map(|w| &w.status) {
                Some(Ok(())) => plan.push(p),
                Some(Err(cause)) => rejected.push((p.index, RecordError(cause.clone()))),
                None => {
                    rejected.push((p.index, RecordError(format!("unknown schema id {}", p.id))))
                }
            }
        }
        let batch = match (&self.output, plan.is_empty()) {
            (Some(schema), false) => {
                let schema = schema.clone();
                let ordered = grouped(&plan);
                match self.decode_fast(&ordered)? {
                    Some(batches) => {
                        self.stats.fast_buffers += 1;
                        assemble(&schema, &batches, &ordered)?
                    }
                    None => {
                        self.stats.slow_buffers += 1;
                        self.decode_slow(&schema, &ordered, &mut rejected)?
                    }
                }
            }
            _ => self.empty_batch(),
        };
        rejected.sort_by_key(|(i, _)| *i);
        Ok(Decoded { batch, rejected })
    }

    fn schema(&self) -> Option<SchemaRef> {
        self.output.clone()
    }
}

/// Checks that `schema` is an Avro record schema that arrow-avro can decode.
fn validate(schema: &AvroSchema) -> Result<(), String> {
    serde_json::from_str::<serde_json::Value>(&schema.json_string)
        .map_err(|e| format!("not JSON: {e}"))?;
    build(&[(1, schema)], None, 1)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
