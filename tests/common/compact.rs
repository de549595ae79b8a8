//! Helpers of the compaction tests: hourly ingest into any store, running `streamx compact` in
//! process or as the real binary, and checks on what the store holds afterwards.

use std::path::Path;
use std::time::Duration;

use streamx::compact::{CompactOptions, Report};
use streamx::ingest::{self, IngestOptions};

use super::crash::StoreView;
use super::*;

/// 2026-11-01T00:00:00Z.
pub const HOUR_BASE_MS: i64 = 1_793_491_200_000;
/// 100 records per partition per hour.
pub const STEP_MS: i64 = 36_000;

/// An hourly JSON -> `format` job with small files and compaction settings for tests.
pub fn hourly_job(
    servers: &str,
    topic: &str,
    url: &str,
    store_options: &[(&str, String)],
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut all: Vec<(&str, &str)> = vec![
        ("flush.size", "20"),
        ("partitioner.class", "Hourly"),
        ("compact.min.age.ms", "0"),
        ("compact.min.input.files", "2"),
        ("compact.target.file.size.bytes", "16384"),
    ];
    all.extend_from_slice(extra);
    let mut pairs = job(servers, topic, Path::new(url), &all);
    for (k, v) in store_options {
        pairs.push((format!("store.{k}"), v.clone()));
    }
    pairs
}

/// Produces records `from..from + count` of each partition, 100 per hour from
/// [`HOUR_BASE_MS`] (record n at `HOUR_BASE_MS + n * STEP_MS`).
pub fn produce_hourly(servers: &str, topic: &str, partitions: i32, count: i64) {
    for p in 0..partitions {
        produce_timed_from(servers, topic, p, count, (HOUR_BASE_MS, STEP_MS), |n| {
            event(p, n as u64)
        });
    }
}

/// Runs the ingest in process until every partition is read to its end.
pub fn ingest_to_end(pairs: &[(String, String)]) {
    let opts = IngestOptions {
        stop_at_end: true,
        ..Default::default()
    };
    ingest::run(config(pairs), opts).expect("ingest run");
}

/// `streamx compact` in process.
pub fn compact(pairs: &[(String, String)], dry_run: bool) -> Report {
    let options = CompactOptions {
        dry_run,
        ..Default::default()
    };
    streamx::compact::run(&config(pairs), &options).expect("compact run")
}

/// The real `streamx compact` binary with `--set` pairs, extra arguments and environment.
pub fn compact_command(
    pairs: &[(String, String)],
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Command {
    let mut cmd = std::process::Command::new(streamx_bin());
    cmd.arg("compact").args(set_args(pairs)).args(args);
    cmd.env("STREAMX_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Staged compaction outputs left in the store.
pub fn compaction_staging(view: &StoreView) -> Vec<String> {
    view.list("topics/_streamx/compaction-staging")
}

/// Data files per directory of a topic.
pub fn files_per_dir(view: &StoreView, topic: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for f in view.data_files(topic) {
        let dir = f
            .rsplit_once('/')
            .map_or(String::new(), |(d, _)| d.to_string());
        *out.entry(dir).or_default() += 1;
    }
    out
}

/// Waits for `child` with a deadline; kills it when the deadline passes.
pub fn wait_or_kill(
    child: &mut std::process::Child,
    deadline: Duration,
) -> std::process::ExitStatus {
    match super::crash::wait_exit(child, deadline) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            panic!("streamx compact did not exit within {deadline:?}");
        }
    }
}
