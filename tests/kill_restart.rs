//! The crash test of shared/DESIGN.md: `streamx ingest` (the real binary) is killed with SIGKILL
//! at random moments while it writes, and aborted at every step of the commit protocol through
//! fault-injection points, restarted each time; afterwards every produced record is in the output
//! exactly once. The random moments come from a seed printed at the start (set
//! STREAMX_TEST_SEED to replay one).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use streamx::source::embedded::EmbeddedCluster;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn spawn(args: &[String], fault: Option<&str>, log: &std::path::Path) -> Child {
    let mut cmd = Command::new(streamx_bin());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    cmd.arg("ingest")
        .args(args)
        .stdout(Stdio::null())
        .stderr(log);
    cmd.env("STREAMX_LOG", "info,librdkafka=warn");
    if let Some(f) = fault {
        cmd.env("STREAMX_FAULT", f);
    }
    cmd.spawn().expect("spawn streamx")
}

/// Number of published data files (cheap enough to poll).
fn files(out: &std::path::Path, topic: &str) -> usize {
    data_files(&out.join("topics").join(topic), ".parquet").len()
}

struct PrintOnPanic(std::path::PathBuf);
impl Drop for PrintOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.0).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!("--- last lines of the ingest processes' logs ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

fn run_kill_restart(extra: &[(&str, &str)], label: &str) {
    init_logs();
    let seed = std::env::var("STREAMX_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{label}: seed {seed}");
    let mut rng = Lcg(seed);
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("kill");
    let (partitions, mut per_partition) = (4, 20_000u64);
    cluster.create_topic(&topic, partitions).unwrap();
    produce(&servers, &topic, partitions, 0, per_partition);
    let out = tempfile::tempdir().unwrap();
    // The processes' logs, printed when the test fails.
    let log = tempfile::NamedTempFile::new().unwrap();
    let log_path = log.path().to_path_buf();
    let _print_on_failure = PrintOnPanic(log_path.clone());
    let mut pairs = job(
        &servers,
        &topic,
        out.path(),
        &[
            ("flush.size", "900"),
            ("decode.batch.records", "300"),
            ("consumer.session.timeout.ms", "3000"),
            ("consumer.heartbeat.interval.ms", "300"),
        ],
    );
    for (k, v) in extra {
        pairs.retain(|(key, _)| key != k);
        pairs.push((k.to_string(), v.to_string()));
    }
    let args = set_args(&pairs);

    // SIGKILL at random moments while it writes.
    let mut kills = 0;
    while kills < 6 {
        // Fresh records each time, so a run always has something to commit.
        produce(&servers, &topic, partitions, per_partition, 3000);
        per_partition += 3000;
        let before = files(out.path(), &topic);
        let mut child = spawn(&args, None, &log_path);
        // Wait for progress (or the end), then let it run a random while more, then kill.
        wait_until(
            "the ingest to commit something",
            Duration::from_secs(60),
            || files(out.path(), &topic) > before || matches!(child.try_wait(), Ok(Some(_))),
        );
        let end = Instant::now() + Duration::from_millis(rng.next(100));
        while Instant::now() < end && child.try_wait().unwrap().is_none() {
            std::thread::yield_now();
        }
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();
        assert!(
            !finished,
            "{label}: the ingest exited by itself before it was killed"
        );
        kills += 1;
    }

    // Abort at every step of the commit protocol.
    for point in [
        "commit.after_stage",
        "commit.after_commit_object",
        "commit.after_first_publish",
        "commit.after_publish",
    ] {
        // Fresh records, so that there is something left to commit whatever the rotation policy.
        produce(&servers, &topic, partitions, per_partition, 1000);
        per_partition += 1000;
        let hit = format!("{point}@{}", 1 + rng.next(3));
        let mut child = spawn(&args, Some(&hit), &log_path);
        let status = {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break s;
                }
                assert!(
                    Instant::now() < deadline,
                    "{label}: fault {hit} never fired"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        assert!(
            !status.success(),
            "{label}: the fault {hit} should abort the process"
        );
    }

    // A last run to the end, then check every record.
    run_binary_to_end(&args, label);
    assert_exactly_once(
        &offsets_written(out.path(), &topic),
        partitions,
        per_partition as i64,
    );
}

#[test]
fn sigkill_at_random_moments_and_at_every_commit_step_loses_and_duplicates_nothing() {
    run_kill_restart(&[], "count rotation");
}

#[test]
fn exactly_once_holds_with_wall_clock_schedule_and_idle_rotation() {
    run_kill_restart(
        &[
            ("flush.size", "100000"),
            ("rotate.schedule.interval.ms", "200"),
            ("rotate.interval.ms", "150"),
        ],
        "schedule rotation",
    );
}

#[test]
fn exactly_once_holds_with_hourly_partitioning_and_schedule_rotation() {
    // Each record's `seq` read as epoch seconds spreads a partition over hours of 1970-01-01,
    // so every commit writes into several hourly directories.
    run_kill_restart(
        &[
            ("flush.size", "100000"),
            ("rotate.schedule.interval.ms", "200"),
            ("partitioner.class", "HourlyPartitioner"),
            ("timestamp.extractor", "RecordField"),
            ("timestamp.field", "seq"),
            ("timestamp.field.unit", "s"),
        ],
        "hourly partitions, schedule rotation",
    );
}
