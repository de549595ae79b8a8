//! The classic partitioners and timestamp extractors, spelled as SQL.
//!
//! `partitioner.class` (StreamX, kafka-connect-hdfs and Confluent storage class names, or short
//! names), `partition.field.name`, `path.format`, `partition.duration.ms`, `locale`, `timezone`,
//! `timestamp.extractor`, `timestamp.field` and `partition.by` / `partition.by.file` become one
//! [`RuleSpec`] and one [`TimestampSpec`]: SQL text that [`super::rule`] compiles like any user
//! rule. There is no separate code path per partitioner.
//!
//! Time buckets follow kafka-connect-hdfs: the timestamp is turned into local time in `timezone`,
//! floored to a multiple of `partition.duration.ms` counted from the local epoch, and formatted
//! with `path.format`:
//! `date_format(date_bin(INTERVAL '<d> milliseconds', to_local_time(<ts in tz>), TIMESTAMP '1970-01-01 00:00:00'), '<chrono>')`.

use std::str::FromStr;

use super::joda;
use super::{Level, RuleSpec, TimestampSpec};
use crate::config::ConfigError;

const HOURLY_FORMAT: &str = "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH";
const DAILY_FORMAT: &str = "'year'=YYYY/'month'=MM/'day'=dd";
const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 86_400_000;

fn invalid(key: &str, value: &str, allowed: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.into(),
        value: value.into(),
        allowed: allowed.into(),
    }
}

/// `"name"` as an SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` as an SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A dotted field path (`a.b.c`) as SQL: `"a"['b']['c']`.
pub fn field_path(path: &str) -> String {
    let mut parts = path.split('.');
    let mut sql = ident(parts.next().unwrap_or_default());
    for p in parts {
        sql.push_str(&format!("[{}]", literal(p)));
    }
    sql
}

/// Which partitioner a `partitioner.class` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Default,
    Field,
    TimeBased,
    Hourly,
    Daily,
}

impl Preset {
    /// Accepts `io.confluent.connect.storage.partitioner.TimeBasedPartitioner`,
    /// `io.confluent.connect.hdfs.partitioner.HourlyPartitioner`, `TimeBased`, `hourly`, ...
    pub fn parse(value: &str) -> Option<Preset> {
        let simple = value.rsplit('.').next().unwrap_or(value).trim();
        let lower = simple.to_ascii_lowercase();
        let short = lower.strip_suffix("partitioner").unwrap_or(&lower);
        Some(match short {
            "default" => Preset::Default,
            "field" => Preset::Field,
            "timebased" => Preset::TimeBased,
            "hourly" => Preset::Hourly,
            "daily" => Preset::Daily,
            _ => return None,
        })
    }
}

/// The SQL of the Kafka Connect default partitioner: `partition=<kafka partition>`.
pub fn default_rule() -> RuleSpec {
    RuleSpec::Levels {
        key: "partitioner.class".into(),
        levels: vec![Level {
            name: Some("partition".into()),
            sql: "_partition".into(),
        }],
        requires_timestamp: false,
    }
}

/// Reads the partitioning keys. `get(canonical)` returns `(key as spelt, value)` when set.
pub fn from_config<'a>(
    get: impl Fn(&str) -> Option<(&'a str, &'a str)>,
) -> Result<(RuleSpec, TimestampSpec), ConfigError> {
    let timestamp = timestamp_spec(&get)?;
    let by = get("partition.by");
    let by_file = get("partition.by.file");
    let class = get("partitioner.class");
    let preset = match class {
        Some((key, value)) => Some(Preset::parse(value).ok_or_else(|| {
            invalid(
                key,
                value,
                "Default, Field, TimeBased, Hourly or Daily (also as io.confluent.connect.storage.partitioner.<Name>Partitioner or io.confluent.connect.hdfs.partitioner.<Name>Partitioner)",
            )
        })?),
        None => None,
    };
    let sql = sql_rule_text(by, by_file)?;
    if let Some((key, list)) = sql {
        if let (Some((ckey, cvalue)), Some(p)) = (class, preset) {
            if p != Preset::Default {
                return Err(ConfigError::Conflict(format!(
                    "{key} and {ckey}={cvalue} both say how to partition; use one"
                )));
            }
        }
        if list.trim().is_empty() {
            return Err(invalid(&key, &list, "a list of SQL expressions, e.g. `region, date_format(_timestamp, '%Y-%m-%d') AS dt`"));
        }
        return Ok((RuleSpec::Sql { key, list }, timestamp));
    }
    let key = class
        .map(|(k, _)| k)
        .unwrap_or("partitioner.class")
        .to_string();
    let rule = match preset.unwrap_or(Preset::Default) {
        Preset::Default => default_rule(),
        Preset::Field => field_rule(&get, key)?,
        p @ (Preset::TimeBased | Preset::Hourly | Preset::Daily) => {
            time_rule(&get, key, p, &timestamp)?
        }
    };
    Ok((rule, timestamp))
}

/// `partition.by`, or the text of `partition.by.file` (at most one of them), with its key.
fn sql_rule_text(
    by: Option<(&str, &str)>,
    by_file: Option<(&str, &str)>,
) -> Result<Option<(String, String)>, ConfigError> {
    match (by, by_file) {
        (Some(_), Some(_)) => Err(ConfigError::Conflict(
            "partition.by and partition.by.file are both set; use one".into(),
        )),
        (Some((key, list)), None) => Ok(Some((key.to_string(), list.to_string()))),
        (None, Some((key, path))) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                invalid(
                    key,
                    path,
                    format!("a readable .sql file with a partition rule ({e})"),
                )
            })?;
            Ok(Some((key.to_string(), strip_statement_end(&text))))
        }
        (None, None) => Ok(None),
    }
}

/// The Field partitioner: one level per `partition.field.name` entry.
fn field_rule<'a>(
    get: &impl Fn(&str) -> Option<(&'a str, &'a str)>,
    key: String,
) -> Result<RuleSpec, ConfigError> {
    let (fkey, fields) = get("partition.field.name").ok_or_else(|| ConfigError::Missing {
        key: "partition.field.name".into(),
        why: "the Field partitioner needs the field(s) to partition by, comma-separated (nested: a.b)".into(),
    })?;
    let levels = fields
        .split(',')
        .map(str::trim)
        .map(|f| {
            if f.is_empty() || f.split('.').any(str::is_empty) {
                Err(invalid(
                    fkey,
                    fields,
                    "comma-separated field names, nested ones as a.b.c",
                ))
            } else {
                Ok(Level {
                    name: Some(f.to_string()),
                    sql: field_path(f),
                })
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RuleSpec::Levels {
        key,
        levels,
        requires_timestamp: false,
    })
}

/// The TimeBased, Hourly and Daily partitioners: `path.format` levels over time buckets.
fn time_rule<'a>(
    get: &impl Fn(&str) -> Option<(&'a str, &'a str)>,
    key: String,
    preset: Preset,
    timestamp: &TimestampSpec,
) -> Result<RuleSpec, ConfigError> {
    let (format_key, format) = match preset {
        Preset::Hourly => ("partitioner.class", HOURLY_FORMAT),
        Preset::Daily => ("partitioner.class", DAILY_FORMAT),
        _ => get("path.format").ok_or_else(|| ConfigError::Missing {
            key: "path.format".into(),
            why: "the TimeBased partitioner needs a directory pattern, e.g. 'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH".into(),
        })?,
    };
    let duration = match preset {
        Preset::Hourly => HOUR_MS,
        Preset::Daily => DAY_MS,
        _ => {
            let (dkey, d) = get("partition.duration.ms").ok_or_else(|| ConfigError::Missing {
                key: "partition.duration.ms".into(),
                why: "the TimeBased partitioner needs the bucket length, e.g. 3600000 for hours"
                    .into(),
            })?;
            d.parse::<u64>()
                .ok()
                .filter(|&d| d >= 1)
                .ok_or_else(|| invalid(dkey, d, "a whole number of milliseconds >= 1"))?
        }
    };
    let locale = get("locale").map(|(_, l)| l).unwrap_or("en");
    let tz = timezone(get)?;
    let levels =
        joda::parse_path_format(format, locale).map_err(|why| invalid(format_key, format, why))?;
    let bucket = bucket_sql(&timestamp.sql, &tz, duration);
    Ok(RuleSpec::Levels {
        key,
        levels: levels
            .into_iter()
            .map(|l| Level {
                name: l.name,
                sql: format!("date_format({bucket}, {})", literal(&l.chrono)),
            })
            .collect(),
        requires_timestamp: true,
    })
}

/// `timezone` (IANA name or offset), default UTC.
fn timezone<'a>(get: &impl Fn(&str) -> Option<(&'a str, &'a str)>) -> Result<String, ConfigError> {
    let Some((key, tz)) = get("timezone") else {
        return Ok("UTC".into());
    };
    arrow::array::timezone::Tz::from_str(tz).map_err(|e| {
        invalid(
            key,
            tz,
            format!("an IANA time zone such as Europe/Berlin or UTC ({e})"),
        )
    })?;
    Ok(tz.to_string())
}

/// SQL of the local-time bucket start of `ts_sql` (a timestamp expression) in `tz`.
pub fn bucket_sql(ts_sql: &str, tz: &str, duration_ms: u64) -> String {
    let utc = format!("arrow_cast({ts_sql}, 'Timestamp(Millisecond, Some(\"UTC\"))')");
    let zoned = format!(
        "arrow_cast({utc}, {})",
        literal(&format!("Timestamp(Millisecond, Some(\"{tz}\"))"))
    );
    format!(
        "date_bin(INTERVAL '{duration_ms} milliseconds', to_local_time({zoned}), TIMESTAMP '1970-01-01 00:00:00')"
    )
}

fn timestamp_spec<'a>(
    get: &impl Fn(&str) -> Option<(&'a str, &'a str)>,
) -> Result<TimestampSpec, ConfigError> {
    let (key, value) = get("timestamp.extractor").unwrap_or(("timestamp.extractor", "Record"));
    let simple = value
        .rsplit(['.', '$'])
        .next()
        .unwrap_or(value)
        .to_ascii_lowercase();
    let short = simple.strip_suffix("timestampextractor").unwrap_or(&simple);
    let spec = match short {
        "record" => TimestampSpec {
            sql: "_timestamp".into(),
            description: "the record's Kafka timestamp".into(),
        },
        "wallclock" => TimestampSpec {
            sql: "wallclock()".into(),
            description: "the wall clock".into(),
        },
        "recordfield" => {
            let (_, field) = get("timestamp.field").ok_or_else(|| ConfigError::Missing {
                key: "timestamp.field".into(),
                why: "timestamp.extractor=RecordField needs the field that holds the time (nested: a.b)".into(),
            })?;
            let (ukey, unit) = get("timestamp.field.unit").unwrap_or(("timestamp.field.unit", "ms"));
            let func = match unit {
                "ms" => "to_timestamp_millis",
                "s" => "to_timestamp_seconds",
                _ => return Err(invalid(ukey, unit, "ms or s (the unit of numeric timestamp fields)")),
            };
            TimestampSpec {
                sql: format!("{func}({})", field_path(field)),
                description: format!("field '{field}'"),
            }
        }
        _ => {
            return Err(invalid(
                key,
                value,
                "Record, RecordField or Wallclock (also as io.confluent.connect.storage.partitioner.TimeBasedPartitioner$<Name>TimestampExtractor)",
            ))
        }
    };
    Ok(spec)
}

/// Drops a trailing `;` (and whitespace) from a rule read from a file.
fn strip_statement_end(text: &str) -> String {
    let t = text.trim_end();
    t.strip_suffix(';').unwrap_or(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn spec(
        pairs: &[(&'static str, &'static str)],
    ) -> Result<(RuleSpec, TimestampSpec), ConfigError> {
        let m: HashMap<&str, &str> = pairs.iter().copied().collect();
        from_config(|k| m.get_key_value(k).map(|(k, v)| (*k, *v)))
    }

    #[test]
    fn class_names_as_connect_spells_them() {
        for (name, p) in [
            (
                "io.confluent.connect.storage.partitioner.TimeBasedPartitioner",
                Preset::TimeBased,
            ),
            (
                "io.confluent.connect.hdfs.partitioner.HourlyPartitioner",
                Preset::Hourly,
            ),
            ("DailyPartitioner", Preset::Daily),
            ("field", Preset::Field),
            ("Default", Preset::Default),
        ] {
            assert_eq!(Preset::parse(name), Some(p), "{name}");
        }
        assert_eq!(Preset::parse("Weekly"), None);
        let e = spec(&[("partitioner.class", "Weekly")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("partitioner.class") && e.contains("Weekly"),
            "{e}"
        );
    }

    #[test]
    fn default_is_the_kafka_partition() {
        let (rule, ts) = spec(&[]).unwrap();
        assert_eq!(rule, default_rule());
        assert_eq!(ts.sql, "_timestamp");
    }

    #[test]
    fn field_paths_nest() {
        let (rule, _) = spec(&[
            ("partitioner.class", "Field"),
            ("partition.field.name", "region, user.country"),
        ])
        .unwrap();
        let RuleSpec::Levels { levels, .. } = rule else {
            panic!()
        };
        assert_eq!(levels[0].sql, "\"region\"");
        assert_eq!(levels[1].name.as_deref(), Some("user.country"));
        assert_eq!(levels[1].sql, "\"user\"['country']");
        assert!(spec(&[("partitioner.class", "Field")])
            .unwrap_err()
            .to_string()
            .contains("partition.field.name"));
    }

    #[test]
    fn time_based_needs_format_and_duration_and_a_real_zone() {
        assert!(spec(&[("partitioner.class", "TimeBased")])
            .unwrap_err()
            .to_string()
            .contains("path.format"));
        assert!(
            spec(&[("partitioner.class", "TimeBased"), ("path.format", "YYYY")])
                .unwrap_err()
                .to_string()
                .contains("partition.duration.ms")
        );
        let e = spec(&[
            ("partitioner.class", "Hourly"),
            ("timezone", "Mars/Olympus"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("timezone") && e.contains("Mars/Olympus"), "{e}");
        let (rule, _) = spec(&[
            ("partitioner.class", "Hourly"),
            ("timezone", "Asia/Kolkata"),
        ])
        .unwrap();
        let RuleSpec::Levels {
            levels,
            requires_timestamp,
            ..
        } = rule
        else {
            panic!()
        };
        assert!(requires_timestamp);
        assert_eq!(levels.len(), 4);
        assert!(
            levels[3].sql.contains("Asia/Kolkata") && levels[3].sql.contains("3600000"),
            "{}",
            levels[3].sql
        );
    }

    #[test]
    fn extractors() {
        let (_, ts) = spec(&[("timestamp.extractor", "io.confluent.connect.storage.partitioner.TimeBasedPartitioner$WallclockTimestampExtractor")]).unwrap();
        assert_eq!(ts.sql, "wallclock()");
        let (_, ts) = spec(&[
            ("timestamp.extractor", "RecordField"),
            ("timestamp.field", "meta.ts"),
            ("timestamp.field.unit", "s"),
        ])
        .unwrap();
        assert_eq!(ts.sql, "to_timestamp_seconds(\"meta\"['ts'])");
        assert!(spec(&[("timestamp.extractor", "RecordField")])
            .unwrap_err()
            .to_string()
            .contains("timestamp.field"));
    }

    #[test]
    fn sql_rules_conflict_with_other_partitioners() {
        let e = spec(&[("partition.by", "a"), ("partitioner.class", "Hourly")]).unwrap_err();
        assert!(e.to_string().contains("partition.by"), "{e}");
        let (rule, _) = spec(&[("partition.by", "a"), ("partitioner.class", "Default")]).unwrap();
        assert!(matches!(rule, RuleSpec::Sql { .. }));
    }
}
