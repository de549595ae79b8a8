//! Configuration: one flat key/value map read from a `.properties` file, `--set key=value`
//! overrides and `STREAMX_*` environment variables, validated into a typed [`Config`] before
//! anything starts.
//!
//! Owns: the registry of known keys ([`keys`]), the properties parser ([`properties`]), the
//! declared-schema DDL parser ([`schema_ddl`]) and every rule that turns strings into typed
//! settings: `validate` (one function per section), `values` (shared parsers and name tables),
//! [`hive`] (the `hive.*` keys), `hadoop` (`hadoop.conf.dir`), [`formats`]. Every entry point
//! (`streamx ingest`, `check-config`, `compact`, the worker's REST API) validates through
//! [`crate::job::prepare`], which adds the SQL check. Errors name the key, the value and what is allowed; unknown keys get a "did you mean".
//! Secrets (`*.password`, `*secret*`, tokens, JAAS configs, credentials, and the user info of any
//! URL) are shown as `[hidden]` by [`Config::redacted`] and in error messages, and never logged;
//! `${env:..}` / `${file:..}` references resolve when a config is loaded ([`secrets`]).

pub mod formats;
mod hadoop;
pub mod hive;
mod jaas;
mod java_stores;
pub mod kafka_security;
pub mod keys;
pub mod msk_iam;
pub mod properties;
pub mod reference;
pub mod schema_ddl;
pub mod secrets;
mod store_encryption;
#[cfg(test)]
mod store_encryption_tests;
mod validate;
pub use validate::check_job_name;
#[cfg(test)]
mod validate_tests;
mod values;

use std::collections::BTreeMap;
use std::time::Duration;

use arrow::datatypes::SchemaRef;

use crate::Origin;

/// Where a configuration value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(String),
    Override,
    Env(String),
    Default,
}

/// Everything that can be wrong with a configuration. Always the user's to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: cannot parse line {text:?} (expected key=value)")]
    Syntax {
        path: String,
        line: usize,
        text: String,
    },
    #[error("unknown config key '{key}'{}", suggestion.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default())]
    UnknownKey {
        key: String,
        suggestion: Option<String>,
    },
    #[error("unknown config keys: {}", unknown_list(.0))]
    UnknownKeys(Vec<(String, Option<String>)>),
    #[error("invalid value {:?} for config key '{key}': {}", secrets::shown(.key, .value), secrets::mask_urls(.allowed))]
    InvalidValue {
        key: String,
        value: String,
        allowed: String,
    },
    #[error("missing required config key '{key}': {why}")]
    Missing { key: String, why: String },
    #[error("config keys conflict: {0}")]
    Conflict(String),
}

/// `'a' (did you mean 'b'?), 'c'`.
fn unknown_list(keys: &[(String, Option<String>)]) -> String {
    keys.iter()
        .map(|(key, suggestion)| match suggestion {
            Some(s) => format!("'{key}' (did you mean '{s}'?)"),
            None => format!("'{key}'"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl ConfigError {
    /// The keys this error is about (every unknown key, or the one invalid/missing key); empty
    /// for a conflict between keys or an unreadable file.
    pub fn keys(&self) -> Vec<String> {
        match self {
            ConfigError::UnknownKey { key, .. }
            | ConfigError::InvalidValue { key, .. }
            | ConfigError::Missing { key, .. } => vec![key.clone()],
            ConfigError::UnknownKeys(keys) => keys.iter().map(|(k, _)| k.clone()).collect(),
            _ => Vec::new(),
        }
    }

    pub fn origin(&self) -> Origin {
        Origin::User
    }
}

/// Output file format (`format.class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Parquet,
    /// Values written as they are, newline-separated (StreamX's SourceFormat + ByteArrayConverter).
    Raw,
    /// Avro object container files.
    Avro,
    /// JSON lines.
    Json,
    Csv,
}

impl OutputFormat {
    pub fn extension(&self) -> &'static str {
        match self {
            OutputFormat::Parquet => "parquet",
            OutputFormat::Raw => "raw",
            OutputFormat::Avro => "avro",
            OutputFormat::Json => "json",
            OutputFormat::Csv => "csv",
        }
    }
}

/// How record values are decoded (`input.format` / `value.converter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Json,
    /// Kafka Connect JsonConverter envelopes (`{"schema": ..., "payload": ...}`).
    ConnectJson,
    /// Avro: Confluent wire format with the Schema Registry, or plain with `value.avro.schema`.
    Avro,
    /// Confluent `ProtobufConverter`: wire format with the Schema Registry.
    Protobuf,
    /// JSON Schema: Confluent wire format (`JsonSchemaConverter`), schemas from the registry.
    JsonSchema,
    Raw,
}

/// `parquet.codec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParquetCodec {
    Snappy,
    Zstd,
    Gzip,
    Lz4,
    None,
}

/// `errors.tolerance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorTolerance {
    /// Stop with an error naming topic/partition/offset.
    None,
    /// Skip, count, and send to the dead letter queue when one is configured.
    All,
}

/// Where to start a Kafka partition that has no commit in the store (`consumer.auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    Earliest,
    Latest,
}

/// Which topics to consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicSelection {
    List(Vec<String>),
    /// `topics.regex`, handed to librdkafka as a `^`-anchored subscription.
    Regex(String),
}

/// Rotation policy; every `Some` limit is active, the first one reached closes the files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RotationConfig {
    /// `flush.size`: records per commit of one Kafka partition.
    pub flush_size: Option<u64>,
    /// `rotate.size.bytes`: estimated encoded bytes per commit of one Kafka partition.
    pub max_bytes: Option<u64>,
    /// `rotate.interval.ms`: record time span of a file; also closes a file whose partition has
    /// received no record for this long (wall clock), so idle topics commit.
    pub interval: Option<Duration>,
    /// `rotate.schedule.interval.ms`: wall-clock boundaries (multiples since the epoch, UTC).
    pub schedule_interval: Option<Duration>,
}

/// `memory.budget.bytes` when unset (`streamx ingest` and `streamx worker`).
pub const MEMORY_BUDGET_DEFAULT: u64 = 512 << 20;
/// The least `memory.budget.bytes` accepted.
pub const MEMORY_BUDGET_MIN: u64 = 1 << 20;

/// The validated configuration of one ingest job.
#[derive(Debug, Clone)]
pub struct Config {
    /// `name`.
    pub name: String,
    pub topics: TopicSelection,
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// `group.id`, default `streamx-<name>`.
    pub group_id: String,
    /// The consumer's librdkafka settings: the top-level `security.protocol` / `ssl.*` /
    /// `sasl.*` keys, then the `consumer.*` keys with the prefix removed (Java client forms
    /// translated, see [`kafka_security`]). Holds secrets: never print it.
    pub consumer_overrides: BTreeMap<String, String>,
    /// Likewise for the dead letter queue producer: security keys, then `producer.*`.
    pub producer_overrides: BTreeMap<String, String>,
    pub start_from: StartFrom,
    /// `tasks.max`: consumers of the job in one worker process (`streamx ingest` runs one).
    pub tasks_max: usize,
    pub rotation: RotationConfig,
    /// `topics.dir`, default `topics`.
    pub topics_dir: String,
    /// `store.url` (alias `s3.url`).
    pub store_url: String,
    /// `store.*` options (prefix removed) for object_store, e.g. `endpoint`, `region`,
    /// `access_key_id`, `secret_access_key`, `allow_http`.
    pub store_options: BTreeMap<String, String>,
    pub format: OutputFormat,
    pub parquet_codec: ParquetCodec,
    pub input_format: InputFormat,
    /// `value.schema`: declared schema of JSON values; `None` = inferred from the first records.
    pub value_schema: Option<SchemaRef>,
    /// `include.kafka.metadata`: write `_topic`, `_partition`, `_offset`, `_timestamp`, `_key`,
    /// `_headers` columns.
    pub include_kafka_metadata: bool,
    pub errors_tolerance: ErrorTolerance,
    /// `errors.deadletterqueue.topic.name`.
    pub dlq_topic: Option<String>,
    /// `filename.offset.zero.pad.width`, default 10.
    pub offset_pad_width: usize,
    /// `decode.batch.records`: records decoded together, default 4096.
    pub decode_batch_records: usize,
    /// `commit.fenced.backoff.ms`: how long a partition that lost a commit race stays paused
    /// before it is recovered from the store again, default 30 s.
    /// `commit.history.keep`: commit records kept per Kafka partition.
    pub keep_commits: u64,
    /// `staging.cleanup.age.ms`: a staged file no commit explains is deleted once this old.
    pub staging_cleanup_age: Duration,
    /// `commit.takeover.job`: the job whose commit chains this one may continue.
    pub takeover_job: Option<String>,
    pub fenced_backoff: Duration,
    /// Where rows go: `partition.by` SQL or a preset spelled in SQL.
    pub partition_rule: crate::partition::RuleSpec,
    /// `timestamp.extractor` as SQL.
    pub timestamp: crate::partition::TimestampSpec,
    /// `transform.sql`.
    pub transform_sql: Option<String>,
    /// Converter and output format settings.
    pub formats: formats::FormatSettings,
    /// `memory.budget.bytes` (the process's budget: a job run by `streamx worker` uses the
    /// worker's instead, [`crate::worker::config`]).
    pub memory_budget_bytes: u64,
    /// `metrics.listen`: where `streamx ingest` serves `GET /metrics`.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `hive.*`: set when `hive.integration=true`.
    pub hive: Option<crate::hive::config::HiveConfig>,
    /// `compact.*`: settings of `streamx compact`.
    pub compact: crate::compact::config::CompactConfig,
}

impl Config {
    /// The extension of data files (`json.gz` for gzipped JSON lines).
    pub fn file_extension(&self) -> &'static str {
        match self.format {
            OutputFormat::Json if self.formats.jsonl.gzip => "json.gz",
            f => f.extension(),
        }
    }

    /// Whether `transform.sql` or the partition rule reads `_key` or `_headers`, which are then
    /// copied out of the consumer.
    pub fn sql_reads_keys(&self) -> bool {
        let reads = |s: &str| s.contains("_key") || s.contains("_headers");
        self.transform_sql.as_deref().is_some_and(reads)
            || match &self.partition_rule {
                crate::partition::RuleSpec::Sql { list, .. } => reads(list),
                crate::partition::RuleSpec::Levels { levels, .. } => {
                    levels.iter().any(|l| reads(&l.sql))
                }
            }
    }
}

impl Config {
    /// Builds the config from layered sources, later layers winning: the file, then environment
    /// variables (`STREAMX_FLUSH_SIZE` -> `flush.size`), then `--set` overrides.
    pub fn load(
        file: Option<&std::path::Path>,
        overrides: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        Config::from_raw(&RawConfig::layered(file, std::env::vars(), overrides)?.resolved()?)
    }

    /// Parses a properties text (used by tests and the embedded quickstart).
    pub fn from_properties_str(
        text: &str,
        overrides: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut raw = RawConfig::default();
        for (k, v) in properties::parse(text, "<inline>")? {
            raw.set(&k, &v, Source::Override);
        }
        for (k, v) in overrides {
            raw.set(k, v, Source::Override);
        }
        Config::from_raw(&raw.resolved()?)
    }

    /// The key/value pairs as they may be shown (logs, check-config): secret values as
    /// `[hidden]`, credentials inside URLs masked ([`secrets::shown`]).
    pub fn redacted(raw: &RawConfig) -> BTreeMap<String, String> {
        raw.entries
            .iter()
            .map(|(k, (v, _))| (k.clone(), secrets::shown(k, v)))
            .collect()
    }
}

/// The unvalidated layered key/value map.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    pub entries: BTreeMap<String, (String, Source)>,
}

/// Environment variables that start with `STREAMX_` but configure the process, not the job.
const ENV_NOT_KEYS: &[&str] = &["STREAMX_LOG", "STREAMX_FAULT", "STREAMX_SERVICES_DIR"];

impl RawConfig {
    /// The layers of [`Config::load`], with the environment passed in: the file, then the
    /// `STREAMX_*` variables among `env`, then `overrides` (`--set`), later layers winning.
    pub fn layered(
        file: Option<&std::path::Path>,
        env: impl Iterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> Result<RawConfig, ConfigError> {
        let mut raw = RawConfig::default();
        if let Some(path) = file {
            raw.extend_from_file(path)?;
        }
        raw.extend_from_env(env);
        for (k, v) in overrides {
            raw.set(k, v, Source::Override);
        }
        Ok(raw)
    }

    /// Sets `key` to `value` (both trimmed); a later call wins over an earlier one, also when
    /// one of them used an alias (`s3.url` then `store.url`): the entry keeps the spelling of the
    /// latest call, so error messages name the key as the user wrote it.
    pub fn set(&mut self, key: &str, value: &str, source: Source) {
        let key = key.trim();
        let canonical = keys::canonical(key);
        self.entries
            .retain(|k, _| k == key || keys::canonical(k) != canonical);
        self.entries
            .insert(key.to_string(), (value.trim().to_string(), source));
    }

    /// A copy with every `${env:..}` / `${file:..}` reference resolved ([`secrets`]); an
    /// unresolvable one is an error naming the key and the reference.
    pub fn resolved(&self) -> Result<RawConfig, ConfigError> {
        let mut out = RawConfig::default();
        for (k, (v, source)) in &self.entries {
            let v = secrets::resolve_providers(v).map_err(|why| ConfigError::InvalidValue {
                key: k.clone(),
                value: secrets::HIDDEN.into(),
                allowed: why,
            })?;
            out.entries.insert(k.clone(), (v, source.clone()));
        }
        Ok(out)
    }

    /// The value of `key` as set (by this exact spelling), if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|(v, _)| v.as_str())
    }

    /// Reads a `.properties` file; its keys win over what was set before.
    pub fn extend_from_file(&mut self, path: &std::path::Path) -> Result<(), ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        for (k, v) in properties::parse(&text, &shown)? {
            self.set(&k, &v, Source::File(shown.clone()));
        }
        Ok(())
    }

    /// Applies `STREAMX_*` environment variables: `STREAMX_FLUSH_SIZE` -> `flush.size` (lowercased,
    /// `_` -> `.`). Skipped: `STREAMX_TEST_*`, `STREAMX_LOG`, `STREAMX_FAULT`,
    /// `STREAMX_SERVICES_DIR`, and every variable whose key is not in the registry ([`keys::KEYS`]
    /// or an alias): the mapping cannot spell keys that contain `_` (e.g. `store.access_key_id`),
    /// so prefixed pass-through keys cannot be set from the environment, and unrelated
    /// `STREAMX_*` variables must not break the configuration.
    pub fn extend_from_env(&mut self, vars: impl Iterator<Item = (String, String)>) {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("STREAMX_") else {
                continue;
            };
            if name.starts_with("STREAMX_TEST_") || ENV_NOT_KEYS.contains(&name.as_str()) {
                continue;
            }
            let key = rest.to_lowercase().replace('_', ".");
            if keys::is_known(&key) {
                self.set(&key, &value, Source::Env(name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn set_trims_and_later_wins() {
        let mut raw = RawConfig::default();
        raw.set(" flush.size ", " 10 ", Source::Default);
        raw.set("flush.size", "20", Source::Override);
        assert_eq!(raw.get("flush.size"), Some("20"));
        assert_eq!(raw.entries["flush.size"].1, Source::Override);
    }

    #[test]
    fn an_alias_and_its_key_replace_each_other() {
        let mut raw = RawConfig::default();
        raw.set("s3.url", "s3://a", Source::Default);
        raw.set("store.url", "s3://b", Source::Override);
        assert_eq!(raw.get("s3.url"), None);
        assert_eq!(raw.get("store.url"), Some("s3://b"));
        raw.set("s3.url", "s3://c", Source::Override);
        assert_eq!(raw.entries.len(), 1);
        assert_eq!(raw.get("s3.url"), Some("s3://c"));
    }

    #[test]
    fn env_mapping() {
        let mut raw = RawConfig::default();
        raw.extend_from_env(env(&[
            ("STREAMX_FLUSH_SIZE", "5"),
            ("STREAMX_BOOTSTRAP_SERVERS", "k:9092"),
            ("STREAMX_TOPICS_REGEX", "logs-.*"),
            ("STREAMX_S3_URL", "s3://bucket"),
            ("STREAMX_LOG", "debug"),
            ("STREAMX_FAULT", "x"),
            ("STREAMX_SERVICES_DIR", "/tmp"),
            ("STREAMX_TEST_KAFKA_BROKERS", "b:1"),
            ("STREAMX_TANSU_BIN", "/bin/tansu"),
            ("STREAMX_STORE_ACCESS_KEY_ID", "not spellable"),
            ("FLUSH_SIZE", "7"),
            ("PATH", "/usr/bin"),
        ]));
        let keys: Vec<&str> = raw.entries.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["bootstrap.servers", "flush.size", "s3.url", "topics.regex"]
        );
        assert_eq!(raw.get("flush.size"), Some("5"));
        assert_eq!(
            raw.entries["flush.size"].1,
            Source::Env("STREAMX_FLUSH_SIZE".into())
        );
    }

    #[test]
    fn layering_file_then_env_then_set() {
        let dir = std::env::temp_dir().join(format!("streamx-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("job.properties");
        std::fs::write(
            &file,
            "name=from-file\nflush.size=1\nrotate.interval.ms=1000\ntopics=t\n\
             bootstrap.servers=file:9092\nstore.url=/tmp/out\n",
        )
        .expect("write");
        let raw = RawConfig::layered(
            Some(&file),
            env(&[
                ("STREAMX_FLUSH_SIZE", "2"),
                ("STREAMX_ROTATE_INTERVAL_MS", "2000"),
            ]),
            &[("rotate.interval.ms".into(), "3000".into())],
        )
        .expect("layers");
        std::fs::remove_dir_all(&dir).ok();
        let config = Config::from_raw(&raw).expect("valid");
        assert_eq!(config.name, "from-file");
        assert_eq!(config.bootstrap_servers, "file:9092");
        assert_eq!(config.rotation.flush_size, Some(2), "env beats the file");
        assert_eq!(
            config.rotation.interval,
            Some(Duration::from_millis(3000)),
            "--set beats env"
        );
        assert!(
            matches!(raw.entries["name"].1, Source::File(ref p) if p.ends_with("job.properties"))
        );
    }

    #[test]
    fn file_errors() {
        let err = RawConfig::default()
            .extend_from_file(std::path::Path::new("/nonexistent/streamx.properties"))
            .unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(
            err.to_string().contains("/nonexistent/streamx.properties"),
            "{err}"
        );
        assert_eq!(err.origin(), Origin::User);
    }

    #[test]
    fn secrets_are_redacted() {
        let mut raw = RawConfig::default();
        for (k, v) in [
            ("aws.secret.access.key", "s3cr3t"),
            ("store.secret_access_key", "s3cr3t"),
            ("consumer.sasl.password", "pw"),
            (
                "consumer.sasl.jaas.config",
                "org.apache...required password=\"pw\";",
            ),
            ("consumer.sasl.mechanism", "PLAIN"),
            ("store.url", "s3://bucket"),
        ] {
            raw.set(k, v, Source::Override);
        }
        let shown = Config::redacted(&raw);
        assert_eq!(shown["aws.secret.access.key"], "[hidden]");
        assert_eq!(shown["store.secret_access_key"], "[hidden]");
        assert_eq!(shown["consumer.sasl.password"], "[hidden]");
        assert_eq!(shown["consumer.sasl.jaas.config"], "[hidden]");
        assert_eq!(shown["consumer.sasl.mechanism"], "PLAIN");
        assert_eq!(shown["store.url"], "s3://bucket");
        assert!(!format!("{shown:?}").contains("s3cr3t"));
    }
}
