//! No secret a job carries is shown anywhere StreamX answers or writes: the worker's log at
//! debug level (librdkafka's debug included), `/metrics`, a failed task's status trace, the
//! validate endpoint, and `streamx check-config`. The job has a JAAS config with a password,
//! `sasl.password`, a registry URL with credentials in it, a registry user info and a bearer
//! token; its task fails on the SASL login (the broker has no SASL), so the trace is about the
//! secured connection. `GET /connectors/{name}/config` returns what was submitted, as Kafka
//! Connect does (the README steers secrets to config providers), and is not checked.
//! Needs the services (tansu, moto): `scripts/services.sh up`.

mod common;

use common::worker::*;
use common::*;
use serde_json::{json, Value};

const JAAS_PASSWORD: &str = "JAAS-PASSWORD-7f3a91";
const SASL_PASSWORD: &str = "SASL-PASSWORD-c02d44";
const URL_PASSWORD: &str = "URL-PASSWORD-9c2e10";
const USER_INFO_PASSWORD: &str = "USERINFO-PASSWORD-5b7e";
const BEARER: &str = "BEARER-TOKEN-e81f2a";

fn secret_keys() -> Vec<(&'static str, String)> {
    vec![
        ("security.protocol", "SASL_PLAINTEXT".into()),
        ("sasl.mechanism", "PLAIN".into()),
        (
            "sasl.jaas.config",
            format!(
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="{JAAS_PASSWORD}";"#
            ),
        ),
        ("producer.sasl.password", SASL_PASSWORD.into()),
        ("producer.sasl.username", "bob".into()),
        (
            "format.class",
            "io.confluent.connect.s3.format.parquet.ParquetFormat".into(),
        ),
        (
            "value.converter",
            "io.confluent.connect.avro.AvroConverter".into(),
        ),
        (
            "value.converter.schema.registry.url",
            format!("http://registry-user:{URL_PASSWORD}@127.0.0.1:9"),
        ),
        (
            "key.converter.basic.auth.user.info",
            format!("registry-user:{USER_INFO_PASSWORD}"),
        ),
        ("key.converter.bearer.auth.token", BEARER.into()),
    ]
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [
        JAAS_PASSWORD,
        SASL_PASSWORD,
        URL_PASSWORD,
        USER_INFO_PASSWORD,
        BEARER,
    ] {
        assert!(
            !text.contains(secret),
            "{what} shows the secret {secret}:\n{text}"
        );
    }
}

#[test]
fn no_secret_in_logs_metrics_traces_validate_or_check_config() {
    let s = setup("secrets", 1);
    // Automatic restarts off: the task stays FAILED with its trace.
    let props = format!("{}task.restart.backoff.max.ms=0\n", s.props);
    let w = Worker::start_logging(s.dir.path(), &props, false, "debug,librdkafka=debug");
    let name = unique("secret-job");
    let mut job = s.seed_job(&name);
    for (k, v) in secret_keys() {
        job["config"][k] = json!(v);
    }
    job["config"]["consumer.debug"] = json!("security,broker");
    let (code, body) = w.api("POST", "/connectors", Some(job.clone()));
    assert_eq!(code, 201, "{body}");
    let status = wait_state(&w, &name, "RUNNING", Some("FAILED"));
    let trace = status["tasks"][0]["trace"].as_str().unwrap_or_default();
    assert!(
        trace.contains("SASL"),
        "the task failed on something else: {status}"
    );
    assert_no_secret("the status", &status.to_string());

    let (code, metrics) = call_text(&format!("{}/metrics", w.base)).unwrap();
    assert_eq!(code, 200);
    assert_no_secret("/metrics", &metrics);

    let (code, infos) = w.api(
        "PUT",
        "/connector-plugins/S3SinkConnector/config/validate",
        Some(job["config"].clone()),
    );
    assert_eq!(code, 200, "{infos}");
    assert_no_secret("the validate answer", &infos.to_string());
    let shown = |key: &str| -> Value {
        infos["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"]["name"] == key)
            .map(|c| c["value"]["value"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(shown("sasl.jaas.config"), json!("[hidden]"), "{infos}");

    let file = s.dir.path().join("job.properties");
    let mut lines = format!("bootstrap.servers={}\n", s.servers);
    lines += &job["config"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={}\n", v.as_str().unwrap()))
        .collect::<String>();
    std::fs::write(&file, lines).unwrap();
    let out = std::process::Command::new(streamx_bin())
        .args(["check-config", "--config", file.to_str().unwrap()])
        .env("STREAMX_LOG", "debug")
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{printed}");
    assert_no_secret("check-config", &printed);

    let log = w.log();
    assert!(log.contains("SASL"), "no debug log of the login: {log}");
    assert_no_secret("the worker's debug log", &log);
}
