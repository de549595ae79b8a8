//! Tests of compiled partition rules: time buckets across DST changes and time zones (checked
//! against an independent implementation of kafka-connect-hdfs's bucketing), field values with
//! nulls, nesting and characters that need escaping.

use super::*;
use crate::partition::preset;
use arrow::array::{Int64Array, StructArray, TimestampMillisecondArray};
use arrow::datatypes::{Field, Fields, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::{NaiveDate, Offset, TimeZone};
use std::collections::HashMap;

fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

fn ts_batch(times: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "_timestamp",
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        true,
    )]));
    let a = TimestampMillisecondArray::from(times.to_vec()).with_timezone("UTC");
    RecordBatch::try_new(schema, vec![Arc::new(a)]).unwrap()
}

fn rule_for(pairs: &[(&'static str, &'static str)], schema: &SchemaRef) -> CompiledRule {
    let m: HashMap<&str, &str> = pairs.iter().copied().collect();
    let (spec, _) = preset::from_config(|k| m.get_key_value(k).map(|(k, v)| (*k, *v))).unwrap();
    CompiledRule::compile(&SqlCompiler::new(), &spec, schema).unwrap()
}

/// Directory of each row.
fn dirs(rule: &CompiledRule, batch: &RecordBatch) -> Vec<String> {
    let arrays: Vec<ArrayRef> = rule
        .exprs()
        .iter()
        .map(|e| {
            e.evaluate(batch)
                .unwrap()
                .into_array(batch.num_rows())
                .unwrap()
        })
        .collect();
    let mut out = vec![String::new(); batch.num_rows()];
    for g in rule.group(&arrays).unwrap() {
        match g.rows {
            None => out.iter_mut().for_each(|d| *d = g.dir.clone()),
            Some(rows) => rows.iter().for_each(|&r| out[r as usize] = g.dir.clone()),
        }
    }
    out
}

/// kafka-connect-hdfs's bucketing, written independently: local time, floored, formatted.
fn connect_bucket(tz: chrono_tz::Tz, duration_ms: i64, ts: i64, fmt: &str) -> String {
    let utc = chrono::DateTime::from_timestamp_millis(ts).unwrap();
    let offset = tz
        .offset_from_utc_datetime(&utc.naive_utc())
        .fix()
        .local_minus_utc() as i64;
    let adjusted = ts + offset * 1000;
    let floored = adjusted - adjusted.rem_euclid(duration_ms);
    chrono::DateTime::from_timestamp_millis(floored)
        .unwrap()
        .naive_utc()
        .format(fmt)
        .to_string()
}

#[test]
fn hourly_across_dst_and_zones_matches_connect_bucketing() {
    let zones: [(&'static str, chrono_tz::Tz); 4] = [
        ("Europe/Berlin", chrono_tz::Europe::Berlin),
        ("America/New_York", chrono_tz::America::New_York),
        ("UTC", chrono_tz::UTC),
        ("Asia/Kolkata", chrono_tz::Asia::Kolkata),
    ];
    // Every 5 minutes over the hours around the 2024 switches (EU: Mar 31 / Oct 27 01:00 UTC,
    // US: Mar 10 07:00 UTC / Nov 3 06:00 UTC), and around midnight in Kolkata.
    let mut times = Vec::new();
    for start in [
        ms(2024, 3, 30, 22, 0),
        ms(2024, 10, 26, 22, 0),
        ms(2024, 3, 10, 4, 0),
        ms(2024, 11, 3, 3, 0),
        ms(2024, 1, 1, 16, 0),
    ] {
        for i in 0..(6 * 12) {
            times.push(start + i * 5 * 60_000);
        }
    }
    let batch = ts_batch(&times);
    for (name, tz) in zones {
        for (duration, fmt, joda) in [
            (900_000i64, "t=%Y%m%d%H%M", "'t'=YYYYMMddHHmm"),
            (3_600_000, "day=%d/hour=%H", "'day'=dd/'hour'=HH"),
            (86_400_000, "dt=%Y-%m-%d", "'dt'=YYYY-MM-dd"),
        ] {
            let d = duration.to_string();
            let pairs: Vec<(&'static str, &'static str)> = vec![
                ("partitioner.class", "TimeBased"),
                ("timezone", name),
                ("path.format", Box::leak(joda.to_string().into_boxed_str())),
                ("partition.duration.ms", Box::leak(d.into_boxed_str())),
            ];
            let rule = rule_for(&pairs, &batch.schema());
            let got = dirs(&rule, &batch);
            for (i, &t) in times.iter().enumerate() {
                assert_eq!(
                    got[i],
                    connect_bucket(tz, duration, t, fmt),
                    "{name} duration {duration} at {t}"
                );
            }
        }
    }
}

#[test]
fn named_switch_hours() {
    let berlin = [
        ("partitioner.class", "Hourly"),
        ("timezone", "Europe/Berlin"),
    ];
    let b = ts_batch(&[
        ms(2024, 3, 31, 0, 59),
        ms(2024, 3, 31, 1, 0),
        ms(2024, 10, 27, 0, 30),
        ms(2024, 10, 27, 1, 30),
    ]);
    let rule = rule_for(&berlin, &b.schema());
    assert_eq!(
        dirs(&rule, &b),
        vec![
            "year=2024/month=03/day=31/hour=01",
            "year=2024/month=03/day=31/hour=03", // 02:xx does not exist that night
            "year=2024/month=10/day=27/hour=02", // 02:30 summer time...
            "year=2024/month=10/day=27/hour=02", // ...and 02:30 winter time share the hour
        ]
    );
    let ny = [
        ("partitioner.class", "Daily"),
        ("timezone", "America/New_York"),
    ];
    let b = ts_batch(&[ms(2024, 11, 3, 3, 59), ms(2024, 11, 3, 4, 0)]);
    let rule = rule_for(&ny, &b.schema());
    assert_eq!(
        dirs(&rule, &b),
        vec!["year=2024/month=11/day=02", "year=2024/month=11/day=03"]
    );
    let kolkata = [
        ("partitioner.class", "TimeBased"),
        ("timezone", "Asia/Kolkata"),
        ("path.format", "'dt'=YYYY-MM-dd/'t'=HHmm"),
        ("partition.duration.ms", "900000"),
    ];
    let b = ts_batch(&[ms(2024, 1, 1, 4, 44), ms(2024, 1, 1, 4, 45)]);
    let rule = rule_for(&kolkata, &b.schema());
    assert_eq!(
        dirs(&rule, &b),
        vec!["dt=2024-01-01/t=1000", "dt=2024-01-01/t=1015"]
    );
}

fn field_batch() -> RecordBatch {
    let inner = Fields::from(vec![Field::new("country", DataType::Utf8, true)]);
    let user = StructArray::new(
        inner.clone(),
        vec![Arc::new(StringArray::from(vec![
            Some("DE"),
            None,
            Some("a/b=c"),
            Some("Ελλάδα"),
            Some(""),
        ])) as ArrayRef],
        None,
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("region", DataType::Utf8, true),
        Field::new("user", DataType::Struct(inner), true),
        Field::new("n", DataType::Int64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![
                Some("eu west"),
                Some("eu west"),
                None,
                Some("50%"),
                Some("東京"),
            ])),
            Arc::new(user),
            Arc::new(Int64Array::from(vec![
                Some(1),
                Some(1),
                None,
                Some(3),
                Some(3),
            ])),
        ],
    )
    .unwrap()
}

#[test]
fn field_partitioning_nulls_nesting_escaping() {
    let b = field_batch();
    let rule = rule_for(
        &[
            ("partitioner.class", "Field"),
            ("partition.field.name", "region,user.country"),
        ],
        &b.schema(),
    );
    assert_eq!(rule.names(), vec![Some("region"), Some("user.country")]);
    assert_eq!(
        dirs(&rule, &b),
        vec![
            "region=eu west/user.country=DE",
            "region=eu west/user.country=__HIVE_DEFAULT_PARTITION__",
            "region=__HIVE_DEFAULT_PARTITION__/user.country=a%2Fb%3Dc",
            "region=50%25/user.country=Ελλάδα",
            "region=東京/user.country=__HIVE_DEFAULT_PARTITION__",
        ]
    );
}

#[test]
fn sql_rules_need_names_and_group_in_first_seen_order() {
    let b = field_batch();
    let compiler = SqlCompiler::new();
    let spec = RuleSpec::Sql {
        key: "partition.by".into(),
        list: "n, upper(region) AS r".into(),
    };
    let rule = CompiledRule::compile(&compiler, &spec, &b.schema()).unwrap();
    let arrays: Vec<ArrayRef> = rule
        .exprs()
        .iter()
        .map(|e| e.evaluate(&b).unwrap().into_array(5).unwrap())
        .collect();
    let groups = rule.group(&arrays).unwrap();
    assert_eq!(
        groups,
        vec![
            Group {
                dir: "n=1/r=EU WEST".into(),
                rows: Some(vec![0, 1])
            },
            Group {
                dir: "n=__HIVE_DEFAULT_PARTITION__/r=__HIVE_DEFAULT_PARTITION__".into(),
                rows: Some(vec![2])
            },
            Group {
                dir: "n=3/r=50%25".into(),
                rows: Some(vec![3])
            },
            Group {
                dir: "n=3/r=東京".into(),
                rows: Some(vec![4])
            },
        ]
    );
    let unnamed = RuleSpec::Sql {
        key: "partition.by".into(),
        list: "upper(region)".into(),
    };
    let e = CompiledRule::compile(&compiler, &unnamed, &b.schema()).unwrap_err();
    assert!(e.to_string().contains("AS name"), "{e}");
}

/// The default rule (a directory per Kafka partition) over `b`'s fields and `_partition`.
fn default_rule(b: &RecordBatch) -> CompiledRule {
    let mut f: Vec<Field> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    f.push(Field::new("_partition", DataType::Int32, false));
    rule_for(&[], &Arc::new(Schema::new(f)))
}

#[test]
fn one_group_means_every_row() {
    let b = field_batch();
    let rule = default_rule(&b);
    let arrays: Vec<ArrayRef> = vec![Arc::new(arrow::array::Int32Array::from(vec![7; 5]))];
    assert_eq!(
        rule.group(&arrays).unwrap(),
        vec![Group {
            dir: "partition=7".into(),
            rows: None
        }]
    );
}

#[test]
fn a_batch_of_one_value_per_level_is_one_group_whatever_the_type() {
    let b = field_batch();
    let rule = default_rule(&b);
    let one = |arrays: Vec<ArrayRef>| rule.group(&arrays).unwrap();
    let nulls: ArrayRef = Arc::new(arrow::array::Int32Array::from(vec![None::<i32>; 3]));
    assert_eq!(
        one(vec![nulls]),
        vec![Group {
            dir: "partition=__HIVE_DEFAULT_PARTITION__".into(),
            rows: None
        }]
    );
    // A null among values, a last row that differs, and floats that compare equal but print
    // apart are grouped row by row.
    let mixed: ArrayRef = Arc::new(arrow::array::Int32Array::from(vec![Some(7), None, Some(7)]));
    let last: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["a", "a", "b"]));
    let zeros: ArrayRef = Arc::new(arrow::array::Float64Array::from(vec![0.0, -0.0]));
    let counts: Vec<usize> = [mixed, last, zeros]
        .into_iter()
        .map(|a| one(vec![a]).len())
        .collect();
    assert_eq!(counts, [2, 2, 2]);
}
