//! Inferred JSON schemas (no `value.schema`) on the embedded broker: the partitions of a topic in
//! one process share one schema, merged from what each inferred, so no partition loses a field
//! another partition's records lack; whichever partition decodes first, and also when a
//! partition's writer is made after another partition inferred (a rebalance gave it back).

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int32Type, Int64Type};
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use streamx::ingest::{self, IngestOptions};
use streamx::metrics::{Metrics, Snapshot};
use streamx::source::embedded::EmbeddedCluster;

/// The field only the records of `partition` carry: `a` (a string) in 0, `b` (a number) in 1.
fn own_field(partition: i32) -> &'static str {
    ["a", "b"][partition as usize]
}

/// Records `from..from + n` of `partition`: `id` (= offset) and the partition's own field, plus
/// the other partition's field when `both`.
fn records(partition: i32, from: i64, n: i64, both: bool) -> Vec<String> {
    (from..from + n)
        .map(|id| match (partition, both) {
            (_, true) => format!(r#"{{"id":{id},"a":"a-{id}","b":{}}}"#, id * 10),
            (0, false) => format!(r#"{{"id":{id},"a":"a-{id}"}}"#),
            _ => format!(r#"{{"id":{id},"b":{}}}"#, id * 10),
        })
        .collect()
}

/// A JSON -> Parquet job without `value.schema` (the schema is inferred).
fn inferring_job(
    servers: &str,
    topic: &str,
    out: &Path,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut pairs = job(servers, topic, out, extra);
    pairs.retain(|(k, _)| k != "value.schema");
    pairs
}

/// An ingest running in a thread until told to stop.
struct Running {
    metrics: Arc<Metrics>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: JoinHandle<Result<Snapshot, ingest::IngestError>>,
}

impl Running {
    fn start(pairs: &[(String, String)]) -> Running {
        let pairs = pairs.to_vec();
        let metrics = Arc::new(Metrics::default());
        let opts = IngestOptions {
            metrics: metrics.clone(),
            ..Default::default()
        };
        let stop = opts.shutdown.clone();
        let handle = std::thread::spawn(move || ingest::run(config(&pairs), opts));
        Running {
            metrics,
            stop,
            handle,
        }
    }

    fn assigned(&self) -> u64 {
        self.metrics.partitions_assigned.load(Ordering::Relaxed)
    }

    /// Stops it (what is open is committed) and waits for it.
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap().expect("ingest run");
    }
}

/// One written row: file name, `_partition`, `_offset`, `id`, `a`, `b` (`None` when the file has
/// no such column or the value is null).
#[derive(Debug)]
struct Row {
    file: String,
    partition: i32,
    offset: i64,
    id: i64,
    a: Option<String>,
    b: Option<i64>,
}

/// Every row of every committed Parquet file of `topic`.
fn rows(out: &Path, topic: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for f in data_files(&out.join("topics").join(topic), ".parquet") {
        let file = f.file_name().unwrap().to_string_lossy().to_string();
        let bytes = bytes::Bytes::from(std::fs::read(&f).unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let p = batch
                .column_by_name("_partition")
                .unwrap()
                .as_primitive::<Int32Type>()
                .clone();
            let o = batch
                .column_by_name("_offset")
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone();
            let id = batch
                .column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone();
            let a = batch
                .column_by_name("a")
                .map(|c| c.as_string::<i32>().clone());
            let b = batch
                .column_by_name("b")
                .map(|c| c.as_primitive::<Int64Type>().clone());
            for i in 0..batch.num_rows() {
                rows.push(Row {
                    file: file.clone(),
                    partition: p.value(i),
                    offset: o.value(i),
                    id: id.value(i),
                    a: a.as_ref()
                        .filter(|c| c.is_valid(i))
                        .map(|c| c.value(i).to_string()),
                    b: b.as_ref().filter(|c| c.is_valid(i)).map(|c| c.value(i)),
                });
            }
        }
    }
    rows.sort_by_key(|r| (r.partition, r.offset));
    rows
}

/// Asserts `rows` are offsets `0..n` of each partition once, each with its own field's value.
fn assert_every_field_kept(rows: &[Row], per_partition: &[(i32, i64)]) {
    let expected: usize = per_partition.iter().map(|(_, n)| *n as usize).sum();
    assert_eq!(rows.len(), expected, "rows written: {rows:?}");
    for r in rows {
        assert_eq!(r.id, r.offset, "{r:?}");
        match own_field(r.partition) {
            "a" => assert_eq!(r.a, Some(format!("a-{}", r.id)), "field a lost: {r:?}"),
            _ => assert_eq!(r.b, Some(r.id * 10), "field b lost: {r:?}"),
        }
    }
    for (p, n) in per_partition {
        let offsets: Vec<i64> = rows
            .iter()
            .filter(|r| r.partition == *p)
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, (0..*n).collect::<Vec<_>>(), "partition {p}");
    }
}

/// Partition `first` infers alone; a second member joins and leaves, so the process gets both
/// partitions back with new writers; then partition `1 - first` gets its records.
fn a_partition_assigned_after_another_inferred_keeps_its_fields(first: i32) {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("inferred-rebalance");
    cluster.create_topic(&topic, 2).unwrap();
    let out = tempfile::tempdir().unwrap();
    // Eager rebalancing (librdkafka's default, pinned): every partition is revoked and assigned
    // again, so after the second member leaves both writers of the first process are new.
    let extra = [
        ("flush.size", "10"),
        ("consumer.partition.assignment.strategy", "range"),
    ];
    let pairs = inferring_job(&servers, &topic, out.path(), &extra);
    let second = 1 - first;
    produce_values(&servers, &topic, first, &records(first, 0, 10, false));
    let a = Running::start(&pairs);
    wait_until(
        "the first partition's records to be committed",
        Duration::from_secs(60),
        || rows(out.path(), &topic).len() == 10,
    );
    let b = Running::start(&pairs);
    wait_until(
        "the group to split the partitions",
        Duration::from_secs(60),
        || a.assigned() == 1 && b.assigned() == 1,
    );
    b.stop();
    wait_until(
        "the first process to own both partitions again",
        Duration::from_secs(60),
        || a.assigned() == 2,
    );
    produce_values(&servers, &topic, second, &records(second, 0, 10, false));
    wait_until(
        "the second partition's records to be committed",
        Duration::from_secs(60),
        || rows(out.path(), &topic).len() == 20,
    );
    a.stop();
    assert_every_field_kept(&rows(out.path(), &topic), &[(0, 10), (1, 10)]);
}

#[test]
fn partition_0_infers_first_then_partition_1_is_reassigned() {
    a_partition_assigned_after_another_inferred_keeps_its_fields(0);
}

#[test]
fn partition_1_infers_first_then_partition_0_is_reassigned() {
    a_partition_assigned_after_another_inferred_keeps_its_fields(1);
}

/// Partitions 0, 1, 0 decode a batch of 10 each, in that order: partition 0's second batch is
/// decoded with the schema partition 1 widened (its `b` kept), and goes to a new file.
#[test]
fn a_partition_switches_to_the_widened_schema_at_its_next_batch_in_a_new_file() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("inferred-switch");
    cluster.create_topic(&topic, 2).unwrap();
    let out = tempfile::tempdir().unwrap();
    let extra = [("flush.size", "1000"), ("decode.batch.records", "10")];
    let pairs = inferring_job(&servers, &topic, out.path(), &extra);
    produce_values(&servers, &topic, 0, &records(0, 0, 10, false));
    let a = Running::start(&pairs);
    // One thread consumes and decodes in order: a record consumed after the batch-filling one is
    // decoded after that batch.
    let metrics = a.metrics.clone();
    let consumed = |n: u64| {
        let m = metrics.clone();
        move || m.records_consumed.load(Ordering::Relaxed) == n
    };
    wait_until(
        "partition 0's first batch",
        Duration::from_secs(60),
        consumed(10),
    );
    produce_values(&servers, &topic, 1, &records(1, 0, 10, false));
    wait_until("partition 1's batch", Duration::from_secs(60), consumed(20));
    produce_values(&servers, &topic, 0, &records(0, 10, 10, true));
    wait_until(
        "partition 0's second batch",
        Duration::from_secs(60),
        consumed(30),
    );
    a.stop();
    let rows = rows(out.path(), &topic);
    assert_every_field_kept(&rows, &[(0, 20), (1, 10)]);
    for r in rows.iter().filter(|r| r.partition == 0 && r.id >= 10) {
        assert_eq!(
            r.b,
            Some(r.id * 10),
            "partition 0 after the switch keeps b: {r:?}"
        );
    }
    let files: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.partition == 0)
        .map(|r| r.file.as_str())
        .collect();
    let want = [
        format!("{topic}+0+0000000000+0000000009.parquet"),
        format!("{topic}+0+0000000010+0000000019.parquet"),
    ];
    assert_eq!(
        files,
        want.iter().map(String::as_str).collect(),
        "one rotation at the switch"
    );
}

/// Every row of the committed Parquet files of `topic`, read by pyarrow (`STREAMX_TEST_PYTHON`),
/// each file alone (files of different schema versions differ in columns), as JSON objects.
fn pyarrow_rows(out: &Path, topic: &str) -> Vec<serde_json::Value> {
    let python = std::env::var("STREAMX_TEST_PYTHON")
        .expect("STREAMX_TEST_PYTHON (the services venv's python, with pyarrow)");
    let files = data_files(&out.join("topics").join(topic), ".parquet");
    let script = "import sys, json, pyarrow.parquet as pq\n\
                  rows = [r for f in sys.argv[1:] for r in pq.read_table(f).to_pylist()]\n\
                  print(json.dumps(rows, default=str))";
    let output = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut rows: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    rows.sort_by_key(|r| r["_offset"].as_i64());
    rows
}

/// Runs one partition's `values` through an inferring job (batches of 10) to the end; returns the
/// rows read back by pyarrow and the names of the files written.
fn ingest_values(
    values: &[String],
    extra: &[(&str, &str)],
) -> (Vec<serde_json::Value>, Vec<String>) {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("evolve");
    cluster.create_topic(&topic, 1).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut all = vec![("decode.batch.records", "10"), ("flush.size", "25")];
    all.extend_from_slice(extra);
    let pairs = inferring_job(&servers, &topic, out.path(), &all);
    produce_values(&servers, &topic, 0, values);
    let a = Running::start(&pairs);
    let n = values.len() as u64;
    wait_until("every record consumed", Duration::from_secs(60), || {
        a.metrics.records_consumed.load(Ordering::Relaxed) == n
    });
    a.stop();
    let mut files: Vec<String> = data_files(&out.path().join("topics").join(&topic), ".parquet")
        .iter()
        .map(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .replace(&topic, "t")
        })
        .collect();
    files.sort();
    (pyarrow_rows(out.path(), &topic), files)
}

/// Asserts that every non-null top-level field of each produced value is in its row (by offset),
/// read back equal as JSON, or in the row's `_rescued_data`.
fn assert_no_field_lost(values: &[String], rows: &[serde_json::Value]) {
    assert_eq!(rows.len(), values.len(), "one row per record");
    for (offset, value) in values.iter().enumerate() {
        let row = &rows[offset];
        assert_eq!(row["_offset"], offset as i64, "{row}");
        let rescued: serde_json::Value = match row["_rescued_data"].as_str() {
            Some(text) => serde_json::from_str(text).expect("_rescued_data is JSON"),
            None => serde_json::json!({}),
        };
        let sent: serde_json::Value = serde_json::from_str(value).unwrap();
        for (key, v) in sent.as_object().unwrap() {
            let kept = !row[key].is_null() || rescued.get(key) == Some(v);
            let empty = v.is_null() || v == &serde_json::json!([]) || v == &serde_json::json!({});
            assert!(
                kept || empty,
                "field '{key}' of offset {offset} lost: {row}"
            );
        }
    }
}

/// Issue 13's first scenario: a sparse first record, then full clickstream events, then a value
/// of the wrong shape: every field of every record is in the output, the misfit as JSON text.
#[test]
fn sparse_first_record_then_events_lose_no_field() {
    let mut values =
        vec![r#"{"id":"s0","ts":"2024-01-01T00:00:00Z","tags":[],"referrer":null}"#.to_string()];
    values.extend((0..40).map(streamx::decode::sample::clickstream_event));
    values.push(r#"{"id":"c1","device":"a plain string"}"#.to_string());
    let (rows, _) = ingest_values(&values, &[]);
    assert_no_field_lost(&values, &rows);
    assert_eq!(rows[41]["_rescued_data"], r#"{"device":"a plain string"}"#);
    assert!(rows[5]["event_type"].is_string() && rows[5]["device"]["os"].is_string());
}

/// Issue 13's second scenario: `"experiments": []` first, then lists of objects.
#[test]
fn empty_list_first_then_objects_lose_no_field() {
    let mut values = vec![r#"{"id":"s0","experiments":[]}"#.to_string()];
    values.extend(
        (0..30).map(|i| {
            format!(r#"{{"id":"e{i}","experiments":[{{"id":"exp-{i}","variant":"C"}}]}}"#)
        }),
    );
    let (rows, _) = ingest_values(&values, &[]);
    assert_no_field_lost(&values, &rows);
    assert_eq!(rows[3]["experiments"][0]["id"], "exp-2");
    assert!(rows.iter().all(|r| r["_rescued_data"].is_null()));
}

/// Interleaved shapes: a buffer that brings new columns makes one new version and one rotation,
/// later buffers of the same shapes none: 3 files for 40 records, not one per record.
#[test]
fn new_columns_cost_one_rotation_per_version() {
    let shapes = |from: usize| -> Vec<String> {
        (from..from + 10)
            .map(|i| match i % 3 {
                0 => format!(r#"{{"a":{i}}}"#),
                1 => format!(r#"{{"a":{i},"b":"x{i}"}}"#),
                _ => format!(r#"{{"c":{{"d":{i}}},"a":{i}}}"#),
            })
            .collect()
    };
    let mut values: Vec<String> = (0..10).map(|i| format!(r#"{{"a":{i}}}"#)).collect();
    values.extend([10, 20, 30].iter().flat_map(|&f| shapes(f)));
    let (rows, files) = ingest_values(&values, &[("flush.size", "1000")]);
    assert_no_field_lost(&values, &rows);
    let want = [
        "t+0+0000000000+0000000009.parquet",
        "t+0+0000000010+0000000039.parquet",
    ];
    assert_eq!(
        files, want,
        "one rotation, at the buffer that made version 2"
    );
    assert_eq!(rows[38]["c"]["d"], 38);
}

/// A restart and a second process use the one stored version history: the second run's records
/// lack `b`, yet its files keep the `b` column of the stored version, new fields make version 2
/// (not a second version 1), and `streamx schema` lists both versions.
#[test]
fn a_restart_and_a_second_process_continue_the_stored_versions() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("evolve-restart");
    cluster.create_topic(&topic, 2).unwrap();
    let out = tempfile::tempdir().unwrap();
    let extra = [("flush.size", "5"), ("decode.batch.records", "5")];
    let pairs = inferring_job(&servers, &topic, out.path(), &extra);
    let run = |total: u64| {
        let a = Running::start(&pairs);
        wait_until("records committed", Duration::from_secs(60), || {
            rows(out.path(), &topic).len() as u64 == total
        });
        a.stop();
    };
    produce_values(&servers, &topic, 0, &records(0, 0, 5, true));
    run(5);
    // Restarted: partition 1 has never been seen, its records lack `a`.
    produce_values(&servers, &topic, 1, &records(1, 0, 5, false));
    run(10);
    let written = rows(out.path(), &topic);
    assert!(
        written.iter().all(|r| r.b == Some(r.id * 10)),
        "{written:?}"
    );
    let schemas = out.path().join(format!("topics/_streamx/schemas/{topic}"));
    let mut stored: Vec<String> = std::fs::read_dir(&schemas)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    stored.sort();
    assert_eq!(stored, ["1.json"], "nothing new after the restart");
    // Two processes at once, one with a new field: version 2, seen by both.
    let a = Running::start(&pairs);
    let b = Running::start(&pairs);
    let more = |p: i32| -> Vec<String> {
        (5..10)
            .map(|id| format!(r#"{{"id":{id},"a":"a-{id}","b":{},"c{p}":true}}"#, id * 10))
            .collect()
    };
    produce_values(&servers, &topic, 0, &more(0));
    produce_values(&servers, &topic, 1, &more(1));
    wait_until("records committed", Duration::from_secs(60), || {
        rows(out.path(), &topic).len() == 20
    });
    a.stop();
    b.stop();
    let cli = std::process::Command::new(streamx_bin())
        .arg("schema")
        .args(
            pairs
                .iter()
                .flat_map(|(k, v)| ["--set".to_string(), format!("{k}={v}")]),
        )
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[0], format!("{topic} v1: a Utf8, b Int64, id Int64"));
    let newest = lines.last().unwrap();
    assert!(
        newest.contains("c0 Boolean") && newest.contains("c1 Boolean"),
        "{shown}"
    );
    assert!(lines.len() <= 3, "{shown}");
}

/// Four partitions, each with a field of its own: the first version is inferred from the first
/// records of every partition (not from whichever partition decodes first), so the topic has one
/// stored version and every file carries every partition's field.
#[test]
fn the_first_version_samples_every_partition() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("evolve-sample");
    cluster.create_topic(&topic, 4).unwrap();
    let out = tempfile::tempdir().unwrap();
    let pairs = inferring_job(&servers, &topic, out.path(), &[("flush.size", "1000")]);
    for p in 0..4 {
        let values: Vec<String> = (0..30)
            .map(|id| format!(r#"{{"id":{id},"f{p}":"p{p}-{id}"}}"#))
            .collect();
        produce_values(&servers, &topic, p, &values);
    }
    let opts = IngestOptions {
        stop_at_end: true,
        ..Default::default()
    };
    ingest::run(config(&pairs), opts).expect("ingest");
    let schemas = out.path().join(format!("topics/_streamx/schemas/{topic}"));
    let stored: Vec<String> = std::fs::read_dir(&schemas)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        stored,
        ["1.json"],
        "one version from every partition's sample"
    );
    let rows = pyarrow_rows(out.path(), &topic);
    assert_eq!(rows.len(), 120);
    for row in &rows {
        for p in 0..4 {
            let field = format!("f{p}");
            let mine = row["_partition"] == p;
            assert!(
                row.get(&field).is_some(),
                "{field} is a column of every file: {row}"
            );
            assert_eq!(row[&field].is_string(), mine, "{row}");
        }
    }
}

/// The stored versions of `topic`'s inferred schema: (number, field names), oldest first.
fn stored_versions(out: &Path, topic: &str) -> Vec<(u64, Vec<String>)> {
    let dir = out.join(format!("topics/_streamx/schemas/{topic}"));
    let mut versions: Vec<(u64, Vec<String>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let n = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            let stored: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let names = stored["fields"].as_array().unwrap().iter();
            (
                n,
                names
                    .map(|f| f["name"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    versions.sort();
    versions
}

/// Issue 23 item 8: JSON whose keys are data (a user id per key). 5,000 records, each with a key
/// no record had before, decoded 100 at a time. Every batch used to make a schema version and
/// close the open files: 62 versions and files, a schema of 5,001 columns. The inferred schema
/// now stops growing at `json.schema.max.fields` (default 1,000, fields at every level), and at
/// `json.schema.max.versions` (default 100) it stops changing: the keys past either go to
/// `_rescued_data`, so versions and files stay few and no key is lost.
#[test]
fn dynamic_keys_stop_at_the_field_cap_and_are_rescued() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("dynamic-keys");
    cluster.create_topic(&topic, 1).unwrap();
    let values: Vec<String> = (0..5000)
        .map(|i| format!(r#"{{"id":{i},"user_{i:05}":{i}}}"#))
        .collect();
    produce_values(&servers, &topic, 0, &values);
    let run = |max_versions: &str| {
        let out = tempfile::tempdir().unwrap();
        let group = unique("g");
        let extra = [
            ("decode.batch.records", "100"),
            ("flush.size", "100000"),
            ("group.id", group.as_str()),
            ("json.schema.max.versions", max_versions),
        ];
        let pairs = inferring_job(&servers, &topic, out.path(), &extra);
        let opts = IngestOptions {
            stop_at_end: true,
            ..Default::default()
        };
        ingest::run(config(&pairs), opts).expect("ingest");
        let versions = stored_versions(out.path(), &topic);
        let files = data_files(&out.path().join("topics").join(&topic), ".parquet").len();
        let rows = pyarrow_rows(out.path(), &topic);
        assert_no_field_lost(&values, &rows);
        let last = rows[4999]["_rescued_data"].as_str().unwrap_or_default();
        assert_eq!(last, r#"{"user_04999":4999}"#);
        (versions, files)
    };
    // Default caps: the first version and one per batch of 100 new keys up to 1,000 fields.
    let (versions, files) = run("100");
    let widest = versions.iter().map(|(_, f)| f.len()).max().unwrap();
    assert!(
        versions.len() <= 11 && files <= 11 && widest == 1000,
        "{} versions, {files} files, {widest} fields",
        versions.len()
    );
    // Three versions at most: three files.
    let (versions, files) = run("3");
    assert_eq!((versions.len(), files), (3, 3));
}

/// At `json.schema.max.versions` a field still without a type (seen only as null) cannot get one
/// any more: its values go to `_rescued_data` (not into the placeholder column, which is never
/// written), as do fields the last version lacks.
#[test]
fn the_last_version_rescues_values_of_untyped_and_new_fields() {
    let mut values: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"a":{i},"n":null}}"#))
        .collect();
    values.extend((10..20).map(|i| format!(r#"{{"a":{i},"n":{i}}}"#)));
    values.extend((20..30).map(|i| format!(r#"{{"a":{i},"b":"x{i}","n":{{"k":{i}}}}}"#)));
    let (rows, files) = ingest_values(
        &values,
        &[("json.schema.max.versions", "1"), ("flush.size", "1000")],
    );
    assert_no_field_lost(&values, &rows);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(rows[15]["_rescued_data"], r#"{"n":15}"#);
    assert_eq!(rows[25]["_rescued_data"], r#"{"b":"x25","n":{"k":25}}"#);
    assert_eq!(rows[25]["a"], 25);
}
