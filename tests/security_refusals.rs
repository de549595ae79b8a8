//! A security setting StreamX cannot honour is refused by every entry point: `streamx
//! check-config` and `streamx ingest` exit non-zero naming the key (ingest writes nothing), and
//! the worker's `POST /connectors` answers 400 naming the key and stores nothing. Each test also
//! runs the same config without the bad key and expects it to be accepted, so the refusal is the
//! bad key's doing. Real binary; moto for the stores, tansu for the worker.

mod common;

use std::process::Command;

use common::worker::*;
use common::*;
use serde_json::json;

/// `(key, value)` settings StreamX cannot honour (each was once accepted and ignored).
const REFUSED: &[(&str, &str)] = &[
    ("s3.acl.canned", "bucket-owner-full-control"),
    ("s3.ssea.name", "rot13"),
    ("store.aws_sse_kms_key_id", "arn:aws:kms:us-east-1:1:key/k"),
    ("s3.sse.customer.algorithm", "AES256"),
];

/// A JSON -> Parquet job on a fresh moto bucket; `(pairs, bucket)`.
fn s3_job(topic: &str) -> (Vec<(String, String)>, String) {
    let endpoint = service_env("STREAMX_TEST_S3_ENDPOINT");
    let (bucket, owned) = s3_bucket(&endpoint, "refuse");
    let url = format!("s3://{bucket}/run");
    let mut pairs = job("127.0.0.1:1", topic, std::path::Path::new(&url), &[]);
    pairs.extend(owned.iter().map(|(k, v)| (format!("store.{k}"), v.clone())));
    (pairs, bucket)
}

fn run(command: &str, pairs: &[(String, String)], extra: &[&str]) -> (bool, String) {
    let out = Command::new(streamx_bin())
        .arg(command)
        .args(set_args(pairs))
        .args(extra)
        .env("STREAMX_LOG", "error")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn with(pairs: &[(String, String)], key: &str, value: &str) -> Vec<(String, String)> {
    let mut all = pairs.to_vec();
    all.push((key.to_string(), value.to_string()));
    all
}

#[test]
fn check_config_refuses_security_settings_it_cannot_honour() {
    let (pairs, bucket) = s3_job("some-topic");
    let (ok, out) = run("check-config", &pairs, &[]);
    assert!(ok, "the config without them is valid: {out}");
    for (key, value) in REFUSED {
        let (ok, out) = run("check-config", &with(&pairs, key, value), &[]);
        assert!(!ok && out.contains(key), "{key}={value}: {out}");
    }
    let azure = with(&pairs, "store.url", "az://container/run");
    let azure: Vec<_> = azure
        .into_iter()
        .filter(|(k, _)| !k.starts_with("store.") || k == "store.url")
        .collect();
    let (ok, out) = run(
        "check-config",
        &with(&azure, "store.encryption_scope", "s"),
        &[],
    );
    assert!(!ok && out.contains("store.encryption_scope"), "{out}");
    http(
        &service_env("STREAMX_TEST_S3_ENDPOINT"),
        "DELETE",
        &format!("/{bucket}"),
    );
}

#[test]
fn ingest_refuses_security_settings_it_cannot_honour_and_writes_nothing() {
    let cluster = streamx::source::embedded::EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("refuse");
    cluster.create_topic(&topic, 1).unwrap();
    produce(&servers, &topic, 1, 0, 10);
    let (pairs, bucket) = s3_job(&topic);
    let pairs = with(&pairs, "bootstrap.servers", &servers);
    let endpoint = service_env("STREAMX_TEST_S3_ENDPOINT");
    for (key, value) in REFUSED {
        let (ok, out) = run("ingest", &with(&pairs, key, value), &["--stop-at-end"]);
        assert!(!ok && out.contains(key), "{key}={value}: {out}");
        let listing = http(&endpoint, "GET", &format!("/{bucket}"));
        assert!(
            !listing.contains("<Key>"),
            "{key}: nothing written: {listing}"
        );
    }
    let (ok, out) = run("ingest", &pairs, &["--stop-at-end"]);
    assert!(ok, "the config without them ingests: {out}");
    let listing = http(&endpoint, "GET", &format!("/{bucket}"));
    assert!(listing.contains(".parquet</Key>"), "{listing}");
    let options = s3_job_options();
    let store = streamx::store::Store::with_url(&format!("s3://{bucket}/run"), &options).unwrap();
    delete_all(&store);
    http(&endpoint, "DELETE", &format!("/{bucket}"));
}

fn s3_job_options() -> std::collections::BTreeMap<String, String> {
    let endpoint = service_env("STREAMX_TEST_S3_ENDPOINT");
    [
        ("endpoint", endpoint.as_str()),
        ("region", "us-east-1"),
        ("allow_http", "true"),
        ("access_key_id", "test"),
        ("secret_access_key", "test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn rest_create_refuses_security_settings_it_cannot_honour_and_stores_nothing() {
    let s = setup("refuse-rest", 1);
    let w = Worker::start(s.dir.path(), &s.props);
    for (key, value) in REFUSED {
        let name = unique("refused");
        let mut job = s.seed_job(&name);
        job["config"][*key] = json!(value);
        let (code, err) = w.api("POST", "/connectors", Some(job));
        assert_eq!(code, 400, "{key}={value}: {err}");
        let message = err["message"].as_str().unwrap_or_default();
        assert!(message.contains(key), "{key}: {message}");
        let (code, list) = w.api("GET", "/connectors", None);
        assert_eq!((code, list), (200, json!([])), "{key}: nothing stored");
    }
    let name = s.post_seed_job(&w); // the same job without the bad key is accepted
    let (code, _) = w.api("DELETE", &format!("/connectors/{name}"), None);
    assert_eq!(code, 204);
    w.stop();
}
