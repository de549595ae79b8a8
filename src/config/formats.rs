//! The settings of input converters and output formats: Schema Registry access for Avro and JSON
//! Schema values,
//! a fixed Avro schema, Kafka Connect JSON envelopes, `behavior.on.null.values`,
//! `schema.compatibility`, `store.kafka.keys` / `store.kafka.headers`, and the options of each
//! output format (Parquet, Avro, JSON lines, CSV).

use crate::decode::avro_compat::Compat;
use crate::format::avro::AvroCodec;
use crate::format::csv::{CsvOptions, CsvQuoteStyle};
use crate::format::jsonl::JsonlOptions;

use super::ConfigError;

/// What to do with a record whose value is null (a tombstone): `behavior.on.null.values`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullValues {
    /// A bad record: `errors.tolerance` decides (stop, or skip and dead-letter).
    Fail,
    /// Skip it silently; it is consumed all the same.
    Ignore,
    /// Write a row whose value columns are all null (the metadata columns say which record).
    Write,
}

/// How Avro values reach StreamX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AvroSource {
    /// Confluent wire format; schemas from the Schema Registry.
    Registry(RegistrySettings),
    /// Plain Avro binary written with this schema (JSON).
    Fixed(String),
}

pub use super::java_stores::PemMaterial;

/// The `value.converter.*` Schema Registry keys. `Debug` hides every secret.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    /// `schema.registry.url` as written (may hold `user:password@`).
    pub urls: String,
    /// `basic.auth.credentials.source` (USER_INFO or URL).
    pub credentials_source: Option<String>,
    /// `basic.auth.user.info` (`user:password`, secret).
    pub user_info: Option<String>,
    /// `bearer.auth.token` when `bearer.auth.credentials.source=STATIC_TOKEN` (secret).
    pub bearer_token: Option<String>,
    /// `schema.registry.ssl.*`: trusted CAs and client certificate.
    pub tls: PemMaterial,
}

impl std::fmt::Debug for RegistrySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |o: &Option<String>| o.as_ref().map(|_| super::secrets::HIDDEN);
        f.debug_struct("RegistrySettings")
            .field("urls", &super::secrets::mask_urls(&self.urls))
            .field("credentials_source", &self.credentials_source)
            .field("user_info", &hidden(&self.user_info))
            .field("bearer_token", &hidden(&self.bearer_token))
            .field("tls", &self.tls)
            .finish()
    }
}

/// Parquet writer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParquetOptions {
    /// `parquet.codec.level` (zstd 1-22, gzip 0-9); `None`: the codec's default.
    pub level: Option<u32>,
    /// `parquet.row.group.bytes`: estimated bytes after which a row group closes.
    pub row_group_bytes: usize,
    /// `parquet.page.bytes`: data page size.
    pub page_bytes: usize,
    /// `parquet.dictionary`.
    pub dictionary: bool,
    /// `parquet.dictionary.page.bytes`: dictionary size per column chunk past which a column
    /// falls back to plain encoding (parquet's and Arrow C++'s default, 1 MiB).
    pub dictionary_page_bytes: usize,
    /// `parquet.statistics`: none, chunk or page.
    pub statistics: ParquetStatistics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParquetStatistics {
    None,
    Chunk,
    Page,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            level: None,
            row_group_bytes: 64 << 20,
            page_bytes: 1 << 20,
            dictionary: true,
            dictionary_page_bytes: 1 << 20,
            statistics: ParquetStatistics::Page,
        }
    }
}

/// `json.schema.evolution`: what an inferred JSON schema does when records do not fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonEvolution {
    /// New fields add nullable columns, null/empty fields take their first real type, safe
    /// widening widens; values that fit no column's type go to the rescued-data column.
    #[default]
    AddNewColumns,
    /// The schema never changes after the first version; new fields and misfits are rescued.
    Rescue,
    /// A record with a field the schema does not have stops the job; misfits are rescued.
    FailOnNewColumns,
    /// The first version is kept and new fields are ignored (the pre-evolution behaviour), but
    /// values that fit no column's type are rescued rather than failing.
    None,
}

/// How JSON values without a declared `value.schema` get their schema.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonInference {
    pub evolution: JsonEvolution,
    /// `json.rescued.data.column`: the Utf8 column holding, as a JSON object, the fields of a
    /// record that fit no column.
    pub rescued_column: String,
    /// `value.schema.hints`: types fixed for the named top-level columns.
    pub hints: Option<arrow::datatypes::SchemaRef>,
    /// `json.schema.max.fields`: the most fields, counted at every level, a version may have.
    pub max_fields: usize,
    /// `json.schema.max.versions`: the version past which the schema no longer changes.
    pub max_versions: u64,
}

/// Default of `json.schema.max.fields`.
pub const DEFAULT_MAX_FIELDS: usize = 1000;
/// Default of `json.schema.max.versions`.
pub const DEFAULT_MAX_VERSIONS: u64 = 100;

impl Default for JsonInference {
    fn default() -> Self {
        JsonInference {
            evolution: JsonEvolution::AddNewColumns,
            rescued_column: "_rescued_data".to_string(),
            hints: None,
            max_fields: DEFAULT_MAX_FIELDS,
            max_versions: DEFAULT_MAX_VERSIONS,
        }
    }
}

fn json_inference<'a>(
    get: &impl Fn(&str) -> Option<(&'a str, &'a str)>,
) -> Result<JsonInference, ConfigError> {
    let evolution = match get("json.schema.evolution") {
        None => JsonEvolution::AddNewColumns,
        Some((key, v)) => match v.to_ascii_lowercase().as_str() {
            "add-new-columns" => JsonEvolution::AddNewColumns,
            "rescue" => JsonEvolution::Rescue,
            "fail-on-new-columns" => JsonEvolution::FailOnNewColumns,
            "none" => JsonEvolution::None,
            _ => {
                return Err(invalid(
                    key,
                    v,
                    "add-new-columns, rescue, fail-on-new-columns or none",
                ))
            }
        },
    };
    let rescued_column = match get("json.rescued.data.column") {
        None => "_rescued_data".to_string(),
        Some((key, v)) if v.trim().is_empty() => return Err(invalid(key, v, "a column name")),
        Some((_, v)) => v.trim().to_string(),
    };
    let hints = get("value.schema.hints")
        .map(|(key, v)| {
            super::schema_ddl::parse_schema(v)
                .map(std::sync::Arc::new)
                .map_err(|e| invalid(key, v, e))
        })
        .transpose()?;
    let cap = |name: &str, default: u64| match get(name) {
        None => Ok(default),
        Some((key, v)) => super::values::number(key, v.trim(), 1, 100_000),
    };
    Ok(JsonInference {
        evolution,
        rescued_column,
        hints,
        max_fields: cap("json.schema.max.fields", DEFAULT_MAX_FIELDS as u64)? as usize,
        max_versions: cap("json.schema.max.versions", DEFAULT_MAX_VERSIONS)?,
    })
}

/// Everything this module reads.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatSettings {
    pub avro: Option<AvroSource>,
    /// Protobuf input (`ProtobufConverter`): the Schema Registry it takes schemas from.
    pub protobuf: Option<RegistrySettings>,
    /// JSON Schema values (`JsonSchemaConverter`): the Schema Registry keys.
    pub json_schema: Option<RegistrySettings>,
    /// Kafka Connect JSON envelopes: the output schema as Connect schema JSON, if declared.
    pub connect_schema: Option<String>,
    pub null_values: NullValues,
    pub compatibility: Compat,
    pub store_keys: bool,
    pub store_headers: bool,
    pub avro_codec: AvroCodec,
    pub jsonl: JsonlOptions,
    pub csv: CsvOptions,
    pub parquet: ParquetOptions,
    pub json: JsonInference,
}

fn invalid(key: &str, value: &str, allowed: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.into(),
        value: value.into(),
        allowed: allowed.into(),
    }
}

fn flag(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "true or false")),
    }
}

fn byte(key: &str, value: &str) -> Result<u8, ConfigError> {
    let v = match value {
        "\\t" | "tab" => "\t",
        v => v,
    };
    match v.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(invalid(key, value, "one ASCII character (\\t for a tab)")),
    }
}

fn size(key: &str, value: &str, min: usize) -> Result<usize, ConfigError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|&n| n >= min)
        .ok_or_else(|| invalid(key, value, format!("a number of bytes >= {min}")))
}

/// Reads the keys of this module. `avro_input` / `connect_json` / `json_schema`: the value
/// converter chosen.
pub fn from_config<'a>(
    get: impl Fn(&str) -> Option<(&'a str, &'a str)>,
    avro_input: bool,
    connect_json: bool,
    json_schema: bool,
) -> Result<FormatSettings, ConfigError> {
    let boolean = |k: &str, default: bool| -> Result<bool, ConfigError> {
        get(k).map_or(Ok(default), |(key, v)| flag(key, v))
    };
    Ok(FormatSettings {
        avro: if avro_input {
            Some(avro_source(&get)?)
        } else {
            None
        },
        protobuf: None,
        json_schema: if json_schema {
            Some(json_schema_registry(&get)?)
        } else {
            None
        },
        connect_schema: if connect_json {
            get("value.connect.schema").map(|(_, s)| s.to_string())
        } else {
            None
        },
        null_values: match get("behavior.on.null.values") {
            None => NullValues::Fail,
            Some((key, v)) => match v.to_ascii_lowercase().as_str() {
                "fail" => NullValues::Fail,
                "ignore" => NullValues::Ignore,
                "write" => NullValues::Write,
                _ => return Err(invalid(key, v, "fail, ignore or write")),
            },
        },
        compatibility: match get("schema.compatibility") {
            None => Compat::None,
            Some((key, v)) => v
                .parse::<Compat>()
                .map_err(|_| invalid(key, v, "NONE, BACKWARD, FORWARD or FULL"))?,
        },
        store_keys: boolean("store.kafka.keys", false)?,
        store_headers: boolean("store.kafka.headers", false)?,
        avro_codec: match get("avro.codec") {
            None => AvroCodec::Null,
            Some((key, v)) => v
                .parse::<AvroCodec>()
                .map_err(|_| invalid(key, v, "null, deflate, snappy or zstandard"))?,
        },
        jsonl: jsonl_options(&get)?,
        csv: csv_options(&get)?,
        parquet: parquet_options(&get)?,
        json: json_inference(&get)?,
    })
}

/// Where Avro input takes its schemas: the Schema Registry or `value.avro.schema`, exactly one.
fn avro_source<'a>(
    get: &impl Fn(&str) -> Option<(&'a str, &'a str)>,
) -> Result<AvroSource, ConfigError> {
    match (
        get("value.converter.schema.registry.url"),
        get("value.avro.schema"),
    ) {
        (Some(_), Some(_)) => Err(ConfigError::Conflict(
            "value.converter.schema.registry.url and value.avro.schema are both set: \
             Confluent-framed values take their schemas from the registry, plain Avro \
             values from value.avro.schema"
                .into(),
        )),
        (Some((_, urls)), None) => registry_settings(get, urls).map(AvroSource::Registry),
        (None, Some((_, schema))) => Ok(AvroSource::Fixed(schema.to_string())),
        (None, None) => Err(ConfigError::Missing {
            key: "value.converter.schema.registry.url".into(),
            why: "Avro values need the Schema Registry (Confluent wire format) or \
                  value.avro.schema (plain Avro with one schema)"
                .into(),
        }),
    }
}

/// The registry of Protobuf input: `value.converter.schema.registry.url` is required (the
/// Confluent wire format carries schema ids only), with the same auth and TLS keys as Avro.
pub fn protobuf_registry<'a>(
    get: impl Fn(&str) -> Option<(&'a str, &'a str)>,
) -> Result<RegistrySettings, ConfigError> {
    match get("value.converter.schema.registry.url") {
        Some((_, urls)) => registry_settings(&get, urls),
        None => Err(ConfigError::Missing {
            key: "value.converter.schema.registry.url".into(),
            why: "Protobuf values (io.confluent.connect.protobuf.ProtobufConverter) take their \
                  schemas from the Schema Registry"
                .into(),
        }),
    }
}

/// JSON Schema values take their schemas from the registry: its URL is required.
fn json_schema_registry<'a>(
    get: &impl Fn(&str) -> Option<(&'a str, &'a str)>,
) -> Result<RegistrySettings, ConfigError> {
    match get("value.converter.schema.registry.url") {
        Some((_, urls)) => registry_settings(get, urls),
        None => Err(ConfigError::Missing {
            key: "value.converter.schema.registry.url".into(),
            why: "JSON Schema values (JsonSchemaConverter) carry a schema id; their schemas \
                  come from the Schema Registry"
                .into(),
        }),
    }
}

/// The Schema Registry keys, checked now (URLs, credentials, bearer token, TLS files) so that a
/// mistake stops `check-config` and the job before it starts.
fn registry_settings<'a>(
    get: &impl Fn(&str) -> Option<(&'a str, &'a str)>,
    urls: &str,
) -> Result<RegistrySettings, ConfigError> {
    const P: &str = "value.converter.";
    let value = |k: &str| get(&format!("{P}{k}")).map(|(_, v)| v);
    let bearer_token = match value("bearer.auth.credentials.source") {
        None if value("bearer.auth.token").is_none() => None,
        None => value("bearer.auth.token").map(str::to_string),
        Some(s) if s.eq_ignore_ascii_case("STATIC_TOKEN") => Some(
            value("bearer.auth.token")
                .ok_or_else(|| ConfigError::Missing {
                    key: format!("{P}bearer.auth.token"),
                    why: "bearer.auth.credentials.source=STATIC_TOKEN sends this token".into(),
                })?
                .to_string(),
        ),
        Some(s) => {
            return Err(invalid(
                &format!("{P}bearer.auth.credentials.source"),
                s,
                "STATIC_TOKEN (the only source StreamX implements)",
            ))
        }
    };
    match value("schema.registry.ssl.endpoint.identification.algorithm") {
        None => {}
        Some(v) if v.eq_ignore_ascii_case("https") => {}
        Some(v) => {
            return Err(invalid(
                &format!("{P}schema.registry.ssl.endpoint.identification.algorithm"),
                v,
                "https: the Schema Registry client always checks that the certificate names the \
             URL's host; give the registry a certificate whose subjectAltName has that host or IP",
            ))
        }
    }
    let prefix = format!("{P}schema.registry.");
    let tls =
        super::java_stores::pem_material(&prefix, &|k| value(&format!("schema.registry.{k}")))?;
    let settings = RegistrySettings {
        urls: urls.to_string(),
        credentials_source: value("basic.auth.credentials.source").map(str::to_string),
        user_info: value("basic.auth.user.info").map(str::to_string),
        bearer_token,
        tls,
    };
    crate::decode::registry::RegistryConfig::from_settings(&settings).map_err(|e| {
        ConfigError::InvalidValue {
            key: format!("{P}schema.registry.url"),
            value: urls.to_string(),
            allowed: e.to_string(),
        }
    })?;
    Ok(settings)
}

fn jsonl_options<'a>(
    get: &impl Fn(&str) -> Option<(&'a str, &'a str)>,
) -> Result<JsonlOptions, ConfigError> {
    let gzip = match get("compression.type") {
        None => false,
        Some((key, v)) => match v.to_ascii_lowercase().as_str() {
            "none" => false,
            "gzip" => true,
            _ => return Err(invalid(key, v, "none or gzip (JSON lines output)")),
        },
    };
    let gzip_level = match get("compression.level") {
        None => 6,
        Some((key, v)) => v
            .parse::<u32>()
            .ok()
            .filter(|l| *l <= 9)
            .ok_or_else(|| invalid(key, v, "0 to 9"))?,
    };
    Ok(JsonlOptions { gzip, gzip_level })
}

fn csv_options<'a>(
    get: &impl Fn(&str) -> Option<(&'a str, &'a str)>,
) -> Result<CsvOptions, ConfigError> {
    Ok(CsvOptions {
        header: get("csv.header").map_or(Ok(true), |(key, v)| flag(key, v))?,
        delimiter: get("csv.delimiter").map_or(Ok(b','), |(k, v)| byte(k, v))?,
        quote: get("csv.quote").map_or(Ok(b'"'), |(k, v)| byte(k, v))?,
        quote_style: match get("csv.quote.style") {
            None => CsvQuoteStyle::Necessary,
            Some((key, v)) => match v.to_ascii_lowercase().as_str() {
                "necessary" => CsvQuoteStyle::Necessary,
                "always" => CsvQuoteStyle::Always,
                _ => return Err(invalid(key, v, "necessary or always")),
            },
        },
    })
}

fn parquet_options<'a>(
    get: &impl Fn(&str) -> Option<(&'a str, &'a str)>,
) -> Result<ParquetOptions, ConfigError> {
    let defaults = ParquetOptions::default();
    Ok(ParquetOptions {
        level: get("parquet.codec.level")
            .map(|(key, v)| {
                v.parse::<u32>()
                    .ok()
                    .filter(|l| *l <= 22)
                    .ok_or_else(|| invalid(key, v, "a level (zstd 1-22, gzip 0-9)"))
            })
            .transpose()?,
        row_group_bytes: get("parquet.row.group.bytes")
            .map_or(Ok(defaults.row_group_bytes), |(k, v)| size(k, v, 1024))?,
        page_bytes: get("parquet.page.bytes")
            .map_or(Ok(defaults.page_bytes), |(k, v)| size(k, v, 1024))?,
        dictionary: get("parquet.dictionary").map_or(Ok(true), |(key, v)| flag(key, v))?,
        dictionary_page_bytes: get("parquet.dictionary.page.bytes")
            .map_or(Ok(defaults.dictionary_page_bytes), |(k, v)| {
                size(k, v, 1024)
            })?,
        statistics: match get("parquet.statistics") {
            None => ParquetStatistics::Page,
            Some((key, v)) => match v.to_ascii_lowercase().as_str() {
                "none" => ParquetStatistics::None,
                "chunk" => ParquetStatistics::Chunk,
                "page" => ParquetStatistics::Page,
                _ => return Err(invalid(key, v, "none, chunk or page")),
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(
        pairs: &[(&'static str, &'static str)],
        avro: bool,
    ) -> Result<FormatSettings, ConfigError> {
        let m: HashMap<&str, &str> = pairs.iter().copied().collect();
        from_config(
            |k| m.get_key_value(k).map(|(k, v)| (*k, *v)),
            avro,
            false,
            false,
        )
    }

    #[test]
    fn defaults_follow_connect() {
        let s = read(&[], false).unwrap();
        assert_eq!(s.null_values, NullValues::Fail);
        assert_eq!(s.compatibility, Compat::None);
        assert_eq!(s.avro_codec, AvroCodec::Null);
        assert!(!s.jsonl.gzip && s.csv.header && s.parquet.dictionary);
        assert!(!s.store_keys && !s.store_headers);
        assert_eq!(s.parquet.dictionary_page_bytes, 1 << 20);
        let s = read(&[("parquet.dictionary.page.bytes", "262144")], false).unwrap();
        assert_eq!(s.parquet.dictionary_page_bytes, 256 << 10);
    }

    #[test]
    fn avro_needs_a_registry_or_a_schema() {
        let e = read(&[], true).unwrap_err().to_string();
        assert!(e.contains("value.converter.schema.registry.url"), "{e}");
        let s = read(
            &[
                ("value.converter.schema.registry.url", "http://r:8081"),
                ("value.converter.basic.auth.user.info", "u:p"),
            ],
            true,
        )
        .unwrap();
        assert!(matches!(s.avro, Some(AvroSource::Registry { .. })));
        assert!(read(
            &[
                ("value.converter.schema.registry.url", "http://r:8081"),
                ("value.avro.schema", "{}")
            ],
            true
        )
        .is_err());
    }

    #[test]
    fn bad_values_name_the_key() {
        for (k, v) in [
            ("behavior.on.null.values", "drop"),
            ("schema.compatibility", "SIDEWAYS"),
            ("avro.codec", "lzma"),
            ("csv.delimiter", ";;"),
            ("parquet.statistics", "some"),
            ("parquet.dictionary.page.bytes", "512"),
            ("compression.type", "brotli"),
        ] {
            let e = read(&[(k, v)], false).unwrap_err().to_string();
            assert!(e.contains(k) && e.contains(v), "{e}");
        }
        let s = read(
            &[
                ("csv.delimiter", "\\t"),
                ("schema.compatibility", "backward"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(s.csv.delimiter, b'\t');
        assert_eq!(s.compatibility, Compat::Backward);
    }
}
