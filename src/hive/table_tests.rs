//! Unit tests of table/partition building, locations and schema evolution.

use arrow::datatypes::{DataType, Field, Schema};

use super::*;

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("Id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("dt", DataType::Utf8, true),
    ])
}

fn spec(format: FileFormat) -> TableSpec {
    TableSpec {
        database: "DB".into(),
        table: "Events".into(),
        location: "s3a://bucket/topics/events/".into(),
        partition_keys: vec![
            PartitionKey::string("dt"),
            PartitionKey::typed("hour", "int"),
        ],
        format,
        owner: Some("streamx".into()),
        parameters: BTreeMap::new(),
    }
}

#[test]
fn parquet_table() {
    let t = build_table(&spec(FileFormat::Parquet), &schema()).expect("table");
    assert_eq!(
        (t.db_name.as_str(), t.table_name.as_str()),
        ("db", "events")
    );
    assert_eq!(t.table_type.as_deref(), Some("EXTERNAL_TABLE"));
    assert_eq!(
        t.parameters.get("EXTERNAL").map(String::as_str),
        Some("TRUE")
    );
    assert_eq!(
        t.partition_keys,
        vec![
            FieldSchema::new("dt", "string"),
            FieldSchema::new("hour", "int")
        ]
    );
    // `dt` is a partition key, so not a data column.
    assert_eq!(
        t.columns(),
        &[
            FieldSchema::new("id", "bigint"),
            FieldSchema::new("name", "string")
        ]
    );
    assert_eq!(t.location(), Some("s3a://bucket/topics/events"));
    let sd = t.sd.as_ref().expect("sd");
    let serde = sd.serde_info.as_ref().expect("serde");
    assert_eq!(
        serde.serialization_lib.as_deref(),
        Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
    );
    assert_eq!(
        sd.input_format.as_deref(),
        Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
    );
    assert_eq!(
        sd.output_format.as_deref(),
        Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
    );
}

#[test]
fn avro_json_and_csv_tables() {
    let literal = r#"{"type":"record","name":"r","fields":[]}"#.to_string();
    let t = build_table(
        &spec(FileFormat::Avro {
            schema_literal: Some(literal.clone()),
        }),
        &schema(),
    )
    .expect("avro");
    let sd = t.sd.as_ref().expect("sd");
    let serde = sd.serde_info.as_ref().expect("serde");
    assert_eq!(
        serde.serialization_lib.as_deref(),
        Some("org.apache.hadoop.hive.serde2.avro.AvroSerDe")
    );
    assert_eq!(serde.parameters.get("avro.schema.literal"), Some(&literal));
    assert_eq!(t.parameters.get("avro.schema.literal"), Some(&literal));
    assert_eq!(
        sd.input_format.as_deref(),
        Some("org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat")
    );

    let t = build_table(&spec(FileFormat::JsonLines), &schema()).expect("json");
    let sd = t.sd.as_ref().expect("sd");
    assert_eq!(
        sd.serde_info
            .as_ref()
            .and_then(|s| s.serialization_lib.as_deref()),
        Some("org.apache.hive.hcatalog.data.JsonSerDe")
    );
    assert_eq!(sd.input_format.as_deref(), Some(TEXT_INPUT));
    assert_eq!(sd.output_format.as_deref(), Some(TEXT_OUTPUT));

    let t = build_table(&spec(FileFormat::csv()), &schema()).expect("csv");
    let sd = t.sd.as_ref().expect("sd");
    let serde = sd.serde_info.as_ref().expect("serde");
    assert_eq!(
        serde.serialization_lib.as_deref(),
        Some("org.apache.hadoop.hive.serde2.OpenCSVSerde")
    );
    assert_eq!(
        serde.parameters.get("separatorChar").map(String::as_str),
        Some(",")
    );
    assert!(sd.cols.iter().all(|c| c.type_name == "string"));

    let lazy = FileFormat::Csv {
        serde: CsvSerde::LazySimple,
        delimiter: '|',
    };
    let t = build_table(&spec(lazy), &schema()).expect("csv");
    let sd = t.sd.as_ref().expect("sd");
    let serde = sd.serde_info.as_ref().expect("serde");
    assert_eq!(
        serde.parameters.get("field.delim").map(String::as_str),
        Some("|")
    );
    assert_eq!(sd.cols[0].type_name, "bigint");
}

#[test]
fn invalid_names_and_keys() {
    let mut s = spec(FileFormat::Parquet);
    s.table = "bad-name".into();
    assert!(matches!(
        build_table(&s, &schema()),
        Err(TableError::InvalidName { .. })
    ));
    let mut s = spec(FileFormat::Parquet);
    s.partition_keys.push(PartitionKey::string("DT"));
    assert!(matches!(
        build_table(&s, &schema()),
        Err(TableError::DuplicateKey { .. })
    ));
    let mut s = spec(FileFormat::Parquet);
    s.partition_keys = vec![PartitionKey::typed("dt", "not a type")];
    assert!(matches!(
        build_table(&s, &schema()),
        Err(TableError::Type(_))
    ));
}

#[test]
fn partitions_live_under_the_table_with_escaped_names() {
    let t = build_table(&spec(FileFormat::Parquet), &schema()).expect("table");
    let p = build_partition(&t, &["2024-01-01".into(), "7".into()]).expect("partition");
    assert_eq!(p.values, vec!["2024-01-01", "7"]);
    assert_eq!(
        (p.db_name.as_str(), p.table_name.as_str()),
        ("db", "events")
    );
    let sd = p.sd.as_ref().expect("sd");
    assert_eq!(
        sd.location.as_deref(),
        Some("s3a://bucket/topics/events/dt=2024-01-01/hour=7")
    );
    assert_eq!(sd.cols, t.columns());
    let p = build_partition(&t, &["a/b:c=d%".into(), "x y".into()]).expect("partition");
    assert_eq!(
        p.sd.and_then(|sd| sd.location).as_deref(),
        Some("s3a://bucket/topics/events/dt=a%2Fb%3Ac%3Dd%25/hour=x y")
    );
    assert!(matches!(
        build_partition(&t, &["x".into()]),
        Err(TableError::PartitionArity {
            keys: 2,
            values: 1,
            ..
        })
    ));
    assert!(matches!(
        build_partition(&t, &["".into(), "1".into()]),
        Err(TableError::EmptyPartitionValue { .. })
    ));
}

#[test]
fn escapes_like_hive() {
    assert_eq!(escape_path_name("plain-value_1.2 ü"), "plain-value_1.2 ü");
    assert_eq!(
        escape_path_name("\"#%'*/:=?\\{[]^"),
        "%22%23%25%27%2A%2F%3A%3D%3F%5C%7B%5B%5D%5E"
    );
    assert_eq!(escape_path_name("\n\u{7f}"), "%0A%7F");
}

#[test]
fn locations() {
    let d = SchemeMap::default();
    assert_eq!(
        hive_location("s3://bucket/x/", &d).expect("s3"),
        "s3a://bucket/x"
    );
    assert_eq!(
        hive_location("s3://bucket/x", &SchemeMap::identity()).expect("s3"),
        "s3://bucket/x"
    );
    assert_eq!(hive_location("gs://b/p", &d).expect("gs"), "gs://b/p");
    assert_eq!(
        hive_location("az://c/p", &d.clone().with("az", "abfss")).expect("az"),
        "abfss://c/p"
    );
    assert_eq!(
        hive_location("file:///tmp/x/", &d).expect("file"),
        "file:///tmp/x"
    );
    assert_eq!(
        hive_location("/tmp/a b", &d).expect("path"),
        "file:///tmp/a b"
    );
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(
        hive_location("rel/dir", &d).expect("relative"),
        format!("file://{}/rel/dir", cwd.display())
    );
    for bad in ["", "s3://", "s3:///x", "file://relative", "file:x", "c:x"] {
        assert!(hive_location(bad, &d).is_err(), "{bad}");
    }
}

#[test]
fn evolution_appends_and_widens_columns() {
    let t = build_table(&spec(FileFormat::Parquet), &schema()).expect("table");
    assert_eq!(evolve_table(&t, &schema()).expect("same"), None);
    // Fewer columns: nothing to do (old columns stay).
    let fewer = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
    assert_eq!(evolve_table(&t, &fewer).expect("fewer"), None);
    // Narrower type: the existing wider column holds it.
    let narrower = Schema::new(vec![Field::new("id", DataType::Int32, false)]);
    assert_eq!(evolve_table(&t, &narrower).expect("narrower"), None);
    let wider = Schema::new(vec![
        Field::new("ID", DataType::Int64, false),
        Field::new("extra", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("dt", DataType::Utf8, true),
    ]);
    let evolved = evolve_table(&t, &wider).expect("evolve").expect("changed");
    assert_eq!(
        evolved.columns(),
        &[
            FieldSchema::new("id", "bigint"),
            FieldSchema::new("name", "string"),
            FieldSchema::new("extra", "double"),
        ]
    );
    assert_eq!(evolved.partition_keys, t.partition_keys);
    assert_eq!(evolved.location(), t.location());
}

#[test]
fn evolution_rejects_incompatible_changes() {
    let t = build_table(&spec(FileFormat::Parquet), &schema()).expect("table");
    let changed = Schema::new(vec![Field::new("name", DataType::Int64, true)]);
    let err = evolve_table(&t, &changed).expect_err("incompatible");
    assert!(
        matches!(&err, TableError::IncompatibleColumn { column, existing, new, .. }
            if column == "name" && existing == "string" && new == "bigint"),
        "{err}"
    );
    assert!(err.to_string().contains("db.events"), "{err}");
    assert_eq!(err.origin(), Origin::User);
}

#[test]
fn appending_evolution_keeps_changed_struct_types_and_adds_new_columns() {
    let user = |fields: Vec<Field>| Field::new("user", DataType::Struct(fields.into()), true);
    let id = Field::new("id", DataType::Int64, true);
    let first = Schema::new(vec![id.clone(), user(vec![id.clone()])]);
    let t = build_table(&spec(FileFormat::Parquet), &first).expect("table");
    let name = Field::new("name", DataType::Utf8, true);
    let grown = Schema::new(vec![
        id.clone(),
        user(vec![id.clone(), name.clone()]),
        Field::new("extra", DataType::Utf8, true),
    ]);
    let full = evolve_table(&t, &grown).expect("evolve").expect("changed");
    assert_eq!(full.columns()[1].type_name, "struct<id:bigint,name:string>");
    let (appended, kept) = evolve_table_appending(&t, &grown).expect("evolve");
    let appended = appended.expect("changed");
    assert_eq!(kept, ["user"]);
    assert_eq!(
        appended.columns(),
        &[
            FieldSchema::new("id", "bigint"),
            FieldSchema::new("user", "struct<id:bigint>"),
            FieldSchema::new("extra", "string"),
        ]
    );
    // Only the struct changed: nothing to alter.
    let only_struct = Schema::new(vec![id.clone(), user(vec![id, name])]);
    assert_eq!(
        evolve_table_appending(&t, &only_struct).expect("evolve"),
        (None, vec!["user".to_string()])
    );
}
