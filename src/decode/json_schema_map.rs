//! JSON Schema → Arrow: the columns a registered JSON Schema declares, for
//! [`super::json_schema::JsonSchemaDecoder`], and whether records written under one such schema
//! decode into the columns of another ([`can_read`], [`compatibility`]).
//!
//! Mapping ([`to_arrow`]); every column is nullable (a `required` property is still written as
//! nullable: producers need not validate, Kafka Connect's Java serializer does not by default,
//! and a missing value must not fail a whole file):
//! * `object` with `properties` → Struct of the mapped properties, sorted by name;
//!   properties the schema does not name are ignored (`additionalProperties` beside
//!   `properties` is not written).
//! * `object` with only a typed `additionalProperties` → Map (Utf8 keys, the mapped values).
//! * `string` → Utf8; with `format: date-time` → Timestamp(µs, UTC); `format: date` → Date32.
//!   `enum` / `const` of strings → Utf8.
//! * `integer` → Int64, `number` → Float64, `boolean` → Boolean, `array` with one `items`
//!   schema → List.
//! * `type: ["null", X]`, and `oneOf` / `anyOf` of `{"type": "null"}` and one schema → X
//!   (nullable anyway); `integer` together with `number` → Float64; `allOf` of objects → the
//!   properties of all of them.
//! * `$ref`: `#/definitions/..`, `#/$defs/..` or any JSON pointer into the same document, and
//!   `name#/pointer` / `name` into a referenced schema (registry `references`, by their `name`).
//!
//! What has no single Arrow type (free-form objects and values without a type, `true` schemas,
//! tuple arrays, unions of several types) is left out: its property is not a column, and
//! [`Mapped::skipped`] names it (logged by the decoder). The root must be an object with
//! properties.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use serde_json::Value;

use super::avro_compat::Compat;

/// Deepest `$ref` / nesting followed (a recursive schema ends here with an error).
const MAX_DEPTH: usize = 64;

/// The Arrow schema of a JSON Schema and the properties it had to leave out.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub schema: Schema,
    /// Paths (`a.b`, `a[]`) of properties without a single Arrow type, not written.
    pub skipped: Vec<String>,
}

/// Maps the JSON Schema `root` to Arrow; `referenced` holds the documents of the schema's
/// registry references by reference name. `Err` says why the schema cannot be used at all.
pub fn to_arrow(root: &Value, referenced: &HashMap<String, Value>) -> Result<Mapped, String> {
    let mut mapper = Mapper {
        referenced,
        skipped: Vec::new(),
    };
    match mapper.map(root, root, "", 0)? {
        Some(DataType::Struct(fields)) if !fields.is_empty() => Ok(Mapped {
            schema: Schema::new(fields),
            skipped: mapper.skipped,
        }),
        _ => Err(
            "the root of a JSON Schema for record values must be an object with properties \
             (typed columns)"
                .to_string(),
        ),
    }
}

struct Mapper<'a> {
    referenced: &'a HashMap<String, Value>,
    skipped: Vec<String>,
}

impl<'a> Mapper<'a> {
    /// The type of `node` (inside document `doc`), `None` when it has no single Arrow type.
    fn map(
        &mut self,
        node: &'a Value,
        doc: &'a Value,
        path: &str,
        depth: usize,
    ) -> Result<Option<DataType>, String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "'{path}' nests deeper than {MAX_DEPTH} levels (a recursive $ref?): recursive \
                 schemas have no Arrow type"
            ));
        }
        let Value::Object(obj) = node else {
            return Ok(None); // `true` / `false` schemas: any value, or none.
        };
        if let Some(target) = obj.get("$ref").and_then(Value::as_str) {
            let (target, target_doc) = self.resolve(target, doc, path)?;
            return self.map(target, target_doc, path, depth + 1);
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(branches)) = obj.get(key) {
                return self.union(branches, doc, path, depth);
            }
        }
        if let Some(Value::Array(branches)) = obj.get("allOf") {
            return self.all_of(branches, doc, path, depth);
        }
        let types: Vec<&str> = match obj.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => implied_types(obj),
        };
        let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        match types.as_slice() {
            [one] => self.typed(one, obj, doc, path, depth),
            [a, b] if matches!((*a, *b), ("integer", "number") | ("number", "integer")) => {
                Ok(Some(DataType::Float64))
            }
            _ => Ok(None),
        }
    }

    fn typed(
        &mut self,
        ty: &str,
        obj: &'a serde_json::Map<String, Value>,
        doc: &'a Value,
        path: &str,
        depth: usize,
    ) -> Result<Option<DataType>, String> {
        Ok(match ty {
            "string" => Some(match obj.get("format").and_then(Value::as_str) {
                Some("date-time") => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                Some("date") => DataType::Date32,
                _ => DataType::Utf8,
            }),
            "integer" => Some(DataType::Int64),
            "number" => Some(DataType::Float64),
            "boolean" => Some(DataType::Boolean),
            "array" => match obj.get("items") {
                Some(items @ Value::Object(_)) => {
                    let item_path = format!("{path}[]");
                    match self.map(items, doc, &item_path, depth + 1)? {
                        Some(t) => Some(DataType::List(Arc::new(Field::new("item", t, true)))),
                        None => self.skip(&item_path),
                    }
                }
                _ => None, // no items schema, or a tuple
            },
            "object" => self.object(obj, doc, path, depth)?,
            _ => None,
        })
    }

    fn object(
        &mut self,
        obj: &'a serde_json::Map<String, Value>,
        doc: &'a Value,
        path: &str,
        depth: usize,
    ) -> Result<Option<DataType>, String> {
        if let Some(Value::Object(properties)) = obj.get("properties") {
            let mut fields = Vec::with_capacity(properties.len());
            for (name, property) in properties {
                let child = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                match self.map(property, doc, &child, depth + 1)? {
                    Some(t) => fields.push(Field::new(name, t, true)),
                    None => {
                        self.skip(&child);
                    }
                }
            }
            return Ok((!fields.is_empty()).then(|| DataType::Struct(Fields::from(fields))));
        }
        match obj.get("additionalProperties") {
            Some(values @ Value::Object(_)) => {
                let value_path = format!("{path}{{}}");
                let Some(t) = self.map(values, doc, &value_path, depth + 1)? else {
                    return Ok(None);
                };
                let entries = Fields::from(vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", t, true),
                ]);
                let entries = Field::new("entries", DataType::Struct(entries), false);
                Ok(Some(DataType::Map(Arc::new(entries), false)))
            }
            _ => Ok(None),
        }
    }

    /// `oneOf` / `anyOf`: null branches dropped; one type left, or integer with number.
    fn union(
        &mut self,
        branches: &'a [Value],
        doc: &'a Value,
        path: &str,
        depth: usize,
    ) -> Result<Option<DataType>, String> {
        let mut types = Vec::new();
        for branch in branches.iter().filter(|b| !is_null_schema(b)) {
            match self.map(branch, doc, path, depth + 1)? {
                Some(t) if !types.contains(&t) => types.push(t),
                Some(_) => {}
                None => return Ok(None),
            }
        }
        Ok(match types.as_slice() {
            [one] => Some(one.clone()),
            [DataType::Int64, DataType::Float64] | [DataType::Float64, DataType::Int64] => {
                Some(DataType::Float64)
            }
            _ => None,
        })
    }

    /// `allOf`: the fields of every object branch (the first of a name wins); one non-object
    /// branch alone is taken as it is.
    fn all_of(
        &mut self,
        branches: &'a [Value],
        doc: &'a Value,
        path: &str,
        depth: usize,
    ) -> Result<Option<DataType>, String> {
        let mut mapped = Vec::new();
        for branch in branches {
            if let Some(t) = self.map(branch, doc, path, depth + 1)? {
                mapped.push(t);
            }
        }
        if let [one] = mapped.as_slice() {
            return Ok(Some(one.clone()));
        }
        let mut fields: Vec<Arc<Field>> = Vec::new();
        for t in mapped {
            let DataType::Struct(more) = t else {
                return Ok(None);
            };
            for f in more.iter() {
                if !fields.iter().any(|g| g.name() == f.name()) {
                    fields.push(f.clone());
                }
            }
        }
        Ok((!fields.is_empty()).then(|| DataType::Struct(Fields::from(fields))))
    }

    /// The node a `$ref` names, and the document it is in.
    fn resolve(
        &self,
        target: &str,
        doc: &'a Value,
        path: &str,
    ) -> Result<(&'a Value, &'a Value), String> {
        let (base, fragment) = target.split_once('#').unwrap_or((target, ""));
        let doc = if base.is_empty() {
            doc
        } else {
            self.referenced.get(base).ok_or_else(|| {
                format!(
                    "'{path}': $ref '{target}' names '{base}', which is neither this schema nor \
                     one of its registry references"
                )
            })?
        };
        if fragment.is_empty() {
            return Ok((doc, doc));
        }
        let node = fragment
            .starts_with('/')
            .then(|| doc.pointer(fragment))
            .flatten()
            .ok_or_else(|| format!("'{path}': $ref '{target}' points to nothing"))?;
        Ok((node, doc))
    }

    fn skip(&mut self, path: &str) -> Option<DataType> {
        self.skipped.push(path.to_string());
        None
    }
}

/// The types a schema without `type` implies by its keywords.
fn implied_types(obj: &serde_json::Map<String, Value>) -> Vec<&'static str> {
    if obj.contains_key("properties") || obj.contains_key("additionalProperties") {
        return vec!["object"];
    }
    if obj.contains_key("items") {
        return vec!["array"];
    }
    let values: Vec<&Value> = match (obj.get("enum"), obj.get("const")) {
        (Some(Value::Array(vs)), _) => vs.iter().collect(),
        (_, Some(v)) => vec![v],
        _ => return Vec::new(),
    };
    let mut types: Vec<&'static str> = Vec::new();
    for v in values {
        let t = match v {
            Value::Null => "null",
            Value::String(_) => "string",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            _ => return Vec::new(),
        };
        if !types.contains(&t) {
            types.push(t);
        }
    }
    types
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
}

/// Whether records written under `writer` decode into `reader`'s columns: fields of the same
/// name have the same type, or the reader's reads the writer's JSON (integer into Float64,
/// date-time / date strings into Utf8); fields only one side has are fine (all nullable; what
/// the reader lacks is not written). `Err` names the first field that does not fit.
pub fn can_read(reader: &Schema, writer: &Schema) -> Result<(), String> {
    fields_readable(reader.fields(), writer.fields(), "")
}

fn fields_readable(reader: &Fields, writer: &Fields, path: &str) -> Result<(), String> {
    for w in writer.iter() {
        if let Some((_, r)) = reader.find(w.name()) {
            let child = if path.is_empty() {
                w.name().clone()
            } else {
                format!("{path}.{}", w.name())
            };
            type_readable(r.data_type(), w.data_type(), &child)?;
        }
    }
    Ok(())
}

fn type_readable(reader: &DataType, writer: &DataType, path: &str) -> Result<(), String> {
    use DataType as T;
    match (reader, writer) {
        (r, w) if r == w => Ok(()),
        (T::Float64, T::Int64) => Ok(()),
        (T::Utf8, T::Timestamp(..) | T::Date32) => Ok(()),
        (T::Struct(r), T::Struct(w)) => fields_readable(r, w, path),
        (T::List(r), T::List(w)) => {
            type_readable(r.data_type(), w.data_type(), &format!("{path}[]"))
        }
        (T::Map(r, _), T::Map(w, _)) => type_readable(r.data_type(), w.data_type(), path),
        _ => Err(format!(
            "field '{path}' is {writer} in one schema and {reader} in the other"
        )),
    }
}

/// Whether `new` may follow `old` under `mode` (as [`super::avro_compat::compatibility`]).
pub fn compatibility(old: &Schema, new: &Schema, mode: Compat) -> Result<(), String> {
    match mode {
        Compat::None => Ok(()),
        Compat::Backward => can_read(new, old).map_err(|e| format!("new cannot read old: {e}")),
        Compat::Forward => can_read(old, new).map_err(|e| format!("old cannot read new: {e}")),
        Compat::Full => {
            can_read(new, old).map_err(|e| format!("new cannot read old: {e}"))?;
            can_read(old, new).map_err(|e| format!("old cannot read new: {e}"))
        }
    }
}

#[cfg(test)]
#[path = "json_schema_map_tests.rs"]
mod tests;
