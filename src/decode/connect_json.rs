//! [`ConnectJsonDecoder`]: Kafka Connect `JsonConverter` envelopes (`schemas.enable=true`),
//! `{"schema": {...}, "payload": ...}`, decoded into Arrow.
//!
//! The output schema is the configured Connect schema, else the envelope schema of the first
//! record that has a usable one; it is mapped to Arrow as described in [`super::connect_schema`]
//! (a struct gives one column per field; any other type one column named `value`). Each envelope
//! is scanned once by serde_json into borrowed raw `schema` and `payload` slices (no value tree);
//! the payloads are then fed to arrow-json's tape decoder with the mapped decode schema, and the
//! decoded columns converted (base64 bytes and decimals, dates, times, timestamps).
//!
//! Records whose envelope schema differs from the output schema (compared as text first, the
//! verdict cached per distinct schema text) are decoded into the output schema when their schema
//! fits it ([`ConnectType::fits`]: same field names and types, int/float widening, output fields
//! absent from the record optional), and rejected with the cause otherwise, e.g. a field not in
//! the output schema. Tombstones, non-envelopes, null payloads, payloads that do not match the
//! schema, invalid base64 and decimals over their precision are rejected per record.
//!
//! Error isolation as in the JSON decoder: a fast path decodes all payloads with one decoder; if
//! anything fails, every record is decoded alone to find the bad ones.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::reader::{Decoder, ReaderBuilder};
use arrow::record_batch::RecordBatch;
use serde::Deserialize;
use serde_json::value::RawValue;

pub use super::connect_schema::DecimalFormat;
use super::connect_schema::{convert, convert_columns, ConnectType, Kind};
use super::{DecodeError, Decoded, RecordBuffer, RecordError, ValueDecoder};

/// Distinct envelope schema texts whose verdict is cached (the cache is cleared past this).
const MAX_CACHED_SCHEMAS: usize = 256;

/// Decoder settings (the config keys are wired by the caller).
#[derive(Debug, Clone)]
pub struct ConnectJsonOptions {
    /// Output schema as a Connect schema JSON; `None`: the first record's envelope schema.
    pub schema: Option<String>,
    /// `decimal.format` of the converter that wrote the records.
    pub decimal_format: DecimalFormat,
    /// The usual number of records per buffer (sizes the decoder).
    pub batch_records: usize,
}

impl Default for ConnectJsonOptions {
    fn default() -> Self {
        ConnectJsonOptions {
            schema: None,
            decimal_format: DecimalFormat::Base64,
            batch_records: 1024,
        }
    }
}

/// The envelope's two members as raw JSON text (`None` when absent; `null` stays `"null"`).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    schema: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// The output schema in its three forms.
struct Output {
    connect: ConnectType,
    /// The output Arrow schema.
    arrow: SchemaRef,
    /// The schema arrow-json decodes payloads with.
    decode: SchemaRef,
    /// Payloads are not structs: wrapped as `{"value": payload}`.
    wrapped: bool,
}

/// Decodes Connect JSON envelopes into RecordBatches.
pub struct ConnectJsonDecoder {
    options: ConnectJsonOptions,
    output: Option<Output>,
    /// Verdict per envelope schema text: fits the output schema, or why not.
    verdicts: HashMap<String, Result<(), String>>,
    fast: Option<(Decoder, usize)>,
}

impl std::fmt::Debug for ConnectJsonDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectJsonDecoder")
            .field("options", &self.options)
            .field("schema", &self.output.as_ref().map(|o| o.arrow.clone()))
            .finish()
    }
}

impl ConnectJsonDecoder {
    /// A decoder; fails if the configured schema is not a usable Connect schema.
    pub fn new(options: ConnectJsonOptions) -> Result<Self, DecodeError> {
        let mut decoder = ConnectJsonDecoder {
            options,
            output: None,
            verdicts: HashMap::new(),
            fast: None,
        };
        if let Some(text) = decoder.options.schema.clone() {
            let schema_error = |message: String| DecodeError::Schema {
                what: "Connect value schema".to_string(),
                message,
            };
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| schema_error(format!("not JSON: {e}")))?;
            let connect = ConnectType::parse(&value).map_err(schema_error)?;
            decoder.output = Some(decoder.make_output(connect));
        }
        Ok(decoder)
    }

    fn make_output(&self, connect: ConnectType) -> Output {
        let format = self.options.decimal_format;
        let arrow = Arc::new(Schema::new(connect.top_fields(false, format)));
        let decode = Arc::new(Schema::new(connect.top_fields(true, format)));
        let wrapped = !matches!(connect.kind, Kind::Struct(_));
        Output {
            connect,
            arrow,
            decode,
            wrapped,
        }
    }

    /// Whether records with envelope schema `text` decode into the output schema.
    fn verdict(&mut self, text: &str) -> Result<(), String> {
        if let Some(v) = self.verdicts.get(text) {
            return v.clone();
        }
        let parsed = serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| e.to_string())
            .and_then(|v| ConnectType::parse(&v))
            .map_err(|e| format!("unusable envelope schema: {e}"));
        let verdict = match (&self.output, parsed) {
            (_, Err(e)) => Err(e),
            (None, Ok(connect)) => {
                self.output = Some(self.make_output(connect));
                self.fast = None;
                Ok(())
            }
            (Some(out), Ok(connect)) => connect
                .fits(&out.connect, "")
                .map_err(|e| format!("envelope schema does not fit the output schema: {e}")),
        };
        if self.verdicts.len() >= MAX_CACHED_SCHEMAS {
            self.verdicts.clear();
        }
        self.verdicts.insert(text.to_string(), verdict.clone());
        verdict
    }

    /// The payload of record `i` (as arrow-json input), or why the record is rejected.
    fn payload<'a>(
        &mut self,
        buffer: &'a RecordBuffer,
        i: usize,
        last_schema: &mut Option<&'a str>,
    ) -> Result<&'a str, RecordError> {
        let value = buffer
            .value(i)
            .ok_or_else(|| RecordError("null value (tombstone)".to_string()))?;
        let text = std::str::from_utf8(value)
            .map_err(|e| RecordError(format!("value is not UTF-8 JSON: {e}")))?;
        let envelope: Envelope = serde_json::from_str(text).map_err(|e| {
            RecordError(format!(
                "not a Connect JSON envelope (schemas.enable=true): {e}"
            ))
        })?;
        let schema = envelope
            .schema
            .map(RawValue::get)
            .filter(|s| *s != "null")
            .ok_or_else(|| {
                RecordError("envelope has no 'schema' (schemas.enable=false?)".to_string())
            })?;
        let payload = envelope
            .payload
            .map(RawValue::get)
            .ok_or_else(|| RecordError("envelope has no 'payload'".to_string()))?;
        if *last_schema != Some(schema) {
            self.verdict(schema).map_err(RecordError)?;
            *last_schema = Some(schema);
        }
        if payload == "null" {
            return Err(RecordError("payload is null".to_string()));
        }
        Ok(payload)
    }

    fn new_decoder(decode: &SchemaRef, rows: usize) -> Result<Decoder, ArrowError> {
        ReaderBuilder::new(decode.clone())
            .with_batch_size(rows.max(1))
            .build_decoder()
    }

    /// Decodes `payloads` into one output batch, or fails (the caller isolates).
    fn decode_payloads(&mut self, payloads: &[&str]) -> Result<RecordBatch, String> {
        let Some(out) = &self.output else {
            return Err("no output schema".to_string());
        };
        let (decode, wrapped) = (out.decode.clone(), out.wrapped);
        let rows = payloads.len();
        let reusable = matches!(&self.fast, Some((_, cap)) if *cap >= rows);
        if !reusable {
            let cap = rows.max(self.options.batch_records);
            let decoder = Self::new_decoder(&decode, cap).map_err(|e| e.to_string())?;
            self.fast = Some((decoder, cap));
        }
        let Some((decoder, _)) = self.fast.as_mut() else {
            return Err("no decoder".to_string());
        };
        let result = feed_all(decoder, payloads, wrapped).and_then(|()| {
            decoder
                .flush()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "no rows decoded".to_string())
        });
        match result {
            Ok(batch) => self.finish_batch(&batch),
            Err(e) => {
                self.fast = None;
                Err(e)
            }
        }
    }

    /// Converts a decoded batch to the output schema.
    fn finish_batch(&self, batch: &RecordBatch) -> Result<RecordBatch, String> {
        let Some(out) = &self.output else {
            return Err("no output schema".to_string());
        };
        let format = self.options.decimal_format;
        let columns = match &out.connect.kind {
            Kind::Struct(fields) => convert_columns(batch.columns(), fields, format)?,
            _ => vec![convert(batch.column(0), &out.connect, format)?],
        };
        RecordBatch::try_new(out.arrow.clone(), columns).map_err(|e| e.to_string())
    }

    /// Decodes one payload alone (the slow path).
    fn decode_one(&self, payload: &str) -> Result<RecordBatch, String> {
        let Some(out) = &self.output else {
            return Err("no output schema".to_string());
        };
        let mut decoder = Self::new_decoder(&out.decode, 1).map_err(|e| e.to_string())?;
        feed_all(&mut decoder, &[payload], out.wrapped)?;
        let batch = decoder
            .flush()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no row decoded".to_string())?;
        self.finish_batch(&batch)
    }
}

impl ValueDecoder for ConnectJsonDecoder {
    fn decode(&mut self, buffer: &RecordBuffer) -> Result<Decoded, DecodeError> {
        let mut rejected = Vec::new();
        let mut accepted: Vec<(usize, &str)> = Vec::with_capacity(buffer.len());
        let mut last_schema = None;
        for i in 0..buffer.len() {
            match self.payload(buffer, i, &mut last_schema) {
                Ok(p) => accepted.push((i, p)),
                Err(e) => rejected.push((i, e)),
            }
        }
        let Some(out) = &self.output else {
            let batch = RecordBatch::new_empty(Arc::new(Schema::empty()));
            return Ok(Decoded { batch, rejected });
        };
        let schema = out.arrow.clone();
        if accepted.is_empty() {
            let batch = RecordBatch::new_empty(schema);
            return Ok(Decoded { batch, rejected });
        }
        let payloads: Vec<&str> = accepted.iter().map(|(_, p)| *p).collect();
        let batch = match self.decode_payloads(&payloads) {
            Ok(batch) => batch,
            Err(_) => {
                let mut good = Vec::with_capacity(accepted.len());
                for (i, payload) in &accepted {
                    match self.decode_one(payload) {
                        Ok(batch) => good.push(batch),
                        Err(e) => rejected.push((
                            *i,
                            RecordError(format!("payload does not match the schema: {e}")),
                        )),
                    }
                }
                rejected.sort_by_key(|(i, _)| *i);
                arrow::compute::concat_batches(&schema, &good)?
            }
        };
        Ok(Decoded { batch, rejected })
    }

    fn schema(&self) -> Option<SchemaRef> {
        self.output.as_ref().map(|o| o.arrow.clone())
    }
}

/// Feeds payloads (wrapped as `{"value": ...}` when not structs), one row each.
fn feed_all(decoder: &mut Decoder, payloads: &[&str], wrapped: bool) -> Result<(), String> {
    let mut scratch = Vec::new();
    for payload in payloads {
        let bytes = if wrapped {
            scratch.clear();
            scratch.extend_from_slice(b"{\"value\":");
            scratch.extend_from_slice(payload.as_bytes());
            scratch.push(b'}');
            &scratch[..]
        } else {
            payload.as_bytes()
        };
        let before = decoder.len();
        let consumed = decoder.decode(bytes).map_err(|e| e.to_string())?;
        if consumed != bytes.len() || decoder.len() != before + 1 || decoder.has_partial_record() {
            return Err("the payload is not one JSON value".to_string());
        }
    }
    Ok(())
}
