//! `streamx worker` end to end: the real binary against the tansu broker
//! (`STREAMX_TEST_KAFKA_BROKERS`) and moto (`STREAMX_TEST_S3_ENDPOINT`), driven over HTTP as
//! curl, Terraform or kcctl would drive Kafka Connect.
//!
//! - the seed README's curl flow: POST the clickstream job (S3SinkConnector, SourceFormat,
//!   flush.size, s3.url, hadoop.conf.dir: here a directory whose core-site.xml points at moto),
//!   GET /connectors, DELETE; every record lands exactly once;
//! - pause (no new files while paused), resume, and a worker restart that brings the job back
//!   in its stored state (paused stays paused);
//! - a bad config is a 400 naming every bad key, and nothing is stored;
//! - /metrics parses as Prometheus text and counts what was ingested (every metric:
//!   tests/worker_metrics.rs);
//! - kafka-connect-py (PyPI) drives the whole API (tests/worker_client.py), pause included: no
//!   new file while records keep coming, and they land after the resume;
//! - two workers split a job's partitions, one takes over when the other is SIGKILLed, both
//!   restarted (one configured by `CONNECT_*` variables only) run the job again, exactly once;
//! - a job whose store is missing is FAILED with the error as `trace` (automatic restarts off);
//!   restart brings it back (automatic restarts: tests/worker_recovery.rs).
//!
//! Cluster-wide restarts: tests/worker_cluster.rs; the image's entrypoint and basic auth:
//! tests/worker_entry.rs; helpers: tests/common/worker.rs.
//!
//! Each test has its own topic, bucket, config topic, consumer groups and REST port. The job
//! name differs from the seed's `clickstream` only by a unique suffix: its consumer group
//! (`connect-<name>`) must be new per run on tansu.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::crash::{signal, StoreView};
use common::worker::*;
use common::*;
use serde_json::json;

#[test]
fn seed_curl_flow_lands_exactly_once() {
    let s = setup("adclicks", 2);
    s.produce(2, 0, 10);
    let w = Worker::start(s.dir.path(), &s.props);
    let name = unique("clickstream");

    let (code, info) = w.api("POST", "/connectors", Some(s.seed_job(&name)));
    assert_eq!(code, 201, "{info}");
    assert_eq!(info["name"], name);
    assert_eq!(info["type"], "sink");
    assert_eq!(info["tasks"], json!([{"connector": name, "task": 0}]));
    assert_eq!(info["config"], s.seed_job(&name)["config"]);
    let (code, again) = w.api("POST", "/connectors", Some(s.seed_job(&name)));
    assert_eq!(code, 409, "{again}");
    assert_eq!(again["error_code"], 409);

    let (code, list) = w.api("GET", "/connectors", None);
    assert_eq!((code, list), (200, json!([name])));
    let (code, list) = w.api("GET", "/connectors/", None);
    assert_eq!((code, list), (200, json!([name])));
    let (code, config) = w.api("GET", &format!("/connectors/{name}/config"), None);
    assert_eq!((code, config), (200, s.seed_job(&name)["config"].clone()));

    s.expect_exactly(2, 10);
    let status = wait_state(&w, &name, "RUNNING", Some("RUNNING"));
    assert_eq!(status["type"], "sink");
    assert!(status["tasks"][0]["worker_id"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    let (code, expanded) = w.api("GET", "/connectors?expand=status&expand=info", None);
    assert_eq!(code, 200);
    assert_eq!(expanded[&name]["info"]["name"], name);
    assert_eq!(expanded[&name]["status"]["connector"]["state"], "RUNNING");

    let (code, offsets) = w.api("GET", &format!("/connectors/{name}/offsets"), None);
    assert_eq!(code, 200, "{offsets}");
    let mut got: Vec<(i64, i64)> = offsets["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            assert_eq!(o["partition"]["kafka_topic"], s.topic);
            (
                o["partition"]["kafka_partition"].as_i64().unwrap(),
                o["offset"]["kafka_offset"].as_i64().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, vec![(0, 10), (1, 10)]);
    let (code, topics) = w.api("GET", &format!("/connectors/{name}/topics"), None);
    assert_eq!(
        (code, topics),
        (200, json!({ &name: {"topics": [s.topic]} }))
    );

    let (code, metrics) = call_text(&format!("{}/metrics", w.base)).expect("GET /metrics");
    assert_eq!(code, 200);
    let values = parse_prometheus(&metrics);
    let key = format!("streamx_records_written_total{{job=\"{name}\"}}");
    assert_eq!(values.get(&key), Some(&20.0), "{metrics}");
    let key = format!("streamx_files_committed_total{{job=\"{name}\"}}");
    assert_eq!(values.get(&key), Some(&10.0), "{metrics}");

    let (code, _) = w.api("DELETE", &format!("/connectors/{name}"), None);
    assert_eq!(code, 204);
    let (code, err) = w.api("GET", &format!("/connectors/{name}"), None);
    assert_eq!(code, 404);
    assert_eq!(
        err,
        json!({"error_code": 404, "message": format!("Connector {name} not found")})
    );
    let (code, list) = w.api("GET", "/connectors", None);
    assert_eq!((code, list), (200, json!([])));
    let log = w.log();
    assert!(!log.contains("secret_access_key=test"), "{log}");
    w.stop();
}

#[test]
fn pause_resume_and_worker_restart_keep_the_stored_state() {
    let s = setup("pause", 1);
    s.produce(1, 0, 4);
    let w = Worker::start(s.dir.path(), &s.props);
    let name = s.post_seed_job(&w);
    s.expect_exactly(1, 4);

    let (code, _) = w.api("PUT", &format!("/connectors/{name}/pause"), None);
    assert_eq!(code, 202);
    wait_state(&w, &name, "PAUSED", Some("PAUSED"));
    assert_eq!(assigned(&w, &name), 0.0, "a paused job owns no partitions");
    let files = s.files();
    s.produce(1, 4, 4);
    // Paused: the tasks have ended (PAUSED above), so nothing can write. Watch for a while.
    let watch = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < watch {
        assert_eq!(s.files(), files, "a file was written while paused");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A restarted worker brings the job back paused.
    w.stop();
    let w = Worker::start(s.dir.path(), &s.props);
    let (code, list) = w.api("GET", "/connectors", None);
    assert_eq!((code, list), (200, json!([name])));
    let (code, config) = w.api("GET", &format!("/connectors/{name}/config"), None);
    assert_eq!((code, config), (200, s.seed_job(&name)["config"].clone()));
    wait_until(
        "the restarted worker to report the job PAUSED",
        START,
        || {
            let (_, st) = w.api("GET", &format!("/connectors/{name}/status"), None);
            st["connector"]["state"] == "PAUSED"
        },
    );
    assert_eq!(s.files(), files);

    let (code, _) = w.api("PUT", &format!("/connectors/{name}/resume/"), None);
    assert_eq!(code, 202);
    s.expect_exactly(1, 8);
    wait_state(&w, &name, "RUNNING", Some("RUNNING"));

    // Stop: no tasks; restart of the worker keeps it stopped.
    let (code, _) = w.api("PUT", &format!("/connectors/{name}/stop"), None);
    assert_eq!(code, 204);
    wait_state(&w, &name, "STOPPED", None);
    w.stop();
    let w = Worker::start(s.dir.path(), &s.props);
    wait_state(&w, &name, "STOPPED", None);
    let (code, _) = w.api("DELETE", &format!("/connectors/{name}"), None);
    assert_eq!(code, 204);
    w.stop();
}

#[test]
fn a_bad_config_is_refused_naming_every_key_and_nothing_is_stored() {
    let s = setup("badcfg", 1);
    let w = Worker::start(s.dir.path(), &s.props);
    let name = unique("bad");
    let mut job = s.seed_job(&name);
    job["config"]["flush.sise"] = json!("2");
    job["config"]["s3.ur"] = json!("s3://x");
    let (code, err) = w.api("POST", "/connectors", Some(job.clone()));
    assert_eq!(code, 400, "{err}");
    assert_eq!(err["error_code"], 400);
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("Connector configuration is invalid"),
        "{message}"
    );
    for needle in ["flush.sise", "flush.size", "s3.ur"] {
        assert!(message.contains(needle), "{message}");
    }
    let mut job = s.seed_job(&name);
    job["config"]["flush.size"] = json!("two");
    let (code, err) = w.api(
        "PUT",
        &format!("/connectors/{name}/config"),
        Some(job["config"].clone()),
    );
    assert_eq!(code, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("flush.size"));
    let (code, list) = w.api("GET", "/connectors", None);
    assert_eq!((code, list), (200, json!([])));
    let (code, _) = w.api("GET", &format!("/connectors/{name}/config"), None);
    assert_eq!(code, 404);

    // The validate endpoint answers 200 with the errors on the key.
    let (code, infos) = w.api(
        "PUT",
        "/connector-plugins/S3SinkConnector/config/validate",
        Some(job["config"].clone()),
    );
    assert_eq!(code, 200, "{infos}");
    assert_eq!(infos["error_count"], 1);
    let flush = infos["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"]["name"] == "flush.size")
        .unwrap();
    assert_eq!(flush["value"]["value"], "two");
    assert!(!flush["value"]["errors"].as_array().unwrap().is_empty());

    // A worker started later finds nothing either.
    w.stop();
    let w = Worker::start(s.dir.path(), &s.props);
    let (code, list) = w.api("GET", "/connectors", None);
    assert_eq!((code, list), (200, json!([])));
    let (code, plugins) = w.api("GET", "/connector-plugins", None);
    assert_eq!(code, 200);
    assert!(plugins
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["class"] == "com.qubole.streamx.s3.S3SinkConnector" && p["type"] == "sink"));
    let (code, info) = w.api("GET", "/", None);
    assert_eq!(code, 200);
    assert_eq!(info["version"], "3.9.0");
    let (code, err) = w.api("GET", "/nope", None);
    assert_eq!((code, err["error_code"].clone()), (404, json!(404)));
    w.stop();
}

#[test]
fn python_connect_client_drives_the_api() {
    let s = setup("pyclient", 1);
    s.produce(1, 0, 6);
    let w = Worker::start(s.dir.path(), &s.props);
    let name = unique("clickstream");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/worker_client.py");
    let out = Command::new(service_env("STREAMX_TEST_PYTHON"))
        .args([script, &w.base, &s.seed_job(&name).to_string(), "6"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kafka-connect-py run failed:\n{}\n{}\nworker log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        w.log()
    );
    // The script waits for offset 6 before its lifecycle calls, produces 4 more while the job
    // is paused and waits for offset 10 after the resume: all landed, exactly once.
    s.expect_exactly(1, 10);
    w.stop();
}

#[test]
fn two_workers_share_a_job_and_one_takes_over_when_the_other_is_killed() {
    let s = setup("shared", 2);
    s.produce(2, 0, 6);
    let a = Worker::start(s.dir.path(), &s.props);
    let mut b = Worker::start(s.dir.path(), &s.props);
    let name = unique("clickstream");
    let (code, body) = a.api("POST", "/connectors", Some(s.seed_job(&name)));
    assert_eq!(code, 201, "{body}");
    // Worker b learns of the job from the config topic and runs it too.
    wait_state(&b, &name, "RUNNING", Some("RUNNING"));
    wait_until(
        "the partitions to be split between the workers",
        LAND,
        || assigned(&a, &name) == 1.0 && assigned(&b, &name) == 1.0,
    );
    s.expect_exactly(2, 6);
    // Status is cluster-wide (status.storage.topic): either worker shows both workers' tasks.
    for w in [&a, &b] {
        wait_until("the status to show both workers' tasks", START, || {
            let (_, st) = w.api("GET", &format!("/connectors/{name}/status"), None);
            let tasks = st["tasks"].as_array().cloned().unwrap_or_default();
            let workers: BTreeSet<String> = tasks
                .iter()
                .map(|t| t["worker_id"].as_str().unwrap_or("").to_string())
                .collect();
            workers == BTreeSet::from([a.id(), b.id()])
                && tasks.iter().all(|t| t["state"] == "RUNNING")
        });
    }

    // SIGKILL b: a takes its partition over once b's session times out.
    signal(&b.child, libc::SIGKILL);
    let _ = b.child.wait();
    s.produce(2, 6, 6);
    s.expect_exactly(2, 12);
    assert_eq!(assigned(&a, &name), 2.0);
    drop(b);
    a.stop();

    // Both restarted (one configured by CONNECT_* variables only): the job comes back running
    // from the config topic, and what is produced next lands exactly once too.
    let a = Worker::start(s.dir.path(), &s.props);
    let b = Worker::start_with(s.dir.path(), &s.props, true);
    for w in [&a, &b] {
        let (code, list) = w.api("GET", "/connectors", None);
        assert_eq!((code, list), (200, json!([name])));
        wait_state(w, &name, "RUNNING", Some("RUNNING"));
    }
    s.produce(2, 12, 6);
    s.expect_exactly(2, 18);
    a.stop();
    b.stop();
}

#[test]
fn a_failed_job_reports_its_trace_and_restart_brings_it_back() {
    let s = setup("failed", 1);
    s.produce(1, 0, 4);
    // Automatic restarts off (tests/worker_recovery.rs has them): FAILED until asked.
    let props = format!("{}task.restart.backoff.max.ms=0\n", s.props);
    let w = Worker::start(s.dir.path(), &props);
    let name = unique("clickstream");
    let mut job = s.seed_job(&name);
    let missing = unique("nobucket");
    job["config"]["s3.url"] = json!(format!("s3://{missing}/demo"));
    let (code, body) = w.api("POST", "/connectors", Some(job));
    assert_eq!(code, 201, "{body}");
    let status = wait_state(&w, &name, "RUNNING", Some("FAILED"));
    let trace = status["tasks"][0]["trace"].as_str().unwrap();
    assert!(trace.contains(&missing), "{trace}");
    assert!(!trace.contains("secret"), "{trace}");
    assert!(trace.contains("POST /connectors/<name>/restart"), "{trace}");
    assert!(status["tasks"][0].get("restarts").is_none(), "{status}");

    // The bucket appears; a restart of the failed tasks brings the job back.
    let endpoint = service_env("STREAMX_TEST_S3_ENDPOINT");
    let resp = http(&endpoint, "PUT", &format!("/{missing}"));
    assert!(resp.starts_with("HTTP/1.1 200"), "create bucket: {resp}");
    let (code, body) = w.api(
        "POST",
        &format!("/connectors/{name}/restart?onlyFailed=true"),
        None,
    );
    assert_eq!(code, 202, "{body}");
    wait_state(&w, &name, "RUNNING", Some("RUNNING"));
    wait_until("the 4 records to be committed", LAND, || {
        let (_, o) = w.api("GET", &format!("/connectors/{name}/offsets"), None);
        o["offsets"][0]["offset"]["kafka_offset"] == 4
    });
    let (code, _) = w.api("DELETE", &format!("/connectors/{name}"), None);
    assert_eq!(code, 204);
    w.stop();
    delete_all(&StoreView::new(&format!("s3://{missing}/demo"), &s.options).store);
}
