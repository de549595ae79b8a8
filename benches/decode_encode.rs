//! Criterion benches of the hot path on realistic ~1 KB clickstream events:
//! JSON -> RecordBatch (declared and inferred schema; Confluent JSON Schema framing with the
//! same columns declared by a registered JSON Schema), raw -> RecordBatch, RecordBatch -> Parquet (snappy,
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
