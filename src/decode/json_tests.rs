//! Tests of [`super::JsonDecoder`].

use super::*;
use crate::config::formats::JsonEvolution;
use arrow::array::TimestampMillisecondArray;
use arrow::array::{Array, AsArray, BooleanArray, Float64Array, StringArray};
use arrow::datatypes::{DataType, Field, Fields, Int64Type, TimeUnit};

fn buffer(values: &[Option<&str>]) -> RecordBuffer {
    let mut b = RecordBuffer::new(false, false);
    for (i, v) in values.iter().enumerate() {
        b.push(i as i64, 0, None, v.map(str::as_bytes), Vec::new);
    }
    b
}

fn json(values: &[&str]) -> RecordBuffer {
    buffer(&values.iter().map(|v| Some(*v)).collect::<Vec<_>>())
}

fn ab_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
    ]))
}

fn rejected(d: &Decoded) -> Vec<usize> {
    d.rejected.iter().map(|(i, _)| *i).collect()
}

fn col_i64(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let c = batch.column_by_name(name).unwrap();
    c.as_primitive::<Int64Type>().iter().collect()
}

fn col_str(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let c = batch.column_by_name(name).unwrap();
    let c = c.as_any().downcast_ref::<StringArray>().unwrap();
    c.iter().map(|v| v.map(str::to_string)).collect()
}

#[test]
fn declared_schema_types() {
    let inner = Fields::from(vec![
        Field::new("x", DataType::Int64, true),
        Field::new("y", DataType::Utf8, true),
    ]);
    let utc = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("n", DataType::Struct(inner), true),
        Field::new_list("l", Field::new_list_field(DataType::Int64, true), true),
        Field::new("ts", utc, true),
        Field::new("f", DataType::Float64, true),
        Field::new("b", DataType::Boolean, true),
    ]));
    let b = json(&[
        r#"{"i":1,"s":"plain","n":{"x":7,"y":"in"},"l":[1,2,3],"ts":"2024-01-01T00:00:00Z","f":1.5,"b":true}"#,
        r#"{"i":null,"s":"h\u00e9llo ✓ 日本","n":null,"l":[],"ts":null,"b":false,"extra":{"z":1}}"#,
        r#"  {"s":"😀","ts":"2024-01-01T00:00:01.250Z","l":[null,4]}  "#,
    ]);
    let mut dec = JsonDecoder::new("t".into(), Some(schema.clone()), 16);
    let d = dec.decode(&b).unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let batch = &d.batch;
    assert_eq!(batch.schema(), schema);
    assert_eq!(batch.num_rows(), 3);
    assert_eq!(col_i64(batch, "i"), vec![Some(1), None, None]);
    let s = vec![
        Some("plain".to_string()),
        Some("héllo ✓ 日本".to_string()),
        Some("😀".to_string()),
    ];
    assert_eq!(col_str(batch, "s"), s);
    let n = batch.column_by_name("n").unwrap().as_struct();
    assert!(n.is_valid(0) && n.is_null(1) && n.is_null(2));
    assert_eq!(n.column(0).as_primitive::<Int64Type>().value(0), 7);
    assert_eq!(n.column(1).as_string::<i32>().value(0), "in");
    let l = batch.column_by_name("l").unwrap().as_list::<i32>();
    assert_eq!(l.value_length(0), 3);
    assert_eq!(l.value_length(1), 0);
    assert!(l.is_valid(2) && l.value(2).is_null(0));
    assert_eq!(l.value(2).as_primitive::<Int64Type>().value(1), 4);
    let ts = batch.column_by_name("ts").unwrap();
    let ts = ts
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .unwrap();
    let expected = vec![Some(1_704_067_200_000), None, Some(1_704_067_201_250)];
    assert_eq!(ts.iter().collect::<Vec<_>>(), expected);
    let f = batch.column_by_name("f").unwrap();
    let f = f.as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!(f.iter().collect::<Vec<_>>(), vec![Some(1.5), None, None]);
    let bo = batch.column_by_name("b").unwrap();
    let bo = bo.as_any().downcast_ref::<BooleanArray>().unwrap();
    assert_eq!(
        bo.iter().collect::<Vec<_>>(),
        vec![Some(true), Some(false), None]
    );
}

#[test]
fn bad_record_in_the_middle_is_rejected_alone() {
    let bad = [
        (r#"{"a":1,"b":}"#, "syntax error"),
        (r#"{"a":1"#, "truncated"),
        (r#"{"a":"abc","b":"x"}"#, "wrong type"),
        (r#"{"a":{"x":1}}"#, "object for an integer"),
        (r#"[{"a":1}]"#, "top-level array"),
        (r#"42"#, "top-level number"),
        (r#""str""#, "top-level string"),
        (r#"true"#, "top-level boolean"),
        (r#"null"#, "top-level null"),
        (r#"{"a":1}{"a":2}"#, "two objects"),
        (r#"{"a":1} x"#, "trailing garbage"),
        ("   ", "whitespace only"),
        (r#"{"a":"#, "truncated mid value"),
        (r#"{"b":"unterminated}"#, "unterminated string"),
    ];
    let mut dec = JsonDecoder::new("t".into(), Some(ab_schema()), 4);
    for (value, what) in bad {
        let b = json(&[
            r#"{"a":0,"b":"x"}"#,
            value,
            r#"{"a":2}"#,
            r#"{"b":"y","a":3}"#,
        ]);
        let d = dec.decode(&b).unwrap();
        assert_eq!(rejected(&d), vec![1], "{what}: {:?}", d.rejected);
        assert!(!d.rejected[0].1 .0.is_empty());
        assert_eq!(
            col_i64(&d.batch, "a"),
            vec![Some(0), Some(2), Some(3)],
            "{what}"
        );
        let b_col = vec![Some("x".to_string()), None, Some("y".to_string())];
        assert_eq!(col_str(&d.batch, "b"), b_col);
        assert_eq!(d.accepted_indexes(b.len()), vec![0, 2, 3]);
    }
    // The decoder stays usable on the fast path.
    let d = dec.decode(&json(&[r#"{"a":5}"#])).unwrap();
    assert_eq!(col_i64(&d.batch, "a"), vec![Some(5)]);
}

#[test]
fn top_level_non_objects_are_rejected() {
    let mut dec = JsonDecoder::new("t".into(), Some(ab_schema()), 4);
    let d = dec
        .decode(&json(&["[1,2]", "7", r#""s""#, "null"]))
        .unwrap();
    assert_eq!(rejected(&d), vec![0, 1, 2, 3]);
    assert_eq!(d.batch.num_rows(), 0);
    assert!(
        d.rejected.iter().all(|(_, e)| e.0.contains("expected {")),
        "{:?}",
        d.rejected
    );
}

#[test]
fn tombstones_empty_and_many_bad_records() {
    let b = buffer(&[
        None,
        Some(r#"{"a":1}"#),
        Some(""),
        Some(r#"{"a":"#),
        Some(r#"{"a":4}"#),
        Some("nope"),
        Some(r#"{"a":6}"#),
    ]);
    let mut dec = JsonDecoder::new("t".into(), Some(ab_schema()), 2);
    let d = dec.decode(&b).unwrap();
    assert_eq!(rejected(&d), vec![0, 2, 3, 5]);
    assert_eq!(
        d.rejected[0].1,
        RecordError("null value (tombstone)".into())
    );
    assert_eq!(d.rejected[1].1, RecordError("empty value".into()));
    assert_eq!(d.rejected[2].1, RecordError("truncated JSON value".into()));
    assert_eq!(col_i64(&d.batch, "a"), vec![Some(1), Some(4), Some(6)]);
    // Only tombstones: no slow path needed, an empty batch of the schema.
    let d = dec.decode(&buffer(&[None])).unwrap();
    assert_eq!(d.batch.num_rows(), 0);
    assert_eq!(d.batch.schema(), ab_schema());
}

#[test]
fn buffers_larger_than_batch_records() {
    let values: Vec<String> = (0..50).map(|i| format!(r#"{{"a":{i}}}"#)).collect();
    let b = json(&values.iter().map(String::as_str).collect::<Vec<_>>());
    let mut dec = JsonDecoder::new("t".into(), Some(ab_schema()), 8);
    for _ in 0..2 {
        let d = dec.decode(&b).unwrap();
        assert!(d.rejected.is_empty());
        assert_eq!(
            col_i64(&d.batch, "a"),
            (0..50).map(Some).collect::<Vec<_>>()
        );
    }
}

#[test]
fn non_nullable_declared_field_missing_is_rejected() {
    let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
    let mut dec = JsonDecoder::new("t".into(), Some(schema), 4);
    let d = dec
        .decode(&json(&[r#"{"a":1}"#, r#"{"b":1}"#, r#"{"a":3}"#]))
        .unwrap();
    assert_eq!(rejected(&d), vec![1]);
    assert_eq!(col_i64(&d.batch, "a"), vec![Some(1), Some(3)]);
}

fn names(schema: &SchemaRef) -> Vec<&str> {
    schema.fields().iter().map(|f| f.name().as_str()).collect()
}

fn type_of(batch: &RecordBatch, name: &str) -> DataType {
    batch
        .schema()
        .field_with_name(name)
        .unwrap()
        .data_type()
        .clone()
}

fn evolving(evolution: JsonEvolution) -> (JsonDecoder, Arc<TopicSchema>) {
    let shared = Arc::new(TopicSchema::default());
    (
        JsonDecoder::shared("t".into(), shared.clone(), evolution, 16),
        shared,
    )
}

#[test]
fn infers_the_first_version_then_adds_new_columns() {
    let mut dec = JsonDecoder::new("t".into(), None, 16);
    assert!(dec.schema().is_none());
    let b = json(&[
        "not json",
        r#"{"id":1,"name":"a","tags":["x"],"dev":{"os":"ios"},"n":null}"#,
        r#"{"id":2,"score":1.5,"n":null,"tags":[]}"#,
        "[1]",
    ]);
    let d = dec.decode(&b).unwrap();
    assert_eq!(rejected(&d), vec![0, 3]);
    let schema = dec.schema().unwrap();
    let want = ["dev", "id", "n", "name", "score", "tags", "_rescued_data"];
    assert_eq!(names(&schema), want);
    let dev = Fields::from(vec![Field::new("os", DataType::Utf8, true)]);
    assert_eq!(schema.field(0).data_type(), &DataType::Struct(dev));
    assert_eq!(schema.field(1).data_type(), &DataType::Int64);
    assert_eq!(schema.field(2).data_type(), &DataType::Utf8, "no type yet");
    assert_eq!(schema.field(4).data_type(), &DataType::Float64);
    assert_eq!(col_i64(&d.batch, "id"), vec![Some(1), Some(2)]);
    // A new field adds a column; `n` gets its first real type; primitives still coerce into
    // Utf8 columns.
    let d = dec
        .decode(&json(&[r#"{"id":3,"n":5,"new":true,"name":false}"#]))
        .unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    assert_eq!(type_of(&d.batch, "n"), DataType::Int64);
    assert_eq!(col_i64(&d.batch, "n"), vec![Some(5)]);
    assert_eq!(type_of(&d.batch, "new"), DataType::Boolean);
    assert_eq!(col_str(&d.batch, "name"), vec![Some("false".into())]);
    assert_eq!(col_str(&d.batch, "_rescued_data"), vec![None]);
}

#[test]
fn sparse_first_record_loses_no_later_field() {
    let (mut dec, shared) = evolving(JsonEvolution::AddNewColumns);
    let first = r#"{"id":"s0","ts":"2024-01-01T00:00:00Z","tags":[],"referrer":null}"#;
    dec.decode(&json(&[first])).unwrap();
    let event = r#"{"id":"e1","ts":"2024-01-01T00:00:01Z","tags":["a"],"referrer":"x",
        "event_type":"click","user":{"id":"u1","tier":"gold"},"page":"/",
        "experiments":[{"id":"exp-36","variant":"C"}]}"#;
    let d = dec.decode(&json(&[event, event])).unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let want = [
        "event_type",
        "experiments",
        "id",
        "page",
        "referrer",
        "tags",
        "ts",
        "user",
        "_rescued_data",
    ];
    assert_eq!(names(&d.batch.schema()), want);
    assert_eq!(
        col_str(&d.batch, "event_type"),
        vec![Some("click".into()); 2]
    );
    assert_eq!(col_str(&d.batch, "_rescued_data"), vec![None, None]);
    assert_eq!(shared.version(), 2, "one new version for the buffer");
}

#[test]
fn empty_list_first_then_objects_takes_the_objects_type() {
    let (mut dec, _) = evolving(JsonEvolution::AddNewColumns);
    dec.decode(&json(&[r#"{"id":1,"experiments":[],"user":{}}"#]))
        .unwrap();
    let d = dec
        .decode(&json(&[
            r#"{"id":2,"experiments":[{"id":"exp-36","variant":"C"}],"user":{"id":"u"}}"#,
            r#"{"id":3,"experiments":[]}"#,
        ]))
        .unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let DataType::List(item) = type_of(&d.batch, "experiments") else {
        panic!("not a list");
    };
    assert!(matches!(item.data_type(), DataType::Struct(f) if f.len() == 2));
    assert!(matches!(type_of(&d.batch, "user"), DataType::Struct(f) if f.len() == 1));
    let l = d
        .batch
        .column_by_name("experiments")
        .unwrap()
        .as_list::<i32>();
    let first = l.value(0);
    let s = first.as_struct();
    assert_eq!(
        s.column_by_name("id").unwrap().as_string::<i32>().value(0),
        "exp-36"
    );
    assert_eq!(col_str(&d.batch, "_rescued_data"), vec![None, None]);
}

#[test]
fn a_typed_column_keeps_its_type_across_versions_and_a_stable_schema_makes_no_version() {
    let (mut dec, shared) = evolving(JsonEvolution::AddNewColumns);
    // Within one inference, mixed numbers widen as arrow-json infers them.
    dec.decode(&json(&[r#"{"a":1,"f":1}"#, r#"{"a":2,"f":1.5}"#]))
        .unwrap();
    assert_eq!(shared.version(), 1);
    // Between versions a typed column keeps its type (files already hold it); a value of
    // another type goes to the rescued-data column, the new field `b` adds a column.
    let d = dec
        .decode(&json(&[r#"{"a":2}"#, r#"{"a":"x","b":true,"f":2}"#]))
        .unwrap();
    assert_eq!(shared.version(), 2);
    assert_eq!(type_of(&d.batch, "a"), DataType::Int64);
    assert_eq!(type_of(&d.batch, "f"), DataType::Float64);
    assert_eq!(type_of(&d.batch, "b"), DataType::Boolean);
    let rescued = d.batch.column_by_name("_rescued_data").unwrap();
    assert_eq!(rescued.as_string::<i32>().value(1), r#"{"a":"x"}"#);
    for _ in 0..3 {
        dec.decode(&json(&[r#"{"a":3}"#, r#"{"a":null}"#])).unwrap();
    }
    assert_eq!(shared.version(), 2);
}

#[test]
fn interleaved_shapes_make_one_version_per_buffer() {
    let (mut dec, shared) = evolving(JsonEvolution::AddNewColumns);
    dec.decode(&json(&[r#"{"a":1}"#])).unwrap();
    let shapes: Vec<String> = (0..30)
        .map(|i| match i % 3 {
            0 => format!(r#"{{"a":{i}}}"#),
            1 => format!(r#"{{"a":{i},"b":"x{i}"}}"#),
            _ => format!(r#"{{"c":{{"d":{i}}},"a":{i}}}"#),
        })
        .collect();
    let b = json(&shapes.iter().map(String::as_str).collect::<Vec<_>>());
    let d = dec.decode(&b).unwrap();
    assert_eq!(shared.version(), 2);
    assert_eq!(d.batch.num_rows(), 30);
    assert_eq!(names(&d.batch.schema()), ["a", "b", "c", "_rescued_data"]);
    dec.decode(&b).unwrap();
    assert_eq!(shared.version(), 2);
}

#[test]
fn partitions_of_a_topic_merge_their_schemas_and_switch_to_the_newest() {
    let shared = Arc::new(TopicSchema::default());
    let evo = JsonEvolution::AddNewColumns;
    let mut p0 = JsonDecoder::shared("t".into(), shared.clone(), evo, 16);
    let d = p0.decode(&json(&[r#"{"id":1,"a":"x"}"#])).unwrap();
    assert_eq!(names(&d.batch.schema()), vec!["a", "id", "_rescued_data"]);
    let mut p1 = JsonDecoder::shared("t".into(), shared.clone(), evo, 16);
    let d = p1.decode(&json(&[r#"{"id":2,"b":5}"#])).unwrap();
    assert_eq!(
        names(&d.batch.schema()),
        vec!["a", "b", "id", "_rescued_data"]
    );
    assert_eq!(col_i64(&d.batch, "b"), vec![Some(5)]);
    assert_eq!(shared.version(), 2);
    // Partition 0 switches at its next buffer.
    let d = p0.decode(&json(&[r#"{"id":3,"a":"y"}"#])).unwrap();
    assert_eq!(d.batch.schema(), p1.schema().unwrap());
}

#[test]
fn a_value_that_fits_no_type_is_rescued_as_json() {
    let (mut dec, _) = evolving(JsonEvolution::AddNewColumns);
    dec.decode(&json(&[r#"{"s":{"k":1},"t":0}"#])).unwrap();
    let d = dec
        .decode(&json(&[r#"{"s":"text","t":1}"#, r#"{"t":2}"#]))
        .unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    assert_eq!(col_i64(&d.batch, "t"), vec![Some(1), Some(2)]);
    let rescued = col_str(&d.batch, "_rescued_data");
    assert_eq!(rescued, vec![Some(r#"{"s":"text"}"#.into()), None]);
    assert!(d.batch.column_by_name("s").unwrap().is_null(0));
}

#[test]
fn rescue_mode_keeps_the_schema_and_rescues_new_fields() {
    let (mut dec, shared) = evolving(JsonEvolution::Rescue);
    dec.decode(&json(&[r#"{"a":1}"#])).unwrap();
    let d = dec
        .decode(&json(&[r#"{"a":2,"b":{"c":true}}"#, r#"{"a":3}"#]))
        .unwrap();
    assert_eq!(names(&d.batch.schema()), ["a", "_rescued_data"]);
    assert_eq!(shared.version(), 1);
    let rescued = col_str(&d.batch, "_rescued_data");
    assert_eq!(rescued, vec![Some(r#"{"b":{"c":true}}"#.into()), None]);
    assert_eq!(col_i64(&d.batch, "a"), vec![Some(2), Some(3)]);
}

#[test]
fn fail_on_new_columns_stops_naming_field_and_offset() {
    let (mut dec, _) = evolving(JsonEvolution::FailOnNewColumns);
    dec.decode(&json(&[r#"{"a":1}"#])).unwrap();
    // A misfit of a known column is rescued, not fatal.
    let d = dec.decode(&json(&[r#"{"a":"x"}"#])).unwrap();
    assert_eq!(
        col_str(&d.batch, "_rescued_data"),
        vec![Some(r#"{"a":"x"}"#.into())]
    );
    let err = dec
        .decode(&json(&[r#"{"a":2}"#, r#"{"a":3,"zz":1}"#]))
        .unwrap_err();
    match &err {
        DecodeError::NewColumns { offset, fields, .. } => {
            assert_eq!((*offset, fields.clone()), (1, vec!["zz".to_string()]));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn none_mode_ignores_new_fields_but_rescues_misfits() {
    let (mut dec, shared) = evolving(JsonEvolution::None);
    dec.decode(&json(&[r#"{"a":1}"#])).unwrap();
    let d = dec
        .decode(&json(&[r#"{"a":2,"b":1}"#, r#"{"a":{"x":1}}"#]))
        .unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    assert_eq!(names(&d.batch.schema()), ["a", "_rescued_data"]);
    assert_eq!(shared.version(), 1);
    assert_eq!(col_i64(&d.batch, "a"), vec![Some(2), None]);
    let rescued = col_str(&d.batch, "_rescued_data");
    assert_eq!(rescued, vec![None, Some(r#"{"a":{"x":1}}"#.into())]);
}

#[test]
fn hints_fix_the_types_of_the_named_columns() {
    let hints = crate::config::schema_ddl::parse_schema("ts TIMESTAMP, amount DECIMAL(10,2)");
    let options = crate::config::formats::JsonInference {
        hints: Some(Arc::new(hints.unwrap())),
        ..Default::default()
    };
    let shared = Arc::new(TopicSchema::in_memory("t", &options));
    let mut dec = JsonDecoder::shared("t".into(), shared, JsonEvolution::AddNewColumns, 16);
    let d = dec
        .decode(&json(&[
            r#"{"ts":"2024-01-01T00:00:01Z","amount":"12.50","n":1}"#,
            r#"{"ts":"not a time","amount":3}"#,
        ]))
        .unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let utc = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    assert_eq!(type_of(&d.batch, "ts"), utc);
    assert_eq!(type_of(&d.batch, "amount"), DataType::Decimal128(10, 2));
    assert_eq!(type_of(&d.batch, "n"), DataType::Int64);
    let rescued = col_str(&d.batch, "_rescued_data");
    assert_eq!(rescued, vec![None, Some(r#"{"ts":"not a time"}"#.into())]);
}

#[test]
fn inference_retries_when_nothing_parses() {
    let mut dec = JsonDecoder::new("t".into(), None, 16);
    let d = dec
        .decode(&buffer(&[Some("oops"), None, Some("[1]"), Some("")]))
        .unwrap();
    assert_eq!(rejected(&d), vec![0, 1, 2, 3]);
    assert!(
        d.rejected[0].1 .0.starts_with("invalid JSON"),
        "{:?}",
        d.rejected
    );
    let not_object = RecordError("expected a JSON object, got an array".into());
    assert_eq!(d.rejected[2].1, not_object);
    assert_eq!(d.batch.num_rows(), 0);
    assert!(dec.schema().is_none());
    // Objects without fields do not fix a schema either.
    let d = dec.decode(&json(&["{}"])).unwrap();
    assert_eq!(rejected(&d), vec![0]);
    assert!(dec.schema().is_none());
    let d = dec.decode(&json(&[r#"{"a":1}"#, "{}"])).unwrap();
    assert!(d.rejected.is_empty());
    assert_eq!(col_i64(&d.batch, "a"), vec![Some(1), None]);
}

#[test]
fn objects_that_do_not_infer_together_are_inferred_alone() {
    let mut dec = JsonDecoder::new("t".into(), None, 16);
    let d = dec
        .decode(&json(&[r#"{"a":{"x":1}}"#, r#"{"a":1}"#]))
        .unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    assert!(matches!(type_of(&d.batch, "a"), DataType::Struct(_)));
    let rescued = col_str(&d.batch, "_rescued_data");
    assert_eq!(rescued, vec![None, Some(r#"{"a":1}"#.into())]);
}

#[test]
fn the_first_version_is_inferred_from_every_partitions_first_records() {
    let shared = Arc::new(TopicSchema::default());
    let decoder =
        || JsonDecoder::shared("t".into(), shared.clone(), JsonEvolution::AddNewColumns, 16);
    let (mut p0, mut p1) = (decoder(), decoder());
    // Partition 1's first records arrive (offered by its writer) before partition 0 decodes.
    assert!(shared.offer_sample(1, br#"{"id":9,"page":{"url":"/x"}}"#));
    assert!(shared.offer_sample(0, br#"{"id":1,"tags":[]}"#));
    let d = p0.decode(&json(&[r#"{"id":1,"tags":[]}"#])).unwrap();
    assert_eq!(shared.version(), 1);
    // `tags` has no type yet: its placeholder is not in the batch.
    assert_eq!(names(&d.batch.schema()), ["id", "page", "_rescued_data"]);
    assert!(
        !shared.offer_sample(2, b"{}"),
        "a version exists: sampling is over"
    );
    assert!(shared.sampled().is_empty());
    let d = p1
        .decode(&json(&[r#"{"id":9,"page":{"url":"/x"}}"#]))
        .unwrap();
    assert_eq!(shared.version(), 1, "partition 1 adds nothing");
    assert_eq!(d.batch.column_by_name("page").unwrap().null_count(), 0);
    // A value gives `tags` its type: version 2, and the column appears.
    let d = p0.decode(&json(&[r#"{"id":2,"tags":["a"]}"#])).unwrap();
    assert_eq!(shared.version(), 2);
    assert_eq!(
        names(&d.batch.schema()),
        ["id", "page", "tags", "_rescued_data"]
    );
}

#[test]
fn the_direct_decoder_is_tried_until_it_gives_up_on_buffers_in_a_row() {
    let mut d = JsonDecoder::new("t".into(), Some(ab_schema()), 16);
    assert!(d.direct.is_some());
    let good = json(&[r#"{"a":1,"b":"x"}"#]);
    // A string in the integer column: arrow-json rejects the record, the direct decoder gives up.
    let bad = json(&[r#"{"a":2,"b":"y"}"#, r#"{"a":"no","b":"z"}"#]);
    d.decode(&bad).unwrap();
    assert_eq!(d.direct_give_ups, 1);
    // A buffer it decodes resets the count.
    assert_eq!(col_i64(&d.decode(&good).unwrap().batch, "a"), [Some(1)]);
    assert_eq!(d.direct_give_ups, 0);
    for round in 1..=DIRECT_GIVE_UPS {
        assert!(d.direct.is_some(), "round {round}");
        let decoded = d.decode(&bad).unwrap();
        assert_eq!(rejected(&decoded), [1]);
        assert_eq!(col_i64(&decoded.batch, "a"), [Some(2)]);
    }
    assert!(d.direct.is_none());
    assert_eq!(col_i64(&d.decode(&good).unwrap().batch, "a"), [Some(1)]);
}

#[test]
fn an_inferred_schema_gets_a_direct_decoder_for_each_version() {
    let mut d = JsonDecoder::new("t".into(), None, 16);
    assert!(d.direct.is_none());
    let first = d.decode(&json(&[r#"{"a":1,"b":"x"}"#])).unwrap();
    assert_eq!(col_i64(&first.batch, "a"), [Some(1)]);
    assert!(d.direct.is_some());
    // A new field: the strict direct decoder gives up, evolution adds the column.
    let second = d.decode(&json(&[r#"{"a":2,"b":"y","c":true}"#])).unwrap();
    assert!(second.batch.column_by_name("c").is_some());
    assert!(d.direct.is_some());
    assert_eq!(d.direct_give_ups, 0);
}

/// Keys that are data inside an object (`scores` by user id): past `json.schema.max.fields` a
/// record with a key the schema lacks keeps its other fields as columns and rescues the whole
/// `scores` object; a record whose keys all have columns decodes as usual.
#[test]
fn nested_keys_past_the_field_cap_rescue_their_object() {
    let options = crate::config::formats::JsonInference {
        max_fields: 4,
        ..Default::default()
    };
    let shared = Arc::new(TopicSchema::in_memory("t", &options));
    let mut dec = JsonDecoder::shared("t".into(), shared, JsonEvolution::AddNewColumns, 16);
    let first = [r#"{"id":1,"scores":{"u1":5,"u2":6}}"#];
    let d = dec.decode(&json(&first)).unwrap();
    assert!(d.rejected.is_empty());
    let d = dec
        .decode(&json(&[
            r#"{"id":2,"scores":{"u1":7,"u3":8}}"#,
            r#"{"id":3,"scores":{"u2":9}}"#,
        ]))
        .unwrap();
    assert!(d.rejected.is_empty());
    assert_eq!(col_i64(&d.batch, "id"), vec![Some(2), Some(3)]);
    let rescued = col_str(&d.batch, "_rescued_data");
    assert_eq!(
        rescued,
        vec![Some(r#"{"scores":{"u1":7,"u3":8}}"#.into()), None]
    );
    let scores = d.batch.column_by_name("scores").unwrap().as_struct();
    assert_eq!(scores.fields().len(), 2, "u3 did not become a column");
    let u2 = scores
        .column_by_name("u2")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(u2.value(1), 9);
}

/// The last version (`json.schema.max.versions`) keeps fields without a type untyped: values for
/// them (`n` seen only as null, `e` only as `{}`) are rescued, and the batch still decodes.
#[test]
fn the_last_version_rescues_values_of_untyped_fields() {
    let options = crate::config::formats::JsonInference {
        max_versions: 1,
        ..Default::default()
    };
    let shared = Arc::new(TopicSchema::in_memory("t", &options));
    let mut dec = JsonDecoder::shared("t".into(), shared, JsonEvolution::AddNewColumns, 16);
    let d = dec.decode(&json(&[r#"{"a":1,"e":{},"n":null}"#])).unwrap();
    assert!(d.rejected.is_empty());
    let d = dec
        .decode(&json(&[
            r#"{"a":2,"e":{"k":1},"n":"x"}"#,
            r#"{"a":3,"e":{},"n":null}"#,
        ]))
        .unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    assert_eq!(col_i64(&d.batch, "a"), vec![Some(2), Some(3)]);
    let rescued = col_str(&d.batch, "_rescued_data");
    assert_eq!(rescued, vec![Some(r#"{"e":{"k":1},"n":"x"}"#.into()), None]);
    assert_eq!(d.batch.schema().fields().len(), 2, "{:?}", d.batch.schema());
}
