//! Exactly-once under store faults (issue 9), end to end through `ingest::run` with a
//! [`FaultyStore`] wrapped around a real store (moto S3 or local disk): ambiguous commit creates,
//! lost answers, stores that ignore conditional writes, a half-published commit nobody owns, a
//! partition log that went back, and bounded commit records and staging.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use streamx::commit::{final_file_name, CommitLog, PendingFile};
use streamx::ingest::{self, IngestError, IngestOptions};
use streamx::source::embedded::EmbeddedCluster;
use streamx::store::faults::{FaultAction, FaultRule, FaultyStore, Op};
use streamx::store::Store;

fn run_with_store(pairs: &[(String, String)], store: Store) -> Result<u64, IngestError> {
    let options = IngestOptions {
        stop_at_end: true,
        store: Some(store),
        ..Default::default()
    };
    ingest::run(config(pairs), options).map(|s| s.records_written)
}

/// A moto bucket as a store and the `--set` pairs that name it.
fn moto_store(prefix: &str) -> (Store, Vec<(String, String)>, String) {
    let endpoint = service_env("STREAMX_TEST_S3_ENDPOINT");
    let (bucket, opts) = s3_bucket(&endpoint, prefix);
    let url = format!("s3://{bucket}/run");
    let options: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let mut pairs = vec![("store.url".to_string(), url.clone())];
    pairs.extend(
        options
            .iter()
            .map(|(k, v)| (format!("store.{k}"), v.clone())),
    );
    (Store::with_url(&url, &options).unwrap(), pairs, bucket)
}

fn with_faults(store: &Store, rules: Vec<FaultRule>) -> (Store, Arc<FaultyStore>) {
    let faults = Arc::new(FaultyStore::with_rules(store.inner.clone(), rules));
    let wrapped = Store {
        inner: faults.clone(),
        ..store.clone()
    };
    (wrapped, faults)
}

fn job_on(
    servers: &str,
    topic: &str,
    store_pairs: &[(String, String)],
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut pairs = job(servers, topic, std::path::Path::new("unused"), extra);
    for (k, v) in store_pairs {
        pairs.retain(|(key, _)| key != k);
        pairs.push((k.clone(), v.clone()));
    }
    pairs
}

#[test]
fn s3_commit_creates_answered_already_exists_after_success_lose_nothing() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("ambiguous");
    cluster.create_topic(&topic, 3).unwrap();
    produce(&servers, &topic, 3, 0, 1000);
    let (store, store_pairs, bucket) = moto_store("ambig");
    // The 2nd and the 5th commit create are applied by moto, then answered AlreadyExists (what
    // object_store's retry sees when the first answer was lost).
    let commits = "_streamx/commits/";
    let (faulty, faults) = with_faults(
        &store,
        vec![
            FaultRule::new(Op::Put, commits, FaultAction::ApplyThenAlreadyExists).nth(2),
            FaultRule::new(Op::Put, commits, FaultAction::ApplyThenAlreadyExists).nth(5),
        ],
    );
    let pairs = job_on(&servers, &topic, &store_pairs, &[("flush.size", "200")]);
    assert_eq!(run_with_store(&pairs, faulty).unwrap(), 3000);
    assert_eq!(faults.fired(), 2, "both faults were injected");
    assert_exactly_once(&offsets_in_store(&store, &topic), 3, 1000);

    // A lost answer that surfaces as an error stops the run; the next run finishes the commit.
    produce(&servers, &topic, 3, 1000, 500);
    let (faulty, faults) = with_faults(
        &store,
        vec![FaultRule::new(Op::Put, commits, FaultAction::ApplyThenFail).nth(3)],
    );
    let err = run_with_store(&pairs, faulty).unwrap_err().to_string();
    assert!(err.contains("injected fault"), "{err}");
    assert_eq!(faults.fired(), 1);
    run_with_store(&pairs, store.clone()).expect("the run after the fault");
    assert_exactly_once(&offsets_in_store(&store, &topic), 3, 1500);
    delete_all(&store);
    http(
        &service_env("STREAMX_TEST_S3_ENDPOINT"),
        "DELETE",
        &format!("/{bucket}"),
    );
}

#[test]
fn a_store_that_ignores_or_refuses_conditional_creates_is_refused_at_start() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("noncond");
    cluster.create_topic(&topic, 1).unwrap();
    produce(&servers, &topic, 1, 0, 10);

    // S3 with conditional writes turned off in the client.
    let (store, mut store_pairs, bucket) = moto_store("noncond");
    store_pairs.push(("store.conditional_put".into(), "disabled".into()));
    let pairs = job_on(&servers, &topic, &store_pairs, &[("flush.size", "5")]);
    let err = ingest::run(
        config(&pairs),
        IngestOptions {
            stop_at_end: true,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(&format!("s3://{bucket}/run")), "{err}");
    assert!(err.contains("does not honour conditional writes"), "{err}");
    assert!(err.contains("store.conditional_put"), "{err}");

    // A server that accepts If-None-Match and ignores it (every create overwrites).
    let out = tempfile::tempdir().unwrap();
    let local = Store::with_url(out.path().to_str().unwrap(), &BTreeMap::new()).unwrap();
    let always = FaultRule::new(Op::Put, "", FaultAction::CreateAsOverwrite).always();
    let (faulty, _) = with_faults(&local, vec![always]);
    let pairs = job(&servers, &topic, out.path(), &[("flush.size", "5")]);
    let err = run_with_store(&pairs, faulty).unwrap_err().to_string();
    assert!(err.contains("a second create"), "{err}");
    assert!(
        data_files(&out.path().join("topics"), ".parquet").is_empty(),
        "nothing written"
    );
    delete_all(&store);
    http(
        &service_env("STREAMX_TEST_S3_ENDPOINT"),
        "DELETE",
        &format!("/{bucket}"),
    );
}

#[test]
fn a_half_published_commit_is_finished_by_a_process_that_does_not_own_it() {
    init_logs();
    let out = tempfile::tempdir().unwrap();
    let local = Store::with_url(out.path().to_str().unwrap(), &BTreeMap::new()).unwrap();
    // Commit 0 of another topic's partition 0 with two files; the process dies after the first
    // rename (the second fails and nobody retries).
    let orphan_topic = unique("abandoned");
    let (faulty, _) = with_faults(
        &local,
        vec![FaultRule::new(
            Op::Rename,
            &format!("topics/{orphan_topic}/"),
            FaultAction::Fail,
        )
        .nth(2)],
    );
    let file = |first: i64, last: i64| PendingFile {
        final_path: format!(
            "topics/{orphan_topic}/partition=0/{}",
            final_file_name(&orphan_topic, 0, first, last, 10, "parquet")
        ),
        data: Bytes::from_static(b"not read"),
        rows: (last - first + 1) as u64,
        first_offset: first,
        last_offset: last,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let log = CommitLog::new(faulty, "topics", "dead-writer");
    let files = vec![file(0, 4), file(5, 9)];
    assert!(rt
        .block_on(log.commit(&orphan_topic, 0, 0, 0, 9, files, vec![]))
        .is_err());
    let second = out.path().join(file(5, 9).final_path);
    assert!(!second.exists());

    // A process of an unrelated job on the same topics.dir finishes it at start.
    let cluster = EmbeddedCluster::start(1).unwrap();
    let topic = unique("unrelated");
    cluster.create_topic(&topic, 1).unwrap();
    produce(&cluster.bootstrap_servers(), &topic, 1, 0, 10);
    let pairs = job(
        &cluster.bootstrap_servers(),
        &topic,
        out.path(),
        &[("flush.size", "5")],
    );
    assert_eq!(run_with_store(&pairs, local).unwrap(), 10);
    assert!(
        second.exists(),
        "the sweep at start published the rest of the commit"
    );
}

#[test]
fn a_partition_log_that_went_back_stops_with_a_clear_error() {
    init_logs();
    let out = tempfile::tempdir().unwrap();
    let topic = unique("recreated");
    {
        let cluster = EmbeddedCluster::start(1).unwrap();
        cluster.create_topic(&topic, 1).unwrap();
        produce(&cluster.bootstrap_servers(), &topic, 1, 0, 100);
        let pairs = job(
            &cluster.bootstrap_servers(),
            &topic,
            out.path(),
            &[("flush.size", "50")],
        );
        let written = ingest::run(
            config(&pairs),
            IngestOptions {
                stop_at_end: true,
                ..Default::default()
            },
        );
        assert_eq!(written.unwrap().records_written, 100);
    }
    // The topic is recreated (a new cluster): its log starts at 0 again with other records.
    let cluster = EmbeddedCluster::start(1).unwrap();
    cluster.create_topic(&topic, 1).unwrap();
    produce(&cluster.bootstrap_servers(), &topic, 1, 1000, 10);
    let pairs = job(
        &cluster.bootstrap_servers(),
        &topic,
        out.path(),
        &[("flush.size", "50")],
    );
    let err = ingest::run(
        config(&pairs),
        IngestOptions {
            stop_at_end: true,
            ..Default::default()
        },
    )
    .expect_err("the run must not drop the new log's records silently")
    .to_string();
    assert!(
        err.contains(&format!("topic '{topic}' partition 0")),
        "{err}"
    );
    assert!(err.contains("delivered offset 0"), "{err}");
    assert!(err.contains("up to 99"), "{err}");
}

#[test]
fn commit_records_and_staging_stay_bounded_over_many_commits() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("bounded");
    cluster.create_topic(&topic, 2).unwrap();
    produce(&servers, &topic, 2, 0, 3000);
    let out = tempfile::tempdir().unwrap();
    let local = Store::with_url(out.path().to_str().unwrap(), &BTreeMap::new()).unwrap();
    // An orphan a crashed writer left behind (seq 0 of partition 1).
    let orphan = out.path().join(format!(
        "topics/_streamx/staging/{topic}/1/crashed/00000000000000000000/x.parquet"
    ));
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"orphan").unwrap();
    let pairs = job(
        &servers,
        &topic,
        out.path(),
        &[("flush.size", "50"), ("commit.history.keep", "3")],
    );
    assert_eq!(run_with_store(&pairs, local.clone()).unwrap(), 6000);
    for p in 0..2 {
        let dir = out
            .path()
            .join(format!("topics/_streamx/commits/{topic}/{p}"));
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            3,
            "{}",
            dir.display()
        );
    }
    // The next start sweeps: the orphan of seq 0 (commit 59 exists) goes.
    produce(&servers, &topic, 2, 3000, 50);
    assert_eq!(run_with_store(&pairs, local).unwrap(), 100);
    assert!(!orphan.exists(), "the orphaned staging file was deleted");
    let staged = data_files(&out.path().join("topics/_streamx/staging"), "");
    assert!(staged.is_empty(), "{staged:?}");
    assert_exactly_once(&offsets_written(out.path(), &topic), 2, 3050);
}
