//! Integration tests of `streamx compact` on real stores (local disk, S3 in moto, Azure in
//! Azurite): hourly ingest with small files, compaction, then every (partition, offset) read back
//! exactly once from the files a reader lists, the planned file counts, a second run planning
//! nothing, `streamx query` counting every row once, and ingest recovering and appending late
//! records after compaction. Every test makes its own topic and store location.

mod common;

use std::collections::BTreeMap;

use common::compact::*;
use common::crash::StoreView;
use common::*;
use streamx::source::embedded::EmbeddedCluster;

const PARTITIONS: i32 = 3;
/// Three hours of records per partition.
const PER_PARTITION: i64 = 300;

/// Ingest, compact, check, then ingest late records into compacted directories and check again.
fn round_trip(url: &str, store_options: &[(&str, String)]) {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("compact");
    cluster.create_topic(&topic, PARTITIONS).unwrap();
    produce_hourly(&servers, &topic, PARTITIONS, PER_PARTITION);
    let pairs = hourly_job(&servers, &topic, url, store_options, &[]);
    ingest_to_end(&pairs);
    let options: BTreeMap<String, String> = store_options
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let view = StoreView::new(url, &options);
    assert_exactly_once(&view.offsets(&topic), PARTITIONS, PER_PARTITION);
    let before = files_per_dir(&view, &topic);

    let plan = compact(&pairs, true);
    assert!(!plan.plans.is_empty(), "small files were planned: {plan:?}");
    assert_eq!(
        files_per_dir(&view, &topic),
        before,
        "a dry run changes nothing"
    );
    let report = compact(&pairs, false);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.dirs_done, plan.plans.len());
    let planned_in: usize = plan.plans.iter().map(|p| p.inputs.len()).sum();
    let planned_out: usize = plan.plans.iter().map(|p| p.outputs.len()).sum();
    assert_eq!(report.files_in, planned_in);
    assert!(
        (1..=planned_out).contains(&report.files_out),
        "{} outputs, {planned_out} planned",
        report.files_out
    );
    assert_eq!(report.rows, report_rows(&view, &topic, &plan));
    let after = files_per_dir(&view, &topic);
    assert_eq!(
        after.values().sum::<usize>(),
        before.values().sum::<usize>() - report.files_in + report.files_out
    );
    assert_eq!(after.len(), before.len(), "every directory still has files");
    assert_exactly_once(&view.offsets(&topic), PARTITIONS, PER_PARTITION);
    assert!(compaction_staging(&view).is_empty());
    let target = 16384;
    for dir in &report.plans {
        let outs: Vec<String> = view
            .data_files(&topic)
            .into_iter()
            .filter(|f| f.contains(&dir.dir) && f.contains("+compacted+"))
            .collect();
        let small = outs
            .iter()
            .filter(|f| (view.get(f).len() as u64) * 4 < target * 3)
            .count();
        assert!(small <= 1, "{}: at most one remainder: {outs:?}", dir.dir);
    }

    if !url.contains("://") {
        let total = i64::from(PARTITIONS) * PER_PARTITION;
        assert_eq!(
            pyarrow_rows(&format!("{url}/topics/{topic}")),
            (total, total),
            "pyarrow reads every row once"
        );
    }

    let second = compact(&pairs, true);
    assert!(second.plans.is_empty(), "fixed point: {:?}", second.plans);

    let total = i64::from(PARTITIONS) * PER_PARTITION;
    let counted = streamx::query::run_to_string(
        &config(&pairs),
        &format!("SELECT count(*) AS n, count(DISTINCT _partition * 100000 + _offset) AS d FROM \"{topic}\""),
    )
    .unwrap();
    assert!(
        counted.contains(&format!("| {total} | {total} |")),
        "query sees every row once: {counted}"
    );

    // Late records (timestamps in the first, compacted hour) and a restarted ingest.
    for p in 0..PARTITIONS {
        produce_timed_from(&servers, &topic, p, 30, (HOUR_BASE_MS, 1000), |n| {
            event(p, n as u64)
        });
    }
    ingest_to_end(&pairs);
    assert_exactly_once(&view.offsets(&topic), PARTITIONS, PER_PARTITION + 30);
    let third = compact(&pairs, false);
    assert!(third.problems.is_empty(), "{:?}", third.problems);
    assert_exactly_once(&view.offsets(&topic), PARTITIONS, PER_PARTITION + 30);
    assert!(compaction_staging(&view).is_empty());
}

/// (rows, distinct (partition, offset)) of a topic directory read as a pyarrow dataset (Hive
/// partitioning; `_`-prefixed directories skipped, as pyarrow does by default).
fn pyarrow_rows(dir: &str) -> (i64, i64) {
    let script = "import sys, pyarrow.dataset as ds\n\
        t = ds.dataset(sys.argv[1], format='parquet', partitioning='hive').to_table(columns=['_partition', '_offset'])\n\
        keys = set(zip(t['_partition'].to_pylist(), t['_offset'].to_pylist()))\n\
        print(t.num_rows, len(keys))";
    let out = std::process::Command::new(service_env("STREAMX_TEST_PYTHON"))
        .args(["-c", script, dir])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "pyarrow: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: Vec<i64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (n[0], n[1])
}

/// Rows in the compacted files of the planned directories, read back from the store.
fn report_rows(view: &StoreView, topic: &str, plan: &streamx::compact::Report) -> u64 {
    let mut rows = 0;
    for f in view.data_files(topic) {
        if f.contains("+compacted+")
            && plan
                .plans
                .iter()
                .any(|p| f.contains(&format!("/{}/", p.dir)))
        {
            let mut seen = BTreeMap::new();
            count_offsets(view.get(&f), &mut seen);
            rows += seen.len() as u64;
        }
    }
    rows
}

#[test]
fn local_store_compacts_exactly_once() {
    let out = tempfile::tempdir().unwrap();
    round_trip(&out.path().to_string_lossy(), &[]);
}

#[test]
fn s3_moto_compacts_exactly_once() {
    let endpoint = service_env("STREAMX_TEST_S3_ENDPOINT");
    let (bucket, opts) = s3_bucket(&endpoint, "cmp");
    let url = format!("s3://{bucket}/run");
    let store_opts: Vec<(&str, String)> = opts.clone();
    let options: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let _bucket = common::crash::TempBucket {
        endpoint: endpoint.clone(),
        name: bucket.clone(),
        store: streamx::store::Store::with_url(&format!("s3://{bucket}"), &options).unwrap(),
    };
    round_trip(&url, &store_opts);
}

#[test]
fn azure_azurite_compacts_exactly_once() {
    let container = container_name("cmp");
    azure_container("create", &container);
    struct ContainerGuard(String);
    impl Drop for ContainerGuard {
        fn drop(&mut self) {
            azure_container("delete", &self.0);
        }
    }
    let _cleanup = ContainerGuard(container.clone());
    round_trip(
        &format!("az://{container}/run"),
        &[("use_emulator", "true".to_string())],
    );
}

/// Every row of every data file of a topic as a canonical string, sorted, read with readers
/// independent of StreamX: serde_json for JSON lines (gzip through flate2), the lines of CSV
/// (each file's header checked and left out), apache-avro for Avro.
fn rows_of(view: &StoreView, topic: &str, ext: &str) -> Vec<String> {
    let mut rows = Vec::new();
    let files: Vec<String> = view
        .list(&format!("topics/{topic}"))
        .into_iter()
        .filter(|f| f.ends_with(&format!(".{ext}")))
        .collect();
    let mut header = None;
    for f in files {
        let data = view.get(&f);
        match ext {
            "avro" => {
                for v in apache_avro::Reader::new(&data[..]).unwrap() {
                    rows.push(format!("{:?}", v.unwrap()));
                }
            }
            "json" | "json.gz" => {
                let mut text = String::new();
                if ext == "json.gz" {
                    use std::io::Read;
                    flate2::read::MultiGzDecoder::new(&data[..])
                        .read_to_string(&mut text)
                        .unwrap();
                } else {
                    text = String::from_utf8(data.to_vec()).unwrap();
                }
                for line in text.lines() {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    rows.push(v.to_string());
                }
            }
            "csv" => {
                let text = String::from_utf8(data.to_vec()).unwrap();
                let mut lines = text.lines();
                let h = lines.next().unwrap().to_string();
                assert_eq!(
                    header.get_or_insert(h.clone()),
                    &h,
                    "{f}: one header, the same"
                );
                assert!(
                    !lines.clone().any(|l| l == h),
                    "{f}: a header inside the data"
                );
                rows.extend(lines.map(str::to_string));
            }
            other => panic!("no reader for {other}"),
        }
    }
    rows.sort();
    rows
}

#[test]
fn every_text_format_and_avro_round_trips_field_by_field() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("cfmt");
    cluster.create_topic(&topic, 2).unwrap();
    produce_hourly(&servers, &topic, 2, 200);
    for (format, ext, extra) in [
        ("json", "json", None),
        ("json", "json.gz", Some(("compression.type", "gzip"))),
        // CSV cells hold scalars only: no metadata columns (_headers is a list).
        ("csv", "csv", Some(("include.kafka.metadata", "false"))),
        ("avro", "avro", None),
        ("avro", "avro", Some(("avro.codec", "deflate"))),
    ] {
        let out = tempfile::tempdir().unwrap();
        let url = out.path().to_string_lossy().to_string();
        let name = unique("job");
        let mut settings = vec![("format.class", format), ("name", name.as_str())];
        settings.extend(extra);
        let pairs = hourly_job(&servers, &topic, &url, &[], &settings);
        ingest_to_end(&pairs);
        let view = StoreView::local(out.path());
        let before = rows_of(&view, &topic, ext);
        assert_eq!(before.len(), 400, "{format}/{ext}");
        let plan = compact(&pairs, true);
        let planned: usize = plan.plans.iter().map(|p| p.outputs.len()).sum();
        let report = compact(&pairs, false);
        assert!(report.problems.is_empty(), "{ext}: {:?}", report.problems);
        assert!(report.dirs_done > 0, "{ext}: something was compacted");
        if format == "json" {
            // Pure concatenation: real sizes are the planned ones.
            assert_eq!(report.files_out, planned, "{ext}: the planned outputs");
        } else {
            // CSV and Avro keep one header per output: outputs are smaller than planned.
            assert!((1..=planned).contains(&report.files_out), "{ext}");
        }
        assert_eq!(report.rows, rows_in_outputs(&view, &topic, ext), "{ext}");
        assert_eq!(
            rows_of(&view, &topic, ext),
            before,
            "{ext}: the same rows, field by field"
        );
        assert!(compact(&pairs, true).plans.is_empty(), "{ext}: fixed point");
    }
}

/// Rows of the compaction outputs only.
fn rows_in_outputs(view: &StoreView, topic: &str, ext: &str) -> u64 {
    let all = rows_of(view, topic, ext).len() as u64;
    let originals: u64 = view
        .list(&format!("topics/{topic}"))
        .into_iter()
        .filter(|f| f.ends_with(&format!(".{ext}")) && !f.contains("+compacted+"))
        .map(|f| match ext {
            "avro" => apache_avro::Reader::new(&view.get(&f)[..]).unwrap().count() as u64,
            "json.gz" => {
                use std::io::Read;
                let mut t = String::new();
                flate2::read::MultiGzDecoder::new(&view.get(&f)[..])
                    .read_to_string(&mut t)
                    .unwrap();
                t.lines().count() as u64
            }
            "csv" => {
                String::from_utf8(view.get(&f).to_vec())
                    .unwrap()
                    .lines()
                    .count() as u64
                    - 1
            }
            _ => String::from_utf8(view.get(&f).to_vec())
                .unwrap()
                .lines()
                .count() as u64,
        })
        .sum();
    all - originals
}

#[test]
fn mixed_schema_versions_merge_under_the_newest() {
    init_logs();
    let (_cluster, topic, out) = two_schema_versions_compacted("cmix", "parquet");
    let view = StoreView::local(out.path());
    let mut offsets = Vec::new();
    for f in view.data_files(&topic) {
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(view.get(&f))
                .unwrap()
                .build()
                .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let o = batch.column_by_name("_offset").unwrap();
            let o = o
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap();
            offsets.extend(o.values().iter().copied());
        }
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (0..120).collect::<Vec<i64>>(), "every offset once");
    let (mut with_extra, mut nulls) = (0, 0);
    for f in view
        .data_files(&topic)
        .iter()
        .filter(|f| f.contains("+compacted+"))
    {
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(view.get(f))
                .unwrap()
                .build()
                .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let extra = batch
                .column_by_name("extra")
                .expect("the newest schema's column");
            nulls += extra.null_count();
            with_extra += extra.len() - extra.null_count();
        }
    }
    // Pinned files (the newest commit) stay out; every compacted old row reads null.
    assert!(
        with_extra > 0 && nulls > 0,
        "{with_extra} with, {nulls} null"
    );
}

#[test]
fn the_command_line_plans_filters_and_summarises() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("ccli");
    cluster.create_topic(&topic, 2).unwrap();
    produce_hourly(&servers, &topic, 2, 200);
    let out = tempfile::tempdir().unwrap();
    let pairs = hourly_job(&servers, &topic, &out.path().to_string_lossy(), &[], &[]);
    ingest_to_end(&pairs);
    // A second run over a few records of hour 02: the newest commit of each partition (whose
    // files compaction leaves in place) is then in hour 02 alone, whatever the first run's
    // group commits put together, so hours 00 and 01 are both plannable.
    for p in 0..2 {
        let hour_02 = (HOUR_BASE_MS + 200 * STEP_MS, STEP_MS);
        produce_timed_from(&servers, &topic, p, 10, hour_02, |n| {
            event(p, 200 + n as u64)
        });
    }
    ingest_to_end(&pairs);
    let run = |args: &[&str]| {
        let out = compact_command(&pairs, args, &[]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let dirs_of = |json: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["plans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["dir"].as_str().unwrap().to_string())
            .collect()
    };
    let all = dirs_of(&run(&["--dry-run", "--json"]));
    assert_eq!(all.len(), 2, "two hours: {all:?}");
    let first = dirs_of(&run(&["--dry-run", "--json", "--where", "hour = '00'"]));
    assert_eq!(first.len(), 1);
    assert!(first[0].ends_with("hour=00"), "{first:?}");
    let table = run(&["--dry-run", "--topic", &topic]);
    assert!(
        table.starts_with("directory") && table.contains("2 directories"),
        "{table}"
    );
    let summary = run(&["--topic", &topic, "--where", "hour = '00'"]);
    assert!(summary.starts_with("compacted 1 directories"), "{summary}");
    assert_eq!(
        dirs_of(&run(&["--dry-run", "--json"])).len(),
        1,
        "hour 01 is left"
    );
    let bad = compact_command(&pairs, &["--where", "nosuch = 1"], &[])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--where"));
}

#[test]
fn parquet_outputs_are_judged_on_their_real_size() {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    for target in ["32768", "12288"] {
        let topic = unique("csize");
        cluster.create_topic(&topic, 2).unwrap();
        produce(&servers, &topic, 2, 0, 3000);
        let out = tempfile::tempdir().unwrap();
        let url = out.path().to_string_lossy().to_string();
        let name = unique("size-job");
        let pairs = hourly_job(
            &servers,
            &topic,
            &url,
            &[],
            &[
                ("name", name.as_str()),
                ("partitioner.class", "Default"),
                ("flush.size", "100"),
                ("compact.target.file.size.bytes", target),
            ],
        );
        ingest_to_end(&pairs);
        // A second run over 10 more records: the newest commit of each partition (whose files
        // compaction leaves in place) then names only their file, whatever the first run's group
        // commits put together.
        produce(&servers, &topic, 2, 3000, 10);
        ingest_to_end(&pairs);
        let view = StoreView::local(out.path());
        let report = compact(&pairs, false);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let target: u64 = target.parse().unwrap();
        for p in 0..2 {
            let sizes: Vec<u64> = view
                .data_files(&topic)
                .into_iter()
                .filter(|f| f.contains(&format!("/partition={p}/")) && f.contains("+compacted+"))
                .map(|f| view.get(&f).len() as u64)
                .collect();
            eprintln!("target {target}, partition {p}: {sizes:?}");
            assert!(sizes.len() >= 2, "{target}: {sizes:?}");
            let in_range = sizes
                .iter()
                .filter(|&&s| s >= target && s * 2 <= target * 3);
            assert!(in_range.count() + 1 >= sizes.len(), "{target}: {sizes:?}");
        }
        assert!(
            compact(&pairs, true).plans.is_empty(),
            "{target}: fixed point"
        );
        assert_exactly_once(&view.offsets(&topic), 2, 3010);
    }
}

#[test]
fn mixed_avro_schema_versions_are_projected_to_the_newest() {
    use apache_avro::types::Value as AV;
    init_logs();
    let (_cluster, topic, out) = two_schema_versions_compacted("camix", "avro");
    let view = StoreView::local(out.path());
    let (mut offsets, mut with_extra, mut nulls) = (Vec::new(), 0, 0);
    for f in view.list(&format!("topics/{topic}")) {
        if !f.ends_with(".avro") {
            continue;
        }
        let compacted = f.contains("+compacted+");
        for v in apache_avro::Reader::new(&view.get(&f)[..]).unwrap() {
            let AV::Record(fields) = v.unwrap() else {
                panic!("a record")
            };
            for (name, value) in fields {
                let value = match value {
                    AV::Union(_, v) => *v,
                    v => v,
                };
                match (name.as_str(), value) {
                    ("_offset", AV::Long(o)) => offsets.push(o),
                    ("extra", AV::Null) if compacted => nulls += 1,
                    ("extra", _) if compacted => with_extra += 1,
                    _ => {}
                }
            }
        }
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (0..120).collect::<Vec<i64>>(), "every offset once");
    assert!(
        with_extra > 0 && nulls > 0,
        "{with_extra} with, {nulls} null"
    );
}

/// One hour of one partition in `format` with an inferred, evolving schema: 60 records without
/// field `extra`, then (a second ingest, newer files) 60 with it; then one compaction run, which
/// must merge the directory without problems.
fn two_schema_versions_compacted(
    prefix: &str,
    format: &str,
) -> (EmbeddedCluster, String, tempfile::TempDir) {
    init_logs();
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique(prefix);
    cluster.create_topic(&topic, 1).unwrap();
    let out = tempfile::tempdir().unwrap();
    let url = out.path().to_string_lossy().to_string();
    let mut pairs = hourly_job(&servers, &topic, &url, &[], &[("format.class", format)]);
    pairs.retain(|(k, _)| k != "value.schema");
    produce_timed_from(&servers, &topic, 0, 60, (HOUR_BASE_MS, 1000), |n| {
        format!(r#"{{"p":0,"seq":{n}}}"#)
    });
    ingest_to_end(&pairs);
    let newer = |n: i64| format!(r#"{{"p":0,"seq":{},"extra":"x{n}"}}"#, 60 + n);
    produce_timed_from(
        &servers,
        &topic,
        0,
        60,
        (HOUR_BASE_MS + 60_000, 1000),
        newer,
    );
    ingest_to_end(&pairs);
    let report = compact(&pairs, false);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.dirs_done, 1);
    (cluster, topic, out)
}
