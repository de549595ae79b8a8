use super::*;
use serde_json::json;

fn map(schema: Value) -> Mapped {
    to_arrow(&schema, &HashMap::new()).unwrap()
}

fn field(m: &Mapped, name: &str) -> DataType {
    m.schema.field_with_name(name).unwrap().data_type().clone()
}

fn list(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", t, true)))
}

#[test]
fn scalars_formats_and_every_column_nullable() {
    let m = map(json!({"type": "object", "required": ["id"], "properties": {
        "id": {"type": "integer"}, "price": {"type": "number"}, "ok": {"type": "boolean"},
        "name": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
        "day": {"type": "string", "format": "date"}, "mail": {"type": "string", "format": "email"},
        "kind": {"enum": ["A", "B"]}, "v": {"const": 3}}}));
    assert_eq!(field(&m, "id"), DataType::Int64);
    assert_eq!(field(&m, "price"), DataType::Float64);
    assert_eq!(field(&m, "ok"), DataType::Boolean);
    assert_eq!(field(&m, "name"), DataType::Utf8);
    assert_eq!(
        field(&m, "at"),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(field(&m, "day"), DataType::Date32);
    assert_eq!(field(&m, "mail"), DataType::Utf8);
    assert_eq!(field(&m, "kind"), DataType::Utf8);
    assert_eq!(field(&m, "v"), DataType::Int64);
    assert!(m.schema.fields().iter().all(|f| f.is_nullable()));
    assert!(m.skipped.is_empty());
}

#[test]
fn nested_objects_arrays_and_maps() {
    let m = map(json!({"type": "object", "properties": {
        "user": {"type": "object", "properties": {
            "name": {"type": "string"},
            "langs": {"type": "array", "items": {"type": "string"}},
            "addr": {"type": "object", "properties": {"zip": {"type": "integer"}}}}},
        "points": {"type": "array", "items": {"type": "object", "properties": {
            "x": {"type": "number"}}}},
        "props": {"type": "object", "additionalProperties": {"type": "number"}}}}));
    let user = DataType::Struct(Fields::from(vec![
        Field::new(
            "addr",
            DataType::Struct(Fields::from(vec![Field::new("zip", DataType::Int64, true)])),
            true,
        ),
        Field::new("langs", list(DataType::Utf8), true),
        Field::new("name", DataType::Utf8, true),
    ]));
    assert_eq!(field(&m, "user"), user);
    let point = DataType::Struct(Fields::from(vec![Field::new("x", DataType::Float64, true)]));
    assert_eq!(field(&m, "points"), list(point));
    let DataType::Map(entries, false) = field(&m, "props") else {
        panic!("{:?}", field(&m, "props"));
    };
    let DataType::Struct(kv) = entries.data_type() else {
        panic!()
    };
    assert_eq!(kv[0].data_type(), &DataType::Utf8);
    assert_eq!(kv[1].data_type(), &DataType::Float64);
}

#[test]
fn nullable_unions_and_type_lists() {
    let m = map(json!({"type": "object", "properties": {
        "a": {"oneOf": [{"type": "null"}, {"type": "string"}]},
        "b": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "c": {"type": ["null", "boolean"]},
        "d": {"type": ["integer", "number"]},
        "e": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "f": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {"x": {"type": "string"}}}]}}}));
    assert_eq!(field(&m, "a"), DataType::Utf8);
    assert_eq!(field(&m, "b"), DataType::Int64);
    assert_eq!(field(&m, "c"), DataType::Boolean);
    assert_eq!(field(&m, "d"), DataType::Float64);
    assert!(m.schema.field_with_name("e").is_err());
    assert!(matches!(field(&m, "f"), DataType::Struct(_)));
    assert_eq!(m.skipped, vec!["e"]);
}

#[test]
fn refs_to_definitions_defs_and_referenced_schemas() {
    let mut referenced = HashMap::new();
    referenced.insert(
        "address.json".to_string(),
        json!({"type": "object", "properties": {"city": {"type": "string"},
               "geo": {"$ref": "#/definitions/geo"}},
               "definitions": {"geo": {"type": "object", "properties": {"lat": {"type": "number"}}}}}),
    );
    let root = json!({"type": "object", "properties": {
        "a": {"$ref": "#/definitions/amount"},
        "b": {"$ref": "#/$defs/tag"},
        "home": {"$ref": "address.json"},
        "geo": {"$ref": "address.json#/definitions/geo"}},
        "definitions": {"amount": {"type": ["number", "null"]}},
        "$defs": {"tag": {"type": "array", "items": {"$ref": "#/definitions/amount"}}}});
    let m = to_arrow(&root, &referenced).unwrap();
    assert_eq!(field(&m, "a"), DataType::Float64);
    assert_eq!(field(&m, "b"), list(DataType::Float64));
    let geo = DataType::Struct(Fields::from(vec![Field::new(
        "lat",
        DataType::Float64,
        true,
    )]));
    assert_eq!(field(&m, "geo"), geo);
    let home = DataType::Struct(Fields::from(vec![
        Field::new("city", DataType::Utf8, true),
        Field::new("geo", geo, true),
    ]));
    assert_eq!(field(&m, "home"), home);
    let missing = json!({"type": "object", "properties": {"x": {"$ref": "other.json"}}});
    let e = to_arrow(&missing, &HashMap::new()).unwrap_err();
    assert!(e.contains("other.json") && e.contains("references"), "{e}");
    let dangling = json!({"type": "object", "properties": {"x": {"$ref": "#/definitions/no"}}});
    assert!(to_arrow(&dangling, &HashMap::new())
        .unwrap_err()
        .contains("points to nothing"));
    let recursive = json!({"type": "object", "properties": {"n": {"$ref": "#/definitions/node"}},
        "definitions": {"node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/node"}}}}});
    assert!(to_arrow(&recursive, &HashMap::new())
        .unwrap_err()
        .contains("recursive"));
}

#[test]
fn all_of_merges_and_untyped_values_are_left_out() {
    let m = map(json!({"allOf": [
        {"type": "object", "properties": {"id": {"type": "integer"}}},
        {"type": "object", "properties": {"name": {"type": "string"},
            "meta": {"type": "object"}, "any": {}, "tuple": {"type": "array", "items": [{"type": "string"}]},
            "free": true}}]}));
    let names: Vec<&str> = m
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["id", "name"]);
    let mut skipped = m.skipped.clone();
    skipped.sort();
    assert_eq!(skipped, ["any", "free", "meta", "tuple"]);
    for bad in [
        json!({"type": "string"}),
        json!({"type": "object"}),
        json!(true),
    ] {
        assert!(to_arrow(&bad, &HashMap::new())
            .unwrap_err()
            .contains("root"));
    }
}

#[test]
fn compatibility_of_mapped_schemas() {
    let s = |props: Value| map(json!({"type": "object", "properties": props})).schema;
    let v1 = s(json!({"id": {"type": "integer"}, "n": {"type": "string"}}));
    let v2 =
        s(json!({"id": {"type": "integer"}, "n": {"type": "string"}, "e": {"type": "string"}}));
    let widened = s(json!({"id": {"type": "number"}}));
    let changed = s(json!({"id": {"type": "string"}}));
    assert!(compatibility(&v1, &v2, Compat::Backward).is_ok());
    assert!(compatibility(&v1, &v2, Compat::Full).is_ok());
    assert!(can_read(&widened, &v1).is_ok());
    assert!(can_read(&v1, &widened).is_err());
    let e = compatibility(&v1, &changed, Compat::Backward).unwrap_err();
    assert!(e.contains("'id'"), "{e}");
    assert!(compatibility(&v1, &changed, Compat::None).is_ok());
}
