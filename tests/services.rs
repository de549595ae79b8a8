//! Tests against real external services, started by `scripts/services.sh` (run by
//! `scripts/test.sh`): the tansu broker (a Kafka-protocol broker process), moto (S3) and Azurite
//! (Azure Blob). They are never skipped: without the services' environment variables they fail
//! and say how to start them. GCS has no emulator that accepts object_store's writes, so GCS is
//! covered by builder/config tests only (src/store), as the README says.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use streamx::commit::{final_file_name, CommitLog, CommitOutcome, PendingFile};
use streamx::ingest::{self, IngestOptions};
use streamx::source::embedded::EmbeddedCluster;
use streamx::store::Store;

/// Ingests `partitions` x `per_partition` events from the embedded broker into `store_url`.
fn ingest_into(
    store_url: &str,
    options: &[(&str, &str)],
    partitions: i32,
    per_partition: u64,
) -> String {
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("store");
    cluster.create_topic(&topic, partitions).unwrap();
    produce(&servers, &topic, partitions, 0, per_partition);
    let mut pairs = job(
        &servers,
        &topic,
        std::path::Path::new("unused"),
        &[("store.url", store_url), ("flush.size", "400")],
    );
    for (k, v) in options {
        pairs.push((format!("store.{k}"), v.to_string()));
    }
    let snap = ingest::run(
        config(&pairs),
        IngestOptions {
            stop_at_end: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(snap.records_written, partitions as u64 * per_partition);
    topic
}

fn race_on(store: &Store) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let winners: usize = rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..6 {
            let log = CommitLog::new(store.clone(), "topics", &format!("w{w}"));
            tasks.push(tokio::spawn(async move {
                let name = final_file_name("race", 0, 0, w, 10, "raw");
                let f = PendingFile {
                    final_path: format!("topics/race/partition=0/{name}"),
                    data: Bytes::from_static(b"x\n"),
                    rows: 1,
                    first_offset: 0,
                    last_offset: w,
                };
                log.commit("race", 0, 0, 0, w, vec![f], vec![])
                    .await
                    .unwrap()
            }));
        }
        let mut n = 0;
        for t in tasks {
            n += matches!(t.await.unwrap(), CommitOutcome::Committed(_)) as usize;
        }
        n
    });
    assert_eq!(winners, 1, "exactly one writer wins commit 0");
}

#[test]
fn s3_moto_ingest_exactly_once_and_commit_race() {
    init_logs();
    let endpoint = service_env("STREAMX_TEST_S3_ENDPOINT");
    let (bucket, owned) = s3_bucket(&endpoint, "bkt");
    let opts: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = format!("s3://{bucket}/run");
    let topic = ingest_into(&url, &opts, 3, 1000);
    let options: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let store = Store::with_url(&url, &options).unwrap();
    assert_exactly_once(&offsets_in_store(&store, &topic), 3, 1000);
    race_on(&store);
    delete_all(&store);
    http(&endpoint, "DELETE", &format!("/{bucket}"));
}

/// `s3.ssea.name` (the Confluent S3 sink's key) is honoured on every object StreamX leaves in
/// the bucket: the published files (moved from staging by a server-side copy, which loses the
/// encryption unless it is asked for again) and the commit records. moto keeps each object's
/// encryption and reports it on HEAD. Before, the key was accepted and ignored: plaintext.
#[test]
fn s3_server_side_encryption_is_applied_to_every_object() {
    init_logs();
    let endpoint = service_env("STREAMX_TEST_S3_ENDPOINT");
    let (bucket, owned) = s3_bucket(&endpoint, "sse");
    let url = format!("s3://{bucket}/run");
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("sse");
    cluster.create_topic(&topic, 1).unwrap();
    produce(&servers, &topic, 1, 0, 300);
    let mut pairs = job(
        &servers,
        &topic,
        std::path::Path::new("unused"),
        &[
            ("store.url", &url),
            ("flush.size", "100"),
            ("s3.ssea.name", "AES256"),
        ],
    );
    pairs.extend(owned.iter().map(|(k, v)| (format!("store.{k}"), v.clone())));
    let opts = IngestOptions {
        stop_at_end: true,
        ..Default::default()
    };
    let snap = ingest::run(config(&pairs), opts).unwrap();
    assert_eq!(snap.records_written, 300);
    let options: BTreeMap<String, String> = owned
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let store = Store::with_url(&url, &options).unwrap();
    // Every object's encryption as S3 reports it (signed HEAD requests by boto3).
    let script = r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[2]):
    for o in page.get("Contents", []):
        head = s3.head_object(Bucket=sys.argv[2], Key=o["Key"])
        print(o["Key"], head.get("ServerSideEncryption", "none"))
"#;
    let out = std::process::Command::new(service_env("STREAMX_TEST_PYTHON"))
        .args(["-c", script, &endpoint, &bucket])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let objects: Vec<(&str, &str)> = listing.lines().filter_map(|l| l.rsplit_once(' ')).collect();
    let data = objects
        .iter()
        .filter(|(k, _)| k.ends_with(".parquet"))
        .count();
    let commits = objects
        .iter()
        .filter(|(k, _)| k.contains("_streamx/commits/"))
        .count();
    assert!(data == 3 && commits == 3, "{listing}");
    let plain: Vec<_> = objects.iter().filter(|(_, sse)| *sse != "AES256").collect();
    assert!(
        plain.is_empty(),
        "objects without the asked encryption: {plain:?}"
    );
    delete_all(&store);
    http(&endpoint, "DELETE", &format!("/{bucket}"));
}

#[test]
fn azure_azurite_ingest_exactly_once_and_commit_race() {
    init_logs();
    // object_store's emulator mode talks to Azurite's default address, 127.0.0.1:10000.
    let endpoint = service_env("STREAMX_TEST_AZURITE_ENDPOINT");
    assert!(
        endpoint.starts_with("http://127.0.0.1:10000"),
        "Azurite must listen on its default port: {endpoint}"
    );
    let container = container_name("c");
    azure_container("create", &container);
    let url = format!("az://{container}/run");
    let opts = [("use_emulator", "true")];
    let topic = ingest_into(&url, &opts, 2, 1000);
    let options: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let store = Store::with_url(&url, &options).unwrap();
    assert_exactly_once(&offsets_in_store(&store, &topic), 2, 1000);
    race_on(&store);
    delete_all(&store);
    azure_container("delete", &container);
}

#[test]
fn tansu_broker_group_rebalance_and_restart() {
    init_logs();
    let servers = service_env("STREAMX_TEST_KAFKA_BROKERS");
    let topic = unique("tansu");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .create()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let created = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(&topic, 4, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))
        .unwrap();
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    produce(&servers, &topic, 4, 0, 1500);
    let out = tempfile::tempdir().unwrap();
    // tansu: a 2 s session timeout causes constant rebalances; 6-10 s is what works.
    let pairs = job(
        &servers,
        &topic,
        out.path(),
        &[
            ("flush.size", "200"),
            ("rotate.interval.ms", "1000"),
            ("group.id", &unique("tansu-group")),
            ("consumer.session.timeout.ms", "8000"),
            ("consumer.heartbeat.interval.ms", "1000"),
        ],
    );
    let spawn = |pairs: Vec<(String, String)>| {
        let opts = IngestOptions::default();
        let (stop, metrics) = (opts.shutdown.clone(), opts.metrics.clone());
        (
            stop,
            metrics,
            std::thread::spawn(move || ingest::run(config(&pairs), opts)),
        )
    };
    let (stop1, m1, h1) = spawn(pairs.clone());
    wait_until(
        "the first member to commit",
        Duration::from_secs(60),
        || m1.commits.load(Ordering::Relaxed) > 0,
    );
    let (stop2, m2, h2) = spawn(pairs.clone());
    // Records for the second member only once it owns partitions (else the first may have
    // consumed everything before the rebalance ends, and the second never commits).
    wait_until(
        "the second member to get partitions",
        Duration::from_secs(60),
        || m2.partitions_assigned.load(Ordering::Relaxed) > 0,
    );
    produce(&servers, &topic, 4, 1500, 1500);
    wait_until("all 12000 records", Duration::from_secs(180), || {
        offsets_written(out.path(), &topic).len() == 12_000
    });
    // Leave one at a time (tansu loses the group when two members leave together).
    stop2.store(true, Ordering::Relaxed);
    h2.join().unwrap().unwrap();
    wait_until(
        "the first member to take every partition back",
        Duration::from_secs(60),
        || m1.partitions_assigned.load(Ordering::Relaxed) == 4,
    );
    stop1.store(true, Ordering::Relaxed);
    h1.join().unwrap().unwrap();
    assert!(
        m2.commits.load(Ordering::Relaxed) > 0,
        "the second member took partitions over"
    );
    assert_exactly_once(&offsets_written(out.path(), &topic), 4, 3000);

    // Restart under a new group: it resumes from the store, not from Kafka's committed offsets.
    produce(&servers, &topic, 4, 3000, 500);
    let mut restarted = pairs.clone();
    restarted.push(("group.id".into(), unique("tansu-restart")));
    let (stop3, _, h3) = spawn(restarted);
    wait_until(
        "the records produced after the restart",
        Duration::from_secs(120),
        || offsets_written(out.path(), &topic).len() == 14_000,
    );
    stop3.store(true, Ordering::Relaxed);
    h3.join().unwrap().unwrap();
    assert_exactly_once(&offsets_written(out.path(), &topic), 4, 3500);
    rt.block_on(admin.delete_topics(&[&topic], &AdminOptions::new()))
        .ok();
}
