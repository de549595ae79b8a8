//! Feeding framed Avro records to arrow-avro's streaming `Decoder` with per-record checks, for
//! [`super::avro::AvroDecoder`].
//!
//! arrow-avro's `Decoder` takes a header (here always the 5-byte Confluent header; plain values
//! get a synthetic one) and then a body, appends one row to its column builders, and switches to
//! another writer schema only after the rows of the current one are flushed. Every feed is
//! checked: the header and the body are consumed whole and exactly one row is added. A failed
//! record leaves the builders inconsistent, so the decoder is then dropped.
//!
//! Records are fed grouped by writer schema id (one flush per id, however the ids interleave) and
//! the rows are put back in buffer order with `interleave_record_batch`.

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow_avro::codec::Tz;
use arrow_avro::errors::AvroError;
use arrow_avro::reader::{Decoder, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};

/// Confluent header: magic byte and 4-byte schema id.
pub(super) const HEADER_LEN: usize = 5;

/// One record to decode: buffer index, writer id, header, Avro body.
#[derive(Debug)]
pub(super) struct Planned<'a> {
    pub index: usize,
    pub id: u32,
    pub header: &'a [u8],
    pub body: &'a [u8],
}

/// An arrow-avro decoder for Confluent-framed values of the given writer schemas.
pub(super) fn build(
    writers: &[(u32, &AvroSchema)],
    reader: Option<&AvroSchema>,
    batch_size: usize,
) -> Result<Decoder, ArrowError> {
    let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
    for (id, schema) in writers {
        store.set(Fingerprint::Id(*id), (*schema).clone())?;
    }
    let mut builder = ReaderBuilder::new()
        .with_batch_size(batch_size)
        .with_tz(Tz::Utc)
        .with_writer_schema_store(store);
    if let Some(reader) = reader {
        builder = builder.with_reader_schema(reader.clone());
    }
    builder.build_decoder()
}

/// The records grouped by writer id (stable: buffer order within a group).
pub(super) fn grouped<'p, 'a>(plan: &'p [Planned<'a>]) -> Vec<&'p Planned<'a>> {
    let mut ordered: Vec<&Planned> = plan.iter().collect();
    if plan.windows(2).any(|w| w[0].id != w[1].id) {
        ordered.sort_by_key(|p| p.id);
    }
    ordered
}

/// Rows in the decoder's current batch.
fn rows_in(decoder: &Decoder, size: usize) -> usize {
    size - decoder.capacity()
}

/// Feeds one record whose writer schema is the active one; `false` if anything looked wrong.
pub(super) fn feed_checked(decoder: &mut Decoder, size: usize, rows: usize, p: &Planned) -> bool {
    decoder.decode(p.header).ok() == Some(HEADER_LEN)
        && rows_in(decoder, size) == rows
        && decoder.decode(p.body).ok() == Some(p.body.len())
        && rows_in(decoder, size) == rows + 1
}

/// Feeds every record (grouped by id) to one decoder, flushing at each schema switch; `None` at
/// the first inconsistency.
pub(super) fn feed_all(
    decoder: &mut Decoder,
    size: usize,
    ordered: &[&Planned],
) -> Option<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    let mut rows = 0;
    for p in ordered {
        if decoder.decode(p.header).ok()? != HEADER_LEN {
            return None;
        }
        if decoder.batch_is_full() {
            // A new writer schema: the decoder switches once the current rows are flushed.
            let batch = decoder.flush().ok()??;
            if batch.num_rows() != rows {
                return None;
            }
            batches.push(batch);
            rows = 0;
        } else if rows_in(decoder, size) != rows {
            return None;
        }
        if decoder.decode(p.body).ok()? != p.body.len() {
            return None;
        }
        rows += 1;
        if rows_in(decoder, size) != rows {
            return None;
        }
    }
    if rows > 0 {
        let batch = decoder.flush().ok()??;
        if batch.num_rows() != rows {
            return None;
        }
        batches.push(batch);
    }
    Some(batches)
}

/// Decodes one record alone with a decoder of batch size 1 (exact about trailing bytes).
pub(super) fn decode_one(decoder: &mut Decoder, p: &Planned) -> Result<RecordBatch, String> {
    let consumed = decoder.decode(p.header).map_err(describe)?;
    if consumed != HEADER_LEN {
        return Err("the decoder did not accept the header".to_string());
    }
    let consumed = decoder.decode(p.body).map_err(describe)?;
    if consumed < p.body.len() {
        return Err(if decoder.batch_is_empty() {
            format!(
                "truncated Avro data: the {} bytes end before the record does",
                p.body.len()
            )
        } else {
            format!(
                "{} unexpected bytes after the Avro record",
                p.body.len() - consumed
            )
        });
    }
    match decoder.flush().map_err(describe)? {
        Some(batch) if batch.num_rows() == 1 => Ok(batch),
        _ => Err("the record did not decode to one row".to_string()),
    }
}

fn describe(e: AvroError) -> String {
    match e {
        AvroError::EOF(_) | AvroError::NeedMoreData(_) | AvroError::NeedMoreDataRange(_) => {
            format!("truncated Avro data: {e}")
        }
        // arrow-avro reports a number cut off by the end of the data as a bad varint.
        AvroError::ParseError(m) if m.contains("bad varint") => {
            format!("truncated or invalid Avro data: a number is cut off or malformed ({m})")
        }
        other => format!("invalid Avro data: {other}"),
    }
}

/// Drops schema-level metadata (arrow-avro may put the Avro schema JSON there).
pub(super) fn strip_metadata(schema: SchemaRef) -> SchemaRef {
    if schema.metadata().is_empty() {
        schema
    } else {
        Arc::new(Schema::new(schema.fields().clone()))
    }
}

/// One batch of `schema` with the rows of `batches`, which hold the records of `ordered` in that
/// order, put back in buffer order.
pub(super) fn assemble(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    ordered: &[&Planned],
) -> Result<RecordBatch, ArrowError> {
    let batches: Vec<RecordBatch> = batches
        .iter()
        .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
        .collect::<Result<_, _>>()?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if rows != ordered.len() {
        return Err(ArrowError::AvroError(format!(
            "decoded {rows} rows for {} records",
            ordered.len()
        )));
    }
    if ordered.windows(2).all(|w| w[0].index < w[1].index) {
        return match batches.len() {
            0 => Ok(RecordBatch::new_empty(schema.clone())),
            1 => Ok(batches[0].clone()),
            _ => arrow::compute::concat_batches(schema, &batches),
        };
    }
    let positions: Vec<(usize, usize)> = batches
        .iter()
        .enumerate()
        .flat_map(|(b, batch)| (0..batch.num_rows()).map(move |r| (b, r)))
        .collect();
    let mut by_index: Vec<usize> = (0..ordered.len()).collect();
    by_index.sort_by_key(|&k| ordered[k].index);
    let indices: Vec<(usize, usize)> = by_index.iter().map(|&k| positions[k]).collect();
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    arrow::compute::interleave_record_batch(&refs, &indices)
}
