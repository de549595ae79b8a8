use super::*;
use crate::config::formats::ParquetStatistics;
use crate::format::parquet::{dictionary_fell_back, ParquetFileWriter};
use crate::format::FileWriter;
use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field};
use parquet::basic::Compression;
use std::io::{Read, Seek, SeekFrom};

fn schema(extra: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("_offset", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ];
    if extra {
        fields.push(Field::new("added", DataType::Int64, true));
    }
    Arc::new(Schema::new(fields))
}

fn batch(schema: &SchemaRef, from: i64, n: i64) -> RecordBatch {
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(from..from + n)),
        Arc::new(StringArray::from_iter_values((from..from + n).map(|i| {
            format!("name-{}-{}", i % 17, i * 2_654_435_761 % 1_000_003)
        }))),
    ];
    if schema.fields().len() == 3 {
        cols.push(Arc::new(Int64Array::from_iter_values(0..n)));
    }
    RecordBatch::try_new(schema.clone(), cols).unwrap()
}

fn options(row_group_bytes: usize) -> ParquetOptions {
    ParquetOptions {
        row_group_bytes,
        statistics: ParquetStatistics::Page,
        ..ParquetOptions::default()
    }
}

/// A file as ingest writes it: `groups` row groups of `rows` rows from offset `from`.
fn input(schema: &SchemaRef, from: i64, rows: i64, groups: i64, opts: ParquetOptions) -> Bytes {
    let mut w = ParquetFileWriter::with_options(schema.clone(), ParquetCodec::Zstd, opts).unwrap();
    for g in 0..groups {
        w.write(&batch(schema, from + g * rows, rows)).unwrap();
    }
    Box::new(w).finish().unwrap()
}

fn file(name: &str, modified_ms: i64, data: &Bytes) -> DataFile {
    DataFile {
        path: format!("t/d/{name}"),
        bytes: data.len() as u64,
        modified_ms,
    }
}

fn merge(inputs: &[(DataFile, Bytes)], opts: ParquetOptions) -> Result<Bytes, MergeError> {
    let footers: Vec<(DataFile, ParquetMetaData)> = inputs
        .iter()
        .map(|(f, d)| {
            let meta = ParquetMetaDataReader::new().parse_and_finish(d).unwrap();
            (f.clone(), meta)
        })
        .collect();
    let settings = ParquetSettings {
        codec: ParquetCodec::Zstd,
        options: opts,
    };
    let make = factory(&settings, &footers)?;
    let mut m = make()?;
    for (f, d) in inputs {
        m.append(f, d.clone())?;
    }
    let mut finished = m.finish()?;
    let mut buf = Vec::new();
    finished.file.seek(SeekFrom::Start(0)).unwrap();
    finished.file.read_to_end(&mut buf).unwrap();
    assert_eq!(buf.len() as u64, finished.bytes);
    Ok(Bytes::from(buf))
}

fn read_offsets(data: &Bytes) -> (Vec<i64>, usize, SchemaRef) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(data.clone()).unwrap();
    let groups = builder.metadata().num_row_groups();
    let schema = builder.schema().clone();
    let mut out = Vec::new();
    for b in builder.build().unwrap() {
        let b = b.unwrap();
        let col = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        out.extend(col.values().iter().copied());
    }
    (out, groups, schema)
}

#[test]
fn small_row_groups_are_re_encoded_into_one() {
    let s = schema(false);
    let opts = options(64 << 20);
    let inputs: Vec<(DataFile, Bytes)> = (0..5)
        .map(|i| {
            let d = input(&s, i * 100, 100, 1, opts);
            (file(&format!("t+0+{i}.parquet"), 1, &d), d)
        })
        .collect();
    let out = merge(&inputs, opts).unwrap();
    let (offsets, groups, _) = read_offsets(&out);
    assert_eq!(offsets, (0..500).collect::<Vec<_>>());
    assert_eq!(groups, 1, "five small row groups become one");
    let meta = ParquetMetaDataReader::new()
        .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Required)
        .parse_and_finish(&out)
        .unwrap();
    assert!(meta.column_index().is_some() && meta.offset_index().is_some());
    assert!(matches!(
        meta.row_group(0).column(0).compression(),
        Compression::ZSTD(_)
    ));
}

#[test]
fn columns_whose_dictionary_fell_back_are_written_plain_afterwards() {
    let s = schema(false);
    let opts = options(64 << 20);
    let rows = 5000;
    let inputs: Vec<(DataFile, Bytes)> = (0..60)
        .map(|i| {
            let d = input(&s, i * rows, rows, 1, opts);
            (file(&format!("t+0+{i}.parquet"), 1, &d), d)
        })
        .collect();
    let out = merge(&inputs, opts).unwrap();
    let (offsets, groups, _) = read_offsets(&out);
    assert_eq!(offsets, (0..60 * rows).collect::<Vec<_>>());
    assert_eq!(groups, 3, "300,000 rows in row groups of 131,072");
    let meta = ParquetMetaDataReader::new().parse_and_finish(&out).unwrap();
    // Every `_offset` is distinct: its dictionary outgrows the limit in the first row group.
    let offset_chunk = |g: usize| meta.row_group(g).column(0).clone();
    assert!(dictionary_fell_back(&offset_chunk(0)));
    for g in 1..groups {
        assert_eq!(
            offset_chunk(g).dictionary_page_offset(),
            None,
            "row group {g}"
        );
    }
}

#[test]
fn large_row_groups_are_copied_encoded() {
    let s = schema(false);
    // Row groups close at ~2 KiB: every row group of 1000 rows is "large" for this limit.
    let opts = options(2048);
    let inputs: Vec<(DataFile, Bytes)> = (0..3)
        .map(|i| {
            let d = input(&s, i * 2000, 1000, 2, opts);
            (file(&format!("t+0+{i}.parquet"), 1, &d), d)
        })
        .collect();
    let in_groups: usize = inputs.iter().map(|(_, d)| read_offsets(d).1).sum();
    let out = merge(&inputs, opts).unwrap();
    let (offsets, groups, _) = read_offsets(&out);
    assert_eq!(offsets, (0..6000).collect::<Vec<_>>());
    assert_eq!(groups, in_groups, "row groups copied one for one");
    let meta = ParquetMetaDataReader::new()
        .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Required)
        .parse_and_finish(&out)
        .unwrap();
    assert!(meta.row_group(0).column(0).statistics().is_some());
    assert!(meta.offset_index().is_some());
}

#[test]
fn older_schemas_read_null_for_new_columns() {
    let opts = options(64 << 20);
    let old = input(&schema(false), 0, 10, 1, opts);
    let new = input(&schema(true), 10, 10, 1, opts);
    let inputs = vec![
        (file("t+0+a.parquet", 1, &old), old),
        (file("t+0+b.parquet", 2, &new), new),
    ];
    let out = merge(&inputs, opts).unwrap();
    let (offsets, _, schema) = read_offsets(&out);
    assert_eq!(offsets, (0..20).collect::<Vec<_>>());
    assert_eq!(schema.fields().len(), 3);
    let batch = ParquetRecordBatchReaderBuilder::try_new(out)
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.column(2).null_count(), 10);
}

#[test]
fn incompatible_schemas_name_the_fields() {
    let opts = options(64 << 20);
    let newer = input(&schema(false), 0, 10, 1, opts);
    let older = input(&schema(true), 10, 10, 1, opts);
    let inputs = vec![
        (file("t+0+a.parquet", 2, &newer), newer),
        (file("t+0+b.parquet", 1, &older), older),
    ];
    match merge(&inputs, opts) {
        Err(MergeError::Incompatible(m)) => assert!(m.contains("'added'"), "{m}"),
        other => panic!("expected incompatible, got {:?}", other.map(|b| b.len())),
    }
}

#[test]
fn corrupt_input_is_reported() {
    let opts = options(64 << 20);
    let good = input(&schema(false), 0, 10, 1, opts);
    let footers = vec![(
        file("a.parquet", 1, &good),
        ParquetMetaDataReader::new()
            .parse_and_finish(&good)
            .unwrap(),
    )];
    let settings = ParquetSettings {
        codec: ParquetCodec::Zstd,
        options: opts,
    };
    let mut m = factory(&settings, &footers).unwrap()().unwrap();
    let bad = Bytes::from_static(b"PAR1 not really parquet PAR1");
    assert!(matches!(
        m.append(&file("b.parquet", 1, &bad), bad),
        Err(MergeError::Corrupt(_))
    ));
}
