//! [`RawDecoder`]: record values kept as they are, as one non-null `value: Binary` column.
//!
//! The `BinaryArray` is built straight from the buffer's contiguous value bytes and its
//! `value_ends` (which already are the offsets), copying the bytes once. Tombstones (null values)
//! are rejected, because a raw file has no way to represent them; the array is then built from
//! the accepted slices.

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::{DecodeError, Decoded, RecordBuffer, RecordError, ValueDecoder};

/// The cause given for a rejected tombstone.
const TOMBSTONE: &str = "null value (tombstone)";

/// Decodes record values into one `value: Binary` column.
#[derive(Debug, Clone)]
pub struct RawDecoder {
    schema: SchemaRef,
}

impl Default for RawDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RawDecoder {
    pub fn new() -> Self {
        RawDecoder {
            schema: Arc::new(Schema::new(vec![Field::new(
                "value",
                DataType::Binary,
                false,
            )])),
        }
    }
}

/// Converts a byte position to an i32 Binary offset.
fn offset(pos: usize) -> Result<i32, ArrowError> {
    i32::try_from(pos).map_err(|_| {
        ArrowError::InvalidArgumentError(format!(
            "raw values of {pos} bytes exceed the 2 GiB limit of one Binary array"
        ))
    })
}

impl ValueDecoder for RawDecoder {
    fn decode(&mut self, buffer: &RecordBuffer) -> Result<Decoded, DecodeError> {
        let n = buffer.len();
        let mut rejected = Vec::new();
        let array = if buffer.value_present.iter().all(|p| *p) {
            // Every record has a value: the buffer already is a Binary array.
            let mut offsets = Vec::with_capacity(n + 1);
            offsets.push(0i32);
            for end in &buffer.value_ends {
                offsets.push(offset(*end)?);
            }
            let values = Buffer::from(buffer.values.as_slice());
            // The offsets are monotonic by construction of the buffer.
            let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
            BinaryArray::try_new(offsets, values, None)?
        } else {
            let mut offsets = Vec::with_capacity(n + 1);
            offsets.push(0i32);
            let mut values = Vec::with_capacity(buffer.values.len());
            for i in 0..n {
                match buffer.value(i) {
                    Some(v) => {
                        values.extend_from_slice(v);
                        offsets.push(offset(values.len())?);
                    }
                    None => rejected.push((i, RecordError(TOMBSTONE.to_string()))),
                }
            }
            let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
            BinaryArray::try_new(offsets, Buffer::from_vec(values), None)?
        };
        let batch = RecordBatch::try_new(self.schema.clone(), vec![Arc::new(array) as ArrayRef])?;
        Ok(Decoded { batch, rejected })
    }

    fn schema(&self) -> Option<SchemaRef> {
        Some(self.schema.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    fn buffer(values: &[Option<&[u8]>]) -> RecordBuffer {
        let mut b = RecordBuffer::new(false, false);
        for (i, v) in values.iter().enumerate() {
            b.push(100 + i as i64, 0, None, *v, Vec::new);
        }
        b
    }

    fn values(d: &Decoded) -> Vec<Vec<u8>> {
        let a = d
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .unwrap();
        assert_eq!(a.null_count(), 0);
        a.iter().map(|v| v.unwrap().to_vec()).collect()
    }

    #[test]
    fn decodes_values_as_they_are() {
        let b = buffer(&[
            Some(b"abc"),
            Some(b""),
            Some(b"\x00\xff{not json"),
            Some(b"z"),
        ]);
        let d = RawDecoder::new().decode(&b).unwrap();
        assert!(d.rejected.is_empty());
        assert_eq!(d.batch.schema(), RawDecoder::new().schema().unwrap());
        assert_eq!(
            values(&d),
            vec![
                b"abc".to_vec(),
                vec![],
                b"\x00\xff{not json".to_vec(),
                b"z".to_vec()
            ]
        );
    }

    #[test]
    fn rejects_tombstones() {
        let b = buffer(&[None, Some(b"a"), None, Some(b"bc"), None]);
        let d = RawDecoder::new().decode(&b).unwrap();
        let rejected: Vec<usize> = d.rejected.iter().map(|(i, _)| *i).collect();
        assert_eq!(rejected, vec![0, 2, 4]);
        assert_eq!(
            d.rejected[0].1,
            RecordError("null value (tombstone)".into())
        );
        assert_eq!(values(&d), vec![b"a".to_vec(), b"bc".to_vec()]);
        assert_eq!(d.accepted_indexes(b.len()), vec![1, 3]);
    }

    #[test]
    fn all_tombstones_give_an_empty_batch() {
        let b = buffer(&[None, None]);
        let d = RawDecoder::new().decode(&b).unwrap();
        assert_eq!(d.batch.num_rows(), 0);
        assert_eq!(d.rejected.len(), 2);
    }
}
