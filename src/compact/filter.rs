//! `--where`: a SQL predicate on the partition columns of directories (the `name=value` levels
//! of their paths, as strings), evaluated by DataFusion over one row per directory.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SessionConfig, SessionContext};

use super::error::CompactError;
use super::plan::partition_values;

const INDEX: &str = "__streamx_dir";

/// Indices of the directories (paths relative to their topic) for which `predicate` holds.
/// A directory without one of the named levels reads NULL for it.
pub async fn matching(dirs: &[String], predicate: &str) -> Result<Vec<usize>, CompactError> {
    let err = |message: String| CompactError::Where {
        expr: predicate.to_string(),
        message,
    };
    let values: Vec<Vec<(String, String)>> = dirs.iter().map(|d| partition_values(d)).collect();
    let names: BTreeSet<&str> = values.iter().flatten().map(|(k, _)| k.as_str()).collect();
    let mut fields = vec![Field::new(INDEX, DataType::UInt64, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from_iter_values(
        0..dirs.len() as u64,
    ))];
    for name in &names {
        fields.push(Field::new(*name, DataType::Utf8, true));
        let column: StringArray = values
            .iter()
            .map(|v| v.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()))
            .collect();
        columns.push(Arc::new(column));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| err(e.to_string()))?;
    let mut session = SessionConfig::new();
    session.options_mut().sql_parser.enable_ident_normalization = false;
    let ctx = SessionContext::new_with_config(session);
    let table =
        MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(|e| err(e.to_string()))?;
    ctx.register_table("dirs", Arc::new(table))
        .map_err(|e| err(e.to_string()))?;
    let df = ctx
        .sql(&format!("SELECT {INDEX} FROM dirs WHERE {predicate}"))
        .await
        .map_err(|e| err(e.to_string()))?;
    let batches = df.collect().await.map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    for b in batches {
        let idx = b
            .column(0)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(|| err("unexpected result type".into()))?;
        out.extend((0..idx.len()).map(|i| idx.value(i) as usize));
    }
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn predicates_on_partition_columns() {
        let dirs: Vec<String> = [
            "dt=2026-10-31/hour=23",
            "dt=2026-11-01/hour=00",
            "dt=2026-11-02/hour=05",
            "partition=3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(matching(&dirs, "dt < '2026-11-01'").await.unwrap(), vec![0]);
        assert_eq!(
            matching(&dirs, "dt >= '2026-11-01' AND hour = '05'")
                .await
                .unwrap(),
            vec![2]
        );
        assert_eq!(matching(&dirs, "partition = '3'").await.unwrap(), vec![3]);
        let e = matching(&dirs, "nosuch = 1").await.unwrap_err();
        assert!(e.to_string().contains("nosuch"), "{e}");
    }
}
