//! The direct decoder against arrow-json: whenever it returns a batch, arrow-json decodes the same
//! records into an equal batch; what it gives up on, arrow-json is left to decide.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::json::reader::ReaderBuilder;
use arrow::record_batch::RecordBatch;

use super::DirectDecoder;
use crate::decode::sample::{clickstream_event, clickstream_schema};
use crate::decode::{RecordBuffer, RecordError};

fn value_of(buffer: &RecordBuffer, i: usize) -> Result<&[u8], RecordError> {
    match buffer.value(i) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(RecordError("no value".into())),
    }
}

fn buffer_of(values: &[&str]) -> RecordBuffer {
    let mut buffer = RecordBuffer::new(false, false);
    for (i, v) in values.iter().enumerate() {
        buffer.push(i as i64, 0, None, Some(v.as_bytes()), Vec::new);
    }
    buffer
}

/// arrow-json's decoder in declared mode (as `JsonDecoder` builds it), every record together;
/// `None` if any record fails.
fn arrow_json(schema: &SchemaRef, values: &[&str]) -> Option<RecordBatch> {
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(values.len().max(1))
        .build_decoder()
        .unwrap();
    for v in values {
        decoder.decode(v.as_bytes()).ok()?;
        decoder.decode(b" ").ok()?;
        if decoder.has_partial_record() {
            return None;
        }
    }
    if decoder.len() != values.len() {
        return None;
    }
    decoder.flush().ok()?
}

fn direct(schema: &SchemaRef, values: &[&str]) -> Option<RecordBatch> {
    let mut decoder = DirectDecoder::new(schema, false).expect("a supported schema");
    let decoded = decoder.decode(&buffer_of(values), value_of)?;
    assert!(decoded.rejected.is_empty());
    Some(decoded.batch)
}

/// Both decoders give the same batch.
#[track_caller]
fn same(schema: &SchemaRef, values: &[&str]) {
    let expected = arrow_json(schema, values).expect("arrow-json decodes these");
    let got = direct(schema, values).expect("the direct decoder decodes these");
    assert_eq!(got, expected);
}

/// The direct decoder gives up on these records (and arrow-json decides).
#[track_caller]
fn gives_up(schema: &SchemaRef, values: &[&str]) {
    assert!(direct(schema, values).is_none(), "{values:?}");
}

fn nested_schema() -> SchemaRef {
    let point = Fields::from(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("label", DataType::Utf8, true),
    ]);
    Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("i", DataType::Int64, true),
        Field::new("n", DataType::Int32, true),
        Field::new("f", DataType::Float64, true),
        Field::new("g", DataType::Float32, true),
        Field::new("b", DataType::Boolean, true),
        Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("u", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("p", DataType::Struct(point.clone()), true),
        Field::new_list("tags", Field::new_list_field(DataType::Utf8, true), true),
        Field::new_list(
            "points",
            Field::new_list_field(DataType::Struct(point), true),
            true,
        ),
    ]))
}

#[test]
fn clickstream_events_decode_as_arrow_json_decodes_them() {
    let events: Vec<String> = (0..3000).map(clickstream_event).collect();
    let values: Vec<&str> = events.iter().map(String::as_str).collect();
    same(&clickstream_schema(), &values);
}

#[test]
fn every_type_escapes_nulls_and_missing_fields() {
    let schema = nested_schema();
    same(
        &schema,
        &[
            r#"{"s":"plain","i":-42,"n":7,"f":1.5e3,"g":0.1,"b":true,"t":"2026-12-02T10:11:12.345Z","u":1700000000123456,"p":{"x":-0,"label":"a"},"tags":["x","y"],"points":[{"x":1},{"label":"q"}]}"#,
            r#"{"s":"tab\tquote\"slash\/back\\ nl\n \u00e9 \ud83d\ude00 \u0000","i":0,"f":-0.0,"g":3,"b":false}"#,
            r#"  { "p" : null , "tags" : [ ] , "s" : null , "i" : null , "t" : "2026-01-01T00:00:00+02:00" }  "#,
            r#"{}"#,
            r#"{"points":[null,{"x":2.25,"label":null}],"tags":[null,"é"],"p":{}}"#,
            r#"{"u":"2026-03-04 05:06:07","t":1700000000000,"f":12345678901234567890,"n":-2147483648}"#,
            r#"{"b":null,"g":null,"n":null,"points":null,"tags":null,"t":null,"u":null,"f":1E-7}"#,
            "{\"s\":\"raw\tcontrol\u{1}\",\"i\":-9223372036854775808,\"n\":2147483647}",
        ],
    );
}

#[test]
fn fields_the_schema_does_not_name_are_checked_and_skipped() {
    same(
        &nested_schema(),
        &[
            r#"{"extra":{"deep":[1,2.5e-3,-7,{"k":"v\"\u0041"}],"e":{}},"s":"kept","more":[],"z":null,"t2":true,"f2":false}"#,
            r#"{"i":3,"unknown":"x\\y"}"#,
            r#"{"p":{"x":1,"other":[[[]]]},"tags":["a"]}"#,
        ],
    );
}

#[test]
fn fields_in_any_order_across_records() {
    same(
        &nested_schema(),
        &[
            r#"{"s":"a","i":1,"b":true}"#,
            r#"{"b":false,"i":2,"s":"b"}"#,
            r#"{"i":3}"#,
            r#"{"b":true,"s":"c"}"#,
        ],
    );
}

#[test]
fn names_that_prefix_others_or_need_escapes_are_matched_exactly() {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("idx", DataType::Int64, true),
        Field::new("i", DataType::Int64, true),
        Field::new("tab\there", DataType::Utf8, true),
    ]));
    same(
        &schema,
        &[
            r#"{"id":1,"idx":2,"i":3}"#,
            r#"{"idx":4,"i":5,"id":6}"#,
            r#"{"i":7,"id":8,"idx":9,"idxy":10}"#,
            r#"{"id" :11, "idx" : 12}"#,
        ],
    );
    // A name JSON must escape is not matched from the guess: escaped, the member is given
    // up on; raw (a control character in a string, which arrow-json accepts too) it is found
    // by name.
    gives_up(&schema, &[r#"{"tab\there":"x"}"#]);
    same(&schema, &["{\"tab\there\":\"x\"}"]);
}

#[test]
fn gives_up_on_what_arrow_json_must_decide() {
    let schema = nested_schema();
    let good = r#"{"s":"ok"}"#;
    for bad in [
        r#"{"s":1}"#,                    // a number in a string column
        r#"{"s":true}"#,                 // a boolean in a string column
        r#"{"i":"1"}"#,                  // a string in an integer column
        r#"{"i":1.0}"#,                  // a fraction for an integer
        r#"{"i":1e2}"#,                  // an exponent for an integer
        r#"{"n":2147483648}"#,           // out of Int32's range
        r#"{"i":99999999999999999999}"#, // out of Int64's range
        r#"{"f":"1.5"}"#,                // a string in a float column
        r#"{"b":"true"}"#,               // a string in a boolean column
        r#"{"t":"yesterday"}"#,          // not a timestamp
        r#"{"t":1.5}"#,                  // a fraction for a timestamp
        r#"{"p":[1]}"#,                  // an array for a struct
        r#"{"tags":"a"}"#,               // a string for a list
        r#"{"s":"a","s":"b"}"#,          // a duplicate field
        r#"{"\u0073":"escaped name"}"#,  // an escaped field name
        r#"{"s":"\ud800"}"#,             // a lone surrogate
        r#"{"s":"\x"}"#,                 // an unknown escape
        r#"{"s":"a"} {"s":"b"}"#,        // two values
        r#"{"s":"a"}x"#,                 // data after the object
        r#"{"s":"a""#,                   // truncated
        r#"{"s":"a",}"#,                 // a trailing comma
        r#"{"i":01}"#,                   // a leading zero
        r#"{"i":-}"#,                    // a sign alone
        r#"{"i":1.}"#,                   // no digits after the point
        r#"{"x":tru}"#,                  // a broken literal
        r#"[1,2]"#,                      // not an object
        r#""text""#,                     // not an object
        r#"null"#,                       // not an object
    ] {
        gives_up(&schema, &[good, bad]);
    }
}

#[test]
fn invalid_utf8_is_given_up_on() {
    let mut buffer = RecordBuffer::new(false, false);
    buffer.push(0, 0, None, Some(b"{\"s\":\"\xff\"}"), Vec::new);
    let mut decoder = DirectDecoder::new(&nested_schema(), false).unwrap();
    assert!(decoder.decode(&buffer, value_of).is_none());
}

#[test]
fn a_buffer_after_one_given_up_on_starts_afresh() {
    let schema = nested_schema();
    let mut decoder = DirectDecoder::new(&schema, false).unwrap();
    let broken = buffer_of(&[r#"{"s":"a","p":{"x":1}}"#, r#"{"s":2}"#]);
    assert!(decoder.decode(&broken, value_of).is_none());
    let values = [r#"{"s":"b","tags":["t"]}"#, r#"{"p":{"label":"l"}}"#];
    let decoded = decoder.decode(&buffer_of(&values), value_of).unwrap();
    assert_eq!(decoded.batch, arrow_json(&schema, &values).unwrap());
}

#[test]
fn tombstones_and_empty_values_are_rejected_in_place() {
    let schema = nested_schema();
    let mut buffer = buffer_of(&[r#"{"s":"a"}"#]);
    buffer.push(1, 0, None, None, Vec::new);
    buffer.push(2, 0, None, Some(b""), Vec::new);
    buffer.push(3, 0, None, Some(br#"{"s":"b"}"#), Vec::new);
    let mut decoder = DirectDecoder::new(&schema, false).unwrap();
    let decoded = decoder.decode(&buffer, value_of).unwrap();
    let rejected: Vec<usize> = decoded.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(rejected, [1, 2]);
    let expected = arrow_json(&schema, &[r#"{"s":"a"}"#, r#"{"s":"b"}"#]).unwrap();
    assert_eq!(decoded.batch, expected);
}

#[test]
fn schemas_outside_the_subset_are_left_to_arrow_json() {
    let unsupported = [
        Field::new("d", DataType::Decimal128(10, 2), true),
        Field::new("s", DataType::Utf8, false),
        Field::new("m", DataType::LargeUtf8, true),
        Field::new("e", DataType::Struct(Fields::empty()), true),
        Field::new_list("l", Field::new_list_field(DataType::Utf8, false), true),
    ];
    for field in unsupported {
        let schema = Arc::new(Schema::new(vec![field.clone()]));
        assert!(DirectDecoder::new(&schema, false).is_none(), "{field:?}");
    }
}

/// Clickstream events with one byte changed, inserted or removed: whatever the direct decoder
/// accepts, arrow-json accepts and decodes alike.
#[test]
fn mutated_events_are_decoded_alike_or_given_up_on() {
    let schema = clickstream_schema();
    let mut next = xorshift(0x2545_F491_4F6C_DD1D);
    let alphabet = br#"{}[]:," \0aeft1-.e+nul/u"#;
    let (mut decoded, mut given_up) = (0, 0);
    for i in 0..3000u64 {
        let mut bytes = clickstream_event(i).into_bytes();
        let at = (next() % bytes.len() as u64) as usize;
        let byte = alphabet[(next() % alphabet.len() as u64) as usize];
        match next() % 3 {
            0 => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ => {
                bytes.remove(at);
            }
        }
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        match direct(&schema, &[&text]) {
            Some(batch) => {
                let expected = arrow_json(&schema, &[&text]);
                assert_eq!(Some(batch), expected, "{text}");
                decoded += 1;
            }
            None => given_up += 1,
        }
    }
    // Both outcomes happen, or the test would not test anything.
    assert!(
        decoded > 100 && given_up > 100,
        "{decoded} decoded, {given_up} given up"
    );
}

#[test]
fn strict_gives_up_on_fields_the_schema_lacks_at_any_depth() {
    let schema = nested_schema();
    let mut strict = DirectDecoder::new(&schema, true).unwrap();
    let known = [r#"{"s":"a","p":{"x":1}}"#];
    let decoded = strict.decode(&buffer_of(&known), value_of).unwrap();
    assert_eq!(decoded.batch, arrow_json(&schema, &known).unwrap());
    for unknown in [r#"{"s":"a","new":1}"#, r#"{"p":{"x":1,"new":2}}"#] {
        assert!(strict.decode(&buffer_of(&[unknown]), value_of).is_none());
    }
}

/// A deterministic stream of pseudo-random numbers (xorshift64) for the property tests.
pub(super) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
