//! A store far away (issue 26): every store call made [`DelayedStore::delay`] later, as an object
//! store in another region answers. What the consumer does on assignment must not add up those
//! round trips partition after partition.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use rdkafka::consumer::Consumer;
use rdkafka::Message;
use streamx::commit::{final_file_name, CommitLog, CommitOutcome, PendingFile, PARTITIONS_AT_ONCE};
use streamx::source::embedded::EmbeddedCluster;
use streamx::source::{self, IngestContext, RebalanceEvent};
use streamx::store::delayed::DelayedStore;
use streamx::store::Store;

/// Where the set-up leaves partition `p` of every topic: commits 0 (offset 0) and 1 (offsets
/// 1..=end), so consumption resumes at `end + 1`.
fn committed_end(p: i32) -> i64 {
    1 + i64::from(p % 4)
}

/// Commits 0 and 1 of every partition of `topics` (`partitions` each), on the store as it is.
fn commit_two_each(rt: &tokio::runtime::Runtime, log: &CommitLog, topics: &[String], parts: i32) {
    let file = |topic: &str, p: i32, first: i64, last: i64| PendingFile {
        final_path: format!(
            "topics/{topic}/partition={p}/{}",
            final_file_name(topic, p, first, last, 1, "json")
        ),
        data: Bytes::from_static(b"{}\n"),
        rows: (last - first + 1) as u64,
        first_offset: first,
        last_offset: last,
    };
    let commits = topics.iter().flat_map(|t| (0..parts).map(move |p| (t, p)));
    let commits = commits.map(|(t, p)| async move {
        for (seq, (first, last)) in [(0, 0), (1, committed_end(p))].into_iter().enumerate() {
            let files = vec![file(t, p, first, last)];
            let outcome = log
                .commit(t, p, seq as u64, first, last, files, vec![])
                .await;
            assert!(
                matches!(outcome, Ok(CommitOutcome::Committed(_))),
                "{outcome:?}"
            );
        }
    });
    rt.block_on(futures::future::join_all(commits));
}

/// 3 topics x 24 partitions, each with two commits, assigned to one consumer whose store answers
/// 50 ms late. Recovering them one after another is 72 x 4-5 round trips (list, newest and
/// previous commit, publish replay, head) = 14-18 s; the store calls must overlap, within the
/// bound (two reads for each of [`PARTITIONS_AT_ONCE`] partitions), and every partition must
/// resume where its newest commit ended.
#[test]
fn assignment_recovers_many_partitions_concurrently_from_a_distant_store() {
    init_logs();
    const PARTITIONS: i32 = 24;
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topics: Vec<String> = (0..3).map(|i| unique(&format!("distant{i}"))).collect();
    for t in &topics {
        cluster.create_topic(t, PARTITIONS).unwrap();
        produce(&servers, t, PARTITIONS, 0, 8);
    }
    let out = tempfile::tempdir().unwrap();
    let local = Store::with_url(out.path().to_str().unwrap(), &BTreeMap::new()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    commit_two_each(
        &rt,
        &CommitLog::new(local.clone(), "topics", "w0"),
        &topics,
        PARTITIONS,
    );

    let delayed = Arc::new(DelayedStore::new(
        local.inner.clone(),
        Duration::from_millis(50),
    ));
    let distant = Store {
        inner: delayed.clone(),
        ..local.clone()
    };
    let pairs = job(
        &servers,
        &topics.join(","),
        out.path(),
        &[("name", &topics[0])],
    );
    let config = config(&pairs);
    let log = CommitLog::new(distant, &config.topics_dir, "w1");
    let ctx = IngestContext::new(log, rt.handle().clone(), config.start_from);
    let consumer = source::connect(&config, ctx, Duration::from_secs(10)).unwrap();

    let started = Instant::now();
    let mut recovered = HashMap::new();
    let mut first_offset = HashMap::new();
    let total = topics.len() * PARTITIONS as usize;
    wait_until(
        "every partition recovered and consumed",
        Duration::from_secs(60),
        || {
            let mut wait = Duration::from_millis(100);
            while let Some(polled) = consumer.poll(wait) {
                if let Ok(m) = polled {
                    let key = (m.topic().to_string(), m.partition());
                    first_offset.entry(key).or_insert(m.offset());
                }
                wait = Duration::ZERO;
            }
            for event in consumer.context().take_events() {
                match event {
                    RebalanceEvent::Assigned(list, _) => {
                        for (t, p, rec) in list {
                            recovered.insert((t, p), rec);
                        }
                    }
                    RebalanceEvent::Failed(e) => panic!("{e}"),
                    RebalanceEvent::Revoked(..) => {}
                }
            }
            recovered.len() == total && first_offset.len() == total
        },
    );
    consumer.unsubscribe();
    let peak = delayed.peak_in_flight();
    eprintln!(
        "{total} partitions recovered and consumed in {:?}; {} store calls, at most {peak} at once",
        started.elapsed(),
        delayed.calls()
    );

    for ((topic, p), rec) in &recovered {
        let next = committed_end(*p) + 1;
        assert_eq!(rec.next_seq, 2, "{topic} partition {p}");
        assert_eq!(rec.next_offset, Some(next), "{topic} partition {p}");
        assert_eq!(
            first_offset[&(topic.clone(), *p)],
            next,
            "{topic} partition {p}"
        );
    }
    assert!(
        peak > 1,
        "the {total} partitions were recovered one store call at a time (at most {peak} in flight)"
    );
    assert!(
        peak <= 2 * PARTITIONS_AT_ONCE,
        "recovery is bounded, yet {peak} store calls were in flight at once"
    );
}

/// Not a check: the time from the start of an ingest (and from its group join) to its first
/// record with `STREAMX_MEASURE_PARTITIONS` partitions (default 256, in 4 topics), each with two
/// commits, on a store `STREAMX_MEASURE_DELAY_MS` (default 60) away. Only partition 0 of each
/// topic has a record past its commit, so the run ends with 4 commits. Run with
/// `STREAMX_LOG=streamx::ingest=info cargo test --test distant_store -- --ignored --nocapture`
/// for the run's own `first record consumed after_join_ms=...` line.
#[test]
#[ignore]
fn measure_first_record_after_join_on_a_distant_store() {
    init_logs();
    let env = |k: &str, default: i64| std::env::var(k).map_or(default, |v| v.parse().unwrap());
    let parts = env("STREAMX_MEASURE_PARTITIONS", 256) as i32 / 4;
    let delay = Duration::from_millis(env("STREAMX_MEASURE_DELAY_MS", 60) as u64);
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topics: Vec<String> = (0..4).map(|i| unique(&format!("far{i}"))).collect();
    for t in &topics {
        cluster.create_topic(t, parts).unwrap();
        // Everything up to each partition's commit, and one record more in partition 0.
        for p in 0..parts {
            let values: Vec<String> = (0..=committed_end(p) + i64::from(p == 0))
                .map(|n| event(p, n as u64))
                .collect();
            produce_values(&servers, t, p, &values);
        }
    }
    let out = tempfile::tempdir().unwrap();
    let local = Store::with_url(out.path().to_str().unwrap(), &BTreeMap::new()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    commit_two_each(
        &rt,
        &CommitLog::new(local.clone(), "topics", "w0"),
        &topics,
        parts,
    );
    drop(rt);

    let delayed = Arc::new(DelayedStore::new(local.inner.clone(), delay));
    let options = streamx::ingest::IngestOptions {
        store: Some(Store {
            inner: delayed.clone(),
            ..local.clone()
        }),
        ..Default::default()
    };
    let (metrics, shutdown) = (options.metrics.clone(), options.shutdown.clone());
    let pairs = job(
        &servers,
        &topics.join(","),
        out.path(),
        &[("name", &topics[0])],
    );
    let config = config(&pairs);
    let started = Instant::now();
    let run = std::thread::spawn(move || streamx::ingest::run(config, options));
    wait_until("the first record", Duration::from_secs(300), || {
        metrics
            .records_consumed
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    });
    let first = started.elapsed();
    shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
    run.join().unwrap().unwrap();
    eprintln!(
        "{} partitions, store {delay:?} away: first record {first:?} after the start; {} store \
         calls until stopped, at most {} at once",
        parts * 4,
        delayed.calls(),
        delayed.peak_in_flight()
    );
}
