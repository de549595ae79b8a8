// Kafka Connect JsonConverter envelopes (`schemas.enable=true`) decoded into Arrow.

use crate::common::buffer;
use arrow::array::{Array, AsArray, BinaryArray, Decimal128Array};
use arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    Time32MillisecondType, TimeUnit, TimestampMillisecondType,
};
use arrow::record_batch::RecordBatch;
use base64::Engine;
use serde_json::{json, Value};
use streamx::decode::connect_json::{ConnectJsonDecoder, ConnectJsonOptions, DecimalFormat};
use streamx::decode::{DecodeError, Decoded, ValueDecoder};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The Connect schema of the test records, as JsonConverter writes it.
fn schema() -> Value {
    json!({"type": "struct", "name": "shop.Order", "optional": false, "fields": [
        {"field": "id", "type": "int64", "optional": false},
        {"field": "small", "type": "int8", "optional": false},
        {"field": "mid", "type": "int16", "optional": true},
        {"field": "qty", "type": "int32", "optional": false},
        {"field": "price", "type": "float64", "optional": true},
        {"field": "ok", "type": "boolean", "optional": false},
        {"field": "name", "type": "string", "optional": true},
        {"field": "raw", "type": "bytes", "optional": true},
        {"field": "amount", "type": "bytes", "optional": true, "name": "org.apache.kafka.connect.data.Decimal",
         "version": 1, "parameters": {"scale": "2", "connect.decimal.precision": "12"}},
        {"field": "day", "type": "int32", "optional": true, "name": "org.apache.kafka.connect.data.Date", "version": 1},
        {"field": "at", "type": "int32", "optional": true, "name": "org.apache.kafka.connect.data.Time", "version": 1},
        {"field": "ts", "type": "int64", "optional": true, "name": "org.apache.kafka.connect.data.Timestamp", "version": 1},
        {"field": "tags", "type": "array", "optional": true, "items": {"type": "string", "optional": false}},
        {"field": "attrs", "type": "map", "optional": true, "keys": {"type": "string", "optional": false},
         "values": {"type": "int64", "optional": true}},
        {"field": "address", "type": "struct", "optional": true, "name": "shop.Address", "fields": [
            {"field": "street", "type": "string", "optional": false},
            {"field": "blob", "type": "bytes", "optional": true}]}
    ]})
}

fn payload(i: i64) -> Value {
    json!({
        "id": i, "small": -3, "mid": if i == 1 { Value::Null } else { json!(300) }, "qty": 7,
        "price": 1.25, "ok": i % 2 == 0, "name": format!("héllo ✓ 日本 #{i}"),
        "raw": b64(&[0, 1, 255]),
        "amount": b64(&(-1_234_567i64 + i).to_be_bytes()[5..]),
        "day": 19_723, "at": 45_296_789, "ts": 1_704_067_200_123i64 + i,
        "tags": ["a", format!("t{i}")], "attrs": {"k": i, "nul": null},
        "address": {"street": format!("{i} Main St"), "blob": b64(b"xy")}
    })
}

fn envelope(schema: &Value, payload: &Value) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(&json!({"schema": schema, "payload": payload})).unwrap())
}

fn rejected(d: &Decoded) -> Vec<usize> {
    d.rejected.iter().map(|(i, _)| *i).collect()
}

fn cause(d: &Decoded, index: usize) -> String {
    d.rejected
        .iter()
        .find(|(i, _)| *i == index)
        .map(|(_, e)| e.0.clone())
        .unwrap_or_default()
}

fn ids(batch: &RecordBatch) -> Vec<Option<i64>> {
    batch
        .column_by_name("id")
        .unwrap()
        .as_primitive::<Int64Type>()
        .iter()
        .collect()
}

#[test]
fn every_type_decodes() {
    let s = schema();
    let values: Vec<Option<Vec<u8>>> = (0..3).map(|i| envelope(&s, &payload(i))).collect();
    let mut dec = ConnectJsonDecoder::new(ConnectJsonOptions::default()).unwrap();
    let d = dec.decode(&buffer(&values)).unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let b = &d.batch;
    let col = |n: &str| b.column_by_name(n).unwrap().clone();
    assert_eq!(ids(b), vec![Some(0), Some(1), Some(2)]);
    assert_eq!(col("small").as_primitive::<Int8Type>().value(0), -3);
    assert!(col("mid").as_primitive::<Int16Type>().is_null(1));
    assert_eq!(col("qty").as_primitive::<Int32Type>().value(2), 7);
    assert_eq!(col("price").as_primitive::<Float64Type>().value(0), 1.25);
    assert!(col("ok").as_boolean().value(0) && !col("ok").as_boolean().value(1));
    assert_eq!(col("name").as_string::<i32>().value(2), "héllo ✓ 日本 #2");
    assert_eq!(
        col("raw")
            .as_any()
            .downcast_ref::<BinaryArray>()
            .unwrap()
            .value(1),
        &[0, 1, 255]
    );
    let amount = col("amount");
    let amount = amount.as_any().downcast_ref::<Decimal128Array>().unwrap();
    assert_eq!(amount.data_type(), &DataType::Decimal128(12, 2));
    assert_eq!(amount.value_as_string(0), "-12345.67");
    assert_eq!(amount.value_as_string(2), "-12345.65");
    assert_eq!(col("day").as_primitive::<Date32Type>().value(0), 19_723);
    assert_eq!(
        col("at").as_primitive::<Time32MillisecondType>().value(0),
        45_296_789
    );
    let ts = col("ts");
    assert_eq!(
        ts.data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(
        ts.as_primitive::<TimestampMillisecondType>().value(1),
        1_704_067_200_124
    );
    let tags = col("tags");
    let tags = tags.as_list::<i32>().value(1);
    assert_eq!(tags.as_string::<i32>().value(1), "t1");
    let attrs = col("attrs");
    let entries = attrs.as_map().value(2);
    assert_eq!(entries.column(0).as_string::<i32>().value(0), "k");
    assert_eq!(entries.column(1).as_primitive::<Int64Type>().value(0), 2);
    assert!(entries.column(1).is_null(1));
    let address = col("address");
    let address = address.as_struct();
    assert_eq!(address.column(0).as_string::<i32>().value(1), "1 Main St");
    assert_eq!(
        address
            .column(1)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .unwrap()
            .value(0),
        b"xy"
    );
    assert!(!b.schema().field(0).is_nullable() && b.schema().field(2).is_nullable());
    assert_eq!(dec.schema().unwrap(), b.schema());
}

#[test]
fn bad_records_are_rejected_alone() {
    let s = schema();
    let mut bad_amount = payload(1);
    bad_amount["amount"] = json!(b64(&[0x7f; 9]));
    let mut bad_b64 = payload(1);
    bad_b64["raw"] = json!("***");
    let mut missing = payload(1);
    missing.as_object_mut().unwrap().remove("qty");
    let mut wrong_type = payload(1);
    wrong_type["qty"] = json!("seven");
    let cases: Vec<(Option<Vec<u8>>, &str)> = vec![
        (None, "tombstone"),
        (Some(b"not json".to_vec()), "not a Connect JSON envelope"),
        (Some(vec![0xff, 0xfe]), "not UTF-8"),
        (Some(br#"{"payload":{"id":1}}"#.to_vec()), "no 'schema'"),
        (
            Some(serde_json::to_vec(&json!({"schema": s})).unwrap()),
            "no 'payload'",
        ),
        (envelope(&s, &Value::Null), "payload is null"),
        (envelope(&s, &json!([1, 2])), "payload does not match"),
        (envelope(&s, &bad_amount), "exceeds precision"),
        (envelope(&s, &bad_b64), "invalid base64"),
        (envelope(&s, &missing), "payload does not match"),
        (envelope(&s, &wrong_type), "payload does not match"),
        (
            envelope(&json!({"type": "uint8"}), &json!(1)),
            "unusable envelope schema",
        ),
    ];
    let mut dec = ConnectJsonDecoder::new(ConnectJsonOptions::default()).unwrap();
    for (bad, why) in cases {
        let values = vec![envelope(&s, &payload(0)), bad, envelope(&s, &payload(2))];
        let d = dec.decode(&buffer(&values)).unwrap();
        assert_eq!(rejected(&d), vec![1], "{why}: {:?}", d.rejected);
        assert!(
            cause(&d, 1).contains(why),
            "expected '{why}' in '{}'",
            cause(&d, 1)
        );
        assert_eq!(ids(&d.batch), vec![Some(0), Some(2)], "{why}");
    }
}

#[test]
fn differing_envelope_schemas_fit_or_are_rejected() {
    let base = json!({"type": "struct", "fields": [
        {"field": "id", "type": "int64"},
        {"field": "name", "type": "string", "optional": true}]});
    // Narrower id and no name: fits (int32 widens, name is optional).
    let narrower = json!({"type": "struct", "fields": [{"field": "id", "type": "int32"}]});
    // An extra field is not in the output schema.
    let extra = json!({"type": "struct", "fields": [
        {"field": "id", "type": "int64"}, {"field": "email", "type": "string"}]});
    let renamed_type = json!({"type": "struct", "fields": [{"field": "id", "type": "string"}]});
    let values = vec![
        envelope(&base, &json!({"id": 1, "name": "a"})),
        envelope(&narrower, &json!({"id": 2})),
        envelope(&extra, &json!({"id": 3, "email": "e"})),
        envelope(&renamed_type, &json!({"id": "4"})),
        envelope(&base, &json!({"id": 5, "name": null})),
    ];
    let mut dec = ConnectJsonDecoder::new(ConnectJsonOptions::default()).unwrap();
    let d = dec.decode(&buffer(&values)).unwrap();
    assert_eq!(rejected(&d), vec![2, 3]);
    assert!(
        cause(&d, 2).contains("field 'email' is not in the output schema"),
        "{}",
        cause(&d, 2)
    );
    assert!(
        cause(&d, 3).contains("'id' is string in the record's schema but int64"),
        "{}",
        cause(&d, 3)
    );
    assert_eq!(ids(&d.batch), vec![Some(1), Some(2), Some(5)]);
    let names: Vec<Option<&str>> = d.batch.column(1).as_string::<i32>().iter().collect();
    assert_eq!(names, vec![Some("a"), None, None]);
}

#[test]
fn configured_schema_numeric_decimals_and_primitive_values() {
    let options = ConnectJsonOptions {
        schema: Some(
            json!({"type": "struct", "fields": [
            {"field": "d", "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
             "parameters": {"scale": "3"}}]})
            .to_string(),
        ),
        decimal_format: DecimalFormat::Numeric,
        ..ConnectJsonOptions::default()
    };
    let mut dec = ConnectJsonDecoder::new(options).unwrap();
    let s = json!({"type": "struct", "fields": [
        {"field": "d", "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "parameters": {"scale": "3"}}]});
    assert!(dec.schema().is_some());
    let d = dec
        .decode(&buffer(&[
            envelope(&s, &json!({"d": 12.345})),
            envelope(&s, &json!({"d": -0.5})),
        ]))
        .unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let col = d
        .batch
        .column(0)
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .unwrap()
        .clone();
    assert_eq!(col.value_as_string(0), "12.345");
    assert_eq!(col.value_as_string(1), "-0.500");
    // A string-valued topic: one column named "value".
    let mut dec = ConnectJsonDecoder::new(ConnectJsonOptions::default()).unwrap();
    let s = json!({"type": "string", "optional": false});
    let d = dec
        .decode(&buffer(&[
            envelope(&s, &json!("plain ✓")),
            envelope(&s, &json!(5)),
        ]))
        .unwrap();
    assert_eq!(d.batch.schema().field(0).name(), "value");
    assert_eq!(d.batch.column(0).as_string::<i32>().value(0), "plain ✓");
    assert_eq!(rejected(&d), vec![1]);
    let bad = ConnectJsonDecoder::new(ConnectJsonOptions {
        schema: Some("{".into()),
        ..ConnectJsonOptions::default()
    });
    assert!(matches!(bad, Err(DecodeError::Schema { .. })));
}

#[test]
fn no_usable_record_yet_gives_an_empty_batch() {
    let mut dec = ConnectJsonDecoder::new(ConnectJsonOptions::default()).unwrap();
    let d = dec.decode(&buffer(&[None, Some(b"{}".to_vec())])).unwrap();
    assert_eq!(rejected(&d), vec![0, 1]);
    assert_eq!(d.batch.num_rows(), 0);
    assert!(dec.schema().is_none());
}
