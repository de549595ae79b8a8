//! [`RawFileWriter`]: the `value` column written as it is, each value followed by `\n`
//! (StreamX's SourceFormat with ByteArrayConverter). Null values are skipped.
//!
//! The schema must have a column named `value` of type Binary, LargeBinary, Utf8 or LargeUtf8;
//! other columns (e.g. the Kafka metadata) are ignored.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;

use super::{FileWriter, FormatError};

/// One raw file being written into memory.
#[derive(Debug)]
pub struct RawFileWriter {
    column: usize,
    data_type: DataType,
    buf: Vec<u8>,
    rows: usize,
}

impl RawFileWriter {
    pub fn new(schema: &SchemaRef) -> Result<Self, FormatError> {
        let found = schema
            .fields()
            .iter()
            .position(|f| f.name() == "value")
            .map(|i| {
                let t = schema.field(i).data_type();
                (i, t.clone())
            });
        match found {
            Some((column, data_type))
                if matches!(
                    data_type,
                    DataType::Binary | DataType::LargeBinary | DataType::Utf8 | DataType::LargeUtf8
                ) =>
            {
                Ok(RawFileWriter {
                    column,
                    data_type,
                    buf: Vec::new(),
                    rows: 0,
                })
            }
            _ => Err(FormatError::Unsupported {
                format: "raw",
                message: format!(
                    "it needs a column named 'value' of type Binary or Utf8, the schema is {schema}"
                ),
            }),
        }
    }
}

/// Appends each non-null value of `values` and a newline to `buf`.
fn append<'a>(buf: &mut Vec<u8>, values: impl Iterator<Item = Option<&'a [u8]>>) {
    for v in values.flatten() {
        buf.extend_from_slice(v);
        buf.push(b'\n');
    }
}

impl FileWriter for RawFileWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        let unexpected = || FormatError::Unsupported {
            format: "raw",
            message: format!("batch schema {} differs from the file's", batch.schema()),
        };
        let column = batch.columns().get(self.column).ok_or_else(unexpected)?;
        if column.data_type() != &self.data_type {
            return Err(unexpected());
        }
        let buf = &mut self.buf;
        buf.reserve(column.get_buffer_memory_size().min(1 << 26));
        match &self.data_type {
            DataType::Binary => append(buf, column.as_binary::<i32>().iter()),
            DataType::LargeBinary => append(buf, column.as_binary::<i64>().iter()),
            DataType::Utf8 => append(
                buf,
                column
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.map(str::as_bytes)),
            ),
            DataType::LargeUtf8 => append(
                buf,
                column
                    .as_string::<i64>()
                    .iter()
                    .map(|v| v.map(str::as_bytes)),
            ),
            _ => return Err(unexpected()),
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    fn estimated_size(&self) -> usize {
        self.buf.len()
    }

    /// Rows given to `write`, null values included.
    fn rows(&self) -> usize {
        self.rows
    }

    fn finish(self: Box<Self>) -> Result<Bytes, FormatError> {
        Ok(Bytes::from(self.buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, BinaryArray, Int64Array, LargeBinaryArray, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn one_column(array: ArrayRef) -> RecordBatch {
        let field = Field::new("value", array.data_type().clone(), true);
        RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![array]).unwrap()
    }

    #[test]
    fn writes_values_newline_separated() {
        let a = one_column(Arc::new(BinaryArray::from_opt_vec(vec![
            Some(b"one"),
            None,
            Some(b""),
            Some(b"{\"x\":1}"),
        ])));
        let mut w = Box::new(RawFileWriter::new(&a.schema()).unwrap());
        w.write(&a).unwrap();
        w.write(&a.slice(3, 1)).unwrap();
        assert_eq!(w.rows(), 5);
        assert_eq!(w.estimated_size(), 21);
        let bytes = w.finish().unwrap();
        assert_eq!(&bytes[..], b"one\n\n{\"x\":1}\n{\"x\":1}\n");
    }

    #[test]
    fn utf8_and_large_binary_and_other_columns() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("_offset", arrow::datatypes::DataType::Int64, false),
            Field::new("value", arrow::datatypes::DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("héllo"), Some("b")])),
            ],
        )
        .unwrap();
        let mut w = Box::new(RawFileWriter::new(&schema).unwrap());
        w.write(&batch).unwrap();
        assert_eq!(&w.finish().unwrap()[..], "héllo\nb\n".as_bytes());

        let large = one_column(Arc::new(LargeBinaryArray::from_vec(vec![b"x", b"yz"])));
        let mut w = Box::new(RawFileWriter::new(&large.schema()).unwrap());
        w.write(&large).unwrap();
        assert_eq!(&w.finish().unwrap()[..], b"x\nyz\n");
    }

    #[test]
    fn rejects_schemas_without_a_usable_value_column() {
        let ints = one_column(Arc::new(Int64Array::from(vec![1])));
        let err = RawFileWriter::new(&ints.schema()).unwrap_err();
        assert!(matches!(
            err,
            FormatError::Unsupported { format: "raw", .. }
        ));
        assert!(err.to_string().contains("value"), "{err}");
        let other = Arc::new(Schema::new(vec![Field::new("v", DataType::Binary, true)]));
        assert!(RawFileWriter::new(&other).is_err());
    }
}
