//! `transform.sql`: `SELECT ... FROM records [WHERE ...]` applied to every decoded batch before
//! partitioning (projection, renames, casts, derived columns, filters).
//!
//! Rows the `WHERE` clause drops are consumed all the same: their offsets stay inside the commit
//! that covers them, so exactly-once holds. A row on which the predicate or a projected
//! expression fails (a cast of a bad value, say) is reported per row so that `errors.tolerance`
//! decides its fate.

use arrow::array::{Array, BooleanArray, UInt32Array};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::{evaluate_tolerant, CompiledSelect, ExprError, SqlCompiler};

pub const KEY: &str = "transform.sql";

/// A compiled `transform.sql` for one input schema.
#[derive(Debug, Clone)]
pub struct Transform {
    select: CompiledSelect,
}

/// Output of [`Transform::apply`].
#[derive(Debug)]
pub struct Applied {
    /// The projected rows.
    pub batch: RecordBatch,
    /// For each output row, the index of its input row (ascending).
    pub rows: Vec<usize>,
    /// Input rows on which the SQL failed, with DataFusion's message.
    pub failed: Vec<(usize, String)>,
}

impl Transform {
    pub fn compile(
        compiler: &SqlCompiler,
        sql: &str,
        input: &SchemaRef,
    ) -> Result<Self, ExprError> {
        Ok(Transform {
            select: compiler.compile_select(KEY, sql, input)?,
        })
    }

    pub fn output_schema(&self) -> &SchemaRef {
        &self.select.schema
    }

    pub fn apply(&self, batch: &RecordBatch) -> Result<Applied, ExprError> {
        let eval_err = |message: String| ExprError::Evaluate {
            key: KEY.into(),
            message,
        };
        let mut failed = Vec::new();
        let (filtered, mut rows): (RecordBatch, Vec<usize>) = match &self.select.filter {
            None => (batch.clone(), (0..batch.num_rows()).collect()),
            Some(predicate) => {
                let out =
                    evaluate_tolerant(std::slice::from_ref(predicate), batch).map_err(eval_err)?;
                let survivors = survivors(batch.num_rows(), &out.failed);
                failed.extend(out.failed);
                let mask = out.arrays[0]
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .ok_or_else(|| eval_err("the WHERE clause is not a boolean".into()))?;
                // Null counts as false, as in SQL.
                let keep: Vec<u32> = (0..mask.len())
                    .filter(|&i| mask.is_valid(i) && mask.value(i))
                    .map(|i| i as u32)
                    .collect();
                let rows = keep.iter().map(|&i| survivors[i as usize]).collect();
                let taken = arrow::compute::take_record_batch(&out.batch, &UInt32Array::from(keep))
                    .map_err(|e| eval_err(e.to_string()))?;
                (taken, rows)
            }
        };
        let exprs: Vec<_> = self
            .select
            .projection
            .iter()
            .map(|e| e.expr.clone())
            .collect();
        let out = evaluate_tolerant(&exprs, &filtered).map_err(eval_err)?;
        if !out.failed.is_empty() {
            let kept = survivors(rows.len(), &out.failed);
            failed.extend(out.failed.iter().map(|(i, m)| (rows[*i], m.clone())));
            rows = kept.into_iter().map(|i| rows[i]).collect();
            failed.sort_by_key(|(i, _)| *i);
        }
        let batch = RecordBatch::try_new(self.select.schema.clone(), out.arrays)
            .map_err(|e| eval_err(e.to_string()))?;
        Ok(Applied {
            batch,
            rows,
            failed,
        })
    }
}

/// Indexes `0..n` that are not in `failed` (which is ascending).
pub fn survivors(n: usize, failed: &[(usize, String)]) -> Vec<usize> {
    crate::decode::survivors(n, failed.iter().map(|(i, _)| *i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("n", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    Some(2),
                    None,
                    Some(4),
                    Some(5),
                ])),
                Arc::new(StringArray::from(vec!["10", "x", "30", "40", "y"])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn filters_projects_and_reports_failing_rows() {
        let b = batch();
        let t = Transform::compile(
            &SqlCompiler::new(),
            "SELECT id, CAST(n AS BIGINT) AS n_num FROM records WHERE id <> 4",
            &b.schema(),
        )
        .unwrap();
        let out = t.apply(&b).unwrap();
        // Row 2 (null id) and row 3 (id 4) are filtered; rows 1 and 4 fail the cast.
        assert_eq!(out.rows, vec![0]);
        assert_eq!(
            out.failed.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![1, 4]
        );
        assert!(out.failed[0].1.contains('x'), "{}", out.failed[0].1);
        assert_eq!(out.batch.num_rows(), 1);
        assert_eq!(out.batch.schema().field(1).name(), "n_num");
    }

    #[test]
    fn survivors_skip_failed() {
        let f = vec![(1, String::new()), (3, String::new())];
        assert_eq!(survivors(5, &f), vec![0, 2, 4]);
    }
}
