//! The `hive.*` keys parsed into [`HiveConfig`] (`Config::hive`), and the checks that refuse a
//! Hive setup StreamX could not register: an output format Hive cannot read (`format.class=raw`)
//! and a partition rule with unnamed levels (directories without `name=`).
//!
//! The types live in `hive::config`; this section parser depends on them, never the reverse.

use std::collections::BTreeMap;
use std::time::Duration;

use super::values::invalid;
use super::{ConfigError, OutputFormat};
use crate::hive::config::HiveConfig;
use crate::hive::metastore::MetastoreConfig;
use crate::hive::table::{hive_object_name, FileFormat, SchemeMap};
use crate::partition::RuleSpec;

/// How Hive reads the files of `format`, or why it cannot. Every output format StreamX gains
/// gets its arm here (Avro, JSON lines and CSV have theirs in [`FileFormat`] already); until
/// then the catch-all arm refuses it at config validation.
#[allow(unreachable_patterns)]
pub fn table_format(format: OutputFormat) -> Result<FileFormat, &'static str> {
    match format {
        OutputFormat::Parquet => Ok(FileFormat::Parquet),
        // Hive's AvroSerDe derives the Avro schema from the table's columns.
        OutputFormat::Avro => Ok(FileFormat::Avro {
            schema_literal: None,
        }),
        OutputFormat::Raw => Err(
            "format.class=raw writes record values as they are, with no schema Hive could read; \
             use format.class=parquet with hive.integration=true",
        ),
        // JSON lines need hive-hcatalog-core's JsonSerDe, CSV tables read every column as a
        // string (OpenCSVSerde): neither can be checked with the Spark of the test machines.
        _ => Err("hive.integration=true supports format.class=parquet or avro for now"),
    }
}

/// `k=v` pairs separated by commas (spaces around them trimmed).
fn pairs(key: &str, value: &str, what: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.push((k.trim().to_string(), v.trim().to_string()))
            }
            _ => return Err(invalid(key, value, format!("comma-separated {what}"))),
        }
    }
    Ok(out)
}

/// Parses the `hive.*` keys. `get` returns `(key as spelt, value)` of a set key or its registry
/// default. `None` when `hive.integration` is false.
pub fn from_config<'a>(
    get: impl Fn(&'static str) -> Option<(&'a str, &'a str)>,
    format: OutputFormat,
    rule: &RuleSpec,
) -> Result<Option<HiveConfig>, ConfigError> {
    let enabled = match get("hive.integration") {
        None => false,
        Some((key, value)) => match value.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(invalid(key, value, "true or false")),
        },
    };
    if !enabled {
        return Ok(None);
    }
    let format = table_format(format).map_err(|why| ConfigError::Conflict(why.into()))?;
    if let RuleSpec::Levels { key, levels, .. } = rule {
        if let Some(i) = levels.iter().position(|l| l.name.is_none()) {
            return Err(ConfigError::Conflict(format!(
                "hive.integration=true needs named partition directories (name=value), but \
                 directory level {} of {} of the rule of '{key}' has no name; write \
                 path.format levels as 'name'=pattern, e.g. 'year'=YYYY/'month'=MM",
                i + 1,
                levels.len()
            )));
        }
    }
    let (uris_key, uris) = get("hive.metastore.uris").ok_or_else(|| ConfigError::Missing {
        key: "hive.metastore.uris".into(),
        why: "hive.integration=true needs the metastore, e.g. thrift://metastore:9083".into(),
    })?;
    let mut metastore =
        MetastoreConfig::from_uris(uris).map_err(|e| invalid(uris_key, uris, e.to_string()))?;
    metastore.retries = 1;
    metastore.io_timeout = Duration::from_secs(30);
    let name = |canonical: &'static str, what: &'static str| {
        get(canonical)
            .map(|(key, value)| {
                hive_object_name(what, value).map_err(|e| invalid(key, value, e.to_string()))
            })
            .transpose()
    };
    let database = name("hive.database", "database")?.unwrap_or_else(|| "default".into());
    let table_name = name("hive.table.name", "table")?;
    let mut schemes = SchemeMap::identity();
    if let Some((key, value)) = get("hive.location.scheme.map") {
        for (from, to) in pairs(key, value, "scheme rewrites from=to, e.g. s3=s3a")? {
            schemes = schemes.with(&from, &to);
        }
    }
    let table_properties = match get("hive.table.properties") {
        Some((key, value)) => pairs(key, value, "table properties k=v")?
            .into_iter()
            .collect(),
        None => BTreeMap::new(),
    };
    let max_backoff = match get("hive.retry.backoff.max.ms") {
        Some((key, value)) => match value.parse::<u64>() {
            Ok(ms) if ms >= 10 => Duration::from_millis(ms),
            _ => return Err(invalid(key, value, "milliseconds, >= 10")),
        },
        None => Duration::from_secs(30),
    };
    Ok(Some(HiveConfig {
        metastore,
        database,
        table_name,
        schemes,
        table_properties,
        max_backoff,
        format,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Level;

    fn parse(pairs: &[(&'static str, &'static str)]) -> Result<Option<HiveConfig>, ConfigError> {
        parse_with(pairs, OutputFormat::Parquet, &named_rule())
    }

    fn parse_with(
        pairs: &[(&'static str, &'static str)],
        format: OutputFormat,
        rule: &RuleSpec,
    ) -> Result<Option<HiveConfig>, ConfigError> {
        let map: BTreeMap<&'static str, &'static str> = pairs.iter().copied().collect();
        from_config(
            |k| {
                map.get(k)
                    .map(|v| (k, *v))
                    .or_else(|| super::super::keys::default_of(k).map(|d| (k, d)))
            },
            format,
            rule,
        )
    }

    fn named_rule() -> RuleSpec {
        RuleSpec::Levels {
            key: "partitioner.class".into(),
            levels: vec![Level {
                name: Some("dt".into()),
                sql: "x".into(),
            }],
            requires_timestamp: false,
        }
    }

    const ON: (&str, &str) = ("hive.integration", "true");
    const URIS: (&str, &str) = ("hive.metastore.uris", "thrift://a:9083,thrift://b");

    #[test]
    fn disabled_by_default() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(parse(&[("hive.integration", "FALSE")]).unwrap(), None);
        let err = parse(&[("hive.integration", "yes")]).unwrap_err();
        assert!(err.to_string().contains("true or false"), "{err}");
    }

    #[test]
    fn defaults_when_enabled() {
        let c = parse(&[ON, URIS]).unwrap().unwrap();
        assert_eq!(c.metastore.uris.len(), 2);
        assert_eq!(c.metastore.uris[1].port, 9083);
        assert_eq!(c.database, "default");
        assert_eq!(c.table_name, None);
        assert_eq!(c.table_for("Orders.EU-1"), "orders_eu_1");
        assert_eq!(c.schemes, SchemeMap::default());
        assert!(c.table_properties.is_empty());
        assert_eq!(c.max_backoff, Duration::from_secs(30));
        assert_eq!(c.format, FileFormat::Parquet);
        assert_eq!(
            c.location_for("s3://bucket/base/", "topics", "t").unwrap(),
            "s3a://bucket/base/topics/t"
        );
        assert_eq!(
            c.location_for("/data/out", "/topics/", "t").unwrap(),
            "file:///data/out/topics/t"
        );
    }

    #[test]
    fn every_key() {
        let c = parse(&[
            ON,
            URIS,
            ("hive.database", "Analytics"),
            ("hive.table.name", "Clicks_2"),
            ("hive.location.scheme.map", "s3=s3, gs = gcs"),
            (
                "hive.table.properties",
                "owner=team, parquet.compression=SNAPPY",
            ),
            ("hive.retry.backoff.max.ms", "2000"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.database, "analytics");
        assert_eq!(c.table_for("anything"), "clicks_2");
        assert_eq!(
            c.location_for("s3://b", "topics", "t").unwrap(),
            "s3://b/topics/t"
        );
        assert_eq!(
            c.location_for("gs://b", "topics", "t").unwrap(),
            "gcs://b/topics/t"
        );
        assert_eq!(c.table_properties["owner"], "team");
        assert_eq!(c.table_properties["parquet.compression"], "SNAPPY");
        assert_eq!(c.max_backoff, Duration::from_secs(2));
    }

    #[test]
    fn errors_name_the_key() {
        let cases: &[(&[(&'static str, &'static str)], &str)] = &[
            (&[ON], "hive.metastore.uris"),
            (&[ON, ("hive.metastore.uris", "http://x:1")], "thrift://"),
            (&[ON, URIS, ("hive.database", "my-db")], "hive.database"),
            (&[ON, URIS, ("hive.table.name", "a b")], "hive.table.name"),
            (
                &[ON, URIS, ("hive.location.scheme.map", "s3")],
                "hive.location.scheme.map",
            ),
            (
                &[ON, URIS, ("hive.table.properties", "=x")],
                "hive.table.properties",
            ),
            (
                &[ON, URIS, ("hive.retry.backoff.max.ms", "soon")],
                "hive.retry.backoff.max.ms",
            ),
        ];
        for (pairs, needle) in cases {
            let err = parse(pairs).unwrap_err().to_string();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn raw_output_is_refused() {
        let err = parse_with(&[ON, URIS], OutputFormat::Raw, &named_rule()).unwrap_err();
        assert!(err.to_string().contains("format.class=raw"), "{err}");
        assert!(parse_with(&[URIS], OutputFormat::Raw, &named_rule())
            .unwrap()
            .is_none());
    }

    #[test]
    fn unnamed_levels_are_refused() {
        let rule = RuleSpec::Levels {
            key: "path.format".into(),
            levels: vec![
                Level {
                    name: Some("year".into()),
                    sql: "y".into(),
                },
                Level {
                    name: None,
                    sql: "date_format(t, '%m')".into(),
                },
            ],
            requires_timestamp: true,
        };
        let err = parse_with(&[ON, URIS], OutputFormat::Parquet, &rule).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("path.format") && msg.contains("level 2 of 2"),
            "{msg}"
        );
    }
}
