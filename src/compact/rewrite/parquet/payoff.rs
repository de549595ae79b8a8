//! Which columns of a compaction output's next row group are written without a dictionary:
//! those whose dictionary did not pay off in a row group just written, for a while.
//!
//! ```text
//!  pending row group ──► per leaf column: bytes its values take plain ([`plain_bytes`])
//!        │ flush
//!        ▼
//!  written chunk with a dictionary ── uncompressed > 9/10 of plain? ── yes ──► plain in the next
//!        (flat columns; nested ones: did it fall back?)      │        1, 2, 4 .. 16 row groups,
//!                                                            no       then tried again
//!                                                            └──► keeps its dictionary
//! ```
//!
//! A dictionary that fell back mid-chunk may still have paid off: ids repeating a dozen times
//! per row group with more distinct values than the dictionary page holds are dictionary-encoded
//! up to the fallback at a fraction of their plain size, and the next row group may fit them
//! all. Those keep their dictionary. Columns whose values are all or nearly all distinct (offsets,
//! event ids, measurements) gain nothing from one, whether it fell back or not (a 1 MiB page
//! holds 131,072 distinct 8-byte values): they are encoded plain, which is cheaper and smaller,
//! and tried again after 1, 2, 4, 8, then every 16 row groups (a column whose values repeat in
//! some stretches of the data and not in others gets its dictionary back where they do).

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, IntervalUnit};
use parquet::file::metadata::RowGroupMetaData;
use parquet::schema::types::ColumnPath;

use crate::format::parquet::dictionary_fell_back;

/// A dictionary-encoded chunk that is larger (uncompressed) than this share of its values' plain
/// size did not pay off.
const PAYOFF: f64 = 0.9;

/// Bytes a flat column's non-null values take plain-encoded (4-byte lengths before strings and
/// binaries; integers narrower than 32 bits as INT32); `None` for other types (nested, views,
/// dictionaries, decimals, intervals, booleans), judged by their fallback alone.
pub(super) fn plain_bytes(array: &ArrayRef) -> Option<u64> {
    let non_null = (array.len() - array.null_count()) as u64;
    let strings = |offsets: (usize, usize)| Some((offsets.1 - offsets.0) as u64 + 4 * non_null);
    match array.data_type() {
        DataType::Utf8 => strings(span(array.as_string::<i32>().value_offsets())),
        DataType::LargeUtf8 => strings(span(array.as_string::<i64>().value_offsets())),
        DataType::Binary => strings(span(array.as_binary::<i32>().value_offsets())),
        DataType::LargeBinary => strings(span(array.as_binary::<i64>().value_offsets())),
        DataType::Float16
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..)
        | DataType::Interval(IntervalUnit::DayTime | IntervalUnit::MonthDayNano)
        | DataType::Interval(IntervalUnit::YearMonth) => None,
        t if t.is_primitive() => t.primitive_width().map(|w| w.max(4) as u64 * non_null),
        _ => None,
    }
}

/// First and last offset of a (possibly sliced) string or binary array.
fn span<O: arrow::array::OffsetSizeTrait>(offsets: &[O]) -> (usize, usize) {
    match (offsets.first(), offsets.last()) {
        (Some(a), Some(b)) => (a.as_usize(), b.as_usize()),
        _ => (0, 0),
    }
}

/// Row groups a column whose dictionary did not pay off is written plain at most before it is
/// tried again.
const MAX_SKIP: usize = 16;

/// The columns of one output written plain for now, and when each is tried again.
#[derive(Debug, Default)]
pub(super) struct Payoff(HashMap<ColumnPath, Backoff>);

#[derive(Debug, Clone, Copy)]
struct Backoff {
    /// Row groups written plain after the last dictionary that did not pay off.
    skip: usize,
    /// The index of the row group that tries the dictionary again.
    retry_at: usize,
}

impl Payoff {
    /// Judges the dictionaries of row group `index` of the output, just `written` (see the module
    /// doc); `plain`: each leaf column's plain bytes in it ([`plain_bytes`] summed), `None`
    /// unknown.
    pub fn judge(&mut self, index: usize, written: &RowGroupMetaData, plain: &[Option<u64>]) {
        let chunks = written.columns().iter().enumerate();
        for (i, chunk) in chunks.filter(|(_, c)| c.dictionary_page_offset().is_some()) {
            let paid = match plain.get(i).copied().flatten() {
                Some(p) => chunk.uncompressed_size() as f64 <= PAYOFF * p as f64,
                None => !dictionary_fell_back(chunk),
            };
            self.record(index, chunk.column_path(), paid);
        }
    }

    /// Records whether the dictionary of `column` paid off in row group `index`.
    fn record(&mut self, index: usize, column: &ColumnPath, paid: bool) {
        if paid {
            self.0.remove(column);
            return;
        }
        // Tried again and still unpaid: wait twice as long.
        let skip = self.0.get(column).map_or(1, |b| (b.skip * 2).min(MAX_SKIP));
        let retry_at = index + 1 + skip;
        self.0.insert(column.clone(), Backoff { skip, retry_at });
    }

    /// The columns written without a dictionary in row group `index`.
    pub fn plain_at(&self, index: usize) -> Vec<ColumnPath> {
        let plain = self.0.iter().filter(|(_, b)| index < b.retry_at);
        plain.map(|(column, _)| column.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Int16Array, Int64Array, ListArray, StringArray};
    use arrow::datatypes::Int32Type;

    #[test]
    fn unpaid_dictionaries_are_tried_again_after_doubling_waits() {
        let c = ColumnPath::new(vec!["id".into()]);
        let mut payoff = Payoff::default();
        let mut tried = Vec::new();
        for index in 0..80 {
            if payoff.plain_at(index).is_empty() {
                tried.push(index);
                payoff.record(index, &c, false);
            }
        }
        assert_eq!(tried, [0, 2, 5, 10, 19, 36, 53, 70]);
        // A retry that pays keeps the dictionary from then on.
        payoff.record(70, &c, true);
        assert!(payoff.plain_at(71).is_empty() && payoff.plain_at(90).is_empty());
    }

    #[test]
    fn plain_bytes_of_flat_columns() {
        let s: ArrayRef = Arc::new(StringArray::from(vec![Some("abc"), None, Some("de")]));
        assert_eq!(plain_bytes(&s), Some(5 + 2 * 4));
        assert_eq!(plain_bytes(&s.slice(1, 2)), Some(2 + 4));
        let i: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3)]));
        assert_eq!(plain_bytes(&i), Some(16));
        let small: ArrayRef = Arc::new(Int16Array::from(vec![1, 2]));
        assert_eq!(plain_bytes(&small), Some(8), "INT32 in Parquet");
        let list: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1)]),
        ]));
        assert_eq!(plain_bytes(&list), None);
    }
}
