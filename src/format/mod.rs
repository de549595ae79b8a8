//! Output formats: each encodes RecordBatches of one output file into bytes.
//!
//! Owns [`parquet`] (default) and [`raw`] (values as they are, newline-separated), and
//! [`buffered`], which keeps small files as Arrow batches until they are worth an encoder. A
//! [`FileWriter`] lives in memory until its file is rotated; `finish` returns the whole file,
//! which the commit protocol stages and publishes. Memory per open file is bounded by the
//! rotation limits (`rotate.size.bytes` is checked against [`FileWriter::estimated_size`]).

pub mod avro;
pub mod buffered;
pub mod csv;
pub mod jsonl;
pub mod parquet;
pub mod raw;

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;

use crate::config::{Config, OutputFormat};
use crate::Origin;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("parquet encoding failed: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    #[error("{format} encoding failed: {source}")]
    Arrow {
        format: &'static str,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("avro encoding failed: {0}")]
    Avro(#[from] arrow_avro::errors::AvroError),
    #[error("{format} compression failed: {source}")]
    Io {
        format: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("format '{format}' cannot write this data: {message}")]
    Unsupported {
        format: &'static str,
        message: String,
    },
}

impl FormatError {
    pub fn origin(&self) -> Origin {
        match self {
            FormatError::Parquet(_)
            | FormatError::Arrow { .. }
            | FormatError::Avro(_)
            | FormatError::Io { .. } => Origin::Internal,
            FormatError::Unsupported { .. } => Origin::User,
        }
    }
}

/// One output file being written.
///
/// Contract: `write` is called with batches of the schema given at creation; `finish` is called
/// once and returns the complete file; `estimated_size` is an upper-bound-ish estimate of the
/// finished size, cheap enough to call after every batch.
pub trait FileWriter: Send {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError>;
    fn estimated_size(&self) -> usize;
    /// Bytes held in memory now (encoded output plus encoder buffers), for the memory budget.
    fn memory_size(&self) -> usize {
        self.estimated_size()
    }
    fn rows(&self) -> usize;
    fn finish(self: Box<Self>) -> Result<Bytes, FormatError>;
}

/// Creates a writer for one file of `schema` in the configured format. `plain_columns` is what
/// the earlier Parquet files of the same partition writer learnt (ignored by other formats).
pub fn new_writer(
    config: &Config,
    schema: SchemaRef,
    plain_columns: &Arc<parquet::PlainColumns>,
) -> Result<Box<dyn FileWriter>, FormatError> {
    let f = &config.formats;
    // Encoders with a fixed cost per open file start only once the file is worth it.
    let buffered = |factory: buffered::Factory| {
        Ok(Box::new(buffered::BufferedWriter::new(schema.clone(), factory)) as Box<dyn FileWriter>)
    };
    match config.format {
        OutputFormat::Parquet => {
            let (codec, options) = (config.parquet_codec, f.parquet);
            let plain = Arc::clone(plain_columns);
            buffered(Box::new(move |s| {
                let plain = Some(Arc::clone(&plain));
                Ok(Box::new(parquet::ParquetFileWriter::learning(
                    s, codec, options, plain,
                )?) as Box<dyn FileWriter>)
            }))
        }
        OutputFormat::Avro => {
            let options = avro::AvroWriterOptions {
                codec: f.avro_codec,
            };
            buffered(Box::new(move |s| {
                Ok(Box::new(avro::AvroFileWriter::new(s, options)?) as Box<dyn FileWriter>)
            }))
        }
        OutputFormat::Json => Ok(Box::new(jsonl::JsonlFileWriter::new(schema, f.jsonl)?)),
        OutputFormat::Csv => Ok(Box::new(csv::CsvFileWriter::new(schema, f.csv.clone())?)),
        OutputFormat::Raw => Ok(Box::new(raw::RawFileWriter::new(&schema)?)),
    }
}
