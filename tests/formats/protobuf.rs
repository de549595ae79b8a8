// Confluent Protobuf values (io.confluent.connect.protobuf.ProtobufConverter) end to end:
// records written by confluent-kafka's own ProtobufSerializer (tests/formats/protobuf_records.py:
// nested messages, repeated, map, oneof, enum, Timestamp, a wrapper, a schema reference and two
// schema versions), their schemas served by the stand-in registry, ingested into Parquet on the
// embedded broker, read back by pyarrow record by record; a malformed value goes to the DLQ.

use std::path::Path;
use std::process::Command;

use streamx::source::embedded::EmbeddedCluster;

use crate::common::python;
use crate::common::registry::TestRegistry;
use crate::ingest::{dead_letters, produce, run, unique};

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/formats/protobuf_records.py")
}

fn python_run(args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(script())
        .args(args)
        .output()
        .expect("python runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "protobuf_records.py {args:?}:\n{stdout}\n{stderr}"
    );
    stdout
}

/// Serves the mock registry's contents (ids and subject versions) from the stand-in registry.
fn serve(registry: &TestRegistry, dump: &serde_json::Value) {
    for (id, body) in dump["ids"].as_object().unwrap() {
        registry.add_raw(id.parse().unwrap(), body.clone());
    }
    for body in dump["subjects"].as_array().unwrap() {
        let (subject, version) = (body["subject"].as_str().unwrap(), body["version"].as_i64());
        registry.add_subject(subject, version.unwrap(), body.clone());
    }
}

#[test]
fn protobuf_serializer_records_of_two_versions_land_once_and_read_back() {
    let n = 40;
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let (topic, dlq) = (unique("proto"), unique("proto-dlq"));
    cluster.create_topic(&topic, 1).unwrap();
    cluster.create_topic(&dlq, 1).unwrap();
    let dump = python_run(&["produce", &servers, &topic, &n.to_string()]);
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    assert_eq!(dump["ids"].as_object().unwrap().len(), 3, "{dump}");
    let bad = b"{\"not\": \"protobuf\"}".to_vec();
    produce(&servers, &topic, &[(None, Some(bad.clone()))]);
    let registry = TestRegistry::start();
    serve(&registry, &dump);

    let out = tempfile::tempdir().unwrap();
    let store = out.path().to_str().unwrap();
    let group = unique("g");
    let snap = run(&[
        ("name", topic.as_str()),
        ("bootstrap.servers", servers.as_str()),
        ("topics", topic.as_str()),
        ("group.id", group.as_str()),
        ("store.url", store),
        (
            "value.converter",
            "io.confluent.connect.protobuf.ProtobufConverter",
        ),
        ("value.converter.schema.registry.url", registry.url.as_str()),
        // Small buffers: the second schema id arrives mid-stream and the output schema changes.
        ("decode.batch.records", "8"),
        ("flush.size", "100000"),
        ("errors.tolerance", "all"),
        ("errors.deadletterqueue.topic.name", dlq.as_str()),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (snap.records_written, snap.records_dead_lettered),
        (n, 1),
        "{snap:?}"
    );
    let report = python_run(&["check", store, &n.to_string()]);
    // One file per output schema: the second version rotated the first file once.
    assert_eq!(report.trim(), "OK 40 rows in 2 files", "{report}");

    let letters = dead_letters(&servers, &dlq, 1);
    let (payload, [t, partition, offset, message]) = &letters[0];
    assert_eq!(payload, &bad);
    assert_eq!(
        (t.as_str(), partition.as_str(), offset.as_str()),
        (topic.as_str(), "0", n.to_string().as_str())
    );
    assert!(message.contains("wrong magic byte 0x7b"), "{message}");
}
