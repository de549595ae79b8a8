// Confluent Avro in, files out: records written by apache-avro are decoded by the AvroDecoder
// and written as Avro, JSON lines and CSV, then read back by fastavro / Python.

use crate::common;

use std::sync::Arc;

use crate::common::{avro_datum, buffer, confluent};
use apache_avro::types::Value as AV;
use serde_json::json;
use streamx::decode::avro::{AvroDecoder, AvroDecoderOptions};
use streamx::decode::registry::StaticSchemas;
use streamx::decode::ValueDecoder;
use streamx::format::avro::{AvroCodec, AvroFileWriter, AvroWriterOptions};
use streamx::format::jsonl::{JsonlFileWriter, JsonlOptions};
use streamx::format::FileWriter;

pub(crate) const SCHEMA: &str = r#"{"type":"record","name":"Event","fields":[
  {"name":"id","type":"long"},
  {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["CLICK","VIEW"]}},
  {"name":"user","type":["null",{"type":"record","name":"U","fields":[
     {"name":"name","type":"string"},{"name":"langs","type":{"type":"array","items":"string"}}]}],"default":null},
  {"name":"props","type":{"type":"map","values":["null","double"]}},
  {"name":"price","type":["null",{"type":"bytes","logicalType":"decimal","precision":9,"scale":3}],"default":null},
  {"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}},
  {"name":"day","type":{"type":"int","logicalType":"date"}}
]}"#;

pub(crate) fn event(i: i64) -> AV {
    let user = if i % 3 == 0 {
        AV::Union(0, Box::new(AV::Null))
    } else {
        AV::Union(
            1,
            Box::new(AV::Record(vec![
                ("name".into(), AV::String(format!("Zoë ✓ {i}"))),
                (
                    "langs".into(),
                    AV::Array(vec![AV::String("nl".into()), AV::String("日本語".into())]),
                ),
            ])),
        )
    };
    let mut props = std::collections::HashMap::new();
    props.insert(
        "x".to_string(),
        AV::Union(1, Box::new(AV::Double(i as f64 / 4.0))),
    );
    props.insert("gone".to_string(), AV::Union(0, Box::new(AV::Null)));
    let price = if i % 2 == 0 {
        AV::Union(
            1,
            Box::new(AV::Decimal(
                (-1_234_500i64 - i).to_be_bytes().to_vec().into(),
            )),
        )
    } else {
        AV::Union(0, Box::new(AV::Null))
    };
    AV::Record(vec![
        ("id".into(), AV::Long(i)),
        (
            "kind".into(),
            AV::Enum((i % 2) as u32, ["CLICK", "VIEW"][(i % 2) as usize].into()),
        ),
        ("user".into(), user),
        ("props".into(), AV::Map(props)),
        ("price".into(), price),
        ("at".into(), AV::TimestampMicros(1_700_000_000_000_000 + i)),
        ("day".into(), AV::Date(19_000 + i as i32)),
    ])
}

pub(crate) fn expected_rows(n: i64) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let user = (i % 3 != 0)
                .then(|| json!({"name": format!("Zoë ✓ {i}"), "langs": ["nl", "日本語"]}));
            let price = (i % 2 == 0).then(|| {
                let v = -1_234_500i64 - i;
                format!(
                    "-{}.{:03}",
                    v.unsigned_abs() / 1000,
                    v.unsigned_abs() % 1000
                )
            });
            let kind = ["CLICK", "VIEW"][(i % 2) as usize];
            json!({"id": i, "kind": kind, "user": user,
                   "props": {"x": i as f64 / 4.0, "gone": null}, "price": price,
                   "at": 1_700_000_000_000_000i64 + i, "day": 19_000 + i})
        })
        .collect();
    json!({
        "columns": {"id": "int", "kind": "string",
                    "user": {"struct": {"name": "string", "langs": {"list": "string"}}},
                    "props": {"map": "float"}, "price": "decimal", "at": "timestamp", "day": "date"},
        "rows": rows
    })
}

#[test]
fn decoded_avro_is_written_and_read_back() {
    let s = apache_avro::Schema::parse_str(SCHEMA).unwrap();
    let values: Vec<Option<Vec<u8>>> = (0..25)
        .map(|i| Some(confluent(3, &avro_datum(&s, event(i)))))
        .collect();
    let source = Arc::new(StaticSchemas::new().with(3, SCHEMA));
    let mut dec = AvroDecoder::confluent(source, AvroDecoderOptions::default()).unwrap();
    let d = dec.decode(&buffer(&values)).unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let schema = dec.schema().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let avro = AvroFileWriter::new(
        schema.clone(),
        AvroWriterOptions {
            codec: AvroCodec::Deflate,
        },
    )
    .unwrap();
    println!("{}", avro.avro_schema().unwrap());
    let mut avro: Box<dyn FileWriter> = Box::new(avro);
    avro.write(&d.batch).unwrap();
    let path = dir.path().join("events.avro");
    std::fs::write(&path, avro.finish().unwrap()).unwrap();
    common::readback("avro", &path, &expected_rows(25));

    let mut jsonl: Box<dyn FileWriter> =
        Box::new(JsonlFileWriter::new(schema, JsonlOptions::default()).unwrap());
    jsonl.write(&d.batch).unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, jsonl.finish().unwrap()).unwrap();
    common::readback("jsonl", &path, &expected_rows(25));
}
