//! `streamx ingest --stop-at-end`: the end of every (topic, partition) is decided for that
//! topic and partition, never from librdkafka's end event alone (it names a partition number,
//! not a topic), and a partition whose log ends in transaction markers (control records a
//! transactional producer leaves, which the writer never sees) ends too.
//!
//! The multi-topic test runs on the embedded broker with the second topic behind a slow broker;
//! the transaction test runs on the tansu broker (`STREAMX_TEST_KAFKA_BROKERS`), because the
//! embedded mock cluster writes no control records for committed transactions.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use streamx::metrics::Snapshot;
use streamx::source::embedded::EmbeddedCluster;

/// Runs the ingest with `--stop-at-end`; fails the test unless it returns within `deadline`.
fn run_to_end_within(pairs: &[(String, String)], deadline: Duration) -> Snapshot {
    ingest_within(pairs, deadline).0.expect("ingest run")
}

#[test]
fn an_end_event_of_one_topic_does_not_end_the_same_partition_of_another() {
    init_logs();
    let cluster = EmbeddedCluster::start(2).unwrap();
    let servers = cluster.bootstrap_servers();
    let (fast, slow) = (unique("eof-fast"), unique("eof-slow"));
    cluster.create_topic(&fast, 2).unwrap();
    cluster.create_topic(&slow, 2).unwrap();
    for p in 0..2 {
        cluster.set_partition_leader(&fast, p, 1).unwrap();
        cluster.set_partition_leader(&slow, p, 2).unwrap();
    }
    produce(&servers, &fast, 2, 0, 10);
    produce(&servers, &slow, 2, 0, 3000);
    // Broker 2 answers 1.5 s late: partitions 0 and 1 of the fast topic reach their end (and
    // librdkafka reports "partition 0/1 at end") long before the slow topic's first records.
    cluster
        .set_broker_rtt(2, Duration::from_millis(1500))
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let name = unique("eof-two-topics");
    let pairs = job(
        &servers,
        &format!("{fast},{slow}"),
        out.path(),
        &[("name", name.as_str()), ("flush.size", "1000")],
    );
    let snap = run_to_end_within(&pairs, Duration::from_secs(120));
    assert_exactly_once(&offsets_written(out.path(), &slow), 2, 3000);
    assert_exactly_once(&offsets_written(out.path(), &fast), 2, 10);
    assert_eq!(snap.records_written, 6020);
}

/// Transactions per partition, and records in each.
const TXNS: i64 = 3;
const PER_TXN: i64 = 100;

/// Produces `TXNS` committed transactions of `PER_TXN` events into each of `partitions`
/// partitions: every transaction leaves a commit marker after its records in each partition,
/// so each log ends in a marker.
fn produce_transactions(servers: &str, topic: &str, partitions: i32) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("transactional.id", unique("txn-producer"))
        .create()
        .unwrap();
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).unwrap();
    for t in 0..TXNS {
        producer.begin_transaction().unwrap();
        for n in 0..PER_TXN {
            for p in 0..partitions {
                let v = event(p, (t * PER_TXN + n) as u64);
                send(
                    &producer,
                    BaseRecord::<(), _>::to(topic).partition(p).payload(&v),
                );
            }
        }
        producer.commit_transaction(timeout).unwrap();
    }
}

/// The offsets of the records (not the markers) of [`produce_transactions`]: transaction `t`
/// holds `t * (PER_TXN + 1) ..` and its marker takes the offset after its last record.
fn transaction_record_offsets(partitions: i32) -> BTreeSet<(i32, i64)> {
    (0..partitions)
        .flat_map(|p| {
            (0..TXNS).flat_map(move |t| (0..PER_TXN).map(move |n| (p, t * (PER_TXN + 1) + n)))
        })
        .collect()
}

#[test]
fn a_log_that_ends_in_transaction_markers_ends_and_resumes_after_them() {
    init_logs();
    let servers = service_env("STREAMX_TEST_KAFKA_BROKERS");
    let topic = unique("eof-txn");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .create()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let created = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(&topic, 2, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))
        .unwrap();
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    produce_transactions(&servers, &topic, 2);
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .create()
        .unwrap();
    for p in 0..2 {
        let (_, high) = probe
            .fetch_watermarks(&topic, p, Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            high,
            TXNS * (PER_TXN + 1),
            "partition {p}: one commit marker after each transaction's records"
        );
    }

    let out = tempfile::tempdir().unwrap();
    let pairs = job(&servers, &topic, out.path(), &[("flush.size", "70")]);
    let snap = run_to_end_within(&pairs, Duration::from_secs(90));
    let expected = transaction_record_offsets(2);
    let once: BTreeMap<(i32, i64), u32> = expected.iter().map(|k| (*k, 1)).collect();
    assert_eq!(offsets_written(out.path(), &topic), once);
    assert_eq!(snap.records_written, expected.len() as u64);

    // A restart resumes at the trailing marker (right after the last committed record), reads
    // past it and ends again without writing anything.
    let mut again = pairs.clone();
    again.push(("group.id".into(), unique("eof-txn-again")));
    let snap = run_to_end_within(&again, Duration::from_secs(90));
    assert_eq!(snap.records_written, 0);
    assert_eq!(offsets_written(out.path(), &topic), once);
}
