//! Schemas of directories whose files were written under different schema versions: whether
//! the older ones can be read under the newest, and rows projected to it.

use arrow::array::{new_null_array, ArrayRef};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::MergeError;

/// Whether rows of `older` can be read under `newest`: every field of `older` is in `newest`
/// with the same type, and every field only `newest` has is nullable. Otherwise the fields.
pub fn check_compatible(newest: &Schema, older: &Schema) -> Result<(), String> {
    let mut problems = Vec::new();
    for f in older.fields() {
        match newest.field_with_name(f.name()) {
            Ok(n) if n.data_type() == f.data_type() => {}
            Ok(n) => problems.push(format!(
                "'{}' is {} in an older file and {} in the newest",
                f.name(),
                f.data_type(),
                n.data_type()
            )),
            Err(_) => problems.push(format!("'{}' is missing from the newest schema", f.name())),
        }
    }
    for n in newest.fields() {
        if older.field_with_name(n.name()).is_err() && !n.is_nullable() {
            problems.push(format!("new field '{}' is not nullable", n.name()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// `batch` under `schema`: columns by name, nulls for the ones it lacks.
pub fn project(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, MergeError> {
    if batch.schema().fields() == schema.fields() {
        return RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
            .map_err(|e| MergeError::Write(e.to_string()));
    }
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => c.clone(),
            None => new_null_array(f.data_type(), batch.num_rows()),
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| MergeError::Write(e.to_string()))
}
