//! Cluster-wide restarts of `streamx worker`: a job's tasks run on every worker of the group,
//! and `POST /connectors/{n}/restart` or `POST /connectors/{n}/tasks/{t}/restart` asked of any
//! one worker restarts them on all (a restart record in the config topic, as Kafka Connect
//! does). Two real workers on tansu and moto; each test has its own topic, buckets, config
//! topic, jobs and ports.

mod common;

use std::collections::BTreeSet;

use common::worker::*;
use common::*;
use serde_json::{json, Value};

/// Waits until `w`'s status of `name` lists one task per worker of `workers`, all in `state`.
fn wait_cluster_state(w: &Worker, name: &str, workers: &[&Worker], state: &str) -> Value {
    let want: BTreeSet<String> = workers.iter().map(|w| w.id()).collect();
    let mut last = Value::Null;
    wait_until(
        &format!("{name}'s tasks on every worker {state}"),
        START,
        || {
            let (_, st) = w.api("GET", &format!("/connectors/{name}/status"), None);
            last = st.clone();
            let tasks = st["tasks"].as_array().cloned().unwrap_or_default();
            let on: BTreeSet<String> = tasks
                .iter()
                .map(|t| t["worker_id"].as_str().unwrap_or("").to_string())
                .collect();
            tasks.len() == want.len() && on == want && tasks.iter().all(|t| t["state"] == state)
        },
    );
    last
}

/// The job's committed offsets `(partition, next offset)`, sorted, as `w` reports them.
fn committed(w: &Worker, name: &str) -> Vec<(i64, i64)> {
    let (_, o) = w.api("GET", &format!("/connectors/{name}/offsets"), None);
    let mut got: Vec<(i64, i64)> = o["offsets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            let p = o["partition"]["kafka_partition"].as_i64().unwrap_or(-1);
            (p, o["offset"]["kafka_offset"].as_i64().unwrap_or(-1))
        })
        .collect();
    got.sort();
    got
}

/// Waits until the job has committed `upto` records of each of `partitions` partitions; on
/// timeout fails with both workers' logs.
fn wait_committed(workers: [&Worker; 2], name: &str, partitions: i64, upto: i64) {
    let want: Vec<(i64, i64)> = (0..partitions).map(|p| (p, upto)).collect();
    let deadline = std::time::Instant::now() + LAND;
    while std::time::Instant::now() < deadline {
        if committed(workers[0], name) == want {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!(
        "{name} did not commit {want:?} (got {:?}); logs:\n{}\n---\n{}",
        committed(workers[0], name),
        workers[0].log(),
        workers[1].log()
    );
}

#[test]
fn a_restart_asked_of_one_worker_restarts_the_job_on_every_worker() {
    let s = setup("restartall", 2);
    s.produce(2, 0, 4);
    // Restarts asked for, not automatic ones (tests/worker_recovery.rs): failed tasks wait.
    let props = format!("{}task.restart.backoff.max.ms=0\n", s.props);
    let a = Worker::start(s.dir.path(), &props);
    let b = Worker::start(s.dir.path(), &props);
    let endpoint = service_env("STREAMX_TEST_S3_ENDPOINT");

    // Two jobs whose buckets do not exist yet: their task fails on each worker.
    let jobs: Vec<(String, String)> = (0..2)
        .map(|_| (unique("clickstream"), unique("laterbucket")))
        .collect();
    for (name, bucket) in &jobs {
        let mut job = s.seed_job(name);
        job["config"]["s3.url"] = json!(format!("s3://{bucket}/demo"));
        let (code, body) = a.api("POST", "/connectors", Some(job));
        assert_eq!(code, 201, "{body}");
        let failed = wait_cluster_state(&b, name, &[&a, &b], "FAILED");
        assert!(failed["tasks"][0]["trace"]
            .as_str()
            .unwrap()
            .contains(bucket));
        let resp = http(&endpoint, "PUT", &format!("/{bucket}"));
        assert!(resp.starts_with("HTTP/1.1 200"), "create bucket: {resp}");
    }

    // The first job restarted through worker a only: both workers' tasks come back.
    let (name, _) = &jobs[0];
    let (code, body) = a.api(
        "POST",
        &format!("/connectors/{name}/restart?onlyFailed=true"),
        None,
    );
    assert_eq!(code, 202, "{body}");
    wait_cluster_state(&a, name, &[&a, &b], "RUNNING");
    wait_cluster_state(&b, name, &[&a, &b], "RUNNING");
    wait_committed([&a, &b], name, 2, 4);
    // The second through worker b's task restart endpoint: the same, everywhere.
    let (name2, _) = &jobs[1];
    assert_eq!(
        wait_cluster_state(&a, name2, &[&a, &b], "FAILED")["tasks"][0]["state"],
        "FAILED",
        "the first job's restart leaves the second alone"
    );
    let (code, body) = b.api(
        "POST",
        &format!("/connectors/{name2}/tasks/0/restart"),
        None,
    );
    assert_eq!(code, 204, "{body}");
    wait_cluster_state(&a, name2, &[&a, &b], "RUNNING");
    wait_committed([&b, &a], name2, 2, 4);

    for (name, bucket) in &jobs {
        let (code, _) = a.api("DELETE", &format!("/connectors/{name}"), None);
        assert_eq!(code, 204);
        delete_all(
            &common::crash::StoreView::new(&format!("s3://{bucket}/demo"), &s.options).store,
        );
    }
    a.stop();
    b.stop();
}
