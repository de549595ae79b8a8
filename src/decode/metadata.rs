//! Kafka metadata columns: `_topic`, `_partition`, `_offset`, `_timestamp`, `_key`, `_headers`.
//!
//! Types: `_topic` Utf8, `_partition` Int32, `_offset` Int64, `_timestamp` Timestamp(ms, UTC)
//! (null when the broker gave none), `_key` Binary (nullable), `_headers`
//! List<Struct<key: Utf8, value: Binary>> (a list, because Kafka allows repeated header keys).
//! `_topic`, `_partition`, `_offset` and `_headers` are never null; a buffer that does not keep
//! keys gives null keys, one that does not keep headers gives empty header lists.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BinaryBuilder, Int32Array, Int64Array, ListArray, StringArray,
    StringBuilder, StructArray, TimestampMillisecondArray,
};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::RecordBuffer;

/// The fields of one header: `key` Utf8 (non-null), `value` Binary (nullable).
fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Binary, true),
    ])
}

/// The list item of `_headers`.
fn header_item() -> FieldRef {
    Arc::new(Field::new_list_field(
        DataType::Struct(header_fields()),
        false,
    ))
}

/// The metadata fields, in column order.
pub fn fields() -> Vec<Field> {
    vec![
        Field::new("_topic", DataType::Utf8, false),
        Field::new("_partition", DataType::Int32, false),
        Field::new("_offset", DataType::Int64, false),
        Field::new(
            "_timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("_key", DataType::Binary, true),
        Field::new("_headers", DataType::List(header_item()), false),
    ]
}

/// Appends the metadata columns for the rows `rows` (buffer indexes, ascending) of `buffer` to
/// `values` (which has exactly `rows.len()` rows). The buffer must keep keys and headers.
pub fn append_metadata(
    values: &RecordBatch,
    topic: &str,
    partition: i32,
    buffer: &RecordBuffer,
    rows: &[usize],
) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    if values.num_rows() != n {
        return Err(ArrowError::InvalidArgumentError(format!(
            "metadata for {n} rows appended to a batch of {} rows",
            values.num_rows()
        )));
    }
    if let Some(&i) = rows.iter().find(|&&i| i >= buffer.len()) {
        return Err(ArrowError::InvalidArgumentError(format!(
            "row {i} is outside a buffer of {} records",
            buffer.len()
        )));
    }
    let topics = StringArray::from_iter_values(std::iter::repeat_n(topic, n));
    let partitions = Int32Array::from(vec![partition; n]);
    let offsets = Int64Array::from_iter_values(rows.iter().map(|&i| buffer.offsets[i]));
    let timestamps = TimestampMillisecondArray::from_iter(rows.iter().map(|&i| {
        let ts = buffer.timestamps[i];
        (ts >= 0).then_some(ts)
    }))
    .with_timezone("UTC");
    let keys = BinaryArray::from_iter(rows.iter().map(|&i| buffer.key(i)));
    let headers = headers(buffer, rows)?;

    let mut columns = values.columns().to_vec();
    columns.extend([
        Arc::new(topics) as ArrayRef,
        Arc::new(partitions),
        Arc::new(offsets),
        Arc::new(timestamps),
        Arc::new(keys),
        Arc::new(headers),
    ]);
    RecordBatch::try_new(with_metadata(&values.schema()), columns)
}

/// The `_headers` column for `rows`: empty lists when the buffer does not keep headers.
fn headers(buffer: &RecordBuffer, rows: &[usize]) -> Result<ListArray, ArrowError> {
    let kept = buffer.keep_headers && buffer.headers.len() == buffer.len();
    let mut list_offsets = Vec::with_capacity(rows.len() + 1);
    list_offsets.push(0i32);
    let mut keys = StringBuilder::new();
    let mut values = BinaryBuilder::new();
    let mut count = 0usize;
    for &i in rows {
        if kept {
            for h in &buffer.headers[i] {
                keys.append_value(&h.key);
                values.append_option(h.value.as_deref());
                count += 1;
            }
        }
        list_offsets.push(i32::try_from(count).map_err(|_| {
            ArrowError::InvalidArgumentError("too many headers for one batch".to_string())
        })?);
    }
    let entries = StructArray::try_new(
        header_fields(),
        vec![
            Arc::new(keys.finish()) as ArrayRef,
            Arc::new(values.finish()),
        ],
        None,
    )?;
    ListArray::try_new(
        header_item(),
        OffsetBuffer::new(ScalarBuffer::from(list_offsets)),
        Arc::new(entries),
        None,
    )
}

/// The value schema with the metadata fields appended.
pub fn with_metadata(values: &SchemaRef) -> SchemaRef {
    let mut all: Vec<FieldRef> = values.fields().iter().cloned().collect();
    all.extend(fields().into_iter().map(Arc::new));
    Arc::new(Schema::new_with_metadata(all, values.metadata().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::buffer::Header;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int32Type, Int64Type};

    fn values(n: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        let col = Int64Array::from_iter_values(0..n as i64);
        RecordBatch::try_new(schema, vec![Arc::new(col)]).unwrap()
    }

    fn buffer(keep: bool) -> RecordBuffer {
        let mut b = RecordBuffer::new(keep, keep);
        let h = |k: &str, v: Option<&[u8]>| Header {
            key: k.into(),
            value: v.map(<[u8]>::to_vec),
        };
        b.push(10, 1_700_000_000_000, Some(b"k0"), Some(b"{}"), || {
            vec![h("a", Some(b"1"))]
        });
        b.push(11, -1, None, Some(b"{}"), Vec::new);
        b.push(12, 5, Some(b""), None, || {
            vec![h("x", None), h("x", Some(b"2"))]
        });
        b.push(13, 6, Some(b"k3"), Some(b"{}"), || vec![h("z", Some(b""))]);
        b
    }

    #[test]
    fn schema_appends_fields() {
        let s = with_metadata(&values(0).schema());
        let names: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
        let expected = [
            "v",
            "_topic",
            "_partition",
            "_offset",
            "_timestamp",
            "_key",
            "_headers",
        ];
        assert_eq!(names, expected);
        let utc = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        assert_eq!(s.field(4).data_type(), &utc);
    }

    #[test]
    fn columns_for_accepted_rows() {
        let b = buffer(true);
        let out = append_metadata(&values(3), "clicks", 7, &b, &[0, 2, 3]).unwrap();
        assert_eq!(out.schema(), with_metadata(&values(0).schema()));
        assert_eq!(out.num_rows(), 3);
        let topic = out.column(1).as_string::<i32>();
        assert!(topic.iter().all(|t| t == Some("clicks")));
        let part = out.column(2).as_primitive::<Int32Type>();
        assert_eq!(part.values().to_vec(), vec![7, 7, 7]);
        let off = out.column(3).as_primitive::<Int64Type>();
        assert_eq!(off.values().to_vec(), vec![10, 12, 13]);
        let ts = out
            .column(4)
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        assert_eq!(
            ts.iter().collect::<Vec<_>>(),
            vec![Some(1_700_000_000_000), Some(5), Some(6)]
        );
        let keys = out.column(5).as_binary::<i32>();
        let expected: Vec<Option<&[u8]>> = vec![Some(b"k0"), Some(b""), Some(b"k3")];
        assert_eq!(keys.iter().collect::<Vec<_>>(), expected);
        let headers = out.column(6).as_list::<i32>();
        assert_eq!(headers.value_offsets(), &[0, 1, 3, 4]);
        let entries = headers.values().as_struct();
        let hk = entries.column(0).as_string::<i32>();
        assert_eq!(
            hk.iter().collect::<Vec<_>>(),
            vec![Some("a"), Some("x"), Some("x"), Some("z")]
        );
        let hv = entries.column(1).as_binary::<i32>();
        let expected: Vec<Option<&[u8]>> = vec![Some(b"1"), None, Some(b"2"), Some(b"")];
        assert_eq!(hv.iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn null_timestamp_and_missing_key() {
        let b = buffer(true);
        let out = append_metadata(&values(1), "t", 0, &b, &[1]).unwrap();
        assert!(out.column(4).is_null(0));
        assert!(out.column(5).is_null(0));
        assert_eq!(out.column(6).as_list::<i32>().value_length(0), 0);
    }

    #[test]
    fn buffer_without_keys_and_headers() {
        let b = buffer(false);
        let out = append_metadata(&values(4), "t", 1, &b, &[0, 1, 2, 3]).unwrap();
        assert_eq!(out.column(5).null_count(), 4);
        let headers = out.column(6).as_list::<i32>();
        assert_eq!(headers.null_count(), 0);
        assert_eq!(headers.value_offsets(), &[0, 0, 0, 0, 0]);
    }

    #[test]
    fn row_count_mismatch_is_an_error() {
        let b = buffer(true);
        assert!(append_metadata(&values(2), "t", 0, &b, &[0]).is_err());
        assert!(append_metadata(&values(1), "t", 0, &b, &[9]).is_err());
    }
}
