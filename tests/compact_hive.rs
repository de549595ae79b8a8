//! `streamx compact` with `hive.integration=true` against the real test metastore and Spark
//! (scripts/hive-metastore.sh; never skipped): the partitions stay registered and Spark reads
//! every row exactly once after compaction, in both `compact.hive.swap` modes; a Spark reader
//! loop running while compaction runs never counts fewer rows (`files`) and never more or fewer
//! (`location`); late records into a compacted hour are read by Spark, and a kill at either
//! partition switch is finished by the next run, also after a run without Hive settings came in
//! between (it keeps the staged directory the partition points at). Every test makes its own
//! database, topic and store directory.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::compact::*;
use common::crash::StoreView;
use common::hive::{client, env_value, spark_query, uris, TestDb};
use common::*;
use serde_json::json;
use streamx::hive::config::table_name_for_topic;
use streamx::source::embedded::EmbeddedCluster;

const PARTITIONS: i32 = 2;
const PER_PARTITION: i64 = 200;
const TOTAL: i64 = PARTITIONS as i64 * PER_PARTITION;

/// An hourly ingest registered in Hive, done, with every partition registered.
struct HiveIngest {
    db: TestDb,
    cluster: EmbeddedCluster,
    out: tempfile::TempDir,
    topic: String,
    pairs: Vec<(String, String)>,
}

impl HiveIngest {
    fn new(swap: &str) -> Self {
        init_logs();
        let db = TestDb::new("compact");
        let cluster = EmbeddedCluster::start(1).unwrap();
        let servers = cluster.bootstrap_servers();
        let topic = unique("chive");
        cluster.create_topic(&topic, PARTITIONS).unwrap();
        produce_hourly(&servers, &topic, PARTITIONS, PER_PARTITION);
        let out = tempfile::tempdir().unwrap();
        let uris = uris();
        let hive = [
            ("hive.integration", "true"),
            ("hive.metastore.uris", uris.as_str()),
            ("hive.database", db.name.as_str()),
            ("hive.retry.backoff.max.ms", "500"),
            ("compact.hive.swap", swap),
        ];
        let url = out.path().to_string_lossy().to_string();
        let pairs = hourly_job(&servers, &topic, &url, &[], &hive);
        ingest_to_end(&pairs);
        let ingest = HiveIngest {
            db,
            cluster,
            out,
            topic,
            pairs,
        };
        let dirs = ingest.store_dirs();
        wait_until(
            "every directory registered",
            Duration::from_secs(90),
            || ingest.partitions() == dirs,
        );
        ingest
    }

    fn table(&self) -> String {
        table_name_for_topic(&self.topic)
    }

    fn view(&self) -> StoreView {
        StoreView::local(self.out.path())
    }

    /// Directories holding data files, as partition names.
    fn store_dirs(&self) -> BTreeSet<String> {
        files_per_dir(&self.view(), &self.topic)
            .into_keys()
            .map(|d| {
                d.split_once(&format!("{}/", self.topic))
                    .unwrap()
                    .1
                    .to_string()
            })
            .collect()
    }

    fn partitions(&self) -> BTreeSet<String> {
        client()
            .get_partition_names(&self.db.name, &self.table(), -1)
            .map(|n| n.into_iter().collect())
            .unwrap_or_default()
    }

    /// Every partition's location, by name.
    fn locations(&self) -> Vec<(String, String)> {
        let mut c = client();
        self.partitions()
            .into_iter()
            .map(|name| {
                let values: Vec<String> = name
                    .split('/')
                    .map(|kv| kv.split_once('=').unwrap().1.to_string())
                    .collect();
                let p = c
                    .get_partition(&self.db.name, &self.table(), &values)
                    .unwrap();
                (name, p.sd.unwrap().location.unwrap())
            })
            .collect()
    }

    fn count_sql(&self) -> String {
        format!(
            "SELECT count(*) AS n, count(DISTINCT _partition * 100000 + _offset) AS d FROM {}.{}",
            self.db.name,
            self.table()
        )
    }

    /// Spark through the metastore reads every row exactly once.
    fn spark_reads_every_row_once(&self) {
        let rows = spark_query(&uris(), &self.count_sql());
        if rows != vec![json!({"n": TOTAL, "d": TOTAL})] {
            let files = spark_query(
                &uris(),
                &format!(
                    "SELECT input_file_name() AS f, count(*) AS n FROM {}.{} GROUP BY 1 ORDER BY 1",
                    self.db.name,
                    self.table()
                ),
            );
            panic!(
                "{rows:?}\nfiles Spark read: {files:#?}\nlocations: {:#?}",
                self.locations()
            );
        }
    }

    /// Partitions, locations and rows after compaction are as before it.
    fn settled(&self, locations: &[(String, String)]) {
        assert_eq!(self.locations(), locations, "every partition back home");
        assert_exactly_once(&self.view().offsets(&self.topic), PARTITIONS, PER_PARTITION);
        assert!(compact(&self.pairs, true).plans.is_empty(), "fixed point");
    }
}

#[test]
fn files_swap_keeps_partitions_registered_and_spark_reads_every_row_once() {
    let ingest = HiveIngest::new("files");
    let locations = ingest.locations();
    let report = compact(&ingest.pairs, false);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(
        report.dirs_done > 0 && report.files_out < report.files_in,
        "{report:?}"
    );
    ingest.settled(&locations);
    assert!(compaction_staging(&ingest.view()).is_empty());
    ingest.spark_reads_every_row_once();
}

/// Runs `streamx compact` with the store calls of its swap slowed by `faults` (so that Spark
/// queries land inside swaps) while a Spark session counts the table in a loop; the loop's
/// summary: `{"queries", "failed", "min", "max", "error"}`.
fn spark_loop_while_compacting(ingest: &HiveIngest, faults: &str) -> serde_json::Value {
    let marks = tempfile::tempdir().unwrap();
    let (ready, stop) = (marks.path().join("ready"), marks.path().join("stop"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/spark_query.py");
    let reader = std::process::Command::new(env_value("STREAMX_TEST_PYSPARK_PYTHON"))
        .arg(&script)
        .args(["--uris", &uris(), "--sql", &ingest.count_sql()])
        .arg("--ready")
        .arg(&ready)
        .arg("--stop")
        .arg(&stop)
        .stdout(std::process::Stdio::piped())
        // A file, not a pipe nobody reads while the loop runs.
        .stderr(std::fs::File::create(marks.path().join("spark.log")).unwrap())
        .spawn()
        .unwrap();
    wait_until("Spark counts", Duration::from_secs(180), || ready.exists());
    let out = compact_command(&ingest.pairs, &[], &[("STREAMX_STORE_FAULTS", faults)])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&stop, b"").unwrap();
    let py = reader.wait_with_output().unwrap();
    let log = std::fs::read_to_string(marks.path().join("spark.log")).unwrap_or_default();
    assert!(py.status.success(), "{log}");
    let seen: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    eprintln!("{summary}Spark while compacting: {seen}");
    assert!(seen["queries"].as_i64().unwrap() > 1, "{seen}");
    seen
}

#[test]
fn files_swap_spark_loop_never_counts_fewer_rows() {
    let ingest = HiveIngest::new("files");
    let locations = ingest.locations();
    // Files mode publishes by renames.
    let seen = spark_loop_while_compacting(&ingest, "rename::1+:stall-1500;delete::1+:stall-300");
    // Files mode: a listing inside one publish -> delete step may count a row twice (the
    // documented window), never miss one.
    assert!(seen["min"]["n"].as_i64().unwrap() >= TOTAL, "{seen}");
    for bound in ["min", "max"] {
        assert_eq!(seen[bound]["d"], json!(TOTAL), "{seen}");
    }
    ingest.settled(&locations);
    assert!(compaction_staging(&ingest.view()).is_empty());
    ingest.spark_reads_every_row_once();
}

#[test]
fn location_swap_spark_loop_never_counts_more_or_fewer_rows() {
    let ingest = HiveIngest::new("location");
    let locations = ingest.locations();
    // Location mode publishes by copies (the staged files stay for readers).
    let seen = spark_loop_while_compacting(&ingest, "copy::1+:stall-1500;delete::1+:stall-300");
    for bound in ["min", "max"] {
        assert_eq!(seen[bound], json!({"n": TOTAL, "d": TOTAL}), "{seen}");
    }
    ingest.settled(&locations);
    assert!(
        !compaction_staging(&ingest.view()).is_empty(),
        "the staged copies stay for readers until compact.retention.ms"
    );
    ingest.spark_reads_every_row_once();
    // Late records into a compacted hour land in its directory, where the partition points
    // again: Spark sees them.
    let servers = ingest.cluster.bootstrap_servers();
    for p in 0..PARTITIONS {
        produce_timed_from(&servers, &ingest.topic, p, 30, (HOUR_BASE_MS, 1000), |n| {
            event(p, n as u64)
        });
    }
    ingest_to_end(&ingest.pairs);
    let late = TOTAL + 30 * i64::from(PARTITIONS);
    let rows = spark_query(&uris(), &ingest.count_sql());
    assert_eq!(rows, vec![json!({"n": late, "d": late})]);
}

#[test]
fn location_swap_killed_at_either_switch_is_finished_by_the_next_run() {
    for point in ["compact.after_switch", "compact.before_switch_back"] {
        let ingest = HiveIngest::new("location");
        let locations = ingest.locations();
        let out = compact_command(&ingest.pairs, &[], &[("STREAMX_FAULT", point)])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: the run was aborted");
        let away = ingest
            .locations()
            .iter()
            .filter(|(_, l)| l.contains("_streamx/compaction-staging"))
            .count();
        // compact.parallelism=2: the other directory may have switched too.
        assert!(away >= 1, "{point}: a partition left on its staged outputs");
        let out = compact_command(&ingest.pairs, &[], &[]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = String::from_utf8_lossy(&out.stdout);
        assert!(summary.contains("of an earlier run"), "{point}: {summary}");
        ingest.settled(&locations);
        if point == "compact.before_switch_back" {
            ingest.spark_reads_every_row_once();
        }
    }
}

/// A kill before the partition switched back home, late records committed home, then a run
/// without the Hive settings: that run keeps the staged directory the partition points at (and
/// leaves the directory alone, failing with the keys to set); the next run with them puts the
/// partition home, and Spark through the metastore reads every row once, late ones included.
#[test]
fn a_hive_less_run_after_a_failed_switch_back_keeps_what_the_partition_needs() {
    let ingest = HiveIngest::new("location");
    let locations = ingest.locations();
    // One directory at a time: the kill leaves exactly one swap, complete but for its switch.
    let mut pairs = ingest.pairs.clone();
    pairs.push(("compact.parallelism".into(), "1".into()));
    let out = compact_command(
        &pairs,
        &[],
        &[("STREAMX_FAULT", "compact.before_switch_back")],
    )
    .output()
    .unwrap();
    assert!(!out.status.success(), "the run was aborted");
    let away: Vec<String> = ingest
        .locations()
        .into_iter()
        .filter(|(_, l)| l.contains("_streamx/compaction-staging"))
        .map(|(_, l)| l)
        .collect();
    assert!(!away.is_empty(), "a partition left on its staged outputs");
    // Late records into the compacted hours land in their home directories.
    let servers = ingest.cluster.bootstrap_servers();
    for p in 0..PARTITIONS {
        produce_timed_from(&servers, &ingest.topic, p, 30, (HOUR_BASE_MS, 1000), |n| {
            event(p, n as u64)
        });
    }
    ingest_to_end(&ingest.pairs);
    let hive_less: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !k.starts_with("hive.") && k != "compact.hive.swap")
        .cloned()
        .collect();
    let out = compact_command(&hive_less, &[], &[]).output().unwrap();
    let staging = ingest.out.path().join("topics/_streamx/compaction-staging");
    for location in &away {
        let rel = location
            .split("_streamx/compaction-staging/")
            .nth(1)
            .unwrap();
        let dir = staging.join(rel);
        let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert!(
            files > 0,
            "{location}: the partition's staged directory was kept"
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the Hive-less run says it could not finish: {stderr}"
    );
    assert!(stderr.contains("hive.integration"), "{stderr}");
    let out = compact_command(&pairs, &[], &[]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ingest.locations(), locations, "every partition back home");
    let all = TOTAL + 30 * i64::from(PARTITIONS);
    let rows = spark_query(&uris(), &ingest.count_sql());
    assert_eq!(
        rows,
        vec![json!({"n": all, "d": all})],
        "{:#?}",
        ingest.locations()
    );
}
