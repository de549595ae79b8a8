//! Avro decode throughput: Confluent-framed records of about 1 KB (written by the apache-avro
//! crate) decoded by `AvroDecoder` in buffers of 10,000 records, schemas from memory (the
//! registry cache is what a running decoder sees after the first buffer).
//!
//! `cargo bench --bench decode` prints MiB/s (bytes of values, framing included) and records/s.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::types::Value as AV;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use streamx::decode::avro::{AvroDecoder, AvroDecoderOptions};
use streamx::decode::registry::StaticSchemas;
use streamx::decode::{RecordBuffer, ValueDecoder};

const RECORDS: usize = 10_000;

const SCHEMA: &str = r#"{"type":"record","name":"PageView","namespace":"bench","fields":[
  {"name":"event_id","type":{"type":"string","logicalType":"uuid"}},
  {"name":"user_id","type":"long"},
  {"name":"session_id","type":"string"},
  {"name":"url","type":"string"},
  {"name":"referrer","type":["null","string"],"default":null},
  {"name":"user_agent","type":"string"},
  {"name":"country","type":"string"},
  {"name":"duration_ms","type":"int"},
  {"name":"score","type":"double"},
  {"name":"is_bot","type":"boolean"},
  {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
  {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"device","type":{"type":"record","name":"Device","fields":[
     {"name":"os","type":"string"},{"name":"model","type":"string"},{"name":"screen_w","type":"int"},{"name":"screen_h","type":"int"}]}},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"props","type":{"type":"map","values":"string"}},
  {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["VIEW","CLICK","SCROLL"]}},
  {"name":"payload","type":"string"}
]}"#;

/// Schema v1 for the interleaved case: no `payload` and `duration_ms` absent.
const SCHEMA_OLD: &str = r#"{"type":"record","name":"PageView","namespace":"bench","fields":[
  {"name":"event_id","type":{"type":"string","logicalType":"uuid"}},
  {"name":"user_id","type":"int"},
  {"name":"session_id","type":"string"},
  {"name":"url","type":"string"},
  {"name":"referrer","type":["null","string"],"default":null},
  {"name":"user_agent","type":"string"},
  {"name":"country","type":"string"},
  {"name":"duration_ms","type":"int"},
  {"name":"score","type":"double"},
  {"name":"is_bot","type":"boolean"},
  {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
  {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"device","type":{"type":"record","name":"Device","fields":[
     {"name":"os","type":"string"},{"name":"model","type":"string"},{"name":"screen_w","type":"int"},{"name":"screen_h","type":"int"}]}},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"props","type":{"type":"map","values":"string"}},
  {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["VIEW","CLICK","SCROLL"]}},
  {"name":"payload","type":"string","default":""}
]}"#;

fn record(i: usize, old: bool) -> AV {
    let s = |v: String| AV::String(v);
    let mut props = HashMap::new();
    for k in 0..4 {
        props.insert(format!("prop_{k}"), s(format!("value-{i}-{k}")));
    }
    let uid = format!("{:08x}-1111-4222-8333-{:012x}", i as u32, i);
    AV::Record(vec![
        ("event_id".into(), AV::Uuid(uid.parse().unwrap())),
        ("user_id".into(), if old { AV::Int(i as i32) } else { AV::Long(i as i64 * 7919) }),
        ("session_id".into(), s(format!("sess-{:016x}", i * 31))),
        ("url".into(), s(format!("https://shop.example.com/products/category-{}/item-{i}?ref=home&utm_source=newsletter", i % 17))),
        ("referrer".into(), if i.is_multiple_of(3) { AV::Union(0, Box::new(AV::Null)) } else { AV::Union(1, Box::new(s("https://www.search.example/q?text=gadgets".into()))) }),
        ("user_agent".into(), s("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36".into())),
        ("country".into(), s(["NL", "DE", "FR", "JP", "BR"][i % 5].into())),
        ("duration_ms".into(), AV::Int((i % 10_000) as i32)),
        ("score".into(), AV::Double(i as f64 * 0.37)),
        ("is_bot".into(), AV::Boolean(i.is_multiple_of(11))),
        ("price".into(), AV::Decimal(((i as i64) * 1999).to_be_bytes().to_vec().into())),
        ("at".into(), AV::TimestampMillis(1_704_067_200_000 + i as i64)),
        ("device".into(), AV::Record(vec![
            ("os".into(), s("Android 14".into())),
            ("model".into(), s(format!("Pixel {}", i % 9))),
            ("screen_w".into(), AV::Int(1080)),
            ("screen_h".into(), AV::Int(2400)),
        ])),
        ("tags".into(), AV::Array((0..5).map(|t| s(format!("tag-{t}-{}", i % 13))).collect())),
        ("props".into(), AV::Map(props)),
        ("kind".into(), AV::Enum((i % 3) as u32, ["VIEW", "CLICK", "SCROLL"][i % 3].into())),
        ("payload".into(), s("lorem ipsum dolor sit amet ✓ ".repeat(18))),
    ])
}

/// `mixed`: ids 1 and 2 alternate record by record; `poisoned`: record 5000 is truncated.
fn buffer(mixed: bool, poisoned: bool) -> RecordBuffer {
    let new = apache_avro::Schema::parse_str(SCHEMA).unwrap();
    let old = apache_avro::Schema::parse_str(SCHEMA_OLD).unwrap();
    let mut b = RecordBuffer::new(false, false);
    for i in 0..RECORDS {
        let is_old = mixed && i % 2 == 0;
        let (id, schema) = if is_old { (1u32, &old) } else { (2u32, &new) };
        let datum = apache_avro::to_avro_datum(schema, record(i, is_old)).unwrap();
        let mut value = vec![0u8];
        value.extend_from_slice(&id.to_be_bytes());
        value.extend_from_slice(&datum);
        if poisoned && i == RECORDS / 2 {
            value.truncate(value.len() / 2);
        }
        b.push(i as i64, 0, None, Some(&value), Vec::new);
    }
    b
}

fn decoder() -> AvroDecoder {
    let source = StaticSchemas::new().with(1, SCHEMA_OLD).with(2, SCHEMA);
    let options = AvroDecoderOptions {
        batch_records: RECORDS,
        ..AvroDecoderOptions::default()
    };
    AvroDecoder::confluent(Arc::new(source), options).unwrap()
}

fn bench(c: &mut Criterion) {
    let cases = [
        ("confluent_1kb", false, false),
        ("confluent_1kb_two_schemas_interleaved", true, false),
        ("confluent_1kb_one_truncated_record", false, true),
    ];
    for (name, mixed, poisoned) in cases {
        let buf = buffer(mixed, poisoned);
        let bytes = buf.values.len();
        println!(
            "{name}: {RECORDS} records, {bytes} bytes, {} bytes/record",
            bytes / RECORDS
        );
        let mut dec = decoder();
        let d = dec.decode(&buf).unwrap();
        assert_eq!(d.rejected.len(), usize::from(poisoned));
        assert_eq!(d.batch.num_rows() + d.rejected.len(), RECORDS);
        let mut group = c.benchmark_group(format!("avro_{name}"));
        group.sample_size(20);
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function("bytes", |b| {
            b.iter_batched_ref(|| (), |_| dec.decode(&buf).unwrap(), BatchSize::SmallInput)
        });
        group.throughput(Throughput::Elements(RECORDS as u64));
        group.bench_function("records", |b| b.iter(|| dec.decode(&buf).unwrap()));
        group.finish();
        assert_eq!(dec.stats().slow_buffers > 0, poisoned);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
