//! Columns with no type yet are not written.
//!
//! An inferred JSON field seen only as `null`, `[]` or `{}` has no type (`Null`, a list of
//! `Null`, a struct without fields, at any depth). The decoder reads such a field into a `Utf8`
//! placeholder so that a value arriving later is noticed (and, with `add-new-columns`, gives the
//! field its type in a new schema version). The placeholder is always null in what that version
//! writes, and writing it would give the column a type (`STRING`) that the next version changes,
//! which Parquet readers (Spark, Hive) refuse across files. So [`strip`] removes every placeholder
//! from a decoded batch: files and the Hive table carry only typed columns, an untyped field that
//! gets a type is a column added by a later version, and older files read it as null.
//!
//! Contract: `strip(batch, inferred)` returns the rows of `batch` unchanged, without the columns
//! (and nested struct fields, and lists whose elements) that `inferred` types as untyped. A
//! struct left with no field and a list whose element is untyped go as a whole. No value is
//! copied: arrays are re-assembled from the same buffers.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, ListArray, RecordBatch, RecordBatchOptions, StructArray,
};
use arrow::datatypes::{DataType, Field, FieldRef, Schema};
use arrow::error::ArrowError;

/// Whether `inferred` has a field with no type yet, at any depth.
pub fn has_untyped(inferred: &Schema) -> bool {
    inferred
        .fields()
        .iter()
        .any(|f| type_has_untyped(f.data_type()))
}

fn type_has_untyped(t: &DataType) -> bool {
    match t {
        DataType::Null => true,
        DataType::Struct(fields) => {
            fields.is_empty() || fields.iter().any(|f| type_has_untyped(f.data_type()))
        }
        DataType::List(item) => type_has_untyped(item.data_type()),
        _ => false,
    }
}

/// `batch` (decoded with the decodable form of `inferred`) without its untyped placeholders.
/// Columns `inferred` does not name (the rescued-data column) are kept.
pub fn strip(batch: &RecordBatch, inferred: &Schema) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let kept = match inferred.field_with_name(field.name()) {
            Ok(known) => typed_part(field, column, known.data_type())?,
            Err(_) => Some((field.clone(), column.clone())),
        };
        if let Some((f, c)) = kept {
            fields.push(f);
            columns.push(c);
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
}

/// The typed part of `array` (decoded as `field`, inferred as `inferred`); `None` when nothing of
/// it has a type.
fn typed_part(
    field: &FieldRef,
    array: &ArrayRef,
    inferred: &DataType,
) -> Result<Option<(FieldRef, ArrayRef)>, ArrowError> {
    if !type_has_untyped(inferred) {
        return Ok(Some((field.clone(), array.clone())));
    }
    match inferred {
        DataType::List(item) => typed_list(field, array, item.data_type()),
        DataType::Struct(fields) if !fields.is_empty() => typed_struct(field, array, fields),
        _ => Ok(None),
    }
}

fn typed_list(
    field: &FieldRef,
    array: &ArrayRef,
    inferred_item: &DataType,
) -> Result<Option<(FieldRef, ArrayRef)>, ArrowError> {
    let list = array.as_list::<i32>();
    let DataType::List(item_field) = field.data_type() else {
        return Err(ArrowError::SchemaError(format!(
            "column '{}' is {} where a list was inferred",
            field.name(),
            field.data_type()
        )));
    };
    let Some((item, values)) = typed_part(item_field, list.values(), inferred_item)? else {
        return Ok(None);
    };
    let rebuilt = ListArray::try_new(
        item.clone(),
        list.offsets().clone(),
        values,
        list.nulls().cloned(),
    )?;
    let field = Field::new(field.name(), DataType::List(item), true);
    Ok(Some((Arc::new(field), Arc::new(rebuilt))))
}

fn typed_struct(
    field: &FieldRef,
    array: &ArrayRef,
    inferred: &arrow::datatypes::Fields,
) -> Result<Option<(FieldRef, ArrayRef)>, ArrowError> {
    let strukt = array.as_struct();
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (child_field, child) in strukt.fields().iter().zip(strukt.columns()) {
        let kept = match inferred.iter().find(|f| f.name() == child_field.name()) {
            Some(known) => typed_part(child_field, child, known.data_type())?,
            None => Some((child_field.clone(), child.clone())),
        };
        if let Some((f, c)) = kept {
            fields.push(f);
            columns.push(c);
        }
    }
    if fields.is_empty() {
        return Ok(None);
    }
    let rebuilt = StructArray::try_new(fields.clone().into(), columns, strukt.nulls().cloned())?;
    let field = Field::new(field.name(), DataType::Struct(fields.into()), true);
    Ok(Some((Arc::new(field), Arc::new(rebuilt))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::shared_schema::decodable;
    use arrow::json::ReaderBuilder;

    fn decode(inferred: &Schema, json: &str) -> RecordBatch {
        let schema = decodable(inferred, Some("_rescued_data"));
        let mut d = ReaderBuilder::new(schema).build_decoder().unwrap();
        d.decode(json.as_bytes()).unwrap();
        d.flush().unwrap().unwrap()
    }

    #[test]
    fn placeholders_go_at_every_depth_and_typed_values_stay() {
        let item = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
        let strukt = |fs: Vec<Field>| DataType::Struct(fs.into());
        let inferred = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("referrer", DataType::Null, true),
            Field::new("tags", item(DataType::Null), true),
            Field::new("meta", strukt(vec![]), true),
            Field::new(
                "user",
                strukt(vec![
                    Field::new("id", DataType::Int64, true),
                    Field::new("nick", DataType::Null, true),
                ]),
                true,
            ),
            Field::new(
                "exps",
                item(strukt(vec![
                    Field::new("id", DataType::Utf8, true),
                    Field::new("note", DataType::Null, true),
                ])),
                true,
            ),
        ]);
        assert!(has_untyped(&inferred));
        let batch = decode(
            &inferred,
            r#"{"id":1,"referrer":null,"tags":[],"meta":null,"user":{"id":7,"nick":null},"exps":[{"id":"e1"}]}"#,
        );
        let stripped = strip(&batch, &inferred).unwrap();
        let schema = stripped.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["exps", "id", "user", "_rescued_data"]);
        let user = stripped.column_by_name("user").unwrap().as_struct();
        assert_eq!(user.fields().len(), 1);
        let exps = stripped.column_by_name("exps").unwrap().as_list::<i32>();
        let exp = exps.values().as_struct();
        assert_eq!(exp.fields().len(), 1);
        assert_eq!(exp.column(0).as_string::<i32>().value(0), "e1");
        assert_eq!(stripped.num_rows(), 1);
    }

    #[test]
    fn a_schema_without_placeholders_is_left_alone() {
        let inferred = Schema::new(vec![Field::new("id", DataType::Int64, true)]);
        assert!(!has_untyped(&inferred));
        let batch = decode(&inferred, r#"{"id":1}"#);
        assert_eq!(strip(&batch, &inferred).unwrap(), batch);
    }
}
