//! The parsing helpers every section of validation shares: the set keys by canonical name
//! ([`Values`]), numbers, intervals, booleans, named choices and the tables of accepted names
//! (Kafka Connect / Confluent / StreamX class names included).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    keys, ConfigError, ErrorTolerance, InputFormat, OutputFormat, ParquetCodec, StartFrom,
};

/// The registry keys that are set, by canonical name: `(key as spelt, value)`.
pub(super) struct Values<'a> {
    pub(super) known: BTreeMap<&'a str, (&'a str, &'a str)>,
}

impl<'a> Values<'a> {
    /// The key as spelt and the value, when set and not empty.
    pub(super) fn get(&self, canonical: &str) -> Option<(&'a str, &'a str)> {
        self.known
            .get(canonical)
            .copied()
            .filter(|(_, v)| !v.is_empty())
    }

    /// Like [`Values::get`], falling back to the registry default (under the canonical name).
    pub(super) fn get_or_default(&self, canonical: &'static str) -> Option<(&'a str, &'a str)> {
        self.get(canonical)
            .or_else(|| keys::default_of(canonical).map(|d| (canonical, d)))
    }
}

pub(super) fn invalid(key: &str, value: &str, allowed: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

pub(super) fn missing(key: &str, why: &str) -> ConfigError {
    ConfigError::Missing {
        key: key.to_string(),
        why: why.to_string(),
    }
}

/// A whole number in `min..=max`.
pub(super) fn number(key: &str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
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
pub(super) fn interval(key: &str, value: &str) -> Result<Option<Duration>, ConfigError> {
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

pub(super) fn boolean(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "true or false")),
    }
}

/// Looks `value` up case-insensitively in `(names, result)` pairs.
pub(super) fn choice<T: Copy>(value: &str, table: &[(&[&str], T)]) -> Option<T> {
    table
        .iter()
        .find(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(value)))
        .map(|(_, t)| *t)
}

pub(super) const OUTPUT_FORMATS: &[(&[&str], OutputFormat)] = &[
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

pub(super) const INPUT_FORMATS: &[(&[&str], InputFormat)] = &[
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
            "protobuf",
            "io.confluent.connect.protobuf.ProtobufConverter",
        ],
        InputFormat::Protobuf,
    ),
    (
        &[
            "json-schema",
            "json_schema",
            "io.confluent.connect.json.JsonSchemaConverter",
        ],
        InputFormat::JsonSchema,
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

pub(super) const CODECS: &[(&[&str], ParquetCodec)] = &[
    (&["snappy"], ParquetCodec::Snappy),
    (&["zstd"], ParquetCodec::Zstd),
    (&["gzip"], ParquetCodec::Gzip),
    (&["lz4"], ParquetCodec::Lz4),
    (&["none", "uncompressed"], ParquetCodec::None),
];

pub(super) const TOLERANCES: &[(&[&str], ErrorTolerance)] = &[
    (&["none"], ErrorTolerance::None),
    (&["all"], ErrorTolerance::All),
];

pub(super) const START_FROM: &[(&[&str], StartFrom)] = &[
    (&["earliest", "smallest", "beginning"], StartFrom::Earliest),
    (&["latest", "largest", "end"], StartFrom::Latest),
];
