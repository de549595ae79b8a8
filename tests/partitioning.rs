//! Partition rules end to end on the embedded broker and the local store: each classic
//! partitioner against the `partition.by` SQL it stands for (same directory layout, file for
//! file), Hive escaping of field values, `transform.sql`, per-record expression failures under
//! `errors.tolerance`, `rotate.interval.ms` in the extractor's time, the memory budget with many
//! open partitions, and `streamx query`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use streamx::ingest::{self, IngestOptions};
use streamx::source::embedded::EmbeddedCluster;

const SCHEMA: &str = "n BIGINT, region STRING, user STRUCT<country: STRING>, ts STRING";
/// 2024-03-30 22:00 UTC: the night Europe/Berlin moves to summer time.
const BASE_MS: i64 = 1_711_836_000_000;
const STEP_MS: i64 = 7 * 60_000;

const REGIONS: [Option<&str>; 6] = [
    Some("eu west"),
    Some("a/b=c"),
    None,
    Some("Ελλάδα"),
    Some("50%"),
    Some(""),
];

fn value(n: i64) -> String {
    let region = match REGIONS[(n % 6) as usize] {
        Some(r) => format!("\"{r}\""),
        None => "null".into(),
    };
    let country = if n % 5 == 0 {
        "null".to_string()
    } else {
        format!("\"{}\"", ["DE", "US", "IN", "x:y"][(n % 4) as usize])
    };
    let ts = chrono::DateTime::from_timestamp_millis(BASE_MS + n * STEP_MS)
        .unwrap()
        .to_rfc3339();
    format!(r#"{{"n":{n},"region":{region},"user":{{"country":{country}}},"ts":"{ts}"}}"#)
}

/// Produces records `0..count` into partition `p`, Kafka timestamp = the record's `ts`.
fn produce_timed(servers: &str, topic: &str, p: i32, count: i64, value: impl Fn(i64) -> String) {
    produce_timed_from(servers, topic, p, count, (BASE_MS, STEP_MS), value);
}

fn base(servers: &str, topic: &str, out: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs = job(
        servers,
        topic,
        out,
        &[("value.schema", SCHEMA), ("flush.size", "100000")],
    );
    pairs.retain(|(k, _)| k != "include.kafka.metadata");
    for (k, v) in extra {
        pairs.retain(|(key, _)| key != k);
        pairs.push((k.to_string(), v.to_string()));
    }
    pairs
}

fn run(
    pairs: &[(String, String)],
) -> Result<streamx::metrics::Snapshot, streamx::ingest::IngestError> {
    let opts = IngestOptions {
        stop_at_end: true,
        ..Default::default()
    };
    ingest::run(config(pairs), opts)
}

/// Relative path of every data file under the topic, with its row count.
fn layout(out: &Path, topic: &str) -> BTreeMap<String, usize> {
    let root = out.join("topics").join(topic);
    data_files(&root, ".parquet")
        .into_iter()
        .map(|f| {
            let rows = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(
                std::fs::read(&f).unwrap(),
            ))
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum();
            (
                f.strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                rows,
            )
        })
        .collect()
}

/// Runs the same input through `preset` and through `sql`; the layouts must be identical.
fn same_layout(
    preset: &[(&str, &str)],
    sql: &[(&str, &str)],
    records: i64,
) -> BTreeMap<String, usize> {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("layout");
    cluster.create_topic(&topic, 2).unwrap();
    for p in 0..2 {
        produce_timed(&servers, &topic, p, records, value);
    }
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut group = 0;
    let mut run_with = |out: &Path, extra: &[(&str, &str)]| {
        group += 1;
        let g = format!("{topic}-{group}");
        let mut e = extra.to_vec();
        e.push(("group.id", &g));
        run(&base(&servers, &topic, out, &e)).expect("ingest");
        layout(out, &topic)
    };
    let with_preset = run_with(a.path(), preset);
    let with_sql = run_with(b.path(), sql);
    assert_eq!(with_preset, with_sql, "preset {preset:?} vs SQL {sql:?}");
    assert_eq!(with_preset.values().sum::<usize>() as i64, 2 * records);
    with_preset
}

#[test]
fn default_preset_equals_its_sql() {
    let l = same_layout(
        &[(
            "partitioner.class",
            "io.confluent.connect.storage.partitioner.DefaultPartitioner",
        )],
        &[("partition.by", "_partition AS partition")],
        300,
    );
    let dirs: BTreeSet<&str> = l.keys().map(|k| k.rsplit_once('/').unwrap().0).collect();
    assert_eq!(dirs, BTreeSet::from(["partition=0", "partition=1"]));
}

#[test]
fn field_preset_equals_its_sql_with_nulls_nesting_and_escaping() {
    let l = same_layout(
        &[
            ("partitioner.class", "FieldPartitioner"),
            ("partition.field.name", "region,user.country"),
        ],
        &[(
            "partition.by",
            "region, \"user\"['country'] AS \"user.country\"",
        )],
        300,
    );
    let dirs: BTreeSet<&str> = l.keys().map(|k| k.rsplit_once('/').unwrap().0).collect();
    for expected in [
        "region=eu west/user.country=DE",
        "region=a%2Fb%3Dc/user.country=US",
        "region=__HIVE_DEFAULT_PARTITION__/user.country=IN",
        "region=Ελλάδα/user.country=x%3Ay",
        "region=50%25/user.country=__HIVE_DEFAULT_PARTITION__",
    ] {
        assert!(dirs.contains(expected), "{expected} missing from {dirs:?}");
    }
}

#[test]
fn time_based_preset_equals_its_sql_in_berlin_across_the_dst_switch() {
    let l = same_layout(
        &[
            ("partitioner.class", "io.confluent.connect.hdfs.partitioner.TimeBasedPartitioner"),
            ("path.format", "'dt'=YYYY-MM-dd/'hr'=HH"),
            ("partition.duration.ms", "3600000"),
            ("timezone", "Europe/Berlin"),
            ("locale", "de_DE"),
            ("timestamp.extractor", "RecordField"),
            ("timestamp.field", "ts"),
        ],
        &[(
            "partition.by",
            // to_timestamp_millis gives a timestamp without zone (UTC): say so before converting.
            "date_format(to_local_time(arrow_cast(arrow_cast(to_timestamp_millis(ts), 'Timestamp(Millisecond, Some(\"UTC\"))'), 'Timestamp(Millisecond, Some(\"Europe/Berlin\"))')), '%Y-%m-%d') AS dt, \
             date_format(to_local_time(arrow_cast(arrow_cast(to_timestamp_millis(ts), 'Timestamp(Millisecond, Some(\"UTC\"))'), 'Timestamp(Millisecond, Some(\"Europe/Berlin\"))')), '%H') AS hr",
        )],
        60,
    );
    let dirs: BTreeSet<&str> = l.keys().map(|k| k.rsplit_once('/').unwrap().0).collect();
    // 22:00 UTC on Mar 30 is 23:00 in Berlin; 01:00 UTC is 03:00 summer time: no hour 02.
    assert!(dirs.contains("dt=2024-03-30/hr=23"), "{dirs:?}");
    assert!(dirs.contains("dt=2024-03-31/hr=01"), "{dirs:?}");
    assert!(!dirs.contains("dt=2024-03-31/hr=02"), "{dirs:?}");
    assert!(dirs.contains("dt=2024-03-31/hr=03"), "{dirs:?}");
}

#[test]
fn fifteen_minute_buckets_in_kolkata_equal_their_sql() {
    same_layout(
        &[
            ("partitioner.class", "TimeBased"),
            ("path.format", "'t'=YYYYMMddHHmm"),
            ("partition.duration.ms", "900000"),
            ("timezone", "Asia/Kolkata"),
        ],
        &[(
            "partition.by",
            "date_format(date_bin(INTERVAL '15 minutes', to_local_time(arrow_cast(_timestamp, 'Timestamp(Millisecond, Some(\"Asia/Kolkata\"))'))), '%Y%m%d%H%M') AS t",
        )],
        60,
    );
}

#[test]
fn hourly_and_daily_presets_equal_the_shipped_sql_files() {
    let root = env!("CARGO_MANIFEST_DIR");
    let hourly = format!("{root}/sql/hourly.sql");
    let l = same_layout(
        &[("partitioner.class", "Hourly")],
        &[("partition.by.file", &hourly)],
        60,
    );
    assert!(
        l.keys()
            .any(|k| k.starts_with("year=2024/month=03/day=31/hour=01/")),
        "{l:?}"
    );
    let daily = format!("{root}/sql/daily.sql");
    let l = same_layout(
        &[("partitioner.class", "DailyPartitioner")],
        &[("partition.by.file", &daily)],
        60,
    );
    let days: BTreeSet<&str> = l.keys().map(|k| k.rsplit_once('/').unwrap().0).collect();
    assert_eq!(
        days,
        BTreeSet::from(["year=2024/month=03/day=30", "year=2024/month=03/day=31"])
    );
}

/// Every offset `0..count` of partition `p` is inside exactly one commit.
fn assert_commits_cover(out: &Path, topic: &str, p: i32, count: i64) -> Vec<(i64, i64)> {
    let store =
        streamx::store::Store::with_url(out.to_str().unwrap(), &BTreeMap::<String, String>::new())
            .unwrap();
    let log = streamx::commit::CommitLog::new(store, "topics", "reader");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let commits = rt.block_on(log.list_commits(topic, p)).unwrap();
    let ranges: Vec<(i64, i64)> = commits
        .iter()
        .map(|c| (c.start_offset, c.end_offset))
        .collect();
    let mut next = 0;
    for (s, e) in &ranges {
        assert_eq!(*s, next, "commits {ranges:?} are not contiguous");
        next = e + 1;
    }
    assert_eq!(next, count, "commits {ranges:?} do not reach the end");
    ranges
}

#[test]
fn transform_sql_filters_and_projects_and_filtered_records_count_as_consumed() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("transform");
    cluster.create_topic(&topic, 1).unwrap();
    produce_timed(&servers, &topic, 0, 500, value);
    let out = tempfile::tempdir().unwrap();
    let snap = run(&base(
        &servers,
        &topic,
        out.path(),
        &[
            ("transform.sql", "SELECT n * 10 AS n10, upper(region) AS region_uc, _offset AS kafka_offset, * FROM records WHERE n % 3 <> 0"),
            ("partition.by", "CAST(n10 % 2 AS INT) AS even"),
            ("flush.size", "120"),
        ],
    ))
    .unwrap();
    let kept = (0..500).filter(|n| n % 3 != 0).count() as u64;
    assert_eq!(snap.records_written, kept);
    assert_commits_cover(out.path(), &topic, 0, 500);
    let mut seen = BTreeSet::new();
    for f in data_files(&out.path().join("topics").join(&topic), ".parquet") {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(
            std::fs::read(&f).unwrap(),
        ))
        .unwrap();
        let names: Vec<String> = reader
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            [
                "n10",
                "region_uc",
                "kafka_offset",
                "n",
                "region",
                "user",
                "ts"
            ],
            "bare metadata columns are not written"
        );
        for b in reader.build().unwrap() {
            let b = b.unwrap();
            let n = b.column_by_name("n").unwrap().as_primitive::<Int64Type>();
            let off = b
                .column_by_name("kafka_offset")
                .unwrap()
                .as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                assert_ne!(n.value(i) % 3, 0);
                assert_eq!(
                    off.value(i),
                    n.value(i),
                    "one record per offset in this topic"
                );
                assert!(seen.insert(n.value(i)));
            }
        }
    }
    assert_eq!(seen.len() as u64, kept);
}

#[test]
fn an_expression_failing_on_one_record_follows_errors_tolerance() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("badts");
    cluster.create_topic(&topic, 1).unwrap();
    let bad = |n: i64| match n {
        7 => r#"{"n":7,"region":"r","ts":"not a time"}"#.to_string(),
        9 => r#"{"n":9,"region":"r"}"#.to_string(),
        n => value(n),
    };
    produce_timed(&servers, &topic, 0, 50, bad);
    let hourly_on_field: [(&str, &str); 3] = [
        ("partitioner.class", "Hourly"),
        ("timestamp.extractor", "RecordField"),
        ("timestamp.field", "ts"),
    ];
    let out = tempfile::tempdir().unwrap();
    let mut pairs = base(&servers, &topic, out.path(), &hourly_on_field);
    pairs.push(("group.id".into(), format!("{topic}-a")));
    let err = run(&pairs).unwrap_err().to_string();
    assert!(
        err.contains(&format!("topic '{topic}' partition 0 offset 7")),
        "{err}"
    );
    assert!(err.contains("not a time"), "DataFusion's message: {err}");
    assert!(data_files(&out.path().join("topics").join(&topic), ".parquet").is_empty());

    let out = tempfile::tempdir().unwrap();
    let mut pairs = base(&servers, &topic, out.path(), &hourly_on_field);
    pairs.push(("group.id".into(), format!("{topic}-b")));
    pairs.push(("errors.tolerance".into(), "all".into()));
    let snap = run(&pairs).unwrap();
    assert_eq!(
        snap.records_skipped, 2,
        "the unparsable and the missing timestamp"
    );
    assert_eq!(snap.records_written, 48);
    assert_commits_cover(out.path(), &topic, 0, 50);
}

#[test]
fn rotate_interval_is_measured_in_the_extractor_time() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("interval");
    cluster.create_topic(&topic, 1).unwrap();
    produce_timed(&servers, &topic, 0, 100, value);
    let out = tempfile::tempdir().unwrap();
    // Field times are 7 minutes apart (the Kafka timestamps too, but the extractor reads the
    // field): a 21-minute interval puts exactly 3 records in each commit.
    run(&base(
        &servers,
        &topic,
        out.path(),
        &[
            ("timestamp.extractor", "RecordField"),
            ("timestamp.field", "ts"),
            ("rotate.interval.ms", "1260000"),
            ("decode.batch.records", "40"),
            // Every commit record is read back below (34 of them; the default keeps 10).
            ("commit.history.keep", "1000"),
        ],
    ))
    .unwrap();
    let ranges = assert_commits_cover(out.path(), &topic, 0, 100);
    for (s, e) in &ranges[..ranges.len() - 1] {
        assert_eq!(e - s + 1, 3, "commit {s}..={e} of {ranges:?}");
    }
}

#[test]
fn many_open_partitions_share_the_memory_budget_and_lose_nothing() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("budget");
    cluster.create_topic(&topic, 2).unwrap();
    produce(&servers, &topic, 2, 0, 6000);
    let out = tempfile::tempdir().unwrap();
    let mut pairs = job(&servers, &topic, out.path(), &[("flush.size", "1000000")]);
    pairs.push(("partition.by".into(), "seq % 400 AS bucket".into()));
    pairs.push(("memory.budget.bytes".into(), "1048576".into()));
    let opts = IngestOptions {
        stop_at_end: true,
        ..Default::default()
    };
    let snap = ingest::run(config(&pairs), opts).unwrap();
    assert!(snap.files_spilled > 0, "{snap}");
    assert_eq!(
        snap.commits, 2,
        "one commit per Kafka partition at the end: {snap}"
    );
    assert_exactly_once(&offsets_written(out.path(), &topic), 2, 6000);
    let dirs: BTreeSet<String> = data_files(&out.path().join("topics").join(&topic), ".parquet")
        .iter()
        .map(|f| {
            f.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(dirs.len(), 400);
}

#[test]
fn query_returns_the_per_hour_counts_that_were_produced() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("query");
    cluster.create_topic(&topic, 2).unwrap();
    for p in 0..2 {
        produce_timed(&servers, &topic, p, 100, value);
    }
    let out = tempfile::tempdir().unwrap();
    let pairs = base(
        &servers,
        &topic,
        out.path(),
        &[("partitioner.class", "Hourly")],
    );
    run(&pairs).unwrap();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for n in 0..100 {
        let t = chrono::DateTime::from_timestamp_millis(BASE_MS + n * STEP_MS).unwrap();
        *expected
            .entry(t.format("%Y-%m-%d %H").to_string())
            .or_default() += 2;
    }
    let sql = format!(
        "SELECT concat(year, '-', month, '-', day, ' ', hour) AS h, count(*) AS c FROM \"{topic}\" GROUP BY 1 ORDER BY 1"
    );
    let output = std::process::Command::new(streamx_bin())
        .arg("query")
        .args(set_args(&pairs))
        .arg(&sql)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut got = BTreeMap::new();
    for line in stdout.lines().filter(|l| l.starts_with("| 2024")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        got.insert(cells[1].to_string(), cells[2].parse::<u64>().unwrap());
    }
    assert_eq!(got, expected, "{stdout}");
}
