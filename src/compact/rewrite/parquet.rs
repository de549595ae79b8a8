//! Parquet: row group by row group, in input order.
//!
//! ```text
//!  input row group ── large (>= half a row group) and same schema and codec? ──► append_column
//!        │                                          (encoded chunks copied: no decoding)
//!        └─ otherwise ──► decode ──► project to the target schema ──► ArrowColumnWriters
//!                              (pending row group, flushed at parquet.row.group.bytes or
//!                               MAX_ROW_GROUP_ROWS, as ingest closes its row groups)
//! ```
//!
//! The target schema is the newest input's (by modification time): older inputs whose fields
//! are all in it with the same types are read with nulls for the newer columns; any other mix is
//! [`MergeError::Incompatible`], naming the fields. The writer properties are ingest's
//! (`parquet.*`), with dictionaries turned off for a while in columns where they did not pay off
//! ([`payoff`]), and the newest input's key-value metadata is kept.

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
#[allow(deprecated)] // the one constructor of column writers that takes other properties
use parquet::arrow::arrow_writer::get_column_writers;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::arrow::{parquet_to_arrow_schema, ArrowWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{KeyValue, ParquetMetaData, ParquetMetaDataReader, RowGroupMetaData};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use super::schema::{check_compatible, project};
use super::{temp_file, Finished, MergeError, Merger, MergerFactory, Staging};
use crate::compact::error::store_err;
use crate::compact::plan::DataFile;
use crate::config::formats::ParquetOptions;
use crate::config::ParquetCodec;
use crate::format::parquet::{without_dictionary, writer_properties, MAX_ROW_GROUP_ROWS};
use payoff::{plain_bytes, Payoff};

/// The job's `parquet.*` settings.
#[derive(Debug, Clone, Copy)]
pub struct ParquetSettings {
    pub codec: ParquetCodec,
    pub options: ParquetOptions,
}

/// Bytes read from the end of a file for its footer (a second read fetches a larger one).
const FOOTER_GUESS: u64 = 64 * 1024;

/// The footer of an input, read with one ranged GET (two for a footer over 64 KiB).
pub fn footer(staging: &Staging<'_>, input: &DataFile) -> Result<ParquetMetaData, MergeError> {
    let path = staging.store.path(&input.path);
    let get = |from: u64| {
        staging
            .handle
            .block_on(staging.store.inner.get_range(&path, from..input.bytes))
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => MergeError::Gone,
                e => MergeError::Corrupt(store_err("get (footer)", &path, e).to_string()),
            })
    };
    let corrupt = MergeError::Corrupt;
    if input.bytes < 12 {
        return Err(corrupt(format!(
            "{} bytes is too short for Parquet",
            input.bytes
        )));
    }
    let mut tail = get(input.bytes.saturating_sub(FOOTER_GUESS))?;
    let n = tail.len();
    if &tail[n - 4..] != b"PAR1" {
        return Err(corrupt("no Parquet magic at the end".into()));
    }
    let len = u32::from_le_bytes(tail[n - 8..n - 4].try_into().expect("4 bytes")) as u64;
    if len + 8 > input.bytes {
        return Err(corrupt(format!("footer length {len} exceeds the file")));
    }
    if len + 8 > n as u64 {
        tail = get(input.bytes - len - 8)?;
    }
    let n = tail.len();
    ParquetMetaDataReader::decode_metadata(&tail[n - 8 - len as usize..n - 8])
        .map_err(|e| corrupt(e.to_string()))
}

fn arrow_schema(meta: &ParquetMetaData) -> Result<Schema, MergeError> {
    let fm = meta.file_metadata();
    parquet_to_arrow_schema(fm.schema_descr(), fm.key_value_metadata())
        .map_err(|e| MergeError::Corrupt(e.to_string()))
}

/// The merger factory for a directory whose input footers are `footers` (in row order).
pub fn factory(
    settings: &ParquetSettings,
    footers: &[(DataFile, ParquetMetaData)],
) -> Result<MergerFactory, MergeError> {
    let newest = footers
        .iter()
        .max_by(|a, b| (a.0.modified_ms, a.0.name()).cmp(&(b.0.modified_ms, b.0.name())))
        .ok_or_else(|| MergeError::Write("no inputs".into()))?;
    let schema = Arc::new(arrow_schema(&newest.1)?);
    for (file, meta) in footers {
        check_compatible(&schema, &arrow_schema(meta)?)
            .map_err(|e| MergeError::Incompatible(format!("{}: {e}", file.name())))?;
    }
    let kv: Vec<KeyValue> = newest
        .1
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .filter(|kv| kv.key != "ARROW:schema")
        .cloned()
        .collect();
    let props = writer_properties(settings.codec, settings.options)
        .map_err(|e| MergeError::Write(e.to_string()))?
        .set_key_value_metadata(Some(kv))
        .build();
    // What a file holds besides its column chunks (magic, footer, page indexes): counted in an
    // output's size before its footer exists, so that outputs close on their final size.
    let overhead = footers
        .iter()
        .map(|(f, m)| {
            let data: i64 = m.row_groups().iter().map(|rg| rg.compressed_size()).sum();
            f.bytes.saturating_sub(data.max(0) as u64)
        })
        .max()
        .unwrap_or(0);
    Ok(Box::new(move || {
        let merger = ParquetMerger::new(schema.clone(), props.clone(), overhead)?;
        Ok(Box::new(merger) as Box<dyn Merger>)
    }))
}

/// Rows per decoded batch at most (a small input row group is decoded in one batch).
const DECODE_BATCH_ROWS: usize = 8192;

/// The row group being encoded from decoded rows.
struct Pending {
    writers: Vec<ArrowColumnWriter>,
    rows: usize,
    /// Per leaf column: bytes of its values plain-encoded ([`plain_bytes`]), `None` unknown.
    plain: Vec<Option<u64>>,
}

/// One Parquet output being written to a temporary file.
pub struct ParquetMerger {
    writer: SerializedFileWriter<std::fs::File>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    props: WriterProperties,
    pending: Option<Pending>,
    /// The columns whose dictionary did not pay off in a row group of this output, written
    /// plain for a while instead of hashed into a dictionary again ([`payoff`]).
    payoff: Payoff,
    rows: u64,
    /// Encoded bytes of the row groups flushed from pending rows, and what was estimated for
    /// them: corrects the (uncompressed) estimate of the pending row group.
    flushed: (u64, u64),
    /// Estimated bytes of the footer and indexes still to come.
    overhead: u64,
}

fn write_err(e: impl std::fmt::Display) -> MergeError {
    MergeError::Write(e.to_string())
}

impl ParquetMerger {
    pub fn new(
        schema: SchemaRef,
        props: WriterProperties,
        overhead: u64,
    ) -> Result<Self, MergeError> {
        let arrow = ArrowWriter::try_new(temp_file()?, schema.clone(), Some(props.clone()))
            .map_err(write_err)?;
        let (writer, factory) = arrow.into_serialized_writer().map_err(write_err)?;
        Ok(ParquetMerger {
            writer,
            factory,
            schema,
            props,
            pending: None,
            payoff: Payoff::default(),
            rows: 0,
            flushed: (0, 0),
            overhead,
        })
    }

    fn pending_bytes(&self) -> usize {
        self.pending.as_ref().map_or(0, |p| {
            p.writers
                .iter()
                .map(|w| w.get_estimated_total_bytes())
                .sum()
        })
    }

    /// Closes the pending row group into the file.
    fn flush(&mut self) -> Result<(), MergeError> {
        let estimate = self.pending_bytes() as u64;
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let before = self.writer.bytes_written() as u64;
        let index = self.writer.flushed_row_groups().len();
        let mut rg = self.writer.next_row_group().map_err(write_err)?;
        for w in pending.writers {
            w.close()
                .and_then(|chunk| chunk.append_to_row_group(&mut rg))
                .map_err(write_err)?;
        }
        let written = rg.close().map_err(write_err)?;
        self.flushed.0 += self.writer.bytes_written() as u64 - before;
        self.flushed.1 += estimate;
        // A column written plain has no dictionary to judge.
        self.payoff.judge(index, &written, &pending.plain);
        Ok(())
    }

    /// Column writers for the next decoded row group.
    fn column_writers(&self) -> Result<Vec<ArrowColumnWriter>, MergeError> {
        let index = self.writer.flushed_row_groups().len();
        let plain = self.payoff.plain_at(index);
        if plain.is_empty() {
            return self.factory.create_column_writers(index).map_err(write_err);
        }
        let props = without_dictionary(&self.props, &plain);
        #[allow(deprecated)]
        get_column_writers(self.writer.schema_descr(), &Arc::new(props), &self.schema)
            .map_err(write_err)
    }

    /// Encodes decoded rows into the pending row group, closing it when full.
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), MergeError> {
        if self.pending.is_none() {
            let writers = self.column_writers()?;
            let plain = vec![Some(0); writers.len()];
            self.pending = Some(Pending {
                writers,
                rows: 0,
                plain,
            });
        }
        let pending = self.pending.as_mut().expect("pending row group");
        let mut leaf_index = 0;
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            let leaves = compute_leaves(field, column).map_err(write_err)?;
            let flat = leaves.len() == 1;
            for leaf in leaves {
                let w = pending
                    .writers
                    .get_mut(leaf_index)
                    .ok_or_else(|| write_err("more leaves than columns"))?;
                w.write(&leaf).map_err(write_err)?;
                let bytes = if flat { plain_bytes(column) } else { None };
                let total = &mut pending.plain[leaf_index];
                *total = total.zip(bytes).map(|(a, b)| a + b);
                leaf_index += 1;
            }
        }
        pending.rows += batch.num_rows();
        self.rows += batch.num_rows() as u64;
        let full = pending.rows >= MAX_ROW_GROUP_ROWS
            || self.pending_bytes() >= self.props.max_row_group_bytes().unwrap_or(usize::MAX);
        if full {
            self.flush()?;
        }
        Ok(())
    }

    /// Whether a row group of an input is copied as encoded chunks.
    fn copies(&self, meta: &ParquetMetaData, rg: &RowGroupMetaData) -> bool {
        let limit = self
            .props
            .max_row_group_bytes()
            .map_or(i64::MAX, |b| b as i64);
        let large =
            rg.num_rows() as usize * 2 >= MAX_ROW_GROUP_ROWS || rg.compressed_size() * 2 >= limit;
        let same_schema = meta.file_metadata().schema_descr().root_schema()
            == self.writer.schema_descr().root_schema();
        // The codec kind must match; a copied chunk keeps the level it was written with.
        let codec_ok = rg.columns().iter().all(|c| {
            std::mem::discriminant(&c.compression())
                == std::mem::discriminant(&self.props.compression(c.column_path()))
        });
        large && same_schema && codec_ok
    }

    /// Copies row group `i` of an input as it is encoded.
    fn copy_row_group(
        &mut self,
        data: &Bytes,
        meta: &ParquetMetaData,
        i: usize,
    ) -> Result<(), MergeError> {
        self.flush()?;
        let rg_meta = meta.row_group(i);
        let mut rg = self.writer.next_row_group().map_err(write_err)?;
        for (c, column) in rg_meta.columns().iter().enumerate() {
            let close = ColumnCloseResult {
                bytes_written: column.compressed_size() as u64,
                rows_written: rg_meta.num_rows() as u64,
                metadata: column.clone(),
                bloom_filter: None,
                column_index: meta
                    .column_index()
                    .and_then(|ci| ci.get(i)?.get(c).cloned()),
                offset_index: meta
                    .offset_index()
                    .and_then(|oi| oi.get(i)?.get(c).cloned()),
            };
            rg.append_column(data, close).map_err(write_err)?;
        }
        rg.close().map_err(write_err)?;
        self.rows += rg_meta.num_rows() as u64;
        Ok(())
    }

    /// Decodes row group `i` of an input and re-encodes its rows under the target schema.
    fn decode_row_group(
        &mut self,
        data: &Bytes,
        meta: &ArrowReaderMetadata,
        i: usize,
    ) -> Result<(), MergeError> {
        let rows = meta.metadata().row_group(i).num_rows().max(1) as usize;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(data.clone(), meta.clone())
            .with_row_groups(vec![i])
            .with_batch_size(rows.min(DECODE_BATCH_ROWS))
            .build()
            .map_err(|e| MergeError::Corrupt(e.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|e| MergeError::Corrupt(e.to_string()))?;
            let batch = project(&batch, &self.schema)?;
            self.write_batch(&batch)?;
        }
        Ok(())
    }
}

impl Merger for ParquetMerger {
    fn append(&mut self, _input: &DataFile, data: Bytes) -> Result<(), MergeError> {
        let options = ArrowReaderOptions::new()
            .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load(&data, options)
            .map_err(|e| MergeError::Corrupt(e.to_string()))?;
        let parquet_meta = meta.metadata().clone();
        for i in 0..parquet_meta.num_row_groups() {
            if self.copies(&parquet_meta, parquet_meta.row_group(i)) {
                self.copy_row_group(&data, &parquet_meta, i)?;
            } else {
                self.decode_row_group(&data, &meta, i)?;
            }
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        let pending = self.pending_bytes() as u64;
        let pending = match self.flushed {
            (written, estimated) if estimated > 0 => {
                (pending as u128 * written as u128 / estimated as u128) as u64
            }
            _ => pending,
        };
        self.writer.bytes_written() as u64 + pending + self.overhead
    }

    fn settle(&mut self) -> Result<(), MergeError> {
        self.flush()
    }

    fn finish(mut self: Box<Self>) -> Result<Finished, MergeError> {
        self.flush()?;
        // into_inner writes the footer (calling finish first would write it twice).
        let file = self.writer.into_inner().map_err(write_err)?;
        let bytes = file.metadata().map_err(write_err)?.len();
        Ok(Finished {
            file,
            bytes,
            rows: self.rows,
        })
    }
}

mod payoff;
#[cfg(test)]
mod tests;
