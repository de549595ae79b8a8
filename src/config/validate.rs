//! Validation: turns the layered [`RawConfig`] into a typed [`Config`], one section at a time.
//!
//! ```text
//!   RawConfig ──► check_keys (every unknown key at once, "did you mean"; keys with no meaning
//!       │                     here accepted with one log line)
//!       ▼
//!   split ──► registry keys by canonical name (Values) + consumer.* / producer.* / store.* maps
//!       │     + top-level security.protocol / ssl.* / sasl.* (kafka_security: Java forms mapped,
//!       │       checked by librdkafka, merged under consumer.* and producer.*)
//!       ├─► kafka (topics, brokers, group, start)      ├─► store (url, options, hadoop.conf.dir)
//!       ├─► input/output formats                       ├─► errors (tolerance, dead letter queue)
//!       ├─► partition rule, transform, hive.*          └─► limits (rotation, sizes, ages)
//!       ▼
//!   Config
//! ```
//!
//! After the key check the first problem is returned, naming the key as the user spelt it, the
//! value and what is allowed. An empty value counts as unset (Kafka Connect files often carry
//! `key=` lines).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::values::{
    boolean, choice, interval, invalid, missing, number, Values, CODECS, INPUT_FORMATS,
    OUTPUT_FORMATS, START_FROM, TOLERANCES,
};
use super::{
    kafka_security, keys, schema_ddl, Config, ConfigError, ErrorTolerance, InputFormat,
    OutputFormat, ParquetCodec, RawConfig, RotationConfig, StartFrom, TopicSelection,
};

/// The raw entries split into registry keys and the prefixed pass-through maps.
struct Split<'a> {
    values: Values<'a>,
    consumer: BTreeMap<String, String>,
    producer: BTreeMap<String, String>,
    store: BTreeMap<String, String>,
    /// Top-level `security.protocol`, `ssl.*`, `sasl.*` (every Kafka client of the job).
    security: BTreeMap<String, String>,
}

impl Config {
    /// Validates the layered key/value map into a typed configuration. Every unknown key is
    /// reported first (all of them in one error); after that the first invalid, missing or
    /// conflicting setting.
    pub fn from_raw(raw: &RawConfig) -> Result<Config, ConfigError> {
        check_keys(raw)?;
        let split = split(raw);
        let v = &split.values;
        let name = job_name(v)?;
        connector(v)?;
        let kafka = kafka(v, &split.consumer, &name)?;
        let (consumer_overrides, producer_overrides) = clients(&split, &kafka.bootstrap_servers)?;
        let store = store(v, split.store)?;
        let io = formats(v)?;
        let errors = errors(v)?;
        let (partition_rule, timestamp) = crate::partition::preset::from_config(|k| v.get(k))?;
        let transform_sql = v.get("transform.sql").map(|(_, sql)| sql.to_string());
        let hive = super::hive::from_config(|k| v.get_or_default(k), io.format, &partition_rule)?;
        let compact = crate::compact::config::from_config(|k| v.get_or_default(k))?;
        if compact.hive_location_swap && hive.is_none() {
            return Err(ConfigError::InvalidValue {
                key: "compact.hive.swap".into(),
                value: "location".into(),
                allowed: "files unless hive.integration=true (location switches Hive partitions)"
                    .into(),
            });
        }
        let limits = limits(v)?;
        Ok(Config {
            name,
            hive,
            compact,
            topics: kafka.topics,
            bootstrap_servers: kafka.bootstrap_servers,
            group_id: kafka.group_id,
            consumer_overrides,
            producer_overrides,
            start_from: kafka.start_from,
            tasks_max: kafka.tasks_max,
            rotation: limits.rotation,
            topics_dir: store.topics_dir,
            store_url: store.url,
            store_options: store.options,
            format: io.format,
            parquet_codec: io.parquet_codec,
            input_format: io.input_format,
            value_schema: io.value_schema,
            include_kafka_metadata: errors.include_kafka_metadata,
            errors_tolerance: errors.tolerance,
            dlq_topic: errors.dlq_topic,
            offset_pad_width: limits.offset_pad_width,
            decode_batch_records: limits.decode_batch_records,
            fenced_backoff: limits.fenced_backoff,
            partition_rule,
            formats: io.formats,
            timestamp,
            transform_sql,
            memory_budget_bytes: limits.memory_budget_bytes,
            metrics_listen: metrics_listen(v)?,
            keep_commits: limits.keep_commits,
            staging_cleanup_age: limits.staging_cleanup_age,
            takeover_job: v.get("commit.takeover.job").map(|(_, j)| j.to_string()),
        })
    }
}

/// `name` (trimmed, as every value), checked by [`check_job_name`].
fn job_name(v: &Values) -> Result<String, ConfigError> {
    let (key, name) = v.get_or_default("name").unwrap_or(("name", "streamx"));
    check_job_name(key, name)?;
    Ok(name.to_string())
}

/// A job name as Kafka Connect checks a connector name: no ISO control characters (U+0000 to
/// U+001F, U+007F to U+009F); any other Unicode is fine (it goes into the group id, client ids,
/// statuses and, percent-encoded, REST URLs). A NUL would end the group id librdkafka sees.
/// `key` names the key (or the URL) the name came from.
pub fn check_job_name(key: &str, name: &str) -> Result<(), ConfigError> {
    match name.chars().find(|c| c.is_control()) {
        Some(c) => Err(invalid(
            key,
            name,
            format!(
                "a name without control characters (found U+{:04X}); Kafka Connect refuses them too",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// Every key must be known, an alias, prefixed, or one of the keys with no meaning here (those
/// are logged once per process). All unknown keys are reported together.
pub(super) fn check_keys(raw: &RawConfig) -> Result<(), ConfigError> {
    let mut unknown: Vec<(String, Option<String>)> = Vec::new();
    for key in raw.entries.keys() {
        if keys::is_accepted(key) {
            continue;
        }
        if let Some(why) = keys::no_meaning(key) {
            keys::log_ignored_once(key, why);
            continue;
        }
        unknown.push((key.clone(), keys::suggest(key)));
    }
    match unknown.len() {
        0 => Ok(()),
        1 => {
            let (key, suggestion) = unknown.remove(0);
            Err(ConfigError::UnknownKey { key, suggestion })
        }
        _ => Err(ConfigError::UnknownKeys(unknown)),
    }
}

/// Registry keys by canonical name, and the `consumer.*`, `producer.*`, `store.*` maps with their
/// prefix removed. Should a key and its alias both be present (entries edited by hand), the
/// canonical spelling wins. Keys with no meaning here are left out.
fn split(raw: &RawConfig) -> Split<'_> {
    let mut out = Split {
        values: Values {
            known: BTreeMap::new(),
        },
        consumer: BTreeMap::new(),
        producer: BTreeMap::new(),
        store: BTreeMap::new(),
        security: BTreeMap::new(),
    };
    for (key, (value, _)) in &raw.entries {
        let (key, value) = (key.as_str(), value.as_str());
        if kafka_security::is_security_key(key) {
            out.security.insert(key.to_string(), value.to_string());
            continue;
        }
        match keys::prefix_of(key) {
            Some(prefix) => {
                let rest = &key[prefix.len()..];
                let target = match prefix {
                    "consumer." => &mut out.consumer,
                    "producer." => &mut out.producer,
                    _ => &mut out.store,
                };
                // Kafka Connect's per-connector `consumer.override.*` spelling.
                let rest = match rest.strip_prefix("override.") {
                    Some(r) if prefix != "store." && !r.is_empty() => r,
                    _ => rest,
                };
                target.insert(rest.to_string(), value.to_string());
            }
            None if keys::is_known(key) => {
                let canonical = keys::canonical(key);
                if key == canonical || !out.values.known.contains_key(canonical) {
                    out.values.known.insert(canonical, (key, value));
                }
            }
            None => {}
        }
    }
    out
}

/// The consumer's and the producer's librdkafka settings: the top-level security keys, then
/// `consumer.*` / `producer.*` (both with the Java client's forms translated and the security
/// keys checked by librdkafka, see [`kafka_security`]).
type ClientMaps = (BTreeMap<String, String>, BTreeMap<String, String>);
fn clients(split: &Split, bootstrap_servers: &str) -> Result<ClientMaps, ConfigError> {
    let security = kafka_security::to_librdkafka("", &split.security)?;
    let mut consumer = security.clone();
    consumer.extend(kafka_security::to_librdkafka("consumer.", &split.consumer)?);
    let mut producer = security;
    producer.extend(kafka_security::to_librdkafka("producer.", &split.producer)?);
    kafka_security::resolve_msk_region(&mut consumer, bootstrap_servers)?;
    kafka_security::resolve_msk_region(&mut producer, bootstrap_servers)?;
    Ok((consumer, producer))
}

/// `connector.class`: StreamX is the connector; the class names users have for it are accepted.
fn connector(v: &Values) -> Result<(), ConfigError> {
    if let Some((key, class)) = v.get("connector.class") {
        if !keys::is_connector_class(class) {
            return Err(invalid(
                key,
                class,
                format!(
                    "a StreamX connector class: {}",
                    keys::CONNECTOR_CLASSES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

struct Kafka {
    topics: TopicSelection,
    bootstrap_servers: String,
    group_id: String,
    start_from: StartFrom,
    tasks_max: usize,
}

/// Topics, brokers, consumer group, where to start and how many consumers.
fn kafka(
    v: &Values,
    consumer: &BTreeMap<String, String>,
    name: &str,
) -> Result<Kafka, ConfigError> {
    let topics = topics(v)?;
    let bootstrap_servers = v
        .get("bootstrap.servers")
        .ok_or_else(|| {
            missing(
                "bootstrap.servers",
                "the Kafka brokers to consume from, e.g. localhost:9092",
            )
        })?
        .1
        .to_string();
    let group_id = v
        .get("group.id")
        .map_or_else(|| format!("streamx-{name}"), |(_, g)| g.to_string());
    let start_from = match consumer.get("auto.offset.reset") {
        None => StartFrom::Earliest,
        Some(reset) => choice(reset, START_FROM).ok_or_else(|| {
            invalid(
                "consumer.auto.offset.reset",
                reset,
                "earliest (also smallest, beginning) or latest (also largest, end)",
            )
        })?,
    };
    let tasks_max = match v.get_or_default("tasks.max") {
        // Bounded by 1024, so it fits in usize.
        Some((key, value)) => number(key, value, 1, 1024)? as usize,
        None => 1,
    };
    Ok(Kafka {
        topics,
        bootstrap_servers,
        group_id,
        start_from,
        tasks_max,
    })
}

/// `topics` (a list) or `topics.regex` (a pattern), exactly one.
fn topics(v: &Values) -> Result<TopicSelection, ConfigError> {
    match (v.get("topics"), v.get("topics.regex")) {
        (Some((tk, _)), Some((rk, _))) => Err(ConfigError::Conflict(format!(
            "set either '{tk}' (a list of topics) or '{rk}' (a pattern), not both"
        ))),
        (Some((key, list)), None) => {
            let mut topics: Vec<String> = Vec::new();
            for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if !topics.iter().any(|x| x == t) {
                    topics.push(t.to_string());
                }
            }
            if topics.is_empty() {
                return Err(invalid(
                    key,
                    list,
                    "comma-separated topic names, e.g. orders,payments",
                ));
            }
            Ok(TopicSelection::List(topics))
        }
        (None, Some((key, regex))) => {
            let anchored = if regex.starts_with('^') {
                regex.to_string()
            } else {
                format!("^{regex}")
            };
            // The Hive catch-up matches topic names with it too: it must compile here.
            regex::Regex::new(&anchored)
                .map_err(|e| invalid(key, regex, format!("not a valid regular expression: {e}")))?;
            Ok(TopicSelection::Regex(anchored))
        }
        (None, None) => Err(missing(
            "topics",
            "the topics to consume, comma-separated (or a pattern in topics.regex)",
        )),
    }
}

struct StoreSection {
    url: String,
    options: BTreeMap<String, String>,
    topics_dir: String,
}

/// Where files go: `store.url` (or the Confluent S3 sink's `s3.bucket.name`), the object store
/// options (explicit `store.*` first, then the Connect S3 keys, then `hadoop.conf.dir`'s
/// `fs.s3a.*`), and `topics.dir`.
fn store(v: &Values, mut options: BTreeMap<String, String>) -> Result<StoreSection, ConfigError> {
    for (canonical, option) in [
        ("s3.region", "region"),
        ("aws.access.key.id", "access_key_id"),
        ("aws.secret.access.key", "secret_access_key"),
    ] {
        if let Some((_, value)) = v.get(canonical) {
            options
                .entry(option.to_string())
                .or_insert_with(|| value.to_string());
        }
    }
    if let Some((key, part)) = v.get("s3.part.size") {
        number(key, part, 5 << 20, 5 << 30)?;
    }
    let url = store_url(v)?;
    let hadoop = match v.get("hadoop.conf.dir") {
        Some((key, dir)) if url.starts_with("s3://") || url.starts_with("s3a://") => {
            Some(super::hadoop::s3_options(key, dir)?)
        }
        _ => None,
    };
    super::store_encryption::apply(v, &url, &mut options, hadoop.as_ref())?;
    for (option, value) in hadoop.into_iter().flatten() {
        options.entry(option).or_insert(value);
    }
    let topics_dir = match v.get_or_default("topics.dir") {
        Some((key, dir)) => {
            let trimmed = dir.trim_matches('/');
            if trimmed.is_empty() {
                return Err(invalid(
                    key,
                    dir,
                    "a non-empty directory inside store.url, e.g. topics",
                ));
            }
            trimmed.to_string()
        }
        None => "topics".to_string(),
    };
    Ok(StoreSection {
        url,
        options,
        topics_dir,
    })
}

fn store_url(v: &Values) -> Result<String, ConfigError> {
    match (v.get("store.url"), v.get("s3.bucket.name")) {
        (Some((_, url)), None) => Ok(url.to_string()),
        (None, Some((_, bucket))) => Ok(format!("s3://{bucket}")),
        (Some((key, url)), Some((bucket_key, bucket))) => {
            let base = format!("s3://{bucket}");
            if url != base && !url.starts_with(&format!("{base}/")) {
                return Err(ConfigError::Conflict(format!(
                    "'{key}={url}' is not in the bucket of '{bucket_key}={bucket}'; set only {key}"
                )));
            }
            Ok(url.to_string())
        }
        (None, None) => Err(missing(
            "store.url",
            "where files go: a path, file://, s3://bucket, gs://bucket or az://container",
        )),
    }
}

struct Formats {
    format: OutputFormat,
    parquet_codec: ParquetCodec,
    input_format: InputFormat,
    value_schema: Option<arrow::datatypes::SchemaRef>,
    formats: super::formats::FormatSettings,
}

/// Output format, input format (converter) and their settings.
fn formats(v: &Values) -> Result<Formats, ConfigError> {
    let format = match v.get_or_default("format.class") {
        Some((key, value)) => choice(value, OUTPUT_FORMATS).ok_or_else(|| {
            invalid(
                key,
                value,
                "parquet, avro, json (JSON lines), csv or raw (or their Kafka Connect / StreamX class names)",
            )
        })?,
        None => OutputFormat::Parquet,
    };
    let parquet_codec = match v.get_or_default("parquet.codec") {
        Some((key, value)) => choice(value, CODECS)
            .ok_or_else(|| invalid(key, value, "snappy, zstd, gzip, lz4 or none (uncompressed)"))?,
        None => ParquetCodec::Snappy,
    };
    let input_format = input_format(v)?;
    if format == OutputFormat::Raw && input_format != InputFormat::Raw {
        return Err(ConfigError::Conflict(
            "format.class=raw writes record values as they are and needs input.format=raw \
             (value.converter=ByteArrayConverter)"
                .into(),
        ));
    }
    let value_schema = match v.get("value.schema") {
        None => None,
        Some((key, ddl)) => {
            if input_format != InputFormat::Json {
                return Err(ConfigError::Conflict(format!(
                    "'{key}' declares the columns of plain JSON values; it cannot be used with \
                     input.format={input_format:?} (JSON Schema values take their columns from \
                     the registry)"
                )));
            }
            let schema = schema_ddl::parse_schema(ddl).map_err(|e| invalid(key, ddl, e))?;
            Some(Arc::new(schema))
        }
    };
    let mut formats = super::formats::from_config(
        |k| v.get(k),
        input_format == InputFormat::Avro,
        input_format == InputFormat::ConnectJson,
        input_format == InputFormat::JsonSchema,
    )?;
    if input_format == InputFormat::Protobuf {
        formats.protobuf = Some(super::formats::protobuf_registry(|k| v.get(k))?);
    }
    Ok(Formats {
        format,
        parquet_codec,
        input_format,
        value_schema,
        formats,
    })
}

/// `input.format` / `value.converter`. Kafka Connect's JsonConverter expects
/// `{"schema", "payload"}` envelopes unless `schemas.enable=false`; the short name `json` means
/// plain JSON objects unless `schemas.enable=true`.
fn input_format(v: &Values) -> Result<InputFormat, ConfigError> {
    let Some((key, value)) = v.get_or_default("input.format") else {
        return Ok(InputFormat::Json);
    };
    let schemas = match v.get("value.converter.schemas.enable") {
        Some((k, e)) => Some(boolean(k, e)?),
        None => None,
    };
    match choice(value, INPUT_FORMATS) {
        Some(InputFormat::Json) if value.contains('.') => Ok(if schemas == Some(false) {
            InputFormat::Json
        } else {
            InputFormat::ConnectJson
        }),
        Some(InputFormat::Json) => Ok(if schemas == Some(true) {
            InputFormat::ConnectJson
        } else {
            InputFormat::Json
        }),
        Some(f) => Ok(f),
        None => Err(invalid(
            key,
            value,
            "json, connect-json, avro, protobuf, json-schema or raw (or \
             io.confluent.connect.avro.AvroConverter, io.confluent.connect.protobuf.ProtobufConverter, \
             io.confluent.connect.json.JsonSchemaConverter, org.apache.kafka.connect.json.JsonConverter, \
             org.apache.kafka.connect.converters.ByteArrayConverter, \
             org.apache.kafka.connect.storage.StringConverter)",
        )),
    }
}

struct Errors {
    include_kafka_metadata: bool,
    tolerance: ErrorTolerance,
    dlq_topic: Option<String>,
}

/// Bad-record handling, and the boolean flags checked for their values.
fn errors(v: &Values) -> Result<Errors, ConfigError> {
    let flag = |canonical: &'static str| -> Result<bool, ConfigError> {
        match v.get_or_default(canonical) {
            Some((key, value)) => boolean(key, value),
            None => Ok(false),
        }
    };
    let include_kafka_metadata = flag("include.kafka.metadata")?;
    flag("errors.deadletterqueue.context.headers.enable")?;
    flag("errors.log.enable")?;
    flag("value.converter.schemas.enable")?;
    flag("key.converter.schemas.enable")?;
    let tolerance = match v.get_or_default("errors.tolerance") {
        Some((key, value)) => choice(value, TOLERANCES)
            .ok_or_else(|| invalid(key, value, "none (stop on a bad record) or all (skip it)"))?,
        None => ErrorTolerance::None,
    };
    let dlq_topic = v
        .get("errors.deadletterqueue.topic.name")
        .map(|(_, t)| t.to_string());
    if let (Some(topic), ErrorTolerance::None) = (&dlq_topic, tolerance) {
        return Err(ConfigError::Conflict(format!(
            "errors.deadletterqueue.topic.name={topic} needs errors.tolerance=all \
             (with errors.tolerance=none StreamX stops at the first bad record)"
        )));
    }
    Ok(Errors {
        include_kafka_metadata,
        tolerance,
        dlq_topic,
    })
}

/// `metrics.listen`: `host:port` (an IP address, or `localhost`).
fn metrics_listen(v: &Values) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    let Some((key, value)) = v.get("metrics.listen") else {
        return Ok(None);
    };
    let resolved = value.replacen("localhost:", "127.0.0.1:", 1);
    resolved
        .parse()
        .map(Some)
        .map_err(|_| invalid(key, value, "host:port, e.g. 127.0.0.1:9464 or 0.0.0.0:9464"))
}

struct Limits {
    rotation: RotationConfig,
    offset_pad_width: usize,
    decode_batch_records: usize,
    fenced_backoff: Duration,
    memory_budget_bytes: u64,
    keep_commits: u64,
    staging_cleanup_age: Duration,
}

/// Rotation limits and the numeric settings (defaults from [`keys::KEYS`]).
fn limits(v: &Values) -> Result<Limits, ConfigError> {
    let num = |canonical: &'static str, min: u64, max: u64| -> Result<Option<u64>, ConfigError> {
        v.get_or_default(canonical)
            .map(|(key, value)| number(key, value, min, max))
            .transpose()
    };
    let dur = |canonical: &'static str| -> Result<Option<Duration>, ConfigError> {
        Ok(v.get(canonical)
            .map(|(key, value)| interval(key, value))
            .transpose()?
            .flatten())
    };
    let rotation = RotationConfig {
        flush_size: num("flush.size", 1, u64::MAX)?,
        max_bytes: num("rotate.size.bytes", 1024, u64::MAX)?,
        interval: dur("rotate.interval.ms")?,
        schedule_interval: dur("rotate.schedule.interval.ms")?,
    };
    if rotation == RotationConfig::default() {
        return Err(missing(
            "flush.size",
            "at least one rotation limit (flush.size, rotate.size.bytes, rotate.interval.ms \
             or rotate.schedule.interval.ms) must be set so files are closed",
        ));
    }
    let ms = |n: Option<u64>, default: u64| Duration::from_millis(n.unwrap_or(default));
    Ok(Limits {
        rotation,
        // Both bounded above (20 and 1_000_000), so they fit in usize.
        offset_pad_width: num("filename.offset.zero.pad.width", 1, 20)?.unwrap_or(10) as usize,
        decode_batch_records: num("decode.batch.records", 1, 1_000_000)?.unwrap_or(2048) as usize,
        fenced_backoff: ms(num("commit.fenced.backoff.ms", 0, u64::MAX)?, 30_000),
        memory_budget_bytes: num("memory.budget.bytes", super::MEMORY_BUDGET_MIN, u64::MAX)?
            .unwrap_or(super::MEMORY_BUDGET_DEFAULT),
        keep_commits: num("commit.history.keep", 2, 1 << 20)?.unwrap_or(10),
        staging_cleanup_age: ms(
            // At most 7 days: `commit::FOREIGN_STAGING_AGE`, how long any job's sweep leaves
            // another job's staged files.
            num("staging.cleanup.age.ms", 1000, 604_800_000)?,
            21_600_000,
        ),
    })
}
