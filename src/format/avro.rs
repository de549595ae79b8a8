//! [`AvroFileWriter`]: one Avro object container file encoded in memory by arrow-avro's OCF
//! writer, one Avro block per written batch, compressed with the configured [`AvroCodec`]
//! (`null`, `deflate`, `snappy` with its CRC32, `zstandard`).
//!
//! The Avro schema is derived from the Arrow schema by arrow-avro: a record
//! `topLevelRecord` with one field per column; nullable columns become unions `["null", T]`;
//! structs become nested records, lists arrays, maps (string keys) maps, `Decimal128` bytes with
//! the `decimal` logical type, `Timestamp(ms|us, tz)` `timestamp-millis|micros` (without a time
//! zone: `local-timestamp-*`), `Date32` `date`, `Time32(ms)`/`Time64(us)` `time-millis|micros`,
//! `Binary` bytes, `FixedSizeBinary` fixed, `Dictionary(_, Utf8)` string. An `avro.schema` entry
//! in the Arrow schema metadata (left there by an Avro reader) is ignored: the written schema
//! always describes the columns actually written. Unsupported types fail at creation with
//! [`FormatError::Unsupported`] naming the problem.

use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow_avro::compression::CompressionCodec;
use arrow_avro::schema::SCHEMA_METADATA_KEY;
use arrow_avro::writer::{AvroWriter, WriterBuilder};
use bytes::Bytes;

use super::{FileWriter, FormatError};

/// `avro.codec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AvroCodec {
    /// No compression (Kafka Connect's default).
    #[default]
    Null,
    Deflate,
    Snappy,
    Zstd,
}

impl AvroCodec {
    fn compression(self) -> Option<CompressionCodec> {
        match self {
            AvroCodec::Null => None,
            AvroCodec::Deflate => Some(CompressionCodec::Deflate),
            AvroCodec::Snappy => Some(CompressionCodec::Snappy),
            AvroCodec::Zstd => Some(CompressionCodec::ZStandard),
        }
    }
}

impl FromStr for AvroCodec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "null" | "none" | "uncompressed" => Ok(AvroCodec::Null),
            "deflate" => Ok(AvroCodec::Deflate),
            "snappy" => Ok(AvroCodec::Snappy),
            "zstandard" | "zstd" => Ok(AvroCodec::Zstd),
            other => Err(format!(
                "unknown avro.codec '{other}' (null, deflate, snappy or zstandard)"
            )),
        }
    }
}

/// Avro output settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AvroWriterOptions {
    pub codec: AvroCodec,
}

/// A `Vec<u8>` that publishes its length, so the size is known while the writer owns it.
struct CountingSink {
    buf: Vec<u8>,
    len: Arc<AtomicUsize>,
}

impl Write for CountingSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.len.store(self.buf.len(), Ordering::Relaxed);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One Avro object container file being written into memory.
pub struct AvroFileWriter {
    writer: AvroWriter<CountingSink>,
    schema: SchemaRef,
    len: Arc<AtomicUsize>,
    rows: usize,
}

impl std::fmt::Debug for AvroFileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroFileWriter")
            .field("rows", &self.rows)
            .field("bytes", &self.estimated_size())
            .finish()
    }
}

impl AvroFileWriter {
    /// A writer for batches of `schema`; the file header is written at once.
    pub fn new(schema: SchemaRef, options: AvroWriterOptions) -> Result<Self, FormatError> {
        let mut metadata = schema.metadata().clone();
        metadata.remove(SCHEMA_METADATA_KEY);
        let schema = Arc::new(Schema::new_with_metadata(schema.fields().clone(), metadata));
        let len = Arc::new(AtomicUsize::new(0));
        let sink = CountingSink {
            buf: Vec::with_capacity(64 * 1024),
            len: len.clone(),
        };
        let writer = WriterBuilder::new(schema.as_ref().clone())
            .with_compression(options.codec.compression())
            .build(sink)
            .map_err(|e| FormatError::Unsupported {
                format: "avro",
                message: e.to_string(),
            })?;
        Ok(AvroFileWriter {
            writer,
            schema,
            len,
            rows: 0,
        })
    }

    /// The Avro schema derived from the Arrow schema: the one in the file header, which differs
    /// only in leaving out Arrow field metadata.
    pub fn avro_schema(&self) -> Result<String, FormatError> {
        arrow_avro::schema::AvroSchema::try_from(self.schema.as_ref())
            .map(|s| s.json_string)
            .map_err(|e| FormatError::Unsupported {
                format: "avro",
                message: e.to_string(),
            })
    }
}

impl FileWriter for AvroFileWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        // The writer compares fields; schema-level metadata was dropped at creation.
        let batch = if batch.schema().metadata().is_empty() {
            batch.clone()
        } else {
            RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec()).map_err(
                |source| FormatError::Arrow {
                    format: "avro",
                    source,
                },
            )?
        };
        self.writer.write(&batch)?;
        self.rows += batch.num_rows();
        Ok(())
    }

    fn estimated_size(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn finish(mut self: Box<Self>) -> Result<Bytes, FormatError> {
        self.writer.finish()?;
        Ok(Bytes::from(self.writer.into_inner().buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};
    use arrow_avro::reader::ReaderBuilder;
    use std::collections::HashMap;

    fn batch() -> RecordBatch {
        let mut md = HashMap::new();
        md.insert(
            SCHEMA_METADATA_KEY.to_string(),
            "{\"stale\":true}".to_string(),
        );
        let schema = Arc::new(Schema::new_with_metadata(
            vec![
                Field::new("id", DataType::Int64, false),
                Field::new("s", DataType::Utf8, true),
            ],
            md,
        ));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(0..100)),
            Arc::new(StringArray::from_iter(
                (0..100).map(|i| (i % 3 != 0).then(|| format!("s{i} ✓"))),
            )),
        ];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    #[test]
    fn every_codec_round_trips_through_arrow_avro() {
        for codec in [
            AvroCodec::Null,
            AvroCodec::Deflate,
            AvroCodec::Snappy,
            AvroCodec::Zstd,
        ] {
            let b = batch();
            let mut w =
                Box::new(AvroFileWriter::new(b.schema(), AvroWriterOptions { codec }).unwrap());
            let header = w.estimated_size();
            assert!(header > 16, "header written at creation");
            w.write(&b).unwrap();
            w.write(&RecordBatch::new_empty(b.schema())).unwrap();
            w.write(&b).unwrap();
            assert!(w.estimated_size() > header);
            assert_eq!(w.rows(), 200);
            let size = w.estimated_size();
            let bytes = w.finish().unwrap();
            assert_eq!(bytes.len(), size, "{codec:?}: the estimate is exact");
            let reader = ReaderBuilder::new()
                .build(std::io::Cursor::new(bytes.to_vec()))
                .unwrap();
            let back: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
            let rows: usize = back.iter().map(RecordBatch::num_rows).sum();
            assert_eq!(rows, 200, "{codec:?}");
            assert_eq!(
                back[0].column(1).slice(0, 100).as_ref(),
                b.column(1).as_ref()
            );
        }
    }

    #[test]
    fn codec_names() {
        assert_eq!("zstandard".parse::<AvroCodec>(), Ok(AvroCodec::Zstd));
        assert_eq!("Snappy".parse::<AvroCodec>(), Ok(AvroCodec::Snappy));
        assert!("lz4".parse::<AvroCodec>().unwrap_err().contains("lz4"));
    }

    #[test]
    fn empty_file_is_valid() {
        let w =
            Box::new(AvroFileWriter::new(batch().schema(), AvroWriterOptions::default()).unwrap());
        let json = w.avro_schema().unwrap();
        assert!(json.contains("\"id\"") && !json.contains("stale"), "{json}");
        let bytes = w.finish().unwrap();
        assert_eq!(&bytes[..4], b"Obj\x01");
        let reader = ReaderBuilder::new()
            .build(std::io::Cursor::new(bytes.to_vec()))
            .unwrap();
        assert_eq!(reader.count(), 0);
    }
}
