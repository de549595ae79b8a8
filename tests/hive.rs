//! Hive integration end to end: `streamx ingest` with `hive.integration=true` against the real
//! Hive 2.3.10 metastore of `scripts/hive-metastore.sh` (started by `scripts/test.sh`), read back
//! through the metastore API and Spark SQL (`scripts/spark_query.py`). Never skipped: without
//! `STREAMX_TEST_HIVE_URIS` / `STREAMX_TEST_PYSPARK_PYTHON` (and `STREAMX_TEST_S3_ENDPOINT` for
//! the S3 test) the tests fail and say how to start the services. Every test uses a database of
//! its own, dropped at the end.
//!
//! - hourly partitions, Spark counts per hour equal what was produced;
//! - a metastore stopped during ingest (a private one, restarted with its state): files keep
//!   being committed, the partitions are registered once it is back, nothing is lost;
//! - SIGKILL of the real binary during ingest (and an abort between commit and registration),
//!   restart: the metastore lists every directory with files, once;
//! - a table on `s3://` (moto) is registered at `s3a://`;
//! - schema growth between two runs: the table gains the column, Spark reads it as null in the
//!   old partitions;
//! - Avro output written with Hive off gets its table (schema from an Avro file header) and
//!   partitions at the next start, with nothing new to consume.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::hive::{client, client_for, spark_query, uris, PrivateMetastore, TestDb};
use common::*;
use serde_json::json;
use streamx::hive::config::table_name_for_topic;
use streamx::ingest::{self, IngestOptions};
use streamx::source::embedded::EmbeddedCluster;

/// 2024-03-30 22:00 UTC.
const BASE_MS: i64 = 1_711_836_000_000;
/// 7 minutes: 60 records span 7 hours.
const STEP_MS: i64 = 7 * 60_000;
const HOUR_MS: i64 = 3_600_000;

/// A JSON -> Parquet job with Hive registration into `db` on the metastore at `uris`.
fn hive_job(
    servers: &str,
    topic: &str,
    out: &Path,
    (uris, db): (&str, &str),
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut pairs = job(
        servers,
        topic,
        out,
        &[
            ("flush.size", "1000"),
            ("hive.integration", "true"),
            ("hive.metastore.uris", uris),
            ("hive.database", db),
            ("hive.retry.backoff.max.ms", "500"),
        ],
    );
    for (k, v) in extra {
        pairs.retain(|(key, _)| key != k);
        pairs.push((k.to_string(), v.to_string()));
    }
    pairs
}

/// Logs, a database of the test's own, an embedded broker and a fresh topic on it.
fn setup(db: &str, prefix: &str, partitions: i32) -> (TestDb, EmbeddedCluster, String, String) {
    init_logs();
    let db = TestDb::new(db);
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique(prefix);
    cluster.create_topic(&topic, partitions).unwrap();
    (db, cluster, servers, topic)
}

fn run_to_end(pairs: &[(String, String)]) -> streamx::metrics::Snapshot {
    let opts = IngestOptions {
        stop_at_end: true,
        ..Default::default()
    };
    ingest::run(config(pairs), opts).expect("ingest")
}

/// Directories (relative to the topic) that hold data files.
fn store_dirs(out: &Path, topic: &str) -> BTreeSet<String> {
    store_dirs_of(out, topic, ".parquet")
}

/// Directories (relative to the topic) that hold data files ending in `ext`.
fn store_dirs_of(out: &Path, topic: &str, ext: &str) -> BTreeSet<String> {
    let root = out.join("topics").join(topic);
    data_files(&root, ext)
        .iter()
        .map(|f| {
            let rel = f.parent().unwrap().strip_prefix(&root).unwrap();
            rel.to_string_lossy().into_owned()
        })
        .collect()
}

/// The table's partition names; `None` while the table is missing or the metastore is down.
/// Panics on a name listed twice.
fn partition_names(uris: &str, db: &str, table: &str) -> Option<BTreeSet<String>> {
    let names = client_for(uris).get_partition_names(db, table, -1).ok()?;
    let set: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(
        set.len(),
        names.len(),
        "a partition listed twice: {names:?}"
    );
    Some(set)
}

/// Polls until the table's partitions are exactly `dirs`.
fn wait_for_partitions(uris: &str, db: &str, table: &str, dirs: &BTreeSet<String>) {
    let mut last = None;
    let end = Instant::now() + Duration::from_secs(90);
    while Instant::now() < end {
        last = partition_names(uris, db, table);
        if last.as_ref() == Some(dirs) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "partitions of {db}.{table} never matched the store:\n metastore {last:?}\n store {dirs:?}"
    );
}

fn hour_of(ms: i64) -> [String; 4] {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
    [
        t.format("%Y").to_string(),
        t.format("%m").to_string(),
        t.format("%d").to_string(),
        t.format("%H").to_string(),
    ]
}

#[test]
fn hourly_partitions_are_registered_and_spark_counts_match() {
    hourly_counts("parquet", ".parquet");
}

#[test]
fn hourly_avro_partitions_are_registered_and_spark_counts_match() {
    hourly_counts("avro", ".avro");
}

fn hourly_counts(format: &str, ext: &str) {
    let (db, _cluster, servers, topic) = setup("hourly", "Hive.Hourly", 2);
    let mut expected: BTreeMap<[String; 4], u64> = BTreeMap::new();
    for p in 0..2 {
        let base = BASE_MS + i64::from(p) * 3 * 60_000;
        produce_timed_from(&servers, &topic, p, 60, (base, STEP_MS), |n| {
            format!(r#"{{"n":{n},"p":{p}}}"#)
        });
        for n in 0..60 {
            *expected.entry(hour_of(base + n * STEP_MS)).or_default() += 1;
        }
    }
    let out = tempfile::tempdir().unwrap();
    let pairs = hive_job(
        &servers,
        &topic,
        out.path(),
        (&uris(), &db.name),
        &[
            ("partitioner.class", "Hourly"),
            ("value.schema", "n BIGINT, p INT"),
            ("include.kafka.metadata", "false"),
            ("format.class", format),
        ],
    );
    run_to_end(&pairs);
    let table = table_name_for_topic(&topic);
    let dirs = store_dirs_of(out.path(), &topic, ext);
    assert_eq!(dirs.len(), expected.len(), "{dirs:?}");
    wait_for_partitions(&uris(), &db.name, &table, &dirs);

    let rows = spark_query(
        &uris(),
        &format!(
            "SELECT year, month, day, hour, count(*) AS n FROM {}.{table} \
             GROUP BY year, month, day, hour ORDER BY year, month, day, hour",
            db.name
        ),
    );
    let want: Vec<serde_json::Value> = expected
        .iter()
        .map(|([y, m, d, h], n)| json!({"year": y, "month": m, "day": d, "hour": h, "n": n}))
        .collect();
    assert_eq!(rows, want);
    if format == "parquet" {
        // Spark reads StreamX's Parquet directly too, without options (partition discovery).
        let root = out.path().join("topics").join(&topic);
        let rows = spark_query(
            &uris(),
            &format!(
                "SELECT count(*) AS n, sum(n) AS s FROM parquet.`{}`",
                root.display()
            ),
        );
        assert_eq!(rows, vec![json!({"n": 120, "s": 2 * (0..60).sum::<i64>()})]);
    }
}

#[test]
fn partitions_committed_while_the_metastore_is_down_are_registered_when_it_is_back() {
    init_logs();
    let ms = PrivateMetastore::new();
    ms.run("up");
    let ms_uris = ms.uris();
    let db = TestDb::on("down", &ms_uris);
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("hive-down");
    cluster.create_topic(&topic, 2).unwrap();
    let out = tempfile::tempdir().unwrap();
    let pairs = hive_job(
        &servers,
        &topic,
        out.path(),
        (&ms_uris, &db.name),
        &[
            ("flush.size", "50"),
            ("partition.by", "seq / 100 AS bucket"),
        ],
    );
    let shutdown = Arc::new(AtomicBool::new(false));
    let opts = IngestOptions {
        shutdown: shutdown.clone(),
        ..Default::default()
    };
    let cfg = config(&pairs);
    let ingest = std::thread::spawn(move || ingest::run(cfg, opts));
    let table = table_name_for_topic(&topic);

    // Metastore up: buckets 0..3 are registered as they are written.
    produce(&servers, &topic, 2, 0, 300);
    let first: BTreeSet<String> = (0..3).map(|b| format!("bucket={b}")).collect();
    wait_until("the first files", Duration::from_secs(60), || {
        store_dirs(out.path(), &topic) == first
    });
    wait_for_partitions(&ms_uris, &db.name, &table, &first);

    // Metastore down: writing goes on, buckets 3..6 are committed.
    ms.run("down");
    produce(&servers, &topic, 2, 300, 300);
    let all: BTreeSet<String> = (0..6).map(|b| format!("bucket={b}")).collect();
    wait_until(
        "files committed while the metastore is down",
        Duration::from_secs(60),
        || {
            offsets_written(out.path(), &topic).len() == 1200
                && store_dirs(out.path(), &topic) == all
        },
    );
    assert!(!ingest.is_finished(), "ingest must keep running");

    // Back (same state, as a restarted metastore): the pending partitions arrive.
    ms.run_with("up", true);
    wait_for_partitions(&ms_uris, &db.name, &table, &all);
    shutdown.store(true, Ordering::Relaxed);
    ingest.join().unwrap().expect("ingest");
    assert_exactly_once(&offsets_written(out.path(), &topic), 2, 600);
}

fn spawn(args: &[String], fault: Option<&str>) -> Child {
    let mut cmd = Command::new(streamx_bin());
    cmd.arg("ingest")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env("STREAMX_LOG", "warn");
    if let Some(f) = fault {
        cmd.env("STREAMX_FAULT", f);
    }
    cmd.spawn().expect("spawn streamx")
}

#[test]
fn after_sigkill_every_partition_with_files_is_registered_once() {
    let partitions = 2;
    let (db, _cluster, servers, topic) = setup("kill", "hive-kill", partitions);
    let out = tempfile::tempdir().unwrap();
    let pairs = hive_job(
        &servers,
        &topic,
        out.path(),
        (&uris(), &db.name),
        &[
            ("flush.size", "300"),
            ("partition.by", "seq / 500 AS bucket"),
            ("consumer.session.timeout.ms", "3000"),
            ("consumer.heartbeat.interval.ms", "300"),
        ],
    );
    let args = set_args(&pairs);
    let mut per_partition = 0;
    // SIGKILL while it writes (and registers).
    for round in 0..3 {
        produce(&servers, &topic, partitions, per_partition, 1500);
        per_partition += 1500;
        let before = data_files(&out.path().join("topics").join(&topic), ".parquet").len();
        let mut child = spawn(&args, None);
        wait_until("the ingest to commit", Duration::from_secs(60), || {
            data_files(&out.path().join("topics").join(&topic), ".parquet").len() > before
        });
        // Different moments: right after the first commit, a little later, later still.
        let end = Instant::now() + Duration::from_millis(150 * round);
        while Instant::now() < end && child.try_wait().unwrap().is_none() {
            std::thread::yield_now();
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // Abort between a commit and its registration (and its publishing).
    produce(&servers, &topic, partitions, per_partition, 1000);
    per_partition += 1000;
    let mut child = spawn(&args, Some("commit.after_commit_object@2"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the fault never fired");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "the fault should abort the process");

    // Restart to the end: catch-up registers what the killed runs left.
    run_binary_to_end(&args, "restart");
    assert_exactly_once(
        &offsets_written(out.path(), &topic),
        partitions,
        per_partition as i64,
    );
    let dirs = store_dirs(out.path(), &topic);
    assert_eq!(dirs.len(), (per_partition as usize).div_ceil(500));
    let table = table_name_for_topic(&topic);
    assert_eq!(
        partition_names(&uris(), &db.name, &table).as_ref(),
        Some(&dirs),
        "the final run returns after registering"
    );
}

#[test]
fn table_on_s3_is_registered_at_its_s3a_location() {
    let endpoint = service_env("STREAMX_TEST_S3_ENDPOINT");
    let (bucket, opts) = s3_bucket(&endpoint, "hive");
    let (db, _cluster, servers, topic) = setup("s3", "hive-s3", 1);
    produce(&servers, &topic, 1, 0, 300);
    let url = format!("s3://{bucket}/run");
    let mut pairs = hive_job(
        &servers,
        &topic,
        Path::new("unused"),
        (&uris(), &db.name),
        &[("store.url", &url), ("partition.by", "seq / 100 AS bucket")],
    );
    for (k, v) in &opts {
        pairs.push((format!("store.{k}"), v.clone()));
    }
    run_to_end(&pairs);
    let table = table_name_for_topic(&topic);
    let got = client().get_table(&db.name, &table).expect("table");
    assert_eq!(
        got.location(),
        Some(format!("s3a://{bucket}/run/topics/{topic}").as_str())
    );
    let want: BTreeSet<String> = (0..3).map(|b| format!("bucket={b}")).collect();
    assert_eq!(
        partition_names(&uris(), &db.name, &table).as_ref(),
        Some(&want)
    );
    let store_opts: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    delete_all(&streamx::store::Store::with_url(&url, &store_opts).unwrap());
    http(&endpoint, "DELETE", &format!("/{bucket}"));
}

#[test]
fn a_column_added_between_runs_evolves_the_table_and_reads_null_in_old_partitions() {
    // Two ingest runs of one topic into the table named by hive.table.name: the first with
    // `value.schema` n BIGINT, the second (later records, five hours on) with one more optional
    // column. The second run's first commit alters the table; Spark then reads the old hours'
    // files (which lack the column) with `extra` null.
    let (db, _cluster, servers, topic) = setup("grow", "hive-grow", 1);
    let out = tempfile::tempdir().unwrap();
    let run = |schema: &str| {
        run_to_end(&hive_job(
            &servers,
            &topic,
            out.path(),
            (&uris(), &db.name),
            &[
                ("partitioner.class", "Hourly"),
                ("value.schema", schema),
                ("include.kafka.metadata", "false"),
                ("hive.table.name", "grown"),
            ],
        ))
    };
    produce_timed_from(&servers, &topic, 0, 20, (BASE_MS, STEP_MS), |n| {
        format!(r#"{{"n":{n}}}"#)
    });
    run("n BIGINT");
    produce_timed_from(
        &servers,
        &topic,
        0,
        20,
        (BASE_MS + 5 * HOUR_MS, STEP_MS),
        |n| format!(r#"{{"n":{n},"extra":"x{n}"}}"#),
    );
    run("n BIGINT, extra STRING");

    let t = client().get_table(&db.name, "grown").expect("table");
    let cols: Vec<(&str, &str)> = t
        .columns()
        .iter()
        .map(|c| (c.name.as_str(), c.type_name.as_str()))
        .collect();
    assert_eq!(cols, [("n", "bigint"), ("extra", "string")]);
    wait_for_partitions(&uris(), &db.name, "grown", &store_dirs(out.path(), &topic));

    let rows = spark_query(
        &uris(),
        &format!(
            "SELECT day, hour, count(*) AS n, count(extra) AS extras FROM {}.grown \
             GROUP BY day, hour ORDER BY day, hour",
            db.name
        ),
    );
    let mut want: BTreeMap<[String; 4], (u64, u64)> = BTreeMap::new();
    for n in 0..20 {
        want.entry(hour_of(BASE_MS + n * STEP_MS)).or_default().0 += 1;
        let e = want
            .entry(hour_of(BASE_MS + 5 * HOUR_MS + n * STEP_MS))
            .or_default();
        e.0 += 1;
        e.1 += 1;
    }
    let want: Vec<serde_json::Value> = want
        .iter()
        .map(|([_, _, d, h], (n, x))| json!({"day": d, "hour": h, "n": n, "extras": x}))
        .collect();
    assert_eq!(rows, want);
}

#[test]
fn avro_output_written_without_hive_gets_its_table_from_a_file_header_at_the_next_start() {
    // The first run writes Avro with Hive off; the second starts with Hive on and has nothing
    // new to consume, so no commit reports a schema: catch-up must create the table from the
    // writer schema in an Avro file's header, then add every partition.
    let (db, _cluster, servers, topic) = setup("avrocatch", "Hive.AvroCatchUp", 2);
    for p in 0..2 {
        let base = BASE_MS + i64::from(p) * 3 * 60_000;
        produce_timed_from(&servers, &topic, p, 60, (base, STEP_MS), |n| {
            format!(r#"{{"n":{n},"p":{p}}}"#)
        });
    }
    let out = tempfile::tempdir().unwrap();
    let pairs = hive_job(
        &servers,
        &topic,
        out.path(),
        (&uris(), &db.name),
        &[
            ("partitioner.class", "Hourly"),
            ("value.schema", "n BIGINT, p INT"),
            ("include.kafka.metadata", "false"),
            ("format.class", "avro"),
        ],
    );
    let hive_off: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !k.starts_with("hive."))
        .cloned()
        .collect();
    assert_eq!(run_to_end(&hive_off).records_written, 120);
    let table = table_name_for_topic(&topic);
    let dirs = store_dirs_of(out.path(), &topic, ".avro");
    assert!(dirs.len() > 1, "{dirs:?}");
    assert_eq!(
        partition_names(&uris(), &db.name, &table),
        None,
        "no table yet"
    );

    assert_eq!(run_to_end(&pairs).records_written, 0);
    wait_for_partitions(&uris(), &db.name, &table, &dirs);
    let t = client().get_table(&db.name, &table).expect("table");
    let cols: Vec<(&str, &str)> = t
        .columns()
        .iter()
        .map(|c| (c.name.as_str(), c.type_name.as_str()))
        .collect();
    assert_eq!(cols, [("n", "bigint"), ("p", "int")]);
    let rows = spark_query(
        &uris(),
        &format!(
            "SELECT count(*) AS n, sum(n) AS s, sum(p) AS ps FROM {}.{table}",
            db.name
        ),
    );
    assert_eq!(
        rows,
        vec![json!({"n": 120, "s": 2 * (0..60).sum::<i64>(), "ps": 60})]
    );
}

#[test]
fn inferred_json_versions_evolve_the_table_and_spark_reads_every_version() {
    // No `value.schema`: two runs (a restart between) of one topic whose later records fill fields
    // the first ones had only as null / [] and bring new fields, nested ones too. Every version's
    // files stay readable under the evolved table: Spark reads the old files' missing columns as
    // null. The metastore (default settings) refuses to change `user`'s struct type, so the new
    // `user.name` is in the files only and the table keeps `struct<id:bigint>`.
    let (db, _cluster, servers, topic) = setup("infer", "hive-infer", 2);
    let out = tempfile::tempdir().unwrap();
    let mut pairs = hive_job(
        &servers,
        &topic,
        out.path(),
        (&uris(), &db.name),
        &[
            ("partitioner.class", "Hourly"),
            ("include.kafka.metadata", "false"),
            ("hive.table.name", "inferred"),
        ],
    );
    pairs.retain(|(k, _)| k != "value.schema");
    produce_timed_from(&servers, &topic, 0, 20, (BASE_MS, STEP_MS), |n| {
        format!(r#"{{"n":{n},"tags":[],"ref":null}}"#)
    });
    produce_timed_from(&servers, &topic, 1, 20, (BASE_MS, STEP_MS), |n| {
        format!(r#"{{"n":{n},"user":{{"id":{n}}}}}"#)
    });
    run_to_end(&pairs);
    let later = (BASE_MS + 5 * HOUR_MS, STEP_MS);
    produce_timed_from(&servers, &topic, 0, 20, later, |n| {
        format!(
            r#"{{"n":{n},"tags":["t{n}"],"ref":{{"url":"/u{n}"}},"user":{{"id":{n},"name":"u{n}"}},"extra":"x"}}"#
        )
    });
    run_to_end(&pairs);

    let t = client().get_table(&db.name, "inferred").expect("table");
    let cols: BTreeMap<&str, &str> = t
        .columns()
        .iter()
        .map(|c| (c.name.as_str(), c.type_name.as_str()))
        .collect();
    let want = BTreeMap::from([
        ("_rescued_data", "string"),
        ("extra", "string"),
        ("n", "bigint"),
        ("ref", "struct<url:string>"),
        ("tags", "array<string>"),
        ("user", "struct<id:bigint>"),
    ]);
    assert_eq!(cols, want);
    wait_for_partitions(
        &uris(),
        &db.name,
        "inferred",
        &store_dirs(out.path(), &topic),
    );
    let rows = spark_query(
        &uris(),
        &format!(
            "SELECT count(*) AS rows, sum(n) AS n, count(extra) AS extra, count(ref.url) AS ref, \
             count(tags) AS tags, count(user.id) AS user_id, \
             count(_rescued_data) AS rescued FROM {}.inferred",
            db.name
        ),
    );
    let sum: i64 = 3 * (0..20).sum::<i64>();
    assert_eq!(
        rows,
        [
            json!({"rows": 60, "n": sum, "extra": 20, "ref": 20, "tags": 20, "user_id": 40,
                "rescued": 0})
        ]
    );
}
