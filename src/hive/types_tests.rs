//! Unit tests of the Arrow -> Hive type mapping (one per type), parsing and widening.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, IntervalUnit, Schema, TimeUnit, UnionFields};

use super::*;

fn t(dt: DataType) -> String {
    hive_type_string("c", &dt).expect("supported")
}

fn err(dt: DataType) -> TypeError {
    hive_type_string("c", &dt).expect_err("unsupported")
}

#[test]
fn boolean() {
    assert_eq!(t(DataType::Boolean), "boolean");
}

#[test]
fn signed_integers() {
    assert_eq!(t(DataType::Int8), "tinyint");
    assert_eq!(t(DataType::Int16), "smallint");
    assert_eq!(t(DataType::Int32), "int");
    assert_eq!(t(DataType::Int64), "bigint");
}

#[test]
fn unsigned_integers_take_the_next_wider_signed_type() {
    assert_eq!(t(DataType::UInt8), "smallint");
    assert_eq!(t(DataType::UInt16), "int");
    assert_eq!(t(DataType::UInt32), "bigint");
    assert_eq!(t(DataType::UInt64), "decimal(20,0)");
}

#[test]
fn floats() {
    assert_eq!(t(DataType::Float16), "float");
    assert_eq!(t(DataType::Float32), "float");
    assert_eq!(t(DataType::Float64), "double");
}

#[test]
fn strings() {
    assert_eq!(t(DataType::Utf8), "string");
    assert_eq!(t(DataType::LargeUtf8), "string");
    assert_eq!(t(DataType::Utf8View), "string");
}

#[test]
fn binaries() {
    assert_eq!(t(DataType::Binary), "binary");
    assert_eq!(t(DataType::LargeBinary), "binary");
    assert_eq!(t(DataType::BinaryView), "binary");
    assert_eq!(t(DataType::FixedSizeBinary(16)), "binary");
}

#[test]
fn decimals() {
    assert_eq!(t(DataType::Decimal128(10, 2)), "decimal(10,2)");
    assert_eq!(t(DataType::Decimal128(38, 0)), "decimal(38,0)");
    assert_eq!(t(DataType::Decimal256(38, 38)), "decimal(38,38)");
    assert_eq!(t(DataType::Decimal32(9, 3)), "decimal(9,3)");
    assert_eq!(t(DataType::Decimal64(18, 4)), "decimal(18,4)");
    let e = err(DataType::Decimal256(39, 2));
    assert!(matches!(e, TypeError::Decimal { precision: 39, .. }), "{e}");
    assert!(e.to_string().contains("column `c`"), "{e}");
    assert!(matches!(
        err(DataType::Decimal128(10, -2)),
        TypeError::Decimal { .. }
    ));
}

#[test]
fn dates() {
    assert_eq!(t(DataType::Date32), "date");
    assert_eq!(t(DataType::Date64), "date");
}

#[test]
fn timestamps_of_every_unit_and_zone() {
    for unit in [
        TimeUnit::Second,
        TimeUnit::Millisecond,
        TimeUnit::Microsecond,
        TimeUnit::Nanosecond,
    ] {
        assert_eq!(t(DataType::Timestamp(unit, None)), "timestamp");
        assert_eq!(
            t(DataType::Timestamp(unit, Some("+02:00".into()))),
            "timestamp"
        );
        assert_eq!(
            t(DataType::Timestamp(unit, Some("UTC".into()))),
            "timestamp"
        );
    }
}

#[test]
fn structs_lower_case_field_names() {
    let dt = DataType::Struct(Fields::from(vec![
        Field::new("A", DataType::Int32, true),
        Field::new("b", DataType::Utf8, true),
    ]));
    assert_eq!(t(dt), "struct<a:int,b:string>");
    let bad = DataType::Struct(Fields::from(vec![Field::new("a:b", DataType::Int32, true)]));
    assert!(matches!(err(bad), TypeError::FieldName { .. }));
}

#[test]
fn lists() {
    let item = Arc::new(Field::new("item", DataType::Int64, true));
    assert_eq!(t(DataType::List(item.clone())), "array<bigint>");
    assert_eq!(t(DataType::LargeList(item.clone())), "array<bigint>");
    assert_eq!(t(DataType::FixedSizeList(item, 3)), "array<bigint>");
}

fn map_of(key: DataType, value: DataType) -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", key, false),
            Field::new("value", value, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

#[test]
fn maps() {
    assert_eq!(
        t(map_of(DataType::Utf8, DataType::Float64)),
        "map<string,double>"
    );
    let nested = map_of(
        DataType::Int32,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
    );
    assert_eq!(t(nested), "map<int,array<string>>");
    let struct_key = DataType::Struct(Fields::from(vec![Field::new("a", DataType::Int32, true)]));
    assert!(matches!(
        err(map_of(struct_key, DataType::Utf8)),
        TypeError::MapKey { .. }
    ));
}

#[test]
fn dictionaries_take_their_value_type() {
    let dt = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    assert_eq!(t(dt), "string");
}

#[test]
fn unsupported_types_name_the_column() {
    for dt in [
        DataType::Null,
        DataType::Time32(TimeUnit::Second),
        DataType::Time64(TimeUnit::Nanosecond),
        DataType::Duration(TimeUnit::Millisecond),
        DataType::Interval(IntervalUnit::MonthDayNano),
        DataType::Union(UnionFields::empty(), arrow::datatypes::UnionMode::Dense),
    ] {
        let e = err(dt.clone());
        assert!(matches!(e, TypeError::Unsupported { .. }), "{dt}: {e}");
        assert!(e.to_string().contains("column `c`"), "{e}");
    }
    // Nested: the path to the bad field.
    let dt = DataType::Struct(Fields::from(vec![Field::new(
        "t",
        DataType::Time32(TimeUnit::Second),
        true,
    )]));
    let e = hive_type_string("outer", &dt).expect_err("unsupported");
    assert!(e.to_string().contains("column `outer.t`"), "{e}");
}

#[test]
fn columns_are_lower_cased_and_checked_for_duplicates() {
    let schema = Schema::new(vec![
        Field::new("Id", DataType::Int64, false),
        Field::new("NAME", DataType::Utf8, true),
    ]);
    let cols = hive_columns(&schema).expect("columns");
    assert_eq!(cols[0], FieldSchema::new("id", "bigint"));
    assert_eq!(cols[1], FieldSchema::new("name", "string"));
    let dup = Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("A", DataType::Utf8, true),
    ]);
    assert!(matches!(
        hive_columns(&dup),
        Err(TypeError::DuplicateColumn { .. })
    ));
}

#[test]
fn parses_and_prints_type_strings() {
    for s in [
        "int",
        "decimal(10,2)",
        "array<struct<a:int,b:map<string,array<bigint>>>>",
        "varchar(300)",
        "struct<>",
    ] {
        assert_eq!(HiveType::parse(s).expect(s).to_string(), s);
    }
    assert_eq!(
        HiveType::parse(" Struct< A : INT , b:Decimal >")
            .expect("parse")
            .to_string(),
        "struct<a:int,b:decimal(10,0)>"
    );
    for bad in [
        "",
        "array<int",
        "map<int>",
        "struct<a int>",
        "int>",
        "decimal(99999,1)",
    ] {
        assert!(HiveType::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn widening_rules() {
    let p = |s: &str| HiveType::parse(s).expect(s);
    let m = |a: &str, b: &str| p(a).merge(&p(b)).map(|t| t.to_string());
    assert_eq!(m("int", "int").as_deref(), Some("int"));
    assert_eq!(m("int", "bigint").as_deref(), Some("bigint"));
    assert_eq!(m("bigint", "int").as_deref(), Some("bigint"));
    assert_eq!(m("float", "double").as_deref(), Some("double"));
    assert_eq!(
        m("decimal(10,2)", "decimal(12,2)").as_deref(),
        Some("decimal(12,2)")
    );
    assert_eq!(m("int", "double"), None);
    assert_eq!(m("int", "string"), None);
    assert_eq!(m("decimal(10,2)", "decimal(10,3)"), None);
    assert_eq!(
        m("struct<a:int,b:string>", "struct<a:bigint,c:date>").as_deref(),
        Some("struct<a:bigint,b:string,c:date>")
    );
    assert_eq!(m("array<int>", "array<string>"), None);
    assert_eq!(
        m("map<string,int>", "map<string,bigint>").as_deref(),
        Some("map<string,bigint>")
    );
    assert_eq!(m("map<string,int>", "map<int,int>"), None);
}
