//! Zombie writers (shared/DESIGN.md, "Exactly-once" items 4 and 8): process A is frozen with
//! SIGSTOP while it holds uncommitted records of every partition; process B (same store) takes
//! the partitions over and commits the sequence number A was about to use, and the records A
//! holds; A is then woken with SIGCONT. A must not write those records again: its commit loses
//! the race (the commit object exists) or it learns first that it lost the partitions. Then
//! both run on, are stopped, and every record is in the store exactly once.
//!
//! Two variants: B in A's consumer group (it gets the partitions once A's session expires; on
//! waking, A's consumer may hear that first and drop its records before it tries to commit, so
//! either way out is accepted and the one taken is printed), and B in another group (a second
//! deployment by mistake: nothing tells A, so A's commit must be fenced, and both keep writing
//! the same partitions, fenced turn by turn).

mod common;

use std::time::{Duration, Instant};

use common::crash::*;
use common::*;
use streamx::source::embedded::EmbeddedCluster;

const PARTITIONS: i32 = 4;
const FLUSH: u64 = 5000;
/// The fence warning of src/sink/mod.rs.
const FENCED: &str = "another writer committed this sequence first";

/// Polls `f` every `every` until it holds; fails after `deadline`.
fn poll(what: &str, deadline: Duration, every: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !f() {
        assert!(Instant::now() < end, "timed out after {deadline:?}: {what}");
        std::thread::sleep(every);
    }
}

/// The lines of a log containing `needle`.
fn lines_with(log: &std::path::Path, needle: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Whether A's log shows it was fenced on partition `p` at sequence number `seq`.
fn fenced_at(log: &std::path::Path, p: i32, seq: usize) -> bool {
    lines_with(log, FENCED)
        .iter()
        .any(|l| l.contains(&format!(" partition={p} ")) && l.contains(&format!(" seq={seq}")))
}

fn run_zombie(label: &str, separate_groups: bool) {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("zombie");
    cluster.create_topic(&topic, PARTITIONS).unwrap();
    let out = tempfile::tempdir().unwrap();
    let view = StoreView::local(out.path());
    let (log_a_file, log_b_file) = (
        tempfile::NamedTempFile::new().unwrap(),
        tempfile::NamedTempFile::new().unwrap(),
    );
    let log_c_file = tempfile::NamedTempFile::new().unwrap();
    let (log_a, log_b, log_c) = (log_a_file.path(), log_b_file.path(), log_c_file.path());
    let _print_on_failure = PrintOnPanic(vec![
        log_a.to_path_buf(),
        log_b.to_path_buf(),
        log_c.to_path_buf(),
    ]);
    let args = |group: &str, session_ms: &str, backoff_ms: &str| {
        set_args(&job(
            &servers,
            &topic,
            out.path(),
            &[
                ("group.id", group),
                ("flush.size", "5000"),
                ("decode.batch.records", "500"),
                // Also the idle timeout: a partition that received nothing for 2.5 s is
                // committed, so a woken A tries to commit what it holds within 2.5 s.
                ("rotate.interval.ms", "2500"),
                ("consumer.session.timeout.ms", session_ms),
                ("consumer.heartbeat.interval.ms", "300"),
                ("commit.fenced.backoff.ms", backoff_ms),
            ],
        ))
    };
    let group = unique("zombie-group");
    let (args_a, args_b) = if separate_groups {
        // Alone in its group, A keeps its session through the freeze: nothing but the commit
        // log can stop it. Its fences last 5 s, so the rebalance below falls inside them.
        (
            args(&group, "30000", "5000"),
            args(&unique("zombie-other-group"), "3000", "1000"),
        )
    } else {
        // B gets A's partitions once A's 3 s session has expired.
        (args(&group, "3000", "1000"), args(&group, "3000", "1000"))
    };

    // A commits 4 files of 5000 records per partition; the 1234 records after them stay open
    // (fewer than flush.size, and A is frozen long before they are idle for 2.5 s).
    let (full, tail) = (4 * FLUSH, 1234);
    produce(&servers, &topic, PARTITIONS, 0, full + tail);
    let mut a = spawn_ingest(&args_a, None, log_a);
    let a_committed_the_full_files = |view: &StoreView| {
        view.committed_through(&topic, PARTITIONS)
            == vec![Some(full as i64 - 1); PARTITIONS as usize]
    };
    poll(
        "A to commit offsets 0..20000 of every partition",
        Duration::from_secs(60),
        view.poll,
        || {
            assert!(a.try_wait().unwrap().is_none(), "A exited");
            a_committed_the_full_files(&view)
        },
    );
    signal(&a, libc::SIGSTOP);
    poll(
        "SIGSTOP to reach every thread of A",
        Duration::from_secs(10),
        Duration::from_millis(5),
        || all_threads_stopped(a.id()),
    );
    assert!(
        a_committed_the_full_files(&view),
        "{label}: A committed its open records before it was frozen (the test needs them open)"
    );
    let next_seq = view.commits(&topic, 0).len();
    eprintln!("{label}: A frozen after {next_seq} commits per partition, {tail} records open");

    // B takes the partitions over and commits A's next sequence number, with A's records.
    produce(&servers, &topic, PARTITIONS, full + tail, FLUSH);
    let total = full + tail + FLUSH;
    let mut b = spawn_ingest(&args_b, None, log_b);
    let frozen_at = Instant::now();
    poll(
        "B to commit A's next sequence number on every partition",
        Duration::from_secs(60),
        view.poll,
        || {
            assert!(b.try_wait().unwrap().is_none(), "B exited");
            (0..PARTITIONS).all(|p| view.commits(&topic, p).len() > next_seq)
        },
    );
    for p in 0..PARTITIONS {
        let c = &view.commits(&topic, p)[next_seq];
        assert_eq!(
            c.start_offset, full as i64,
            "{label}: B resumed where A's commits end"
        );
    }
    eprintln!(
        "{label}: B committed sequence number {next_seq} everywhere {:?} after A froze",
        frozen_at.elapsed()
    );

    // A wakes up and must not write its records again.
    signal(&a, libc::SIGCONT);
    // In one group, A's consumer may learn first that its session expired: it then drops its
    // writers (and what they hold) without committing.
    let revoked = |log: &std::path::Path| !lines_with(log, " revoked ").is_empty();
    poll(
        "A to be fenced on every partition, or to lose its assignment",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || {
            assert!(a.try_wait().unwrap().is_none(), "A exited");
            (0..PARTITIONS).all(|p| fenced_at(log_a, p, next_seq))
                || (!separate_groups && revoked(log_a))
        },
    );
    let fenced: Vec<i32> = (0..PARTITIONS)
        .filter(|&p| fenced_at(log_a, p, next_seq))
        .collect();
    eprintln!(
        "{label}: on waking, A was fenced at sequence number {next_seq} on partitions {fenced:?}{}",
        if revoked(log_a) {
            "; its consumer had its partitions revoked"
        } else {
            ""
        }
    );

    // In two groups, a rebalance of A's group while A's partitions are paused by their fences:
    // C joins A's group (eager: every partition of A is revoked, some are assigned back to A).
    // A partition assigned back must start unpaused, and nothing C or A wrote may repeat.
    let mut c = separate_groups.then(|| spawn_ingest(&args_a, None, log_c));
    if separate_groups {
        poll(
            "C's joining to revoke A's partitions",
            Duration::from_secs(30),
            Duration::from_millis(50),
            || revoked(log_a),
        );
    }

    // Both carry on with fresh records until everything is committed (in one group A rejoins
    // and gets partitions back; in two groups both write every partition and keep fencing each
    // other), then stop cleanly.
    produce(&servers, &topic, PARTITIONS, total, 2000);
    let total = total + 2000;
    poll(
        "every record to be committed",
        Duration::from_secs(60),
        view.poll,
        || {
            assert!(a.try_wait().unwrap().is_none(), "A exited");
            assert!(b.try_wait().unwrap().is_none(), "B exited");
            if let Some(c) = c.as_mut() {
                assert!(c.try_wait().unwrap().is_none(), "C exited");
            }
            view.committed_through(&topic, PARTITIONS)
                == vec![Some(total as i64 - 1); PARTITIONS as usize]
        },
    );
    let mut children = vec![("A", &mut a), ("B", &mut b)];
    if let Some(c) = c.as_mut() {
        children.push(("C", c));
    }
    for (name, child) in children {
        signal(child, libc::SIGTERM);
        let status = wait_exit(child, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{label}: {name} did not stop on SIGTERM"));
        assert!(status.success(), "{label}: {name} stopped with {status}");
    }

    run_binary_to_end(&args_a, label);
    let commits = view.assert_commit_chain(&topic, PARTITIONS);
    assert_exactly_once(&view.offsets(&topic), PARTITIONS, total as i64);
    assert_eq!(
        view.staged(&topic),
        0,
        "{label}: staged files left behind (a fenced writer discards its own)"
    );
    eprintln!(
        "{label}: {total} records per partition in {commits} commits, each exactly once; \
         A lost {} commit races, B {}",
        lines_with(log_a, FENCED).len(),
        lines_with(log_b, FENCED).len()
    );
}

#[test]
fn a_frozen_group_member_woken_after_its_partitions_moved_writes_nothing_twice() {
    run_zombie("zombie in the group", false);
}

#[test]
fn a_frozen_writer_of_another_group_is_fenced_and_nothing_is_lost_or_duplicated() {
    run_zombie("zombie in another group", true);
}
