//! Shared helpers of the integration tests: unique names, producing, running the ingest (in
//! process or as the real binary) and reading every committed file back.
#![allow(dead_code)]

pub mod compact;
pub mod crash;
pub mod hive;
pub mod tls;
pub mod worker;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int32Type, Int64Type};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    format!("{prefix}-{}-{t}-{n}", std::process::id())
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STREAMX_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The JSON value of test record `seq` (unique per partition and seq).
pub fn event(partition: i32, seq: u64) -> String {
    format!(
        r#"{{"p":{partition},"seq":{seq},"user":"u{}","amount":{}.5,"note":"héllo / = wörld"}}"#,
        seq % 13,
        seq % 100
    )
}

pub const EVENT_SCHEMA: &str = "p INT, seq BIGINT, user STRING, amount DOUBLE, note STRING";

/// Produces `per_partition` events into each of `partitions` partitions, explicitly partitioned.
pub fn produce(servers: &str, topic: &str, partitions: i32, from: u64, per_partition: u64) {
    produce_with(servers, topic, partitions, from, per_partition, event);
}

/// Like [`produce`], with `value(partition, seq)` as the value of record `seq`.
pub fn produce_with(
    servers: &str,
    topic: &str,
    partitions: i32,
    from: u64,
    per_partition: u64,
    value: impl Fn(i32, u64) -> String,
) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for seq in from..from + per_partition {
        for p in 0..partitions {
            let v = value(p, seq);
            let k = format!("k{seq}");
            let r = BaseRecord::to(topic)
                .partition(p)
                .key(k.as_bytes())
                .payload(v.as_bytes());
            send(&producer, r);
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

/// Sends one record, waiting while the producer queue is full.
pub fn send<K: rdkafka::message::ToBytes + ?Sized, V: rdkafka::message::ToBytes + ?Sized>(
    producer: &BaseProducer,
    mut record: BaseRecord<'_, K, V>,
) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, back)) => {
                record = back;
                producer.poll(Duration::from_millis(5));
            }
        }
    }
}

/// Produces `values` as they are into one partition.
pub fn produce_values(servers: &str, topic: &str, partition: i32, values: &[String]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .unwrap();
    for v in values {
        producer
            .send(
                BaseRecord::<(), _>::to(topic)
                    .partition(partition)
                    .payload(v.as_bytes()),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// Produces records `0..count` into partition `p`; record `n` has the value `value(n)` and the
/// Kafka timestamp `base_ms + n * step_ms`.
pub fn produce_timed_from(
    servers: &str,
    topic: &str,
    p: i32,
    count: i64,
    (base_ms, step_ms): (i64, i64),
    value: impl Fn(i64) -> String,
) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .unwrap();
    for n in 0..count {
        let v = value(n);
        let r = BaseRecord::<(), _>::to(topic)
            .partition(p)
            .payload(v.as_bytes())
            .timestamp(base_ms + n * step_ms);
        send(&producer, r);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Properties for a JSON -> Parquet job with metadata columns, as `--set` pairs.
pub fn job(
    servers: &str,
    topic: &str,
    out: &Path,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = vec![
        ("name".into(), topic.into()),
        ("bootstrap.servers".into(), servers.into()),
        ("topics".into(), topic.into()),
        ("store.url".into(), out.to_string_lossy().into()),
        ("value.schema".into(), EVENT_SCHEMA.into()),
        ("include.kafka.metadata".into(), "true".into()),
        ("consumer.session.timeout.ms".into(), "6000".into()),
        ("consumer.heartbeat.interval.ms".into(), "500".into()),
    ];
    for (k, val) in extra {
        v.retain(|(key, _)| key != k);
        v.push((k.to_string(), val.to_string()));
    }
    v
}

pub fn config(pairs: &[(String, String)]) -> streamx::config::Config {
    streamx::config::Config::from_properties_str("", pairs).expect("valid test config")
}

/// Every `.parquet` file below `dir`, skipping `_`-prefixed directories as readers do.
pub fn data_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            out.extend(data_files(&p, ext));
        } else if name.ends_with(ext) {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// (partition, offset) -> how many times it was written, from every committed Parquet file.
pub fn offsets_written(out: &Path, topic: &str) -> BTreeMap<(i32, i64), u32> {
    let mut seen = BTreeMap::new();
    for f in data_files(&out.join("topics").join(topic), ".parquet") {
        let bytes = bytes::Bytes::from(std::fs::read(&f).unwrap());
        count_offsets(bytes, &mut seen);
    }
    seen
}

/// Adds the (`_partition`, `_offset`) of every row of one Parquet file to `seen`, checking that
/// each row's value (field `p`) came from the Kafka partition it says.
pub fn count_offsets(parquet_file: bytes::Bytes, seen: &mut BTreeMap<(i32, i64), u32>) {
    let reader = ParquetRecordBatchReaderBuilder::try_new(parquet_file)
        .unwrap()
        .build()
        .unwrap();
    for batch in reader {
        let batch = batch.unwrap();
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap_or_else(|| panic!("{name} column"))
                .clone()
        };
        let (p, o, vp) = (column("_partition"), column("_offset"), column("p"));
        let (p, o, vp) = (
            p.as_primitive::<Int32Type>(),
            o.as_primitive::<Int64Type>(),
            vp.as_primitive::<Int32Type>(),
        );
        for i in 0..batch.num_rows() {
            assert!(!o.is_null(i));
            assert_eq!(vp.value(i), p.value(i), "value/partition mismatch");
            *seen.entry((p.value(i), o.value(i))).or_insert(0) += 1;
        }
    }
}

/// Asserts every offset `0..per_partition` of every partition appears exactly once, nothing else.
pub fn assert_exactly_once(seen: &BTreeMap<(i32, i64), u32>, partitions: i32, per_partition: i64) {
    assert_exactly_once_where(seen, partitions, per_partition, |_, _| true);
}

/// Asserts every offset `0..per_partition` of every partition for which `expected` holds
/// appears exactly once, and nothing else does.
pub fn assert_exactly_once_where(
    seen: &BTreeMap<(i32, i64), u32>,
    partitions: i32,
    per_partition: i64,
    expected: impl Fn(i32, i64) -> bool,
) {
    let dups: Vec<_> = seen.iter().filter(|(_, &n)| n != 1).take(10).collect();
    assert!(dups.is_empty(), "records written more than once: {dups:?}");
    for p in 0..partitions {
        let missing: Vec<i64> = (0..per_partition)
            .filter(|o| expected(p, *o) && !seen.contains_key(&(p, *o)))
            .take(10)
            .collect();
        assert!(
            missing.is_empty(),
            "partition {p}: offsets missing (first ones): {missing:?}"
        );
    }
    let extra: Vec<_> = seen
        .keys()
        .filter(|(p, o)| *p >= partitions || *o >= per_partition || !expected(*p, *o))
        .take(10)
        .collect();
    assert!(extra.is_empty(), "unexpected records: {extra:?}");
}

/// Polls `f` until it returns true or `deadline` passes.
pub fn wait_until(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {deadline:?} waiting for {what}");
}

/// The `streamx` binary built for these tests.
/// The `streamx` binary the tests run: `STREAMX_TEST_BIN` when set (a copy of one checkout's
/// build, safe from other checkouts that share the target directory and replace
/// `target/debug/streamx`), else the one cargo built for these tests.
pub fn streamx_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("STREAMX_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_streamx").into())
    })
}

/// `--set k=v` arguments.
pub fn set_args(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(k, v)| ["--set".to_string(), format!("{k}={v}")])
        .collect()
}

/// An environment variable the test services script exports; a missing one fails the test with
/// instructions (these tests are never skipped).
pub fn service_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the test services with `scripts/test.sh` (or `scripts/services.sh up` and source its env file)")
    })
}

/// Deletes every object below the store's root.
pub fn delete_all(store: &streamx::store::Store) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let metas: Vec<_> = store
            .inner
            .list(Some(&store.root))
            .try_collect()
            .await
            .unwrap();
        for m in metas {
            store.inner.delete(&m.location).await.unwrap();
        }
    });
}

/// A plain HTTP request to the S3 emulator (moto accepts unsigned bucket creation/deletion).
pub fn http(endpoint: &str, method: &str, path: &str) -> String {
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

/// Runs the real binary with `--stop-at-end` and these `--set` arguments; fails the test (with
/// its stderr) unless it exits successfully.
pub fn run_binary_to_end(args: &[String], label: &str) {
    let outp = std::process::Command::new(streamx_bin())
        .arg("ingest")
        .args(args)
        .arg("--stop-at-end")
        .env("STREAMX_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        outp.status.success(),
        "{label}: final run failed: {}",
        String::from_utf8_lossy(&outp.stderr)
    );
}

/// A new bucket in the S3 emulator at `endpoint` (moto) and the `store.*` options to reach it.
pub fn s3_bucket(endpoint: &str, prefix: &str) -> (String, Vec<(&'static str, String)>) {
    let bucket = unique(prefix).to_lowercase();
    let resp = http(endpoint, "PUT", &format!("/{bucket}"));
    assert!(resp.starts_with("HTTP/1.1 200"), "create bucket: {resp}");
    let opts = vec![
        ("endpoint", endpoint.to_string()),
        ("region", "us-east-1".to_string()),
        ("allow_http", "true".to_string()),
        ("access_key_id", "test".to_string()),
        ("secret_access_key", "test".to_string()),
    ];
    (bucket, opts)
}

/// (partition, offset) -> count, read from every Parquet file under `<root>/topics/<topic>/`.
pub fn offsets_in_store(store: &streamx::store::Store, topic: &str) -> BTreeMap<(i32, i64), u32> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let prefix = store.path(&format!("topics/{topic}"));
        let metas: Vec<_> = store.inner.list(Some(&prefix)).try_collect().await.unwrap();
        let mut seen = BTreeMap::new();
        for m in metas
            .iter()
            .filter(|m| m.location.as_ref().ends_with(".parquet"))
        {
            let bytes: bytes::Bytes = store
                .inner
                .get(&m.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            count_offsets(bytes, &mut seen);
        }
        seen
    })
}

/// A container name no other test uses (Azure allows lower-case letters and digits).
pub fn container_name(prefix: &str) -> String {
    unique(prefix)
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(40)
        .collect()
}

/// Creates or deletes an Azurite container (a SharedKey-signed request, made by the services
/// helper script, since object_store has no container API).
pub fn azure_container(action: &str, name: &str) {
    let python = service_env("STREAMX_TEST_PYTHON");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services/smoke.py");
    let out = std::process::Command::new(python)
        .args([script, "azure-container", action, name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{action} container {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the ingest with `--stop-at-end` in a thread; its result and how long it took. Fails the
/// test unless it returns within `deadline` (then it is stopped through its shutdown flag first).
pub fn ingest_within(
    pairs: &[(String, String)],
    deadline: Duration,
) -> (
    Result<streamx::metrics::Snapshot, streamx::ingest::IngestError>,
    Duration,
) {
    let opts = streamx::ingest::IngestOptions {
        stop_at_end: true,
        ..Default::default()
    };
    let shutdown = opts.shutdown.clone();
    let config = config(pairs);
    let (tx, rx) = std::sync::mpsc::channel();
    let started = Instant::now();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(streamx::ingest::run(config, opts));
    });
    match rx.recv_timeout(deadline) {
        Ok(result) => {
            handle.join().unwrap();
            (result, started.elapsed())
        }
        Err(_) => {
            shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = handle.join();
            panic!("--stop-at-end did not stop within {deadline:?}");
        }
    }
}
