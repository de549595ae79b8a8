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
    let mut other = Pending::default();
    other.add("t", work(&["dt=1", "dt=9"], None));
    other.add("v", work(&["y=1"], None));
    assert_eq!(p.dirs_with(&other), 7);
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

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_metastore_never_blocks_commits_and_keeps_everything_pending() {
    let out = tempfile::tempdir().unwrap();
    let text = format!(
        "topics=t\nbootstrap.servers=x:9092\nstore.url={}\nflush.size=10\n\
         hive.integration=true\nhive.metastore.uris=thrift://127.0.0.1:{}\n\
         hive.retry.backoff.max.ms=50\n",
        out.path().display(),
        closed_port()
    );
    let config = Config::from_properties_str(&text, &[]).unwrap();
    let hive = config.hive.clone().unwrap();
    let store = Store::with_url(&config.store_url, &config.store_options).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let registrar = Registrar::start(&config, hive, store, rt.handle().clone()).unwrap();
    let started = Instant::now();
    for i in 0..1000 {
        registrar.committed(CommitInfo {
            topic: "t".into(),
            partition: 0,
            dirs: vec![format!("dt={}", i % 10)],
            partition_columns: vec![Some("dt".into())],
            schema: Some(schema(&["a"])),
        });
    }
    // Queueing only: far below one connection attempt per commit.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(registrar.pending_dirs(), 10, "one entry per directory");
    // Shutdown gives up at its deadline and reports what the next start's catch-up registers.
    let started = Instant::now();
    assert_eq!(registrar.shutdown(Duration::from_millis(300)), 10);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
