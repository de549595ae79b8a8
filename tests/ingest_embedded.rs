//! Integration tests of `streamx ingest` on the embedded broker (librdkafka's mock cluster) and
//! the local store: several partitions, restarts, a two-member group rebalancing, the commit race,
//! error tolerance with a dead letter queue, raw output and idle rotation. Every test makes its
//! own topic, group and output directory.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::ClientConfig;
use streamx::commit::CommitLog;
use streamx::ingest::{self, IngestOptions};
use streamx::metrics::Metrics;
use streamx::source::embedded::EmbeddedCluster;
use streamx::store::Store;

fn run_to_end(pairs: &[(String, String)]) -> streamx::metrics::Snapshot {
    let opts = IngestOptions {
        stop_at_end: true,
        ..Default::default()
    };
    ingest::run(config(pairs), opts).expect("ingest run")
}

async fn commits(
    out: &std::path::Path,
    topic: &str,
    partition: i32,
) -> Vec<streamx::commit::CommitRecord> {
    let store = Store::with_url(
        out.to_str().unwrap(),
        &std::collections::BTreeMap::<String, String>::new(),
    )
    .unwrap();
    CommitLog::new(store, "topics", "reader")
        .list_commits(topic, partition)
        .await
        .unwrap()
}

#[test]
fn several_partitions_are_written_once_with_connect_file_names() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let topic = unique("multi");
    cluster.create_topic(&topic, 4).unwrap();
    produce(&cluster.bootstrap_servers(), &topic, 4, 0, 2500);
    let out = tempfile::tempdir().unwrap();
    let snap = run_to_end(&job(
        &cluster.bootstrap_servers(),
        &topic,
        out.path(),
        &[("flush.size", "1000")],
    ));
    assert_eq!(snap.records_written, 10_000);
    assert_exactly_once(&offsets_written(out.path(), &topic), 4, 2500);
    // 2500 records with flush.size=1000: files of 1000, 1000 and 500 per partition.
    let files = data_files(
        &out.path().join("topics").join(&topic).join("partition=2"),
        ".parquet",
    );
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into())
        .collect();
    assert_eq!(
        names,
        vec![
            format!("{topic}+2+0000000000+0000000999.parquet"),
            format!("{topic}+2+0000001000+0000001999.parquet"),
            format!("{topic}+2+0000002000+0000002499.parquet"),
        ]
    );
}

#[test]
fn restart_resumes_where_the_store_says_without_gaps_or_duplicates() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("restart");
    cluster.create_topic(&topic, 3).unwrap();
    let out = tempfile::tempdir().unwrap();
    let pairs = job(&servers, &topic, out.path(), &[("flush.size", "333")]);
    produce(&servers, &topic, 3, 0, 1000);
    run_to_end(&pairs);
    produce(&servers, &topic, 3, 1000, 700);
    // A fresh group: Kafka's committed offsets are not what the restart relies on.
    let mut second = pairs.clone();
    second.push(("group.id".into(), unique("other-group")));
    let snap = run_to_end(&second);
    assert_eq!(
        snap.records_written, 2100,
        "the second run reads only what is new"
    );
    assert_exactly_once(&offsets_written(out.path(), &topic), 3, 1700);
    let rt = tokio::runtime::Runtime::new().unwrap();
    for p in 0..3 {
        let log = rt.block_on(commits(out.path(), &topic, p));
        assert_eq!(log[0].start_offset, 0);
        for w in log.windows(2) {
            assert_eq!(w[1].seq, w[0].seq + 1);
            assert_eq!(
                w[1].start_offset,
                w[0].end_offset + 1,
                "commits of partition {p} are contiguous"
            );
        }
        assert_eq!(log.last().unwrap().end_offset, 1699);
    }
}

#[test]
fn two_consumers_in_one_group_share_partitions_and_write_each_record_once() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("group");
    cluster.create_topic(&topic, 6).unwrap();
    produce(&servers, &topic, 6, 0, 1500);
    let out = tempfile::tempdir().unwrap();
    let pairs = job(
        &servers,
        &topic,
        out.path(),
        &[("flush.size", "250"), ("decode.batch.records", "128")],
    );
    let spawn = |pairs: Vec<(String, String)>| {
        let metrics = Arc::new(Metrics::default());
        let opts = IngestOptions {
            metrics: metrics.clone(),
            ..Default::default()
        };
        let shutdown = opts.shutdown.clone();
        let handle = std::thread::spawn(move || ingest::run(config(&pairs), opts));
        (metrics, shutdown, handle)
    };
    let (m1, stop1, h1) = spawn(pairs.clone());
    wait_until(
        "the first consumer to commit",
        Duration::from_secs(30),
        || m1.commits.load(Ordering::Relaxed) > 0,
    );
    let (m2, stop2, h2) = spawn(pairs.clone());
    wait_until(
        "the rebalance to give the second member partitions",
        Duration::from_secs(60),
        || m2.partitions_assigned.load(Ordering::Relaxed) > 0,
    );
    produce(&servers, &topic, 6, 1500, 1500);
    wait_until(
        "every record to be committed",
        Duration::from_secs(90),
        || offsets_written(out.path(), &topic).len() == 18_000,
    );
    stop2.store(true, Ordering::Relaxed);
    h2.join().unwrap().unwrap();
    stop1.store(true, Ordering::Relaxed);
    h1.join().unwrap().unwrap();
    assert_exactly_once(&offsets_written(out.path(), &topic), 6, 3000);
    assert!(
        m2.commits.load(Ordering::Relaxed) > 0,
        "the second member got partitions and committed"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let writers: std::collections::BTreeSet<String> = (0..6)
        .flat_map(|p| rt.block_on(commits(out.path(), &topic, p)))
        .map(|c| c.writer)
        .collect();
    assert!(writers.len() >= 2, "both processes committed: {writers:?}");
}

#[test]
fn the_writer_that_loses_a_commit_race_stops_and_nothing_is_duplicated() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("race");
    cluster.create_topic(&topic, 2).unwrap();
    produce(&servers, &topic, 2, 0, 800);
    let out = tempfile::tempdir().unwrap();
    // The zombie: its own group (so it owns both partitions too), buffers everything, commits
    // only at shutdown, after the legitimate writer has committed the same sequence numbers.
    let zombie_pairs = job(
        &servers,
        &topic,
        out.path(),
        &[
            ("group.id", &unique("zombie")),
            ("flush.size", "1000000"),
            ("commit.fenced.backoff.ms", "3600000"),
        ],
    );
    let zm = Arc::new(Metrics::default());
    let zopts = IngestOptions {
        metrics: zm.clone(),
        ..Default::default()
    };
    let zstop = zopts.shutdown.clone();
    let zombie = std::thread::spawn(move || ingest::run(config(&zombie_pairs), zopts));
    wait_until(
        "the zombie to buffer every record",
        Duration::from_secs(30),
        || zm.records_consumed.load(Ordering::Relaxed) == 1600,
    );
    let legit = job(
        &servers,
        &topic,
        out.path(),
        &[("group.id", &unique("legit")), ("flush.size", "300")],
    );
    let snap = run_to_end(&legit);
    assert_eq!(snap.records_written, 1600);
    zstop.store(true, Ordering::Relaxed);
    let zsnap = zombie.join().unwrap().unwrap();
    assert_eq!(zsnap.commits, 0, "the zombie committed nothing");
    assert_eq!(
        zsnap.commits_fenced, 2,
        "the zombie lost the race on both partitions"
    );
    assert_exactly_once(&offsets_written(out.path(), &topic), 2, 800);
    let staging = out.path().join("topics/_streamx/staging").join(&topic);
    assert!(
        data_files(&staging, "").is_empty(),
        "the loser's staged files are gone"
    );
}

#[test]
fn bad_records_stop_the_job_or_go_to_the_dead_letter_queue() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("bad");
    let dlq = unique("dlq");
    cluster.create_topic(&topic, 1).unwrap();
    cluster.create_topic(&dlq, 1).unwrap();
    let values = [
        event(0, 0),
        "{\"p\":0,\"seq\":".to_string(),
        event(0, 2),
        "not json".into(),
        event(0, 4),
    ];
    produce_values(&servers, &topic, 0, &values);

    let out = tempfile::tempdir().unwrap();
    let strict = job(&servers, &topic, out.path(), &[("flush.size", "2")]);
    let err = ingest::run(
        config(&strict),
        IngestOptions {
            stop_at_end: true,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!("topic '{topic}' partition 0 offset 1")),
        "{err}"
    );
    assert!(err.contains("errors.tolerance"), "{err}");

    let out = tempfile::tempdir().unwrap();
    let tolerant = job(
        &servers,
        &topic,
        out.path(),
        &[
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", &dlq),
        ],
    );
    let snap = run_to_end(&tolerant);
    assert_eq!(
        (
            snap.records_written,
            snap.records_skipped,
            snap.records_dead_lettered
        ),
        (3, 2, 2)
    );
    let seen = offsets_written(out.path(), &topic);
    assert_eq!(
        seen.keys().map(|(_, o)| *o).collect::<Vec<_>>(),
        vec![0, 2, 4]
    );

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("group.id", unique("dlq-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&dlq]).unwrap();
    let mut got = Vec::new();
    wait_until("two dead letters", Duration::from_secs(30), || {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let h = m.headers().unwrap();
            let header = |name: &str| {
                h.iter()
                    .find(|x| x.key == name)
                    .and_then(|x| x.value)
                    .map(|v| String::from_utf8_lossy(v).to_string())
            };
            got.push((
                m.payload().map(|p| String::from_utf8_lossy(p).to_string()),
                header("__connect.errors.offset"),
                header("__connect.errors.topic"),
                header("__connect.errors.exception.message").is_some(),
            ));
        }
        got.len() == 2
    });
    assert_eq!(
        got[0],
        (
            Some(values[1].clone()),
            Some("1".into()),
            Some(topic.clone()),
            true
        )
    );
    assert_eq!(
        got[1],
        (
            Some(values[3].clone()),
            Some("3".into()),
            Some(topic.clone()),
            true
        )
    );
}

#[test]
fn raw_values_are_copied_as_they_are_one_per_line() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("raw");
    cluster.create_topic(&topic, 2).unwrap();
    produce(&servers, &topic, 2, 0, 150);
    let out = tempfile::tempdir().unwrap();
    let pairs = job(
        &servers,
        &topic,
        out.path(),
        &[
            ("value.converter", "com.qubole.streamx.ByteArrayConverter"),
            ("format.class", "com.qubole.streamx.SourceFormat"),
            ("include.kafka.metadata", "false"),
            ("flush.size", "100"),
        ],
    );
    let pairs: Vec<_> = pairs
        .into_iter()
        .filter(|(k, _)| k != "value.schema")
        .collect();
    run_to_end(&pairs);
    for p in 0..2 {
        let files = data_files(
            &out.path()
                .join("topics")
                .join(&topic)
                .join(format!("partition={p}")),
            ".raw",
        );
        assert_eq!(files.len(), 2);
        let text: String = files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        let expected: String = (0..150).map(|s| event(p, s) + "\n").collect();
        assert_eq!(text, expected);
    }
}

#[test]
fn an_idle_partition_is_committed_without_new_records() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("idle");
    cluster.create_topic(&topic, 1).unwrap();
    produce(&servers, &topic, 1, 0, 10);
    let out = tempfile::tempdir().unwrap();
    let pairs = job(
        &servers,
        &topic,
        out.path(),
        &[("flush.size", "1000000"), ("rotate.interval.ms", "300")],
    );
    let opts = IngestOptions::default();
    let stop = opts.shutdown.clone();
    let metrics = opts.metrics.clone();
    let h = std::thread::spawn(move || ingest::run(config(&pairs), opts));
    // Files are published just before the commit is counted: wait for both.
    wait_until("the idle partition's file", Duration::from_secs(30), || {
        offsets_written(out.path(), &topic).len() == 10
            && metrics.commits.load(Ordering::Relaxed) > 0
    });
    assert_eq!(
        metrics.commits.load(Ordering::Relaxed),
        1,
        "committed by the idle rule, not at shutdown"
    );
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap().unwrap();
    assert_exactly_once(&offsets_written(out.path(), &topic), 1, 10);
}

#[test]
fn the_schedule_rotates_on_wall_clock_even_while_records_keep_coming() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("sched");
    cluster.create_topic(&topic, 1).unwrap();
    let out = tempfile::tempdir().unwrap();
    let pairs = job(
        &servers,
        &topic,
        out.path(),
        &[
            ("flush.size", "1000000"),
            ("rotate.schedule.interval.ms", "500"),
        ],
    );
    let opts = IngestOptions::default();
    let stop = opts.shutdown.clone();
    let metrics = opts.metrics.clone();
    let h = std::thread::spawn(move || ingest::run(config(&pairs), opts));
    let mut seq = 0;
    wait_until("three scheduled commits", Duration::from_secs(30), || {
        produce(&servers, &topic, 1, seq, 20);
        seq += 20;
        metrics.commits.load(Ordering::Relaxed) >= 3
    });
    // Records produced last are committed by the schedule too, without a shutdown.
    wait_until("the last records", Duration::from_secs(30), || {
        offsets_written(out.path(), &topic).len() == seq as usize
    });
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap().unwrap();
    assert_exactly_once(&offsets_written(out.path(), &topic), 1, seq as i64);
}

#[test]
fn a_dead_letter_that_cannot_be_delivered_stops_the_job_before_the_commit() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("undeliverable");
    cluster.create_topic(&topic, 1).unwrap();
    produce_values(&servers, &topic, 0, &[event(0, 0), "not json".to_string()]);
    let out = tempfile::tempdir().unwrap();
    let dlq = unique("missing-dlq");
    let pairs = job(
        &servers,
        &topic,
        out.path(),
        &[
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", &dlq),
            ("producer.allow.auto.create.topics", "false"),
            ("producer.message.timeout.ms", "3000"),
        ],
    );
    let err = ingest::run(
        config(&pairs),
        IngestOptions {
            stop_at_end: true,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(&dlq), "{err}");
    assert!(
        offsets_written(out.path(), &topic).is_empty(),
        "nothing was committed past the lost dead letter"
    );
}
