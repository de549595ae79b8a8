use std::sync::Arc;

use arrow::array::{
    Array, AsArray, BinaryArray, Int64Array, MapArray, StringArray, StructArray,
    TimestampMicrosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, TimeUnit};
use prost::Message;
use prost_reflect::{DynamicMessage, MapKey, Value};

use super::*;
use crate::decode::protobuf_schema::{compile, Reference, StaticProtoSchemas};

const COMMON: &str = r#"
syntax = "proto3";
package shop.common;
message Money { string currency = 1; int64 units = 2; }
"#;

const ORDER_V1: &str = r#"
syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/wrappers.proto";
import "shop/common.proto";
message Unused { int32 x = 1; }
message Order {
  enum Status { UNKNOWN = 0; PAID = 1; SHIPPED = 2; }
  message Line { string sku = 1; uint32 qty = 2; shop.common.Money price = 3; }
  string id = 1;
  repeated Line lines = 2;
  map<string, int64> tags = 3;
  oneof payment { string card = 4; bytes voucher = 5; }
  Status status = 6;
  google.protobuf.Timestamp at = 7;
  google.protobuf.StringValue note = 8;
  google.protobuf.Duration took = 9;
  uint64 big = 10;
  repeated int32 codes = 11;
  Order parent = 12;
}
"#;

/// V1 plus a field; `big` removed.
const ORDER_V2: &str = r#"
syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/wrappers.proto";
import "shop/common.proto";
message Unused { int32 x = 1; }
message Order {
  enum Status { UNKNOWN = 0; PAID = 1; SHIPPED = 2; }
  message Line { string sku = 1; uint32 qty = 2; shop.common.Money price = 3; }
  string id = 1;
  repeated Line lines = 2;
  map<string, int64> tags = 3;
  oneof payment { string card = 4; bytes voucher = 5; }
  Status status = 6;
  google.protobuf.Timestamp at = 7;
  google.protobuf.StringValue note = 8;
  google.protobuf.Duration took = 9;
  repeated int32 codes = 11;
  Order parent = 12;
  string channel = 13;
}
"#;

fn common_ref() -> Vec<Reference> {
    vec![Reference {
        name: "shop/common.proto".into(),
        subject: "shop/common.proto".into(),
        version: 1,
    }]
}

fn schemas() -> StaticProtoSchemas {
    StaticProtoSchemas::new()
        .with(1, ORDER_V1, common_ref())
        .with(2, ORDER_V2, common_ref())
        .with_subject("shop/common.proto", 1, COMMON)
}

fn order_descriptor(text: &str) -> MessageDescriptor {
    let files = [
        ("main.proto".to_string(), text.to_string()),
        ("shop/common.proto".to_string(), COMMON.to_string()),
    ];
    compile("main.proto", files.into_iter().collect())
        .unwrap()
        .messages()
        .nth(1)
        .unwrap()
}

/// A full order (v1 fields): id, two lines, a map, a card, status, timestamp, wrapper, ...
fn order(desc: &MessageDescriptor, id: &str) -> DynamicMessage {
    let mut m = DynamicMessage::new(desc.clone());
    m.set_field_by_name("id", Value::String(id.into()));
    let line_desc = desc.get_field_by_name("lines").unwrap();
    let prost_reflect::Kind::Message(line_md) = line_desc.kind() else {
        panic!()
    };
    let mut lines = Vec::new();
    for (sku, qty) in [("a", 1u32), ("b", 2)] {
        let mut l = DynamicMessage::new(line_md.clone());
        l.set_field_by_name("sku", Value::String(sku.into()));
        l.set_field_by_name("qty", Value::U32(qty));
        if sku == "a" {
            let prost_reflect::Kind::Message(money) =
                line_md.get_field_by_name("price").unwrap().kind()
            else {
                panic!()
            };
            let mut p = DynamicMessage::new(money);
            p.set_field_by_name("currency", Value::String("EUR".into()));
            p.set_field_by_name("units", Value::I64(12));
            l.set_field_by_name("price", Value::Message(p));
        }
        lines.push(Value::Message(l));
    }
    m.set_field_by_name("lines", Value::List(lines));
    let tags = [(MapKey::String("k".into()), Value::I64(5))];
    m.set_field_by_name("tags", Value::Map(tags.into_iter().collect()));
    m.set_field_by_name("card", Value::String("4111".into()));
    m.set_field_by_name("status", Value::EnumNumber(2));
    let ts = prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 123_456_789,
    };
    let at_field = desc.get_field_by_name("at").unwrap();
    let prost_reflect::Kind::Message(ts_md) = at_field.kind() else {
        panic!()
    };
    let at = DynamicMessage::decode(ts_md, ts.encode_to_vec().as_slice()).unwrap();
    m.set_field_by_name("at", Value::Message(at));
    let prost_reflect::Kind::Message(sv) = desc.get_field_by_name("note").unwrap().kind() else {
        panic!()
    };
    let mut note = DynamicMessage::new(sv);
    note.set_field_by_number(1, Value::String("hi".into()));
    m.set_field_by_name("note", Value::Message(note));
    m
}

fn framed(id: u32, indexes: &[u8], m: &DynamicMessage) -> Vec<u8> {
    let mut v = vec![0];
    v.extend(id.to_be_bytes());
    v.extend(indexes);
    v.extend(m.encode_to_vec());
    v
}

fn buffer(values: &[Option<&[u8]>]) -> RecordBuffer {
    let mut b = RecordBuffer::new(false, false);
    for (i, v) in values.iter().enumerate() {
        b.push(i as i64, 0, None, *v, Vec::new);
    }
    b
}

#[test]
fn wire_format_message_indexes() {
    let f = frame(&[0, 0, 0, 0, 7, 0, 0x08, 0x01]).unwrap();
    assert_eq!(
        (f.id, f.indexes.as_slice(), f.body),
        (7, &[0u64][..], &[8u8, 1][..])
    );
    // Count 2 (zigzag 4), indexes 1 (2) and 0 (0).
    let f = frame(&[0, 0, 0, 1, 0, 4, 2, 0, 0x08]).unwrap();
    assert_eq!(
        (f.id, f.indexes.as_slice(), f.body),
        (256, &[1u64, 0][..], &[8u8][..])
    );
    // Index 64: zigzag 128, a two-byte varint.
    let f = frame(&[0, 0, 0, 0, 1, 2, 0x80, 0x01]).unwrap();
    assert_eq!(f.indexes, vec![64]);
    assert!(frame(&[1, 0, 0, 0, 1, 0])
        .unwrap_err()
        .contains("magic byte 0x01"));
    assert!(frame(&[0, 0, 0]).unwrap_err().contains("too short"));
    assert!(frame(&[0, 0, 0, 0, 1]).unwrap_err().contains("truncated"));
    assert!(frame(&[0, 0, 0, 0, 1, 4, 2])
        .unwrap_err()
        .contains("truncated"));
    assert!(frame(&[0, 0, 0, 0, 1, 1]).unwrap_err().contains("count -1"));
    assert!(frame(&[0, 0, 0, 0, 1, 2, 1])
        .unwrap_err()
        .contains("negative"));
    assert!(frame(&[]).unwrap_err().contains("empty"));
}

#[test]
fn descriptor_to_arrow_types() {
    let desc = order_descriptor(ORDER_V1);
    let schema = StructColumn::plan(&desc).unwrap().schema();
    let ty = |n: &str| schema.field_with_name(n).unwrap().data_type().clone();
    assert_eq!(ty("id"), DataType::Utf8);
    let DataType::List(line) = ty("lines") else {
        panic!("{:?}", ty("lines"))
    };
    let DataType::Struct(line_fields) = line.data_type() else {
        panic!()
    };
    assert_eq!(line_fields[1].data_type(), &DataType::UInt32);
    assert!(matches!(line_fields[2].data_type(), DataType::Struct(f) if f.len() == 2));
    let DataType::Map(entries, false) = ty("tags") else {
        panic!("{:?}", ty("tags"))
    };
    let DataType::Struct(kv) = entries.data_type() else {
        panic!()
    };
    assert_eq!(
        (kv[0].data_type(), kv[0].is_nullable(), kv[1].data_type()),
        (&DataType::Utf8, false, &DataType::Int64)
    );
    assert_eq!(ty("card"), DataType::Utf8);
    assert_eq!(ty("voucher"), DataType::Binary);
    assert_eq!(ty("status"), DataType::Utf8);
    assert_eq!(
        ty("at"),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(ty("note"), DataType::Utf8);
    assert_eq!(ty("took"), DataType::Int64);
    assert_eq!(ty("big"), DataType::UInt64);
    assert!(matches!(ty("codes"), DataType::List(f) if f.data_type() == &DataType::Int32));
    // Order nests itself: the inner Order is kept as its protobuf encoding.
    assert_eq!(ty("parent"), DataType::Binary);
}

#[test]
fn decodes_nested_repeated_map_oneof_enum_timestamp_wrappers() {
    let desc = order_descriptor(ORDER_V1);
    let full = order(&desc, "o1");
    let mut empty = DynamicMessage::new(desc.clone());
    empty.set_field_by_name("voucher", Value::Bytes(vec![1u8, 2].into()));
    empty.set_field_by_name("parent", Value::Message(full.clone()));
    let (a, b) = (framed(1, &[2, 2], &full), framed(1, &[2, 2], &empty));
    let mut d = ProtobufDecoder::new(Arc::new(schemas()));
    let out = d.decode(&buffer(&[Some(&a), Some(&b)])).unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let batch = out.batch;
    assert_eq!(batch.num_rows(), 2);
    let col = |n: &str| batch.column_by_name(n).unwrap().clone();
    let ids = col("id");
    assert_eq!(ids.as_string::<i32>().value(0), "o1");
    // proto3 scalars without presence read as their default.
    assert_eq!(ids.as_string::<i32>().value(1), "");
    let lines = col("lines");
    let lines = lines.as_list::<i32>();
    assert_eq!((lines.value_length(0), lines.value_length(1)), (2, 0));
    let line0 = lines.value(0);
    let line0 = line0.as_any().downcast_ref::<StructArray>().unwrap();
    let price = line0.column(2).as_struct();
    assert!(price.is_valid(0) && price.is_null(1));
    assert_eq!(
        price
            .column(1)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0),
        12
    );
    let tags = col("tags");
    let tags = tags.as_any().downcast_ref::<MapArray>().unwrap();
    assert_eq!(tags.value_length(0), 1);
    assert_eq!(tags.keys().as_string::<i32>().value(0), "k");
    let card = col("card");
    let card = card.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!((card.value(0), card.is_null(1)), ("4111", true));
    let voucher = col("voucher");
    let voucher = voucher.as_any().downcast_ref::<BinaryArray>().unwrap();
    assert_eq!(
        (voucher.is_null(0), voucher.value(1)),
        (true, &[1u8, 2][..])
    );
    let status = col("status");
    assert_eq!(status.as_string::<i32>().value(0), "SHIPPED");
    assert_eq!(status.as_string::<i32>().value(1), "UNKNOWN");
    let at = col("at");
    let at = at
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    assert_eq!((at.value(0), at.is_null(1)), (1_700_000_000_123_456, true));
    let note = col("note");
    assert_eq!(note.as_string::<i32>().value(0), "hi");
    assert!(note.is_null(1));
    assert!(col("took")
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .is_null(0));
    assert_eq!(
        col("big")
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap()
            .value(0),
        0
    );
    let parent = col("parent");
    let parent = parent.as_any().downcast_ref::<BinaryArray>().unwrap();
    assert!(parent.is_null(0));
    assert_eq!(DynamicMessage::decode(desc, parent.value(1)).unwrap(), full);
}

#[test]
fn new_schema_id_becomes_the_reader_and_old_records_read_with_it() {
    let (v1, v2) = (order_descriptor(ORDER_V1), order_descriptor(ORDER_V2));
    let mut new = order(&v2, "n");
    new.set_field_by_name("channel", Value::String("web".into()));
    let mut old = order(&v1, "o");
    old.set_field_by_name("big", Value::U64(9));
    let (a, b) = (framed(1, &[2, 2], &old), framed(2, &[2, 2], &new));
    let mut d = ProtobufDecoder::new(Arc::new(schemas()));
    let first = d.decode(&buffer(&[Some(&a)])).unwrap();
    assert_eq!(d.reader_schema_id(), Some(1));
    assert!(first.batch.column_by_name("big").is_some());
    let out = d.decode(&buffer(&[Some(&a), Some(&b), Some(&a)])).unwrap();
    assert_eq!(d.reader_schema_id(), Some(2));
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let schema = d.schema().unwrap();
    assert!(schema.field_with_name("big").is_err());
    let channel = out.batch.column_by_name("channel").unwrap();
    let channel = channel.as_string::<i32>();
    assert_eq!((channel.value(0), channel.value(1)), ("", "web"));
    // An older id later on keeps the newer reader.
    d.decode(&buffer(&[Some(&a)])).unwrap();
    assert_eq!(d.reader_schema_id(), Some(2));
}

#[test]
fn bad_records_are_rejected_with_the_cause() {
    let desc = order_descriptor(ORDER_V1);
    let good = framed(1, &[2, 2], &order(&desc, "g"));
    let mut garbage = framed(1, &[2, 2], &order(&desc, "g"));
    garbage.truncate(garbage.len() - 3);
    let unknown = framed(9, &[0], &order(&desc, "u"));
    let other_type = framed(1, &[0], &order(&desc, "x"));
    let bad_index = framed(1, &[4, 2, 14], &order(&desc, "x"));
    let values: Vec<Option<&[u8]>> = vec![
        Some(b"{\"json\":1}"),
        Some(&good),
        None,
        Some(&garbage),
        Some(&unknown),
        Some(&other_type),
        Some(&bad_index),
        Some(&[]),
    ];
    let mut d = ProtobufDecoder::new(Arc::new(schemas()));
    let out = d.decode(&buffer(&values)).unwrap();
    assert_eq!(out.batch.num_rows(), 1);
    let causes: Vec<(usize, String)> = out.rejected.into_iter().map(|(i, e)| (i, e.0)).collect();
    let expect = [
        (0, "wrong magic byte 0x7b"),
        (2, "tombstone"),
        (3, "do not parse as Protobuf message shop.Order"),
        (4, "unknown schema id 9"),
        (
            5,
            "message type shop.Unused is not the topic's message type shop.Order",
        ),
        (6, "nested message index 7 is out of range in shop.Order"),
        (7, "empty value"),
    ];
    assert_eq!(causes.len(), expect.len(), "{causes:?}");
    for ((i, cause), (ei, want)) in causes.iter().zip(expect) {
        assert_eq!(*i, ei);
        assert!(cause.contains(want), "{cause} lacks {want}");
    }
}

#[test]
fn missing_reference_and_non_protobuf_schema_are_rejected() {
    let src = StaticProtoSchemas::new()
        .with(1, ORDER_V1, common_ref())
        .with(3, "syntax = \"proto3\"; message A { strin x = 1; }", vec![]);
    let mut d = ProtobufDecoder::new(Arc::new(src));
    let desc = order_descriptor(ORDER_V1);
    let a = framed(1, &[2, 2], &order(&desc, "a"));
    let b = framed(3, &[0], &order(&desc, "a"));
    let out = d.decode(&buffer(&[Some(&a), Some(&b)])).unwrap();
    let causes: Vec<String> = out.rejected.iter().map(|(_, e)| e.0.clone()).collect();
    assert!(
        causes[0].contains("reference 'shop/common.proto'"),
        "{causes:?}"
    );
    assert!(
        causes[1].contains("not a usable Protobuf schema"),
        "{causes:?}"
    );
}
