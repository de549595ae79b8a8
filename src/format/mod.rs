//! Output formats: each encodes RecordBatches of one output file into bytes.
//!
//! Owns [`parquet`] (default) and [`raw`] (values as they are, newline-separated), and
//! [`buffered`], which keeps small files as Arrow batches until they are worth an encoder. A
//! [`FileWriter`] lives in memory until its file is rotated; `finish` returns the whole file,
//! which the commit protocol stages and publishes. Memory per open file is bounded by the
//! rotation limits (`rotate.size.bytes` is checked against [`FileWriter::estimated_size`]).

pub mod buffered;
pub mod parquet;
pub mod raw;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;

use crate::config::{Config, OutputFormat};
use crate::Origin;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("parquet encoding failed: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    #[error("format '{format}' cannot write this data: {message}")]
    Unsupported {
        format: &'static str,
        message: String,
    },
}

impl FormatError {
    pub fn origin(&self) -> Origin {
        match self {
            FormatError::Parquet(_) => Origin::Internal,
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

/// Creates a writer for one file of `schema` in the configured format.
pub fn new_writer(config: &Config, schema: SchemaRef) -> Result<Box<dyn FileWriter>, FormatError> {
    match config.format {
        OutputFormat::Parquet => {
            let codec = config.parquet_codec;
            Ok(Box::new(buffered::BufferedWriter::new(schema, move |s| {
                Ok(Box::new(parquet::ParquetFileWriter::new(s, codec)?) as Box<dyn FileWriter>)
            })))
        }
        OutputFormat::Raw => Ok(Box::new(raw::RawFileWriter::new(&schema)?)),
    }
}
