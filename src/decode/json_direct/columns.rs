//! The column builders of the direct decoder: one per field of the declared schema, nested as
//! the schema nests, each parsing its values from a [`Cursor`] and built into an Arrow array at
//! the end of each buffer.

use std::sync::Arc;

use arrow::array::builder::{BooleanBufferBuilder, NullBufferBuilder};
use arrow::array::timezone::Tz;
use arrow::array::{
    make_array, ArrayData, ArrayRef, BooleanArray, ListArray, StringArray, StructArray,
};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, FieldRef, Fields, TimeUnit};

use super::cursor::{same_bytes, Cursor};
use super::scalars::{float64, integer_value, timestamp};
use super::{GiveUp, Step};

/// The builder of one column: exactly one entry (a value or a null) per row of its parent.
///
/// Buffers are handed to Arrow at the end of each buffer; each builder remembers how much the
/// last batch used and reserves that much when the next buffer starts ([`Column::prepare`]), so
/// values are not copied while vectors grow. `prepare` also drops what a buffer given up on left
/// half written.
#[derive(Debug)]
enum Column {
    Utf8(Utf8Column),
    Boolean {
        values: BooleanBufferBuilder,
        nulls: NullBufferBuilder,
    },
    /// Int32, Int64, Float32, Float64, Timestamp.
    Number(NumberColumn),
    Struct(StructColumn),
    List(ListColumn),
}

impl Column {
    fn new(data_type: &DataType, strict: bool) -> Option<Column> {
        Some(match data_type {
            DataType::Utf8 => Column::Utf8(Utf8Column::default()),
            DataType::Boolean => Column::Boolean {
                values: BooleanBufferBuilder::new(0),
                nulls: NullBufferBuilder::new(0),
            },
            DataType::Struct(fields) => Column::Struct(StructColumn::new(fields, strict)?),
            DataType::List(item) => Column::List(ListColumn::new(item, strict)?),
            other => Column::Number(NumberColumn::new(other)?),
        })
    }

    /// Starts a buffer of `rows` rows: empty, with room for what the previous batch used.
    fn prepare(&mut self, rows: usize) {
        match self {
            Column::Utf8(c) => c.prepare(rows),
            Column::Boolean { values, nulls } => {
                *values = BooleanBufferBuilder::new(rows);
                *nulls = NullBufferBuilder::new(rows);
            }
            Column::Number(n) => n.prepare(rows),
            Column::Struct(s) => s.prepare(rows),
            Column::List(l) => l.prepare(rows),
        }
    }

    fn append_null(&mut self) {
        match self {
            Column::Utf8(c) => c.append_null(),
            Column::Boolean { values, nulls } => {
                values.append(false);
                nulls.append_null();
            }
            Column::Number(n) => n.append_null(),
            Column::Struct(s) => s.append_null(),
            Column::List(l) => l.append_null(),
        }
    }

    /// Parses the value at the cursor into this column.
    fn value(&mut self, cursor: &mut Cursor<'_>) -> Step {
        if cursor.null()? {
            self.append_null();
            return Ok(());
        }
        match self {
            Column::Utf8(c) => c.value(cursor),
            Column::Boolean { values, nulls } => {
                let value = cursor.peek() == Some(b't');
                cursor.literal(if value { b"true" } else { b"false" })?;
                values.append(value);
                nulls.append_non_null();
                Ok(())
            }
            Column::Number(n) => n.value(cursor),
            Column::Struct(s) => {
                if cursor.peek() != Some(b'{') {
                    return Err(GiveUp);
                }
                s.object(cursor)
            }
            Column::List(l) => l.value(cursor),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Utf8(c) => c.finish(),
            Column::Boolean { values, nulls } => {
                Arc::new(BooleanArray::new(values.finish(), nulls.finish()))
            }
            Column::Number(n) => n.finish(),
            Column::Struct(s) => Arc::new(s.finish()),
            Column::List(l) => l.finish(),
        }
    }
}

#[derive(Debug)]
struct Utf8Column {
    offsets: Vec<i32>,
    data: Vec<u8>,
    nulls: NullBufferBuilder,
    /// Bytes and rows of the previous batch, to size the next one's buffer.
    data_hint: (usize, usize),
}

impl Default for Utf8Column {
    fn default() -> Self {
        Utf8Column {
            offsets: vec![0],
            data: Vec::new(),
            nulls: NullBufferBuilder::new(0),
            data_hint: (0, 0),
        }
    }
}

impl Utf8Column {
    fn prepare(&mut self, rows: usize) {
        self.offsets.truncate(1);
        self.offsets.reserve(rows);
        self.data.clear();
        self.data.reserve(scaled(self.data_hint, rows));
        self.nulls = NullBufferBuilder::new(rows);
    }

    fn append_null(&mut self) {
        self.offsets.push(self.data.len() as i32);
        self.nulls.append_null();
    }

    fn value(&mut self, cursor: &mut Cursor<'_>) -> Step {
        cursor.string_into(&mut self.data)?;
        self.offsets
            .push(i32::try_from(self.data.len()).map_err(|_| GiveUp)?);
        self.nulls.append_non_null();
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        self.data_hint = (self.data.len(), self.offsets.len() - 1);
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let data = Buffer::from_vec(std::mem::take(&mut self.data));
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        // SAFETY: every record was checked to be UTF-8 before parsing (`DirectDecoder::record`);
        // `data` holds the bytes between quotes of those records (which start and end on
        // character boundaries, a quote being ASCII) and characters of escapes, encoded by
        // `char::encode_utf8`; offsets only ever grew, from 0, to `data.len()` at a value's end.
        let array = unsafe { StringArray::new_unchecked(offsets, data, self.nulls.finish()) };
        Arc::new(array)
    }
}

#[derive(Debug)]
struct ListColumn {
    item: FieldRef,
    offsets: Vec<i32>,
    child: Box<Column>,
    nulls: NullBufferBuilder,
    /// Items so far (the last offset).
    items: i32,
    /// Items and rows of the previous batch.
    items_hint: (usize, usize),
}

impl ListColumn {
    fn new(item: &FieldRef, strict: bool) -> Option<ListColumn> {
        Some(ListColumn {
            item: item.clone(),
            offsets: vec![0],
            child: Box::new(
                item.is_nullable()
                    .then(|| Column::new(item.data_type(), strict))??,
            ),
            nulls: NullBufferBuilder::new(0),
            items: 0,
            items_hint: (0, 0),
        })
    }

    fn prepare(&mut self, rows: usize) {
        self.offsets.truncate(1);
        self.offsets.reserve(rows);
        self.items = 0;
        self.nulls = NullBufferBuilder::new(rows);
        self.child.prepare(scaled(self.items_hint, rows));
    }

    fn append_null(&mut self) {
        self.offsets.push(self.items);
        self.nulls.append_null();
    }

    /// A JSON array (the `[` next).
    fn value(&mut self, cursor: &mut Cursor<'_>) -> Step {
        cursor.expect(b'[')?;
        cursor.skip_whitespace();
        if cursor.peek() == Some(b']') {
            cursor.pos += 1;
        } else {
            loop {
                self.child.value(cursor)?;
                self.items = self.items.checked_add(1).ok_or(GiveUp)?;
                if cursor.separator(b']')? {
                    break;
                }
            }
        }
        self.offsets.push(self.items);
        self.nulls.append_non_null();
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        self.items_hint = (self.items as usize, self.offsets.len() - 1);
        self.items = 0;
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        let values = self.child.finish();
        Arc::new(ListArray::new(
            self.item.clone(),
            offsets,
            values,
            self.nulls.finish(),
        ))
    }
}

/// A fixed-width column, built into the column's type at the end.
#[derive(Debug)]
struct NumberColumn {
    data_type: DataType,
    values: Values,
    /// For Timestamp columns: the unit and the zone strings are read in.
    timestamp: Option<(TimeUnit, Tz)>,
    nulls: NullBufferBuilder,
}

/// `$body` with `$v` bound to the typed `Vec` of `$values`, whichever type it holds.
macro_rules! with_values {
    ($values:expr, $v:ident => $body:expr) => {
        match $values {
            Values::Int32($v) => $body,
            Values::Int64($v) => $body,
            Values::Float32($v) => $body,
            Values::Float64($v) => $body,
        }
    };
}

/// Values in Arrow's native types (a typed `Vec` keeps the buffer aligned).
#[derive(Debug)]
enum Values {
    Int32(Vec<i32>),
    /// Int64 and Timestamp.
    Int64(Vec<i64>),
    Float32(Vec<f32>),
    Float64(Vec<f64>),
}

impl NumberColumn {
    fn new(data_type: &DataType) -> Option<NumberColumn> {
        let mut timestamp = None;
        let values = match data_type {
            DataType::Int32 => Values::Int32(Vec::new()),
            DataType::Int64 => Values::Int64(Vec::new()),
            DataType::Float32 => Values::Float32(Vec::new()),
            DataType::Float64 => Values::Float64(Vec::new()),
            DataType::Timestamp(unit, zone) => {
                // arrow-json reads zone-less timestamps as UTC.
                let zone = zone.as_deref().unwrap_or("+00:00");
                timestamp = Some((*unit, zone.parse().ok()?));
                Values::Int64(Vec::new())
            }
            _ => return None,
        };
        Some(NumberColumn {
            data_type: data_type.clone(),
            values,
            timestamp,
            nulls: NullBufferBuilder::new(0),
        })
    }

    fn prepare(&mut self, rows: usize) {
        with_values!(&mut self.values, v => {
            v.clear();
            v.reserve(rows);
        });
        self.nulls = NullBufferBuilder::new(rows);
    }

    fn append_null(&mut self) {
        with_values!(&mut self.values, v => v.push(Default::default()));
        self.nulls.append_null();
    }

    fn value(&mut self, cursor: &mut Cursor<'_>) -> Step {
        match (&mut self.values, &self.timestamp) {
            (Values::Int64(v), Some((unit, zone))) if cursor.peek() == Some(b'"') => {
                v.push(timestamp(cursor.plain_string()?, *unit, zone)?);
            }
            (values, _) => {
                let (text, integer) = cursor.number()?;
                match values {
                    Values::Float64(v) => v.push(float64(text)?),
                    Values::Float32(v) => v.push(text.parse().map_err(|_| GiveUp)?),
                    _ if !integer => return Err(GiveUp),
                    Values::Int32(v) => v.push(integer_value(text)?),
                    Values::Int64(v) => v.push(integer_value(text)?),
                }
            }
        }
        self.nulls.append_non_null();
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        let (len, values) =
            with_values!(&mut self.values, v => (v.len(), Buffer::from_vec(std::mem::take(v))));
        let data = ArrayData::builder(self.data_type.clone())
            .len(len)
            .add_buffer(values)
            .nulls(self.nulls.finish())
            .build()
            .expect("an aligned buffer of one value per row");
        make_array(data)
    }
}

/// A struct column (also the record itself): its fields' builders and how to find them by name.
#[derive(Debug)]
pub(super) struct StructColumn {
    fields: Fields,
    /// The fields' names, kept beside `fields` for the lookup every member makes.
    names: Vec<Box<[u8]>>,
    /// Each name between quotes and the colon after it (`"name":`), as a compact member starts
    /// when the name has no escape: empty for a name JSON would have to escape (it is then
    /// always found by [`StructColumn::field`]).
    member_starts: Vec<Box<[u8]>>,
    children: Vec<Column>,
    strict: bool,
    /// Which fields the object being parsed has set so far.
    seen: Vec<bool>,
    nulls: NullBufferBuilder,
    /// The field after the one last matched: names usually come in the same order.
    guess: usize,
}

impl StructColumn {
    /// `strict`: a field the schema lacks gives up (arrow-json's strict mode) instead of being
    /// skipped.
    pub(super) fn new(fields: &Fields, strict: bool) -> Option<StructColumn> {
        if fields.is_empty() {
            return None;
        }
        let children = fields
            .iter()
            .map(|f| {
                f.is_nullable()
                    .then(|| Column::new(f.data_type(), strict))
                    .flatten()
            })
            .collect::<Option<Vec<_>>>()?;
        Some(StructColumn {
            names: fields.iter().map(|f| f.name().as_bytes().into()).collect(),
            member_starts: fields.iter().map(|f| member_start(f.name())).collect(),
            fields: fields.clone(),
            seen: vec![false; children.len()],
            strict,
            children,
            nulls: NullBufferBuilder::new(0),
            guess: 0,
        })
    }

    /// Starts a buffer of `rows` rows (see [`Column::prepare`]).
    pub(super) fn prepare(&mut self, rows: usize) {
        self.nulls = NullBufferBuilder::new(rows);
        self.guess = 0;
        for child in &mut self.children {
            child.prepare(rows);
        }
    }

    /// The field after the one last matched (names usually come in the same order).
    fn guessed(&self) -> usize {
        if self.guess < self.names.len() {
            self.guess
        } else {
            0
        }
    }

    /// The guessed field, its `"name":` consumed, if that comes next: a member name is matched
    /// without scanning it for its end.
    fn guessed_next(&mut self, cursor: &mut Cursor<'_>) -> Option<usize> {
        let guess = self.guessed();
        let start = &self.member_starts[guess];
        if start.is_empty() || !cursor.skip_if_next(start) {
            return None;
        }
        self.guess = guess + 1;
        Some(guess)
    }

    fn field(&mut self, name: &[u8]) -> Option<usize> {
        let guess = self.guessed();
        let index = if same_bytes(&self.names[guess], name) {
            guess
        } else {
            self.names
                .iter()
                .position(|known| same_bytes(known, name))?
        };
        self.guess = index + 1;
        Some(index)
    }

    fn append_null(&mut self) {
        for child in &mut self.children {
            child.append_null();
        }
        self.nulls.append_null();
    }

    /// Parses an object (the `{` next) as one row.
    pub(super) fn object(&mut self, cursor: &mut Cursor<'_>) -> Step {
        cursor.pos += 1;
        self.seen.fill(false);
        cursor.skip_whitespace();
        let set = if cursor.peek() == Some(b'}') {
            cursor.pos += 1;
            0
        } else {
            self.members(cursor)?
        };
        if set < self.children.len() {
            for (child, seen) in self.children.iter_mut().zip(&self.seen) {
                if !*seen {
                    child.append_null();
                }
            }
        }
        self.nulls.append_non_null();
        Ok(())
    }

    /// Parses the members up to the closing `}`; returns how many fields they set.
    fn members(&mut self, cursor: &mut Cursor<'_>) -> Step<usize> {
        let mut set = 0;
        loop {
            let field = match self.guessed_next(cursor) {
                Some(i) => Some(i),
                None => {
                    let name = cursor.plain_string()?.as_bytes();
                    let field = self.field(name);
                    cursor.skip_whitespace();
                    cursor.expect(b':')?;
                    field
                }
            };
            cursor.skip_whitespace();
            match field {
                Some(i) => {
                    if std::mem::replace(&mut self.seen[i], true) {
                        return Err(GiveUp); // a duplicate name
                    }
                    set += 1;
                    self.children[i].value(cursor)?;
                }
                None if self.strict => return Err(GiveUp),
                None => cursor.skip_value(0)?,
            }
            if cursor.separator(b'}')? {
                return Ok(set);
            }
        }
    }

    pub(super) fn finish_children(&mut self) -> Vec<ArrayRef> {
        self.children.iter_mut().map(Column::finish).collect()
    }

    fn finish(&mut self) -> StructArray {
        let nulls = self.nulls.finish();
        let children = self.finish_children();
        StructArray::new(self.fields.clone(), children, nulls)
    }
}

/// Room for `rows` rows by the previous batch's `(amount, rows)`, an eighth more for slack
/// (batches differ in size: a total alone would leave a bigger batch growing its buffer).
fn scaled((amount, previous_rows): (usize, usize), rows: usize) -> usize {
    let per_row = amount.div_ceil(previous_rows.max(1));
    let room = per_row.saturating_mul(rows);
    room.saturating_add(room / 8)
}

/// `"name":` as a compact JSON member starts when no character of the name needs an escape (no
/// quote, backslash or control character); else empty.
fn member_start(name: &str) -> Box<[u8]> {
    if name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return Box::default();
    }
    [b"\"", name.as_bytes(), b"\":"].concat().into()
}
