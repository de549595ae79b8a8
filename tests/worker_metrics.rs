//! `GET /metrics` of `streamx worker` and of `streamx ingest` (`metrics.listen`), parsed by
//! prometheus_client's strict OpenMetrics parser (PyPI, tests/prometheus_parse.py), against
//! what was produced: records and bytes consumed and written, files, commits and the commit
//! latency histogram (one observation per commit), consumer lag per partition (0 once
//! everything is consumed), memory budget used and its size, Hive registrations pending.
//!
//! Real services only (tansu, moto, the Hive metastore); each test has its own topic, bucket,
//! job, database and port.

mod common;

use std::process::{Child, Command, Stdio};

use serde_json::json;

use common::worker::*;
use common::*;

/// The job's samples once `ready` holds for them (polled with a deadline).
fn scrape_until(url: &str, what: &str, ready: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let mut last = Vec::new();
    wait_until(what, LAND, || {
        let Some((200, text)) = call_text(url) else {
            return false;
        };
        last = parse_with_prometheus_client(&text);
        ready(&last)
    });
    last
}

/// Checks what every job reports once `records` records of `bytes` bytes went into `commits`
/// commits of `files` files over `partitions` partitions, all consumed.
fn check_settled(
    samples: &[Sample],
    job: &str,
    (records, bytes, commits, files): (f64, f64, f64, f64),
) {
    let j = [("job", job)];
    let get = |name: &str| sample(samples, name, &j);
    assert_eq!(get("streamx_records_consumed_total"), Some(records));
    assert_eq!(get("streamx_bytes_consumed_total"), Some(bytes));
    assert_eq!(get("streamx_records_written_total"), Some(records));
    assert_eq!(get("streamx_files_committed_total"), Some(files));
    assert_eq!(get("streamx_commits_total"), Some(commits));
    assert_eq!(get("streamx_commits_fenced_total"), Some(0.0));
    // One latency observation per commit, each a positive time.
    assert_eq!(get("streamx_commit_latency_seconds_count"), Some(commits));
    let inf = [("job", job), ("le", "+Inf")];
    assert_eq!(
        sample(samples, "streamx_commit_latency_seconds_bucket", &inf),
        Some(commits)
    );
    assert!(get("streamx_commit_latency_seconds_sum").unwrap() > 0.0);
    // Every file is committed: nothing open holds memory; the budget is the default's.
    assert_eq!(get("streamx_memory_budget_used_bytes"), Some(0.0));
    assert_eq!(get("streamx_memory_budget_bytes"), Some(536_870_912.0));
    assert_eq!(get("streamx_hive_registrations_pending"), Some(0.0));
}

/// The consumer lag of `job` on each of `partitions` partitions of `topic`, when all known.
fn lags(samples: &[Sample], job: &str, topic: &str, partitions: i32) -> Option<Vec<f64>> {
    (0..partitions)
        .map(|p| {
            let labels = [
                ("job", job),
                ("topic", topic),
                ("partition", &p.to_string()),
            ];
            sample(samples, "streamx_consumer_lag", &labels)
        })
        .collect()
}

#[test]
fn worker_metrics_parse_and_match_what_was_ingested() {
    let s = setup("metrics", 2);
    s.produce(2, 0, 10);
    let w = Worker::start(s.dir.path(), &s.props);
    let name = s.post_seed_job(&w);
    s.expect_exactly(2, 10);

    // flush.size=2: 20 records are 10 commits of one file each. The lag comes with
    // librdkafka's statistics (every second) and is 0 on both partitions once all is consumed.
    let url = format!("{}/metrics", w.base);
    let samples = scrape_until(&url, "20 rows written and no lag", |m| {
        let written = sample(m, "streamx_records_written_total", &[("job", &name)]);
        written == Some(20.0) && lags(m, &name, &s.topic, 2) == Some(vec![0.0, 0.0])
    });
    // Values "p<p>-<seq>": 4 bytes for seq < 10.
    check_settled(&samples, &name, (20.0, 80.0, 10.0, 10.0));
    let assigned = sample(&samples, "streamx_partitions_assigned", &[("job", &name)]);
    assert_eq!(assigned, Some(2.0));

    // More records: counted, and the lag is back to 0 once they are consumed.
    s.produce(2, 10, 4);
    s.expect_exactly(2, 14);
    let samples = scrape_until(&url, "28 rows written and no lag", |m| {
        let written = sample(m, "streamx_records_written_total", &[("job", &name)]);
        written == Some(28.0) && lags(m, &name, &s.topic, 2) == Some(vec![0.0, 0.0])
    });
    // seq 10..14 are 5 bytes each.
    check_settled(&samples, &name, (28.0, 120.0, 14.0, 14.0));

    // A deleted job's series go with it.
    let (code, _) = w.api("DELETE", &format!("/connectors/{name}"), None);
    assert_eq!(code, 204);
    scrape_until(&url, "the deleted job's series to go", |m| {
        m.iter().all(|x| x.labels.get("job") != Some(&name))
    });
    w.stop();
}

/// `streamx ingest` with `metrics.listen` serves the same metrics (one job) while it runs.
#[test]
fn ingest_serves_metrics_with_metrics_listen() {
    let s = setup("ingestmetrics", 1);
    s.produce(1, 0, 10);
    let name = unique("metrics-job");
    let (pairs, listen) = raw_ingest(&s, &name, &[("flush.size", "5")]);
    let child = spawn_ingest(&pairs);
    let url = format!("http://{listen}/metrics");
    let samples = scrape_until(&url, "10 rows written and no lag", |m| {
        let written = sample(m, "streamx_records_written_total", &[("job", &name)]);
        written == Some(10.0) && lags(m, &name, &s.topic, 1) == Some(vec![0.0])
    });
    // flush.size=5: two commits of one file each; values "p0-<seq>" are 4 bytes.
    check_settled(&samples, &name, (10.0, 40.0, 2.0, 2.0));
    drop(child);
}

/// A raw -> raw `streamx ingest` job `name` of the setup's topic into a local directory, with
/// `extra` keys and `metrics.listen` on a free port; returns the keys and that address.
fn raw_ingest(s: &Setup, name: &str, extra: &[(&str, &str)]) -> (Vec<(String, String)>, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let out = s.dir.path().join("out");
    let base = [
        ("name", name),
        ("bootstrap.servers", s.servers.as_str()),
        ("topics", s.topic.as_str()),
        ("store.url", out.to_str().unwrap()),
        ("input.format", "raw"),
        ("format.class", "raw"),
        ("consumer.session.timeout.ms", "8000"),
        ("metrics.listen", listen.as_str()),
    ];
    let pairs = base
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (pairs, listen)
}

/// A running `streamx ingest`; stopped (SIGTERM, then SIGKILL) when dropped, also when the
/// test fails.
struct Ingest(Child);

impl Drop for Ingest {
    fn drop(&mut self) {
        terminate(&mut self.0);
    }
}

/// `streamx ingest --set k=v ...`, its output dropped.
fn spawn_ingest(pairs: &[(String, String)]) -> Ingest {
    let child = Command::new(streamx_bin())
        .arg("ingest")
        .args(set_args(pairs))
        .env("STREAMX_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Ingest(child)
}

/// `streamx_hive_registrations_pending` counts committed directories the metastore has not got:
/// with the metastore unreachable, the one directory (`partition=0`) of 10 committed records
/// stays pending; a run against the real metastore registers it (catch-up) and shows 0.
#[test]
fn hive_registrations_pending_counts_what_the_metastore_lacks() {
    init_logs();
    let servers = service_env("STREAMX_TEST_KAFKA_BROKERS");
    let topic = unique("hivepending");
    create_topic(&servers, &topic, 1);
    produce(&servers, &topic, 1, 0, 10);
    let db = common::hive::TestDb::new("pending");
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let run = |uris: &str| {
        spawn_ingest(&job(
            &servers,
            &topic,
            out.path(),
            &[
                ("flush.size", "5"),
                ("hive.integration", "true"),
                ("hive.metastore.uris", uris),
                ("hive.database", &db.name),
                ("hive.retry.backoff.max.ms", "500"),
                ("metrics.listen", &format!("127.0.0.1:{port}")),
            ],
        ))
    };
    let j = [("job", topic.as_str())];

    // Nothing listens on this port: every registration stays pending.
    let child = run(&format!("thrift://127.0.0.1:{}", free_port()));
    scrape_until(&url, "10 rows committed, one directory pending", |m| {
        sample(m, "streamx_records_written_total", &j) == Some(10.0)
            && sample(m, "streamx_hive_registrations_pending", &j) == Some(1.0)
    });
    drop(child);

    // The real metastore: the next run's catch-up registers the directory; nothing is pending.
    let uris = common::hive::uris();
    let child = run(&uris);
    let table = topic.replace('-', "_");
    wait_until("the partition to be registered", LAND, || {
        let names = common::hive::client_for(&uris).get_partition_names(&db.name, &table, -1);
        names.is_ok_and(|n| n == ["partition=0"])
    });
    scrape_until(&url, "nothing pending", |m| {
        sample(m, "streamx_hive_registrations_pending", &j) == Some(0.0)
    });
    drop(child);
}

/// Records encoded into a file still open hold memory: `streamx_memory_budget_used_bytes` is
/// above 0 while nothing is committed (flush.size not reached), and there is no commit latency
/// yet. (Records wait in a decode buffer of `decode.batch.records` before they are encoded into
/// the open file; the budget counts open files, so the test encodes every 5 records.)
#[test]
fn open_files_show_in_the_memory_budget_used() {
    let s = setup("openmemory", 1);
    s.produce(1, 0, 10);
    let name = unique("memory-job");
    let extra = [("flush.size", "1000"), ("decode.batch.records", "5")];
    let (pairs, listen) = raw_ingest(&s, &name, &extra);
    let child = spawn_ingest(&pairs);
    let j = [("job", name.as_str())];
    let samples = scrape_until(
        &format!("http://{listen}/metrics"),
        "10 records consumed, no lag",
        |m| {
            sample(m, "streamx_records_consumed_total", &j) == Some(10.0)
                && lags(m, &name, &s.topic, 1) == Some(vec![0.0])
        },
    );
    let used = sample(&samples, "streamx_memory_budget_used_bytes", &j).unwrap();
    assert!(used > 0.0 && used < 536_870_912.0, "{used}");
    assert_eq!(sample(&samples, "streamx_commits_total", &j), Some(0.0));
    let count = sample(&samples, "streamx_commit_latency_seconds_count", &j);
    assert_eq!(count, Some(0.0));
    drop(child);
}

/// One memory budget per worker process, shared by every task of every job (shared/DESIGN.md
/// "Threads"): with `memory.budget.bytes=1 MiB` (the worker's, and each job's as well: the
/// worker once honoured the job's key with a budget per task), three jobs (one with
/// `tasks.max=2`) that each hold about 400 KB in open files flush files early, since together
/// they pass the one budget while no task, nor any job, reaches it alone (nor half of it, which
/// is the least open files may hold when the process holds memory beyond them). A job's
/// `streamx_memory_budget_bytes` is that one budget, not a budget per task summed.
#[test]
fn every_task_of_the_worker_draws_on_one_memory_budget() {
    const BUDGET: &str = "1048576";
    let s = setup("sharedbudget", 2);
    // 2 partitions x 200 records of 1000 bytes: 400 KB per job.
    produce_with(&s.servers, &s.topic, 2, 0, 200, |p, seq| {
        format!("{:0>1000}", format!("p{p}-{seq}"))
    });
    let props = format!("{}memory.budget.bytes={BUDGET}\n", s.props);
    let w = Worker::start(s.dir.path(), &props);
    let jobs: Vec<String> = (0..3).map(|_| unique("budget-job")).collect();
    for (i, name) in jobs.iter().enumerate() {
        let out = s.dir.path().join(name);
        let config = json!({
            "name": name,
            "connector.class": "StreamX",
            "tasks.max": if i == 0 { "2" } else { "1" },
            "topics": s.topic,
            "store.url": out.to_str().unwrap(),
            "input.format": "raw",
            "format.class": "raw",
            "flush.size": "1000000",
            "decode.batch.records": "10",
            "memory.budget.bytes": BUDGET,
        });
        let (code, body) = w.api("PUT", &format!("/connectors/{name}/config"), Some(config));
        assert_eq!(code, 201, "{body}");
    }
    let url = format!("{}/metrics", w.base);
    let per_job = |m: &[Sample], metric: &str| -> Vec<Option<f64>> {
        jobs.iter()
            .map(|j| sample(m, metric, &[("job", j.as_str())]))
            .collect()
    };
    let samples = scrape_until(&url, "every job to consume its 400 records", |m| {
        per_job(m, "streamx_records_consumed_total") == vec![Some(400.0); 3]
    });
    assert_eq!(
        per_job(&samples, "streamx_memory_budget_bytes"),
        vec![Some(1048576.0); 3],
        "each job's budget is the worker's one budget (a job with 2 tasks showed two)"
    );
    scrape_until(
        &url,
        "files flushed early: the jobs together passed the budget",
        |m| {
            per_job(m, "streamx_files_spilled_total")
                .iter()
                .map(|v| v.unwrap_or(0.0))
                .sum::<f64>()
                > 0.0
        },
    );
    w.stop();
}
