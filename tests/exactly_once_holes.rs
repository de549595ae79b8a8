//! Exactly-once holes found by reading the code (issue "Exactly-once holes a close reading of the
//! code found"), each shown by a test that failed before its fix: a fenced partition revoked and
//! assigned back during its backoff, two jobs on one topic and `topics.dir`, the remedy for a Every test runs on the embedded broker and a local store, with names of
//! its own. (Offsets deleted by retention are tested in src/ingest/router.rs: neither the embedded
//! broker nor tansu 0.6 can delete records, the one way to make such a gap here.)

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::util::Timeout;
use rdkafka::ClientConfig;
use streamx::commit::CommitLog;
use streamx::ingest::{self, IngestOptions};
use streamx::metrics::{Metrics, Snapshot};
use streamx::source::embedded::EmbeddedCluster;
use streamx::store::Store;

fn run_to_end(pairs: &[(String, String)]) -> Result<Snapshot, streamx::ingest::IngestError> {
    let opts = IngestOptions {
        stop_at_end: true,
        ..Default::default()
    };
    ingest::run(config(pairs), opts)
}

fn local_store(out: &std::path::Path) -> Store {
    Store::with_url(
        out.to_str().unwrap(),
        &std::collections::BTreeMap::<String, String>::new(),
    )
    .unwrap()
}

/// The end offset of the newest commit of a partition under `topics`, if any.
fn committed_through(out: &std::path::Path, topic: &str, partition: i32) -> Option<i64> {
    let log = CommitLog::new(local_store(out), "topics", "reader");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(log.newest_commit(topic, partition))
        .unwrap()
        .map(|c| c.end_offset)
}

/// Item 2: a fence pauses the partition; an eager rebalance inside the fence's backoff revokes it
/// and assigns it back to the same process. librdkafka keeps the application's pause across the
/// new assignment, so before the fix the partition stayed paused for good (no error, lag
/// growing); now the new assignment starts unpaused and the records are written.
#[test]
fn a_fenced_partition_revoked_and_assigned_back_during_its_backoff_is_read_again() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let (topic, other_topic) = (unique("fenced"), unique("fenced-other"));
    cluster.create_topic(&topic, 1).unwrap();
    cluster.create_topic(&other_topic, 1).unwrap();
    produce(&servers, &topic, 1, 0, 100);
    let out = tempfile::tempdir().unwrap();
    let group = unique("fenced-group");
    let pairs = job(
        &servers,
        &topic,
        out.path(),
        &[
            ("group.id", &group),
            ("flush.size", "1000000"),
            // The open commit is closed 3 s after its first record (or when idle that long).
            ("rotate.interval.ms", "3000"),
            // Far longer than the test: only the rebalance can bring the partition back.
            ("commit.fenced.backoff.ms", "3600000"),
        ],
    );
    let metrics = Arc::new(Metrics::default());
    let opts = IngestOptions {
        metrics: metrics.clone(),
        ..Default::default()
    };
    let stop = opts.shutdown.clone();
    let run = std::thread::spawn(move || ingest::run(config(&pairs), opts));
    wait_until("every record consumed", Duration::from_secs(30), || {
        metrics.records_consumed.load(Ordering::Relaxed) == 100
    });
    // Another writer commits offsets 0..=49 as commit 0 before this one's idle commit.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let other = CommitLog::new(local_store(out.path()), "topics", "other-writer");
    rt.block_on(other.commit(&topic, 0, 0, 0, 49, vec![], vec![]))
        .unwrap();
    wait_until("the commit race lost", Duration::from_secs(30), || {
        metrics.commits_fenced.load(Ordering::Relaxed) == 1
    });
    // An eager rebalance within the backoff: a member for another topic joins the group; the
    // partition is revoked and assigned back to the same process.
    let member: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("group.id", &group)
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    member.subscribe(&[&other_topic]).unwrap();
    let joined = Instant::now() + Duration::from_secs(30);
    while member.assignment().map_or(0, |a| a.count()) == 0 {
        assert!(Instant::now() < joined, "the second member never joined");
        let _ = member.poll(Duration::from_millis(100));
    }
    wait_until(
        "offsets 50..=99 committed after the rebalance",
        Duration::from_secs(60),
        || {
            let _ = member.poll(Duration::from_millis(0));
            committed_through(out.path(), &topic, 0) == Some(99)
        },
    );
    stop.store(true, Ordering::Relaxed);
    run.join().unwrap().expect("ingest run");
    let written = offsets_written(out.path(), &topic);
    assert_exactly_once_where(&written, 1, 100, |_, o| o >= 50);
}

/// Item 4: a second job (another name, so another group) on the same topic and `topics.dir`.
/// Before the fix it resumed from the first job's commit chain and wrote nothing ("consumed 0
/// records", exit 0); now it is refused, naming the other job and the two ways out, both of
/// which then work.
#[test]
fn a_second_job_on_one_topic_and_topics_dir_is_refused_instead_of_writing_nothing() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("two-jobs");
    cluster.create_topic(&topic, 1).unwrap();
    produce(&servers, &topic, 1, 0, 200);
    let out = tempfile::tempdir().unwrap();
    let (first, second) = (unique("parquet-job"), unique("archive-job"));
    let job_named = |name: &str, extra: &[(&str, &str)]| {
        let mut pairs = job(&servers, &topic, out.path(), &[("flush.size", "100")]);
        pairs.retain(|(k, _)| k != "name");
        pairs.push(("name".into(), name.into()));
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        pairs
    };
    let snap = run_to_end(&job_named(&first, &[])).expect("first job");
    assert_eq!(snap.records_written, 200);
    let archive = [("format.class", "json")];
    let refused = run_to_end(&job_named(&second, &archive));
    let message = match refused {
        Ok(snap) => panic!("the second job ran on the first job's chain: {snap}"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains(&format!("is written by job '{first}'"))
            && message.contains("topics.dir")
            && message.contains(&format!("commit.takeover.job={first}")),
        "{message}"
    );
    // Way out 1: a topics.dir of its own: it writes every record.
    let own_dir = run_to_end(&job_named(
        &second,
        &[archive[0], ("topics.dir", "archive")],
    ));
    assert_eq!(own_dir.expect("own topics.dir").records_written, 200);
    // Way out 2: take the chain over (the first job no longer runs): it goes on after it.
    produce(&servers, &topic, 1, 200, 50);
    let takeover = [("commit.takeover.job", first.as_str())];
    let snap = run_to_end(&job_named(&second, &takeover)).expect("takeover");
    assert_eq!(snap.records_written, 50);
    assert_exactly_once(&offsets_written(out.path(), &topic), 1, 250);
}

/// Item 6: a partition whose log went back (cluster replaced, topic recreated) is stopped with a
/// remedy that cannot lose data. Before the fix the remedy was to move the commit records aside,
/// after which the new log's files took the old files' names and replaced them.
#[test]
fn a_rewound_log_stops_with_a_remedy_that_keeps_the_old_files() {
    init_logs();
    let topic = unique("rewound");
    let out = tempfile::tempdir().unwrap();
    let old_cluster = EmbeddedCluster::start(1).unwrap();
    old_cluster.create_topic(&topic, 1).unwrap();
    produce(&old_cluster.bootstrap_servers(), &topic, 1, 0, 100);
    let old = job(
        &old_cluster.bootstrap_servers(),
        &topic,
        out.path(),
        &[("flush.size", "50")],
    );
    run_to_end(&old).expect("first log");
    let before = snapshot_files(out.path());
    drop(old_cluster);
    // The topic again, on a new cluster: its log starts at offset 0 again.
    let cluster = EmbeddedCluster::start(1).unwrap();
    cluster.create_topic(&topic, 1).unwrap();
    produce(&cluster.bootstrap_servers(), &topic, 1, 1000, 30);
    let new = job(
        &cluster.bootstrap_servers(),
        &topic,
        out.path(),
        &[("flush.size", "50")],
    );
    let message = run_to_end(&new).expect_err("a rewound log").to_string();
    assert!(
        message.contains("log went back") && message.contains("new topics.dir"),
        "{message}"
    );
    assert!(
        !message.contains("move <topics.dir>/_streamx/commits"),
        "the remedy must not be to move the commit records aside: {message}"
    );
    // The remedy: a new topics.dir. The new log is written, the old files are untouched.
    let mut remedied = new.clone();
    remedied.push(("topics.dir".into(), "topics-v2".into()));
    let snap = run_to_end(&remedied).expect("new topics.dir");
    assert_eq!(snap.records_written, 30);
    let after: Vec<_> = snapshot_files(out.path())
        .into_iter()
        .filter(|(p, _)| !p.contains("topics-v2"))
        .collect();
    assert_eq!(before, after, "the old log's files are as they were");
}

/// Every data file under `out` (outside `_` directories) with its bytes, sorted by path.
fn snapshot_files(out: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = data_files(out, ".parquet")
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p.to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

/// Item 9: offsets the broker deleted (retention) while the job was not reading are counted and
/// logged, not skipped silently. The embedded broker keeps at most 5 MB per partition, deleting
/// its oldest batches past that, as size-based retention does: 7 MB produced after the job's
/// last commit move the log start past it.
#[test]
fn offsets_deleted_by_retention_before_they_were_read_are_counted() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("retention");
    cluster.create_topic(&topic, 1).unwrap();
    let value = |seq: u64, note: &str| {
        format!(r#"{{"p":0,"seq":{seq},"user":"u","amount":1.5,"note":"{note}"}}"#)
    };
    let small: Vec<String> = (0..100).map(|n| value(n, "small")).collect();
    produce_values(&servers, &topic, 0, &small);
    let out = tempfile::tempdir().unwrap();
    let pairs = job(&servers, &topic, out.path(), &[("flush.size", "50")]);
    run_to_end(&pairs).expect("first run");
    let big_note = "x".repeat(10_000);
    let big: Vec<String> = (100..800).map(|n| value(n, &big_note)).collect();
    produce_values(&servers, &topic, 0, &big);
    let watermarks: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .create()
        .unwrap();
    let (log_start, end) = watermarks
        .fetch_watermarks(&topic, 0, Timeout::After(Duration::from_secs(10)))
        .unwrap();
    assert!(
        log_start > 100 && end == 800,
        "retention moved the log start past the last commit: {log_start}..{end}"
    );
    let snap = run_to_end(&pairs).expect("second run");
    assert_eq!(snap.offsets_skipped_at_resume, (log_start - 100) as u64);
    assert_eq!(snap.records_written, (800 - log_start) as u64);
    assert_exactly_once_where(&offsets_written(out.path(), &topic), 1, 800, |_, o| {
        o < 100 || o >= log_start
    });
}
