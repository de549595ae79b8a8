//! Unit tests of the registrar's pending set, backoff and directory parsing.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};

use super::*;
use crate::hive::model::FieldSchema;

fn work(dirs: &[&str], schema: Option<SchemaRef>) -> TopicWork {
    TopicWork {
        dirs: dirs.iter().map(|d| d.to_string()).collect(),
        schema,
    }
}

fn schema(cols: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|c| Field::new(*c, DataType::Int64, true))
            .collect::<Vec<_>>(),
    ))
}

#[test]
fn pending_merges_directories_and_keeps_the_newest_schema() {
    let mut p = Pending::default();
    assert!(p.is_empty());
    p.add("t", work(&["dt=1", "dt=2"], Some(schema(&["a"]))));
    p.add("t", work(&["dt=2", "dt=3"], Some(schema(&["a", "b"]))));
    p.add("t", work(&["dt=4"], None));
    p.add("u", work(&["x=1"], None));
    assert_eq!(p.dirs(), 5, "one entry per distinct directory");
    let mut taken = p.take();
    assert!(p.is_empty());
    let t = taken.remove("t").unwrap();
    assert_eq!(
        t,
        work(&["dt=1", "dt=2", "dt=3", "dt=4"], Some(schema(&["a", "b"])))
    );
    assert_eq!(taken.remove("u").unwrap(), work(&["x=1"], None));
}

#[test]
fn restored_work_is_merged_and_newer_schemas_win() {
    let mut p = Pending::default();
    let failed = work(&["dt=1", "dt=2"], Some(schema(&["a"])));
    // A commit arrived while the failed attempt ran.
    p.add("t", work(&["dt=3"], Some(schema(&["a", "b"]))));
    p.restore("t", failed.clone());
    let t = p.take().remove("t").unwrap();
    assert_eq!(
        t,
        work(&["dt=1", "dt=2", "dt=3"], Some(schema(&["a", "b"])))
    );
    // Nothing arrived: the failed work comes back as it was.
    p.restore("t", failed.clone());
    assert_eq!(p.take().remove("t").unwrap(), failed);
}

#[test]
fn backoff_doubles_up_to_the_max_and_resets() {
    let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
    let pauses: Vec<u128> = (0..5).map(|_| b.failed().as_millis()).collect();
    assert_eq!(pauses, [200, 400, 800, 1000, 1000]);
    assert_eq!(b.failures, 5);
    b.succeeded();
    assert_eq!(b.failures, 0);
    assert_eq!(b.failed(), Duration::from_millis(200));
    // A max below the initial pause wins.
    let mut small = Backoff::new(Duration::from_millis(200), Duration::from_millis(50));
    assert_eq!(small.failed(), Duration::from_millis(50));
}

fn table(keys: &[&str]) -> Table {
    Table {
        db_name: "d".into(),
        table_name: "t".into(),
        partition_keys: keys
            .iter()
            .map(|k| FieldSchema::new(*k, "string"))
            .collect(),
        ..Table::default()
    }
}

#[test]
fn directories_become_partition_values() {
    let t = table(&["year", "region"]);
    assert_eq!(
        partition_values(&t, "year=2024/region=a%2Fb%3Dc").unwrap(),
        ["2024", "a/b=c"]
    );
    assert_eq!(
        partition_values(&t, "Year=2024/region=__HIVE_DEFAULT_PARTITION__").unwrap(),
        ["2024", "__HIVE_DEFAULT_PARTITION__"]
    );
    for (dir, why) in [
        ("year=2024", "1 directory level(s)"),
        ("2024/region=x", "not name=value"),
        ("year=2024/zone=x", "key `region`"),
    ] {
        let err = partition_values(&t, dir).unwrap_err();
        assert!(err.contains(why), "{dir}: {err}");
    }
    assert!(partition_values(&table(&[]), "").unwrap().is_empty());
}

#[test]
fn only_external_failures_are_retried() {
    let unavailable = RegisterError::Metastore(HiveError::Transport {
        uri: "thrift://h:1".into(),
        call: "get_table",
        target: Default::default(),
        message: "refused".into(),
    });
    assert!(unavailable.retryable());
    let bad_name = RegisterError::Table {
        table: "t".into(),
        source: TableError::NoLocation { table: "t".into() },
    };
    assert!(!bad_name.retryable());
    let no_schema_yet = RegisterError::NoSchema {
        table: "t".into(),
        topic: "t".into(),
        dir: "dt=1".into(),
    };
    assert!(no_schema_yet.retryable());
}
