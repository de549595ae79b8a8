// Output formats read back by independent readers (scripts/readback.py: fastavro for Avro,
// Python's json and csv modules, pyarrow for Parquet, duckdb row counts), compared field by
// field with the data the batches were built from.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, Int32Array, Int64Array, Int64Builder, ListArray, ListBuilder, MapBuilder,
    StringArray, StringBuilder, StructArray, TimestampMicrosecondArray, TimestampMillisecondArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use base64::Engine;
use serde_json::{json, Map, Value};
use streamx::format::avro::{AvroCodec, AvroFileWriter, AvroWriterOptions};
use streamx::format::csv::{CsvFileWriter, CsvOptions, CsvQuoteStyle};
use streamx::format::jsonl::{JsonlFileWriter, JsonlOptions};
use streamx::format::FileWriter;

/// One input row.
struct Row {
    id: i64,
    name: Option<String>,
    score: f64,
    ratio: f32,
    ok: bool,
    /// Unscaled, scale 2.
    amount: Option<i128>,
    ts_ms: i64,
    ts_us: Option<i64>,
    day: i32,
    raw: Option<Vec<u8>>,
    address: Option<(String, Option<i32>)>,
    tags: Option<Vec<Option<String>>>,
    attrs: Option<Vec<(String, Option<i64>)>>,
    items: Vec<(String, i32)>,
}

fn rows(n: i64) -> Vec<Row> {
    let names = [
        "plain",
        "héllo ✓ 日本 😀",
        "comma, \"quoted\"",
        "semi;colon 'single'",
        "line\nbreak",
    ];
    (0..n)
        .map(|i| Row {
            id: i,
            name: (i % 7 != 3).then(|| format!("{} #{i}", names[(i % 5) as usize])),
            score: i as f64 * 1.5 - 10.25,
            ratio: 0.125 * i as f32,
            ok: i % 3 == 0,
            amount: (i % 6 != 5).then_some(if i % 2 == 0 {
                1_234_567 + i as i128
            } else {
                -(i as i128) * 5
            }),
            ts_ms: 1_704_067_200_123 + i * 1000,
            ts_us: (i % 4 != 1).then_some(1_704_067_200_123_456 + i),
            day: 19_723 - i as i32,
            raw: (i % 5 != 2).then(|| vec![0, 255, i as u8, b',']),
            address: (i % 4 != 0).then(|| {
                (
                    format!("{i} Rue de l'Église"),
                    (i % 3 != 0).then_some(10_000 + i as i32),
                )
            }),
            tags: (i % 5 != 4).then(|| {
                (0..i % 4)
                    .map(|t| (t != 2).then(|| format!("t{t}")))
                    .collect()
            }),
            attrs: (i % 6 != 1).then(|| {
                vec![
                    ("k".to_string(), Some(i)),
                    ("ключ".to_string(), (i % 2 == 0).then_some(-i)),
                ]
            }),
            items: (0..i % 3)
                .map(|k| (format!("sku-{k}"), k as i32 + 1))
                .collect(),
        })
        .collect()
}

fn address_fields() -> Fields {
    Fields::from(vec![
        Field::new("street", DataType::Utf8, false),
        Field::new("zip", DataType::Int32, true),
    ])
}

fn item_fields() -> Fields {
    Fields::from(vec![
        Field::new("sku", DataType::Utf8, false),
        Field::new("qty", DataType::Int32, false),
    ])
}

/// The full batch; `flat` keeps only the scalar columns (for CSV).
fn batch(rows: &[Row], flat: bool) -> RecordBatch {
    let utc = |unit| DataType::Timestamp(unit, Some("UTC".into()));
    let mut fields = vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, false),
        Field::new("ratio", DataType::Float32, false),
        Field::new("ok", DataType::Boolean, false),
        Field::new("amount", DataType::Decimal128(12, 2), true),
        Field::new("ts_ms", utc(arrow::datatypes::TimeUnit::Millisecond), false),
        Field::new("ts_us", utc(arrow::datatypes::TimeUnit::Microsecond), true),
        Field::new("day", DataType::Date32, false),
        Field::new("raw", DataType::Binary, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.id))),
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.name.clone()))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.score))),
        Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.ratio))),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.ok)))),
        Arc::new(
            Decimal128Array::from_iter(rows.iter().map(|r| r.amount))
                .with_precision_and_scale(12, 2)
                .unwrap(),
        ),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.ts_ms))
                .with_timezone("UTC"),
        ),
        Arc::new(
            TimestampMicrosecondArray::from_iter(rows.iter().map(|r| r.ts_us)).with_timezone("UTC"),
        ),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.day))),
        Arc::new(BinaryArray::from_iter(
            rows.iter().map(|r| r.raw.as_deref()),
        )),
    ];
    if !flat {
        let streets = StringArray::from_iter_values(
            rows.iter()
                .map(|r| r.address.as_ref().map_or("", |a| a.0.as_str())),
        );
        let zips = Int32Array::from_iter(rows.iter().map(|r| r.address.as_ref().and_then(|a| a.1)));
        let valid = NullBuffer::from_iter(rows.iter().map(|r| r.address.is_some()));
        let address = StructArray::try_new(
            address_fields(),
            vec![Arc::new(streets), Arc::new(zips)],
            Some(valid),
        )
        .unwrap();
        let mut tags = ListBuilder::new(StringBuilder::new());
        for r in rows {
            match &r.tags {
                Some(t) => {
                    for v in t {
                        tags.values().append_option(v.as_deref());
                    }
                    tags.append(true);
                }
                None => tags.append(false),
            }
        }
        let mut attrs = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
        for r in rows {
            match &r.attrs {
                Some(a) => {
                    for (k, v) in a {
                        attrs.keys().append_value(k);
                        attrs.values().append_option(*v);
                    }
                    attrs.append(true).unwrap();
                }
                None => attrs.append(false).unwrap(),
            }
        }
        let all_items: Vec<&(String, i32)> = rows.iter().flat_map(|r| r.items.iter()).collect();
        let skus = StringArray::from_iter_values(all_items.iter().map(|i| i.0.as_str()));
        let qtys = Int32Array::from_iter_values(all_items.iter().map(|i| i.1));
        let items_struct =
            StructArray::try_new(item_fields(), vec![Arc::new(skus), Arc::new(qtys)], None)
                .unwrap();
        let item_field = Arc::new(Field::new("item", DataType::Struct(item_fields()), false));
        let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| r.items.len()));
        let items = ListArray::try_new(item_field, offsets, Arc::new(items_struct), None).unwrap();
        let tags = tags.finish();
        let attrs = attrs.finish();
        fields.push(Field::new(
            "address",
            DataType::Struct(address_fields()),
            true,
        ));
        fields.push(Field::new("tags", tags.data_type().clone(), true));
        fields.push(Field::new("attrs", attrs.data_type().clone(), true));
        fields.push(Field::new("items", items.data_type().clone(), false));
        columns.extend([
            Arc::new(address) as ArrayRef,
            Arc::new(tags),
            Arc::new(attrs),
            Arc::new(items),
        ]);
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, columns).unwrap()
}

fn decimal_text(unscaled: i128) -> String {
    let sign = if unscaled < 0 { "-" } else { "" };
    let abs = unscaled.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The expected rows in readback.py's canonical form, built from the input rows.
fn expected(rows: &[Row], flat: bool, csv: Option<Value>) -> Value {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut columns = json!({
        "id": "int", "name": "string", "score": "float", "ratio": "float", "ok": "bool",
        "amount": "decimal", "ts_ms": "timestamp", "ts_us": "timestamp", "day": "date", "raw": "binary"
    });
    if !flat {
        let extra = json!({
            "address": {"struct": {"street": "string", "zip": "int"}},
            "tags": {"list": "string"},
            "attrs": {"map": "int"},
            "items": {"list": {"struct": {"sku": "string", "qty": "int"}}}
        });
        for (k, v) in extra.as_object().unwrap() {
            columns[k] = v.clone();
        }
    }
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("id".into(), json!(r.id));
            m.insert("name".into(), json!(r.name));
            m.insert("score".into(), json!(r.score));
            m.insert("ratio".into(), json!(r.ratio));
            m.insert("ok".into(), json!(r.ok));
            m.insert("amount".into(), json!(r.amount.map(decimal_text)));
            m.insert("ts_ms".into(), json!(r.ts_ms * 1000));
            m.insert("ts_us".into(), json!(r.ts_us));
            m.insert("day".into(), json!(r.day));
            m.insert("raw".into(), json!(r.raw.as_deref().map(b64)));
            if !flat {
                m.insert(
                    "address".into(),
                    json!(r
                        .address
                        .as_ref()
                        .map(|(s, z)| json!({"street": s, "zip": z}))),
                );
                m.insert("tags".into(), json!(r.tags));
                let attrs = r.attrs.as_ref().map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), json!(v)))
                        .collect::<Map<_, _>>()
                });
                m.insert("attrs".into(), json!(attrs));
                let items: Vec<Value> = r
                    .items
                    .iter()
                    .map(|(s, q)| json!({"sku": s, "qty": q}))
                    .collect();
                m.insert("items".into(), json!(items));
            }
            Value::Object(m)
        })
        .collect();
    let order: Vec<String> = batch(&rows[..0], flat)
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut spec = json!({"columns": columns, "order": order, "rows": data});
    if let Some(csv) = csv {
        spec["csv"] = csv;
    }
    spec
}

/// Writes the rows in two batches (and an empty one) and saves the file.
fn write_file(mut writer: Box<dyn FileWriter>, rows: &[Row], flat: bool, path: &Path) {
    let (a, b) = rows.split_at(rows.len() / 3);
    let mut last = writer.estimated_size();
    for part in [a, &b[..0], b] {
        writer.write(&batch(part, flat)).unwrap();
        assert!(
            writer.estimated_size() >= last,
            "the estimate does not shrink"
        );
        last = writer.estimated_size();
    }
    assert_eq!(writer.rows(), rows.len());
    let bytes = writer.finish().unwrap();
    std::fs::write(path, &bytes).unwrap();
}

#[test]
fn avro_files_read_back_with_fastavro() {
    let dir = tempfile::tempdir().unwrap();
    let data = rows(40);
    let schema = batch(&data, false).schema();
    for codec in [
        AvroCodec::Null,
        AvroCodec::Deflate,
        AvroCodec::Snappy,
        AvroCodec::Zstd,
    ] {
        let path = dir.path().join(format!("out-{codec:?}.avro"));
        let writer = AvroFileWriter::new(schema.clone(), AvroWriterOptions { codec }).unwrap();
        write_file(Box::new(writer), &data, false, &path);
        common::readback("avro", &path, &expected(&data, false, None));
    }
}

#[test]
fn jsonl_files_read_back_with_python_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = rows(40);
    let schema = batch(&data, false).schema();
    for gzip in [false, true] {
        let path = dir
            .path()
            .join(if gzip { "out.jsonl.gz" } else { "out.jsonl" });
        let writer = JsonlFileWriter::new(
            schema.clone(),
            JsonlOptions {
                gzip,
                ..JsonlOptions::default()
            },
        )
        .unwrap();
        write_file(Box::new(writer), &data, false, &path);
        common::readback("jsonl", &path, &expected(&data, false, None));
    }
}

#[test]
fn csv_files_read_back_with_python_csv() {
    let dir = tempfile::tempdir().unwrap();
    let data = rows(40);
    let schema = batch(&data, true).schema();
    let variants = [
        (
            CsvOptions::default(),
            json!({"delimiter": ",", "quote": "\"", "header": true}),
        ),
        (
            CsvOptions {
                header: false,
                delimiter: b';',
                quote: b'\'',
                quote_style: CsvQuoteStyle::Always,
            },
            json!({"delimiter": ";", "quote": "'", "header": false}),
        ),
        (
            CsvOptions {
                delimiter: b'\t',
                ..CsvOptions::default()
            },
            json!({"delimiter": "\t", "quote": "\"", "header": true}),
        ),
    ];
    for (k, (options, spec)) in variants.into_iter().enumerate() {
        let path = dir.path().join(format!("out-{k}.csv"));
        let writer = CsvFileWriter::new(schema.clone(), options).unwrap();
        write_file(Box::new(writer), &data, true, &path);
        common::readback("csv", &path, &expected(&data, true, Some(spec)));
    }
}

#[test]
fn parquet_reference_reads_back_with_pyarrow() {
    // The readback script's Parquet path, checked on the parquet crate's writer (the format of
    // streamx's ParquetFileWriter), so all four formats share one checker.
    let dir = tempfile::tempdir().unwrap();
    let data = rows(40);
    let b = batch(&data, false);
    let path = dir.path().join("out.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(Vec::new(), b.schema(), None).unwrap();
    w.write(&b).unwrap();
    std::fs::write(&path, w.into_inner().unwrap()).unwrap();
    common::readback("parquet", &path, &expected(&data, false, None));
}

#[test]
fn the_checker_sees_a_wrong_field() {
    let dir = tempfile::tempdir().unwrap();
    let data = rows(5);
    let path = dir.path().join("out.jsonl");
    let writer =
        JsonlFileWriter::new(batch(&data, false).schema(), JsonlOptions::default()).unwrap();
    write_file(Box::new(writer), &data, false, &path);
    let mut wrong = expected(&data, false, None);
    wrong["rows"][3]["address"]["zip"] = json!(1);
    let report = common::try_readback("jsonl", &path, &wrong).unwrap_err();
    assert!(report.contains("row 3 column address"), "{report}");
    wrong = expected(&data, false, None);
    wrong["rows"][1]["amount"] = json!("-5.01");
    assert!(common::try_readback("jsonl", &path, &wrong)
        .unwrap_err()
        .contains("row 1 column amount"));
}
