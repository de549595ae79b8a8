//! [`JsonlFileWriter`]: JSON lines (one JSON object per row, `\n`-terminated) encoded by
//! arrow-json's `LineDelimitedWriter`, optionally gzip-compressed (one gzip stream, flate2).
//!
//! Every key is written on every line (`null` for nulls), so all lines have the same keys.
//! Encodings are arrow-json's: structs objects, lists arrays, maps objects, decimals JSON
//! numbers (exact digits), timestamps RFC 3339 strings (`2024-01-01T00:00:00Z` for UTC), dates
//! `YYYY-MM-DD`, times `HH:MM:SS.fff`, binary lowercase hex strings, floats shortest round-trip.
//!
//! Size: exact without gzip; with gzip the compressed bytes so far plus the uncompressed bytes
//! the compressor still holds (an upper bound of what they will add).

use arrow::datatypes::SchemaRef;
use arrow::json::writer::{LineDelimited, WriterBuilder};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;

use super::{FileWriter, FormatError};

/// JSON lines output settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonlOptions {
    /// Compress the file with gzip (`.jsonl.gz`).
    pub gzip: bool,
    /// gzip level, 0-9.
    pub gzip_level: u32,
}

impl Default for JsonlOptions {
    fn default() -> Self {
        JsonlOptions {
            gzip: false,
            gzip_level: 6,
        }
    }
}

enum Sink {
    Plain(Vec<u8>),
    Gzip {
        encoder: Box<GzEncoder<Vec<u8>>>,
        /// Uncompressed bytes written.
        raw: usize,
        /// `raw` when the compressed output last grew, and its length then.
        raw_at_growth: usize,
        out_at_growth: usize,
    },
}

/// One JSON lines file being written into memory.
pub struct JsonlFileWriter {
    sink: Sink,
    scratch: Vec<u8>,
    rows: usize,
}

impl std::fmt::Debug for JsonlFileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlFileWriter")
            .field("rows", &self.rows)
            .field("estimated_size", &self.estimated_size())
            .finish()
    }
}

impl JsonlFileWriter {
    /// A writer for batches of `schema` (any Arrow type arrow-json can encode).
    pub fn new(_schema: SchemaRef, options: JsonlOptions) -> Result<Self, FormatError> {
        let sink = if options.gzip {
            let level = Compression::new(options.gzip_level.min(9));
            Sink::Gzip {
                encoder: Box::new(GzEncoder::new(Vec::with_capacity(64 * 1024), level)),
                raw: 0,
                raw_at_growth: 0,
                out_at_growth: 0,
            }
        } else {
            Sink::Plain(Vec::with_capacity(64 * 1024))
        };
        Ok(JsonlFileWriter {
            sink,
            scratch: Vec::new(),
            rows: 0,
        })
    }

    fn encode(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let arrow = |source| FormatError::Arrow {
            format: "jsonl",
            source,
        };
        let mut writer = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, LineDelimited>(out);
        writer.write(batch).map_err(arrow)?;
        writer.finish().map_err(arrow)
    }
}

impl FileWriter for JsonlFileWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        match &mut self.sink {
            Sink::Plain(buf) => Self::encode(batch, buf)?,
            Sink::Gzip {
                encoder,
                raw,
                raw_at_growth,
                out_at_growth,
            } => {
                self.scratch.clear();
                Self::encode(batch, &mut self.scratch)?;
                encoder
                    .write_all(&self.scratch)
                    .map_err(|source| FormatError::Io {
                        format: "jsonl",
                        source,
                    })?;
                *raw += self.scratch.len();
                let out = encoder.get_ref().len();
                if out != *out_at_growth {
                    *out_at_growth = out;
                    *raw_at_growth = *raw;
                }
            }
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    fn estimated_size(&self) -> usize {
        match &self.sink {
            Sink::Plain(buf) => buf.len(),
            Sink::Gzip {
                encoder,
                raw,
                raw_at_growth,
                ..
            } => encoder.get_ref().len() + (raw - raw_at_growth) + 32,
        }
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn finish(self: Box<Self>) -> Result<Bytes, FormatError> {
        match self.sink {
            Sink::Plain(buf) => Ok(Bytes::from(buf)),
            Sink::Gzip { encoder, .. } => {
                encoder
                    .finish()
                    .map(Bytes::from)
                    .map_err(|source| FormatError::Io {
                        format: "jsonl",
                        source,
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::io::Read;
    use std::sync::Arc;

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(StringArray::from_iter(
                (0..n).map(|i| (i % 2 == 0).then(|| format!("\"q\" {i} ✓"))),
            )),
        ];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    #[test]
    fn plain_lines_with_explicit_nulls() {
        let b = batch(3);
        let mut w = Box::new(JsonlFileWriter::new(b.schema(), JsonlOptions::default()).unwrap());
        w.write(&b).unwrap();
        assert_eq!(w.rows(), 3);
        let size = w.estimated_size();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len(), size);
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], r#"{"id":0,"s":"\"q\" 0 ✓"}"#);
        assert_eq!(lines[1], r#"{"id":1,"s":null}"#);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn gzip_estimate_bounds_the_result() {
        let b = batch(5000);
        let options = JsonlOptions {
            gzip: true,
            ..JsonlOptions::default()
        };
        let mut w = Box::new(JsonlFileWriter::new(b.schema(), options).unwrap());
        for _ in 0..4 {
            w.write(&b).unwrap();
        }
        let estimate = w.estimated_size();
        let bytes = w.finish().unwrap();
        assert!(estimate >= bytes.len(), "{estimate} < {}", bytes.len());
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text.lines().count(), 20_000);
    }

    #[test]
    fn empty_files() {
        for gzip in [false, true] {
            let options = JsonlOptions {
                gzip,
                ..JsonlOptions::default()
            };
            let w = Box::new(JsonlFileWriter::new(batch(1).schema(), options).unwrap());
            let bytes = w.finish().unwrap();
            let mut text = String::new();
            if gzip {
                flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_string(&mut text)
                    .unwrap();
            } else {
                text = String::from_utf8(bytes.to_vec()).unwrap();
            }
            assert!(text.is_empty());
        }
    }
}
