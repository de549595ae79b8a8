// Avro schema evolution: several writer schemas resolved into one output (reader) schema, and
// the compatibility modes. Input bytes are written by the `apache-avro` crate.

use crate::common::{
    avro_datum, buffer, cause, confluent, i64s, rejected, schema, static_decoder, strings,
};
use apache_avro::types::Value as AV;
use arrow::datatypes::DataType;
use streamx::decode::avro::{compatibility, AvroDecoder, AvroDecoderOptions, AvroFraming, Compat};
use streamx::decode::ValueDecoder;

pub(crate) const V1: &str = r#"{"type":"record","name":"User","fields":[
  {"name":"id","type":"int"},{"name":"name","type":"string"},{"name":"legacy","type":"string"}]}"#;
/// v2: id widened to long, legacy removed, optional email added.
pub(crate) const V2: &str = r#"{"type":"record","name":"User","fields":[
  {"name":"id","type":"long"},{"name":"name","type":"string"},
  {"name":"email","type":["null","string"],"default":null}]}"#;
/// v3: a required field without default (not backward compatible).
pub(crate) const V3: &str = r#"{"type":"record","name":"User","fields":[
  {"name":"id","type":"long"},{"name":"name","type":"string"},
  {"name":"email","type":["null","string"],"default":null},{"name":"country","type":"string"}]}"#;

pub(crate) fn v1(id: i32) -> Vec<u8> {
    let rec = AV::Record(vec![
        ("id".into(), AV::Int(id)),
        ("name".into(), AV::String(format!("v1-{id}"))),
        ("legacy".into(), AV::String("old".into())),
    ]);
    confluent(1, &avro_datum(&schema(V1), rec))
}

pub(crate) fn v2(id: i64, email: Option<&str>) -> Vec<u8> {
    let email = match email {
        Some(e) => AV::Union(1, Box::new(AV::String(e.into()))),
        None => AV::Union(0, Box::new(AV::Null)),
    };
    let rec = AV::Record(vec![
        ("id".into(), AV::Long(id)),
        ("name".into(), AV::String(format!("v2-{id}"))),
        ("email".into(), email),
    ]);
    confluent(2, &avro_datum(&schema(V2), rec))
}

pub(crate) fn v3(id: i64) -> Vec<u8> {
    let rec = AV::Record(vec![
        ("id".into(), AV::Long(id)),
        ("name".into(), AV::String(format!("v3-{id}"))),
        ("email".into(), AV::Union(0, Box::new(AV::Null))),
        ("country".into(), AV::String("NL".into())),
    ]);
    confluent(3, &avro_datum(&schema(V3), rec))
}

fn evolving(compat: Compat) -> AvroDecoder {
    let options = AvroDecoderOptions {
        compat,
        ..AvroDecoderOptions::default()
    };
    static_decoder(&[(1, V1), (2, V2), (3, V3)], options)
}

#[test]
fn interleaved_schema_versions_decode_into_the_newest() {
    let mut dec = evolving(Compat::Backward);
    let values = vec![
        Some(v1(1)),
        Some(v2(2, Some("b@x.org"))),
        Some(v1(3)),
        Some(v2(4, None)),
        Some(v2(5, Some("é@x.org"))),
        Some(v1(6)),
    ];
    let d = dec.decode(&buffer(&values)).unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let b = &d.batch;
    let names: Vec<String> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        vec!["id", "name", "email"],
        "v2 is the output schema; legacy dropped"
    );
    assert_eq!(
        b.schema().field(0).data_type(),
        &DataType::Int64,
        "int widened to long"
    );
    assert_eq!(i64s(b, "id"), (1..=6).map(Some).collect::<Vec<_>>());
    assert_eq!(
        strings(b, "name"),
        ["v1-1", "v2-2", "v1-3", "v2-4", "v2-5", "v1-6"]
            .map(|s| Some(s.to_string()))
            .to_vec()
    );
    let email = [None, Some("b@x.org"), None, None, Some("é@x.org"), None];
    assert_eq!(
        strings(b, "email"),
        email.map(|e| e.map(str::to_string)).to_vec()
    );
    assert_eq!(dec.reader_schema_id(), Some(2));
    assert_eq!(
        dec.stats().slow_buffers,
        0,
        "schema switches stay on the fast path"
    );
}

#[test]
fn the_output_schema_moves_to_a_newer_compatible_schema() {
    let mut dec = evolving(Compat::Backward);
    let d = dec.decode(&buffer(&[Some(v1(1))])).unwrap();
    assert_eq!(d.batch.schema().fields().len(), 3);
    assert_eq!(d.batch.schema().field(0).data_type(), &DataType::Int32);
    assert_eq!(strings(&d.batch, "legacy"), vec![Some("old".to_string())]);
    // v2 appears: it can read v1 (BACKWARD), so it becomes the output schema.
    let d = dec
        .decode(&buffer(&[Some(v1(2)), Some(v2(3, Some("c")))]))
        .unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    assert_eq!(dec.reader_schema_id(), Some(2));
    assert_eq!(d.batch.schema(), dec.schema().unwrap());
    assert_eq!(i64s(&d.batch, "id"), vec![Some(2), Some(3)]);
    // v3 (required field without default) is not BACKWARD compatible: its records are rejected.
    let d = dec
        .decode(&buffer(&[Some(v3(4)), Some(v2(5, None)), Some(v1(6))]))
        .unwrap();
    assert_eq!(rejected(&d), vec![0]);
    let c = cause(&d, 0);
    assert!(
        c.contains("schema id 3 is not BACKWARD-compatible") && c.contains("'country'"),
        "{c}"
    );
    assert_eq!(i64s(&d.batch, "id"), vec![Some(5), Some(6)]);
    assert_eq!(dec.reader_schema_id(), Some(2));
}

#[test]
fn compatibility_modes_decide_what_is_accepted() {
    // NONE: the newest schema becomes the output; older records it cannot read are rejected.
    let mut dec = evolving(Compat::None);
    let d = dec
        .decode(&buffer(&[Some(v2(1, None)), Some(v3(2)), Some(v1(3))]))
        .unwrap();
    assert_eq!(dec.reader_schema_id(), Some(3));
    assert_eq!(rejected(&d), vec![0, 2]);
    assert!(
        cause(&d, 0).contains("cannot be read as the output schema"),
        "{}",
        cause(&d, 0)
    );
    assert_eq!(i64s(&d.batch, "id"), vec![Some(2)]);

    // FORWARD: the oldest schema is the output; newer ones must be readable by it.
    let mut dec = evolving(Compat::Forward);
    let d = dec
        .decode(&buffer(&[Some(v2(1, Some("a"))), Some(v3(2))]))
        .unwrap();
    assert_eq!(dec.reader_schema_id(), Some(2));
    assert!(
        d.rejected.is_empty(),
        "v2 can read v3 (country is skipped): {:?}",
        d.rejected
    );
    assert_eq!(d.batch.schema().fields().len(), 3);
    let d = dec
        .decode(&buffer(&[Some(v1(3)), Some(v2(4, None))]))
        .unwrap();
    assert_eq!(rejected(&d), vec![0]);
    assert!(
        cause(&d, 0).contains("not FORWARD-compatible"),
        "{}",
        cause(&d, 0)
    );

    // FULL: v1 -> v2 is not full (v1 cannot read v2: legacy has no default).
    let mut dec = evolving(Compat::Full);
    let d = dec
        .decode(&buffer(&[Some(v1(1)), Some(v2(2, None))]))
        .unwrap();
    assert_eq!(
        dec.reader_schema_id(),
        Some(2),
        "the newest of the first buffer"
    );
    assert_eq!(rejected(&d), vec![0]);
    assert!(
        cause(&d, 0).contains("not FULL-compatible"),
        "{}",
        cause(&d, 0)
    );

    let s = |j: &str| arrow_avro::schema::AvroSchema::new(j.to_string());
    assert!(compatibility(&s(V1), &s(V2), Compat::Backward).is_ok());
    assert!(compatibility(&s(V1), &s(V2), Compat::Forward).is_err());
    assert!(compatibility(&s(V2), &s(V3), Compat::Forward).is_ok());
    assert!(compatibility(&s(V2), &s(V3), Compat::Backward).is_err());
    assert!(compatibility(&s(V2), &s(V3), Compat::None).is_ok());
}

#[test]
fn a_configured_reader_schema_fixes_the_output() {
    let options = AvroDecoderOptions {
        reader_schema: Some(V2.to_string()),
        ..AvroDecoderOptions::default()
    };
    let mut dec = static_decoder(&[(1, V1), (2, V2), (3, V3)], options.clone());
    let fixed = dec.schema().unwrap();
    let d = dec
        .decode(&buffer(&[Some(v1(1)), Some(v3(2)), Some(v2(3, Some("z")))]))
        .unwrap();
    assert_eq!(d.batch.schema(), fixed);
    assert!(
        d.rejected.is_empty(),
        "v2 reads v1 (legacy skipped) and v3 (country skipped): {:?}",
        d.rejected
    );
    assert_eq!(i64s(&d.batch, "id"), vec![Some(1), Some(2), Some(3)]);
    assert_eq!(
        strings(&d.batch, "email"),
        vec![None, None, Some("z".to_string())]
    );
    // Reader v3 cannot read v1 or v2 data: country has no default.
    let v3_reader = AvroDecoderOptions {
        reader_schema: Some(V3.to_string()),
        ..AvroDecoderOptions::default()
    };
    let mut dec = static_decoder(&[(1, V1), (2, V2), (3, V3)], v3_reader);
    let d = dec
        .decode(&buffer(&[Some(v1(1)), Some(v3(2)), Some(v2(3, None))]))
        .unwrap();
    assert_eq!(rejected(&d), vec![0, 2]);
    assert!(
        cause(&d, 2).contains("configured reader schema") && cause(&d, 2).contains("country"),
        "{}",
        cause(&d, 2)
    );
    assert_eq!(i64s(&d.batch, "id"), vec![Some(2)]);
    // Plain mode with a reader schema: v1 data read as v2.
    let plain_v1 = AV::Record(vec![
        ("id".into(), AV::Int(9)),
        ("name".into(), AV::String("p".into())),
        ("legacy".into(), AV::String("x".into())),
    ]);
    let mut dec = AvroDecoder::new(AvroFraming::Plain(V1.to_string()), options).unwrap();
    let d = dec
        .decode(&buffer(&[Some(avro_datum(&schema(V1), plain_v1))]))
        .unwrap();
    assert_eq!(i64s(&d.batch, "id"), vec![Some(9)]);
    assert_eq!(strings(&d.batch, "email"), vec![None]);
    // A plain schema the reader cannot read is refused up front.
    let options = AvroDecoderOptions {
        reader_schema: Some(V3.to_string()),
        compat: Compat::None,
        ..AvroDecoderOptions::default()
    };
    let err = AvroDecoder::plain(V1, options).unwrap_err();
    assert!(err.to_string().contains("country"), "{err}");
}

#[test]
fn bad_records_among_interleaved_versions() {
    let mut dec = evolving(Compat::Backward);
    let mut bad_utf8 = v2(4, Some("x"));
    let name_start = 5 + 1 + 1; // header, id varint, name length varint
    bad_utf8[name_start] = 0xff;
    let truncated = v1(3)[..8].to_vec();
    let mut trailing = v1(5);
    trailing.extend_from_slice(b"junk");
    let values = vec![
        Some(v1(1)),
        Some(v2(2, Some("a"))),
        Some(truncated),
        Some(bad_utf8),
        Some(trailing),
        Some(v2(6, None)),
        Some(v1(7)),
    ];
    let d = dec.decode(&buffer(&values)).unwrap();
    assert_eq!(rejected(&d), vec![2, 3, 4], "{:?}", d.rejected);
    assert!(
        cause(&d, 2).contains("truncated") && cause(&d, 2).contains("schema id 1"),
        "{}",
        cause(&d, 2)
    );
    assert!(
        cause(&d, 3).contains("invalid Avro data") && cause(&d, 3).contains("schema id 2"),
        "{}",
        cause(&d, 3)
    );
    assert!(
        cause(&d, 4).contains("4 unexpected bytes"),
        "{}",
        cause(&d, 4)
    );
    assert_eq!(
        i64s(&d.batch, "id"),
        vec![Some(1), Some(2), Some(6), Some(7)]
    );
    let names = ["v1-1", "v2-2", "v2-6", "v1-7"]
        .map(|s| Some(s.to_string()))
        .to_vec();
    assert_eq!(strings(&d.batch, "name"), names);
    assert_eq!(dec.stats().slow_buffers, 1);
}
