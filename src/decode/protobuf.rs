//! [`ProtobufDecoder`]: Confluent `ProtobufConverter` values decoded into Arrow.
//!
//! Wire format ([`frame`]): magic byte `0x00`, 4-byte big-endian schema id, the message indexes
//! (zigzag varints: a count, then that many indexes; the single byte `0` means `[0]`, the file's
//! first message), then the protobuf message. Schemas come from the registry by id with their
//! references ([`super::protobuf_schema`]); each message is decoded by prost-reflect into a
//! `DynamicMessage` and appended column by column ([`super::protobuf_arrow`], which documents the
//! type mapping).
//!
//! Schema versions: the output (reader) schema is the message of the highest schema id seen so
//! far (first the highest id of the first buffer). When a buffer brings a higher id, its message
//! becomes the reader, [`ValueDecoder::schema`] changes and the caller starts a new file, as for
//! Avro. Records of every id are decoded with the reader's descriptor: protobuf's own rules (by
//! field number: added fields are absent, removed ones skipped) read old and new records alike.
//! A record whose message type (full name) is not the reader's is rejected, as is one whose
//! bytes the reader's descriptor cannot decode (a field whose type changed incompatibly);
//! `schema.compatibility` does not apply.
//!
//! Errors: tombstones, empty values, a wrong magic byte, a truncated header or message-index
//! list, an unknown schema id, a schema that is not Protobuf or does not compile, a message index
//! that names no message, and bytes that do not parse as the message are rejected per record with
//! the cause (the caller names topic/partition/offset and applies `errors.tolerance`). Registry
//! outages fail the whole call with [`DecodeError::Registry`]: nothing is decoded and the same
//! buffer can be decoded later.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use prost_reflect::{DynamicMessage, FileDescriptor, MessageDescriptor};

use super::protobuf_arrow::StructColumn;
use super::protobuf_schema::{load, message_at, LoadError, ProtoSchemas};
use super::{DecodeError, Decoded, RecordBuffer, RecordError, ValueDecoder};

/// Most message indexes accepted in one header (nesting depth).
const MAX_INDEXES: u64 = 64;

/// A value split per the Confluent wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed<'a> {
    pub id: u32,
    pub indexes: Vec<u64>,
    pub body: &'a [u8],
}

/// Splits a Confluent protobuf value into schema id, message indexes and message bytes.
pub fn frame(value: &[u8]) -> Result<Framed<'_>, String> {
    match value.first() {
        None => return Err("empty value".to_string()),
        Some(0) => {}
        Some(b) => {
            return Err(format!(
                "wrong magic byte 0x{b:02x}: not the Confluent wire format (0x00, 4-byte schema \
                 id, message indexes, Protobuf data)"
            ))
        }
    }
    if value.len() < 5 {
        return Err(format!(
            "value of {} bytes is too short for the Confluent wire format (magic byte and 4-byte schema id)",
            value.len()
        ));
    }
    let id = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
    let mut rest = &value[5..];
    let truncated = |what: &str| format!("schema id {id}: truncated message-index list ({what})");
    let count = zigzag(&mut rest).ok_or_else(|| truncated("count"))?;
    let indexes = match count {
        0 => vec![0],
        n if n < 0 || n as u64 > MAX_INDEXES => {
            return Err(format!(
                "schema id {id}: invalid message-index count {n} (0 to {MAX_INDEXES})"
            ))
        }
        n => {
            let mut indexes = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let i = zigzag(&mut rest).ok_or_else(|| truncated("index"))?;
                let i = u64::try_from(i)
                    .map_err(|_| format!("schema id {id}: negative message index {i}"))?;
                indexes.push(i);
            }
            indexes
        }
    };
    Ok(Framed {
        id,
        indexes,
        body: rest,
    })
}

/// One zigzag-encoded varint, advancing `buf`.
fn zigzag(buf: &mut &[u8]) -> Option<i64> {
    if buf.is_empty() {
        return None;
    }
    let v = prost::encoding::decode_varint(buf).ok()?;
    Some((v >> 1) as i64 ^ -((v & 1) as i64))
}

/// A framed record's schema id, writer message and message bytes.
type Planned<'a> = (u32, MessageDescriptor, &'a [u8]);

/// The output message and its columns.
struct Reader {
    id: u32,
    message: MessageDescriptor,
    columns: StructColumn,
    schema: SchemaRef,
}

/// Decodes Confluent-framed protobuf values into RecordBatches.
pub struct ProtobufDecoder {
    source: Arc<dyn ProtoSchemas>,
    /// Compiled schemas by id, or why the id is unusable.
    files: BTreeMap<u32, Result<FileDescriptor, String>>,
    reader: Option<Reader>,
}

impl std::fmt::Debug for ProtobufDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtobufDecoder")
            .field("schema_ids", &self.files.keys().collect::<Vec<_>>())
            .field("reader_id", &self.reader.as_ref().map(|r| r.id))
            .finish()
    }
}

impl ProtobufDecoder {
    pub fn new(source: Arc<dyn ProtoSchemas>) -> Self {
        ProtobufDecoder {
            source,
            files: BTreeMap::new(),
            reader: None,
        }
    }

    /// The schema id whose message is the output schema.
    pub fn reader_schema_id(&self) -> Option<u32> {
        self.reader.as_ref().map(|r| r.id)
    }

    /// Fetches and compiles schema `id` the first time it is seen.
    fn learn(&mut self, id: u32) -> Result<(), DecodeError> {
        if self.files.contains_key(&id) {
            return Ok(());
        }
        let file = match load(self.source.as_ref(), id) {
            Ok(file) => Ok(file),
            Err(LoadError::Unusable(cause)) => Err(cause),
            Err(LoadError::Registry(e)) => return Err(DecodeError::Registry(e)),
        };
        self.files.insert(id, file);
        Ok(())
    }

    /// The message a framed record was written with.
    fn writer_message(&self, f: &Framed) -> Result<MessageDescriptor, String> {
        match self.files.get(&f.id) {
            Some(Ok(file)) => {
                message_at(file, &f.indexes).map_err(|e| format!("schema id {}: {e}", f.id))
            }
            Some(Err(cause)) => Err(cause.clone()),
            None => Err(format!("schema id {} was not fetched", f.id)),
        }
    }

    /// Makes `message` of schema `id` the output schema.
    fn set_reader(&mut self, id: u32, message: MessageDescriptor) -> Result<(), DecodeError> {
        let columns = StructColumn::plan(&message).map_err(|message| DecodeError::Schema {
            what: format!("Protobuf schema id {id}"),
            message,
        })?;
        let schema = Arc::new(columns.schema());
        self.reader = Some(Reader {
            id,
            message,
            columns,
            schema,
        });
        Ok(())
    }

    /// Frames every record and learns new ids; a record's message or why it is rejected.
    fn plan<'a>(
        &mut self,
        buffer: &'a RecordBuffer,
    ) -> Result<Vec<Result<Planned<'a>, String>>, DecodeError> {
        let framed: Vec<Result<Framed<'a>, String>> = (0..buffer.len())
            .map(|i| match buffer.value(i) {
                None => Err("null value (tombstone)".to_string()),
                Some(v) => frame(v),
            })
            .collect();
        for f in framed.iter().flatten() {
            self.learn(f.id)?;
        }
        Ok(framed
            .into_iter()
            .map(|f| {
                let f = f?;
                let message = self.writer_message(&f)?;
                Ok((f.id, message, f.body))
            })
            .collect())
    }
}

impl ValueDecoder for ProtobufDecoder {
    fn decode(&mut self, buffer: &RecordBuffer) -> Result<Decoded, DecodeError> {
        let planned = self.plan(buffer)?;
        // The first record of the highest id decides (ties: the earliest record's message).
        let mut newest: Option<(u32, &MessageDescriptor)> = None;
        for (id, m, _) in planned.iter().flatten() {
            if newest.is_none_or(|(best, _)| *id > best) {
                newest = Some((*id, m));
            }
        }
        let newest = newest.map(|(id, m)| (id, m.clone()));
        if let Some((id, message)) = newest {
            if self.reader.as_ref().is_none_or(|r| id > r.id) {
                self.set_reader(id, message)?;
            }
        }
        let mut rejected = Vec::new();
        let Some(reader) = self.reader.as_mut() else {
            // No record of this buffer has a usable schema.
            for (i, p) in planned.into_iter().enumerate() {
                rejected.push((i, RecordError(p.err().unwrap_or_default())));
            }
            let empty = Arc::new(arrow::datatypes::Schema::empty());
            return Ok(Decoded {
                batch: arrow::record_batch::RecordBatch::new_empty(empty),
                rejected,
            });
        };
        for (i, p) in planned.into_iter().enumerate() {
            match p.and_then(|(id, writer, body)| decode_one(reader, id, &writer, body)) {
                Ok(message) => reader.columns.append(Some(&message)),
                Err(cause) => rejected.push((i, RecordError(cause))),
            }
        }
        let batch = reader.columns.finish_batch(&reader.schema)?;
        Ok(Decoded { batch, rejected })
    }

    fn schema(&self) -> Option<SchemaRef> {
        self.reader.as_ref().map(|r| r.schema.clone())
    }
}

/// Decodes one record's bytes with the reader's descriptor.
fn decode_one(
    reader: &Reader,
    id: u32,
    writer: &MessageDescriptor,
    body: &[u8],
) -> Result<DynamicMessage, String> {
    if writer.full_name() != reader.message.full_name() {
        return Err(format!(
            "schema id {id}: message type {} is not the topic's message type {} (schema id {})",
            writer.full_name(),
            reader.message.full_name(),
            reader.id
        ));
    }
    DynamicMessage::decode(reader.message.clone(), body).map_err(|e| {
        format!(
            "schema id {id}: bytes do not parse as Protobuf message {} (read with schema id {}): {e}",
            writer.full_name(),
            reader.id
        )
    })
}

#[cfg(test)]
#[path = "protobuf_tests.rs"]
mod tests;
