//! Output partitioning: which directory under `<topics.dir>/<topic>/` each row goes to.
//!
//! This version has the default partitioner of Kafka Connect (`partition=<kafka partition>`).
//! The seam is [`Partitioner::split`], which groups the rows of one decoded batch by output
//! directory, so SQL partition rules (DataFusion expressions) plug in here without touching the
//! sink or the commit protocol.

use arrow::record_batch::RecordBatch;

/// Rows of a batch that go to one output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Directory relative to `<topics.dir>/<topic>/`, e.g. `partition=3`.
    pub dir: String,
    /// Row indexes into the batch, ascending; `None` means every row.
    pub rows: Option<Vec<u32>>,
}

/// Groups rows by output directory.
///
/// Contract: every row of `batch` is in exactly one group; groups keep row order.
pub trait Partitioner: Send + Sync {
    fn split(&self, kafka_partition: i32, batch: &RecordBatch) -> Vec<Group>;
}

/// Kafka Connect's DefaultPartitioner: one directory per Kafka partition.
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultPartitioner;

impl Partitioner for DefaultPartitioner {
    fn split(&self, kafka_partition: i32, _batch: &RecordBatch) -> Vec<Group> {
        vec![Group {
            dir: format!("partition={kafka_partition}"),
            rows: None,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int32Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn default_partitioner_puts_everything_under_the_kafka_partition() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, false)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(vec![1, 2, 3]))]).unwrap();
        let groups = DefaultPartitioner.split(7, &batch);
        assert_eq!(
            groups,
            vec![Group {
                dir: "partition=7".into(),
                rows: None
            }]
        );
    }
}
