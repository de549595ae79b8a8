//! Which Parquet columns are written with a dictionary.
//!
//! parquet's writer starts every column with a dictionary and falls back to plain pages once the
//! dictionary outgrows its page limit (`parquet.dictionary.page.bytes`, 1 MiB by default). For a column with too many distinct values
//! (ids, URLs, timestamps, measurements) that costs twice: every value before the fallback is
//! hashed into the dictionary, and the dictionary, useless by then, is still compressed and
//! written. Files of one stream (one partition writer's) therefore skip the attempt for such
//! columns, which they find in two ways ([`PlainColumns`]):
//!
//! ```text
//!  first rows the stream encodes ──► sample: repeats among ≤ 4,096 values ──┐
//!                                   (estimated dictionary > page limit?)    ├─► plain columns ──►
//!  each finished file ──► row groups whose dictionary fell back ────────────┘   later files'
//!                                                                               WriterProperties
//! ```
//!
//! Both only ever turn a dictionary off where parquet's own writer would have dropped it or where
//! it holds nearly every value once (then plain pages are smaller too); the data read back is the
//! same either way.

use std::collections::HashSet;
use std::sync::Mutex;

use arrow::array::{Array, ArrayRef, AsArray, OffsetSizeTrait, StructArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use parquet::basic::{Encoding, PageType};
use parquet::file::metadata::{ColumnChunkMetaData, RowGroupMetaData};
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

/// Values of a column looked at by [`PlainColumns::sample_once`], at most.
const SAMPLE_VALUES: usize = 4096;

/// Non-null values a column needs in the sample to be judged: fewer say too little.
const MIN_SAMPLE_VALUES: usize = 1024;

/// Whether a written column chunk began with a dictionary and fell back to plain pages: its
/// values outgrew `parquet.dictionary.page.bytes`, so that column has too many distinct values to
/// share a dictionary. Every value before the fallback was hashed into the dictionary for
/// nothing: writers skip the attempt for such columns from the next row group on
/// ([`without_dictionary`]).
pub fn dictionary_fell_back(chunk: &ColumnChunkMetaData) -> bool {
    if chunk.dictionary_page_offset().is_none() {
        return false;
    }
    match chunk.page_encoding_stats() {
        Some(stats) => stats.iter().any(|s| {
            matches!(s.page_type, PageType::DATA_PAGE | PageType::DATA_PAGE_V2)
                && s.encoding == Encoding::PLAIN
        }),
        None => chunk
            .page_encoding_stats_mask()
            .is_some_and(|mask| mask.is_set(Encoding::PLAIN)),
    }
}

/// The columns of a written row group whose dictionary fell back ([`dictionary_fell_back`]).
pub fn fallen_back_columns(row_group: &RowGroupMetaData) -> Vec<ColumnPath> {
    row_group
        .columns()
        .iter()
        .filter(|c| dictionary_fell_back(c))
        .map(|c| c.column_path().clone())
        .collect()
}

/// `props` with dictionary encoding off for `columns` (the others keep theirs).
pub fn without_dictionary(props: &WriterProperties, columns: &[ColumnPath]) -> WriterProperties {
    dictionary_off(props.clone().into_builder(), columns).build()
}

/// `builder` with dictionary encoding off for `columns`.
fn dictionary_off<'a>(
    builder: WriterPropertiesBuilder,
    columns: impl IntoIterator<Item = &'a ColumnPath>,
) -> WriterPropertiesBuilder {
    columns.into_iter().fold(builder, |b, column| {
        b.set_column_dictionary_enabled(column.clone(), false)
    })
}

/// The columns of one stream of files (one partition writer's) written without a dictionary
/// (see the module doc): those whose sample says their dictionary would outgrow its limit, and
/// those whose dictionary fell back in a file written before. What a stream learns, it keeps
/// for its life (a column with too many distinct values for a dictionary seldom gets fewer); a
/// restart learns again.
#[derive(Debug, Default)]
pub struct PlainColumns(Mutex<Learnt>);

#[derive(Debug, Default)]
struct Learnt {
    columns: HashSet<ColumnPath>,
    /// Whether the stream's first rows were sampled already.
    sampled: bool,
}

impl PlainColumns {
    /// Adds the columns whose dictionary fell back in `row_groups`.
    pub fn learn(&self, row_groups: &[RowGroupMetaData]) {
        let fell_back: Vec<ColumnPath> = row_groups.iter().flat_map(fallen_back_columns).collect();
        if !fell_back.is_empty() {
            self.lock().columns.extend(fell_back);
        }
    }

    /// Samples the first batch of the stream that is big enough to judge by (once in the
    /// stream's life) and adds the columns whose dictionary would outgrow `limit` bytes
    /// ([`outgrows_dictionary`]). Returns whether it added a column.
    pub fn sample_once(&self, batch: &RecordBatch, limit: usize) -> bool {
        let mut learnt = self.lock();
        if learnt.sampled || batch.num_rows() < MIN_SAMPLE_VALUES {
            return false;
        }
        learnt.sampled = true;
        let sample = batch.slice(0, batch.num_rows().min(SAMPLE_VALUES));
        let mut found = Vec::new();
        let schema = sample.schema();
        for (field, array) in schema.fields().iter().zip(sample.columns()) {
            high_cardinality(vec![field.name().clone()], array, limit, &mut found);
        }
        let before = learnt.columns.len();
        learnt.columns.extend(found);
        learnt.columns.len() > before
    }

    /// `builder` with dictionary encoding off for the columns learnt so far.
    pub fn apply(&self, builder: WriterPropertiesBuilder) -> WriterPropertiesBuilder {
        dictionary_off(builder, self.lock().columns.iter())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Learnt> {
        // A set of column names stays valid whatever a panicking holder did.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Adds `path` to `found` if `array` is a flat column whose dictionary would outgrow its limit;
/// looks into structs. Lists and maps (repeated columns) are left to the fallback.
fn high_cardinality(
    path: Vec<String>,
    array: &ArrayRef,
    limit: usize,
    found: &mut Vec<ColumnPath>,
) {
    let data_type = array.data_type();
    let outgrows = match data_type {
        DataType::Struct(_) => {
            let structs: &StructArray = array.as_struct();
            for (field, child) in structs.fields().iter().zip(structs.columns()) {
                let mut child_path = path.clone();
                child_path.push(field.name().clone());
                high_cardinality(child_path, child, limit, found);
            }
            return;
        }
        DataType::Utf8 | DataType::Binary => strings_outgrow::<i32>(array, limit),
        DataType::LargeUtf8 | DataType::LargeBinary => strings_outgrow::<i64>(array, limit),
        _ if data_type.is_primitive() => primitives_outgrow(array, limit),
        _ => false,
    };
    if outgrows {
        found.push(ColumnPath::new(path));
    }
}

fn strings_outgrow<O: OffsetSizeTrait>(array: &ArrayRef, limit: usize) -> bool {
    let values = match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 => {
            let strings = array.as_string::<O>();
            Box::new(strings.iter().flatten().map(str::as_bytes)) as Box<dyn Iterator<Item = &[u8]>>
        }
        _ => Box::new(array.as_binary::<O>().iter().flatten()),
    };
    // Parquet's plain encoding puts a 4-byte length before each value.
    outgrows_dictionary(values, 4, limit)
}

fn primitives_outgrow(array: &ArrayRef, limit: usize) -> bool {
    let Some(width) = array.data_type().primitive_width() else {
        return false;
    };
    let data = array.to_data();
    let start = data.offset() * width;
    let bytes = &data.buffers()[0].as_slice()[start..start + data.len() * width];
    let values = bytes
        .chunks_exact(width)
        .enumerate()
        .filter(|(i, _)| array.is_valid(*i))
        .map(|(_, value)| value);
    // Parquet stores integers narrower than 32 bits as INT32.
    outgrows_dictionary(values, width.max(4) - width, limit)
}

/// Whether a dictionary of the values these came from would outgrow `limit` bytes
/// (`overhead`: bytes parquet adds per dictionary entry beyond the value's own). Estimated from
/// the repeats in the sample: drawing n values from D equally frequent ones gives about
/// n²/(2D) repeats while D is well above n, so D ≈ n²/(2 · repeats), and none at all means
/// D is far above n. Skewed columns (a few values most of the time) repeat more and keep their
/// dictionary; so do columns with fewer than [`MIN_SAMPLE_VALUES`] values in the sample.
pub(super) fn outgrows_dictionary<'a>(
    values: impl Iterator<Item = &'a [u8]>,
    overhead: usize,
    limit: usize,
) -> bool {
    let mut distinct = HashSet::with_capacity_and_hasher(SAMPLE_VALUES, ahash::RandomState::new());
    let (mut n, mut bytes) = (0usize, 0usize);
    for value in values {
        n += 1;
        bytes += value.len() + overhead;
        distinct.insert(value);
    }
    if n < MIN_SAMPLE_VALUES {
        return false;
    }
    let repeats = (n - distinct.len()) as f64;
    let estimated_distinct = (n * n) as f64 / (2.0 * repeats);
    let entry_bytes = bytes as f64 / n as f64;
    repeats == 0.0 || estimated_distinct * entry_bytes > limit as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Fields, Schema};

    fn values(of: impl Iterator<Item = u64>) -> Vec<[u8; 8]> {
        of.map(u64::to_le_bytes).collect()
    }

    /// A stand-in for uniform draws: a multiplicative hash of the row number, modulo `distinct`.
    fn draws(rows: u64, distinct: u64) -> Vec<[u8; 8]> {
        values((0..rows).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % distinct))
    }

    fn judge(v: &[[u8; 8]]) -> bool {
        outgrows_dictionary(v.iter().map(|b| &b[..]), 0, 256 * 1024)
    }

    #[test]
    fn unique_and_very_many_values_outgrow_few_do_not() {
        assert!(judge(&values(0..4096)), "every value once");
        // 8-byte values: the limit is 32,768 distinct.
        assert!(judge(&draws(4096, 1 << 20)));
        assert!(judge(&draws(4096, 100_000)));
        assert!(!judge(&draws(4096, 10_000)), "10,000 values fit 256 KiB");
        assert!(!judge(&draws(4096, 50)));
        assert!(!judge(&values(0..1000)), "too few to judge");
    }

    #[test]
    fn skewed_columns_keep_their_dictionary() {
        // Half the rows share 10 values, the other half are unique.
        let v = values((0..4096).map(|i| if i % 2 == 0 { i % 20 } else { 1000 + i }));
        assert!(!judge(&v));
    }

    #[test]
    fn samples_flat_and_struct_columns_once() {
        let n = 3000;
        let inner = Fields::from(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("kind", DataType::Utf8, true),
        ]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("url", DataType::Utf8, true),
            Field::new("country", DataType::Utf8, true),
            Field::new("value", DataType::Float64, true),
            Field::new("s", DataType::Struct(inner.clone()), true),
        ]));
        let kinds = StringArray::from_iter_values((0..n).map(|i| format!("k{}", i % 3)));
        let ids = Int64Array::from_iter((0..n).map(|i| (i % 7 != 0).then_some(i)));
        let s = StructArray::try_new(inner, vec![Arc::new(ids), Arc::new(kinds)], None).unwrap();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("https://x/{i}")),
                )),
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| ["de", "fr"][(i % 2) as usize]),
                )),
                Arc::new(Float64Array::from_iter_values(
                    (0..n).map(|i| i as f64 / 2.0),
                )),
                Arc::new(s),
            ],
        )
        .unwrap();
        let plain = PlainColumns::default();
        assert!(
            !plain.sample_once(&batch.slice(0, 10), 256 * 1024),
            "too small to judge"
        );
        assert!(plain.sample_once(&batch, 256 * 1024));
        let mut columns: Vec<String> = plain.lock().columns.iter().map(|c| c.string()).collect();
        columns.sort();
        assert_eq!(columns, ["s.id", "url", "value"]);
        assert!(!plain.sample_once(&batch, 256 * 1024), "once per stream");
    }
}
