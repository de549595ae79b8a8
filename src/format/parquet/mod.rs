//! [`ParquetFileWriter`]: one Parquet file encoded in memory by parquet's `ArrowWriter`.
//!
//! Row groups close at [`MAX_ROW_GROUP_ROWS`] rows or when the in-progress row group's estimated
//! encoded size passes [`ROW_GROUP_BYTES_LIMIT`], which bounds the memory held per row group.
//! Which columns get a dictionary is [`dictionary`]'s business. Column statistics are written at
//! page level (parquet's default). Codecs: Snappy, Zstd and
//! Gzip at their default levels, Lz4 as `LZ4_RAW` (the non-deprecated LZ4 codec), None as
//! uncompressed.

mod dictionary;

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::{FileWriter, FormatError};
use crate::config::formats::{ParquetOptions, ParquetStatistics};
use crate::config::ParquetCodec;
pub use dictionary::{dictionary_fell_back, fallen_back_columns, without_dictionary, PlainColumns};

/// Rows per row group at most.
pub const MAX_ROW_GROUP_ROWS: usize = 128 * 1024;

/// Estimated encoded bytes of the in-progress row group after which it is closed.
pub const ROW_GROUP_BYTES_LIMIT: usize = 64 * 1024 * 1024;

/// The parquet compression for a configured codec.
pub fn compression(codec: ParquetCodec) -> Compression {
    match codec {
        ParquetCodec::Snappy => Compression::SNAPPY,
        ParquetCodec::Zstd => Compression::ZSTD(ZstdLevel::default()),
        ParquetCodec::Gzip => Compression::GZIP(GzipLevel::default()),
        ParquetCodec::Lz4 => Compression::LZ4_RAW,
        ParquetCodec::None => Compression::UNCOMPRESSED,
    }
}

/// The writer properties of the `parquet.*` settings (also used by `streamx compact`, so that
/// compacted files are encoded as ingest encodes them); callers may add to the builder.
pub fn writer_properties(
    codec: ParquetCodec,
    options: ParquetOptions,
) -> Result<parquet::file::properties::WriterPropertiesBuilder, FormatError> {
    let compression = match (codec, options.level) {
        (ParquetCodec::Zstd, Some(l)) => Compression::ZSTD(ZstdLevel::try_new(l as i32)?),
        (ParquetCodec::Gzip, Some(l)) => Compression::GZIP(GzipLevel::try_new(l)?),
        (c, _) => compression(c),
    };
    Ok(WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(options.row_group_bytes.max(1)))
        .set_data_page_size_limit(options.page_bytes)
        .set_dictionary_enabled(options.dictionary)
        .set_statistics_enabled(match options.statistics {
            ParquetStatistics::None => EnabledStatistics::None,
            ParquetStatistics::Chunk => EnabledStatistics::Chunk,
            ParquetStatistics::Page => EnabledStatistics::Page,
        })
        .set_dictionary_page_size_limit(options.dictionary_page_bytes))
}

/// An empty `ArrowWriter` into memory with `properties`, and dictionaries off for the columns of
/// `plain_columns`.
fn arrow_writer(
    schema: &SchemaRef,
    properties: &WriterProperties,
    plain_columns: Option<&PlainColumns>,
) -> Result<ArrowWriter<Vec<u8>>, FormatError> {
    let properties = match plain_columns {
        Some(plain) => plain.apply(properties.clone().into_builder()).build(),
        None => properties.clone(),
    };
    Ok(ArrowWriter::try_new(
        Vec::new(),
        Arc::clone(schema),
        Some(properties),
    )?)
}

/// One Parquet file being written into memory.
pub struct ParquetFileWriter {
    writer: ArrowWriter<Vec<u8>>,
    rows: usize,
    row_group_bytes_limit: usize,
    /// Shown the file's first rows (when `parquet.dictionary` is on) and told, when the file is
    /// finished, which columns' dictionaries fell back in it.
    plain_columns: Option<Arc<PlainColumns>>,
    schema: SchemaRef,
    /// The `parquet.*` properties before the learnt plain columns are applied: the writer is
    /// made again from them once the first rows were sampled.
    properties: WriterProperties,
    /// `parquet.dictionary`: without dictionaries there is nothing to sample for.
    dictionaries: bool,
}

impl std::fmt::Debug for ParquetFileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetFileWriter")
            .field("rows", &self.rows)
            .field("estimated_size", &self.estimated_size())
            .finish()
    }
}

impl ParquetFileWriter {
    pub fn new(schema: SchemaRef, codec: ParquetCodec) -> Result<Self, FormatError> {
        Self::with_row_group_bytes_limit(schema, codec, ROW_GROUP_BYTES_LIMIT)
    }

    /// A writer with the `parquet.*` settings of a configuration.
    pub fn with_options(
        schema: SchemaRef,
        codec: ParquetCodec,
        options: ParquetOptions,
    ) -> Result<Self, FormatError> {
        Self::learning(schema, codec, options, None)
    }

    /// Like [`ParquetFileWriter::with_options`], with the columns of `plain_columns` encoded
    /// plain, and the columns whose dictionary falls back in this file added to it at
    /// [`FileWriter::finish`].
    pub fn learning(
        schema: SchemaRef,
        codec: ParquetCodec,
        options: ParquetOptions,
        plain_columns: Option<Arc<PlainColumns>>,
    ) -> Result<Self, FormatError> {
        let properties = writer_properties(codec, options)?.build();
        Ok(ParquetFileWriter {
            writer: arrow_writer(&schema, &properties, plain_columns.as_deref())?,
            rows: 0,
            row_group_bytes_limit: options.row_group_bytes.max(1),
            plain_columns,
            schema,
            properties,
            dictionaries: options.dictionary,
        })
    }

    /// Before the first rows: lets the stream sample them ([`PlainColumns::sample_once`]), and
    /// makes the writer again, still empty, if that turned dictionaries off.
    fn sample_first_rows(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        let Some(plain) = &self.plain_columns else {
            return Ok(());
        };
        if self.rows == 0
            && self.dictionaries
            && plain.sample_once(batch, self.properties.dictionary_page_size_limit())
        {
            self.writer = arrow_writer(&self.schema, &self.properties, Some(plain))?;
        }
        Ok(())
    }

    /// Like [`ParquetFileWriter::new`] with another row group size limit in bytes (tests).
    pub fn with_row_group_bytes_limit(
        schema: SchemaRef,
        codec: ParquetCodec,
        limit: usize,
    ) -> Result<Self, FormatError> {
        let options = ParquetOptions {
            row_group_bytes: limit,
            ..ParquetOptions::default()
        };
        Self::with_options(schema, codec, options)
    }

    /// The estimated size at which the in-progress row group is closed.
    pub fn row_group_bytes_limit(&self) -> usize {
        self.row_group_bytes_limit
    }

    /// Row groups closed so far.
    pub fn row_groups(&self) -> usize {
        self.writer.flushed_row_groups().len()
    }
}

impl FileWriter for ParquetFileWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        self.sample_first_rows(batch)?;
        self.writer.write(batch)?;
        self.rows += batch.num_rows();
        // ArrowWriter applies the byte limit too; this also catches estimates that grow late.
        if self.writer.in_progress_size() > self.row_group_bytes_limit {
            self.writer.flush()?;
        }
        Ok(())
    }

    fn estimated_size(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    fn memory_size(&self) -> usize {
        self.writer.bytes_written() + self.writer.memory_size()
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn finish(mut self: Box<Self>) -> Result<Bytes, FormatError> {
        if let Some(plain) = &self.plain_columns {
            self.writer.flush()?;
            plain.learn(self.writer.flushed_row_groups());
        }
        Ok(Bytes::from(self.writer.into_inner()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::TimestampMillisecondArray;
    use arrow::array::{ArrayRef, BinaryArray, Int64Array, ListArray, StringArray, StructArray};
    use arrow::datatypes::{DataType, Field, Fields, Int64Type, Schema, TimeUnit};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    fn schema() -> SchemaRef {
        let inner = Fields::from(vec![Field::new("x", DataType::Int64, true)]);
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("raw", DataType::Binary, true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
            Field::new("s", DataType::Struct(inner), true),
            Field::new_list("l", Field::new_list_field(DataType::Int64, true), true),
        ]))
    }

    fn batch(start: i64, n: i64) -> RecordBatch {
        let ids = start..start + n;
        let s_fields = Fields::from(vec![Field::new("x", DataType::Int64, true)]);
        let xs = Int64Array::from_iter(ids.clone().map(|i| (i % 3 != 0).then_some(i * 10)));
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(
            ids.clone()
                .map(|i| (i % 4 != 0).then(|| vec![Some(i), None])),
        );
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())),
            Arc::new(StringArray::from_iter(
                ids.clone().map(|i| (i % 2 == 0).then(|| format!("n{i}"))),
            )),
            Arc::new(BinaryArray::from_iter_values(
                ids.clone().map(|i| i.to_le_bytes()),
            )),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(ids.clone().map(|i| i * 1000))
                    .with_timezone("UTC"),
            ),
            Arc::new(StructArray::try_new(s_fields, vec![Arc::new(xs)], None).unwrap()),
            Arc::new(list),
        ];
        RecordBatch::try_new(schema(), columns).unwrap()
    }

    fn read_back(bytes: Bytes) -> Vec<RecordBatch> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        reader.collect::<Result<Vec<_>, _>>().unwrap()
    }

    #[test]
    fn roundtrip_every_codec() {
        let codecs = [
            ParquetCodec::Snappy,
            ParquetCodec::Zstd,
            ParquetCodec::Gzip,
            ParquetCodec::Lz4,
            ParquetCodec::None,
        ];
        let (a, b) = (batch(0, 100), batch(100, 57));
        for codec in codecs {
            let mut w = Box::new(ParquetFileWriter::new(schema(), codec).unwrap());
            assert_eq!(w.estimated_size(), 4, "only the magic bytes so far");
            w.write(&a).unwrap();
            let after_one = w.estimated_size();
            assert!(after_one > 4);
            w.write(&b).unwrap();
            assert!(w.estimated_size() >= after_one);
            assert_eq!(w.rows(), 157);
            let bytes = w.finish().unwrap();
            let meta = SerializedFileReader::new(bytes.clone())
                .unwrap()
                .metadata()
                .clone();
            let column = meta.row_group(0).column(0);
            assert_eq!(column.compression(), compression(codec), "{codec:?}");
            assert!(column.statistics().is_some());
            let back = read_back(bytes);
            let back = arrow::compute::concat_batches(&back[0].schema(), &back).unwrap();
            let expected =
                arrow::compute::concat_batches(&schema(), &[a.clone(), b.clone()]).unwrap();
            assert_eq!(back, expected, "{codec:?}");
        }
    }

    #[test]
    fn small_byte_limit_closes_row_groups() {
        let mut w = Box::new(
            ParquetFileWriter::with_row_group_bytes_limit(schema(), ParquetCodec::None, 1).unwrap(),
        );
        assert_eq!(w.row_group_bytes_limit(), 1);
        w.write(&batch(0, 10)).unwrap();
        w.write(&batch(10, 10)).unwrap();
        assert!(w.row_groups() >= 2);
        let bytes = w.finish().unwrap();
        let rows: usize = read_back(bytes).iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 20);
    }

    /// The columns of the first row group written with a dictionary page.
    fn with_dictionary(bytes: Bytes) -> Vec<String> {
        let meta = SerializedFileReader::new(bytes).unwrap().metadata().clone();
        let row_group = meta.row_group(0);
        let chunks = row_group.columns().iter();
        chunks
            .filter(|c| c.dictionary_page_offset().is_some())
            .map(|c| c.column_path().string())
            .collect()
    }

    #[test]
    fn a_learning_writer_samples_its_first_rows_for_dictionaries() {
        let options = ParquetOptions::default();
        let rows = batch(0, 2000);
        let mut unsampled = Box::new(
            ParquetFileWriter::with_options(schema(), ParquetCodec::Zstd, options).unwrap(),
        );
        unsampled.write(&rows).unwrap();
        let all = with_dictionary(unsampled.finish().unwrap());
        assert!(all.contains(&"id".to_string()), "{all:?}");

        let plain = Arc::new(PlainColumns::default());
        let learning = |plain: &Arc<PlainColumns>| {
            let p = Some(Arc::clone(plain));
            Box::new(ParquetFileWriter::learning(schema(), ParquetCodec::Zstd, options, p).unwrap())
        };
        let mut w = learning(&plain);
        w.write(&rows).unwrap();
        let bytes = w.finish().unwrap();
        let back = read_back(bytes.clone());
        let back = arrow::compute::concat_batches(&back[0].schema(), &back).unwrap();
        assert_eq!(back, rows);
        // Unique ids, bytes, times and struct values go plain; `name` has too few values to
        // judge (every other row) and the list is left to the fallback.
        assert_eq!(with_dictionary(bytes), ["name", "l.list.item"]);
        // The next file of the stream starts plain for them.
        let mut next = learning(&plain);
        next.write(&batch(2000, 10)).unwrap();
        assert_eq!(
            with_dictionary(next.finish().unwrap()),
            ["name", "l.list.item"]
        );
    }

    #[test]
    fn empty_file_is_valid() {
        let w = Box::new(ParquetFileWriter::new(schema(), ParquetCodec::Snappy).unwrap());
        assert_eq!(w.rows(), 0);
        let bytes = w.finish().unwrap();
        assert!(read_back(bytes).is_empty());
    }
}
