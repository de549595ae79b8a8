//! `streamx worker` end to end: the real binary against the tansu broker
//! (`STREAMX_TEST_KAFKA_BROKERS`) and moto (`STREAMX_TEST_S3_ENDPOINT`), driven over HTTP as
//! curl, Terraform or kcctl would drive Kafka Connect.
//!
//! - the seed README's curl flow: POST the clickstream job (S3SinkConnector, SourceFormat,
//!   flush.size, s3.url, hadoop.conf.dir: here a directory whose core-site.xml points at moto),
//!   GET /connectors, DELETE; every record lands exactly once;
//! - pause (no new files while paused), resume, and a worker restart that brings the job back
//!   in its stored state (paused stays paused);
//! - a bad config is a 400 naming every bad key, and nothing is stored;
//! - /metrics parses as Prometheus text and counts what was ingested;
//! - kafka-connect-py (PyPI) drives the whole API (tests/worker_client.py);
//! - two workers split a job's partitions, one takes over when the other is SIGKILLed, both
//!   restarted (one configured by `CONNECT_*` variables only) run the job again, exactly once;
//! - a job whose store is missing is FAILED with the error as `trace`; restart brings it back.
//!
//! Each test has its own topic, bucket, config topic, consumer groups and REST port. The job
//! name differs from the seed's `clickstream` only by a unique suffix: its consumer group
//! (`connect-<name>`) must be new per run on tansu.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::crash::{signal, wait_exit, StoreView};
use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use serde_json::{json, Value};

const START: Duration = Duration::from_secs(60);
const LAND: Duration = Duration::from_secs(120);

/// A running `streamx worker`; SIGTERM (then SIGKILL) on drop.
struct Worker {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Worker {
    fn start(dir: &Path, props: &str) -> Worker {
        Worker::start_with(dir, props, false)
    }

    /// With `env`, the worker gets no file: every key comes as a `CONNECT_*` variable
    /// (cp-kafka-connect's mapping).
    fn start_with(dir: &Path, props: &str, env: bool) -> Worker {
        let port = free_port();
        let props = format!("{props}\nlisteners=http://127.0.0.1:{port}\n");
        let log = dir.join(format!("worker-{port}.log"));
        let mut cmd = Command::new(streamx_bin());
        cmd.arg("worker")
            .env("STREAMX_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if env {
            for line in props.lines().filter(|l| l.contains('=')) {
                let (k, v) = line.split_once('=').unwrap();
                let var = k.replace('_', "__").replace('.', "_").to_uppercase();
                cmd.env(format!("CONNECT_{var}"), v);
            }
        } else {
            let file = dir.join(format!("worker-{port}.properties"));
            std::fs::write(&file, props).unwrap();
            cmd.args(["--config", file.to_str().unwrap()]);
        }
        let w = Worker {
            child: cmd.spawn().unwrap(),
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        wait_until("the worker to answer GET /", START, || {
            call("GET", &format!("{}/", w.base), None).0 == 200
        });
        w
    }

    /// The `worker_id` statuses show for this worker.
    fn id(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call(method, &format!("{}{path}", self.base), body)
    }

    /// Stops the worker with SIGTERM and waits for it to exit.
    fn stop(mut self) {
        terminate(&mut self.child);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn terminate(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    signal(child, libc::SIGTERM);
    if wait_exit(child, Duration::from_secs(60)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP call: `(status, JSON body or Null)`.
fn call(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent();
    let result = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        ("POST", Some(b)) => agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(b.to_string()),
        ("POST", None) => agent.post(url).send_empty(),
        ("PUT", Some(b)) => agent
            .put(url)
            .header("Content-Type", "application/json")
            .send(b.to_string()),
        ("PUT", None) => agent.put(url).send_empty(),
        ("PATCH", Some(b)) => agent
            .patch(url)
            .header("Content-Type", "application/json")
            .send(b.to_string()),
        (m, _) => panic!("unsupported method {m}"),
    };
    match result {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }
        // Not listening yet (or any more).
        Err(_) => (0, Value::Null),
    }
}

fn create_topic(servers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let created = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))
        .unwrap();
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
}

/// Everything one test uses: broker, moto bucket, a Hadoop conf dir pointing at moto, the
/// worker properties.
struct Setup {
    servers: String,
    topic: String,
    bucket: String,
    /// The `store.*` options that reach moto.
    options: BTreeMap<String, String>,
    view: StoreView,
    dir: tempfile::TempDir,
    props: String,
}

fn setup(prefix: &str, partitions: i32) -> Setup {
    init_logs();
    let servers = service_env("STREAMX_TEST_KAFKA_BROKERS");
    let endpoint = service_env("STREAMX_TEST_S3_ENDPOINT");
    let topic = unique(prefix);
    create_topic(&servers, &topic, partitions);
    let (bucket, opts) = s3_bucket(&endpoint, prefix);
    let options: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let view = StoreView::new(&format!("s3://{bucket}/demo"), &options);
    let dir = tempfile::tempdir().unwrap();
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    std::fs::create_dir(dir.path().join("hadoop-conf")).unwrap();
    std::fs::write(
        dir.path().join("hadoop-conf/core-site.xml"),
        format!(
            r#"<?xml version="1.0"?>
<configuration>
  <property><name>fs.s3a.access.key</name><value>test</value></property>
  <property><name>fs.s3a.secret.key</name><value>test</value></property>
  <property><name>fs.s3a.endpoint</name><value>{hostport}</value></property>
  <property><name>fs.s3a.connection.ssl.enabled</name><value>false</value></property>
  <property><name>fs.s3a.path.style.access</name><value>true</value></property>
</configuration>
"#
        ),
    )
    .unwrap();
    let props = format!(
        "bootstrap.servers={servers}
group.id={group}
config.storage.topic={cfg}
offset.storage.topic={cfg}-offsets
status.storage.topic={cfg}-status
key.converter=org.apache.kafka.connect.converters.ByteArrayConverter
value.converter=org.apache.kafka.connect.converters.ByteArrayConverter
plugin.path=/usr/share/java
consumer.session.timeout.ms=8000
consumer.heartbeat.interval.ms=1000
",
        group = unique("worker-group"),
        cfg = unique("streamx-configs"),
    );
    Setup {
        servers,
        topic,
        bucket,
        options,
        view,
        dir,
        props,
    }
}

impl Setup {
    /// The seed README's job, on this test's topic, bucket and Hadoop conf dir.
    fn seed_job(&self, name: &str) -> Value {
        json!({"name": name,
         "config": {
            "name": name,
            "connector.class": "com.qubole.streamx.s3.S3SinkConnector",
            "format.class": "com.qubole.streamx.SourceFormat",
            "tasks.max": "1",
            "topics": self.topic,
            "flush.size": "2",
            "s3.url": format!("s3://{}/demo", self.bucket),
            "hadoop.conf.dir": self.dir.path().join("hadoop-conf").to_str().unwrap(),
        }})
    }

    /// Produces values `p<p>-<seq>` for seq in `from..from+n` into every partition.
    fn produce(&self, partitions: i32, from: u64, n: u64) {
        produce_with(&self.servers, &self.topic, partitions, from, n, |p, seq| {
            format!("p{p}-{seq}")
        });
    }

    /// The committed `.raw` files of the topic (keys relative to the store root).
    fn raw_files(&self) -> Vec<String> {
        let mut files = self.view.list(&format!("topics/{}", self.topic));
        files.retain(|f| f.ends_with(".raw"));
        files
    }

    /// Every line of every committed `.raw` file of the topic: value -> count.
    fn landed(&self) -> BTreeMap<String, u32> {
        let mut seen = BTreeMap::new();
        for file in self.raw_files() {
            let bytes = self.view.get(&file);
            for line in String::from_utf8_lossy(&bytes).lines() {
                *seen.entry(line.to_string()).or_insert(0) += 1;
            }
        }
        seen
    }

    fn files(&self) -> usize {
        self.raw_files().len()
    }

    fn expect_exactly(&self, partitions: i32, upto: u64) {
        let want: BTreeSet<String> = (0..partitions)
            .flat_map(|p| (0..upto).map(move |s| format!("p{p}-{s}")))
            .collect();
        wait_until("every record to land", LAND, || {
            self.landed().keys().cloned().collect::<BTreeSet<_>>() == want
        });
        let landed = self.landed();
        let dup: Vec<_> = landed.iter().filter(|(_, n)| **n != 1).collect();
        assert!(dup.is_empty(), "records landed more than once: {dup:?}");
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        delete_all(&self.view.store);
    }
}

fn wait_state(w: &Worker, name: &str, connector: &str, task: Option<&str>) -> Value {
    let mut last = Value::Null;
    wait_until(&format!("{name} to be {connector}/{task:?}"), START, || {
        let (code, status) = w.api("GET", &format!("/connectors/{name}/status"), None);
        last = status.clone();
        code == 200
            && status["connector"]["state"] == connector
            && match task {
                Some(t) => {
                    let tasks = status["tasks"].as_array().cloned().unwrap_or_default();
                    !tasks.is_empty() && tasks.iter().all(|x| x["state"] == t)
                }
                None => status["tasks"].as_array().is_some_and(Vec::is_empty),
            }
    });
    last
}

#[test]
fn seed_curl_flow_lands_exactly_once() {
    let s = setup("adclicks", 2);
    s.produce(2, 0, 10);
    let w = Worker::start(s.dir.path(), &s.props);
    let name = unique("clickstream");

    let (code, info) = w.api("POST", "/connectors", Some(s.seed_job(&name)));
    assert_eq!(code, 201, "{info}");
    assert_eq!(info["name"], name);
    assert_eq!(info["type"], "sink");
    assert_eq!(info["tasks"], json!([{"connector": name, "task": 0}]));
    assert_eq!(info["config"], s.seed_job(&name)["config"]);
    let (code, again) = w.api("POST", "/connectors", Some(s.seed_job(&name)));
    assert_eq!(code, 409, "{again}");
    assert_eq!(again["error_code"], 409);

    let (code, list) = w.api("GET", "/connectors", None);
    assert_eq!((code, list), (200, json!([name])));
    let (code, list) = w.api("GET", "/connectors/", None);
    assert_eq!((code, list), (200, json!([name])));
    let (code, config) = w.api("GET", &format!("/connectors/{name}/config"), None);
    assert_eq!((code, config), (200, s.seed_job(&name)["config"].clone()));

    s.expect_exactly(2, 10);
    let status = wait_state(&w, &name, "RUNNING", Some("RUNNING"));
    assert_eq!(status["type"], "sink");
    assert!(status["tasks"][0]["worker_id"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    let (code, expanded) = w.api("GET", "/connectors?expand=status&expand=info", None);
    assert_eq!(code, 200);
    assert_eq!(expanded[&name]["info"]["name"], name);
    assert_eq!(expanded[&name]["status"]["connector"]["state"], "RUNNING");

    let (code, offsets) = w.api("GET", &format!("/connectors/{name}/offsets"), None);
    assert_eq!(code, 200, "{offsets}");
    let mut got: Vec<(i64, i64)> = offsets["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            assert_eq!(o["partition"]["kafka_topic"], s.topic);
            (
                o["partition"]["kafka_partition"].as_i64().unwrap(),
                o["offset"]["kafka_offset"].as_i64().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, vec![(0, 10), (1, 10)]);
    let (code, topics) = w.api("GET", &format!("/connectors/{name}/topics"), None);
    assert_eq!(
        (code, topics),
        (200, json!({ &name: {"topics": [s.topic]} }))
    );

    let (code, metrics) = call_text(&format!("{}/metrics", w.base)).expect("GET /metrics");
    assert_eq!(code, 200);
    let values = parse_prometheus(&metrics);
    let key = format!("streamx_records_written_total{{job=\"{name}\"}}");
    assert_eq!(values.get(&key), Some(&20.0), "{metrics}");
    let key = format!("streamx_files_committed_total{{job=\"{name}\"}}");
    assert_eq!(values.get(&key), Some(&10.0), "{metrics}");

    let (code, _) = w.api("DELETE", &format!("/connectors/{name}"), None);
    assert_eq!(code, 204);
    let (code, err) = w.api("GET", &format!("/connectors/{name}"), None);
    assert_eq!(code, 404);
    assert_eq!(
        err,
        json!({"error_code": 404, "message": format!("Connector {name} not found")})
    );
    let (code, list) = w.api("GET", "/connectors", None);
    assert_eq!((code, list), (200, json!([])));
    let log = w.log();
    assert!(!log.contains("secret_access_key=test"), "{log}");
    w.stop();
}

/// Parses the Prometheus / OpenMetrics text format into `name{labels}` -> value, checking each
/// sample line's shape and that every family has a TYPE line.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut typed = BTreeSet::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split_whitespace().next().unwrap().to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line: name value");
        let family = series.split('{').next().unwrap();
        assert!(
            typed.iter().any(|t| family.starts_with(t.as_str())),
            "{family} has a TYPE line"
        );
        out.insert(series.to_string(), value.parse().expect("numeric value"));
    }
    out
}

#[test]
fn pause_resume_and_worker_restart_keep_the_stored_state() {
    let s = setup("pause", 1);
    s.produce(1, 0, 4);
    let w = Worker::start(s.dir.path(), &s.props);
    let name = unique("clickstream");
    let (code, body) = w.api("POST", "/connectors", Some(s.seed_job(&name)));
    assert_eq!(code, 201, "{body}");
    s.expect_exactly(1, 4);

    let (code, _) = w.api("PUT", &format!("/connectors/{name}/pause"), None);
    assert_eq!(code, 202);
    wait_state(&w, &name, "PAUSED", Some("PAUSED"));
    assert_eq!(assigned(&w, &name), 0.0, "a paused job owns no partitions");
    let files = s.files();
    s.produce(1, 4, 4);
    // Paused: the tasks have ended (PAUSED above), so nothing can write. Watch for a while.
    let watch = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < watch {
        assert_eq!(s.files(), files, "a file was written while paused");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A restarted worker brings the job back paused.
    w.stop();
    let w = Worker::start(s.dir.path(), &s.props);
    let (code, list) = w.api("GET", "/connectors", None);
    assert_eq!((code, list), (200, json!([name])));
    let (code, config) = w.api("GET", &format!("/connectors/{name}/config"), None);
    assert_eq!((code, config), (200, s.seed_job(&name)["config"].clone()));
    wait_until(
        "the restarted worker to report the job PAUSED",
        START,
        || {
            let (_, st) = w.api("GET", &format!("/connectors/{name}/status"), None);
            st["connector"]["state"] == "PAUSED"
        },
    );
    assert_eq!(s.files(), files);

    let (code, _) = w.api("PUT", &format!("/connectors/{name}/resume/"), None);
    assert_eq!(code, 202);
    s.expect_exactly(1, 8);
    wait_state(&w, &name, "RUNNING", Some("RUNNING"));

    // Stop: no tasks; restart of the worker keeps it stopped.
    let (code, _) = w.api("PUT", &format!("/connectors/{name}/stop"), None);
    assert_eq!(code, 204);
    wait_state(&w, &name, "STOPPED", None);
    w.stop();
    let w = Worker::start(s.dir.path(), &s.props);
    wait_state(&w, &name, "STOPPED", None);
    let (code, _) = w.api("DELETE", &format!("/connectors/{name}"), None);
    assert_eq!(code, 204);
    w.stop();
}

#[test]
fn a_bad_config_is_refused_naming_every_key_and_nothing_is_stored() {
    let s = setup("badcfg", 1);
    let w = Worker::start(s.dir.path(), &s.props);
    let name = unique("bad");
    let mut job = s.seed_job(&name);
    job["config"]["flush.sise"] = json!("2");
    job["config"]["s3.ur"] = json!("s3://x");
    let (code, err) = w.api("POST", "/connectors", Some(job.clone()));
    assert_eq!(code, 400, "{err}");
    assert_eq!(err["error_code"], 400);
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("Connector configuration is invalid"),
        "{message}"
    );
    for needle in ["flush.sise", "flush.size", "s3.ur"] {
        assert!(message.contains(needle), "{message}");
    }
    let mut job = s.seed_job(&name);
    job["config"]["flush.size"] = json!("two");
    let (code, err) = w.api(
        "PUT",
        &format!("/connectors/{name}/config"),
        Some(job["config"].clone()),
    );
    assert_eq!(code, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("flush.size"));
    let (code, list) = w.api("GET", "/connectors", None);
    assert_eq!((code, list), (200, json!([])));
    let (code, _) = w.api("GET", &format!("/connectors/{name}/config"), None);
    assert_eq!(code, 404);

    // The validate endpoint answers 200 with the errors on the key.
    let (code, infos) = w.api(
        "PUT",
        "/connector-plugins/S3SinkConnector/config/validate",
        Some(job["config"].clone()),
    );
    assert_eq!(code, 200, "{infos}");
    assert_eq!(infos["error_count"], 1);
    let flush = infos["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"]["name"] == "flush.size")
        .unwrap();
    assert_eq!(flush["value"]["value"], "two");
    assert!(!flush["value"]["errors"].as_array().unwrap().is_empty());

    // A worker started later finds nothing either.
    w.stop();
    let w = Worker::start(s.dir.path(), &s.props);
    let (code, list) = w.api("GET", "/connectors", None);
    assert_eq!((code, list), (200, json!([])));
    let (code, plugins) = w.api("GET", "/connector-plugins", None);
    assert_eq!(code, 200);
    assert!(plugins
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["class"] == "com.qubole.streamx.s3.S3SinkConnector" && p["type"] == "sink"));
    let (code, info) = w.api("GET", "/", None);
    assert_eq!(code, 200);
    assert_eq!(info["version"], "3.9.0");
    let (code, err) = w.api("GET", "/nope", None);
    assert_eq!((code, err["error_code"].clone()), (404, json!(404)));
    w.stop();
}

#[test]
fn python_connect_client_drives_the_api() {
    let s = setup("pyclient", 1);
    s.produce(1, 0, 6);
    let w = Worker::start(s.dir.path(), &s.props);
    let name = unique("clickstream");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/worker_client.py");
    let out = Command::new(service_env("STREAMX_TEST_PYTHON"))
        .args([script, &w.base, &s.seed_job(&name).to_string(), "6"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kafka-connect-py run failed:\n{}\n{}\nworker log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        w.log()
    );
    // The script waits for offset 6 before its lifecycle calls: all landed, exactly once.
    s.expect_exactly(1, 6);
    w.stop();
}

/// `streamx_partitions_assigned{job="<name>"}` of one worker.
fn assigned(w: &Worker, name: &str) -> f64 {
    let (code, text) = call_text(&format!("{}/metrics", w.base)).expect("GET /metrics");
    assert_eq!(code, 200);
    let key = format!("streamx_partitions_assigned{{job=\"{name}\"}}");
    parse_prometheus(&text).get(&key).copied().unwrap_or(0.0)
}

#[test]
fn two_workers_share_a_job_and_one_takes_over_when_the_other_is_killed() {
    let s = setup("shared", 2);
    s.produce(2, 0, 6);
    let a = Worker::start(s.dir.path(), &s.props);
    let mut b = Worker::start(s.dir.path(), &s.props);
    let name = unique("clickstream");
    let (code, body) = a.api("POST", "/connectors", Some(s.seed_job(&name)));
    assert_eq!(code, 201, "{body}");
    // Worker b learns of the job from the config topic and runs it too.
    wait_state(&b, &name, "RUNNING", Some("RUNNING"));
    wait_until(
        "the partitions to be split between the workers",
        LAND,
        || assigned(&a, &name) == 1.0 && assigned(&b, &name) == 1.0,
    );
    s.expect_exactly(2, 6);
    // Status is cluster-wide (status.storage.topic): either worker shows both workers' tasks.
    for w in [&a, &b] {
        wait_until("the status to show both workers' tasks", START, || {
            let (_, st) = w.api("GET", &format!("/connectors/{name}/status"), None);
            let tasks = st["tasks"].as_array().cloned().unwrap_or_default();
            let workers: BTreeSet<String> = tasks
                .iter()
                .map(|t| t["worker_id"].as_str().unwrap_or("").to_string())
                .collect();
            workers == BTreeSet::from([a.id(), b.id()])
                && tasks.iter().all(|t| t["state"] == "RUNNING")
        });
    }

    // SIGKILL b: a takes its partition over once b's session times out.
    signal(&b.child, libc::SIGKILL);
    let _ = b.child.wait();
    s.produce(2, 6, 6);
    s.expect_exactly(2, 12);
    assert_eq!(assigned(&a, &name), 2.0);
    drop(b);
    a.stop();

    // Both restarted (one configured by CONNECT_* variables only): the job comes back running
    // from the config topic, and what is produced next lands exactly once too.
    let a = Worker::start(s.dir.path(), &s.props);
    let b = Worker::start_with(s.dir.path(), &s.props, true);
    for w in [&a, &b] {
        let (code, list) = w.api("GET", "/connectors", None);
        assert_eq!((code, list), (200, json!([name])));
        wait_state(w, &name, "RUNNING", Some("RUNNING"));
    }
    s.produce(2, 12, 6);
    s.expect_exactly(2, 18);
    a.stop();
    b.stop();
}

#[test]
fn a_failed_job_reports_its_trace_and_restart_brings_it_back() {
    let s = setup("failed", 1);
    s.produce(1, 0, 4);
    let w = Worker::start(s.dir.path(), &s.props);
    let name = unique("clickstream");
    let mut job = s.seed_job(&name);
    let missing = unique("nobucket");
    job["config"]["s3.url"] = json!(format!("s3://{missing}/demo"));
    let (code, body) = w.api("POST", "/connectors", Some(job));
    assert_eq!(code, 201, "{body}");
    let status = wait_state(&w, &name, "RUNNING", Some("FAILED"));
    let trace = status["tasks"][0]["trace"].as_str().unwrap();
    assert!(trace.contains(&missing), "{trace}");
    assert!(!trace.contains("secret"), "{trace}");

    // The bucket appears; a restart of the failed tasks brings the job back.
    let endpoint = service_env("STREAMX_TEST_S3_ENDPOINT");
    let resp = http(&endpoint, "PUT", &format!("/{missing}"));
    assert!(resp.starts_with("HTTP/1.1 200"), "create bucket: {resp}");
    let (code, body) = w.api(
        "POST",
        &format!("/connectors/{name}/restart?onlyFailed=true"),
        None,
    );
    assert_eq!(code, 202, "{body}");
    wait_state(&w, &name, "RUNNING", Some("RUNNING"));
    wait_until("the 4 records to be committed", LAND, || {
        let (_, o) = w.api("GET", &format!("/connectors/{name}/offsets"), None);
        o["offsets"][0]["offset"]["kafka_offset"] == 4
    });
    let (code, _) = w.api("DELETE", &format!("/connectors/{name}"), None);
    assert_eq!(code, 204);
    w.stop();
    delete_all(&StoreView::new(&format!("s3://{missing}/demo"), &s.options).store);
}

/// `streamx ingest` with `metrics.listen` serves the same counters (one job) while it runs.
#[test]
fn ingest_serves_metrics_with_metrics_listen() {
    let s = setup("ingestmetrics", 1);
    s.produce(1, 0, 5);
    let port = free_port();
    let out = s.dir.path().join("out");
    let name = unique("metrics-job");
    let pairs: Vec<(String, String)> = [
        ("name", name.as_str()),
        ("bootstrap.servers", s.servers.as_str()),
        ("topics", s.topic.as_str()),
        ("store.url", out.to_str().unwrap()),
        ("input.format", "raw"),
        ("format.class", "raw"),
        ("flush.size", "5"),
        ("consumer.session.timeout.ms", "8000"),
        ("metrics.listen", &format!("127.0.0.1:{port}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut child = Command::new(streamx_bin())
        .arg("ingest")
        .args(set_args(&pairs))
        .env("STREAMX_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let key = format!("streamx_records_written_total{{job=\"{name}\"}}");
    wait_until("ingest's /metrics to count 5 rows written", LAND, || {
        let (code, text) = match call_text(&format!("http://127.0.0.1:{port}/metrics")) {
            Some(r) => r,
            None => return false,
        };
        code == 200 && parse_prometheus(&text).get(&key) == Some(&5.0)
    });
    terminate(&mut child);
}

/// A GET returning the body as text; `None` while nothing listens.
fn call_text(url: &str) -> Option<(u16, String)> {
    let mut resp = ureq::get(url).call().ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.body_mut().read_to_string().ok()?))
}
