//! The worker's own settings (`worker.properties`, Kafka Connect distributed-mode keys), from a
//! properties file and `CONNECT_*` environment variables mapped as cp-kafka-connect maps them:
//! drop the prefix, lower-case, `___` -> `-`, `__` -> `_`, `_` -> `.`
//! (`CONNECT_BOOTSTRAP_SERVERS` -> `bootstrap.servers`). Environment variables win over the file.
//!
//! | key | meaning here |
//! |---|---|
//! | `bootstrap.servers` | brokers of the config topic, and the jobs' default (required) |
//! | `group.id` | the worker cluster's name; job consumer groups are `connect-<job>` (required) |
//! | `config.storage.topic` | the job config topic (required; created with 1 partition, compacted) |
//! | `status.storage.topic` | where workers publish their tasks' states; unset = status is this worker's |
//! | `offset.storage.topic` | accepted; offsets live in the store's commits |
//! | `listeners` | `http://host:port` or `https://host:port`, comma-separated; an empty host binds 127.0.0.1 (default `http://:8083`) |
//! | `listeners.https.ssl.*` (else `ssl.*`) | the https listener's keystore, truststore and `ssl.client.auth` ([`super::tls`]) |
//! | `rest.host.name`, `rest.port` | the older spelling of `listeners` |
//! | `rest.advertised.host.name`, `rest.advertised.port` | the `worker_id` shown in status |
//! | `key.converter`, `value.converter` and their `.*` | defaults for every job's config |
//! | `consumer.*` | defaults for every job's consumer |
//! | `security.protocol`, `sasl.*`, `ssl.*` | the worker's Kafka clients (Java forms mapped, see `config::kafka_security`) and every job's Kafka clients (as top-level job keys) |
//! | `config.providers`, `config.providers.*` | accepted; `${env:..}` and `${file:..}` always resolve |
//! | `rest.basic.auth.user`, `rest.basic.auth.password` | optional basic auth of the REST API ([`super::auth`]) |
//! | `task.restart.backoff.initial.ms` | StreamX: wait before a failed task's first automatic restart (default 1000) |
//! | `task.restart.backoff.max.ms` | StreamX: the longest wait, doubling up to it; 0 = no automatic restarts (default 60000; [`super::restart`]) |
//! | `memory.budget.bytes` | StreamX: the worker's one memory budget, shared by every task of every job (default 536870912, as `streamx ingest`'s; a job's own key is ignored, [`super::jobs`]) |
//!
//! Every other key a Connect worker accepts (images set many) is logged once and ignored; a value
//! that cannot be right (`rest.port=abc`, a listener that is not `http(s)://host:port`, an https
//! keystore that cannot be read) is an error.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::restart::RestartPolicy;
use crate::config::keys;

/// What is wrong with the worker's settings.
#[derive(Debug, thiserror::Error)]
pub enum WorkerConfigError {
    #[error("cannot read worker config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] crate::config::ConfigError),
    #[error("missing required worker key '{0}' (as in Kafka Connect distributed mode)")]
    Missing(&'static str),
    #[error("invalid value {value:?} for worker key '{key}': {allowed}")]
    Invalid {
        key: String,
        value: String,
        allowed: &'static str,
    },
    /// The https listener's settings cannot be honoured (passwords shown as `[hidden]`).
    #[error("cannot serve the REST API over TLS: worker key '{key}' = {value:?}: {why}")]
    Tls {
        key: String,
        value: String,
        why: String,
    },
}

/// One address the REST API listens on.
#[derive(Debug, Clone)]
pub struct RestListener {
    pub addr: SocketAddr,
    /// Set for `https://` listeners.
    pub tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>,
}

/// The validated worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub bootstrap_servers: String,
    pub group_id: String,
    pub config_topic: String,
    /// `status.storage.topic`: every worker's task states, for a cluster-wide `/status`.
    pub status_topic: Option<String>,
    /// Where the REST API listens (the first of `listeners`).
    pub listen: SocketAddr,
    /// Every listener (`listeners=http://..,https://..`), the first being `listen`.
    pub listeners: Vec<RestListener>,
    /// `host:port` other workers and tools see: the `worker_id` of statuses.
    pub advertised: String,
    /// Keys every job's config starts from (converters, `consumer.*`, client security).
    pub job_defaults: BTreeMap<String, String>,
    /// librdkafka settings of the worker's own clients (security).
    pub client: BTreeMap<String, String>,
    /// The REST API's basic auth credentials, when set.
    pub basic_auth: Option<super::auth::BasicAuth>,
    /// When failed tasks restart by themselves (`task.restart.backoff.*`).
    pub restart: RestartPolicy,
    /// `memory.budget.bytes`: the one budget every task of every job draws on.
    pub memory_budget_bytes: u64,
}

/// `task.restart.backoff.initial.ms`.
pub const RESTART_INITIAL: &str = "task.restart.backoff.initial.ms";
/// `task.restart.backoff.max.ms`.
pub const RESTART_MAX: &str = "task.restart.backoff.max.ms";
/// `memory.budget.bytes`: the worker's, for all its tasks.
pub const MEMORY_BUDGET: &str = "memory.budget.bytes";

/// Worker keys that are used; everything else is logged once and ignored.
const USED: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "config.storage.topic",
    "status.storage.topic",
    "listeners",
    "rest.host.name",
    "rest.port",
    "rest.advertised.host.name",
    "rest.advertised.port",
    super::auth::USER,
    super::auth::PASSWORD,
    RESTART_INITIAL,
    RESTART_MAX,
    MEMORY_BUDGET,
];

/// True for client security keys, shared by the worker's clients and every job's consumer
/// (`ssl.client.auth` is a server key: the https listener's fallback, not a client's).
fn is_client_key(key: &str) -> bool {
    crate::config::kafka_security::is_security_key(key) && key != "ssl.client.auth"
}

/// Keys of the https listener ([`super::tls`]), used there.
fn is_listener_key(key: &str) -> bool {
    key.starts_with(super::tls::PREFIX) || key == "ssl.client.auth"
}

/// True for keys that become job defaults as they are.
fn is_job_default(key: &str) -> bool {
    key.starts_with("key.converter") || key.starts_with("value.converter")
}

/// `CONNECT_*` variables as worker keys, cp-kafka-connect's mapping.
pub fn env_to_keys(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.filter_map(|(name, value)| {
        let rest = name.strip_prefix("CONNECT_")?;
        if rest.is_empty() {
            return None;
        }
        let key = rest
            .to_lowercase()
            .replace("___", "\u{1}")
            .replace("__", "\u{2}")
            .replace('_', ".")
            .replace('\u{1}', "-")
            .replace('\u{2}', "_");
        Some((key, value))
    })
    .collect()
}

impl WorkerConfig {
    /// The file's keys, then `CONNECT_*` variables from `env` (winning).
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<WorkerConfig, WorkerConfigError> {
        let mut raw = BTreeMap::new();
        if let Some(path) = file {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| WorkerConfigError::Read {
                path: shown.clone(),
                source,
            })?;
            raw.extend(crate::config::properties::parse(&text, &shown)?);
        }
        raw.extend(env_to_keys(env));
        WorkerConfig::from_map(&raw)
    }

    /// Validates the worker keys.
    pub fn from_map(raw: &BTreeMap<String, String>) -> Result<WorkerConfig, WorkerConfigError> {
        let get = |k: &str| raw.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let required = |k: &'static str| get(k).ok_or(WorkerConfigError::Missing(k));
        let listeners = rest_listeners(raw, get("listeners"))?;
        let listen = match listeners.first() {
            Some(first) => first.addr,
            None => legacy_addr(get("rest.host.name"), get("rest.port"))?,
        };
        let advertised_port = match get("rest.advertised.port") {
            Some(p) => port("rest.advertised.port", p)?,
            None => listen.port(),
        };
        let advertised_host = get("rest.advertised.host.name")
            .map(str::to_string)
            .unwrap_or_else(|| listen.ip().to_string());
        let mut job_defaults = BTreeMap::new();
        let mut client = BTreeMap::new();
        for (key, value) in raw {
            if is_client_key(key) {
                // Top-level in jobs too: their consumer, end-check client and DLQ producer.
                client.insert(key.clone(), value.clone());
                job_defaults.insert(key.clone(), value.clone());
            } else if (is_job_default(key) && keys::is_accepted(key))
                || key.starts_with("consumer.")
            {
                job_defaults.insert(key.clone(), value.clone());
            } else if !USED.contains(&key.as_str()) && !is_listener_key(key) {
                keys::log_ignored_once(key, "a Kafka Connect worker key StreamX does not use");
            }
        }
        let bootstrap_servers = required("bootstrap.servers")?.to_string();
        Ok(WorkerConfig {
            client: worker_client(&client, &bootstrap_servers)?,
            bootstrap_servers,
            group_id: required("group.id")?.to_string(),
            config_topic: required("config.storage.topic")?.to_string(),
            status_topic: get("status.storage.topic").map(str::to_string),
            listen,
            listeners: if listeners.is_empty() {
                vec![RestListener {
                    addr: listen,
                    tls: None,
                }]
            } else {
                listeners
            },
            advertised: format!("{advertised_host}:{advertised_port}"),
            job_defaults,
            basic_auth: super::auth::BasicAuth::from_keys(|k| get(k).map(str::to_string))?,
            restart: restart_policy(get(RESTART_INITIAL), get(RESTART_MAX))?,
            memory_budget_bytes: memory_budget(get(MEMORY_BUDGET))?,
        })
    }
}

/// The worker's own clients' librdkafka settings (config and status topics): the Java client's
/// forms (sasl.jaas.config, truststores, MSK IAM) mapped.
fn worker_client(
    client: &BTreeMap<String, String>,
    bootstrap_servers: &str,
) -> Result<BTreeMap<String, String>, crate::config::ConfigError> {
    use crate::config::kafka_security;
    let mut out = kafka_security::to_librdkafka("", client)?;
    kafka_security::resolve_msk_region(&mut out, bootstrap_servers)?;
    Ok(out)
}

/// The automatic restart policy from its two keys (defaults for the unset ones).
fn restart_policy(
    initial: Option<&str>,
    max: Option<&str>,
) -> Result<RestartPolicy, WorkerConfigError> {
    let ms = |key: &str, value: Option<&str>, min: u64| -> Result<Option<Duration>, _> {
        let Some(v) = value else {
            return Ok(None);
        };
        match v.parse::<u64>() {
            Ok(n) if n >= min => Ok(Some(Duration::from_millis(n))),
            _ => Err(WorkerConfigError::Invalid {
                key: key.to_string(),
                value: v.to_string(),
                allowed: if min == 0 {
                    "milliseconds, 0 or more (0: failed tasks are not restarted automatically)"
                } else {
                    "milliseconds, 1 or more"
                },
            }),
        }
    };
    let default = RestartPolicy::default();
    let max = ms(RESTART_MAX, max, 0)?.unwrap_or(default.max);
    let initial = ms(RESTART_INITIAL, initial, 1)?.unwrap_or(default.initial);
    Ok(RestartPolicy {
        // A first wait above the cap is the cap.
        initial: if max.is_zero() {
            initial
        } else {
            initial.min(max)
        },
        max,
    })
}

/// The worker's `memory.budget.bytes`: as `streamx ingest`'s (bytes, at least 1 MiB, 512 MiB
/// when unset).
fn memory_budget(value: Option<&str>) -> Result<u64, WorkerConfigError> {
    use crate::config::{MEMORY_BUDGET_DEFAULT, MEMORY_BUDGET_MIN};
    match value.map(str::parse::<u64>) {
        None => Ok(MEMORY_BUDGET_DEFAULT),
        Some(Ok(n)) if n >= MEMORY_BUDGET_MIN => Ok(n),
        Some(_) => Err(WorkerConfigError::Invalid {
            key: MEMORY_BUDGET.into(),
            value: value.unwrap_or_default().to_string(),
            allowed: "bytes, a whole number >= 1048576 (1 MiB)",
        }),
    }
}

fn port(key: &str, value: &str) -> Result<u16, WorkerConfigError> {
    value.parse().map_err(|_| WorkerConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        allowed: "a port number 0-65535",
    })
}

fn ip(key: &str, h: &str) -> Result<IpAddr, WorkerConfigError> {
    match h.trim_start_matches('[').trim_end_matches(']') {
        "" | "localhost" => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        h => h.parse().map_err(|_| WorkerConfigError::Invalid {
            key: key.to_string(),
            value: h.to_string(),
            allowed: "an IP address, localhost or empty (127.0.0.1)",
        }),
    }
}

/// Every `http://` and `https://` listener of `listeners` (none when unset). An empty host
/// means 127.0.0.1 (not every interface: say `0.0.0.0` for that). The https listeners share
/// one TLS configuration ([`super::tls::server_config`]), read once.
fn rest_listeners(
    raw: &BTreeMap<String, String>,
    listeners: Option<&str>,
) -> Result<Vec<RestListener>, WorkerConfigError> {
    let Some(list) = listeners else {
        return Ok(Vec::new());
    };
    let bad = || WorkerConfigError::Invalid {
        key: "listeners".into(),
        value: list.to_string(),
        allowed: "http://host:port or https://host:port, comma-separated",
    };
    let mut tls = None;
    let mut out = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (https, hostport) = match entry.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
            _ => return Err(bad()),
        };
        let (h, p) = hostport.rsplit_once(':').ok_or_else(bad)?;
        let addr = SocketAddr::new(ip("listeners", h)?, port("listeners", p)?);
        let tls = match (https, &tls) {
            (false, _) => None,
            (true, Some(config)) => Some(std::sync::Arc::clone(config)),
            (true, None) => Some(tls.insert(super::tls::server_config(raw)?).clone()),
        };
        out.push(RestListener { addr, tls });
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// `rest.host.name`:`rest.port`, else 127.0.0.1:8083.
fn legacy_addr(
    host: Option<&str>,
    rest_port: Option<&str>,
) -> Result<SocketAddr, WorkerConfigError> {
    let p = match rest_port {
        Some(p) => port("rest.port", p)?,
        None => 8083,
    };
    Ok(SocketAddr::new(
        ip("rest.host.name", host.unwrap_or(""))?,
        p,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const BASE: &[(&str, &str)] = &[
        ("bootstrap.servers", "b:9092"),
        ("group.id", "g"),
        ("config.storage.topic", "cfg"),
    ];

    #[test]
    fn env_mapping_as_cp_kafka_connect() {
        let env = [
            ("CONNECT_BOOTSTRAP_SERVERS", "x:9092"),
            ("CONNECT_CONFIG_STORAGE_TOPIC", "c"),
            ("CONNECT_VALUE_CONVERTER_SCHEMA__REGISTRY___URL", "u"),
            ("CONNECT_REST_ADVERTISED_HOST_NAME", "h"),
            ("OTHER", "1"),
            ("CONNECT_", "2"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let keys = env_to_keys(env.into_iter());
        assert_eq!(
            keys,
            [
                ("bootstrap.servers", "x:9092"),
                ("config.storage.topic", "c"),
                ("value.converter.schema_registry-url", "u"),
                ("rest.advertised.host.name", "h"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }

    #[test]
    fn defaults_bind_loopback_8083() {
        let c = WorkerConfig::from_map(&map(BASE)).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8083".parse().unwrap());
        assert_eq!(c.advertised, "127.0.0.1:8083");
        let mut m = map(BASE);
        m.insert("listeners".into(), "http://:18083".into());
        assert_eq!(
            WorkerConfig::from_map(&m).unwrap().listen,
            "127.0.0.1:18083".parse().unwrap()
        );
        m.insert("listeners".into(), "http://0.0.0.0:8084".into());
        assert_eq!(
            WorkerConfig::from_map(&m).unwrap().listen,
            "0.0.0.0:8084".parse().unwrap()
        );
    }

    #[test]
    fn job_defaults_and_client_keys() {
        let mut m = map(BASE);
        for (k, v) in [
            (
                "value.converter",
                "org.apache.kafka.connect.converters.ByteArrayConverter",
            ),
            ("value.converter.schemas.enable", "false"),
            ("key.converter.schema.registry.url", "http://r"),
            ("security.protocol", "SASL_SSL"),
            ("consumer.max.poll.records", "500"),
            ("plugin.path", "/usr/share/java"),
        ] {
            m.insert(k.into(), v.into());
        }
        let c = WorkerConfig::from_map(&m).unwrap();
        assert_eq!(c.client["security.protocol"], "SASL_SSL");
        assert_eq!(c.job_defaults["security.protocol"], "SASL_SSL");
        assert_eq!(c.job_defaults["value.converter.schemas.enable"], "false");
        assert!(c.job_defaults.contains_key("value.converter"));
        assert!(c.job_defaults.contains_key("consumer.max.poll.records"));
        // Accepted by jobs (and unused: keys are written as bytes).
        assert!(c
            .job_defaults
            .contains_key("key.converter.schema.registry.url"));
        assert!(!c.job_defaults.contains_key("plugin.path"));
    }

    #[test]
    fn restart_backoff_keys() {
        let c = WorkerConfig::from_map(&map(BASE)).unwrap();
        assert_eq!(c.restart, RestartPolicy::default());
        let mut m = map(BASE);
        m.insert(RESTART_INITIAL.into(), "250".into());
        m.insert(RESTART_MAX.into(), "5000".into());
        let p = WorkerConfig::from_map(&m).unwrap().restart;
        assert_eq!(
            (p.initial, p.max),
            (Duration::from_millis(250), Duration::from_secs(5))
        );
        m.insert(RESTART_MAX.into(), "0".into());
        assert!(!WorkerConfig::from_map(&m).unwrap().restart.enabled());
        m.insert(RESTART_MAX.into(), "100".into());
        let p = WorkerConfig::from_map(&m).unwrap().restart;
        assert_eq!(p.initial, Duration::from_millis(100), "capped");
        for (key, bad) in [
            (RESTART_MAX, "-1"),
            (RESTART_INITIAL, "0"),
            (RESTART_INITIAL, "1s"),
        ] {
            let mut m = map(BASE);
            m.insert(key.into(), bad.into());
            let e = WorkerConfig::from_map(&m).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn memory_budget_is_the_worker_key_with_ingest_default() {
        let c = WorkerConfig::from_map(&map(BASE)).unwrap();
        assert_eq!(c.memory_budget_bytes, 512 << 20);
        let mut m = map(BASE);
        m.insert(MEMORY_BUDGET.into(), "268435456".into());
        assert_eq!(
            WorkerConfig::from_map(&m).unwrap().memory_budget_bytes,
            256 << 20
        );
        for bad in ["1000", "256MiB"] {
            m.insert(MEMORY_BUDGET.into(), bad.into());
            let e = WorkerConfig::from_map(&m).unwrap_err().to_string();
            assert!(e.contains(MEMORY_BUDGET) && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn wrong_values_are_errors() {
        let mut m = map(BASE);
        m.insert("rest.port".into(), "abc".into());
        let e = WorkerConfig::from_map(&m).unwrap_err().to_string();
        assert!(e.contains("rest.port"), "{e}");
        let mut m = map(BASE);
        m.insert("listeners".into(), "ftp://:8443".into());
        let e = WorkerConfig::from_map(&m).unwrap_err().to_string();
        assert!(e.contains("listeners"), "{e}");
        // https without a keystore: the key it needs is named.
        m.insert("listeners".into(), "http://:8083,https://:8443".into());
        let e = WorkerConfig::from_map(&m).unwrap_err().to_string();
        assert!(e.contains("'ssl.keystore.location'"), "{e}");
        let e = WorkerConfig::from_map(&map(&BASE[..2])).unwrap_err();
        assert!(e.to_string().contains("config.storage.topic"), "{e}");
    }
}
