//! Every entry point prepares a job the same way (`streamx::job::prepare`): `streamx ingest`,
//! `check-config` and the worker's create / PUT config / validate accept and refuse the same
//! configs.
//!
//! - check-config refuses, with an inferred schema (no declared one), a partition rule calling
//!   a function DataFusion does not know and a `transform.sql` syntax error; what depends on
//!   column types still waits for data (accepted);
//! - the worker refuses SQL that does not compile: create and PUT answer 400 naming the key and
//!   store nothing, validate answers 200 with the error on the key;
//! - job names as Kafka Connect checks them: ISO control characters refused (400, nothing
//!   stored); a non-ASCII name runs end to end (percent-encoded Location, status, records land).
//!
//! The worker tests run the real binary against the tansu broker and moto (helpers:
//! tests/common/worker.rs); the check-config tests need nothing.

mod common;

use std::process::Command;

use common::worker::*;
use common::*;
use serde_json::{json, Value};

/// `streamx check-config` on an inferred-schema job (no `value.schema`) plus `extra`.
fn check_inferred(extra: &[(&str, &str)]) -> (bool, String) {
    let out = tempfile::tempdir().unwrap();
    let mut pairs = job("127.0.0.1:1", "some-topic", out.path(), extra);
    pairs.retain(|(k, _)| k != "value.schema");
    let output = Command::new(streamx_bin())
        .arg("check-config")
        .args(set_args(&pairs))
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[test]
fn check_config_refuses_unknown_functions_and_syntax_errors_with_an_inferred_schema() {
    for (key, sql, expect) in [
        ("partition.by", "no_such_function(ts)", "no_such_function"),
        (
            "partition.by",
            "NO_SUCH_FUNCTION(ts) AS x",
            "no_such_function",
        ),
        (
            "transform.sql",
            "SELECT seq, lower(user) AS u FROM records WHERE nope_fn(seq) > 1",
            "nope_fn",
        ),
        ("transform.sql", "SELEC seq FROM records", "transform.sql"),
        ("partition.by", "date_format(ts, '%Y') AS", "partition.by"),
    ] {
        let (ok, err) = check_inferred(&[(key, sql)]);
        assert!(!ok, "check-config accepts {key}={sql}");
        assert!(
            err.contains(&format!("config key '{key}'")),
            "{key}={sql}: {err}"
        );
        assert!(err.contains(expect), "{key}={sql}: {err}");
    }
    // Known functions (DataFusion's, aliases, `wallclock`) on columns whose types only the
    // data tells: accepted now, typed when the first batch has a schema.
    for (key, sql) in [
        ("partition.by", "date_format(ts, '%Y') AS y, user AS u"),
        ("partition.by", "date_format(wallclock(), '%Y') AS y"),
        (
            "transform.sql",
            "SELECT *, upper(user) AS u FROM records WHERE seq % 2 = 0",
        ),
    ] {
        let (ok, err) = check_inferred(&[(key, sql)]);
        assert!(ok, "check-config refuses {key}={sql}: {err}");
    }
}

/// The config entry of `key` in a validate answer.
fn entry<'a>(infos: &'a Value, key: &str) -> &'a Value {
    infos["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"]["name"] == key)
        .unwrap_or_else(|| panic!("no entry for {key}: {infos}"))
}

#[test]
fn sql_that_does_not_compile_is_refused_by_create_put_and_validate() {
    let s = setup("badsql", 1);
    let w = Worker::start(s.dir.path(), &s.props);
    let name = unique("badsql");
    for (key, sql, expect) in [
        (
            "partition.by",
            "no_such_function(_offset) AS x",
            "no_such_function",
        ),
        ("transform.sql", "SELEC value FROM records", "transform.sql"),
    ] {
        let mut job = s.seed_job(&name);
        job["config"][key] = json!(sql);
        let (code, err) = w.api("POST", "/connectors", Some(job.clone()));
        assert_eq!(code, 400, "POST {key}={sql}: {err}");
        assert_eq!(err["error_code"], 400);
        let message = err["message"].as_str().unwrap();
        assert!(message.contains(&format!("'{key}'")), "{message}");
        assert!(message.contains(expect), "{message}");

        let path = format!("/connectors/{name}/config");
        let (code, err) = w.api("PUT", &path, Some(job["config"].clone()));
        assert_eq!(code, 400, "PUT {key}={sql}: {err}");
        assert!(err["message"].as_str().unwrap().contains(key), "{err}");

        let (code, list) = w.api("GET", "/connectors", None);
        assert_eq!((code, list), (200, json!([])));
        let (code, _) = w.api("GET", &path, None);
        assert_eq!(code, 404);

        let (code, infos) = w.api(
            "PUT",
            "/connector-plugins/S3SinkConnector/config/validate",
            Some(job["config"].clone()),
        );
        assert_eq!(code, 200, "{infos}");
        assert!(infos["error_count"].as_u64().unwrap() > 0, "{infos}");
        let errors = entry(&infos, key)["value"]["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e.as_str().unwrap().contains(expect)),
            "{key}: {infos}"
        );
    }
    w.stop();
}

#[test]
fn a_name_with_control_characters_is_refused_and_nothing_is_stored() {
    let s = setup("ctlname", 1);
    let w = Worker::start(s.dir.path(), &s.props);
    for name in [
        format!("{}\0x", unique("nul")),
        format!("{}\nx", unique("lf")),
        format!("\t{}", unique("tab")),
    ] {
        let (code, err) = w.api("POST", "/connectors", Some(s.seed_job(&name)));
        assert_eq!(code, 400, "{name:?}: {err}");
        assert_eq!(err["error_code"], 400);
        assert!(
            err["message"].as_str().unwrap().contains("control"),
            "{err}"
        );
        let mut url = url::Url::parse(&w.base).unwrap();
        url.path_segments_mut()
            .unwrap()
            .extend(["connectors", &name, "config"]);
        let (code, err) = call(
            "PUT",
            url.as_str(),
            Some(s.seed_job(&name)["config"].clone()),
        );
        assert_eq!(code, 400, "PUT {url}: {err}");
        let (code, list) = w.api("GET", "/connectors", None);
        assert_eq!((code, list), (200, json!([])), "{name:?}");
    }
    let log = w.log();
    assert!(!log.contains("nul error"), "{log}");
    w.stop();
}

/// POST /connectors: the status and the Location header.
fn post_with_location(base: &str, body: &Value) -> (u16, Option<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let resp = agent
        .post(&format!("{base}/connectors"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    let location = resp
        .headers()
        .get("location")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string());
    (resp.status().as_u16(), location)
}

#[test]
fn a_non_ascii_name_runs_end_to_end() {
    let s = setup("nonascii", 2);
    s.produce(2, 0, 6);
    let w = Worker::start(s.dir.path(), &s.props);
    let name = unique("commandes-é-日本");
    let (code, location) = post_with_location(&w.base, &s.seed_job(&name));
    assert_eq!(code, 201, "{}", w.log());
    let mut url = url::Url::parse(&w.base).unwrap();
    url.path_segments_mut()
        .unwrap()
        .extend(["connectors", &name]);
    assert_eq!(location.as_deref(), Some(url.path()));
    assert!(url.path().contains("commandes-%C3%A9-%E6%97%A5%E6%9C%AC"));

    let (code, list) = w.api("GET", "/connectors", None);
    assert_eq!((code, list), (200, json!([name])));
    let (code, info) = call("GET", url.as_str(), None);
    assert_eq!((code, info["name"].clone()), (200, json!(name)));
    s.expect_exactly(2, 6);
    let status_url = format!("{url}/status");
    wait_until("the task to run", START, || {
        let (code, status) = call("GET", &status_url, None);
        code == 200
            && status["name"] == json!(name)
            && status["connector"]["state"] == "RUNNING"
            && status["tasks"][0]["state"] == "RUNNING"
    });
    let log = w.log();
    assert!(
        !log.contains("nul error") && !log.contains("FAILED"),
        "{log}"
    );
    let (code, _) = call("DELETE", url.as_str(), None);
    assert_eq!(code, 204);
    w.stop();
}
