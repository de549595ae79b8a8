//! Hive column types: the mapping from Arrow [`DataType`]s, a parser for the type strings the
//! metastore returns, and the widening rules schema evolution may apply.
//!
//! | Arrow | Hive |
//! |---|---|
//! | Boolean | boolean |
//! | Int8 / Int16 / Int32 / Int64 | tinyint / smallint / int / bigint |
//! | UInt8 / UInt16 / UInt32 / UInt64 | smallint / int / bigint / decimal(20,0) (next wider signed) |
//! | Float16, Float32 / Float64 | float / double |
//! | Utf8, LargeUtf8, Utf8View | string |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary | binary |
//! | Decimal32/64/128/256(p, s) | decimal(p,s); p > 38 or s < 0 is an error |
//! | Date32, Date64 | date |
//! | Timestamp(any unit, any time zone) | timestamp |
//! | Struct | struct<a:int,b:string> |
//! | List, LargeList, FixedSizeList, ListView, LargeListView | array<..> |
//! | Map | map<k,v> (k must map to a primitive type) |
//! | Dictionary(k, v) | the type of v |
//!
//! Everything else (Null, Time32/64, Duration, Interval, Union, RunEndEncoded) is an error that
//! names the column. Column and struct field names are lower-cased, as Hive stores them.

use std::fmt;

use arrow::datatypes::{DataType, Field, Schema};

use super::model::FieldSchema;
use crate::Origin;

/// Hive's largest decimal precision.
pub const MAX_DECIMAL_PRECISION: u8 = 38;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    #[error("column `{column}`: Arrow type {data_type} has no Hive equivalent{hint}")]
    Unsupported {
        column: String,
        data_type: String,
        hint: &'static str,
    },
    #[error("column `{column}`: decimal({precision},{scale}) does not fit Hive's decimal (precision 1..=38, 0 <= scale <= precision)")]
    Decimal {
        column: String,
        precision: u8,
        scale: i8,
    },
    #[error("column `{column}`: struct field name {name:?} cannot appear in a Hive type (letters, digits, '_' and '$' only)")]
    FieldName { column: String, name: String },
    #[error("column `{column}`: Hive map keys must have a primitive type, not {key_type}")]
    MapKey { column: String, key_type: String },
    #[error("columns {first:?} and {second:?} are the same column to Hive, whose names are case-insensitive")]
    DuplicateColumn { first: String, second: String },
    #[error("cannot parse Hive type {type_string:?}: {reason}")]
    Parse { type_string: String, reason: String },
}

impl TypeError {
    /// Every type error comes from the data's schema or the table's definition.
    pub fn origin(&self) -> Origin {
        Origin::User
    }
}

/// A Hive column type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HiveType {
    /// `boolean`, `tinyint`, `smallint`, `int`, `bigint`, `float`, `double`, `string`, `binary`,
    /// `date`, `timestamp`, or any other primitive read from a metastore (`varchar(10)`, ...).
    Primitive(String),
    Decimal {
        precision: u8,
        scale: u8,
    },
    Array(Box<HiveType>),
    Map(Box<HiveType>, Box<HiveType>),
    Struct(Vec<(String, HiveType)>),
}

impl fmt::Display for HiveType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HiveType::Primitive(name) => f.write_str(name),
            HiveType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            HiveType::Array(t) => write!(f, "array<{t}>"),
            HiveType::Map(k, v) => write!(f, "map<{k},{v}>"),
            HiveType::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, (name, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}:{t}")?;
                }
                f.write_str(">")
            }
        }
    }
}

fn prim(name: &str) -> HiveType {
    HiveType::Primitive(name.to_string())
}

/// Hive's name for a column: lower-cased.
pub fn hive_column_name(name: &str) -> String {
    name.to_lowercase()
}

/// The Hive type string of an Arrow type; `column` names the column in errors.
pub fn hive_type_string(column: &str, data_type: &DataType) -> Result<String, TypeError> {
    hive_type(column, data_type).map(|t| t.to_string())
}

/// The Hive type of an Arrow type; `column` names the column in errors.
pub fn hive_type(column: &str, data_type: &DataType) -> Result<HiveType, TypeError> {
    let unsupported = |hint| TypeError::Unsupported {
        column: column.to_string(),
        data_type: data_type.to_string(),
        hint,
    };
    Ok(match data_type {
        DataType::Boolean => prim("boolean"),
        DataType::Int8 => prim("tinyint"),
        DataType::Int16 | DataType::UInt8 => prim("smallint"),
        DataType::Int32 | DataType::UInt16 => prim("int"),
        DataType::Int64 | DataType::UInt32 => prim("bigint"),
        DataType::UInt64 => HiveType::Decimal {
            precision: 20,
            scale: 0,
        },
        DataType::Float16 | DataType::Float32 => prim("float"),
        DataType::Float64 => prim("double"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => prim("string"),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => prim("binary"),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => decimal(column, *p, *s)?,
        DataType::Date32 | DataType::Date64 => prim("date"),
        DataType::Timestamp(_, _) => prim("timestamp"),
        DataType::Struct(fields) => {
            let mut out = Vec::with_capacity(fields.len());
            for field in fields {
                out.push(struct_field(column, field)?);
            }
            HiveType::Struct(out)
        }
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item)
        | DataType::FixedSizeList(item, _) => HiveType::Array(Box::new(hive_type(
            &format!("{column}.element"),
            item.data_type(),
        )?)),
        DataType::Map(entries, _) => map_type(column, entries)?,
        DataType::Dictionary(_, value) => hive_type(column, value)?,
        DataType::Null => return Err(unsupported(" (a column of only nulls: give it a type)")),
        DataType::Time32(_) | DataType::Time64(_) => {
            return Err(unsupported(
                " (Hive has no time-of-day type: use a string or an integer)",
            ))
        }
        DataType::Duration(_) | DataType::Interval(_) => {
            return Err(unsupported(
                " (Hive cannot store intervals: use an integer)",
            ))
        }
        _ => return Err(unsupported("")),
    })
}

fn decimal(column: &str, precision: u8, scale: i8) -> Result<HiveType, TypeError> {
    match u8::try_from(scale) {
        Ok(s) if (1..=MAX_DECIMAL_PRECISION).contains(&precision) && s <= precision => {
            Ok(HiveType::Decimal {
                precision,
                scale: s,
            })
        }
        _ => Err(TypeError::Decimal {
            column: column.to_string(),
            precision,
            scale,
        }),
    }
}

fn valid_field_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

fn struct_field(column: &str, field: &Field) -> Result<(String, HiveType), TypeError> {
    let name = hive_column_name(field.name());
    if !valid_field_name(&name) {
        return Err(TypeError::FieldName {
            column: column.to_string(),
            name: field.name().clone(),
        });
    }
    let t = hive_type(&format!("{column}.{}", field.name()), field.data_type())?;
    Ok((name, t))
}

fn map_type(column: &str, entries: &Field) -> Result<HiveType, TypeError> {
    let DataType::Struct(kv) = entries.data_type() else {
        return Err(TypeError::Unsupported {
            column: column.to_string(),
            data_type: entries.data_type().to_string(),
            hint: " (a map's entries must be a struct of key and value)",
        });
    };
    let (Some(k), Some(v), 2) = (kv.first(), kv.get(1), kv.len()) else {
        return Err(TypeError::Unsupported {
            column: column.to_string(),
            data_type: entries.data_type().to_string(),
            hint: " (a map's entries must be a struct of key and value)",
        });
    };
    let key = hive_type(&format!("{column}.key"), k.data_type())?;
    if !matches!(key, HiveType::Primitive(_) | HiveType::Decimal { .. }) {
        return Err(TypeError::MapKey {
            column: column.to_string(),
            key_type: key.to_string(),
        });
    }
    let value = hive_type(&format!("{column}.value"), v.data_type())?;
    Ok(HiveType::Map(Box::new(key), Box::new(value)))
}

/// The Hive columns of an Arrow schema, names lower-cased, in schema order.
pub fn hive_columns(schema: &Schema) -> Result<Vec<FieldSchema>, TypeError> {
    let mut out: Vec<FieldSchema> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let name = hive_column_name(field.name());
        if let Some(first) = schema
            .fields()
            .iter()
            .take_while(|f| !std::ptr::eq(f.as_ref(), field.as_ref()))
            .find(|f| hive_column_name(f.name()) == name)
        {
            return Err(TypeError::DuplicateColumn {
                first: first.name().clone(),
                second: field.name().clone(),
            });
        }
        let type_name = hive_type_string(field.name(), field.data_type())?;
        out.push(FieldSchema::new(name, type_name));
    }
    Ok(out)
}

// ----------------------------------------------------------------------------------------------
// Parsing type strings from the metastore
// ----------------------------------------------------------------------------------------------

impl HiveType {
    /// Parses a Hive type string such as `map<string,array<struct<a:int,b:decimal(10,2)>>>`.
    pub fn parse(type_string: &str) -> Result<HiveType, TypeError> {
        let mut p = Parser {
            src: type_string,
            pos: 0,
        };
        let t = p.parse_type()?;
        p.skip_ws();
        if p.pos != p.src.len() {
            return Err(p.error("trailing characters"));
        }
        Ok(t)
    }

    /// The type a column must have to hold both its old data (`self`) and new data (`new`), if
    /// Hive readers can read the old files with it: equal types; integer widening
    /// (tinyint < smallint < int < bigint); float < double; decimals of the same scale (the
    /// larger precision); structs merged field by field (fields only in `new` appended, fields
    /// only in `self` kept); arrays and map values merged element-wise. None otherwise.
    pub fn merge(&self, new: &HiveType) -> Option<HiveType> {
        use HiveType::*;
        match (self, new) {
            _ if self == new => Some(self.clone()),
            (Primitive(a), Primitive(b)) => {
                let ((fa, ra), (fb, rb)) = (numeric_rank(a)?, numeric_rank(b)?);
                if fa != fb {
                    return None;
                }
                Some(if ra >= rb { self.clone() } else { new.clone() })
            }
            (
                Decimal {
                    precision: pa,
                    scale: sa,
                },
                Decimal {
                    precision: pb,
                    scale: sb,
                },
            ) if sa == sb => Some(Decimal {
                precision: (*pa).max(*pb),
                scale: *sa,
            }),
            (Array(a), Array(b)) => Some(Array(Box::new(a.merge(b)?))),
            (Map(ka, va), Map(kb, vb)) if ka == kb => {
                Some(Map(ka.clone(), Box::new(va.merge(vb)?)))
            }
            (Struct(a), Struct(b)) => {
                let mut out = Vec::with_capacity(a.len());
                for (name, t) in a {
                    match b.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                        Some((_, tb)) => out.push((name.clone(), t.merge(tb)?)),
                        None => out.push((name.clone(), t.clone())),
                    }
                }
                for (name, t) in b {
                    if !a.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                        out.push((name.clone(), t.clone()));
                    }
                }
                Some(Struct(out))
            }
            _ => None,
        }
    }
}

/// (family, rank) of the numeric types that widen within their family: integers and floating
/// point never mix.
fn numeric_rank(name: &str) -> Option<(u8, u8)> {
    match name {
        "tinyint" => Some((0, 1)),
        "smallint" => Some((0, 2)),
        "int" | "integer" => Some((0, 3)),
        "bigint" => Some((0, 4)),
        "float" => Some((1, 1)),
        "double" => Some((1, 2)),
        _ => None,
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, reason: &str) -> TypeError {
        TypeError::Parse {
            type_string: self.src.to_string(),
            reason: format!("{reason} at offset {}", self.pos),
        }
    }

    fn skip_ws(&mut self) {
        let rest = &self.src[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.src[self.pos..].starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), TypeError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    fn ident(&mut self) -> Result<&str, TypeError> {
        self.skip_ws();
        let rest = &self.src[self.pos..];
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$' || c == '.'))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(self.error("expected a name"));
        }
        self.pos += len;
        Ok(&rest[..len])
    }

    fn number(&mut self) -> Result<u32, TypeError> {
        let s = self.ident()?.to_string();
        s.parse()
            .map_err(|_| self.error(&format!("expected a number, found {s:?}")))
    }

    fn parse_type(&mut self) -> Result<HiveType, TypeError> {
        let name = self.ident()?.to_lowercase();
        Ok(match name.as_str() {
            "array" => {
                self.expect('<')?;
                let t = self.parse_type()?;
                self.expect('>')?;
                HiveType::Array(Box::new(t))
            }
            "map" => {
                self.expect('<')?;
                let k = self.parse_type()?;
                self.expect(',')?;
                let v = self.parse_type()?;
                self.expect('>')?;
                HiveType::Map(Box::new(k), Box::new(v))
            }
            "struct" => {
                self.expect('<')?;
                let mut fields = Vec::new();
                if !self.eat('>') {
                    loop {
                        let field = self.ident()?.to_lowercase();
                        self.expect(':')?;
                        fields.push((field, self.parse_type()?));
                        if self.eat('>') {
                            break;
                        }
                        self.expect(',')?;
                    }
                }
                HiveType::Struct(fields)
            }
            "decimal" | "numeric" => {
                // Hive's default for a bare `decimal` is decimal(10,0).
                let (mut precision, mut scale) = (10, 0);
                if self.eat('(') {
                    precision = self.number()?;
                    if self.eat(',') {
                        scale = self.number()?;
                    }
                    self.expect(')')?;
                }
                let (Ok(precision), Ok(scale)) = (u8::try_from(precision), u8::try_from(scale))
                else {
                    return Err(self.error("decimal precision or scale out of range"));
                };
                HiveType::Decimal { precision, scale }
            }
            "integer" => prim("int"),
            _ => {
                // varchar(10), char(5): kept verbatim.
                if self.eat('(') {
                    let n = self.number()?;
                    self.expect(')')?;
                    HiveType::Primitive(format!("{name}({n})"))
                } else {
                    HiveType::Primitive(name)
                }
            }
        })
    }
}

#[cfg(test)]
#[path = "types_tests.rs"]
mod tests;
