//! The crash test of shared/DESIGN.md: `streamx ingest` (the real binary) is killed with SIGKILL
//! at random moments, spread uniformly over a run's life (startup and recovery, consumption,
//! commits, idle), and aborted at every step of the commit protocol through fault-injection
//! points, restarted each time; afterwards every produced record is in the output exactly once,
//! and the commit log of every partition is a gap-free chain. Variants: rotation policies, a
//! local directory and an S3 bucket (moto), the memory budget flushing files early together with
//! a dead letter queue. The random moments come from a seed printed at the start (set
//! STREAMX_TEST_SEED to replay them).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::crash::*;
use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;
use streamx::source::embedded::EmbeddedCluster;
use streamx::store::Store;

const PARTITIONS: i32 = 4;

/// One variant of the crash test.
struct Variant {
    label: &'static str,
    /// Job options on top of the defaults.
    options: &'static [(&'static str, &'static str)],
    /// Into an S3 bucket (moto) instead of a local directory.
    s3: bool,
    /// Malformed records (not JSON) go to a dead letter queue, and the memory budget is small
    /// enough for files to be flushed early; both are asserted to have happened.
    bad_records_and_spills: bool,
    /// Records per partition before the first run, and fresh ones before each later run.
    initial: u64,
    fresh: u64,
    /// Records a caught-up process may still hold uncommitted (count rotation only: fewer than
    /// `flush.size`; 0 when time-based rotation commits everything).
    tail: u64,
    /// SIGKILLs at random moments (two more end the calibration runs).
    kills: usize,
}

/// Whether record `seq` of partition `p` is malformed, in the variants with bad records
/// (about 1 in 60, at positions that differ per partition).
fn is_bad(p: i32, seq: u64) -> bool {
    (seq * 7 + p as u64 * 13) % 61 == 5
}

fn bad_value(p: i32, seq: u64) -> String {
    format!("not json: {p}/{seq}")
}

fn run_kill_restart(v: Variant) {
    init_logs();
    let label = v.label;
    let mut rng = Lcg(seed(label));
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("kill");
    cluster.create_topic(&topic, PARTITIONS).unwrap();
    let dlq = unique("kill-dlq");
    let value = move |p: i32, seq: u64| {
        if v.bad_records_and_spills && is_bad(p, seq) {
            bad_value(p, seq)
        } else {
            event(p, seq)
        }
    };
    let mut per_partition = v.initial;
    produce_with(&servers, &topic, PARTITIONS, 0, per_partition, value);

    // The store: a local directory, or a new bucket (deleted at the end, passed or failed).
    let dir = tempfile::tempdir().unwrap();
    let (url, store_options, _bucket) = if v.s3 {
        let endpoint = service_env("STREAMX_TEST_S3_ENDPOINT");
        let (name, opts) = s3_bucket(&endpoint, "kill");
        let opts: BTreeMap<String, String> =
            opts.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let store = Store::with_url(&format!("s3://{name}"), &opts).unwrap();
        let bucket = TempBucket {
            endpoint,
            name: name.clone(),
            store,
        };
        (format!("s3://{name}/run"), opts, Some(bucket))
    } else {
        (
            dir.path().to_string_lossy().into_owned(),
            BTreeMap::new(),
            None,
        )
    };
    let view = StoreView::new(&url, &store_options);

    let log = tempfile::NamedTempFile::new().unwrap();
    let log_path = log.path().to_path_buf();
    let _print_on_failure = PrintOnPanic(vec![log_path.clone()]);
    let mut options: Vec<(&str, &str)> = vec![
        ("store.url", url.as_str()),
        ("flush.size", "900"),
        ("decode.batch.records", "300"),
        ("consumer.session.timeout.ms", "3000"),
        ("consumer.heartbeat.interval.ms", "300"),
    ];
    if v.bad_records_and_spills {
        cluster.create_topic(&dlq, 1).unwrap();
        options.extend([
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", dlq.as_str()),
        ]);
    }
    options.extend(v.options.iter().copied());
    let mut pairs = job(&servers, &topic, dir.path(), &options);
    pairs.extend(
        store_options
            .iter()
            .map(|(k, val)| (format!("store.{k}"), val.clone())),
    );
    let args = set_args(&pairs);
    // Each run in a consumer group of its own: a restart in the killed process's group would
    // first wait for the group to drop it (a session timeout, longer than the rest of the run),
    // and the kill moments would mostly fall into that wait. The store, not the group, says
    // where a partition resumes; a group shared with a stopped member is tests/zombie.rs's.
    let run_args = || {
        let mut a = args.clone();
        a.extend(set_args(&[("group.id".into(), unique("kill-run"))]));
        a
    };
    let caught_up = |ends: &[Option<i64>], produced: u64| {
        ends.iter()
            .all(|e| e.is_some_and(|e| e as u64 + 1 + v.tail >= produced))
    };
    let mut sigkills = 0;

    // Calibration. Run 0 catches up with the backlog and is killed; run 1, restarted after a
    // kill like every later run, is timed to its first commit and to catching up, then killed.
    let mut timings = Vec::new();
    for _ in 0..2 {
        produce_with(&servers, &topic, PARTITIONS, per_partition, v.fresh, value);
        per_partition += v.fresh;
        let before = view.committed_through(&topic, PARTITIONS);
        let started = Instant::now();
        let mut child = spawn_ingest(&run_args(), None, &log_path);
        let mut first_commit = None;
        loop {
            let ends = view.committed_through(&topic, PARTITIONS);
            if first_commit.is_none() && ends != before {
                first_commit = Some(started.elapsed());
            }
            if caught_up(&ends, per_partition) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "{label}: a calibration run did not catch up"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "{label}: a calibration run exited"
            );
            std::thread::sleep(view.poll);
        }
        timings.push((first_commit.unwrap_or_default(), started.elapsed()));
        child.kill().unwrap();
        child.wait().unwrap();
        sigkills += 1;
    }
    let (first_commit, catch_up) = timings[1];
    // A fifth of the moments fall after the catch-up, when the process idles.
    let horizon = catch_up.mul_f64(1.25);
    eprintln!(
        "{label}: a restarted run commits first after {first_commit:?} and catches up after \
         {catch_up:?}; kill moments uniform in [0, {horizon:?}] after spawn"
    );

    // SIGKILL at moments spread uniformly over [0, horizon]: one in each of `kills` equal
    // slices, at a uniform point of it, the slices in random order.
    for (i, slice) in rng.permutation(v.kills).into_iter().enumerate() {
        // Fresh records each time, so a run always has something to commit.
        produce_with(&servers, &topic, PARTITIONS, per_partition, v.fresh, value);
        per_partition += v.fresh;
        let at = horizon.mul_f64((slice as f64 + rng.unit()) / v.kills as f64);
        let before = view.committed_through(&topic, PARTITIONS);
        let spawned = Instant::now();
        let mut child = spawn_ingest(&run_args(), None, &log_path);
        while spawned.elapsed() < at && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();
        assert!(
            !finished,
            "{label}: the ingest exited by itself before it was killed"
        );
        sigkills += 1;
        let after = view.committed_through(&topic, PARTITIONS);
        let unpublished = view.unpublished(&topic, PARTITIONS);
        let phase = if unpublished > 0 {
            format!("inside a publish ({unpublished} files of a commit not at their final key)")
        } else if after == before {
            "before its first commit (startup, recovery or first batch)".to_string()
        } else if caught_up(&after, per_partition) {
            "after catching up".to_string()
        } else {
            "while consuming and committing".to_string()
        };
        eprintln!(
            "{label}: kill {}/{} at {:?} (slice {slice}): {phase}",
            i + 1,
            v.kills,
            at
        );
    }

    // Abort at every step of the commit protocol.
    let mut aborts = 0;
    for point in [
        "commit.after_stage",
        "commit.after_commit_object",
        "commit.after_first_publish",
        "commit.after_publish",
    ] {
        // Fresh records, so that there is something left to commit whatever the rotation policy.
        produce_with(&servers, &topic, PARTITIONS, per_partition, 1000, value);
        per_partition += 1000;
        let hit = format!("{point}@{}", 1 + rng.next(3));
        let mut child = spawn_ingest(&run_args(), Some(&hit), &log_path);
        let status = wait_exit(&mut child, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{label}: fault {hit} never fired"));
        assert!(
            !status.success(),
            "{label}: the fault {hit} should abort the process"
        );
        aborts += 1;
    }
    eprintln!("{label}: {sigkills} SIGKILLs and {aborts} fault aborts");

    // A last run to the end, then check every record.
    run_binary_to_end(&run_args(), label);
    let commits = view.assert_commit_chain(&topic, PARTITIONS);
    let seen = view.offsets(&topic);
    let expected = |p: i32, o: i64| !(v.bad_records_and_spills && is_bad(p, o as u64));
    assert_exactly_once_where(&seen, PARTITIONS, per_partition as i64, expected);
    eprintln!(
        "{label}: {} records in {commits} commits, each exactly once",
        seen.len()
    );
    if v.bad_records_and_spills {
        let logs = std::fs::read_to_string(&log_path).unwrap();
        let spills = spill_lines(&logs);
        assert!(
            spills > 0,
            "{label}: the memory budget never flushed a file early; the variant tests nothing"
        );
        let letters = dead_letters(&servers, &dlq, &topic);
        assert_dead_letters(&letters, per_partition);
        eprintln!(
            "{label}: {spills} memory-budget flushes; {} dead letters for {} bad records",
            letters.values().sum::<u32>(),
            letters.len()
        );
    }
}

/// (partition, offset) of every record in the dead letter queue, from its `__connect.errors.*`
/// headers, with how many times each is there; checks each one's topic header and value.
fn dead_letters(servers: &str, dlq: &str, topic: &str) -> BTreeMap<(i32, i64), u32> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", unique("dlq-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (_, high) = consumer
        .fetch_watermarks(dlq, 0, Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(dlq, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let mut letters = BTreeMap::new();
    let mut next = 0;
    wait_until(
        "the whole dead letter queue",
        Duration::from_secs(60),
        || {
            while let Some(m) = consumer.poll(Duration::from_millis(100)) {
                let m = m.unwrap();
                let headers = m.headers().expect("dead letters have headers");
                let header = |name: &str| {
                    headers
                        .iter()
                        .find(|h| h.key == name)
                        .and_then(|h| h.value)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_else(|| panic!("dead letter without {name}"))
                };
                assert_eq!(header("__connect.errors.topic"), topic);
                let p: i32 = header("__connect.errors.partition").parse().unwrap();
                let o: i64 = header("__connect.errors.offset").parse().unwrap();
                assert_eq!(
                    m.payload(),
                    Some(bad_value(p, o as u64).as_bytes()),
                    "dead letter of {p}/{o} carries the record's value"
                );
                *letters.entry((p, o)).or_insert(0) += 1;
                next = m.offset() + 1;
            }
            next >= high
        },
    );
    letters
}

/// What the README promises: every skipped record is in the dead letter queue at least once
/// (delivery is flushed before the commit that covers it, so a crash may repeat some), and
/// nothing else is.
fn assert_dead_letters(letters: &BTreeMap<(i32, i64), u32>, per_partition: u64) {
    let wrong: Vec<_> = letters
        .keys()
        .filter(|(p, o)| !is_bad(*p, *o as u64) || *o as u64 >= per_partition)
        .take(10)
        .collect();
    assert!(wrong.is_empty(), "dead letters of good records: {wrong:?}");
    for p in 0..PARTITIONS {
        let missing: Vec<u64> = (0..per_partition)
            .filter(|&o| is_bad(p, o) && !letters.contains_key(&(p, o as i64)))
            .take(10)
            .collect();
        assert!(
            missing.is_empty(),
            "partition {p}: bad records missing from the dead letter queue: {missing:?}"
        );
    }
}

#[test]
fn sigkill_at_random_moments_and_at_every_commit_step_loses_and_duplicates_nothing() {
    run_kill_restart(Variant {
        label: "count rotation",
        options: &[],
        s3: false,
        bad_records_and_spills: false,
        initial: 10_000,
        fresh: 5000,
        tail: 899,
        kills: 6,
    });
}

#[test]
fn exactly_once_holds_with_wall_clock_schedule_and_idle_rotation() {
    run_kill_restart(Variant {
        label: "schedule rotation",
        options: &[
            ("flush.size", "100000"),
            ("rotate.schedule.interval.ms", "200"),
            ("rotate.interval.ms", "150"),
            // The whole history, so that every visible file is checked against a commit; the
            // other variants prune to the default 10 records per partition.
            ("commit.history.keep", "1000000"),
        ],
        s3: false,
        bad_records_and_spills: false,
        initial: 10_000,
        fresh: 5000,
        tail: 0,
        kills: 6,
    });
}

#[test]
fn exactly_once_holds_with_hourly_partitioning_and_schedule_rotation() {
    // Each record's `seq` read as epoch seconds spreads a partition over hours of 1970-01-01,
    // so every commit writes into several hourly directories.
    run_kill_restart(Variant {
        label: "hourly partitions, schedule rotation",
        options: &[
            ("flush.size", "100000"),
            ("rotate.schedule.interval.ms", "200"),
            ("partitioner.class", "HourlyPartitioner"),
            ("timestamp.extractor", "RecordField"),
            ("timestamp.field", "seq"),
            ("timestamp.field.unit", "s"),
        ],
        s3: false,
        bad_records_and_spills: false,
        initial: 10_000,
        fresh: 5000,
        tail: 0,
        kills: 6,
    });
}

#[test]
fn exactly_once_holds_on_s3() {
    run_kill_restart(Variant {
        label: "s3 (moto), count and idle rotation",
        options: &[("flush.size", "2000"), ("rotate.interval.ms", "1000")],
        s3: true,
        bad_records_and_spills: false,
        initial: 8000,
        fresh: 3000,
        tail: 0,
        kills: 6,
    });
}

#[test]
fn exactly_once_holds_with_memory_budget_spills_and_a_dead_letter_queue() {
    run_kill_restart(Variant {
        label: "memory budget spills, dead letter queue",
        options: &[
            ("flush.size", "100000"),
            ("rotate.schedule.interval.ms", "1500"),
            ("memory.budget.bytes", "1048576"),
            // Every process's sweep deletes unexplained staged files 2 s old: spilled files must
            // be committed (or given up) before that, under kills as well.
            ("staging.cleanup.age.ms", "2000"),
            ("partitioner.class", "HourlyPartitioner"),
            ("timestamp.extractor", "RecordField"),
            ("timestamp.field", "seq"),
            ("timestamp.field.unit", "s"),
        ],
        s3: false,
        bad_records_and_spills: true,
        initial: 10_000,
        fresh: 5000,
        tail: 0,
        kills: 6,
    });
}
