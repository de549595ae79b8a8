//! Unit tests of the Thrift encoding (wire, codec, calls): round trips, skipping of unknown
//! fields, request bytes, reply decoding.

use std::collections::BTreeMap;

use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TFieldIdentifier, TListIdentifier, TMapIdentifier,
    TMessageIdentifier, TMessageType, TOutputProtocol, TStructIdentifier, TType,
};

use super::*;
use crate::hive::model::{FieldSchema, Order, Partition, SerDeInfo, StorageDescriptor};
use crate::hive::wire::Encode;

fn encode(v: &dyn Encode) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut o = TBinaryOutputProtocol::new(&mut buf, true);
    v.encode(&mut o).expect("encode");
    buf
}

fn decode<T: Decode>(bytes: &[u8]) -> T {
    let mut i = TBinaryInputProtocol::new(bytes, true);
    T::decode(&mut i).expect("decode")
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sample_table() -> Table {
    Table {
        table_name: "t".into(),
        db_name: "db".into(),
        owner: Some("streamx".into()),
        create_time: 1_700_000_000,
        last_access_time: 0,
        retention: 0,
        sd: Some(StorageDescriptor {
            cols: vec![
                FieldSchema::new("a", "int"),
                FieldSchema {
                    name: "b".into(),
                    type_name: "array<string>".into(),
                    comment: Some("c".into()),
                },
            ],
            location: Some("file:/tmp/t".into()),
            input_format: Some("in".into()),
            output_format: Some("out".into()),
            compressed: true,
            num_buckets: 4,
            serde_info: Some(SerDeInfo {
                name: Some("t".into()),
                serialization_lib: Some("serde".into()),
                parameters: params(&[("serialization.format", "1")]),
            }),
            bucket_cols: vec!["a".into()],
            sort_cols: vec![Order {
                col: "a".into(),
                order: 1,
            }],
            parameters: params(&[("x", "y")]),
            stored_as_sub_directories: Some(false),
        }),
        partition_keys: vec![FieldSchema::new("dt", "string")],
        parameters: params(&[("EXTERNAL", "TRUE")]),
        view_original_text: None,
        view_expanded_text: None,
        table_type: Some("EXTERNAL_TABLE".into()),
        temporary: Some(false),
        rewrite_enabled: None,
    }
}

#[test]
fn table_round_trips() {
    let t = sample_table();
    assert_eq!(decode::<Table>(&encode(&t)), t);
}

#[test]
fn database_and_partition_round_trip() {
    let db = Database {
        name: "db".into(),
        description: Some("d".into()),
        location_uri: Some("file:/w/db.db".into()),
        parameters: params(&[("k", "v")]),
        owner_name: Some("me".into()),
        owner_type: Some(1),
    };
    assert_eq!(decode::<Database>(&encode(&db)), db);
    let p = Partition {
        values: vec!["2024-01-01".into(), "x".into()],
        db_name: "db".into(),
        table_name: "t".into(),
        create_time: 5,
        last_access_time: 6,
        sd: sample_table().sd,
        parameters: params(&[("a", "b")]),
    };
    assert_eq!(decode::<Partition>(&encode(&p)), p);
}

fn field(o: &mut dyn TOutputProtocol, ty: TType, id: i16) {
    o.write_field_begin(&TFieldIdentifier::new::<Option<String>, String, i16>(
        None, ty, id,
    ))
    .expect("write");
}

/// A FieldSchema as a newer metastore might send it: unknown fields of every kind before and
/// after the known ones, and a known id with the wrong wire type.
#[test]
fn unknown_fields_and_mistyped_fields_are_skipped() {
    let mut buf = Vec::new();
    {
        let mut o = TBinaryOutputProtocol::new(&mut buf, true);
        o.write_struct_begin(&TStructIdentifier::new("FieldSchema"))
            .expect("w");
        // 9: map<string, list<struct{1: i64}>>
        field(&mut o, TType::Map, 9);
        o.write_map_begin(&TMapIdentifier::new(TType::String, TType::List, 1))
            .expect("w");
        o.write_string("k").expect("w");
        o.write_list_begin(&TListIdentifier::new(TType::Struct, 2))
            .expect("w");
        for _ in 0..2 {
            o.write_struct_begin(&TStructIdentifier::new("X"))
                .expect("w");
            field(&mut o, TType::I64, 1);
            o.write_i64(7).expect("w");
            o.write_field_end().expect("w");
            o.write_field_stop().expect("w");
            o.write_struct_end().expect("w");
        }
        o.write_list_end().expect("w");
        o.write_map_end().expect("w");
        o.write_field_end().expect("w");
        // 1: name
        field(&mut o, TType::String, 1);
        o.write_string("col").expect("w");
        o.write_field_end().expect("w");
        // 2 with the wrong type (i32): skipped
        field(&mut o, TType::I32, 2);
        o.write_i32(3).expect("w");
        o.write_field_end().expect("w");
        // 20: double, 21: bool, 22: binary
        field(&mut o, TType::Double, 20);
        o.write_double(1.5).expect("w");
        field(&mut o, TType::Bool, 21);
        o.write_bool(true).expect("w");
        field(&mut o, TType::String, 22);
        o.write_bytes(&[0xff, 0x00]).expect("w");
        // 2: the real type
        field(&mut o, TType::String, 2);
        o.write_string("int").expect("w");
        o.write_field_stop().expect("w");
        o.write_struct_end().expect("w");
    }
    // Two structs back to back: the first must end exactly where the second starts.
    let second = encode(&FieldSchema::new("next", "string"));
    buf.extend_from_slice(&second);
    let mut i = TBinaryInputProtocol::new(&buf[..], true);
    let first = FieldSchema::decode(&mut i).expect("decode");
    assert_eq!(first, FieldSchema::new("col", "int"));
    assert_eq!(
        FieldSchema::decode(&mut i).expect("decode"),
        FieldSchema::new("next", "string")
    );
}

fn reply(
    name: &str,
    seq: i32,
    kind: TMessageType,
    body: impl FnOnce(&mut dyn TOutputProtocol),
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut o = TBinaryOutputProtocol::new(&mut buf, true);
    o.write_message_begin(&TMessageIdentifier::new(name, kind, seq))
        .expect("w");
    o.write_struct_begin(&TStructIdentifier::new("result"))
        .expect("w");
    body(&mut o);
    o.write_field_stop().expect("w");
    o.write_struct_end().expect("w");
    o.write_message_end().expect("w");
    buf
}

fn exception(o: &mut dyn TOutputProtocol, id: i16, message: &str) {
    field(o, TType::Struct, id);
    o.write_struct_begin(&TStructIdentifier::new("E"))
        .expect("w");
    field(o, TType::String, 1);
    o.write_string(message).expect("w");
    o.write_field_stop().expect("w");
    o.write_struct_end().expect("w");
}

const GET_TABLE: Call<'static> = Call::GetTable {
    db: "d",
    table: "t",
};

#[test]
fn declared_exceptions_map_by_field_id() {
    // get_table: 1 = MetaException, 2 = NoSuchObjectException.
    let bytes = reply("get_table", 3, TMessageType::Reply, |o| {
        exception(o, 2, "d.t table not found")
    });
    let mut i = TBinaryInputProtocol::new(&bytes[..], true);
    match GET_TABLE.read_reply::<Table>(&mut i, 3).expect("reply") {
        Reply::Declared(RemoteErrorKind::NoSuchObject, m) => assert_eq!(m, "d.t table not found"),
        other => panic!("unexpected {other:?}"),
    }
    let bytes = reply("get_table", 4, TMessageType::Reply, |o| {
        exception(o, 1, "boom")
    });
    let mut i = TBinaryInputProtocol::new(&bytes[..], true);
    assert!(matches!(
        GET_TABLE.read_reply::<Table>(&mut i, 4).expect("reply"),
        Reply::Declared(RemoteErrorKind::Meta, _)
    ));
}

#[test]
fn success_list_and_void_replies() {
    let call = Call::GetPartitionNames {
        db: "d",
        table: "t",
        max_parts: -1,
    };
    let bytes = reply("get_partition_names", 1, TMessageType::Reply, |o| {
        field(o, TType::List, 0);
        o.write_list_begin(&TListIdentifier::new(TType::String, 2))
            .expect("w");
        o.write_string("dt=1").expect("w");
        o.write_string("dt=2").expect("w");
        o.write_list_end().expect("w");
    });
    let mut i = TBinaryInputProtocol::new(&bytes[..], true);
    match call.read_reply::<Vec<String>>(&mut i, 1).expect("reply") {
        Reply::Success(Some(names)) => assert_eq!(names, vec!["dt=1", "dt=2"]),
        other => panic!("unexpected {other:?}"),
    }
    let drop = Call::DropTable {
        db: "d",
        table: "t",
        delete_data: false,
    };
    let bytes = reply("drop_table", 2, TMessageType::Reply, |_| {});
    let mut i = TBinaryInputProtocol::new(&bytes[..], true);
    assert!(matches!(
        drop.read_reply::<()>(&mut i, 2).expect("reply"),
        Reply::Success(None)
    ));
}

#[test]
fn application_exceptions_and_mismatches() {
    let mut buf = Vec::new();
    {
        let mut o = TBinaryOutputProtocol::new(&mut buf, true);
        o.write_message_begin(&TMessageIdentifier::new(
            "get_table",
            TMessageType::Exception,
            9,
        ))
        .expect("w");
        let e = thrift::ApplicationError::new(
            thrift::ApplicationErrorKind::UnknownMethod,
            "Invalid method name: 'get_table'",
        );
        thrift::Error::write_application_error_to_out_protocol(&e, &mut o).expect("w");
        o.write_message_end().expect("w");
    }
    let mut i = TBinaryInputProtocol::new(&buf[..], true);
    match GET_TABLE.read_reply::<Table>(&mut i, 9).expect("reply") {
        Reply::Application(e) => {
            assert_eq!(e.kind, thrift::ApplicationErrorKind::UnknownMethod)
        }
        other => panic!("unexpected {other:?}"),
    }
    // Wrong sequence number, wrong call name.
    let bytes = reply("get_table", 1, TMessageType::Reply, |_| {});
    let mut i = TBinaryInputProtocol::new(&bytes[..], true);
    assert!(GET_TABLE.read_reply::<Table>(&mut i, 2).is_err());
    let bytes = reply("get_database", 1, TMessageType::Reply, |_| {});
    let mut i = TBinaryInputProtocol::new(&bytes[..], true);
    assert!(GET_TABLE.read_reply::<Table>(&mut i, 1).is_err());
}

#[test]
fn request_is_a_strict_binary_call_message() {
    let mut buf = Vec::new();
    let mut o = TBinaryOutputProtocol::new(&mut buf, true);
    GET_TABLE.write(&mut o, 7).expect("write");
    // version 0x8001, type CALL (1), name, seqid
    assert_eq!(&buf[..4], &[0x80, 0x01, 0x00, 0x01]);
    assert_eq!(&buf[4..8], &9i32.to_be_bytes());
    assert_eq!(&buf[8..17], b"get_table");
    assert_eq!(&buf[17..21], &7i32.to_be_bytes());
    // args: 1: string "d", 2: string "t", stop
    let args = &buf[21..];
    assert_eq!(
        args,
        &[11, 0, 1, 0, 0, 0, 1, b'd', 11, 0, 2, 0, 0, 0, 1, b't', 0][..]
    );
}

#[test]
fn negative_sizes_are_rejected() {
    let mut buf = Vec::new();
    {
        let mut o = TBinaryOutputProtocol::new(&mut buf, true);
        o.write_struct_begin(&TStructIdentifier::new("P"))
            .expect("w");
        field(&mut o, TType::List, 1);
        o.write_list_begin(&TListIdentifier::new(TType::String, -5))
            .expect("w");
    }
    let mut i = TBinaryInputProtocol::new(&buf[..], true);
    assert!(Partition::decode(&mut i).is_err());
}
