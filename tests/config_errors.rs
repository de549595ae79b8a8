//! Fail-fast checks of the real binary: an unknown key, a bad value, an unreachable store and an
//! unreachable broker each stop `streamx ingest` before it consumes anything, with a message that
//! names the problem. The time bounds are generous: they catch hangs (retry loops), not speed.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use streamx::source::embedded::EmbeddedCluster;

fn ingest(args: &[String]) -> (bool, String, Duration) {
    let start = Instant::now();
    let out = Command::new(streamx_bin())
        .arg("ingest")
        .args(args)
        .env("STREAMX_LOG", "error")
        .output()
        .expect("run streamx");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
        start.elapsed(),
    )
}

fn base(servers: &str, out: &std::path::Path) -> Vec<(String, String)> {
    job(servers, "some-topic", out, &[])
}

#[test]
fn an_unknown_key_is_named_with_a_suggestion() {
    let out = tempfile::tempdir().unwrap();
    let mut pairs = base("127.0.0.1:1", out.path());
    pairs.push(("flush.sise".into(), "10".into()));
    let (ok, err, _) = ingest(&set_args(&pairs));
    assert!(!ok);
    assert!(err.contains("unknown config key 'flush.sise'"), "{err}");
    assert!(err.contains("did you mean 'flush.size'"), "{err}");
    assert!(err.contains("user error"), "{err}");
}

#[test]
fn a_bad_value_names_key_value_and_what_is_allowed() {
    let out = tempfile::tempdir().unwrap();
    let mut pairs = base("127.0.0.1:1", out.path());
    pairs.push(("parquet.codec".into(), "brotli9".into()));
    let (ok, err, _) = ingest(&set_args(&pairs));
    assert!(!ok);
    assert!(
        err.contains("parquet.codec") && err.contains("brotli9"),
        "{err}"
    );
    assert!(err.contains("snappy"), "lists what is allowed: {err}");
}

#[test]
fn a_config_file_error_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("job.properties");
    std::fs::write(&file, "name=x\n=oops\n").unwrap();
    let (ok, err, _) = ingest(&["--config".into(), file.to_string_lossy().into()]);
    assert!(!ok);
    assert!(err.contains("job.properties:2"), "{err}");
}

#[test]
fn an_invalid_topics_regex_names_the_key_and_the_regex_error() {
    let out = tempfile::tempdir().unwrap();
    let mut pairs = base("127.0.0.1:1", out.path());
    pairs.retain(|(k, _)| k != "topics");
    pairs.push(("topics.regex".into(), "logs-[a-".into()));
    let (ok, err, _) = ingest(&set_args(&pairs));
    assert!(!ok);
    assert!(
        err.contains("topics.regex") && err.contains("logs-[a-"),
        "{err}"
    );
    assert!(err.contains("unclosed character class"), "{err}");
    assert!(err.contains("user error"), "{err}");
    assert!(
        !err.contains("unreachable"),
        "reported before connecting: {err}"
    );
}

#[test]
fn an_unreachable_store_fails_fast() {
    let cluster = EmbeddedCluster::start(1).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut pairs = base(&cluster.bootstrap_servers(), out.path());
    pairs.retain(|(k, _)| k != "store.url");
    pairs.extend([
        ("store.url".to_string(), "s3://no-such-bucket/x".to_string()),
        (
            "store.endpoint".to_string(),
            "http://127.0.0.1:1".to_string(),
        ),
        ("store.allow_http".to_string(), "true".to_string()),
        ("store.region".to_string(), "us-east-1".to_string()),
        ("store.access_key_id".to_string(), "a".to_string()),
        ("store.secret_access_key".to_string(), "b".to_string()),
    ]);
    let (ok, err, took) = ingest(&set_args(&pairs));
    assert!(!ok);
    assert!(
        err.contains("s3://no-such-bucket/x") && err.contains("unreachable"),
        "{err}"
    );
    assert!(!err.contains("\"b\""), "the secret is not printed: {err}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

#[test]
fn an_unreachable_broker_fails_fast() {
    let out = tempfile::tempdir().unwrap();
    let (ok, err, took) = ingest(&set_args(&base("127.0.0.1:1", out.path())));
    assert!(!ok);
    assert!(
        err.contains("127.0.0.1:1")
            && err.contains("unreachable")
            && err.contains("bootstrap.servers"),
        "{err}"
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

#[test]
fn a_missing_topic_is_named() {
    let cluster = EmbeddedCluster::start(1).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (ok, err, _) = ingest(&set_args(&base(&cluster.bootstrap_servers(), out.path())));
    assert!(!ok);
    assert!(err.contains("topic 'some-topic' does not exist"), "{err}");
}

#[test]
fn check_config_prints_the_layered_config_with_secrets_redacted() {
    let out = tempfile::tempdir().unwrap();
    let mut pairs = base("127.0.0.1:1", out.path());
    pairs.push(("store.secret_access_key".into(), "hunter2".into()));
    let output = Command::new(streamx_bin())
        .arg("check-config")
        .args(set_args(&pairs))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("store.secret_access_key=[hidden]"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(stdout.contains("topics=some-topic"), "{stdout}");
}

#[test]
fn a_bad_partition_rule_or_transform_fails_at_startup_with_datafusion_s_message() {
    let out = tempfile::tempdir().unwrap();
    // The broker is unreachable: the SQL is checked before anything connects.
    for (key, sql, expect) in [
        ("partition.by", "nope_column AS x", "nope_column"),
        ("partition.by", "upper(user)", "AS name"),
        (
            "transform.sql",
            "SELECT seq FROM records WHERE",
            "transform.sql",
        ),
        (
            "transform.sql",
            "SELECT count(*) FROM records",
            "not per-record",
        ),
        (
            "partition.by",
            "date_format(seq, '%Y') AS y",
            "to_char(Int64, Utf8)",
        ),
    ] {
        let mut pairs = base("127.0.0.1:1", out.path());
        pairs.push((key.into(), sql.into()));
        let (ok, err, _) = ingest(&set_args(&pairs));
        assert!(!ok, "{key}={sql}");
        assert!(
            err.contains(&format!("config key '{key}'")),
            "{key}={sql}: {err}"
        );
        assert!(err.contains(expect), "{key}={sql}: {err}");
        assert!(!err.contains("broker"), "failed before connecting: {err}");
        let check = Command::new(streamx_bin())
            .arg("check-config")
            .args(set_args(&pairs))
            .output()
            .unwrap();
        assert!(!check.status.success(), "check-config accepts {key}={sql}");
    }
    let mut pairs = base("127.0.0.1:1", out.path());
    pairs.push(("partitioner.class".into(), "TimeBased".into()));
    pairs.push(("path.format".into(), "'m'=MMM".into()));
    pairs.push(("partition.duration.ms".into(), "3600000".into()));
    pairs.push(("locale".into(), "fr_FR".into()));
    let (ok, err, _) = ingest(&set_args(&pairs));
    assert!(
        !ok && err.contains("path.format") && err.contains("fr_FR"),
        "{err}"
    );
}
