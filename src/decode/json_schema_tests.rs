use super::*;
use crate::decode::registry::{SchemaReference, StaticSchemas};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};

const V1: &str = r##"{"type":"object","properties":{"id":{"type":"integer"},
  "name":{"type":"string"},"at":{"type":"string","format":"date-time"},
  "tags":{"type":"array","items":{"type":"string"}},
  "user":{"oneOf":[{"type":"null"},{"$ref":"#/definitions/user"}]}},
  "definitions":{"user":{"type":"object","properties":{"age":{"type":"integer"}}}}}"##;
const V2: &str = r##"{"type":"object","properties":{"id":{"type":"integer"},
  "name":{"type":"string"},"at":{"type":"string","format":"date-time"},
  "tags":{"type":"array","items":{"type":"string"}},
  "user":{"oneOf":[{"type":"null"},{"$ref":"#/definitions/user"}]},
  "email":{"type":["null","string"]}},
  "definitions":{"user":{"type":"object","properties":{"age":{"type":"integer"}}}}}"##;
const V3_BREAKS: &str = r#"{"type":"object","properties":{"id":{"type":"string"}}}"#;

fn framed(id: u32, json: &str) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(json.as_bytes());
    v
}

fn buffer(values: &[Option<Vec<u8>>]) -> RecordBuffer {
    let mut b = RecordBuffer::new(false, false);
    for (i, v) in values.iter().enumerate() {
        b.push(i as i64, 0, None, v.as_deref(), Vec::new);
    }
    b
}

fn decoder(compat: Compat) -> JsonSchemaDecoder {
    let source = StaticSchemas::new()
        .with_typed(1, "JSON", V1)
        .with_typed(2, "JSON", V2)
        .with_typed(3, "JSON", V3_BREAKS)
        .with(
            4,
            r#"{"type":"record","name":"R","fields":[{"name":"id","type":"long"}]}"#,
        );
    JsonSchemaDecoder::new("t".into(), Arc::new(source), compat, 16)
}

fn record(id: i64) -> String {
    format!(
        r#"{{"id":{id},"name":"n{id}","at":"2024-05-01T10:00:00.123456Z","tags":["a","b"],"user":{{"age":{id}}}}}"#
    )
}

fn cause(d: &Decoded, i: usize) -> String {
    d.rejected
        .iter()
        .find(|(j, _)| *j == i)
        .map(|(_, e)| e.0.clone())
        .unwrap_or_default()
}

#[test]
fn decodes_into_the_mapped_columns() {
    let mut dec = decoder(Compat::Backward);
    let values: Vec<_> = (0..5).map(|i| Some(framed(1, &record(i)))).collect();
    let d = dec.decode(&buffer(&values)).unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    assert_eq!(d.batch.num_rows(), 5);
    let ids: Vec<_> = d
        .batch
        .column_by_name("id")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    assert_eq!(ids, [0, 1, 2, 3, 4]);
    let at = d.batch.column_by_name("at").unwrap();
    assert_eq!(
        at.data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(
        at.as_primitive::<TimestampMicrosecondType>().value(0),
        1_714_557_600_123_456
    );
    let user = d.batch.column_by_name("user").unwrap().as_struct();
    assert_eq!(user.column(0).as_primitive::<Int64Type>().value(3), 3);
    assert_eq!(dec.reader_schema_id(), Some(1));
}

#[test]
fn bad_records_are_rejected_with_the_cause() {
    let mut dec = decoder(Compat::Backward);
    let values = vec![
        Some(framed(1, &record(0))),
        None,
        Some(record(1).into_bytes()),
        Some(vec![0, 0, 0]),
        Some(framed(99, &record(2))),
        Some(framed(1, r#"{"id":"not a number"}"#)),
        Some(framed(1, "{\"id\":")),
        Some(framed(4, &record(3))),
        Some(framed(1, &record(4))),
        Some(framed(1, "")),
    ];
    let d = dec.decode(&buffer(&values)).unwrap();
    let rejected: Vec<usize> = d.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(rejected, [1, 2, 3, 4, 5, 6, 7, 9]);
    assert_eq!(d.batch.num_rows(), 2);
    assert!(cause(&d, 1).contains("tombstone"));
    assert!(cause(&d, 2).contains("magic byte 0x7b"), "{}", cause(&d, 2));
    assert!(cause(&d, 3).contains("too short"));
    assert!(
        cause(&d, 4).contains("unknown schema id 99"),
        "{}",
        cause(&d, 4)
    );
    assert!(
        cause(&d, 5).contains("JSON Schema id 1"),
        "{}",
        cause(&d, 5)
    );
    assert!(
        cause(&d, 6).contains("JSON Schema id 1"),
        "{}",
        cause(&d, 6)
    );
    assert!(
        cause(&d, 7).contains("AVRO schema, not JSON Schema"),
        "{}",
        cause(&d, 7)
    );
    assert!(cause(&d, 9).contains("no JSON"), "{}", cause(&d, 9));
    let ids = d
        .batch
        .column_by_name("id")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(ids.values().to_vec(), [0, 4]);
}

#[test]
fn a_newer_compatible_schema_becomes_the_output_and_a_breaking_one_is_rejected() {
    let mut dec = decoder(Compat::Backward);
    let d = dec.decode(&buffer(&[Some(framed(1, &record(0)))])).unwrap();
    assert!(d.batch.schema().field_with_name("email").is_err());
    let v2 = r#"{"id":7,"email":"a@b"}"#;
    let d = dec
        .decode(&buffer(&[
            Some(framed(1, &record(1))),
            Some(framed(2, v2)),
            Some(framed(3, r#"{"id":"x"}"#)),
        ]))
        .unwrap();
    assert_eq!(dec.reader_schema_id(), Some(2));
    assert_eq!(d.batch.num_rows(), 2);
    let email = d.batch.column_by_name("email").unwrap().as_string::<i32>();
    assert!(email.is_null(0));
    assert_eq!(email.value(1), "a@b");
    assert!(cause(&d, 2).contains("schema id 3"), "{}", cause(&d, 2));
    assert!(cause(&d, 2).contains("'id'"), "{}", cause(&d, 2));

    // FORWARD keeps the first schema: newer fields are not written.
    let mut forward = decoder(Compat::Forward);
    let d = forward
        .decode(&buffer(&[Some(framed(1, &record(1))), Some(framed(2, v2))]))
        .unwrap();
    assert_eq!(forward.reader_schema_id(), Some(1));
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    assert!(d.batch.schema().field_with_name("email").is_err());
}

#[test]
fn references_resolve_through_the_source() {
    struct WithRefs;
    impl SchemaSource for WithRefs {
        fn schema_by_id(&self, id: u32) -> Result<Arc<RegisteredSchema>, RegistryError> {
            Ok(Arc::new(RegisteredSchema {
                id,
                schema: r#"{"type":"object","properties":{"id":{"type":"integer"},
                    "addr":{"$ref":"address.json"}}}"#
                    .into(),
                schema_type: "JSON".into(),
                references: vec![SchemaReference {
                    name: "address.json".into(),
                    subject: "address".into(),
                    version: 1,
                }],
            }))
        }
        fn referenced(
            &self,
            _of: u32,
            r: &SchemaReference,
        ) -> Result<Arc<RegisteredSchema>, RegistryError> {
            assert_eq!((r.subject.as_str(), r.version), ("address", 1));
            Ok(Arc::new(RegisteredSchema {
                id: 50,
                schema: r#"{"type":"object","properties":{"city":{"type":"string"}}}"#.into(),
                schema_type: "JSON".into(),
                references: vec![],
            }))
        }
    }
    let mut dec = JsonSchemaDecoder::new("t".into(), Arc::new(WithRefs), Compat::Backward, 4);
    let d = dec
        .decode(&buffer(&[Some(framed(
            5,
            r#"{"id":1,"addr":{"city":"Gent"}}"#,
        ))]))
        .unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let addr = d.batch.column_by_name("addr").unwrap().as_struct();
    assert_eq!(addr.column(0).as_string::<i32>().value(0), "Gent");
    // Without a way to resolve them (static schemas), the records are rejected with the cause.
    let source = StaticSchemas::new();
    let mut dec = JsonSchemaDecoder::new("t".into(), Arc::new(source), Compat::Backward, 4);
    let d = dec.decode(&buffer(&[Some(framed(5, "{}"))])).unwrap();
    assert_eq!(d.rejected.len(), 1);
}

#[test]
fn dates_and_maps_decode() {
    let schema = r#"{"type":"object","properties":{"day":{"type":"string","format":"date"},
        "props":{"type":"object","additionalProperties":{"type":"number"}}}}"#;
    let source = StaticSchemas::new().with_typed(1, "JSON", schema);
    let mut dec = JsonSchemaDecoder::new("t".into(), Arc::new(source), Compat::Backward, 4);
    let d = dec
        .decode(&buffer(&[Some(framed(
            1,
            r#"{"day":"2024-05-01","props":{"x":1.5,"y":2}}"#,
        ))]))
        .unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let day = d.batch.column_by_name("day").unwrap();
    assert_eq!(
        day.as_primitive::<arrow::datatypes::Date32Type>().value(0),
        19844
    );
    let props = d.batch.column_by_name("props").unwrap().as_map();
    assert_eq!(props.value(0).len(), 2);
}
