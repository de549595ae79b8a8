//! `streamx worker` test helpers: the real binary started with a properties file or with
//! `CONNECT_*` variables, HTTP calls to its REST API, a topic, a moto bucket and a Hadoop conf
//! dir per test, and a Prometheus text parser.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::crash::{signal, wait_exit, StoreView};
use super::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use serde_json::{json, Value};

pub const START: Duration = Duration::from_secs(60);
pub const LAND: Duration = Duration::from_secs(120);

/// A running `streamx worker`; SIGTERM (then SIGKILL) on drop.
pub struct Worker {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Worker {
    pub fn start(dir: &Path, props: &str) -> Worker {
        Worker::start_with(dir, props, false)
    }

    /// With `env`, the worker gets no file: every key comes as a `CONNECT_*` variable
    /// (cp-kafka-connect's mapping).
    pub fn start_with(dir: &Path, props: &str, env: bool) -> Worker {
        Worker::start_logging(dir, props, env, "info,librdkafka=warn")
    }

    /// [`Worker::start_with`], logging at `filter` (`STREAMX_LOG`).
    pub fn start_logging(dir: &Path, props: &str, env: bool, filter: &str) -> Worker {
        let port = free_port();
        let props = format!("{props}\nlisteners=http://127.0.0.1:{port}\n");
        let log = dir.join(format!("worker-{port}.log"));
        let mut cmd = Command::new(streamx_bin());
        cmd.arg("worker")
            .env("STREAMX_LOG", filter)
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
        // /health: open also when the API asks for basic auth.
        wait_until("the worker to answer GET /health", START, || {
            call("GET", &format!("{}/health", w.base), None).0 == 200
        });
        w
    }

    /// With the caller's own `listeners=` line in `props` (an https listener, say) and `base`
    /// the URL it serves; ready once `ready()` holds. Panics with the worker's log when the
    /// worker exits first (a listener it refuses).
    pub fn start_with_listener(
        dir: &Path,
        props: &str,
        base: &str,
        ready: impl Fn() -> bool,
    ) -> Worker {
        let mut w = spawn_worker(dir, props);
        w.base = base.to_string();
        wait_until("the worker to answer on its listener", START, || {
            if let Some(status) = w.child.try_wait().unwrap() {
                panic!("the worker exited ({status}) before serving:\n{}", w.log());
            }
            ready()
        });
        w
    }

    /// The `worker_id` statuses show for this worker.
    pub fn id(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call(method, &format!("{}{path}", self.base), body)
    }

    /// Stops the worker with SIGTERM and waits for it to exit.
    pub fn stop(mut self) {
        terminate(&mut self.child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// `streamx worker --config <props as a file>`, not waited for (`base` is empty).
pub fn spawn_worker(dir: &Path, props: &str) -> Worker {
    let name = unique("worker");
    let file = dir.join(format!("{name}.properties"));
    std::fs::write(&file, props).unwrap();
    let log = dir.join(format!("{name}.log"));
    let child = Command::new(streamx_bin())
        .args(["worker", "--config", file.to_str().unwrap()])
        .env("STREAMX_LOG", "info,librdkafka=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Worker {
        child,
        base: String::new(),
        log,
    }
}

/// Runs a worker that must refuse to start: its exit status and log (panics if it is still
/// running after `within`).
pub fn worker_refused(
    dir: &Path,
    props: &str,
    within: Duration,
) -> (std::process::ExitStatus, String) {
    let mut w = spawn_worker(dir, props);
    let status = wait_exit(&mut w.child, within)
        .unwrap_or_else(|| panic!("the worker is still running after {within:?}:\n{}", w.log()));
    (status, w.log())
}

pub fn terminate(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    signal(child, libc::SIGTERM);
    if wait_exit(child, Duration::from_secs(60)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP call: `(status, JSON body or Null)`.
pub fn call(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let (code, _, body) = call_as(method, url, body, None);
    (code, body)
}

/// One HTTP call, with basic auth credentials `user:password` when given: `(status, its
/// WWW-Authenticate header, JSON body or Null)`; status 0 while nothing listens.
pub fn call_as(
    method: &str,
    url: &str,
    body: Option<Value>,
    credentials: Option<&str>,
) -> (u16, Option<String>, Value) {
    use base64::Engine;
    use ureq::typestate::{WithBody, WithoutBody};
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent();
    let auth = credentials.map(|c| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(c);
        format!("Basic {encoded}")
    });
    let bare = |r: ureq::RequestBuilder<WithoutBody>| match &auth {
        Some(a) => r.header("Authorization", a).call(),
        None => r.call(),
    };
    let sent = |r: ureq::RequestBuilder<WithBody>, b: Option<Value>| {
        let r = match &auth {
            Some(a) => r.header("Authorization", a),
            None => r,
        };
        match b {
            Some(b) => r
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            None => r.send_empty(),
        }
    };
    let result = match method {
        "GET" => bare(agent.get(url)),
        "DELETE" => bare(agent.delete(url)),
        "POST" => sent(agent.post(url), body),
        "PUT" => sent(agent.put(url), body),
        "PATCH" => sent(agent.patch(url), body),
        m => panic!("unsupported method {m}"),
    };
    match result {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            let json = serde_json::from_str(&text).unwrap_or(Value::Null);
            (status, challenge, json)
        }
        // Not listening yet (or any more).
        Err(_) => (0, None, Value::Null),
    }
}

pub fn create_topic(servers: &str, topic: &str, partitions: i32) {
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
pub struct Setup {
    pub servers: String,
    pub topic: String,
    pub bucket: String,
    /// The `store.*` options that reach moto.
    pub options: BTreeMap<String, String>,
    pub view: StoreView,
    pub dir: tempfile::TempDir,
    pub props: String,
}

pub fn setup(prefix: &str, partitions: i32) -> Setup {
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
    pub fn seed_job(&self, name: &str) -> Value {
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

    /// POSTs [`Setup::seed_job`] under a fresh name to `w` (201 expected); returns the name.
    pub fn post_seed_job(&self, w: &Worker) -> String {
        let name = unique("clickstream");
        let (code, body) = w.api("POST", "/connectors", Some(self.seed_job(&name)));
        assert_eq!(code, 201, "{body}");
        name
    }

    /// Produces values `p<p>-<seq>` for seq in `from..from+n` into every partition.
    pub fn produce(&self, partitions: i32, from: u64, n: u64) {
        produce_with(&self.servers, &self.topic, partitions, from, n, |p, seq| {
            format!("p{p}-{seq}")
        });
    }

    /// The committed `.raw` files of the topic (keys relative to the store root).
    pub fn raw_files(&self) -> Vec<String> {
        let mut files = self.view.list(&format!("topics/{}", self.topic));
        files.retain(|f| f.ends_with(".raw"));
        files
    }

    /// Every line of every committed `.raw` file of the topic: value -> count.
    pub fn landed(&self) -> BTreeMap<String, u32> {
        let mut seen = BTreeMap::new();
        for file in self.raw_files() {
            let bytes = self.view.get(&file);
            for line in String::from_utf8_lossy(&bytes).lines() {
                *seen.entry(line.to_string()).or_insert(0) += 1;
            }
        }
        seen
    }

    pub fn files(&self) -> usize {
        self.raw_files().len()
    }

    pub fn expect_exactly(&self, partitions: i32, upto: u64) {
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

pub fn wait_state(w: &Worker, name: &str, connector: &str, task: Option<&str>) -> Value {
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

/// Parses the Prometheus / OpenMetrics text format into `name{labels}` -> value, checking each
/// sample line's shape and that every family has a TYPE line.
pub fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
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

/// `streamx_partitions_assigned{job="<name>"}` of one worker.
pub fn assigned(w: &Worker, name: &str) -> f64 {
    let (code, text) = call_text(&format!("{}/metrics", w.base)).expect("GET /metrics");
    assert_eq!(code, 200);
    let key = format!("streamx_partitions_assigned{{job=\"{name}\"}}");
    parse_prometheus(&text).get(&key).copied().unwrap_or(0.0)
}

/// A GET returning the body as text; `None` while nothing listens.
pub fn call_text(url: &str) -> Option<(u16, String)> {
    let mut resp = ureq::get(url).call().ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.body_mut().read_to_string().ok()?))
}

/// One sample of a `/metrics` text as prometheus_client's strict OpenMetrics parser reads it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses `/metrics` text with prometheus_client (PyPI; tests/prometheus_parse.py), failing the
/// test when the text is not valid OpenMetrics.
pub fn parse_with_prometheus_client(text: &str) -> Vec<Sample> {
    use std::io::Write;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/prometheus_parse.py");
    let mut child = Command::new(service_env("STREAMX_TEST_PYTHON"))
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejects the text:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the sample `name` whose labels include every one of `labels`.
pub fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}
