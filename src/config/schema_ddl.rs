//! The `value.schema` DDL: a Hive/Spark-like column list turned into an Arrow schema, e.g.
//!
//! ```text
//! id BIGINT NOT NULL, user STRING, tags ARRAY<STRING>, geo STRUCT<lat: DOUBLE, lon DOUBLE>,
//! ts TIMESTAMP, amount DECIMAL(10,2), attrs MAP<STRING, INT>
//! ```
//!
//! Type names are case-insensitive: BOOLEAN; TINYINT/INT8, SMALLINT/INT16, INT/INTEGER/INT32,
//! BIGINT/LONG/INT64; FLOAT/REAL, DOUBLE; STRING/VARCHAR/TEXT (a `(n)` length is accepted and
//! ignored); BINARY/BYTES; DATE; TIMESTAMP (milliseconds, UTC); TIMESTAMP_NTZ (milliseconds, no
//! time zone); `DECIMAL(p,s)` (Decimal128; `DECIMAL` = (10,0), `DECIMAL(p)` = (p,0));
//! `ARRAY<T>`; `STRUCT<name[:] T, ...>`; `MAP<STRING, T>`. Columns and struct fields are nullable unless followed by
//! `NOT NULL`; names may be backquoted (`` `my col` ``, a doubled backquote stands for one).
//! Errors name the 1-based column of the offending token.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};

/// Parses a column list into an Arrow schema. The error says what was expected, what was found
/// and where.
pub fn parse_schema(ddl: &str) -> Result<Schema, String> {
    let tokens = tokenize(ddl)?;
    let mut parser = Parser { tokens, pos: 0 };
    let fields = parser.field_list(None)?;
    if fields.is_empty() {
        return Err(
            "value.schema declares no columns (expected e.g. `id BIGINT, name STRING`)".into(),
        );
    }
    Ok(Schema::new(fields))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A bare word (name, type or keyword).
    Word(String),
    /// A backquoted name.
    Quoted(String),
    Number(u64),
    Punct(char),
    End,
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "'{w}'"),
            Tok::Quoted(w) => write!(f, "`{w}`"),
            Tok::Number(n) => write!(f, "'{n}'"),
            Tok::Punct(c) => write!(f, "'{c}'"),
            Tok::End => f.write_str("the end of the schema"),
        }
    }
}

/// Tokens with their 1-based character column.
fn tokenize(ddl: &str) -> Result<Vec<(Tok, usize)>, String> {
    let chars: Vec<char> = ddl.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == '`' {
            let mut name = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(format!(
                            "unterminated backquoted name starting at column {col}"
                        ))
                    }
                    Some('`') if chars.get(i + 1) == Some(&'`') => {
                        name.push('`');
                        i += 2;
                    }
                    Some('`') => {
                        i += 1;
                        break;
                    }
                    Some(other) => {
                        name.push(*other);
                        i += 1;
                    }
                }
            }
            out.push((Tok::Quoted(name), col));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let n = text
                .parse()
                .map_err(|_| format!("number {text} at column {col} is too large"))?;
            out.push((Tok::Number(n), col));
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Word(chars[start..i].iter().collect()), col));
        } else if "<>(),:".contains(c) {
            out.push((Tok::Punct(c), col));
            i += 1;
        } else {
            return Err(format!(
                "unexpected character '{c}' at column {col} (names with special characters need `backquotes`)"
            ));
        }
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).map_or(&Tok::End, |(t, _)| t)
    }

    fn col(&self) -> usize {
        self.tokens.get(self.pos).map_or(0, |(_, c)| *c)
    }

    fn error(&self, expected: &str) -> String {
        format!(
            "expected {expected} at column {}, found {}",
            self.col(),
            self.peek()
        )
    }

    fn eat_punct(&mut self, c: char) -> bool {
        if *self.peek() == Tok::Punct(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, c: char, context: &str) -> Result<(), String> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            Err(self.error(&format!("'{c}' {context}")))
        }
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        match self.peek() {
            Tok::Word(w) if w.eq_ignore_ascii_case(kw) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    /// `name [:] type [NOT NULL], ...` until the end (`close` = None) or the closing `>` of a
    /// STRUCT, which is not consumed.
    fn field_list(&mut self, close: Option<char>) -> Result<Vec<Field>, String> {
        let mut fields: Vec<Field> = Vec::new();
        loop {
            let col = self.col();
            let name = match self.peek().clone() {
                Tok::Word(w) | Tok::Quoted(w) => {
                    self.pos += 1;
                    w
                }
                Tok::End if fields.is_empty() && close.is_none() => return Ok(fields),
                _ => return Err(self.error("a column name")),
            };
            if name.is_empty() {
                return Err(format!("empty column name at column {col}"));
            }
            if fields.iter().any(|f| f.name() == &name) {
                return Err(format!("column '{name}' at column {col} is declared twice"));
            }
            self.eat_punct(':');
            let data_type = self.data_type()?;
            let nullable = if self.eat_keyword("NOT") {
                if !self.eat_keyword("NULL") {
                    return Err(self.error("NULL after NOT"));
                }
                false
            } else {
                true
            };
            fields.push(Field::new(name, data_type, nullable));
            if self.eat_punct(',') {
                continue;
            }
            return match (self.peek(), close) {
                (Tok::End, None) => Ok(fields),
                (Tok::Punct(c), Some(want)) if *c == want => Ok(fields),
                (_, None) => Err(self.error("',' or the end of the schema")),
                (_, Some(want)) => Err(self.error(&format!("',' or '{want}'"))),
            };
        }
    }

    fn data_type(&mut self) -> Result<DataType, String> {
        let col = self.col();
        let word = match self.peek().clone() {
            Tok::Word(w) => {
                self.pos += 1;
                w
            }
            _ => return Err(self.error("a type (e.g. STRING, BIGINT, DOUBLE, ARRAY<...>)")),
        };
        let upper = word.to_ascii_uppercase();
        let t = match upper.as_str() {
            "BOOLEAN" | "BOOL" => DataType::Boolean,
            "TINYINT" | "INT8" | "BYTE" => DataType::Int8,
            "SMALLINT" | "INT16" | "SHORT" => DataType::Int16,
            "INT" | "INTEGER" | "INT32" => DataType::Int32,
            "BIGINT" | "LONG" | "INT64" => DataType::Int64,
            "FLOAT" | "REAL" | "FLOAT32" => DataType::Float32,
            "DOUBLE" | "FLOAT64" => DataType::Float64,
            "STRING" | "VARCHAR" | "TEXT" | "CHAR" => {
                if self.eat_punct('(') {
                    self.number("a length")?;
                    self.expect_punct(')', "closing the length")?;
                }
                DataType::Utf8
            }
            "BINARY" | "BYTES" => DataType::Binary,
            "DATE" => DataType::Date32,
            "TIMESTAMP" => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            "TIMESTAMP_NTZ" => DataType::Timestamp(TimeUnit::Millisecond, None),
            "DECIMAL" | "NUMERIC" => self.decimal(col)?,
            "ARRAY" => {
                self.expect_punct('<', "after ARRAY")?;
                let item = self.data_type()?;
                self.expect_punct('>', "closing ARRAY<")?;
                DataType::List(Arc::new(Field::new_list_field(item, true)))
            }
            "STRUCT" => {
                self.expect_punct('<', "after STRUCT")?;
                let fields = self.field_list(Some('>'))?;
                self.expect_punct('>', "closing STRUCT<")?;
                DataType::Struct(Fields::from(fields))
            }
            "MAP" => {
                self.expect_punct('<', "after MAP")?;
                let key_col = self.col();
                let key = self.data_type()?;
                if key != DataType::Utf8 {
                    return Err(format!(
                        "MAP keys must be STRING (column {key_col}), found {key}"
                    ));
                }
                self.expect_punct(',', "between the MAP key and value types")?;
                let value = self.data_type()?;
                self.expect_punct('>', "closing MAP<")?;
                let entries = Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("keys", DataType::Utf8, false),
                        Field::new("values", value, true),
                    ])),
                    false,
                );
                DataType::Map(Arc::new(entries), false)
            }
            _ => {
                return Err(format!(
                "unknown type '{word}' at column {col} (allowed: BOOLEAN, TINYINT, SMALLINT, INT, \
                     BIGINT, FLOAT, DOUBLE, STRING, BINARY, DATE, TIMESTAMP, TIMESTAMP_NTZ, \
                     DECIMAL(p,s), ARRAY<T>, STRUCT<name T, ...>, MAP<STRING, T>)"
            ))
            }
        };
        Ok(t)
    }

    fn number(&mut self, what: &str) -> Result<u64, String> {
        match self.peek() {
            Tok::Number(n) => {
                let n = *n;
                self.pos += 1;
                Ok(n)
            }
            _ => Err(self.error(what)),
        }
    }

    /// `DECIMAL`, `DECIMAL(p)` or `DECIMAL(p, s)` with 1 <= p <= 38 and s <= p.
    fn decimal(&mut self, col: usize) -> Result<DataType, String> {
        let (precision, scale) = if self.eat_punct('(') {
            let p = self.number("a DECIMAL precision")?;
            let s = if self.eat_punct(',') {
                self.number("a DECIMAL scale")?
            } else {
                0
            };
            self.expect_punct(')', "closing DECIMAL(")?;
            (p, s)
        } else {
            (10, 0)
        };
        if !(1..=38).contains(&precision) || scale > precision {
            return Err(format!(
                "DECIMAL({precision},{scale}) at column {col} is out of range \
                 (precision 1..=38, scale 0..=precision)"
            ));
        }
        // Both fit: precision <= 38 and scale <= precision.
        Ok(DataType::Decimal128(precision as u8, scale as i8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(ddl: &str) -> Field {
        let schema = parse_schema(&format!("c {ddl}")).expect(ddl);
        assert_eq!(schema.fields().len(), 1);
        schema.field(0).clone()
    }

    fn ty(ddl: &str) -> DataType {
        one(ddl).data_type().clone()
    }

    fn err(ddl: &str) -> String {
        parse_schema(ddl).expect_err(ddl)
    }

    #[test]
    fn primitive_types_and_synonyms() {
        for (names, want) in [
            (&["BOOLEAN", "bool"][..], DataType::Boolean),
            (&["TINYINT", "int8"], DataType::Int8),
            (&["SMALLINT", "Int16"], DataType::Int16),
            (&["INT", "integer", "INT32"], DataType::Int32),
            (&["BIGINT", "long", "int64"], DataType::Int64),
            (&["FLOAT", "real"], DataType::Float32),
            (&["DOUBLE", "double"], DataType::Float64),
            (
                &["STRING", "varchar", "TEXT", "VARCHAR(255)"],
                DataType::Utf8,
            ),
            (&["BINARY", "bytes"], DataType::Binary),
            (&["DATE"], DataType::Date32),
            (
                &["TIMESTAMP_NTZ"],
                DataType::Timestamp(TimeUnit::Millisecond, None),
            ),
        ] {
            for name in names {
                assert_eq!(ty(name), want, "{name}");
            }
        }
        assert_eq!(
            ty("timestamp"),
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
    }

    #[test]
    fn decimals() {
        assert_eq!(ty("DECIMAL(10,2)"), DataType::Decimal128(10, 2));
        assert_eq!(ty("decimal( 38 , 0 )"), DataType::Decimal128(38, 0));
        assert_eq!(ty("DECIMAL(5)"), DataType::Decimal128(5, 0));
        assert_eq!(ty("DECIMAL"), DataType::Decimal128(10, 0));
        assert!(err("c DECIMAL(39,2)").contains("out of range"));
        assert!(err("c DECIMAL(2,3)").contains("out of range"));
        assert!(err("c DECIMAL(0)").contains("out of range"));
        assert!(err("c DECIMAL(10,)").contains("expected a DECIMAL scale"));
    }

    #[test]
    fn nullability() {
        assert!(one("STRING").is_nullable());
        assert!(!one("STRING NOT NULL").is_nullable());
        assert!(!one("bigint not null").is_nullable());
        assert!(err("c INT NOT").contains("expected NULL after NOT"));
    }

    #[test]
    fn arrays() {
        let DataType::List(item) = ty("ARRAY<STRING>") else {
            panic!("a list")
        };
        assert_eq!(item.data_type(), &DataType::Utf8);
        assert!(item.is_nullable());
        let DataType::List(outer) = ty("array<array<int>>") else {
            panic!("a list")
        };
        assert!(matches!(outer.data_type(), DataType::List(_)));
        assert!(err("c ARRAY<STRING").contains("'>' closing ARRAY<"));
        assert!(err("c ARRAY STRING").contains("'<' after ARRAY"));
    }

    #[test]
    fn structs() {
        let DataType::Struct(fields) =
            ty("STRUCT<lat: DOUBLE, lon DOUBLE NOT NULL, `the name` STRING>")
        else {
            panic!("a struct")
        };
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[0].name(), "lat");
        assert_eq!(fields[0].data_type(), &DataType::Float64);
        assert!(!fields[1].is_nullable());
        assert_eq!(fields[2].name(), "the name");
        let DataType::Struct(nested) = ty("STRUCT<a: STRUCT<b: ARRAY<INT>>>") else {
            panic!()
        };
        assert!(matches!(nested[0].data_type(), DataType::Struct(_)));
        assert!(err("c STRUCT<a INT b INT>").contains("expected ',' or '>'"));
        assert!(err("c STRUCT<>").contains("expected a column name"));
    }

    #[test]
    fn maps() {
        let DataType::Map(entries, sorted) = ty("MAP<STRING, BIGINT>") else {
            panic!("a map")
        };
        assert!(!sorted);
        let DataType::Struct(kv) = entries.data_type() else {
            panic!("entries struct")
        };
        assert_eq!(kv[0].data_type(), &DataType::Utf8);
        assert!(!kv[0].is_nullable());
        assert_eq!(kv[1].data_type(), &DataType::Int64);
        assert!(err("c MAP<INT, STRING>").contains("MAP keys must be STRING"));
        assert!(err("c MAP<STRING>").contains("between the MAP key and value types"));
    }

    #[test]
    fn the_full_example() {
        let s = parse_schema(
            "id BIGINT, user STRING NOT NULL, price DOUBLE, tags ARRAY<STRING>, \
             geo STRUCT<lat: DOUBLE, lon DOUBLE>, ts TIMESTAMP, day DATE, ok BOOLEAN, \
             raw BINARY, amount DECIMAL(10,2)",
        )
        .expect("parses");
        let names: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            ["id", "user", "price", "tags", "geo", "ts", "day", "ok", "raw", "amount"]
        );
        assert!(!s.field(1).is_nullable());
        assert_eq!(s.field(9).data_type(), &DataType::Decimal128(10, 2));
    }

    #[test]
    fn backquoted_names_and_colons() {
        let s = parse_schema("`weird col` INT, `a``b`: STRING, `select` DATE").expect("parses");
        assert_eq!(s.field(0).name(), "weird col");
        assert_eq!(s.field(1).name(), "a`b");
        assert_eq!(s.field(2).name(), "select");
        assert!(err("`open INT").contains("unterminated backquoted name starting at column 1"));
    }

    #[test]
    fn errors_name_the_position_and_token() {
        assert_eq!(
            err("id BIGINT, name STRNG"),
            "unknown type 'STRNG' at column 17 (allowed: BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, \
             FLOAT, DOUBLE, STRING, BINARY, DATE, TIMESTAMP, TIMESTAMP_NTZ, DECIMAL(p,s), ARRAY<T>, \
             STRUCT<name T, ...>, MAP<STRING, T>)"
        );
        assert_eq!(err("id"), "expected a type (e.g. STRING, BIGINT, DOUBLE, ARRAY<...>) at column 3, found the end of the schema");
        assert_eq!(
            err("id INT name STRING"),
            "expected ',' or the end of the schema at column 8, found 'name'"
        );
        assert_eq!(
            err("id INT,"),
            "expected a column name at column 8, found the end of the schema"
        );
        assert_eq!(
            err(", id INT"),
            "expected a column name at column 1, found ','"
        );
        assert!(err("id INT, id STRING").contains("'id' at column 9 is declared twice"));
        assert!(err("id INT; x INT").contains("unexpected character ';' at column 7"));
        assert!(err("").contains("no columns"));
        assert!(err("   ").contains("no columns"));
    }
}
