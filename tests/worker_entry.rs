//! How `streamx worker` is entered: the Docker image's entrypoint run outside a container (no
//! container engine runs here), and the REST API's optional basic auth. Real services (tansu,
//! moto); each test has its own topics, job names and port.

mod common;

use std::process::{Command, Stdio};

use common::worker::*;
use common::*;
use serde_json::{json, Value};

/// The Dockerfile's `ENTRYPOINT [...]` arguments, `ENV CONNECT_*` variables and the path its
/// `HEALTHCHECK` asks for.
struct Image {
    entrypoint: Vec<String>,
    env: Vec<(String, String)>,
    health_path: String,
}

fn read_dockerfile() -> Image {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile");
    let text = std::fs::read_to_string(path).unwrap();
    let entry = text
        .lines()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("an ENTRYPOINT line");
    let entrypoint: Vec<String> = serde_json::from_str(entry).expect("ENTRYPOINT in exec form");
    let env = text
        .lines()
        .filter_map(|l| l.strip_prefix("ENV "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let health = text
        .split("http://127.0.0.1:8083")
        .nth(1)
        .expect("a HEALTHCHECK URL on port 8083");
    let health_path = health.split_whitespace().next().unwrap().to_string();
    Image {
        entrypoint,
        env,
        health_path,
    }
}

/// The image's entrypoint, `streamx worker` with no file, configured only by `CONNECT_*`
/// variables as the README's compose example sets them, on top of the Dockerfile's own
/// (`CONNECT_LISTENERS=http://0.0.0.0:8083`, its port swapped for a free one), in a clean
/// environment: it starts, its healthcheck path answers 200, and it runs a job.
#[test]
fn the_image_entrypoint_runs_from_connect_variables_only() {
    let s = setup("entry", 1);
    s.produce(1, 0, 4);
    let image = read_dockerfile();
    assert_eq!(image.entrypoint, ["streamx", "worker"]);
    let port = free_port();
    let cfg = unique("streamx-configs");
    let log = s.dir.path().join("entry.log");
    let mut cmd = Command::new(streamx_bin());
    cmd.args(&image.entrypoint[1..])
        .env_clear()
        .current_dir(s.dir.path())
        .env("HOME", s.dir.path())
        .env("STREAMX_LOG", "info,librdkafka=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in &image.env {
        cmd.env(k, v.replace(":8083", &format!(":{port}")));
    }
    for (k, v) in [
        ("CONNECT_BOOTSTRAP_SERVERS", s.servers.clone()),
        ("CONNECT_GROUP_ID", unique("entry-group")),
        ("CONNECT_CONFIG_STORAGE_TOPIC", cfg.clone()),
        ("CONNECT_STATUS_STORAGE_TOPIC", format!("{cfg}-status")),
        ("CONNECT_OFFSET_STORAGE_TOPIC", format!("{cfg}-offsets")),
        (
            "CONNECT_VALUE_CONVERTER",
            "org.apache.kafka.connect.converters.ByteArrayConverter".into(),
        ),
        // Keys images set that StreamX does not use: logged and ignored.
        ("CONNECT_PLUGIN_PATH", "/usr/share/java".into()),
        ("CONNECT_REST_ADVERTISED_HOST_NAME", "streamx".into()),
        ("CONNECT_CONSUMER_SESSION_TIMEOUT_MS", "8000".into()),
    ] {
        cmd.env(k, v);
    }
    // A Worker: stopped when dropped, also when the test fails.
    let w = Worker {
        child: cmd.spawn().unwrap(),
        base: format!("http://127.0.0.1:{port}"),
        log,
    };
    let base = w.base.clone();
    wait_until("the healthcheck to answer 200", START, || {
        call("GET", &format!("{base}{}", image.health_path), None).0 == 200
    });
    let (code, list) = call("GET", &format!("{base}/connectors"), None);
    assert_eq!((code, list), (200, json!([])));

    let name = unique("clickstream");
    let (code, body) = call(
        "POST",
        &format!("{base}/connectors"),
        Some(s.seed_job(&name)),
    );
    assert_eq!(code, 201, "{body}");
    s.expect_exactly(1, 4);
    let (_, status) = call("GET", &format!("{base}/connectors/{name}/status"), None);
    assert_eq!(status["tasks"][0]["worker_id"], format!("streamx:{port}"));
    let (code, _) = call("DELETE", &format!("{base}/connectors/{name}"), None);
    assert_eq!(code, 204);
    w.stop();
}

/// With `rest.basic.auth.user` / `rest.basic.auth.password` (here the password comes from a
/// `${file:...}` reference), every endpoint but /health asks for the credentials: 401 with a
/// Connect-style error body and a `WWW-Authenticate: Basic` challenge without them or with
/// wrong ones; the API works as ever with them.
#[test]
fn basic_auth_guards_every_endpoint_but_health() {
    let s = setup("auth", 1);
    s.produce(1, 0, 2);
    let secrets = s.dir.path().join("rest-credentials.properties");
    std::fs::write(&secrets, "password=open-sesame\n").unwrap();
    let props = format!(
        "{}rest.basic.auth.user=admin\nrest.basic.auth.password=${{file:{}:password}}\n",
        s.props,
        secrets.display()
    );
    let w = Worker::start(s.dir.path(), &props);
    let url = |path: &str| format!("{}{path}", w.base);
    let good = Some("admin:open-sesame");

    let (code, _, body) = call_as("GET", &url("/health"), None, None);
    assert_eq!((code, body["status"].clone()), (200, json!("healthy")));
    let refused = |method: &str, path: &str, credentials: Option<&str>, body: Option<Value>| {
        let (code, challenge, err) = call_as(method, &url(path), body, credentials);
        assert_eq!(code, 401, "{method} {path}: {err}");
        assert_eq!(
            err,
            json!({"error_code": 401, "message": "User cannot access the resource."})
        );
        assert!(challenge.is_some_and(|c| c.starts_with("Basic")));
    };
    let name = unique("clickstream");
    for path in [
        "/",
        "/connectors",
        "/connectors/",
        "/metrics",
        "/connector-plugins",
    ] {
        refused("GET", path, None, None);
        refused("GET", path, Some("admin:wrong"), None);
    }
    refused("POST", "/connectors", None, Some(s.seed_job(&name)));
    refused(
        "POST",
        "/connectors",
        Some("nobody:open-sesame"),
        Some(s.seed_job(&name)),
    );
    let (code, list) = w.api("GET", "/connectors", None);
    assert_eq!(
        (code, list),
        (
            401,
            json!({"error_code": 401, "message": "User cannot access the resource."})
        )
    );

    // Nothing was created by the refused POSTs; with the credentials the API works.
    let (code, _, list) = call_as("GET", &url("/connectors"), None, good);
    assert_eq!((code, list), (200, json!([])));
    let (code, _, body) = call_as("POST", &url("/connectors"), Some(s.seed_job(&name)), good);
    assert_eq!(code, 201, "{body}");
    s.expect_exactly(1, 2);
    let (code, _, _) = call_as("DELETE", &url(&format!("/connectors/{name}")), None, good);
    assert_eq!(code, 204);
    let log = w.log();
    assert!(!log.contains("open-sesame"), "{log}");
    w.stop();
}
