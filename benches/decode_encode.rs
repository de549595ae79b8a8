//! Criterion benches of the hot path on realistic ~1 KB clickstream events:
//! JSON -> RecordBatch (declared and inferred schema; Confluent JSON Schema framing with the
//! same columns declared by a registered JSON Schema; the same events as Confluent-framed
//! protobuf, columns from the message descriptor), raw -> RecordBatch, RecordBatch -> Parquet (snappy,
//! zstd). Throughput is in bytes of JSON input, so MB/s compare across stages; records/s =
//! MB/s / mean event size (printed once at start).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use streamx::config::ParquetCodec;
use streamx::decode::json::JsonDecoder;
use streamx::decode::raw::RawDecoder;
use streamx::decode::sample::{clickstream_event, clickstream_schema};
use streamx::decode::{RecordBuffer, ValueDecoder};
use streamx::format::parquet::ParquetFileWriter;
use streamx::format::FileWriter;

const RECORDS: usize = 4096;

fn buffer() -> (RecordBuffer, usize) {
    let mut b = RecordBuffer::new(false, false);
    let mut bytes = 0;
    for i in 0..RECORDS as u64 {
        let e = clickstream_event(i);
        bytes += e.len();
        b.push(i as i64, 0, None, Some(e.as_bytes()), Vec::new);
    }
    (b, bytes)
}

/// `buf`'s values in the Confluent wire format (magic byte, schema id 1).
fn json_schema_buffer(buf: &RecordBuffer) -> RecordBuffer {
    let mut b = RecordBuffer::new(false, false);
    for i in 0..buf.len() {
        let mut v = vec![0, 0, 0, 0, 1];
        v.extend_from_slice(buf.value(i).unwrap());
        b.push(i as i64, 0, None, Some(&v), Vec::new);
    }
    b
}

/// A JSON Schema declaring the columns of `schema` (the types of the clickstream schema).
fn json_schema_of(schema: &arrow::datatypes::Schema) -> serde_json::Value {
    fn ty(t: &arrow::datatypes::DataType) -> serde_json::Value {
        use arrow::datatypes::DataType as T;
        match t {
            T::Utf8 => serde_json::json!({"type": "string"}),
            T::Int64 => serde_json::json!({"type": "integer"}),
            T::Float64 => serde_json::json!({"type": "number"}),
            T::Boolean => serde_json::json!({"type": "boolean"}),
            T::Timestamp(..) => serde_json::json!({"type": "string", "format": "date-time"}),
            T::List(f) => serde_json::json!({"type": "array", "items": ty(f.data_type())}),
            T::Struct(fields) => object(fields),
            other => panic!("no JSON Schema type for {other}"),
        }
    }
    fn object(fields: &arrow::datatypes::Fields) -> serde_json::Value {
        let properties: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|f| (f.name().clone(), ty(f.data_type())))
            .collect();
        serde_json::json!({"type": "object", "properties": properties})
    }
    object(schema.fields())
}

/// A .proto declaring the columns of `schema` (the clickstream schema's types), message `Event`.
fn proto_of(schema: &arrow::datatypes::Schema) -> String {
    use arrow::datatypes::DataType as T;
    fn message(name: &str, fields: &arrow::datatypes::Fields, out: &mut String) {
        let mut body = String::new();
        for (n, f) in fields.iter().enumerate() {
            let (label, ty) = match f.data_type() {
                T::List(item) => ("repeated ", item.data_type().clone()),
                other => ("", other.clone()),
            };
            let ty = match &ty {
                T::Utf8 => "string".to_string(),
                T::Int64 => "int64".to_string(),
                T::Float64 => "double".to_string(),
                T::Boolean => "bool".to_string(),
                T::Timestamp(..) => "google.protobuf.Timestamp".to_string(),
                T::Struct(inner) => {
                    let nested = format!("{}{}", name, f.name());
                    message(&nested, inner, out);
                    nested
                }
                other => panic!("no protobuf type for {other}"),
            };
            body += &format!("  {label}{ty} {} = {};\n", f.name(), n + 1);
        }
        // Before the messages it uses: the first message is what index [0] names.
        *out = format!("message {name} {{\n{body}}}\n{out}");
    }
    let mut messages = String::new();
    message("Event", schema.fields(), &mut messages);
    format!("syntax = \"proto3\";\nimport \"google/protobuf/timestamp.proto\";\n{messages}")
}

/// One clickstream event (JSON) as a protobuf message of `desc`.
fn proto_message(
    desc: &prost_reflect::MessageDescriptor,
    json: &serde_json::Value,
) -> prost_reflect::DynamicMessage {
    use prost_reflect::{DynamicMessage, Kind, Value};
    fn value(kind: &Kind, v: &serde_json::Value) -> Option<Value> {
        Some(match (kind, v) {
            (Kind::String, serde_json::Value::String(s)) => Value::String(s.clone()),
            (Kind::Int64, v) => Value::I64(v.as_i64()?),
            (Kind::Double, v) => Value::F64(v.as_f64()?),
            (Kind::Bool, v) => Value::Bool(v.as_bool()?),
            (Kind::Message(m), serde_json::Value::String(ts)) => {
                let at = chrono::DateTime::parse_from_rfc3339(ts).ok()?;
                let mut t = DynamicMessage::new(m.clone());
                t.set_field_by_name("seconds", Value::I64(at.timestamp()));
                t.set_field_by_name("nanos", Value::I32(at.timestamp_subsec_nanos() as i32));
                Value::Message(t)
            }
            (Kind::Message(m), v @ serde_json::Value::Object(_)) => {
                Value::Message(proto_message(m, v))
            }
            _ => return None,
        })
    }
    let mut m = DynamicMessage::new(desc.clone());
    for f in desc.fields() {
        let v = &json[f.name()];
        let v = match v {
            serde_json::Value::Array(items) => {
                Value::List(items.iter().filter_map(|i| value(&f.kind(), i)).collect())
            }
            v => match value(&f.kind(), v) {
                Some(v) => v,
                None => continue,
            },
        };
        m.set_field(&f, v);
    }
    m
}

/// `buf`'s events as Confluent-framed protobuf (schema id 1, first message) and the schemas.
fn protobuf_buffer(
    buf: &RecordBuffer,
) -> (
    RecordBuffer,
    streamx::decode::protobuf_schema::StaticProtoSchemas,
) {
    use prost::Message;
    let proto = proto_of(&clickstream_schema());
    let files = [("event.proto".to_string(), proto.clone())]
        .into_iter()
        .collect();
    let file = streamx::decode::protobuf_schema::compile("event.proto", files).unwrap();
    let desc = file.messages().find(|m| m.name() == "Event").unwrap();
    let mut b = RecordBuffer::new(false, false);
    for i in 0..buf.len() {
        let json: serde_json::Value = serde_json::from_slice(buf.value(i).unwrap()).unwrap();
        let mut v = vec![0, 0, 0, 0, 1, 0];
        v.extend(proto_message(&desc, &json).encode_to_vec());
        b.push(i as i64, 0, None, Some(&v), Vec::new);
    }
    let schemas =
        streamx::decode::protobuf_schema::StaticProtoSchemas::new().with(1, &proto, Vec::new());
    (b, schemas)
}

fn benches(c: &mut Criterion) {
    let (buf, bytes) = buffer();
    eprintln!(
        "{RECORDS} events, {bytes} bytes, mean {} bytes/event",
        bytes / RECORDS
    );
    let mut g = c.benchmark_group("clickstream");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(30);

    g.bench_function("decode_json_declared_schema", |b| {
        let mut d = JsonDecoder::new("bench".into(), Some(clickstream_schema()), RECORDS);
        b.iter(|| d.decode(&buf).unwrap().batch.num_rows())
    });
    let framed = json_schema_buffer(&buf);
    g.bench_function("decode_json_schema_registry", |b| {
        // The same events behind the 5-byte Confluent header, columns from a JSON Schema.
        let source = streamx::decode::registry::StaticSchemas::new().with_typed(
            1,
            "JSON",
            &json_schema_of(&clickstream_schema()).to_string(),
        );
        let mut d = streamx::decode::json_schema::JsonSchemaDecoder::new(
            "bench".into(),
            std::sync::Arc::new(source),
            Default::default(),
            RECORDS,
        );
        assert!(d.decode(&framed).unwrap().rejected.is_empty());
        b.iter(|| d.decode(&framed).unwrap().batch.num_rows())
    });
    let (protobuf, schemas) = protobuf_buffer(&buf);
    let schemas: std::sync::Arc<dyn streamx::decode::protobuf_schema::ProtoSchemas> =
        std::sync::Arc::new(schemas);
    let proto_bytes: usize = (0..protobuf.len())
        .map(|i| protobuf.value(i).unwrap().len())
        .sum();
    eprintln!("the same events as protobuf: {proto_bytes} bytes");
    g.bench_function("decode_protobuf_registry", |b| {
        // The same events as Confluent-framed protobuf, columns from the message descriptor.
        let mut d = streamx::decode::protobuf::ProtobufDecoder::new(schemas.clone());
        let first = d.decode(&protobuf).unwrap();
        assert!(
            first.rejected.is_empty() && first.batch.num_rows() == RECORDS,
            "{:?} rows {}",
            first.rejected.first(),
            first.batch.num_rows()
        );
        b.iter(|| d.decode(&protobuf).unwrap().batch.num_rows())
    });
    g.bench_function("decode_json_inferred_schema", |b| {
        // Inferred on the first buffer, stable afterwards: what every later buffer costs.
        let mut d = JsonDecoder::new("bench".into(), None, RECORDS);
        d.decode(&buf).unwrap();
        b.iter(|| d.decode(&buf).unwrap().batch.num_rows())
    });
    g.bench_function("decode_raw", |b| {
        let mut d = RawDecoder::new();
        b.iter(|| d.decode(&buf).unwrap().batch.num_rows())
    });
    let batch = JsonDecoder::new("bench".into(), Some(clickstream_schema()), RECORDS)
        .decode(&buf)
        .unwrap()
        .batch;
    for (name, codec) in [
        ("encode_parquet_snappy", ParquetCodec::Snappy),
        ("encode_parquet_zstd", ParquetCodec::Zstd),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut w = ParquetFileWriter::new(batch.schema(), codec).unwrap();
                w.write(&batch).unwrap();
                Box::new(w).finish().unwrap().len()
            })
        });
    }
    g.bench_function("decode_json_and_encode_parquet_snappy", |b| {
        let mut d = JsonDecoder::new("bench".into(), Some(clickstream_schema()), RECORDS);
        b.iter(|| {
            let batch = d.decode(&buf).unwrap().batch;
            let mut w = ParquetFileWriter::new(batch.schema(), ParquetCodec::Snappy).unwrap();
            w.write(&batch).unwrap();
            Box::new(w).finish().unwrap().len()
        })
    });
    g.finish();
}

criterion_group!(decode_encode, benches);
criterion_main!(decode_encode);
