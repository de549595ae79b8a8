//! Kafka Connect schemas (as `JsonConverter` writes them in envelopes) mapped to Arrow, and the
//! conversions from what arrow-json decodes to the final Arrow types.
//!
//! | Connect                                   | Arrow output               | decoded by arrow-json as |
//! |-------------------------------------------|----------------------------|--------------------------|
//! | int8, int16, int32, int64                 | Int8, Int16, Int32, Int64  | same                     |
//! | float32, float64, boolean, string         | Float32, Float64, Boolean, Utf8 | same                |
//! | bytes                                     | Binary                     | Utf8 (base64), decoded   |
//! | bytes `org.apache.kafka.connect.data.Decimal` | Decimal128(p, scale)   | Utf8 (base64 two's complement) or, with `decimal.format=NUMERIC`, Decimal128 |
//! | int32 `...data.Date` (days)               | Date32                     | Int32, cast              |
//! | int32 `...data.Time` (ms of day)          | Time32(ms)                 | Int32, cast              |
//! | int64 `...data.Timestamp` (epoch ms)      | Timestamp(ms, "UTC")       | Int64, cast              |
//! | array                                     | List                       | List                     |
//! | map with string keys                      | Map(Utf8, V)               | Map (JSON object)        |
//! | struct                                    | Struct                     | Struct                   |
//!
//! `optional` becomes nullability. The decimal precision is the `connect.decimal.precision`
//! parameter when present, else 38. Maps whose keys are not strings (written by `JsonConverter`
//! as arrays of `[key, value]` pairs) are not supported: the schema is refused with a clear cause.

use std::sync::Arc;

use arrow::array::BinaryBuilder;
use arrow::array::{Array, ArrayRef, AsArray, Decimal128Builder, ListArray, MapArray, StructArray};
use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use base64::Engine;
use serde_json::Value;

/// Largest decimal precision supported (Decimal128).
const MAX_PRECISION: u8 = 38;

const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
const DATE: &str = "org.apache.kafka.connect.data.Date";
const TIME: &str = "org.apache.kafka.connect.data.Time";
const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";

/// How `JsonConverter` writes decimals (`decimal.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecimalFormat {
    /// Base64 of the unscaled value's big-endian two's complement bytes (the default).
    #[default]
    Base64,
    /// JSON numbers.
    Numeric,
}

/// A Connect type.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Decimal {
        precision: u8,
        scale: i8,
    },
    Date,
    Time,
    Timestamp,
    Array(Box<ConnectType>),
    /// String keys only.
    Map(Box<ConnectType>),
    Struct(Vec<(String, ConnectType)>),
}

/// A Connect schema node.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectType {
    pub kind: Kind,
    pub optional: bool,
}

impl ConnectType {
    /// Parses a Connect schema as `JsonConverter` writes it.
    pub fn parse(v: &Value) -> Result<Self, String> {
        parse(v, "")
    }

    /// The Arrow type of the output.
    pub fn arrow_type(&self) -> DataType {
        self.data_type(false, DecimalFormat::Base64)
    }

    /// The Arrow type arrow-json decodes the payload as (before [`convert`]).
    pub fn decode_type(&self, format: DecimalFormat) -> DataType {
        self.data_type(true, format)
    }

    fn data_type(&self, decode: bool, format: DecimalFormat) -> DataType {
        match &self.kind {
            Kind::Int8 => DataType::Int8,
            Kind::Int16 => DataType::Int16,
            Kind::Int32 => DataType::Int32,
            Kind::Int64 => DataType::Int64,
            Kind::Float32 => DataType::Float32,
            Kind::Float64 => DataType::Float64,
            Kind::Boolean => DataType::Boolean,
            Kind::String => DataType::Utf8,
            Kind::Bytes if decode => DataType::Utf8,
            Kind::Bytes => DataType::Binary,
            Kind::Decimal { .. } if decode && format == DecimalFormat::Base64 => DataType::Utf8,
            Kind::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            Kind::Date if decode => DataType::Int32,
            Kind::Date => DataType::Date32,
            Kind::Time if decode => DataType::Int32,
            Kind::Time => DataType::Time32(TimeUnit::Millisecond),
            Kind::Timestamp if decode => DataType::Int64,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            Kind::Array(item) => DataType::List(Arc::new(Field::new(
                "item",
                item.data_type(decode, format),
                item.optional,
            ))),
            Kind::Map(value) => {
                let entries = Fields::from(vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", value.data_type(decode, format), value.optional),
                ]);
                DataType::Map(
                    Arc::new(Field::new("entries", DataType::Struct(entries), false)),
                    false,
                )
            }
            Kind::Struct(fields) => DataType::Struct(self.fields(fields, decode, format)),
        }
    }

    fn fields(
        &self,
        fields: &[(String, ConnectType)],
        decode: bool,
        format: DecimalFormat,
    ) -> Fields {
        fields
            .iter()
            .map(|(name, t)| Field::new(name, t.data_type(decode, format), t.optional))
            .collect()
    }

    /// Top-level fields: a struct's fields, or one field `value` for other types.
    pub fn top_fields(&self, decode: bool, format: DecimalFormat) -> Fields {
        match &self.kind {
            Kind::Struct(fields) => self.fields(fields, decode, format),
            _ => Fields::from(vec![Field::new(
                "value",
                self.data_type(decode, format),
                self.optional,
            )]),
        }
    }

    /// Whether decoded arrays of this type need [`convert`].
    pub fn needs_conversion(&self, format: DecimalFormat) -> bool {
        match &self.kind {
            Kind::Bytes | Kind::Date | Kind::Time | Kind::Timestamp => true,
            Kind::Decimal { .. } => format == DecimalFormat::Base64,
            Kind::Array(t) | Kind::Map(t) => t.needs_conversion(format),
            Kind::Struct(fields) => fields.iter().any(|(_, t)| t.needs_conversion(format)),
            _ => false,
        }
    }

    fn describe(&self) -> String {
        let base = match &self.kind {
            Kind::Decimal { precision, scale } => format!("Decimal({precision}, {scale})"),
            Kind::Array(_) => "array".to_string(),
            Kind::Map(_) => "map".to_string(),
            Kind::Struct(_) => "struct".to_string(),
            other => format!("{other:?}").to_lowercase(),
        };
        if self.optional {
            format!("optional {base}")
        } else {
            base
        }
    }

    /// Whether payloads written with `self` decode into columns of `output` (same names; added
    /// output fields optional; int/float widening; decimal precision widening at equal scale).
    pub fn fits(&self, output: &ConnectType, path: &str) -> Result<(), String> {
        let here = if path.is_empty() { "the value" } else { path };
        if self.optional && !output.optional {
            return Err(format!(
                "'{here}' is optional in the record's schema but required in the output schema"
            ));
        }
        let widens = |a: &Kind, b: &Kind| {
            let rank = |k: &Kind| match k {
                Kind::Int8 => Some((0, 0)),
                Kind::Int16 => Some((0, 1)),
                Kind::Int32 => Some((0, 2)),
                Kind::Int64 => Some((0, 3)),
                Kind::Float32 => Some((1, 0)),
                Kind::Float64 => Some((1, 1)),
                _ => None,
            };
            matches!((rank(a), rank(b)), (Some((x, i)), Some((y, j))) if x == y && i <= j)
        };
        match (&self.kind, &output.kind) {
            (a, b) if a == b && !matches!(a, Kind::Struct(_) | Kind::Array(_) | Kind::Map(_)) => {
                Ok(())
            }
            (a, b) if widens(a, b) => Ok(()),
            (
                Kind::Decimal {
                    precision: p,
                    scale: s,
                },
                Kind::Decimal {
                    precision: q,
                    scale: t,
                },
            ) if s == t && p <= q => Ok(()),
            (Kind::Array(a), Kind::Array(b)) => a.fits(b, &format!("{here}[]")),
            (Kind::Map(a), Kind::Map(b)) => a.fits(b, &format!("{here}{{}}")),
            (Kind::Struct(mine), Kind::Struct(theirs)) => {
                let join = |name: &str| {
                    if path.is_empty() {
                        name.to_string()
                    } else {
                        format!("{path}.{name}")
                    }
                };
                for (name, t) in mine {
                    match theirs.iter().find(|(n, _)| n == name) {
                        Some((_, o)) => t.fits(o, &join(name))?,
                        None => {
                            return Err(format!(
                                "field '{}' is not in the output schema",
                                join(name)
                            ))
                        }
                    }
                }
                for (name, o) in theirs {
                    if !o.optional && !mine.iter().any(|(n, _)| n == name) {
                        return Err(format!(
                            "required field '{}' of the output schema is missing",
                            join(name)
                        ));
                    }
                }
                Ok(())
            }
            _ => Err(format!(
                "'{here}' is {} in the record's schema but {} in the output schema",
                self.describe(),
                output.describe()
            )),
        }
    }
}

fn parse(v: &Value, path: &str) -> Result<ConnectType, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("schema of '{}' is not an object", show(path)))?;
    let t = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("schema of '{}' has no string 'type'", show(path)))?;
    let optional = obj
        .get("optional")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let name = obj.get("name").and_then(Value::as_str);
    let kind = match (t, name) {
        ("bytes", Some(DECIMAL)) => decimal(obj.get("parameters"), path)?,
        ("int32", Some(DATE)) => Kind::Date,
        ("int32", Some(TIME)) => Kind::Time,
        ("int64", Some(TIMESTAMP)) => Kind::Timestamp,
        ("int8", _) => Kind::Int8,
        ("int16", _) => Kind::Int16,
        ("int32", _) => Kind::Int32,
        ("int64", _) => Kind::Int64,
        ("float32", _) => Kind::Float32,
        ("float64", _) => Kind::Float64,
        ("boolean", _) => Kind::Boolean,
        ("string", _) => Kind::String,
        ("bytes", _) => Kind::Bytes,
        ("array", _) => {
            let items = obj
                .get("items")
                .ok_or_else(|| format!("array '{}' has no 'items'", show(path)))?;
            Kind::Array(Box::new(parse(items, &format!("{path}[]"))?))
        }
        ("map", _) => {
            let keys = obj
                .get("keys")
                .ok_or_else(|| format!("map '{}' has no 'keys'", show(path)))?;
            let keys = parse(keys, path)?;
            if keys.kind != Kind::String {
                return Err(format!(
                    "map '{}' has {} keys: only string keys are supported",
                    show(path),
                    keys.describe()
                ));
            }
            let values = obj
                .get("values")
                .ok_or_else(|| format!("map '{}' has no 'values'", show(path)))?;
            Kind::Map(Box::new(parse(values, &format!("{path}{{}}"))?))
        }
        ("struct", _) => {
            let fields = obj
                .get("fields")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("struct '{}' has no 'fields' array", show(path)))?;
            let mut out: Vec<(String, ConnectType)> = Vec::with_capacity(fields.len());
            for f in fields {
                let field = f
                    .get("field")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("a field of '{}' has no name ('field')", show(path)))?;
                if out.iter().any(|(n, _)| n == field) {
                    return Err(format!("field '{field}' appears twice in '{}'", show(path)));
                }
                let child = if path.is_empty() {
                    field.to_string()
                } else {
                    format!("{path}.{field}")
                };
                out.push((field.to_string(), parse(f, &child)?));
            }
            Kind::Struct(out)
        }
        (other, _) => return Err(format!("'{}' has unknown type '{other}'", show(path))),
    };
    Ok(ConnectType { kind, optional })
}

fn show(path: &str) -> &str {
    if path.is_empty() {
        "the value"
    } else {
        path
    }
}

fn decimal(parameters: Option<&Value>, path: &str) -> Result<Kind, String> {
    let param = |key: &str| -> Option<i64> {
        match parameters?.get(key)? {
            Value::String(s) => s.trim().parse().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    };
    let scale = param("scale")
        .ok_or_else(|| format!("decimal '{}' has no integer 'scale' parameter", show(path)))?;
    let precision = param("connect.decimal.precision").unwrap_or(i64::from(MAX_PRECISION));
    if !(1..=i64::from(MAX_PRECISION)).contains(&precision) || !(0..=precision).contains(&scale) {
        return Err(format!(
            "decimal '{}' with precision {precision} and scale {scale} is not supported (precision 1..=38, 0 <= scale <= precision)",
            show(path)
        ));
    }
    Ok(Kind::Decimal {
        precision: precision as u8,
        scale: scale as i8,
    })
}

/// Converts an array decoded by arrow-json (`t.decode_type`) to `t.arrow_type()`.
pub fn convert(
    array: &ArrayRef,
    t: &ConnectType,
    format: DecimalFormat,
) -> Result<ArrayRef, String> {
    if !t.needs_conversion(format) {
        return Ok(array.clone());
    }
    let cast = |to: DataType| arrow::compute::cast(array, &to).map_err(|e| e.to_string());
    match &t.kind {
        Kind::Bytes => {
            let strings = array.as_string::<i32>();
            let mut out = BinaryBuilder::with_capacity(strings.len(), strings.values().len());
            for v in strings.iter() {
                match v {
                    Some(s) => out.append_value(base64_decode(s)?),
                    None => out.append_null(),
                }
            }
            Ok(Arc::new(out.finish()))
        }
        Kind::Decimal { precision, scale } => {
            let strings = array.as_string::<i32>();
            let mut out = Decimal128Builder::with_capacity(strings.len());
            for v in strings.iter() {
                match v {
                    Some(s) => out.append_value(unscaled(&base64_decode(s)?, *precision)?),
                    None => out.append_null(),
                }
            }
            let out = out
                .finish()
                .with_precision_and_scale(*precision, *scale)
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(out))
        }
        Kind::Date | Kind::Time | Kind::Timestamp => cast(t.arrow_type()),
        Kind::Array(item) => {
            let list = array.as_list::<i32>();
            let values = convert(list.values(), item, format)?;
            let field = Arc::new(Field::new("item", item.arrow_type(), item.optional));
            let out =
                ListArray::try_new(field, list.offsets().clone(), values, list.nulls().cloned())
                    .map_err(|e| e.to_string())?;
            Ok(Arc::new(out))
        }
        Kind::Map(value) => {
            let map = array.as_map();
            let values = convert(map.values(), value, format)?;
            let DataType::Map(entries_field, sorted) = t.arrow_type() else {
                return Err("internal: map type expected".to_string());
            };
            let DataType::Struct(entry_fields) = entries_field.data_type() else {
                return Err("internal: map entries struct expected".to_string());
            };
            let entries =
                StructArray::try_new(entry_fields.clone(), vec![map.keys().clone(), values], None)
                    .map_err(|e| e.to_string())?;
            let out = MapArray::try_new(
                entries_field,
                map.offsets().clone(),
                entries,
                map.nulls().cloned(),
                sorted,
            )
            .map_err(|e| e.to_string())?;
            Ok(Arc::new(out))
        }
        Kind::Struct(fields) => {
            let s = array.as_struct();
            let out_fields = t.top_fields(false, format);
            let columns = convert_columns(s.columns(), fields, format)?;
            let out = StructArray::try_new(out_fields, columns, s.nulls().cloned())
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(out))
        }
        _ => Ok(array.clone()),
    }
}

/// Converts the top-level columns of a decoded batch.
pub fn convert_columns(
    columns: &[ArrayRef],
    fields: &[(String, ConnectType)],
    format: DecimalFormat,
) -> Result<Vec<ArrayRef>, String> {
    columns
        .iter()
        .zip(fields)
        .map(|(c, (name, t))| convert(c, t, format).map_err(|e| format!("field '{name}': {e}")))
        .collect()
}

fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("invalid base64: {e}"))
}

/// The unscaled value of big-endian two's complement `bytes`, checked against `precision`.
fn unscaled(bytes: &[u8], precision: u8) -> Result<i128, String> {
    if bytes.len() > 16 {
        let sign = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
        let (head, _) = bytes.split_at(bytes.len() - 16);
        if head.iter().any(|b| *b != sign) {
            return Err(format!("decimal of {} bytes exceeds 128 bits", bytes.len()));
        }
    }
    let tail = &bytes[bytes.len().saturating_sub(16)..];
    let fill = if tail.first().is_some_and(|b| b & 0x80 != 0) {
        0xff
    } else {
        0
    };
    let mut full = [fill; 16];
    full[16 - tail.len()..].copy_from_slice(tail);
    let v = i128::from_be_bytes(full);
    let limit = 10i128.pow(u32::from(precision));
    if v.unsigned_abs() >= limit.unsigned_abs() {
        return Err(format!(
            "decimal unscaled value {v} exceeds precision {precision}"
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_every_type() {
        let schema = json!({"type":"struct","fields":[
            {"field":"i8","type":"int8"},{"field":"i64","type":"int64","optional":true},
            {"field":"b","type":"bytes","optional":true},
            {"field":"d","type":"bytes","name":DECIMAL,"parameters":{"scale":"2","connect.decimal.precision":"10"}},
            {"field":"day","type":"int32","name":DATE},{"field":"t","type":"int32","name":TIME},
            {"field":"ts","type":"int64","name":TIMESTAMP,"optional":true},
            {"field":"l","type":"array","items":{"type":"string","optional":true}},
            {"field":"m","type":"map","keys":{"type":"string"},"values":{"type":"int32"}},
            {"field":"s","type":"struct","fields":[{"field":"x","type":"float32"}],"optional":true}]});
        let t = ConnectType::parse(&schema).unwrap();
        let f = t.top_fields(false, DecimalFormat::Base64);
        let types: Vec<String> = f.iter().map(|f| f.data_type().to_string()).collect();
        assert_eq!(types[0], "Int8");
        assert!(!f[0].is_nullable() && f[1].is_nullable());
        assert_eq!(types[2], "Binary");
        assert_eq!(f[3].data_type(), &DataType::Decimal128(10, 2));
        assert_eq!(f[4].data_type(), &DataType::Date32);
        assert_eq!(f[5].data_type(), &DataType::Time32(TimeUnit::Millisecond));
        assert_eq!(
            f[6].data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
        assert!(matches!(f[8].data_type(), DataType::Map(_, false)));
        let d = t.top_fields(true, DecimalFormat::Base64);
        assert_eq!(d[2].data_type(), &DataType::Utf8);
        assert_eq!(d[3].data_type(), &DataType::Utf8);
        let n = t.top_fields(true, DecimalFormat::Numeric);
        assert_eq!(n[3].data_type(), &DataType::Decimal128(10, 2));
    }

    #[test]
    fn refuses_what_it_cannot_map() {
        let bad = [
            (
                json!({"type":"map","keys":{"type":"int32"},"values":{"type":"string"}}),
                "only string keys",
            ),
            (json!({"type":"uint8"}), "unknown type"),
            (json!({"type":"bytes","name":DECIMAL}), "scale"),
            (
                json!({"type":"bytes","name":DECIMAL,"parameters":{"scale":"2","connect.decimal.precision":"50"}}),
                "precision 50",
            ),
            (
                json!({"type":"struct","fields":[{"type":"int8"}]}),
                "no name",
            ),
            (
                json!({"type":"struct","fields":[{"field":"a","type":"int8"},{"field":"a","type":"int8"}]}),
                "twice",
            ),
            (json!("int8"), "not an object"),
        ];
        for (schema, why) in bad {
            let e = ConnectType::parse(&schema).unwrap_err();
            assert!(e.contains(why), "{e} / {why}");
        }
    }

    #[test]
    fn fits_rules() {
        let p = |v: Value| ConnectType::parse(&v).unwrap();
        let out = p(
            json!({"type":"struct","fields":[{"field":"a","type":"int64"},{"field":"b","type":"string","optional":true}]}),
        );
        assert!(
            p(json!({"type":"struct","fields":[{"field":"a","type":"int32"}]}))
                .fits(&out, "")
                .is_ok()
        );
        let e = p(json!({"type":"struct","fields":[{"field":"a","type":"int64"},{"field":"c","type":"string"}]})).fits(&out, "").unwrap_err();
        assert!(e.contains("'c' is not in the output schema"), "{e}");
        let e =
            p(json!({"type":"struct","fields":[{"field":"b","type":"string","optional":true}]}))
                .fits(&out, "")
                .unwrap_err();
        assert!(e.contains("required field 'a'"), "{e}");
        let e = p(json!({"type":"struct","fields":[{"field":"a","type":"string"}]}))
            .fits(&out, "")
            .unwrap_err();
        assert!(
            e.contains("'a' is string in the record's schema but int64"),
            "{e}"
        );
        let e = p(json!({"type":"struct","fields":[{"field":"a","type":"int64","optional":true}]}))
            .fits(&out, "")
            .unwrap_err();
        assert!(e.contains("optional in the record's schema"), "{e}");
    }

    #[test]
    fn decimals_from_two_complement() {
        assert_eq!(unscaled(&[0x30, 0x39], 10), Ok(12345));
        assert_eq!(unscaled(&[0xcf, 0xc7], 10), Ok(-12345));
        assert_eq!(unscaled(&[], 10), Ok(0));
        assert!(unscaled(&[0x30, 0x39], 4)
            .unwrap_err()
            .contains("exceeds precision"));
        let mut wide = vec![0xff; 4];
        wide.extend_from_slice(&(-5i128).to_be_bytes());
        assert_eq!(unscaled(&wide, 38), Ok(-5));
        let mut too_wide = vec![0x01];
        too_wide.extend_from_slice(&[0; 16]);
        assert!(unscaled(&too_wide, 38)
            .unwrap_err()
            .contains("exceeds 128 bits"));
    }
}
