//! [`CsvFileWriter`]: CSV encoded by arrow-csv: optional header line, delimiter, quote
//! character, quote style (quote only fields that need it, or every field), `\n` line ends.
//!
//! Nested columns (struct, list, map, union) are refused when the writer is created, with a
//! [`FormatError::Unsupported`] naming the column: flatten them (or pick JSON lines/Avro/Parquet)
//! rather than getting a cell format no CSV reader understands. Nulls are empty fields.
//! Encodings are arrow's display formats: timestamps RFC 3339 (`2024-01-01T00:00:00Z` for UTC),
//! dates `YYYY-MM-DD`, decimals with their scale, binary lowercase hex.

use arrow::csv::{QuoteStyle, WriterBuilder};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;

use super::{FileWriter, FormatError};

/// Which fields are quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvQuoteStyle {
    /// Only fields containing the delimiter, the quote, or a line break (the default).
    #[default]
    Necessary,
    /// Every field.
    Always,
}

/// CSV output settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// Write a header line with the column names.
    pub header: bool,
    pub delimiter: u8,
    pub quote: u8,
    pub quote_style: CsvQuoteStyle,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            header: true,
            delimiter: b',',
            quote: b'"',
            quote_style: CsvQuoteStyle::Necessary,
        }
    }
}

/// One CSV file being written into memory.
#[derive(Debug)]
pub struct CsvFileWriter {
    options: CsvOptions,
    schema: SchemaRef,
    buf: Vec<u8>,
    header_written: bool,
    rows: usize,
}

impl CsvFileWriter {
    /// A writer for batches of `schema`; fails on nested columns and invalid options.
    pub fn new(schema: SchemaRef, options: CsvOptions) -> Result<Self, FormatError> {
        let unsupported = |message: String| FormatError::Unsupported {
            format: "csv",
            message,
        };
        for field in schema.fields() {
            if is_nested(field.data_type()) {
                return Err(unsupported(format!(
                    "column '{}' has nested type {}; CSV cells hold scalars only",
                    field.name(),
                    field.data_type()
                )));
            }
        }
        let forbidden = [b'\n', b'\r'];
        if options.delimiter == options.quote
            || forbidden.contains(&options.delimiter)
            || forbidden.contains(&options.quote)
        {
            return Err(unsupported(format!(
                "delimiter {:?} and quote {:?} must differ and not be line breaks",
                options.delimiter as char, options.quote as char
            )));
        }
        Ok(CsvFileWriter {
            options,
            schema,
            buf: Vec::with_capacity(64 * 1024),
            header_written: false,
            rows: 0,
        })
    }

    fn write_rows(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        let header = self.options.header && !self.header_written;
        let quote_style = match self.options.quote_style {
            CsvQuoteStyle::Necessary => QuoteStyle::Necessary,
            CsvQuoteStyle::Always => QuoteStyle::Always,
        };
        let mut writer = WriterBuilder::new()
            .with_header(header)
            .with_delimiter(self.options.delimiter)
            .with_quote(self.options.quote)
            .with_quote_style(quote_style)
            .build(&mut self.buf);
        writer.write(batch).map_err(|source| FormatError::Arrow {
            format: "csv",
            source,
        })?;
        self.header_written = true;
        Ok(())
    }
}

fn is_nested(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, value) => is_nested(value),
        other => other.is_nested(),
    }
}

impl FileWriter for CsvFileWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.write_rows(batch)?;
        self.rows += batch.num_rows();
        Ok(())
    }

    fn estimated_size(&self) -> usize {
        self.buf.len()
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn finish(mut self: Box<Self>) -> Result<Bytes, FormatError> {
        if self.options.header && !self.header_written {
            let empty = RecordBatch::new_empty(self.schema.clone());
            self.write_rows(&empty)?;
        }
        Ok(Bytes::from(self.buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{Field, Fields, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec![
                Some("a;b"),
                None,
                Some("say \"hi\""),
            ])),
        ];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    fn write(options: CsvOptions, batches: &[RecordBatch]) -> String {
        let mut w = Box::new(CsvFileWriter::new(batch().schema(), options).unwrap());
        for b in batches {
            w.write(b).unwrap();
        }
        let size = w.estimated_size();
        let bytes = w.finish().unwrap();
        assert!(bytes.len() >= size);
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn options() {
        let b = batch();
        assert_eq!(
            write(CsvOptions::default(), &[b.clone(), b.clone()]),
            "id,s\n1,a;b\n2,\n3,\"say \"\"hi\"\"\"\n1,a;b\n2,\n3,\"say \"\"hi\"\"\"\n"
        );
        let semi = CsvOptions {
            delimiter: b';',
            quote: b'\'',
            header: false,
            ..CsvOptions::default()
        };
        assert_eq!(
            write(semi, std::slice::from_ref(&b)),
            "1;'a;b'\n2;\n3;say \"hi\"\n"
        );
        let always = CsvOptions {
            quote_style: CsvQuoteStyle::Always,
            ..CsvOptions::default()
        };
        assert!(write(always, &[b]).starts_with("\"id\",\"s\"\n\"1\",\"a;b\"\n"));
        assert_eq!(write(CsvOptions::default(), &[]), "id,s\n");
        let none = CsvOptions {
            header: false,
            ..CsvOptions::default()
        };
        assert_eq!(write(none, &[]), "");
    }

    #[test]
    fn nested_columns_and_bad_options_are_refused() {
        let inner = Fields::from(vec![Field::new("x", DataType::Int64, true)]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("ok", DataType::Int64, true),
            Field::new("addr", DataType::Struct(inner), true),
        ]));
        let e = CsvFileWriter::new(schema, CsvOptions::default()).unwrap_err();
        assert!(e.to_string().contains("column 'addr'"), "{e}");
        let same = CsvOptions {
            quote: b',',
            ..CsvOptions::default()
        };
        assert!(CsvFileWriter::new(batch().schema(), same).is_err());
    }
}
