//! Validation: turns the layered [`RawConfig`] into a typed [`Config`].
//!
//! Unknown keys are checked first (with a "did you mean"), then every value is parsed; the first
//! problem is returned, naming the key as the user spelt it, the value and what is allowed.
//! An empty value counts as unset (Kafka Connect files often carry `key=` lines).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::{
    keys, schema_ddl, Config, ConfigError, ErrorTolerance, InputFormat, OutputFormat, ParquetCodec,
    RawConfig, RotationConfig, StartFrom, TopicSelection,
};

/// The registry keys that are set, by canonical name: `(key as spelt, value)`.
struct Values<'a> {
    known: BTreeMap<&'a str, (&'a str, &'a str)>,
}

impl<'a> Values<'a> {
    /// The key as spelt and the value, when set and not empty.
    fn get(&self, canonical: &str) -> Option<(&'a str, &'a str)> {
        self.known
            .get(canonical)
            .copied()
            .filter(|(_, v)| !v.is_empty())
    }

    /// Like [`Values::get`], falling back to the registry default (under the canonical name).
    fn get_or_default(&self, canonical: &'static str) -> Option<(&'a str, &'a str)> {
        self.get(canonical)
            .or_else(|| keys::default_of(canonical).map(|d| (canonical, d)))
    }
}

fn invalid(key: &str, value: &str, allowed: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

fn missing(key: &str, why: &str) -> ConfigError {
    ConfigError::Missing {
        key: key.to_string(),
        why: why.to_string(),
    }
}

/// A whole number in `min..=max`.
fn number(key: &str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let allowed = if max == u64::MAX {
        format!("a whole number >= {min}")
    } else {
        format!("a whole number from {min} to {max}")
    };
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(key, value, allowed)),
    }
}

/// Milliseconds >= 1, or -1 for unset (as in Kafka Connect).
fn interval(key: &str, value: &str) -> Result<Option<Duration>, ConfigError> {
    if value == "-1" {
        return Ok(None);
    }
    value
        .parse::<u64>()
        .ok()
        .filter(|n| *n >= 1)
        .map(|n| Some(Duration::from_millis(n)))
        .ok_or_else(|| invalid(key, value, "milliseconds >= 1, or -1 for unset"))
}

fn boolean(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "true or false")),
    }
}

/// Looks `value` up case-insensitively in `(names, result)` pairs.
fn choice<T: Copy>(value: &str, table: &[(&[&str], T)]) -> Option<T> {
    table
        .iter()
        .find(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(value)))
        .map(|(_, t)| *t)
}

const OUTPUT_FORMATS: &[(&[&str], OutputFormat)] = &[
    (
        &[
            "parquet",
            "io.confluent.connect.s3.format.parquet.ParquetFormat",
            "io.confluent.connect.hdfs.parquet.ParquetFormat",
            "com.qubole.streamx.parquet.ParquetFormat",
        ],
        OutputFormat::Parquet,
    ),
    (
        &[
            "raw",
            "bytearray",
            "com.qubole.streamx.SourceFormat",
            "io.confluent.connect.s3.format.bytearray.ByteArrayFormat",
        ],
        OutputFormat::Raw,
    ),
    (
        &[
            "avro",
            "io.confluent.connect.s3.format.avro.AvroFormat",
            "io.confluent.connect.hdfs.avro.AvroFormat",
            "com.qubole.streamx.avro.AvroFormat",
        ],
        OutputFormat::Avro,
    ),
    (
        &[
            "json",
            "jsonl",
            "io.confluent.connect.s3.format.json.JsonFormat",
            "io.confluent.connect.hdfs.json.JsonFormat",
        ],
        OutputFormat::Json,
    ),
    (&["csv"], OutputFormat::Csv),
];

const INPUT_FORMATS: &[(&[&str], InputFormat)] = &[
    (
        &["json", "org.apache.kafka.connect.json.JsonConverter"],
        InputFormat::Json,
    ),
    (&["connect-json", "connect_json"], InputFormat::ConnectJson),
    (
        &[
            "avro",
            "io.confluent.connect.avro.AvroConverter",
            "io.confluent.connect.avro.AvroConverter$Plain",
        ],
        InputFormat::Avro,
    ),
    (
        &[
            "raw",
            "bytes",
            "org.apache.kafka.connect.converters.ByteArrayConverter",
            "com.qubole.streamx.ByteArrayConverter",
            // Strings are bytes as they are.
            "org.apache.kafka.connect.storage.StringConverter",
        ],
        InputFormat::Raw,
    ),
];

const CODECS: &[(&[&str], ParquetCodec)] = &[
    (&["snappy"], ParquetCodec::Snappy),
    (&["zstd"], ParquetCodec::Zstd),
    (&["gzip"], ParquetCodec::Gzip),
    (&["lz4"], ParquetCodec::Lz4),
    (&["none", "uncompressed"], ParquetCodec::None),
];

const TOLERANCES: &[(&[&str], ErrorTolerance)] = &[
    (&["none"], ErrorTolerance::None),
    (&["all"], ErrorTolerance::All),
];

const START_FROM: &[(&[&str], StartFrom)] = &[
    (&["earliest", "smallest", "beginning"], StartFrom::Earliest),
    (&["latest", "largest", "end"], StartFrom::Latest),
];

impl Config {
    /// Validates the layered key/value map into a typed configuration. Unknown keys are
    /// reported first; after that the first invalid, missing or conflicting setting.
    pub fn from_raw(raw: &RawConfig) -> Result<Config, ConfigError> {
        // Unknown keys first.
        for key in raw.entries.keys() {
            if !keys::is_accepted(key) {
                return Err(ConfigError::UnknownKey {
                    key: key.clone(),
                    suggestion: keys::suggest(key),
                });
            }
        }
        // Split into registry keys (by canonical name) and prefixed pass-through keys. Should a
        // key and its alias both be present (entries edited by hand), the canonical spelling wins.
        let mut values = Values {
            known: BTreeMap::new(),
        };
        let mut consumer_overrides = BTreeMap::new();
        let mut producer_overrides = BTreeMap::new();
        let mut store_options = BTreeMap::new();
        for (key, (value, _)) in &raw.entries {
            let (key, value) = (key.as_str(), value.as_str());
            match keys::prefix_of(key) {
                Some(prefix) => {
                    let rest = &key[prefix.len()..];
                    let target = match prefix {
                        "consumer." => &mut consumer_overrides,
                        "producer." => &mut producer_overrides,
                        _ => &mut store_options,
                    };
                    // Kafka Connect's per-connector `consumer.override.*` spelling.
                    let rest = match rest.strip_prefix("override.") {
                        Some(r) if prefix != "store." && !r.is_empty() => r,
                        _ => rest,
                    };
                    target.insert(rest.to_string(), value.to_string());
                }
                None => {
                    let canonical = keys::canonical(key);
                    if key == canonical || !values.known.contains_key(canonical) {
                        values.known.insert(canonical, (key, value));
                    }
                }
            }
        }
        let v = &values;

        let name = v
            .get_or_default("name")
            .map_or("streamx", |(_, n)| n)
            .to_string();

        let topics = match (v.get("topics"), v.get("topics.regex")) {
            (Some((tk, _)), Some((rk, _))) => {
                return Err(ConfigError::Conflict(format!(
                    "set either '{tk}' (a list of topics) or '{rk}' (a pattern), not both"
                )))
            }
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
                TopicSelection::List(topics)
            }
            (None, Some((key, regex))) => {
                let anchored = if regex.starts_with('^') {
                    regex.to_string()
                } else {
                    format!("^{regex}")
                };
                // The Hive catch-up matches topic names with it too: it must compile here.
                regex::Regex::new(&anchored).map_err(|e| {
                    invalid(key, regex, format!("not a valid regular expression: {e}"))
                })?;
                TopicSelection::Regex(anchored)
            }
            (None, None) => {
                return Err(missing(
                    "topics",
                    "the topics to consume, comma-separated (or a pattern in topics.regex)",
                ))
            }
        };

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

        let start_from = match consumer_overrides.get("auto.offset.reset") {
            None => StartFrom::Earliest,
            Some(reset) => choice(reset, START_FROM).ok_or_else(|| {
                invalid(
                    "consumer.auto.offset.reset",
                    reset,
                    "earliest (also smallest, beginning) or latest (also largest, end)",
                )
            })?,
        };

        // Kafka Connect S3 keys mapped onto the store; explicit `store.*` options win.
        for (canonical, option) in [
            ("s3.region", "region"),
            ("aws.access.key.id", "access_key_id"),
            ("aws.secret.access.key", "secret_access_key"),
        ] {
            if let Some((_, value)) = v.get(canonical) {
                store_options
                    .entry(option.to_string())
                    .or_insert_with(|| value.to_string());
            }
        }
        let store_url =
            match (v.get("store.url"), v.get("s3.bucket.name")) {
                (Some((_, url)), None) => url.to_string(),
                (None, Some((_, bucket))) => format!("s3://{bucket}"),
                (Some((key, url)), Some((bucket_key, bucket))) => {
                    let base = format!("s3://{bucket}");
                    if url != base && !url.starts_with(&format!("{base}/")) {
                        return Err(ConfigError::Conflict(format!(
                            "'{key}={url}' is not in the bucket of '{bucket_key}={bucket}'; \
                         set only {key}"
                        )));
                    }
                    url.to_string()
                }
                (None, None) => return Err(missing(
                    "store.url",
                    "where files go: a path, file://, s3://bucket, gs://bucket or az://container",
                )),
            };

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
            Some((key, value)) => choice(value, CODECS).ok_or_else(|| {
                invalid(key, value, "snappy, zstd, gzip, lz4 or none (uncompressed)")
            })?,
            None => ParquetCodec::Snappy,
        };
        let input_format = match v.get_or_default("input.format") {
            Some((key, value)) => match choice(value, INPUT_FORMATS) {
                // Kafka Connect's JsonConverter expects {"schema", "payload"} envelopes unless
                // schemas.enable=false; the short name `json` means plain JSON objects.
                Some(InputFormat::Json) if value.contains('.') => {
                    match v.get("value.converter.schemas.enable") {
                        Some((k, e)) if !boolean(k, e)? => InputFormat::Json,
                        _ => InputFormat::ConnectJson,
                    }
                }
                Some(InputFormat::Json) => match v.get("value.converter.schemas.enable") {
                    Some((k, e)) if boolean(k, e)? => InputFormat::ConnectJson,
                    _ => InputFormat::Json,
                },
                Some(f) => f,
                None => return Err(invalid(
                    key,
                    value,
                    "json, connect-json, avro or raw (or io.confluent.connect.avro.AvroConverter, \
                         org.apache.kafka.connect.json.JsonConverter, \
                         org.apache.kafka.connect.converters.ByteArrayConverter, \
                         org.apache.kafka.connect.storage.StringConverter)",
                )),
            },
            None => InputFormat::Json,
        };
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
                        "'{key}' declares the columns of JSON values; it cannot be used with \
                         input.format=raw"
                    )));
                }
                let schema = schema_ddl::parse_schema(ddl).map_err(|e| invalid(key, ddl, e))?;
                Some(Arc::new(schema))
            }
        };

        let formats = super::formats::from_config(
            |k| v.get(k),
            input_format == InputFormat::Avro,
            input_format == InputFormat::ConnectJson,
        )?;

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

        let errors_tolerance = match v.get_or_default("errors.tolerance") {
            Some((key, value)) => choice(value, TOLERANCES).ok_or_else(|| {
                invalid(key, value, "none (stop on a bad record) or all (skip it)")
            })?,
            None => ErrorTolerance::None,
        };
        let dlq_topic = v
            .get("errors.deadletterqueue.topic.name")
            .map(|(_, t)| t.to_string());
        if let (Some(topic), ErrorTolerance::None) = (&dlq_topic, errors_tolerance) {
            return Err(ConfigError::Conflict(format!(
                "errors.deadletterqueue.topic.name={topic} needs errors.tolerance=all \
                 (with errors.tolerance=none StreamX stops at the first bad record)"
            )));
        }

        let (partition_rule, timestamp) = crate::partition::preset::from_config(|k| v.get(k))?;
        let transform_sql = v.get("transform.sql").map(|(_, sql)| sql.to_string());
        let hive =
            crate::hive::config::from_config(|k| v.get_or_default(k), format, &partition_rule)?;
        let compact = crate::compact::config::from_config(|k| v.get_or_default(k))?;

        let num =
            |canonical: &'static str, min: u64, max: u64| -> Result<Option<u64>, ConfigError> {
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
        let offset_pad_width = num("filename.offset.zero.pad.width", 1, 20)?.unwrap_or(10);
        let decode_batch_records = num("decode.batch.records", 1, 1_000_000)?.unwrap_or(2048);
        let fenced_backoff_ms = num("commit.fenced.backoff.ms", 0, u64::MAX)?.unwrap_or(30_000);
        let memory_budget_bytes =
            num("memory.budget.bytes", 1 << 20, u64::MAX)?.unwrap_or(512 << 20);
        let keep_commits = num("commit.history.keep", 2, 1 << 20)?.unwrap_or(10);
        let staging_cleanup_ms =
            num("staging.cleanup.age.ms", 1000, u64::MAX / 2)?.unwrap_or(21_600_000);

        Ok(Config {
            name,
            hive,
            compact,
            topics,
            bootstrap_servers,
            group_id,
            consumer_overrides,
            producer_overrides,
            start_from,
            rotation,
            topics_dir,
            store_url,
            store_options,
            format,
            parquet_codec,
            input_format,
            value_schema,
            include_kafka_metadata,
            errors_tolerance,
            dlq_topic,
            // Both bounded above (20 and 1_000_000), so they fit in usize.
            offset_pad_width: offset_pad_width as usize,
            decode_batch_records: decode_batch_records as usize,
            fenced_backoff: Duration::from_millis(fenced_backoff_ms),
            partition_rule,
            formats,
            timestamp,
            transform_sql,
            memory_budget_bytes,
            keep_commits,
            staging_cleanup_age: Duration::from_millis(staging_cleanup_ms),
        })
    }
}
