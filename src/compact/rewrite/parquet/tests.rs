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
    merge_with(inputs, opts, ParquetCodec::Zstd)
}

fn merge_with(
    inputs: &[(DataFile, Bytes)],
    opts: ParquetOptions,
    codec: ParquetCodec,
) -> Result<Bytes, MergeError> {
    let footers: Vec<(DataFile, ParquetMetaData)> = inputs
        .iter()
        .map(|(f, d)| {
            let meta = ParquetMetaDataReader::new().parse_and_finish(d).unwrap();
            (f.clone(), meta)
        })
        .collect();
    let settings = ParquetSettings {
        codec,
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
fn columns_whose_dictionary_did_not_pay_off_are_written_plain_for_a_while() {
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
    // Every `_offset` is distinct: its dictionary (all 8-byte values, and an index for each)
    // outgrows their plain encoding in the first row group; the second is plain; the third
    // tries again.
    let offset_chunk = |g: usize| meta.row_group(g).column(0).clone();
    assert!(offset_chunk(0).dictionary_page_offset().is_some());
    assert_eq!(offset_chunk(1).dictionary_page_offset(), None);
    assert!(offset_chunk(2).dictionary_page_offset().is_some());
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

/// An id of 32 hex characters, the same for the same `k`.
fn hex_id(k: u64) -> String {
    let a = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{a:016x}{:016x}", a.rotate_left(29) ^ 0x5851_F42D_4C95_7F2D)
}

/// `_offset` and an `id` drawn (pseudo-randomly, by offset) from the `pool` ids.
fn ids_batch(from: i64, n: i64, pool: impl Fn(i64) -> u64) -> RecordBatch {
    let s = Arc::new(Schema::new(vec![
        Field::new("_offset", DataType::Int64, false),
        Field::new("id", DataType::Utf8, true),
    ]));
    let draw = |i: i64| ((i as u64).wrapping_mul(0xD129_0A4B_3C5E_6F71) >> 20) % pool(i);
    let ids = StringArray::from_iter_values((from..from + n).map(|i| hex_id(draw(i))));
    RecordBatch::try_new(
        s,
        vec![
            Arc::new(Int64Array::from_iter_values(from..from + n)),
            Arc::new(ids),
        ],
    )
    .unwrap()
}

/// 60 inputs of 5,000 rows (300,000: three row groups of the output) as ingest writes them.
fn ids_inputs(pool: impl Fn(i64) -> u64 + Copy) -> Vec<(DataFile, Bytes)> {
    let opts = options(64 << 20);
    (0..60)
        .map(|i| {
            let batch = ids_batch(i * 5000, 5000, pool);
            let mut w = ParquetFileWriter::with_options(batch.schema(), ParquetCodec::Snappy, opts)
                .unwrap();
            w.write(&batch).unwrap();
            let d = Box::new(w).finish().unwrap();
            (file(&format!("t+0+{i:03}.parquet"), 1, &d), d)
        })
        .collect()
}

/// Bytes of column `c` in `out`, and the row groups whose chunk of it has a dictionary.
fn column_bytes(out: &Bytes, c: usize) -> (i64, Vec<usize>) {
    let meta = ParquetMetaDataReader::new().parse_and_finish(out).unwrap();
    let groups = meta.row_groups().iter().map(|rg| rg.column(c));
    let bytes = groups.clone().map(|ch| ch.compressed_size()).sum();
    let with_dictionary = groups
        .enumerate()
        .filter(|(_, ch)| ch.dictionary_page_offset().is_some())
        .map(|(g, _)| g)
        .collect();
    (bytes, with_dictionary)
}

/// Ids repeating within a row group (20,000 distinct ones, each about 15 times per row group:
/// user, session or device ids; this is what scripts/bench-compact.sh's data looks like) keep
/// their dictionary: 20,000 ids make a 720 KB dictionary, written once per row group, with
/// 2-byte indexes instead of 36 bytes per row.
#[test]
fn repeated_ids_are_dictionary_encoded() {
    let inputs = ids_inputs(|_| 20_000);
    let in_bytes: u64 = inputs.iter().map(|(f, _)| f.bytes).sum();
    let out = merge_with(&inputs, options(64 << 20), ParquetCodec::Snappy).unwrap();
    let (offsets, groups, _) = read_offsets(&out);
    assert_eq!(offsets, (0..300_000).collect::<Vec<_>>());
    assert_eq!(groups, 3);
    let (id_bytes, with_dictionary) = column_bytes(&out, 1);
    let plain = 300_000 * 36;
    assert!(
        id_bytes < plain / 4 && (out.len() as u64) < in_bytes / 2,
        "id column: {id_bytes} bytes, plain values {plain}; output {} bytes, inputs {in_bytes}",
        out.len()
    );
    assert_eq!(with_dictionary, [0, 1, 2]);
}

/// A column whose dictionary fell back in one row group, yet saved bytes there (many repeats,
/// just more distinct values than the page holds), tries its dictionary again in the next row
/// groups (where it fits).
#[test]
fn a_dictionary_that_paid_off_is_tried_again_after_a_fall_back() {
    // The first row group draws from 60,000 ids (its dictionary outgrows 1 MiB), the later
    // ones from 10,000.
    let inputs = ids_inputs(|i| if i < 135_000 { 60_000 } else { 10_000 });
    let out = merge_with(&inputs, options(64 << 20), ParquetCodec::Snappy).unwrap();
    let meta = ParquetMetaDataReader::new().parse_and_finish(&out).unwrap();
    assert!(dictionary_fell_back(meta.row_group(0).column(1)));
    let (_, with_dictionary) = column_bytes(&out, 1);
    assert_eq!(with_dictionary, [0, 1, 2]);
    for g in 1..3 {
        assert!(!dictionary_fell_back(meta.row_group(g).column(1)), "{g}");
    }
}
