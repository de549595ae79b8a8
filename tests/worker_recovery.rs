//! `streamx worker` recovering by itself (issue 23 item 7), the real binary on tansu:
//!
//! - a task that fails on a transient store fault (the store's `topics` directory replaced by a
//!   file, then put back) is FAILED with the error as `trace` while it waits, restarted with
//!   backoff until the store is back, then RUNNING again; its restarts are counted in the status
//!   (`restarts`) and in `streamx_task_restarts_total`, and every record lands exactly once;
//! - a task that fails on a user error (a bad record with `errors.tolerance=none`) is not
//!   restarted: restarting cannot help;
//! - a starting worker acts on the config topic only once it has read it to its end: a job
//!   deleted later in the topic is never started, a config replaced later never runs.
//!
//! Jobs write to a local store directory per test; helpers: tests/common/worker.rs.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::worker::*;
use common::*;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::{json, Value};

/// A raw-format job `name` on `topic`, writing to the local directory `store`.
fn local_job(name: &str, topic: &str, store: &Path) -> Value {
    json!({"name": name, "config": {
        "name": name,
        "connector.class": "com.qubole.streamx.s3.S3SinkConnector",
        "format.class": "com.qubole.streamx.SourceFormat",
        "tasks.max": "1",
        "topics": topic,
        "flush.size": "2",
        "store.url": store.to_str().unwrap(),
    }})
}

/// Every line of every committed `.raw` file below `store`: value -> count.
fn landed(store: &Path) -> BTreeMap<String, u32> {
    let mut seen = BTreeMap::new();
    for file in data_files(&store.join("topics"), ".raw") {
        for line in std::fs::read_to_string(file).unwrap_or_default().lines() {
            *seen.entry(line.to_string()).or_insert(0) += 1;
        }
    }
    seen
}

/// Waits until exactly the values `p<p>-<seq>` for seq < `upto` have landed, each once.
fn expect_exactly(w: &Worker, store: &Path, partitions: i32, upto: u64) {
    let want: BTreeMap<String, u32> = (0..partitions)
        .flat_map(|p| (0..upto).map(move |s| (format!("p{p}-{s}"), 1)))
        .collect();
    let deadline = std::time::Instant::now() + LAND;
    while landed(store) != want {
        let got = landed(store);
        let dup: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
        assert!(dup.is_empty(), "records landed more than once: {dup:?}");
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} records landed; worker log:\n{}",
            got.len(),
            want.len(),
            w.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn task0(w: &Worker, name: &str) -> Value {
    let (_, status) = w.api("GET", &format!("/connectors/{name}/status"), None);
    status["tasks"][0].clone()
}

/// Waits until task 0 of `name` satisfies `ready`; returns it. On timeout fails with the log.
fn wait_task(w: &Worker, name: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + LAND;
    loop {
        let t = task0(w, name);
        if ready(&t) {
            return t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what} (task: {t}); worker log:\n{}",
            w.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `streamx_task_restarts_total{job="<name>"}` of `w`.
fn restarts_metric(w: &Worker, name: &str) -> f64 {
    let (code, text) = call_text(&format!("{}/metrics", w.base)).expect("GET /metrics");
    assert_eq!(code, 200);
    let key = format!("streamx_task_restarts_total{{job=\"{name}\"}}");
    parse_prometheus(&text).get(&key).copied().unwrap_or(-1.0)
}

#[test]
fn a_task_failed_on_a_store_fault_restarts_by_itself_and_lands_exactly_once() {
    let s = setup("selfheal", 2);
    let store = s.dir.path().join("store");
    let props = format!(
        "{}task.restart.backoff.initial.ms=300\ntask.restart.backoff.max.ms=1500\n",
        s.props
    );
    let w = Worker::start(s.dir.path(), &props);
    let name = unique("clickstream");
    let (code, body) = w.api(
        "POST",
        "/connectors",
        Some(local_job(&name, &s.topic, &store)),
    );
    assert_eq!(code, 201, "{body}");
    s.produce(2, 0, 10);
    expect_exactly(&w, &store, 2, 10);

    // The fault: the store's topics directory becomes a file, so every write fails.
    let (topics, aside) = (store.join("topics"), store.join("topics.aside"));
    std::fs::rename(&topics, &aside).unwrap();
    std::fs::write(&topics, "not a directory").unwrap();
    s.produce(2, 10, 10);
    let failed = wait_task(&w, &name, "the task to fail on the store fault", |t| {
        t["state"] == "FAILED"
    });
    let trace = failed["trace"].as_str().unwrap_or_default();
    assert!(trace.contains("external system error"), "{failed}");
    assert!(trace.contains("restarting automatically in"), "{failed}");
    wait_task(
        &w,
        &name,
        "the task to be restarted (twice) by itself",
        |t| t["restarts"].as_u64().unwrap_or(0) >= 2,
    );

    // The store comes back: the task runs again by itself, nothing lost, nothing twice.
    std::fs::remove_file(&topics).unwrap();
    std::fs::rename(&aside, &topics).unwrap();
    expect_exactly(&w, &store, 2, 20);
    // Even counts: flush.size=2 commits records in pairs.
    s.produce(2, 20, 6);
    expect_exactly(&w, &store, 2, 26);
    let status = wait_state(&w, &name, "RUNNING", Some("RUNNING"));
    let restarts = status["tasks"][0]["restarts"].as_u64().unwrap_or(0);
    assert!(restarts >= 2, "{status}");
    assert!(status["tasks"][0].get("trace").is_none(), "{status}");
    assert_eq!(restarts_metric(&w, &name), restarts as f64);
    let (code, _) = w.api("DELETE", &format!("/connectors/{name}"), None);
    assert_eq!(code, 204);
    w.stop();
}

#[test]
fn a_task_failed_on_a_user_error_is_not_restarted() {
    let s = setup("userfail", 1);
    let store = s.dir.path().join("store");
    let props = format!(
        "{}task.restart.backoff.initial.ms=100\ntask.restart.backoff.max.ms=200\n",
        s.props
    );
    let w = Worker::start(s.dir.path(), &props);
    let name = unique("clickstream");
    let mut job = local_job(&name, &s.topic, &store);
    // JSON input with a schema: a record that is not JSON is a bad record, and with
    // errors.tolerance=none (the default) the task fails.
    job["config"]["format.class"] = json!("io.confluent.connect.s3.format.json.JsonFormat");
    job["config"]["value.converter"] = json!("org.apache.kafka.connect.json.JsonConverter");
    job["config"]["value.converter.schemas.enable"] = json!("false");
    job["config"]["value.schema"] = json!("p INT, seq BIGINT");
    let (code, body) = w.api("POST", "/connectors", Some(job));
    assert_eq!(code, 201, "{body}");
    let values = [r#"{"p":0,"seq":0}"#, "not json", r#"{"p":0,"seq":2}"#];
    produce_values(&s.servers, &s.topic, 0, &values.map(String::from));
    let failed = wait_task(&w, &name, "the task to fail on the bad record", |t| {
        t["state"] == "FAILED"
    });
    let trace = failed["trace"].as_str().unwrap_or_default();
    assert!(trace.contains("user error"), "{failed}");
    // Many backoffs later it is still FAILED, never restarted.
    let watch = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < watch {
        let t = task0(&w, &name);
        assert_eq!(t["state"], "FAILED", "{t}");
        assert!(t.get("restarts").is_none(), "{t}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(restarts_metric(&w, &name), 0.0);
    w.stop();
}

/// The `config.storage.topic` of a [`Setup`]'s worker properties.
fn config_topic(props: &str) -> String {
    props
        .lines()
        .find_map(|l| l.strip_prefix("config.storage.topic="))
        .unwrap()
        .to_string()
}

/// Writes `records` (key, value or tombstone) to partition 0 of `topic`, in order.
fn write_config_records(servers: &str, topic: &str, records: &[(String, Option<String>)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("enable.idempotence", "true")
        .set("message.max.bytes", "1000000")
        .create()
        .unwrap();
    for (key, value) in records {
        let mut r = BaseRecord::<str, str>::to(topic).key(key).partition(0);
        if let Some(v) = value {
            r = r.payload(v);
        }
        send(&producer, r);
        producer.flush(Duration::from_secs(30)).unwrap();
    }
}

#[test]
fn a_starting_worker_acts_only_on_the_config_topic_read_to_its_end() {
    let s = setup("gate", 1);
    s.produce(1, 0, 6);
    let cfg = config_topic(&s.props);
    create_topic(&s.servers, &cfg, 1);
    let (deleted, moved) = (unique("deleted"), unique("moved"));
    let dir = s.dir.path();
    let (deleted_store, old_store, new_store) =
        (dir.join("deleted"), dir.join("old"), dir.join("new"));
    let props = |job: Value| Some(json!({"properties": job["config"]}).to_string());
    // More than a fetch (1 MiB per partition) between a job's first record and its last, so a
    // follower reads them in different batches.
    let filler: Vec<(String, Option<String>)> = (0..8)
        .map(|i| {
            (
                format!("streamx-test-filler-{i}"),
                Some("x".repeat(500_000)),
            )
        })
        .collect();
    let mut records = vec![
        (
            format!("connector-{deleted}"),
            props(local_job(&deleted, &s.topic, &deleted_store)),
        ),
        (
            format!("connector-{moved}"),
            props(local_job(&moved, &s.topic, &old_store)),
        ),
    ];
    records.extend(filler);
    records.push((format!("connector-{deleted}"), None));
    records.push((
        format!("connector-{moved}"),
        props(local_job(&moved, &s.topic, &new_store)),
    ));
    write_config_records(&s.servers, &cfg, &records);

    let w = Worker::start(dir, &s.props);
    let (code, list) = w.api("GET", "/connectors", None);
    assert_eq!((code, list), (200, json!([moved])));
    expect_exactly(&w, &new_store, 1, 6);
    wait_state(&w, &moved, "RUNNING", Some("RUNNING"));
    let log = w.log();
    assert!(
        !log.contains(&deleted),
        "the deleted job was acted on:\n{log}"
    );
    assert!(
        !old_store.exists(),
        "a task ran with the replaced config (store {}):\n{log}",
        old_store.display()
    );
    assert!(!deleted_store.exists(), "{log}");
    w.stop();
}
