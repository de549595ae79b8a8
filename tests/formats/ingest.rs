// `streamx ingest` end to end with the new converters and formats, on the embedded broker and the
// local store: Confluent Avro from the (stand-in) Schema Registry into every output format, read
// back by independent readers; malformed Avro under errors.tolerance; interleaved schema
// versions under BACKWARD; behavior.on.null.values; keys and headers as columns.

use std::path::{Path, PathBuf};
use std::time::Duration;

use apache_avro::types::Value as AV;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use streamx::ingest::{self, IngestOptions};
use streamx::source::embedded::EmbeddedCluster;

use crate::common::registry::TestRegistry;
use crate::common::{avro_datum, confluent, readback, schema};
use crate::end_to_end::{event, expected_rows, SCHEMA};

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{prefix}-{}-{n}-{}",
        std::process::id(),
        streamx::clock::wall_ms()
    )
}

/// A record to produce: key and value (None value = tombstone).
pub(crate) type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Produces records into partition 0.
pub(crate) fn produce(servers: &str, topic: &str, records: &[KeyValue]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .unwrap();
    for (k, v) in records {
        let mut r = BaseRecord::<[u8], [u8]>::to(topic).partition(0);
        if let Some(k) = k {
            r = r.key(k.as_slice());
        }
        if let Some(v) = v {
            r = r.payload(v.as_slice());
        }
        r = r.headers(
            rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                key: "trace",
                value: Some("t-1"),
            }),
        );
        producer.send(r).map_err(|(e, _)| e).unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

pub(crate) fn run(
    pairs: &[(&str, &str)],
) -> Result<streamx::metrics::Snapshot, ingest::IngestError> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = streamx::config::Config::from_properties_str("", &pairs).expect("valid config");
    ingest::run(
        config,
        IngestOptions {
            stop_at_end: true,
            ..Default::default()
        },
    )
}

pub(crate) fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('_') {
            continue;
        }
        if p.is_dir() {
            out.extend(files(&p, ext));
        } else if name.ends_with(ext) {
            out.push(p);
        }
    }
    out.sort();
    out
}

struct Job {
    _cluster: EmbeddedCluster,
    servers: String,
    topic: String,
    registry: TestRegistry,
}

fn job(values: &[KeyValue]) -> Job {
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("fmt");
    cluster.create_topic(&topic, 1).unwrap();
    produce(&servers, &topic, values);
    Job {
        _cluster: cluster,
        servers,
        topic,
        registry: TestRegistry::start(),
    }
}

impl Job {
    fn pairs<'a>(&'a self, out: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut p = vec![
            ("name", self.topic.as_str()),
            ("bootstrap.servers", self.servers.as_str()),
            ("topics", self.topic.as_str()),
            ("store.url", out),
            ("value.converter", "io.confluent.connect.avro.AvroConverter"),
            (
                "value.converter.schema.registry.url",
                self.registry.url.as_str(),
            ),
            ("flush.size", "100000"),
        ];
        for (k, v) in extra {
            p.retain(|(key, _)| key != k);
            p.push((k, v));
        }
        p
    }
}

#[test]
fn registry_avro_in_every_output_format_reads_back_field_by_field() {
    let s = schema(SCHEMA);
    let n = 40;
    let values: Vec<_> = (0..n)
        .map(|i| (None, Some(confluent(7, &avro_datum(&s, event(i))))))
        .collect();
    let j = job(&values);
    j.registry.add(7, SCHEMA);
    for (format, ext, reader, extra) in [
        ("parquet", ".parquet", "parquet", ("parquet.codec", "zstd")),
        (
            "io.confluent.connect.s3.format.avro.AvroFormat",
            ".avro",
            "avro",
            ("avro.codec", "snappy"),
        ),
        ("json", ".json", "jsonl", ("compression.type", "none")),
        ("json", ".json.gz", "jsonl", ("compression.type", "gzip")),
    ] {
        let out = tempfile::tempdir().unwrap();
        let out_s = out.path().to_str().unwrap().to_string();
        let group = unique("g");
        let pairs = j.pairs(
            &out_s,
            &[("format.class", format), extra, ("group.id", &group)],
        );
        let snap = run(&pairs).unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(snap.records_written, n as u64, "{format}");
        let written = files(&out.path().join("topics").join(&j.topic), ext);
        assert_eq!(written.len(), 1, "{format}: {written:?}");
        readback(reader, &written[0], &expected_rows(n));
    }
}

#[test]
fn csv_output_with_options_reads_back() {
    let flat = r#"{"type":"record","name":"Flat","fields":[
      {"name":"id","type":"long"},{"name":"name","type":["null","string"],"default":null},
      {"name":"score","type":"double"}]}"#;
    let s = schema(flat);
    let names = ["plain", "with,comma", "with \"quote\"", "ünïcödé"];
    let values: Vec<_> = (0..8i64)
        .map(|i| {
            let name = if i == 5 {
                AV::Union(0, Box::new(AV::Null))
            } else {
                AV::Union(1, Box::new(AV::String(names[(i % 4) as usize].into())))
            };
            let rec = AV::Record(vec![
                ("id".into(), AV::Long(i)),
                ("name".into(), name),
                ("score".into(), AV::Double(i as f64 * 1.5)),
            ]);
            (None, Some(confluent(3, &avro_datum(&s, rec))))
        })
        .collect();
    let j = job(&values);
    j.registry.add(3, flat);
    let out = tempfile::tempdir().unwrap();
    let out_s = out.path().to_str().unwrap().to_string();
    let pairs = j.pairs(&out_s, &[("format.class", "csv"), ("csv.delimiter", ";")]);
    run(&pairs).unwrap();
    let written = files(&out.path().join("topics").join(&j.topic), ".csv");
    assert_eq!(written.len(), 1);
    let text = std::fs::read_to_string(&written[0]).unwrap();
    assert!(text.starts_with("id;name;score\n"), "{text}");
    let rows: Vec<serde_json::Value> = (0..8i64)
        .map(|i| {
            let name = (i != 5).then(|| names[(i % 4) as usize]);
            serde_json::json!({"id": i, "name": name, "score": i as f64 * 1.5})
        })
        .collect();
    readback(
        "csv",
        &written[0],
        &serde_json::json!({
            "columns": {"id": "int", "name": "string", "score": "float"},
            "order": ["id", "name", "score"],
            "rows": rows,
            "csv": {"delimiter": ";", "header": true}
        }),
    );
}

/// A v2 record (schema id 2) without email, written by apache-avro.
fn v2_without_email(i: i64) -> Vec<u8> {
    let rec = AV::Record(vec![
        ("id".into(), AV::Long(i)),
        ("name".into(), AV::String(format!("n{i}"))),
        ("email".into(), AV::Union(0, Box::new(AV::Null))),
    ]);
    confluent(2, &avro_datum(&schema(crate::avro_evolution::V2), rec))
}

#[test]
fn malformed_avro_follows_errors_tolerance_and_names_the_record() {
    let good = v2_without_email;
    let mut values: Vec<_> = (0..10).map(|i| (None, Some(good(i)))).collect();
    let mut wrong_magic = good(10);
    wrong_magic[0] = 9;
    values.push((None, Some(wrong_magic)));
    values.push((None, Some(confluent(99, &good(11)[5..]))));
    let truncated = good(12);
    values.push((None, Some(truncated[..truncated.len() - 2].to_vec())));
    let j = job(&values);
    j.registry.add(2, crate::avro_evolution::V2);

    let out = tempfile::tempdir().unwrap();
    let out_s = out.path().to_str().unwrap().to_string();
    let g1 = unique("g");
    let err = run(&j.pairs(&out_s, &[("group.id", &g1)]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("topic '{}' partition 0 offset 10", j.topic)),
        "{err}"
    );
    assert!(err.to_lowercase().contains("magic"), "{err}");

    let g2 = unique("g");
    let snap = run(&j.pairs(&out_s, &[("group.id", &g2), ("errors.tolerance", "all")])).unwrap();
    assert_eq!(snap.records_skipped, 3);
    assert_eq!(snap.records_written, 10);
}

#[test]
fn interleaved_schema_versions_share_one_file_under_backward() {
    use crate::avro_evolution::{v1, v2, V1, V2};
    let values: Vec<_> = (0..300)
        .map(|i| {
            let v = if i < 100 || i % 2 == 0 {
                v1(i as i32)
            } else {
                v2(i, Some("a@b.c"))
            };
            (None, Some(v))
        })
        .collect();
    let j = job(&values);
    j.registry.add(1, V1).add(2, V2);
    let out = tempfile::tempdir().unwrap();
    let out_s = out.path().to_str().unwrap().to_string();
    let pairs = j.pairs(
        &out_s,
        &[
            ("schema.compatibility", "BACKWARD"),
            ("decode.batch.records", "64"),
            ("format.class", "avro"),
        ],
    );
    let snap = run(&pairs).unwrap();
    assert_eq!(snap.records_written, 300);
    let written = files(&out.path().join("topics").join(&j.topic), ".avro");
    // The first batch (records 0..63) is all v1: one file under v1. The second batch brings v2:
    // that file is closed once and everything after it, v1 records included, is written under
    // v2 in one file, not a file per switch of version.
    assert_eq!(written.len(), 2, "{written:?}");
    let rows: Vec<serde_json::Value> = (64..300)
        .map(|i| {
            if i < 100 || i % 2 == 0 {
                serde_json::json!({"id": i, "name": format!("v1-{i}"), "email": null})
            } else {
                serde_json::json!({"id": i, "name": format!("v2-{i}"), "email": "a@b.c"})
            }
        })
        .collect();
    readback(
        "avro",
        &written[1],
        &serde_json::json!({
            "columns": {"id": "int", "name": "string", "email": "string"},
            "rows": rows
        }),
    );
}

#[test]
fn tombstones_fail_are_ignored_or_written_and_keys_and_headers_become_columns() {
    let good = v2_without_email;
    let values: Vec<_> = (0..6i64)
        .map(|i| {
            let key = Some(format!("key-{i}").into_bytes());
            (key, (i != 3).then(|| good(i)))
        })
        .collect();
    let j = job(&values);
    j.registry.add(2, crate::avro_evolution::V2);
    let out = tempfile::tempdir().unwrap();
    let out_s = out.path().to_str().unwrap().to_string();

    let g = unique("g");
    let err = run(&j.pairs(&out_s, &[("group.id", &g)]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("offset 3"), "fail is the default: {err}");

    let g = unique("g");
    let snap = run(&j.pairs(
        &out_s,
        &[("group.id", &g), ("behavior.on.null.values", "ignore")],
    ))
    .unwrap();
    assert_eq!((snap.records_written, snap.records_skipped), (5, 0));

    let out2 = tempfile::tempdir().unwrap();
    let out2_s = out2.path().to_str().unwrap().to_string();
    let g = unique("g");
    let pairs = j.pairs(
        &out2_s,
        &[
            ("group.id", &g),
            ("behavior.on.null.values", "write"),
            ("store.kafka.keys", "true"),
            ("store.kafka.headers", "true"),
            ("format.class", "json"),
        ],
    );
    let snap = run(&pairs).unwrap();
    assert_eq!(snap.records_written, 6);
    let written = files(&out2.path().join("topics").join(&j.topic), ".json");
    let text = std::fs::read_to_string(&written[0]).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6);
    assert!(rows[3].get("id").is_none_or(|v| v.is_null()), "{}", rows[3]);
    for (i, r) in rows.iter().enumerate() {
        assert!(r.get("_key").is_some(), "{r}");
        assert!(r.get("_headers").is_some(), "{r}");
        assert!(r.get("_offset").is_none(), "only keys and headers: {r}");
        if i != 3 {
            assert_eq!(r["id"], i as i64);
        }
    }
}

/// Plain Avro (V2, no Confluent framing) of record `i`.
fn plain_v2(i: i64) -> Vec<u8> {
    let rec = AV::Record(vec![
        ("id".into(), AV::Long(i)),
        ("name".into(), AV::String(format!("n{i}"))),
        ("email".into(), AV::Union(0, Box::new(AV::Null))),
    ]);
    avro_datum(&schema(crate::avro_evolution::V2), rec)
}

/// A dead letter: payload and the error headers topic, partition, offset, exception message.
pub(crate) type DeadLetter = (Vec<u8>, [String; 4]);

/// Reads `n` records from `topic`, polling with a deadline.
pub(crate) fn dead_letters(servers: &str, topic: &str, n: usize) -> Vec<DeadLetter> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", unique("dlq-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} dead letters",
            got.len()
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let header = |name: &str| {
                m.headers()
                    .and_then(|h| h.iter().find(|x| x.key == name).and_then(|x| x.value))
                    .map(|v| String::from_utf8_lossy(v).to_string())
                    .unwrap_or_default()
            };
            let names = ["topic", "partition", "offset", "exception.message"];
            let headers = names.map(|n| header(&format!("__connect.errors.{n}")));
            got.push((m.payload().unwrap_or_default().to_vec(), headers));
        }
    }
    got
}

/// Issue 23 item 10: an `input.format=avro` job with `value.avro.schema` whose first records are
/// JSON. It used to stop with "[internal error (a StreamX bug)] ... Writer schema store must
/// contain at least one schema" even under errors.tolerance=all. Now: with a dead letter queue
/// every JSON record lands there with topic, partition, offset and cause, and the Avro records
/// are written; with errors.tolerance=none the run stops with a user error naming
/// topic/partition/offset.
#[test]
fn plain_avro_job_on_json_records_dead_letters_them() {
    let json = |i: i64| format!("{{\"seq\":{i},\"note\":\"json, not avro\"}}").into_bytes();
    let mut values: Vec<KeyValue> = (0..8).map(|i| (None, Some(json(i)))).collect();
    values.extend((8..16).map(|i| (None, Some(plain_v2(i)))));
    let j = job(&values);
    let dlq = unique("dlq");
    j._cluster.create_topic(&dlq, 1).unwrap();
    let (out, strict_out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (out_s, strict_s) = (
        out.path().to_str().unwrap().to_string(),
        strict_out.path().to_str().unwrap().to_string(),
    );
    let (g1, g2) = (unique("g"), unique("g"));
    let strict = vec![
        ("name", j.topic.as_str()),
        ("bootstrap.servers", j.servers.as_str()),
        ("topics", j.topic.as_str()),
        ("store.url", strict_s.as_str()),
        ("group.id", g1.as_str()),
        ("input.format", "avro"),
        ("value.avro.schema", crate::avro_evolution::V2),
        ("format.class", "json"),
        ("decode.batch.records", "4"),
        ("flush.size", "100000"),
    ];
    let err = run(&strict).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.origin(), streamx::Origin::User, "{text}");
    assert!(
        text.contains(&format!("topic '{}' partition 0 offset 0", j.topic)),
        "{text}"
    );

    let mut tolerant = strict.clone();
    tolerant.retain(|(k, _)| !matches!(*k, "store.url" | "group.id"));
    tolerant.extend([
        ("store.url", out_s.as_str()),
        ("group.id", g2.as_str()),
        ("errors.tolerance", "all"),
        ("errors.deadletterqueue.topic.name", dlq.as_str()),
    ]);
    let snap = run(&tolerant).unwrap_or_else(|e| panic!("{e}"));
    let counts = (
        snap.records_written,
        snap.records_skipped,
        snap.records_dead_lettered,
    );
    assert_eq!(counts, (8, 8, 8));
    let mut ids = Vec::new();
    for f in files(&out.path().join("topics").join(&j.topic), ".json") {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            ids.push(row["id"].as_i64().unwrap());
        }
    }
    ids.sort();
    assert_eq!(ids, (8..16).collect::<Vec<_>>());
    let mut letters = dead_letters(&j.servers, &dlq, 8);
    letters.sort_by_key(|(_, h)| h[2].parse::<i64>().unwrap());
    for (i, (payload, [topic, partition, offset, message])) in letters.iter().enumerate() {
        assert_eq!(payload, &json(i as i64));
        assert_eq!(
            (topic.as_str(), partition.as_str(), offset.as_str()),
            (j.topic.as_str(), "0", i.to_string().as_str())
        );
        assert!(!message.is_empty(), "a reason for offset {i}");
    }
}
