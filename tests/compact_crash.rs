//! Crash tests of `streamx compact`: the real binary aborted at every fault point of the swap
//! and SIGKILLed at random moments, then run again: every (partition, offset) exactly once, no
//! staged leftovers, and a further run plans nothing. Also: compactors running at once never
//! corrupt, a corrupt input only skips its directory, a record whose outputs another run deleted
//! fails its directory only, and a journal reader that listed before a swap reads the inputs it
//! listed from the trash after it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::compact::*;
use common::crash::{seed, signal, Lcg, StoreView};
use common::*;
use streamx::source::embedded::EmbeddedCluster;

const PARTITIONS: i32 = 2;
const PER_PARTITION: i64 = 200;

/// One hourly ingest into a local directory; tests copy it and compact the copies.
struct Ingested {
    _cluster: EmbeddedCluster,
    dir: tempfile::TempDir,
    servers: String,
    topic: String,
}

fn ingest_once() -> Ingested {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("ccrash");
    cluster.create_topic(&topic, PARTITIONS).unwrap();
    produce_hourly(&servers, &topic, PARTITIONS, PER_PARTITION);
    let dir = tempfile::tempdir().unwrap();
    ingest_to_end(&hourly_job(
        &servers,
        &topic,
        &dir.path().to_string_lossy(),
        &[],
        &[],
    ));
    Ingested {
        _cluster: cluster,
        dir,
        servers,
        topic,
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

impl Ingested {
    /// A fresh copy of the ingested store and the job's pairs for it.
    fn copy(&self) -> (tempfile::TempDir, Vec<(String, String)>, StoreView) {
        let copy = tempfile::tempdir().unwrap();
        copy_tree(self.dir.path(), copy.path());
        let url = copy.path().to_string_lossy().to_string();
        let pairs = hourly_job(&self.servers, &self.topic, &url, &[], &[]);
        let view = StoreView::local(copy.path());
        (copy, pairs, view)
    }
}

/// Every offset is readable at least once (a reader never misses a row).
fn nothing_missing(seen: &BTreeMap<(i32, i64), u32>) {
    for p in 0..PARTITIONS {
        for o in 0..PER_PARTITION {
            assert!(
                seen.contains_key(&(p, o)),
                "partition {p} offset {o} is missing"
            );
        }
    }
}

/// The run after a crash leaves exactly once, no staging, and a fixed point; returns its
/// summary line.
fn next_run_settles(pairs: &[(String, String)], view: &StoreView, topic: &str) -> String {
    let out = compact_command(pairs, &[], &[]).output().unwrap();
    assert!(
        out.status.success(),
        "the next run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exactly_once(&view.offsets(topic), PARTITIONS, PER_PARTITION);
    assert!(
        compaction_staging(view).is_empty(),
        "{:?}",
        compaction_staging(view)
    );
    assert!(
        compact(pairs, true).plans.is_empty(),
        "a further run plans nothing"
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The number N of a summary's "compacted N directories".
fn dirs_compacted(summary: &str) -> usize {
    summary
        .split("compacted ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary in {summary:?}"))
}

#[test]
fn a_kill_at_every_fault_point_is_completed_or_rolled_back() {
    let base = ingest_once();
    for point in [
        "compact.after_stage",
        "compact.after_record",
        "compact.after_first_publish",
        "compact.after_publish",
        "compact.after_first_delete",
    ] {
        let (_copy, pairs, view) = base.copy();
        let out = compact_command(&pairs, &[], &[("STREAMX_FAULT", point)])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: the run was aborted");
        nothing_missing(&view.offsets(&base.topic));
        // However the swap was left, `streamx query` sees every row once.
        let total = i64::from(PARTITIONS) * PER_PARTITION;
        let counted = streamx::query::run_to_string(
            &config(&pairs),
            &format!(
                "SELECT count(*) AS n, count(DISTINCT _partition * 100000 + _offset) AS d FROM \"{}\"",
                base.topic
            ),
        )
        .unwrap();
        assert!(
            counted.contains(&format!("| {total} | {total} |")),
            "{point}: {counted}"
        );
        if point == "compact.after_publish" {
            let dups = view
                .offsets(&base.topic)
                .values()
                .filter(|&&n| n > 1)
                .count();
            assert!(dups > 0, "a plain listing reader does see the window");
        }
        let records = view.list("topics/_streamx/compactions");
        if point == "compact.after_stage" {
            assert!(records.is_empty(), "{point}: {records:?}");
            assert!(
                !compaction_staging(&view).is_empty(),
                "{point}: outputs were staged"
            );
        } else {
            assert!(!records.is_empty(), "{point}: the record was created");
        }
        let summary = next_run_settles(&pairs, &view, &base.topic);
        if point != "compact.after_stage" && point != "compact.after_first_delete" {
            assert!(
                summary.contains("swaps of an earlier run"),
                "{point}: {summary}"
            );
        }
    }
}

#[test]
fn sigkill_at_random_moments_then_the_next_run_settles() {
    let base = ingest_once();
    let mut rng = Lcg(seed("compact-sigkill"));
    for _ in 0..4 {
        let (_copy, pairs, view) = base.copy();
        // Slowed-down store calls, so that the kill lands inside the swap.
        let faults = "put::1+:stall-20;rename::1+:stall-20;delete::1+:stall-20";
        let mut child = compact_command(&pairs, &[], &[("STREAMX_STORE_FAULTS", faults)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50 + rng.next(1500)));
        if child.try_wait().unwrap().is_none() {
            signal(&child, libc::SIGKILL);
        }
        let _ = wait_or_kill(&mut child, Duration::from_secs(30));
        nothing_missing(&view.offsets(&base.topic));
        next_run_settles(&pairs, &view, &base.topic);
    }
}

#[test]
fn compactors_running_at_once_never_corrupt() {
    let base = ingest_once();
    let (_copy, pairs, view) = base.copy();
    let planned = compact(&pairs, true).plans.len();
    assert!(planned > 0);
    let faults = "put::1+:stall-10";
    let children: Vec<_> = (0..3)
        .map(|_| {
            compact_command(&pairs, &[], &[("STREAMX_STORE_FAULTS", faults)])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut swapped = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "every compactor exits cleanly");
        swapped += dirs_compacted(&String::from_utf8_lossy(&out.stdout));
    }
    assert_eq!(
        swapped, planned,
        "each directory was swapped by exactly one compactor"
    );
    next_run_settles(&pairs, &view, &base.topic);
}

#[test]
fn a_corrupt_input_skips_its_directory_only() {
    let base = ingest_once();
    let (copy, pairs, view) = base.copy();
    let dirs = files_per_dir(&view, &base.topic);
    let (bad_dir, _) = dirs.iter().next().unwrap();
    let bad = format!("{bad_dir}/{}+9+0000099990+0000099999.parquet", base.topic);
    std::fs::write(copy.path().join(&bad), b"PAR1 this is not parquet PAR1").unwrap();
    let before: Vec<String> = view
        .data_files(&base.topic)
        .into_iter()
        .filter(|f| f.starts_with(&format!("{bad_dir}/")))
        .collect();
    let report = compact(&pairs, false);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let problem = &report.problems[0];
    assert!(
        problem.local && problem.message.contains(&bad),
        "{problem:?}"
    );
    let after: Vec<String> = view
        .data_files(&base.topic)
        .into_iter()
        .filter(|f| f.starts_with(&format!("{bad_dir}/")))
        .collect();
    assert_eq!(before, after, "nothing in the skipped directory changed");
    assert!(report.dirs_done > 0, "the other directories were compacted");
    std::fs::remove_file(copy.path().join(&bad)).unwrap();
    assert_exactly_once(&view.offsets(&base.topic), PARTITIONS, PER_PARTITION);
    assert!(compaction_staging(&view).is_empty());
}

#[test]
fn ingest_running_during_compaction_then_sigkill_and_restart_stays_exactly_once() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("cing");
    cluster.create_topic(&topic, PARTITIONS).unwrap();
    produce_hourly(&servers, &topic, PARTITIONS, PER_PARTITION);
    let out = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let pairs = hourly_job(&servers, &topic, &out.path().to_string_lossy(), &[], &[]);
    let args = |group: &str| {
        let mut a = set_args(&pairs);
        a.extend(set_args(&[("group.id".into(), unique(group))]));
        a
    };
    let view = StoreView::local(out.path());
    let mut child =
        common::crash::spawn_ingest(&args("run"), None, &logs.path().join("ingest.log"));
    let mut produced = PER_PARTITION;
    let caught_up = |n: i64| {
        view.committed_through(&topic, PARTITIONS)
            .iter()
            .all(|e| *e == Some(n - 1))
    };
    wait_until("the ingest caught up", Duration::from_secs(90), || {
        caught_up(produced)
    });
    for round in 0..3i64 {
        // Newer hours arrive while the older ones are compacted.
        for p in 0..PARTITIONS {
            let hour = HOUR_BASE_MS + (2 + round) * 3_600_000;
            produce_timed_from(&servers, &topic, p, 50, (hour, 1000), |n| {
                event(p, n as u64)
            });
        }
        produced += 50;
        let committed = view.committed_through(&topic, PARTITIONS);
        let report = compact(&pairs, false);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let seen = view.offsets(&topic);
        assert!(seen.values().all(|&n| n == 1), "no row twice after a run");
        for (p, end) in committed.iter().enumerate() {
            for o in 0..=end.unwrap_or(-1) {
                assert!(seen.contains_key(&(p as i32, o)), "{p}/{o} lost");
            }
        }
    }
    signal(&child, libc::SIGKILL);
    let _ = wait_or_kill(&mut child, Duration::from_secs(10));
    run_binary_to_end(&args("restart"), "restart after SIGKILL");
    assert_exactly_once(&view.offsets(&topic), PARTITIONS, produced);
    let report = compact(&pairs, false);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_exactly_once(&view.offsets(&topic), PARTITIONS, produced);
    assert!(compaction_staging(&view).is_empty());
}

#[test]
fn a_listing_reader_never_sees_fewer_rows_while_compaction_runs() {
    let base = ingest_once();
    let (copy, pairs, _view) = base.copy();
    let total = (i64::from(PARTITIONS) * PER_PARTITION) as usize;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (dir, topic, flag) = (copy.path().to_path_buf(), base.topic.clone(), stop.clone());
    // A reader like pyarrow's dataset: list the files, read each; a file deleted between the
    // listing and its read makes it start over (what a failed query does).
    let reader = std::thread::spawn(move || {
        let view = StoreView::local(&dir);
        let (mut reads, mut fewest, mut most) = (0, usize::MAX, 0);
        while !flag.load(std::sync::atomic::Ordering::Relaxed) || reads == 0 {
            let files = view.data_files(&topic);
            let mut rows = 0;
            let mut complete = true;
            for f in &files {
                let path = dir.join(f);
                let Ok(bytes) = std::fs::read(&path) else {
                    complete = false;
                    break;
                };
                let reader =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                        bytes::Bytes::from(bytes),
                    )
                    .unwrap();
                rows += reader.metadata().file_metadata().num_rows() as usize;
            }
            if complete {
                reads += 1;
                fewest = fewest.min(rows);
                most = most.max(rows);
            }
        }
        (reads, fewest, most)
    });
    // `streamx query` lists through the journal: never more, never fewer rows.
    let (qpairs, qflag) = (pairs.clone(), stop.clone());
    let sql = format!("SELECT count(*) AS n FROM \"{}\"", base.topic);
    let querier = std::thread::spawn(move || {
        let config = config(&qpairs);
        let (mut ok, mut counts) = (0, BTreeMap::new());
        while !qflag.load(std::sync::atomic::Ordering::Relaxed) || ok == 0 {
            // A query whose file was deleted under it fails; a reader retries.
            if let Ok(table) = streamx::query::run_to_string(&config, &sql) {
                ok += 1;
                *counts.entry(table).or_insert(0) += 1;
            }
        }
        counts
    });
    let _ = compact_slowly(&pairs, 5);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reads, fewest, most) = reader.join().unwrap();
    eprintln!("{reads} complete reads while compacting: {fewest}..={most} rows of {total}");
    assert!(reads > 0);
    assert!(fewest >= total, "a reader saw {fewest} rows of {total}");
    let counts = querier.join().unwrap();
    eprintln!("streamx query while compacting: {counts:?}");
    assert_eq!(counts.len(), 1, "every query counted the same: {counts:?}");
    assert!(
        counts.keys().all(|t| t.contains(&format!("| {total} |"))),
        "{counts:?}"
    );
}

#[test]
fn a_pyarrow_reader_loop_never_counts_fewer_rows_while_compaction_runs() {
    let base = ingest_once();
    let (copy, pairs, _view) = base.copy();
    let total = i64::from(PARTITIONS) * PER_PARTITION;
    let marks = tempfile::tempdir().unwrap();
    let (ready, stop) = (marks.path().join("ready"), marks.path().join("stop"));
    // Counts the topic as a pyarrow dataset in a loop; a count that fails (a file deleted under
    // it) is retried, as a query would be.
    let script = "import os, sys, pyarrow.dataset as ds\n\
        d, ready, stop = sys.argv[1:4]\n\
        counts = []\n\
        while not os.path.exists(stop) or not counts:\n\
        \x20   try:\n\
        \x20       counts.append(ds.dataset(d, format='parquet', partitioning='hive').count_rows())\n\
        \x20   except Exception:\n\
        \x20       continue\n\
        \x20   open(ready, 'w').close()\n\
        print(len(counts), min(counts), max(counts))";
    let topic_dir = copy.path().join("topics").join(&base.topic);
    let child = std::process::Command::new(service_env("STREAMX_TEST_PYTHON"))
        .arg("-c")
        .arg(script)
        .arg(&topic_dir)
        .arg(&ready)
        .arg(&stop)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("pyarrow counts", Duration::from_secs(60), || ready.exists());
    let summary = compact_slowly(&pairs, 20);
    std::fs::write(&stop, b"").unwrap();
    let py = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&py.stdout).to_string();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let n: Vec<i64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    // The summary names the longest publish -> delete window (the duplicate window).
    eprintln!(
        "{summary}\npyarrow: {} counts while compacting, {}..={} rows of {total}",
        n[0], n[1], n[2]
    );
    assert!(summary.contains("publish -> delete window"), "{summary}");
    assert!(n[1] >= total, "pyarrow counted {} rows of {total}", n[1]);
}

/// Runs `streamx compact` to its end with every publish and delete slowed by `stall_ms`;
/// returns its summary line.
fn compact_slowly(pairs: &[(String, String)], stall_ms: u32) -> String {
    let faults = format!("rename::1+:stall-{stall_ms};delete::1+:stall-{stall_ms}");
    let out = compact_command(pairs, &[], &[("STREAMX_STORE_FAULTS", &faults)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A reader that lists the topic through the journal (`streamx query`'s listing), then opens
/// what it listed after a whole `streamx compact` run moved the inputs away, reads every row
/// once: the inputs wait in the trash for `compact.input.grace.ms`, and a later run past the
/// grace empties it.
#[test]
fn a_reader_that_listed_before_the_swap_reads_every_listed_input_after_it() {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let base = ingest_once();
    let (copy, pairs, view) = base.copy();
    let url = copy.path().to_string_lossy().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = streamx::store::Store::with_url(&url, &BTreeMap::<String, String>::new()).unwrap();
    let reader = streamx::compact::view::JournalView::new(store.clone(), "topics");
    let prefix = store.path(&format!("topics/{}", base.topic));
    let listed: Vec<object_store::path::Path> = rt
        .block_on(object_store::ObjectStore::list(&reader, Some(&prefix)).try_collect::<Vec<_>>())
        .unwrap()
        .into_iter()
        .map(|m| m.location)
        .filter(|l| l.as_ref().ends_with(".parquet"))
        .collect();
    assert!(!listed.is_empty());
    let report = compact(&pairs, false);
    assert!(
        report.dirs_done > 0 && report.problems.is_empty(),
        "{report:?}"
    );
    let mut seen = BTreeMap::new();
    for location in &listed {
        let bytes = rt
            .block_on(async { reader.get(location).await?.bytes().await })
            .unwrap_or_else(|e| panic!("{location} listed before the swap: {e}"));
        count_offsets(bytes, &mut seen);
    }
    assert_exactly_once(&seen, PARTITIONS, PER_PARTITION);
    // Plain listings see the outputs alone; the moved inputs wait in the trash.
    assert_exactly_once(&view.offsets(&base.topic), PARTITIONS, PER_PARTITION);
    let trash = || view.list("topics/_streamx/compaction-trash");
    assert_eq!(trash().len(), report.files_in, "{:?}", trash());
    // A run inside the grace (1 h by default) keeps them; one past it deletes them.
    compact(&pairs, false);
    assert_eq!(trash().len(), report.files_in);
    let mut past = pairs.clone();
    past.push(("compact.input.grace.ms".into(), "0".into()));
    compact(&past, false);
    assert!(trash().is_empty(), "{:?}", trash());
    assert_exactly_once(&view.offsets(&base.topic), PARTITIONS, PER_PARTITION);
}

/// A record naming outputs that are gone (another run deleted its staging: a frozen compactor,
/// clock skew, a smaller `compact.retention.ms`) fails its directory only: the run reports it
/// with the record's key, compacts the other directories and exits non-zero.
#[test]
fn a_record_whose_outputs_are_gone_fails_its_directory_only() {
    let base = ingest_once();
    let (copy, mut pairs, view) = base.copy();
    pairs.push(("compact.parallelism".into(), "1".into()));
    let planned = compact(&pairs, true).plans.len();
    assert!(planned >= 2, "two hours: two directories");
    let out = compact_command(&pairs, &[], &[("STREAMX_FAULT", "compact.after_record")])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the run was aborted");
    let records = view.list("topics/_streamx/compactions");
    assert_eq!(records.len(), 1, "{records:?}");
    std::fs::remove_dir_all(copy.path().join("topics/_streamx/compaction-staging")).unwrap();
    let record = records[0].trim_start_matches("topics/_streamx/compactions/");
    let bad_dir = record
        .trim_start_matches(&format!("{}/", base.topic))
        .rsplit_once('/')
        .unwrap()
        .0
        .to_string();
    let report = streamx::compact::run(&config(&pairs), &Default::default())
        .expect("one bad directory must not stop the run");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let problem = &report.problems[0];
    assert_eq!(problem.dir, bad_dir, "{problem:?}");
    assert!(!problem.local, "{problem:?}");
    assert!(problem.message.contains(&records[0]), "{problem:?}");
    assert_eq!(
        report.dirs_done,
        planned - 1,
        "the other directories were compacted"
    );
    nothing_missing(&view.offsets(&base.topic));
    assert_exactly_once(&view.offsets(&base.topic), PARTITIONS, PER_PARTITION);
    // The binary names the directory and the record, and exits non-zero.
    let out = compact_command(&pairs, &[], &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&bad_dir) && stderr.contains(&records[0]),
        "{stderr}"
    );
}
