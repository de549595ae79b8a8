//! [`DirectDecoder`]: a one-pass JSON → Arrow decoder, tried before arrow-json on every buffer
//! (declared and inferred schemas alike).
//!
//! arrow-json reads a buffer twice: it builds a tape of every token (copying each string), then
//! walks the tape once per column, matching field names again for each object. This decoder
//! parses each record once and appends every value straight into its column's builder; field
//! names are matched by guessing that they come in the order of the previous record.
//!
//! ```text
//!   RecordBuffer ──► record ──► parse object ──► Column builders ──► RecordBatch
//!                    (UTF-8       │  key: guess next field,           (checked against the
//!                    checked      │  else look it up                   declared schema)
//!                    once)        └─ anything outside the exact subset ──► GiveUp: the whole
//!                                                                          buffer goes to arrow-json
//! ```
//!
//! Contract: [`DirectDecoder::decode`] returns `Some` only with the batch arrow-json's decoder
//! (as `JsonDecoder` configures it: fields the schema lacks ignored, or an error in strict mode;
//! numbers and booleans coerced into string columns for inferred schemas) gives for the same
//! records. The moment a record holds anything outside the subset decoded here exactly (a number
//! in a string column or a string in a number column, a fraction or exponent for an integer, a
//! duplicate or escaped field name, a lone surrogate in a string,
//! invalid JSON, data after the object, a value that is not an object), it gives up on the whole
//! buffer (`None`) and the caller decodes it with arrow-json, which decides the fate of every
//! record (decoded, or rejected with arrow-json's message). The output therefore never depends
//! on which path ran; `json_direct_tests` compares both on valid and broken records.
//!
//! Types: Utf8, Boolean, Int32, Int64, Float32, Float64, Timestamp (any unit, with or without a
//! zone), Struct and List of these, every field nullable. [`DirectDecoder::new`] returns `None`
//! for any other schema, which then uses arrow-json alone.
//!
//! Modules: `cursor` (the JSON grammar: strings, numbers, member names compared in place),
//! `columns` (a builder per field, objects matched to fields), `scalars` (integers, floats and
//! timestamp strings read as arrow-json reads them, common forms by fast paths).

mod columns;
mod cursor;
mod scalars;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::{Decoded, RecordBuffer, RecordError};
use columns::StructColumn;
use cursor::Cursor;

/// A record outside the subset decoded here: the buffer goes to arrow-json.
#[derive(Debug)]
pub struct GiveUp;

type Step<T = ()> = Result<T, GiveUp>;

/// Decodes JSON objects into a declared schema in one pass (see the module doc).
#[derive(Debug)]
pub struct DirectDecoder {
    schema: SchemaRef,
    root: StructColumn,
}

impl DirectDecoder {
    /// A decoder for `schema`, `None` when a type or a non-nullable field is outside the subset.
    /// `strict`: as arrow-json's strict mode, a field the schema lacks (at any depth) is an error
    /// there, so the buffer is given up on; otherwise such fields are checked and skipped.
    pub fn new(schema: &SchemaRef, strict: bool) -> Option<Self> {
        Some(DirectDecoder {
            schema: schema.clone(),
            root: StructColumn::new(schema.fields(), strict)?,
        })
    }

    /// Every record of `buffer` decoded, or `None` (nothing decoded: use arrow-json). Records
    /// `value_of` refuses (tombstones, empty values) are rejected with its cause.
    pub fn decode(
        &mut self,
        buffer: &RecordBuffer,
        value_of: impl Fn(&RecordBuffer, usize) -> Result<&[u8], RecordError>,
    ) -> Option<Decoded> {
        let mut rejected = Vec::new();
        let mut rows = 0;
        self.root.prepare(buffer.len());
        for i in 0..buffer.len() {
            match value_of(buffer, i) {
                Err(e) => rejected.push((i, e)),
                Ok(value) => {
                    if self.record(value).is_err() {
                        // What it wrote is dropped when the next buffer starts (`prepare`).
                        return None;
                    }
                    rows += 1;
                }
            }
        }
        let columns = self.root.finish_children();
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
        let batch = RecordBatch::try_new_with_options(self.schema.clone(), columns, &options);
        batch.ok().map(|batch| Decoded { batch, rejected })
    }

    fn record(&mut self, value: &[u8]) -> Step {
        let text = std::str::from_utf8(value).map_err(|_| GiveUp)?;
        let mut cursor = Cursor::new(text);
        cursor.skip_whitespace();
        if cursor.peek() != Some(b'{') {
            return Err(GiveUp);
        }
        self.root.object(&mut cursor)?;
        cursor.skip_whitespace();
        if !cursor.at_end() {
            return Err(GiveUp);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
