// Confluent JSON Schema values end to end: records serialized by Python confluent-kafka's
// `JSONSerializer` (which registers its schemas in the stand-in registry), two schema versions,
// a malformed payload and a record outside the wire format; `streamx ingest` with
// value.converter=io.confluent.connect.json.JsonSchemaConverter writes Parquet read back by
// pyarrow (scripts/readback.py), every record exactly once, the bad ones in the dead letter
// queue with their reason.

use std::process::Command;

use serde_json::json;
use streamx::source::embedded::EmbeddedCluster;

use crate::common::registry::TestRegistry;
use crate::common::{python, readback};
use crate::ingest::{dead_letters, files, produce, run, unique, KeyValue};

const V1: &str = r##"{"$schema":"http://json-schema.org/draft-07/schema#","title":"Event",
 "type":"object","required":["id"],"properties":{
  "id":{"type":"integer"},"name":{"type":"string"},
  "at":{"type":"string","format":"date-time"},
  "tags":{"type":"array","items":{"type":"string"}},
  "user":{"oneOf":[{"type":"null"},{"$ref":"#/definitions/User"}]}},
 "definitions":{"User":{"type":"object","properties":{"age":{"type":"integer"}}}}}"##;

/// V1 plus a nullable `email` (a BACKWARD-compatible new version).
fn v2() -> String {
    let mut v: serde_json::Value = serde_json::from_str(V1).unwrap();
    v["properties"]["email"] = json!({"type": ["null", "string"]});
    v.to_string()
}

const PRODUCER: &str = r#"
import sys
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import SerializationContext, MessageField
url, topic, v1, v2 = sys.argv[1:5]
client = SchemaRegistryClient({"url": url})
ctx = SerializationContext(topic, MessageField.VALUE)
def event(i):
    return {"id": i, "name": "n%d ✓" % i, "at": "2024-05-01T10:00:%02d.000123Z" % i,
            "tags": ["a", str(i)], "user": None if i % 3 == 0 else {"age": i}}
s1 = JSONSerializer(v1, client)
for i in range(10):
    print(s1(event(i), ctx).hex())
s2 = JSONSerializer(v2, client)
for i in range(10, 20):
    e = event(i)
    e["email"] = None if i % 2 else "u%d@example.com" % i
    print(s2(e, ctx).hex())
"#;

/// The values Python's JSONSerializer writes for events 0..20 (ids 0..9 with V1, 10..19 V2).
fn serialized(registry: &str, topic: &str) -> Vec<Vec<u8>> {
    let out = Command::new(python())
        .args(["-c", PRODUCER, registry, topic, V1, &v2()])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "JSONSerializer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

/// The row of event `i` as readback.py compares it.
fn row(i: i64, with_email: bool) -> serde_json::Value {
    let user = (i % 3 != 0).then(|| json!({ "age": i }));
    let at = 1_714_557_600_000_123i64 + i * 1_000_000;
    let mut r = json!({"id": i, "name": format!("n{i} ✓"), "at": at,
                       "tags": ["a", i.to_string()], "user": user});
    if with_email {
        r["email"] = json!((i >= 10 && i % 2 == 0).then(|| format!("u{i}@example.com")));
    }
    r
}

#[test]
fn json_schema_values_from_python_are_ingested_exactly_once() {
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let (topic, dlq) = (unique("jsr"), unique("jsr-dlq"));
    cluster.create_topic(&topic, 1).unwrap();
    cluster.create_topic(&dlq, 1).unwrap();
    let registry = TestRegistry::start();
    let good = serialized(&registry.url, &topic);
    assert_eq!(good.len(), 20);
    let (v1_id, v2_id) = (good[0][1..5].to_vec(), good[19][1..5].to_vec());
    assert_ne!(v1_id, v2_id, "two schema versions registered");
    // Offsets 0-9: V1; 10: a V1 header with a payload that does not fit (id is a string);
    // 11: plain JSON without the wire format; 12-21: V2.
    let mut misfit = good[0][..5].to_vec();
    misfit.extend_from_slice(br#"{"id":"ten"}"#);
    let plain = br#"{"id":11}"#.to_vec();
    let mut values: Vec<KeyValue> = good[..10].iter().map(|v| (None, Some(v.clone()))).collect();
    values.push((None, Some(misfit.clone())));
    values.push((None, Some(plain.clone())));
    values.extend(good[10..].iter().map(|v| (None, Some(v.clone()))));
    produce(&servers, &topic, &values);

    let out = tempfile::tempdir().unwrap();
    let out_s = out.path().to_str().unwrap().to_string();
    let group = unique("g");
    let pairs = [
        ("name", topic.as_str()),
        ("bootstrap.servers", servers.as_str()),
        ("topics", topic.as_str()),
        ("group.id", group.as_str()),
        ("store.url", out_s.as_str()),
        (
            "value.converter",
            "io.confluent.connect.json.JsonSchemaConverter",
        ),
        ("value.converter.schema.registry.url", registry.url.as_str()),
        ("schema.compatibility", "BACKWARD"),
        ("decode.batch.records", "4"),
        ("flush.size", "100000"),
        ("errors.tolerance", "all"),
        ("errors.deadletterqueue.topic.name", dlq.as_str()),
    ];
    let snap = run(&pairs).unwrap_or_else(|e| panic!("{e}"));
    let counts = (snap.records_written, snap.records_dead_lettered);
    assert_eq!(counts, (20, 2));

    // Files before the V2 records have V1's columns; read back field by field by pyarrow.
    let written = files(&out.path().join("topics").join(&topic), ".parquet");
    assert!(written.len() >= 2, "a file per schema version: {written:?}");
    let mut covered = Vec::new();
    for file in &written {
        let name = file.file_stem().unwrap().to_str().unwrap().to_string();
        let parts: Vec<i64> = name
            .rsplit('+')
            .take(2)
            .map(|p| p.parse().unwrap())
            .collect();
        let (start, end) = (parts[1], parts[0]);
        covered.extend(start..=end);
        let offsets = start..=end;
        let v2_file = end >= 12;
        let rows: Vec<_> = offsets
            .filter(|o| *o != 10 && *o != 11)
            .map(|o| row(if o < 10 { o } else { o - 2 }, v2_file))
            .collect();
        let mut columns = json!({"id": "int", "name": "string", "at": "timestamp",
                                 "tags": {"list": "string"}, "user": {"struct": {"age": "int"}}});
        if v2_file {
            columns["email"] = json!("string");
        }
        readback("parquet", file, &json!({"columns": columns, "rows": rows}));
    }
    // The dead-lettered offsets 10 and 11 are in no file; every other offset in exactly one.
    covered.sort();
    let expected: Vec<i64> = (0..22).filter(|o| *o != 10 && *o != 11).collect();
    assert_eq!(covered, expected);

    // Without errors.tolerance the run stops at the first bad record, naming it.
    let (strict_out, strict_group) = (tempfile::tempdir().unwrap(), unique("g"));
    let strict_s = strict_out.path().to_str().unwrap().to_string();
    let mut strict: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(k, _)| !k.starts_with("errors.") && *k != "store.url" && *k != "group.id")
        .collect();
    strict.extend([
        ("store.url", strict_s.as_str()),
        ("group.id", strict_group.as_str()),
    ]);
    let err = run(&strict).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.origin(), streamx::Origin::User, "{text}");
    assert!(
        text.contains(&format!("topic '{topic}' partition 0 offset 10")),
        "{text}"
    );

    let mut letters = dead_letters(&servers, &dlq, 2);
    letters.sort_by_key(|(_, h)| h[2].parse::<i64>().unwrap());
    let (payload, [t, p, o, reason]) = &letters[0];
    assert_eq!(
        (payload, t, p, o.as_str()),
        (&misfit, &topic, &"0".to_string(), "10")
    );
    assert!(reason.contains("JSON Schema id"), "{reason}");
    let (payload, [_, _, o, reason]) = &letters[1];
    assert_eq!((payload, o.as_str()), (&plain, "11"));
    assert!(reason.contains("magic byte"), "{reason}");
}
