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
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn spawn(args: &[String], fault: Option<&str>) -> Child {
    let mut cmd = Command::new(streamx_bin());
    cmd.arg("ingest").args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    cmd.env("STREAMX_LOG", "warn");
    if let Some(f) = fault {
        cmd.env("STREAMX_FAULT", f);
    }
    cmd.spawn().expect("spawn streamx")
}

/// Number of published data files (cheap enough to poll).
fn files(out: &std::path::Path, topic: &str) -> usize {
    data_files(&out.join("topics").join(topic), ".parquet").len()
}

fn run_kill_restart(extra: &[(&str, &str)], label: &str) {
    init_logs();
    let seed = std::env::var("STREAMX_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    eprintln!("{label}: seed {seed}");
    let mut rng = Lcg(seed);
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("kill");
    let (partitions, per_partition) = (4, 40_000u64);
    cluster.create_topic(&topic, partitions).unwrap();
    produce(&servers, &topic, partitions, 0, per_partition);
    let out = tempfile::tempdir().unwrap();
    let mut pairs = job(&servers, &topic, out.path(), &[
        ("flush.size", "900"),
        ("decode.batch.records", "300"),
        ("consumer.session.timeout.ms", "3000"),
        ("consumer.heartbeat.interval.ms", "300"),
    ]);
    for (k, v) in extra {
        pairs.retain(|(key, _)| key != k);
        pairs.push((k.to_string(), v.to_string()));
    }
    let args = set_args(&pairs);

    // SIGKILL at random moments while it writes.
    let mut kills = 0;
    while kills < 6 {
        let before = files(out.path(), &topic);
        let mut child = spawn(&args, None);
        // Wait for progress (or the end), then let it run a random while more, then kill.
        wait_until("the ingest to commit something", Duration::from_secs(60), || {
            files(out.path(), &topic) > before || matches!(child.try_wait(), Ok(Some(_)))
        });
        let end = Instant::now() + Duration::from_millis(rng.next(100));
        while Instant::now() < end && child.try_wait().unwrap().is_none() {
            std::thread::yield_now();
        }
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();
        assert!(!finished, "{label}: the ingest exited by itself before it was killed");
        kills += 1;
    }

    // Abort at every step of the commit protocol.
    for point in ["commit.after_stage", "commit.after_commit_object", "commit.after_first_publish", "commit.after_publish"] {
        let hit = format!("{point}@{}", 1 + rng.next(3));
        let mut child = spawn(&args, Some(&hit));
        let status = {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break s;
                }
                assert!(Instant::now() < deadline, "{label}: fault {hit} never fired");
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        assert!(!status.success(), "{label}: the fault {hit} should abort the process");
    }

    // A last run to the end, then check every record.
    let mut last: Vec<String> = args.clone();
    last.push("--stop-at-end".into());
    let outp = Command::new(streamx_bin()).arg("ingest").args(&last).env("STREAMX_LOG", "warn").output().unwrap();
    assert!(outp.status.success(), "{label}: final run failed: {}", String::from_utf8_lossy(&outp.stderr));
    assert_exactly_once(&offsets_written(out.path(), &topic), partitions, per_partition as i64);
}

#[test]
fn sigkill_at_random_moments_and_at_every_commit_step_loses_and_duplicates_nothing() {
    run_kill_restart(&[], "count rotation");
}

#[test]
fn exactly_once_holds_with_wall_clock_schedule_and_idle_rotation() {
    run_kill_restart(
        &[("flush.size", "100000"), ("rotate.schedule.interval.ms", "200"), ("rotate.interval.ms", "150")],
        "schedule rotation",
    );
}
