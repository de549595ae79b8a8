//! Helpers of the Hive tests (tests/hive.rs, tests/hive_metastore.rs): the test metastore's
//! address, a client, a database dropped when the test ends, a private metastore of a test's
//! own, and Spark SQL through scripts/spark_query.py.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use streamx::hive::metastore::{MetastoreClient, MetastoreConfig};

/// A variable `scripts/hive-metastore.sh up` writes, from the environment or from the env file
/// (`$STREAMX_ENV_FILE`, default /tmp/streamx-services/env). A missing one fails the test with
/// instructions: these tests are never skipped.
pub fn env_value(key: &str) -> String {
    if let Ok(v) = std::env::var(key) {
        if !v.is_empty() {
            return v;
        }
    }
    let file = std::env::var("STREAMX_ENV_FILE")
        .unwrap_or_else(|_| "/tmp/streamx-services/env".to_string());
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .unwrap_or_else(|| {
            panic!(
                "{key} is neither set nor in {file}: run `scripts/test.sh`, or start the test \
                 metastore with `scripts/hive-metastore.sh up`"
            )
        })
}

/// `STREAMX_TEST_HIVE_URIS`: the shared test metastore.
pub fn uris() -> String {
    env_value("STREAMX_TEST_HIVE_URIS")
}

pub fn client_for(uris: &str) -> MetastoreClient {
    let mut config = MetastoreConfig::from_uris(uris).expect("metastore URIs");
    config.io_timeout = Duration::from_secs(120);
    MetastoreClient::new(config).expect("client")
}

pub fn client() -> MetastoreClient {
    client_for(&uris())
}

/// A unique database name, and a guard that drops it (cascade) when the test ends.
pub struct TestDb {
    pub name: String,
    uris: String,
}

impl TestDb {
    pub fn new(prefix: &str) -> Self {
        Self::on(prefix, &uris())
    }

    /// A database on the metastore at `uris`.
    pub fn on(prefix: &str, uris: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        TestDb {
            name: format!(
                "sx_{prefix}_{}_{}_{}",
                std::process::id(),
                nanos,
                N.fetch_add(1, Ordering::Relaxed)
            ),
            uris: uris.to_string(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Hive 2.3 answers drop_database of a missing database with a MetaException (an NPE in
        // its listener), not NoSuchObjectException: look first.
        let mut c = client_for(&self.uris);
        if c.get_database(&self.name).is_ok() {
            if let Err(e) = c.drop_database(&self.name, true, true) {
                eprintln!("cleanup of database {} failed: {e}", self.name);
            }
        }
    }
}

/// A private metastore (own port and state dir) run by scripts/hive-metastore.sh; stopped when
/// dropped. `up` keeps the state of an earlier `up` when `keep_state` (a restart), otherwise
/// starts empty.
pub struct PrivateMetastore {
    pub port: u16,
    state: tempfile::TempDir,
}

impl PrivateMetastore {
    pub fn new() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        PrivateMetastore {
            port,
            state: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn uris(&self) -> String {
        format!("thrift://127.0.0.1:{}", self.port)
    }

    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/hive-metastore.sh")
    }

    pub fn run(&self, action: &str) {
        self.run_with(action, false)
    }

    pub fn run_with(&self, action: &str, keep_state: bool) {
        let status = Command::new("bash")
            .arg(Self::script())
            .arg(action)
            .env("STREAMX_HIVE_PORT", self.port.to_string())
            .env("STREAMX_HIVE_STATE_DIR", self.state.path().join("hive"))
            .env("STREAMX_ENV_FILE", self.state.path().join("env"))
            .env(
                "STREAMX_HIVE_KEEP_STATE",
                if keep_state { "1" } else { "0" },
            )
            .status()
            .expect("run hive-metastore.sh");
        assert!(status.success(), "hive-metastore.sh {action} failed");
    }
}

impl Drop for PrivateMetastore {
    fn drop(&mut self) {
        self.run("down");
    }
}

/// Runs one Spark SQL statement against the metastore at `uris`; the rows as JSON objects.
pub fn spark_query(uris: &str, sql: &str) -> Vec<serde_json::Value> {
    let python = env_value("STREAMX_TEST_PYSPARK_PYTHON");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/spark_query.py");
    let out = Command::new(&python)
        .arg(&script)
        .args(["--uris", uris, "--sql", sql])
        .output()
        .expect("run spark_query.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "spark_query.py failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}
