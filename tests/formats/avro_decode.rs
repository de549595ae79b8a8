// Avro decoding: every supported type, both framings, malformed records, schema evolution and
// compatibility modes. Input bytes are written by the `apache-avro` crate.

use std::collections::HashMap;
use std::sync::Arc;

use crate::common::{
    avro_datum, buffer, cause, confluent, i64s, rejected, schema, static_decoder, strings,
};
use apache_avro::types::Value as AV;
use arrow::array::{Array, AsArray, BinaryArray, Decimal128Array, FixedSizeBinaryArray};
use arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int32Type, Int64Type, Time32MillisecondType,
    Time64MicrosecondType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
};
use arrow::record_batch::RecordBatch;
use streamx::decode::avro::{AvroDecoder, AvroDecoderOptions};
use streamx::decode::{DecodeError, ValueDecoder};

const ALL_TYPES: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "name", "type": "string"},
    {"name": "qty", "type": "int"},
    {"name": "score", "type": "double"},
    {"name": "ratio", "type": "float"},
    {"name": "active", "type": "boolean"},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "address", "type": {"type": "record", "name": "Address", "fields": [
        {"name": "street", "type": "string"},
        {"name": "zip", "type": ["null", "int"], "default": null}]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attrs", "type": {"type": "map", "values": "long"}},
    {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}},
    {"name": "code", "type": {"type": "fixed", "name": "Code", "size": 4}},
    {"name": "raw", "type": "bytes"},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "big", "type": {"type": "fixed", "name": "Big", "size": 8, "logicalType": "decimal", "precision": 18, "scale": 4}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "tm", "type": {"type": "int", "logicalType": "time-millis"}},
    {"name": "tmu", "type": {"type": "long", "logicalType": "time-micros"}},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "tsu", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}], "default": null},
    {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}}
  ]
}"#;

const UID: &str = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f";

/// One record of ALL_TYPES as apache-avro values; `i` varies the content.
fn order(i: i64) -> AV {
    let nullable = |present: bool, v: AV| {
        if present {
            AV::Union(1, Box::new(v))
        } else {
            AV::Union(0, Box::new(AV::Null))
        }
    };
    let mut attrs = HashMap::new();
    attrs.insert("k1".to_string(), AV::Long(i));
    attrs.insert("ключ".to_string(), AV::Long(-i));
    AV::Record(vec![
        ("id".into(), AV::Long(i)),
        ("name".into(), AV::String(format!("héllo ✓ 日本 😀 #{i}"))),
        ("qty".into(), AV::Int(i as i32 * 3)),
        ("score".into(), AV::Double(i as f64 + 0.25)),
        ("ratio".into(), AV::Float(0.5)),
        ("active".into(), AV::Boolean(i % 2 == 0)),
        (
            "note".into(),
            nullable(i % 2 == 1, AV::String(format!("note {i}"))),
        ),
        (
            "address".into(),
            AV::Record(vec![
                ("street".into(), AV::String(format!("{i} Main St"))),
                ("zip".into(), nullable(i != 2, AV::Int(10_000 + i as i32))),
            ]),
        ),
        (
            "tags".into(),
            AV::Array((0..i).map(|t| AV::String(format!("t{t}"))).collect()),
        ),
        ("attrs".into(), AV::Map(attrs)),
        (
            "color".into(),
            AV::Enum(
                (i % 3) as u32,
                ["RED", "GREEN", "BLUE"][(i % 3) as usize].into(),
            ),
        ),
        ("code".into(), AV::Fixed(4, vec![1, 2, 3, i as u8])),
        ("raw".into(), AV::Bytes(vec![0, 255, i as u8])),
        // 12345.67 * sign, as big-endian two's complement of the unscaled value.
        (
            "amount".into(),
            AV::Decimal(
                (1_234_567i64 * if i % 2 == 0 { 1 } else { -1 })
                    .to_be_bytes()
                    .to_vec()
                    .into(),
            ),
        ),
        (
            "big".into(),
            AV::Decimal(987_654_321_012_345i64.to_be_bytes().to_vec().into()),
        ),
        ("day".into(), AV::Date(19_723 + i as i32)),
        ("tm".into(), AV::TimeMillis(45_296_789)),
        ("tmu".into(), AV::TimeMicros(45_296_789_012)),
        ("ts".into(), AV::TimestampMillis(1_704_067_200_123 + i)),
        (
            "tsu".into(),
            nullable(i != 1, AV::TimestampMicros(1_704_067_200_123_456)),
        ),
        ("uid".into(), AV::Uuid(UID.parse().unwrap())),
    ])
}

fn check_orders(batch: &RecordBatch, ids: &[i64]) {
    assert_eq!(batch.num_rows(), ids.len());
    assert_eq!(
        i64s(batch, "id"),
        ids.iter().map(|i| Some(*i)).collect::<Vec<_>>()
    );
    for (row, &i) in ids.iter().enumerate() {
        let col = |name: &str| batch.column_by_name(name).unwrap().clone();
        assert_eq!(
            strings(batch, "name")[row].as_deref(),
            Some(format!("héllo ✓ 日本 😀 #{i}").as_str())
        );
        assert_eq!(
            col("qty").as_primitive::<Int32Type>().value(row),
            i as i32 * 3
        );
        assert_eq!(
            col("score").as_primitive::<Float64Type>().value(row),
            i as f64 + 0.25
        );
        assert_eq!(col("ratio").as_primitive::<Float32Type>().value(row), 0.5);
        assert_eq!(col("active").as_boolean().value(row), i % 2 == 0);
        let note = strings(batch, "note")[row].clone();
        assert_eq!(note, (i % 2 == 1).then(|| format!("note {i}")));
        let address = col("address");
        let address = address.as_struct();
        assert_eq!(
            address
                .column_by_name("street")
                .unwrap()
                .as_string::<i32>()
                .value(row),
            format!("{i} Main St")
        );
        let zip = address
            .column_by_name("zip")
            .unwrap()
            .as_primitive::<Int32Type>();
        assert_eq!(zip.is_valid(row), i != 2);
        if i != 2 {
            assert_eq!(zip.value(row), 10_000 + i as i32);
        }
        let tags = col("tags");
        let tags = tags.as_list::<i32>().value(row);
        let tags: Vec<&str> = tags.as_string::<i32>().iter().map(|t| t.unwrap()).collect();
        assert_eq!(tags, (0..i).map(|t| format!("t{t}")).collect::<Vec<_>>());
        let attrs = col("attrs");
        let attrs = attrs.as_map();
        let entries = attrs.value(row);
        let keys = entries.column(0).as_string::<i32>();
        let values = entries.column(1).as_primitive::<Int64Type>();
        let mut map: Vec<(String, i64)> = (0..keys.len())
            .map(|k| (keys.value(k).to_string(), values.value(k)))
            .collect();
        map.sort();
        assert_eq!(map, vec![("k1".to_string(), i), ("ключ".to_string(), -i)]);
        let color = col("color");
        let color = arrow::compute::cast(&color, &DataType::Utf8).unwrap();
        assert_eq!(
            color.as_string::<i32>().value(row),
            ["RED", "GREEN", "BLUE"][(i % 3) as usize]
        );
        let code = col("code");
        let code = code
            .as_any()
            .downcast_ref::<FixedSizeBinaryArray>()
            .unwrap();
        assert_eq!(code.value(row), &[1, 2, 3, i as u8]);
        let raw = col("raw");
        assert_eq!(
            raw.as_any()
                .downcast_ref::<BinaryArray>()
                .unwrap()
                .value(row),
            &[0, 255, i as u8]
        );
        let amount = col("amount");
        let amount = amount.as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!((amount.precision(), amount.scale()), (10, 2));
        assert_eq!(
            amount.value_as_string(row),
            if i % 2 == 0 { "12345.67" } else { "-12345.67" }
        );
        let big = col("big");
        let big = big.as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(big.value_as_string(row), "98765432101.2345");
        assert_eq!(
            col("day").as_primitive::<Date32Type>().value(row),
            19_723 + i as i32
        );
        assert_eq!(
            col("tm").as_primitive::<Time32MillisecondType>().value(row),
            45_296_789
        );
        assert_eq!(
            col("tmu")
                .as_primitive::<Time64MicrosecondType>()
                .value(row),
            45_296_789_012
        );
        assert_eq!(
            col("ts")
                .as_primitive::<TimestampMillisecondType>()
                .value(row),
            1_704_067_200_123 + i
        );
        let tsu = col("tsu");
        let tsu = tsu.as_primitive::<TimestampMicrosecondType>();
        assert_eq!(tsu.is_valid(row), i != 1);
        let uid = col("uid");
        let uid = uid.as_any().downcast_ref::<FixedSizeBinaryArray>().unwrap();
        assert_eq!(
            uid.value(row),
            uuid::Uuid::parse_str(UID).unwrap().as_bytes()
        );
    }
    let schema = batch.schema();
    let ts = schema.field_with_name("ts").unwrap().data_type();
    assert_eq!(
        ts,
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert!(!schema.field_with_name("id").unwrap().is_nullable());
    assert!(schema.field_with_name("note").unwrap().is_nullable());
}

#[test]
fn confluent_framing_decodes_every_type() {
    let s = schema(ALL_TYPES);
    let values: Vec<Option<Vec<u8>>> = (0..4)
        .map(|i| Some(confluent(7, &avro_datum(&s, order(i)))))
        .collect();
    let mut dec = static_decoder(&[(7, ALL_TYPES)], AvroDecoderOptions::default());
    assert!(dec.schema().is_none(), "unknown before the first buffer");
    let d = dec.decode(&buffer(&values)).unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    check_orders(&d.batch, &[0, 1, 2, 3]);
    assert_eq!(dec.stats().slow_buffers, 0);
    assert_eq!(dec.schema().unwrap(), d.batch.schema());
    assert_eq!(dec.reader_schema_id(), Some(7));
    // Reused on the next buffer.
    let d = dec.decode(&buffer(&values[1..3])).unwrap();
    check_orders(&d.batch, &[1, 2]);
}

#[test]
fn plain_framing_decodes_every_type() {
    let s = schema(ALL_TYPES);
    let values: Vec<Option<Vec<u8>>> = (0..3).map(|i| Some(avro_datum(&s, order(i)))).collect();
    let mut dec = AvroDecoder::plain(ALL_TYPES, AvroDecoderOptions::default()).unwrap();
    assert!(dec.schema().is_some(), "known from the config");
    let d = dec.decode(&buffer(&values)).unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    check_orders(&d.batch, &[0, 1, 2]);
}

#[test]
fn large_buffers_and_batch_sizes() {
    let s = schema(ALL_TYPES);
    let values: Vec<Option<Vec<u8>>> = (0..300)
        .map(|i| Some(confluent(7, &avro_datum(&s, order(i % 5)))))
        .collect();
    let options = AvroDecoderOptions {
        batch_records: 16,
        ..AvroDecoderOptions::default()
    };
    let mut dec = static_decoder(&[(7, ALL_TYPES)], options);
    for _ in 0..2 {
        let d = dec.decode(&buffer(&values)).unwrap();
        assert!(d.rejected.is_empty());
        check_orders(&d.batch, &(0..300).map(|i| i % 5).collect::<Vec<_>>());
    }
}

#[test]
fn malformed_records_are_rejected_with_causes() {
    let s = schema(ALL_TYPES);
    let good = |i| Some(confluent(7, &avro_datum(&s, order(i))));
    let body = avro_datum(&s, order(1));
    let mut trailing = confluent(7, &body);
    trailing.extend_from_slice(&[0x42, 0x43]);
    let mut bad_utf8 = body.clone();
    // The name's first byte: after id (zigzag varint 1 byte) and the name length varint.
    bad_utf8[2] = 0xff;
    let cases: Vec<(Option<Vec<u8>>, &str)> = vec![
        (None, "tombstone"),
        (Some(vec![]), "empty value"),
        (Some(b"{\"json\":true}".to_vec()), "wrong magic byte 0x7b"),
        (Some(vec![1, 0, 0, 0, 7, 2]), "wrong magic byte 0x01"),
        (Some(vec![0, 0, 0]), "too short"),
        (Some(vec![0, 0, 0, 0, 7]), "no Avro data"),
        (Some(confluent(99, &body)), "unknown schema id 99"),
        (Some(confluent(7, &body[..body.len() / 2])), "truncated"),
        (Some(confluent(7, &body[..3])), "truncated"),
        (Some(trailing), "2 unexpected bytes"),
        (Some(confluent(7, &[0xff; 40])), "invalid Avro data"),
        (Some(confluent(7, &bad_utf8)), "invalid Avro data"),
    ];
    let mut dec = static_decoder(&[(7, ALL_TYPES)], AvroDecoderOptions::default());
    for (bad, why) in cases {
        let d = dec
            .decode(&buffer(&[good(0), bad, good(2), good(3)]))
            .unwrap();
        assert_eq!(rejected(&d), vec![1], "{why}: {:?}", d.rejected);
        assert!(
            cause(&d, 1).contains(why),
            "expected '{why}' in '{}'",
            cause(&d, 1)
        );
        check_orders(&d.batch, &[0, 2, 3]);
        assert_eq!(d.accepted_indexes(4), vec![0, 2, 3]);
    }
    // Many bad records at once, and the decoder still takes the fast path afterwards.
    let d = dec
        .decode(&buffer(&[
            None,
            good(1),
            Some(vec![9]),
            good(3),
            Some(confluent(7, &[1])),
            good(4),
        ]))
        .unwrap();
    assert_eq!(rejected(&d), vec![0, 2, 4]);
    check_orders(&d.batch, &[1, 3, 4]);
    let before = dec.stats();
    let d = dec.decode(&buffer(&[good(2)])).unwrap();
    check_orders(&d.batch, &[2]);
    assert_eq!(dec.stats().fast_buffers, before.fast_buffers + 1);
    assert!(
        before.slow_buffers >= 5 && before.fast_buffers >= 5,
        "{before:?}"
    );
    // Only bad records: an empty batch of the known schema.
    let d = dec.decode(&buffer(&[None])).unwrap();
    assert_eq!(d.batch.num_rows(), 0);
    assert_eq!(d.batch.schema(), dec.schema().unwrap());
}

#[test]
fn plain_mode_rejects_garbage_and_bad_config() {
    let s = schema(ALL_TYPES);
    let body = avro_datum(&s, order(0));
    let mut dec = AvroDecoder::plain(ALL_TYPES, AvroDecoderOptions::default()).unwrap();
    let d = dec
        .decode(&buffer(&[
            Some(body.clone()),
            Some(body[..10].to_vec()),
            None,
            Some(body),
        ]))
        .unwrap();
    assert_eq!(rejected(&d), vec![1, 2]);
    assert!(
        cause(&d, 1).contains("truncated") && cause(&d, 1).contains("configured schema"),
        "{}",
        cause(&d, 1)
    );
    check_orders(&d.batch, &[0, 0]);
    for bad in [
        "{",
        r#"{"type":"record","name":"X","fields":[{"name":"a","type":"nope"}]}"#,
    ] {
        let err = AvroDecoder::plain(bad, AvroDecoderOptions::default()).unwrap_err();
        assert!(matches!(err, DecodeError::Schema { .. }), "{err}");
    }
}
#[test]
fn non_avro_and_referencing_schemas_are_rejected_per_record() {
    use streamx::decode::registry::{RegisteredSchema, RegistryError, SchemaSource};
    struct Odd;
    impl SchemaSource for Odd {
        fn schema_by_id(&self, id: u32) -> Result<Arc<RegisteredSchema>, RegistryError> {
            let reference = streamx::decode::registry::SchemaReference {
                name: "other".into(),
                subject: "other".into(),
                version: 1,
            };
            let (schema_type, references) = match id {
                1 => ("PROTOBUF", vec![]),
                2 => ("AVRO", vec![reference]),
                _ => ("AVRO", vec![]),
            };
            Ok(Arc::new(RegisteredSchema {
                id,
                schema: if id == 3 {
                    "{\"type\":".into()
                } else {
                    r#"{"type":"record","name":"U","fields":[{"name":"id","type":"long"}]}"#.into()
                },
                schema_type: schema_type.into(),
                references,
            }))
        }
    }
    let mut dec = AvroDecoder::confluent(Arc::new(Odd), AvroDecoderOptions::default()).unwrap();
    let d = dec
        .decode(&buffer(&[
            Some(confluent(1, &[2, 0])),
            Some(confluent(2, &[2, 0])),
            Some(confluent(3, &[2])),
        ]))
        .unwrap();
    assert_eq!(rejected(&d), vec![0, 1, 2]);
    assert!(cause(&d, 0).contains("PROTOBUF"));
    assert!(cause(&d, 1).contains("schema references"));
    assert!(cause(&d, 2).contains("not a usable Avro schema"));
}

/// Issue 23 item 10: a plain-Avro job reading a JSON topic. A buffer in which no record is Avro
/// used to fail the whole call ("Writer schema store must contain at least one schema", an
/// internal error); every record must be rejected with its cause instead, and a later buffer of
/// good records still decodes.
#[test]
fn a_buffer_with_no_avro_record_rejects_each_record() {
    let mut dec = AvroDecoder::plain(ALL_TYPES, AvroDecoderOptions::default()).unwrap();
    let json: Vec<Option<Vec<u8>>> = (0..5)
        .map(|i| Some(format!("{{\"seq\":{i},\"note\":\"json, not avro\"}}").into_bytes()))
        .collect();
    let d = dec
        .decode(&buffer(&json))
        .expect("bad records are the input's fault, not a failed call");
    assert_eq!(rejected(&d), vec![0, 1, 2, 3, 4]);
    assert_eq!(d.batch.num_rows(), 0);
    assert_eq!(d.batch.schema(), dec.schema().unwrap());
    for i in 0..5 {
        assert!(
            cause(&d, i).contains("configured schema"),
            "{}",
            cause(&d, i)
        );
    }
    let s = schema(ALL_TYPES);
    let d = dec
        .decode(&buffer(&[Some(avro_datum(&s, order(7)))]))
        .unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    check_orders(&d.batch, &[7]);
}
