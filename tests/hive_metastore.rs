//! Integration tests against a real Hive 2.3.10 metastore started by
//! `scripts/hive-metastore.sh up`. The URIs come from `STREAMX_TEST_HIVE_URIS` in the environment
//! or in the env file (`$STREAMX_ENV_FILE`, default /tmp/streamx-services/env); without them the
//! tests fail. Every test uses its own database, dropped at the end (also on failure).
//!
//! `restarted_metastore_is_reconnected` starts and stops a private metastore of its own (another
//! port and state dir, ~10 s per start) so the shared one is never disturbed.
//! `spark_reads_the_registered_parquet_partitions` runs Spark through scripts/spark_query.py with
//! `STREAMX_TEST_PYSPARK_PYTHON`.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;

use streamx::hive::metastore::{MetastoreClient, MetastoreConfig, MetastoreUri};
use streamx::hive::model::{AddPartitionsRequest, Database};
use streamx::hive::table::{
    build_partition, build_table, evolve_table, hive_location, FileFormat, PartitionKey, SchemeMap,
    TableSpec,
};
use streamx::hive::{HiveError, RemoteErrorKind};
use streamx::Origin;

use common::hive::{client, spark_query, uris, PrivateMetastore, TestDb};

fn schema(extra: &[Field]) -> Schema {
    let mut fields = vec![
        Field::new("id", DataType::Int64, false),
        Field::new("Name", DataType::Utf8, true),
        Field::new("n", DataType::Int32, true),
    ];
    fields.extend_from_slice(extra);
    Schema::new(fields)
}

fn spec(db: &str, table: &str, location: String) -> TableSpec {
    TableSpec {
        database: db.into(),
        table: table.into(),
        location,
        partition_keys: vec![PartitionKey::string("dt")],
        format: FileFormat::Parquet,
        owner: Some("streamx-test".into()),
        parameters: BTreeMap::new(),
    }
}

#[test]
fn database_table_partitions_and_evolution() {
    let db = TestDb::new("life");
    let mut c = client();

    // Database: created once, then found.
    assert!(c
        .ensure_database(&Database::new(&db.name))
        .expect("create db"));
    assert!(!c
        .ensure_database(&Database::new(&db.name))
        .expect("db exists"));
    let err = c
        .create_database(&Database::new(&db.name))
        .expect_err("exists");
    assert!(err.is_already_exists(), "{err}");
    assert_eq!(err.origin(), Origin::User);
    assert_eq!(c.get_database(&db.name).expect("get db").name, db.name);

    // Partitioned external Parquet table at a file:// location.
    let dir = tempfile::tempdir().expect("tempdir");
    let location =
        hive_location(&dir.path().display().to_string(), &SchemeMap::default()).expect("location");
    assert!(location.starts_with("file:///"), "{location}");
    let table = build_table(&spec(&db.name, "Events", location), &schema(&[])).expect("table");
    assert!(c.create_table_if_missing(&table).expect("create table"));
    assert!(!c.create_table_if_missing(&table).expect("table exists"));
    let err = c.create_table(&table).expect_err("exists");
    assert!(err.is_already_exists(), "{err}");

    let got = c.get_table(&db.name, "events").expect("get table");
    assert_eq!(got.table_type.as_deref(), Some("EXTERNAL_TABLE"));
    assert_eq!(
        got.parameters.get("EXTERNAL").map(String::as_str),
        Some("TRUE")
    );
    assert_eq!(got.columns(), table.columns());
    assert_eq!(got.partition_keys, table.partition_keys);
    // The metastore normalises file:///x to file:/x.
    assert_eq!(
        got.location().map(str::to_string),
        Some(format!("file:{}", dir.path().display()))
    );
    assert!(got.create_time > 0);

    // Partitions: adding them twice is a no-op, each is listed once.
    let parts = |values: &[&str]| {
        values
            .iter()
            .map(|v| build_partition(&got, &[v.to_string()]).expect("partition"))
            .collect::<Vec<_>>()
    };
    c.add_partitions(&db.name, "events", parts(&["2024-01-01", "2024-01-02"]))
        .expect("add");
    c.add_partitions(&db.name, "events", parts(&["2024-01-01", "2024-01-02"]))
        .expect("add again");
    let result = c
        .add_partitions_req(&AddPartitionsRequest {
            db_name: db.name.clone(),
            tbl_name: "events".into(),
            parts: parts(&["2024-01-02", "2024-01-03"]),
            if_not_exists: true,
            need_result: Some(true),
        })
        .expect("add with result");
    let added: Vec<Vec<String>> = result
        .partitions
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.values)
        .collect();
    assert_eq!(added, vec![vec!["2024-01-03".to_string()]]);
    let mut names = c
        .get_partition_names(&db.name, "events", -1)
        .expect("names");
    names.sort();
    assert_eq!(names, ["dt=2024-01-01", "dt=2024-01-02", "dt=2024-01-03"]);
    // The server created the partition directories.
    assert!(dir.path().join("dt=2024-01-01").is_dir());

    // Evolution: a new column is appended, n widens int -> bigint.
    let evolved_schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("extra", DataType::Float64, true),
    ]);
    let altered = evolve_table(&got, &evolved_schema)
        .expect("evolve")
        .expect("changed");
    c.alter_table(&db.name, "events", &altered).expect("alter");
    let after = c.get_table(&db.name, "events").expect("get table");
    let cols: Vec<(&str, &str)> = after
        .columns()
        .iter()
        .map(|f| (f.name.as_str(), f.type_name.as_str()))
        .collect();
    assert_eq!(
        cols,
        [
            ("id", "bigint"),
            ("name", "string"),
            ("n", "bigint"),
            ("extra", "double")
        ]
    );
    assert_eq!(evolve_table(&after, &evolved_schema).expect("evolve"), None);
    // Partitions survive the alter.
    assert_eq!(
        c.get_partition_names(&db.name, "events", -1)
            .expect("names")
            .len(),
        3
    );

    // Missing objects are typed errors with context.
    let err = c.get_table(&db.name, "missing").expect_err("missing");
    assert!(err.is_no_such_object(), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("`{}`.`missing`", db.name)),
        "{err}"
    );
    assert_eq!(
        c.get_table_if_exists(&db.name, "missing").expect("ok"),
        None
    );

    // Cleanup: drop table, then database (the guard only covers failures).
    c.drop_table(&db.name, "events", false).expect("drop table");
    assert!(c
        .get_table(&db.name, "events")
        .expect_err("gone")
        .is_no_such_object());
    // External table: the data directory stays.
    assert!(dir.path().join("dt=2024-01-01").is_dir());
    c.drop_database(&db.name, true, false).expect("drop db");
    assert!(c
        .get_database(&db.name)
        .expect_err("gone")
        .is_no_such_object());
    // Hive 2.3 quirk: dropping a missing database is a MetaException, not NoSuchObject.
    let err = c.drop_database(&db.name, true, false).expect_err("gone");
    assert_eq!(err.remote_kind(), Some(RemoteErrorKind::Meta), "{err}");
}

#[test]
fn object_store_locations_are_accepted() {
    let db = TestDb::new("s3");
    let mut c = client();
    c.ensure_database(&Database::new(&db.name)).expect("db");
    let cases = [
        ("mapped", SchemeMap::default(), "s3a://bucket/x"),
        ("raw", SchemeMap::identity(), "s3://bucket/x"),
    ];
    for (table, schemes, expected) in cases {
        let location = hive_location("s3://bucket/x/", &schemes).expect("location");
        assert_eq!(location, expected);
        let t = build_table(&spec(&db.name, table, location), &schema(&[])).expect("table");
        c.create_table(&t).expect("create on s3");
        let got = c.get_table(&db.name, table).expect("get");
        assert_eq!(got.location(), Some(expected));
        let p = build_partition(&got, &["2024-05-06".into()]).expect("partition");
        c.add_partitions(&db.name, table, vec![p]).expect("add");
        assert_eq!(
            c.get_partition_names(&db.name, table, -1).expect("names"),
            ["dt=2024-05-06"]
        );
    }
    for scheme in ["gs", "abfss"] {
        let location = format!("{scheme}://container/data");
        let t = build_table(&spec(&db.name, scheme, location.clone()), &schema(&[])).expect("t");
        c.create_table(&t).expect(scheme);
        assert_eq!(
            c.get_table(&db.name, scheme).expect("get").location(),
            Some(location.as_str())
        );
    }
}

fn closed_port_uri() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    format!("thrift://127.0.0.1:{port}")
}

#[test]
fn fails_over_from_a_dead_uri() {
    let list = format!("{},{}", closed_port_uri(), uris());
    let mut config = MetastoreConfig::from_uris(&list).expect("uris");
    config.retries = 0;
    let live = config.uris[1].clone();
    let mut c = MetastoreClient::new(config).expect("client");
    assert_eq!(
        c.get_database("default").expect("default db").name,
        "default"
    );
    assert_eq!(c.current_uri(), &live);

    // Only dead URIs: a typed, external error after every attempt.
    let mut config =
        MetastoreConfig::from_uris(&format!("{},{}", closed_port_uri(), closed_port_uri()))
            .expect("uris");
    config.retries = 1;
    config.initial_backoff = Duration::from_millis(50);
    let err = MetastoreClient::new(config)
        .expect("client")
        .get_database("default")
        .expect_err("unavailable");
    assert!(
        matches!(err, HiveError::Unavailable { attempts: 4, .. }),
        "{err}"
    );
    assert_eq!(err.origin(), Origin::External);
}

#[test]
fn restarted_metastore_is_reconnected() {
    let ms = PrivateMetastore::new();
    let port = ms.port;
    ms.run("up");
    let mut config = MetastoreConfig::new(vec![MetastoreUri {
        host: "127.0.0.1".into(),
        port,
    }]);
    config.retries = 0;
    let mut c = MetastoreClient::new(config).expect("client");
    assert_eq!(
        c.get_database("default").expect("first call").name,
        "default"
    );

    ms.run("down");
    let err = c.get_database("default").expect_err("metastore is down");
    assert_eq!(err.origin(), Origin::External, "{err}");

    // Back up (fresh state): the same client reconnects by itself.
    ms.run("up");
    assert_eq!(
        c.get_database("default").expect("after restart").name,
        "default"
    );
    // And a connection that went stale while idle is replaced without an error.
    ms.run("down");
    ms.run("up");
    assert_eq!(
        c.get_database("default").expect("stale connection").name,
        "default"
    );
}

fn write_parquet(dir: &Path, ids: &[i64]) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("n", DataType::Int32, true),
    ]));
    let names: Vec<String> = ids.iter().map(|i| format!("name-{i}")).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.to_vec())),
        Arc::new(StringArray::from(names)),
        Arc::new(Int32Array::from(
            ids.iter().map(|i| *i as i32).collect::<Vec<_>>(),
        )),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
    let file = File::create(dir.join("part-00000.parquet")).expect("create");
    let mut writer = ArrowWriter::try_new(file, schema, None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

#[test]
fn spark_reads_the_registered_parquet_partitions() {
    let db = TestDb::new("spark");
    let mut c = client();
    c.ensure_database(&Database::new(&db.name)).expect("db");
    let dir = tempfile::tempdir().expect("tempdir");
    let location =
        hive_location(&dir.path().display().to_string(), &SchemeMap::default()).expect("location");
    let table = build_table(&spec(&db.name, "t", location), &schema(&[])).expect("table");
    // Files first (as StreamX does: data, then registration), in the partition directories.
    write_parquet(&dir.path().join("dt=2024-01-01"), &[1, 2, 3]);
    write_parquet(&dir.path().join("dt=2024-01-02"), &[4, 5]);
    c.create_table(&table).expect("create");
    let parts = ["2024-01-01", "2024-01-02"]
        .iter()
        .map(|v| build_partition(&table, &[v.to_string()]).expect("partition"))
        .collect();
    c.add_partitions(&db.name, "t", parts).expect("add");

    let sql = format!(
        "SELECT dt, count(*) AS n, sum(id) AS ids FROM {}.t GROUP BY dt ORDER BY dt",
        db.name
    );
    let rows = spark_query(&uris(), &sql);
    assert_eq!(
        rows,
        vec![
            serde_json::json!({"dt": "2024-01-01", "n": 3, "ids": 6}),
            serde_json::json!({"dt": "2024-01-02", "n": 2, "ids": 9}),
        ]
    );
}

#[test]
fn every_file_format_is_accepted() {
    let db = TestDb::new("formats");
    let mut c = client();
    c.ensure_database(&Database::new(&db.name)).expect("db");
    let avro_schema = r#"{"type":"record","name":"r","fields":[{"name":"id","type":"long"},{"name":"name","type":["null","string"]},{"name":"n","type":["null","int"]}]}"#;
    let formats = [
        (
            "parquet_t",
            FileFormat::Parquet,
            "ParquetHiveSerDe",
            "bigint",
        ),
        (
            "avro_t",
            FileFormat::Avro {
                schema_literal: Some(avro_schema.into()),
            },
            "AvroSerDe",
            "bigint",
        ),
        ("json_t", FileFormat::JsonLines, "JsonSerDe", "bigint"),
        ("csv_t", FileFormat::csv(), "OpenCSVSerde", "string"),
    ];
    for (name, format, serde, id_type) in formats {
        let mut s = spec(&db.name, name, format!("s3a://bucket/{name}"));
        s.format = format;
        let t = build_table(&s, &schema(&[])).expect("table");
        c.create_table(&t).expect(name);
        let got = c.get_table(&db.name, name).expect("get");
        let lib = got
            .sd
            .as_ref()
            .and_then(|sd| sd.serde_info.as_ref())
            .and_then(|s| s.serialization_lib.clone())
            .unwrap_or_default();
        assert!(lib.ends_with(serde), "{name}: {lib}");
        assert_eq!(got.columns()[0].type_name, id_type, "{name}");
        assert_eq!(
            got.sd,
            t.sd.clone().map(|mut sd| {
                // The metastore fills in what the request left empty.
                sd.stored_as_sub_directories = Some(false);
                sd
            }),
            "{name}"
        );
    }
}
