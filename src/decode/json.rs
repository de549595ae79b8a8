//! [`JsonDecoder`]: one JSON object per record value, decoded straight into Arrow by arrow-json's
//! tape decoder (no per-record `serde_json::Value` on the hot path).
//!
//! Schema: the declared `value.schema` when there is one. Otherwise it is inferred from the
//! decoder's first buffer (its first [`INFERENCE_SAMPLE`] values that parse as JSON objects). A
//! decoder made with [`JsonDecoder::shared`] merges that into its topic's [`TopicSchema`] (shared
//! by the partitions of the topic in this process) and decodes with the newest merged version,
//! switching at the next buffer when another partition widens it; fields that appear only in
//! later records of the same partition are ignored, so declare `value.schema` for a stable
//! output. Inferred fields are sorted by name at every level, fields that were null in every
//! sampled record become Utf8, and JSON numbers and booleans are coerced into the Utf8 columns of
//! an inferred schema (inference merges mixed scalar types into Utf8).
//! If no sampled value is a JSON object, every record of the buffer is rejected (so
//! `errors.tolerance` applies) and inference is retried on the next buffer. Timestamp columns with
//! a named zone (`UTC`) need arrow's `chrono-tz` feature (enabled through DataFusion).
//!
//! Error isolation: the fast path feeds every record to one reused arrow-json decoder and flushes
//! once. After each record it checks that the record was one complete JSON value (a truncated
//! record must not merge with the next one). If anything fails, a slow path decodes each record
//! alone to find the bad ones, then decodes the good ones together, so the output keeps every good
//! record in order. A record must be exactly one JSON object: top-level arrays, numbers, strings,
//! booleans and `null` are rejected (arrow-json's tape accepts any JSON value as a row; its struct
//! decoder then fails with "expected { got ..."). Tombstones and empty values are rejected.

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::reader::{infer_json_schema_from_iterator, Decoder, ReaderBuilder};
use arrow::record_batch::RecordBatch;

use super::shared_schema::{decodable, TopicSchema};
use super::{DecodeError, Decoded, RecordBuffer, RecordError, ValueDecoder};

/// How many JSON objects of the first buffer the schema is inferred from.
pub const INFERENCE_SAMPLE: usize = 1000;

/// Decodes JSON record values into RecordBatches of a declared or inferred schema.
#[derive(Debug)]
pub struct JsonDecoder {
    topic: String,
    schema: Option<SchemaRef>,
    /// The schema was inferred: coerce primitives into Utf8 columns.
    inferred: bool,
    batch_records: usize,
    /// The reused fast-path decoder and the number of rows it accepts before flushing.
    fast: Option<(Decoder, usize)>,
    /// The topic's inferred schema, shared with the other partitions of the process.
    shared: Option<Arc<TopicSchema>>,
    /// The version of `shared` that `schema` is (0 before the first).
    version: u64,
}

impl JsonDecoder {
    /// A decoder for `topic`; `declared` is `value.schema` (`None`: infer from the first buffer);
    /// `batch_records` sizes the decoder for the usual number of records per buffer.
    pub fn new(topic: String, declared: Option<SchemaRef>, batch_records: usize) -> Self {
        JsonDecoder {
            topic,
            schema: declared,
            inferred: false,
            batch_records: batch_records.max(1),
            fast: None,
            shared: None,
            version: 0,
        }
    }

    /// A decoder for `topic` without a declared schema that infers from its first buffer, merges
    /// that into `shared` and then follows the newest version of `shared`.
    pub fn shared(topic: String, shared: Arc<TopicSchema>, batch_records: usize) -> Self {
        JsonDecoder {
            shared: Some(shared),
            ..JsonDecoder::new(topic, None, batch_records)
        }
    }

    /// Takes a newer version of the shared schema if there is one: one atomic load per buffer.
    fn follow_shared(&mut self) {
        let Some(shared) = &self.shared else {
            return;
        };
        // Before its own inference the decoder has nothing to switch from.
        if self.schema.is_none() || shared.version() == self.version {
            return;
        }
        if let Some(newest) = shared.current() {
            self.schema = Some(newest.schema);
            self.version = newest.version;
            // The fast decoder was built for the previous schema.
            self.fast = None;
        }
    }

    /// Starts decoding with what this decoder inferred (merged into the shared schema if any).
    fn adopt(&mut self, inferred: &Schema) -> SchemaRef {
        self.inferred = true;
        let schema = match &self.shared {
            None => decodable(inferred),
            Some(shared) => {
                let (newest, conflicts) = shared.merge(inferred);
                for conflict in conflicts {
                    tracing::warn!(topic = %self.topic, "inferred JSON schema: {conflict}");
                }
                self.version = newest.version;
                newest.schema
            }
        };
        self.schema = Some(schema.clone());
        schema
    }

    fn new_decoder(&self, schema: &SchemaRef, rows: usize) -> Result<Decoder, ArrowError> {
        ReaderBuilder::new(schema.clone())
            .with_batch_size(rows.max(1))
            .with_coerce_primitive(self.inferred)
            .build_decoder()
    }

    /// The fast-path decoder, able to take `rows` records before a flush.
    fn fast_decoder(
        &mut self,
        schema: &SchemaRef,
        rows: usize,
    ) -> Result<&mut Decoder, ArrowError> {
        let reusable = matches!(&self.fast, Some((_, capacity)) if *capacity >= rows);
        if !reusable {
            let capacity = rows.max(self.batch_records);
            self.fast = Some((self.new_decoder(schema, capacity)?, capacity));
        }
        match &mut self.fast {
            Some((decoder, _)) => Ok(decoder),
            None => Err(ArrowError::JsonError("fast decoder missing".into())),
        }
    }

    /// Decodes `buffer` with a known schema: the fast path, else the slow path.
    fn decode_with(
        &mut self,
        schema: &SchemaRef,
        buffer: &RecordBuffer,
    ) -> Result<Decoded, DecodeError> {
        let n = buffer.len();
        let mut rejected = Vec::new();
        let decoder = self.fast_decoder(schema, n)?;
        let mut clean = true;
        for i in 0..n {
            match value_of(buffer, i) {
                Err(e) => rejected.push((i, e)),
                Ok(v) => {
                    if feed(decoder, v).is_err() {
                        clean = false;
                        break;
                    }
                }
            }
        }
        if clean {
            if let Ok(batch) = decoder.flush() {
                let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
                return Ok(Decoded { batch, rejected });
            }
        }
        // The decoder holds a failed record: drop it and isolate the bad records.
        self.fast = None;
        self.decode_isolating(schema, buffer)
    }

    /// The slow path: decodes each record alone to find the bad ones, then the good ones together.
    fn decode_isolating(
        &mut self,
        schema: &SchemaRef,
        buffer: &RecordBuffer,
    ) -> Result<Decoded, DecodeError> {
        let n = buffer.len();
        let mut rejected = Vec::new();
        let mut good = Vec::with_capacity(n);
        let mut probe = self.new_decoder(schema, 1)?;
        for i in 0..n {
            let v = match value_of(buffer, i) {
                Ok(v) => v,
                Err(e) => {
                    rejected.push((i, e));
                    continue;
                }
            };
            let result = feed(&mut probe, v).and_then(|()| {
                probe
                    .flush()
                    .map(|_| ())
                    .map_err(|e| RecordError(e.to_string()))
            });
            match result {
                Ok(()) => good.push(v),
                Err(e) => {
                    rejected.push((i, e));
                    // A failed decoder keeps its state: start afresh.
                    probe = self.new_decoder(schema, 1)?;
                }
            }
        }
        let decoder = self.fast_decoder(schema, n)?;
        let mut result = Ok(());
        for v in good {
            if let Err(e) = feed(decoder, v) {
                result = Err(ArrowError::JsonError(format!(
                    "a record that decodes alone failed among others: {e}"
                )));
                break;
            }
        }
        let flushed = result.and_then(|()| decoder.flush());
        match flushed {
            Ok(batch) => {
                let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
                Ok(Decoded { batch, rejected })
            }
            Err(e) => {
                self.fast = None;
                Err(DecodeError::Arrow(e))
            }
        }
    }

    /// Infers the schema from the first JSON objects of `buffer` (as arrow-json infers it: fields
    /// null in every sample have type `Null`). `Ok(Err(rejected))` when no value of the buffer is
    /// a usable JSON object: every record is rejected with its cause.
    fn infer(
        &self,
        buffer: &RecordBuffer,
    ) -> Result<Result<Schema, Vec<(usize, RecordError)>>, DecodeError> {
        let mut sample = Vec::new();
        let mut rejected = Vec::new();
        for i in 0..buffer.len() {
            if sample.len() >= INFERENCE_SAMPLE {
                break;
            }
            let v = match value_of(buffer, i) {
                Ok(v) => v,
                Err(e) => {
                    rejected.push((i, e));
                    continue;
                }
            };
            match serde_json::from_slice::<serde_json::Value>(v) {
                Ok(value @ serde_json::Value::Object(_)) => sample.push(value),
                Ok(other) => rejected.push((i, not_an_object(&other))),
                Err(e) => rejected.push((i, RecordError(format!("invalid JSON: {e}")))),
            }
        }
        if sample.is_empty() {
            return Ok(Err(rejected));
        }
        let schema = infer_json_schema_from_iterator(sample.iter().map(Ok::<_, ArrowError>))
            .map_err(|e| DecodeError::Inference {
                topic: self.topic.clone(),
                message: format!("{e}; declare value.schema"),
            })?;
        if schema.fields().is_empty() {
            // Only `{}` so far: nothing to build columns from yet.
            let cause = "cannot infer a schema: the JSON objects have no fields";
            let all = (0..buffer.len())
                .map(|i| match value_of(buffer, i) {
                    Err(e) => (i, e),
                    Ok(_) => (i, RecordError(cause.to_string())),
                })
                .collect();
            return Ok(Err(all));
        }
        Ok(Ok(schema))
    }
}

impl ValueDecoder for JsonDecoder {
    fn decode(&mut self, buffer: &RecordBuffer) -> Result<Decoded, DecodeError> {
        self.follow_shared();
        let schema = match &self.schema {
            Some(schema) => schema.clone(),
            None => match self.infer(buffer)? {
                Ok(inferred) => self.adopt(&inferred),
                Err(rejected) => {
                    let batch = RecordBatch::new_empty(Arc::new(Schema::empty()));
                    return Ok(Decoded { batch, rejected });
                }
            },
        };
        self.decode_with(&schema, buffer)
    }

    fn schema(&self) -> Option<SchemaRef> {
        self.schema.clone()
    }
}

/// The value of record `i`, or why it cannot be a JSON object.
fn value_of(buffer: &RecordBuffer, i: usize) -> Result<&[u8], RecordError> {
    match buffer.value(i) {
        None => Err(RecordError("null value (tombstone)".to_string())),
        Some([]) => Err(RecordError("empty value".to_string())),
        Some(v) => Ok(v),
    }
}

/// Feeds one record to `decoder`, checking it was exactly one complete JSON value.
fn feed(decoder: &mut Decoder, value: &[u8]) -> Result<(), RecordError> {
    let before = decoder.len();
    let consumed = decoder
        .decode(value)
        .map_err(|e| RecordError(e.to_string()))?;
    if decoder.has_partial_record() {
        // A bare number is complete only once a delimiter follows; anything else is truncated.
        decoder
            .decode(b" ")
            .map_err(|e| RecordError(e.to_string()))?;
        if decoder.has_partial_record() {
            return Err(RecordError("truncated JSON value".to_string()));
        }
    }
    match decoder.len() - before {
        0 => Err(RecordError("no JSON value (only whitespace)".to_string())),
        1 if consumed == value.len() => Ok(()),
        _ => Err(RecordError(
            "unexpected data after the JSON value".to_string(),
        )),
    }
}

fn not_an_object(value: &serde_json::Value) -> RecordError {
    let kind = match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    };
    RecordError(format!("expected a JSON object, got {kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn infers_the_schema_once() {
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
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, vec!["dev", "id", "n", "name", "score", "tags"]);
        let dev = Fields::from(vec![Field::new("os", DataType::Utf8, true)]);
        assert_eq!(schema.field(0).data_type(), &DataType::Struct(dev));
        assert_eq!(schema.field(1).data_type(), &DataType::Int64);
        assert_eq!(
            schema.field(2).data_type(),
            &DataType::Utf8,
            "all-null field"
        );
        assert_eq!(schema.field(3).data_type(), &DataType::Utf8);
        assert_eq!(schema.field(4).data_type(), &DataType::Float64);
        assert!(matches!(schema.field(5).data_type(), DataType::List(_)));
        assert_eq!(col_i64(&d.batch, "id"), vec![Some(1), Some(2)]);
        // Fixed afterwards: new fields are ignored, primitives coerce into Utf8 columns.
        let d = dec
            .decode(&json(&[r#"{"id":3,"n":5,"new":true,"name":false}"#]))
            .unwrap();
        assert!(d.rejected.is_empty(), "{:?}", d.rejected);
        assert_eq!(d.batch.schema(), schema);
        assert_eq!(col_str(&d.batch, "n"), vec![Some("5".into())]);
        assert_eq!(col_str(&d.batch, "name"), vec![Some("false".into())]);
    }

    fn names(schema: &SchemaRef) -> Vec<&str> {
        schema.fields().iter().map(|f| f.name().as_str()).collect()
    }

    #[test]
    fn partitions_of_a_topic_merge_their_schemas_and_switch_to_the_newest() {
        let shared = Arc::new(TopicSchema::default());
        let mut p0 = JsonDecoder::shared("t".into(), shared.clone(), 16);
        let d = p0.decode(&json(&[r#"{"id":1,"a":"x"}"#])).unwrap();
        assert_eq!(names(&d.batch.schema()), vec!["a", "id"]);
        // Partition 1 infers its own fields and merges them in: its `b` is kept.
        let mut p1 = JsonDecoder::shared("t".into(), shared.clone(), 16);
        let d = p1.decode(&json(&[r#"{"id":2,"b":5}"#])).unwrap();
        assert_eq!(names(&d.batch.schema()), vec!["a", "b", "id"]);
        assert_eq!(col_i64(&d.batch, "b"), vec![Some(5)]);
        assert_eq!(col_str(&d.batch, "a"), vec![None]);
        assert_eq!(shared.version(), 2);
        // Partition 0 switches at its next buffer: `b` is no longer ignored there either.
        let d = p0.decode(&json(&[r#"{"id":3,"a":"y","b":6}"#])).unwrap();
        assert_eq!(d.batch.schema(), p1.schema().unwrap());
        assert_eq!(col_i64(&d.batch, "b"), vec![Some(6)]);
        // Same coercions as for a schema inferred alone: primitives into Utf8 columns.
        let d = p1.decode(&json(&[r#"{"id":4,"a":7}"#])).unwrap();
        assert!(d.rejected.is_empty(), "{:?}", d.rejected);
        assert_eq!(col_str(&d.batch, "a"), vec![Some("7".into())]);
    }

    #[test]
    fn a_conflicting_value_is_a_bad_record_naming_the_field() {
        let shared = Arc::new(TopicSchema::default());
        let mut p0 = JsonDecoder::shared("t".into(), shared.clone(), 16);
        p0.decode(&json(&[r#"{"s":{"k":1}}"#])).unwrap();
        let mut p1 = JsonDecoder::shared("t".into(), shared, 16);
        let d = p1
            .decode(&json(&[r#"{"s":"text","t":1}"#, r#"{"t":2}"#]))
            .unwrap();
        assert_eq!(rejected(&d), vec![0]);
        let cause = &d.rejected[0].1 .0;
        assert!(cause.contains("field 's'"), "{cause}");
        assert_eq!(names(&d.batch.schema()), vec!["s", "t"]);
        assert_eq!(col_i64(&d.batch, "t"), vec![Some(2)]);
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
    fn inference_conflict_is_an_inference_error() {
        let mut dec = JsonDecoder::new("t".into(), None, 16);
        let err = dec
            .decode(&json(&[r#"{"a":{"x":1}}"#, r#"{"a":1}"#]))
            .unwrap_err();
        assert!(matches!(err, DecodeError::Inference { .. }), "{err}");
        assert!(err.to_string().contains("value.schema"));
    }
}
