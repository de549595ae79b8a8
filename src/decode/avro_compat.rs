//! Avro schema compatibility ([`compatibility`], [`can_read`]) with Confluent Schema Registry /
//! kafka-connect-hdfs meanings of [`Compat`]:
//!
//! * `NONE`: any change is accepted.
//! * `BACKWARD`: the new schema can read data written with the old one.
//! * `FORWARD`: the old schema can read data written with the new one.
//! * `FULL`: both.
//!
//! "Reader can read writer" follows the Avro specification's schema resolution: records match by
//! name (or a reader alias) and their fields by name (or reader field aliases); a reader field
//! missing from the writer needs a `default`; writer fields missing from the reader are skipped;
//! `int` promotes to `long`/`float`/`double`, `long` to `float`/`double`, `float` to `double`,
//! `string` and `bytes` to each other; enums need every writer symbol in the reader or a reader
//! `default` symbol; fixed sizes must be equal; a writer union needs every branch readable, a
//! reader union needs one branch that reads the writer. Logical types are ignored as the spec
//! says, except `decimal`, whose precision and scale must not change (the bytes would be read
//! with another scale). Recursive named types are checked once per (writer, reader) pair.
//!
//! Errors name the path of the offending field, e.g. `field 'address.zip': ...`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use arrow_avro::schema::AvroSchema;
use serde_json::{Map, Value};

/// A schema compatibility mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compat {
    None,
    #[default]
    Backward,
    Forward,
    Full,
}

impl FromStr for Compat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "NONE" => Ok(Compat::None),
            "BACKWARD" => Ok(Compat::Backward),
            "FORWARD" => Ok(Compat::Forward),
            "FULL" => Ok(Compat::Full),
            other => Err(format!(
                "unknown schema compatibility '{other}' (NONE, BACKWARD, FORWARD or FULL)"
            )),
        }
    }
}

impl fmt::Display for Compat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compat::None => "NONE",
            Compat::Backward => "BACKWARD",
            Compat::Forward => "FORWARD",
            Compat::Full => "FULL",
        })
    }
}

/// Whether `new` may follow `old` under `mode`; `Err` says why not.
pub fn compatibility(old: &AvroSchema, new: &AvroSchema, mode: Compat) -> Result<(), String> {
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

/// Whether data written with `writer` can be read with `reader` (Avro schema resolution).
pub fn can_read(reader: &AvroSchema, writer: &AvroSchema) -> Result<(), String> {
    let r: Value = serde_json::from_str(&reader.json_string)
        .map_err(|e| format!("reader schema is not JSON: {e}"))?;
    let w: Value = serde_json::from_str(&writer.json_string)
        .map_err(|e| format!("writer schema is not JSON: {e}"))?;
    let mut checker = Checker {
        writer_names: Names::collect(&w)?,
        reader_names: Names::collect(&r)?,
        seen: HashSet::new(),
    };
    checker.check(&w, &r, "")
}

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// Named types (records, enums, fixed) of one schema by full name and by short name.
struct Names<'a> {
    by_name: HashMap<String, &'a Value>,
}

impl<'a> Names<'a> {
    fn collect(root: &'a Value) -> Result<Self, String> {
        let mut names = Names {
            by_name: HashMap::new(),
        };
        names.walk(root, None)?;
        Ok(names)
    }

    fn walk(&mut self, v: &'a Value, ns: Option<&str>) -> Result<(), String> {
        match v {
            Value::Array(branches) => {
                for b in branches {
                    self.walk(b, ns)?;
                }
            }
            Value::Object(obj) => {
                let kind = obj.get("type");
                let mut inner_ns = ns.map(str::to_string);
                if let (Some(Value::String(t)), Some(Value::String(name))) = (kind, obj.get("name"))
                {
                    if matches!(t.as_str(), "record" | "error" | "enum" | "fixed") {
                        let full = full_name(name, obj.get("namespace"), ns);
                        if let Some((space, _)) = full.rsplit_once('.') {
                            inner_ns = Some(space.to_string());
                        } else {
                            inner_ns = None;
                        }
                        let short = full.rsplit('.').next().unwrap_or(&full).to_string();
                        self.by_name.insert(full, v);
                        self.by_name.entry(short).or_insert(v);
                    }
                }
                let ns = inner_ns.as_deref();
                if let Some(t @ (Value::Object(_) | Value::Array(_))) = kind {
                    self.walk(t, ns)?;
                }
                if let Some(Value::Array(fields)) = obj.get("fields") {
                    for f in fields {
                        let t = f
                            .get("type")
                            .ok_or_else(|| format!("field without type: {f}"))?;
                        self.walk(t, ns)?;
                    }
                }
                for key in ["items", "values"] {
                    if let Some(t) = obj.get(key) {
                        self.walk(t, ns)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.by_name
            .get(name)
            .or_else(|| self.by_name.get(name.rsplit('.').next().unwrap_or(name)))
            .copied()
    }
}

fn full_name(name: &str, namespace: Option<&Value>, enclosing: Option<&str>) -> String {
    if name.contains('.') {
        return name.to_string();
    }
    match namespace.and_then(Value::as_str).or(enclosing) {
        Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_string(),
    }
}

/// A schema node with references resolved.
enum Node<'a> {
    Primitive(&'a str, Option<&'a Map<String, Value>>),
    Record(&'a Map<String, Value>),
    Enum(&'a Map<String, Value>),
    Fixed(&'a Map<String, Value>),
    Array(&'a Value),
    Map(&'a Value),
    Union(&'a [Value]),
}

impl Node<'_> {
    fn describe(&self) -> String {
        match self {
            Node::Primitive(p, _) => p.to_string(),
            Node::Record(o) => format!("record {}", short(o)),
            Node::Enum(o) => format!("enum {}", short(o)),
            Node::Fixed(o) => format!("fixed {}", short(o)),
            Node::Array(_) => "array".to_string(),
            Node::Map(_) => "map".to_string(),
            Node::Union(_) => "union".to_string(),
        }
    }
}

fn short(obj: &Map<String, Value>) -> &str {
    let name = obj.get("name").and_then(Value::as_str).unwrap_or("?");
    name.rsplit('.').next().unwrap_or(name)
}

fn node<'a>(v: &'a Value, names: &Names<'a>) -> Result<Node<'a>, String> {
    match v {
        Value::String(s) if PRIMITIVES.contains(&s.as_str()) => Ok(Node::Primitive(s, None)),
        Value::String(s) => match names.get(s) {
            Some(def) => node(def, names),
            None => Err(format!("unknown named type '{s}'")),
        },
        Value::Array(branches) => Ok(Node::Union(branches)),
        Value::Object(obj) => match obj.get("type") {
            Some(Value::String(t)) => match t.as_str() {
                "record" | "error" => Ok(Node::Record(obj)),
                "enum" => Ok(Node::Enum(obj)),
                "fixed" => Ok(Node::Fixed(obj)),
                "array" => obj
                    .get("items")
                    .map(Node::Array)
                    .ok_or_else(|| "array without items".to_string()),
                "map" => obj
                    .get("values")
                    .map(Node::Map)
                    .ok_or_else(|| "map without values".to_string()),
                p if PRIMITIVES.contains(&p) => Ok(Node::Primitive(t, Some(obj))),
                other => match names.get(other) {
                    Some(def) => node(def, names),
                    None => Err(format!("unknown named type '{other}'")),
                },
            },
            Some(inner) => node(inner, names),
            None => Err(format!("schema object without type: {v}")),
        },
        other => Err(format!("not an Avro schema: {other}")),
    }
}

struct Checker<'a> {
    writer_names: Names<'a>,
    reader_names: Names<'a>,
    /// (writer, reader) named-type pairs already being checked (recursion).
    seen: HashSet<(usize, usize)>,
}

impl<'a> Checker<'a> {
    fn check(&mut self, w: &'a Value, r: &'a Value, path: &str) -> Result<(), String> {
        let wn = node(w, &self.writer_names)?;
        let rn = node(r, &self.reader_names)?;
        let at = |msg: String| {
            if path.is_empty() {
                msg
            } else {
                format!("field '{path}': {msg}")
            }
        };
        match (&wn, &rn) {
            (Node::Union(wb), _) => {
                for b in wb.iter() {
                    self.check(b, r, path).map_err(|e| {
                        if matches!(rn, Node::Union(_)) {
                            e
                        } else {
                            at(format!("writer union branch is not readable: {e}"))
                        }
                    })?;
                }
                Ok(())
            }
            (_, Node::Union(rb)) => self.check_reader_union(w, &wn, rb, path).map_err(at),
            (Node::Primitive(wp, wo), Node::Primitive(rp, ro)) => {
                if !promotable(wp, rp) {
                    return Err(at(format!("type changed from {wp} to {rp}")));
                }
                check_decimal(*wo, *ro).map_err(at)
            }
            (Node::Record(wo), Node::Record(ro)) => {
                names_match(wo, ro).map_err(at)?;
                if !self
                    .seen
                    .insert((*wo as *const _ as usize, *ro as *const _ as usize))
                {
                    return Ok(());
                }
                self.check_fields(wo, ro, path)
            }
            (Node::Enum(wo), Node::Enum(ro)) => {
                names_match(wo, ro).map_err(at)?;
                check_enum(wo, ro).map_err(at)
            }
            (Node::Fixed(wo), Node::Fixed(ro)) => {
                names_match(wo, ro).map_err(at)?;
                check_fixed(wo, ro).map_err(at)
            }
            (Node::Array(wi), Node::Array(ri)) => self.check(wi, ri, &format!("{path}[]")),
            (Node::Map(wv), Node::Map(rv)) => self.check(wv, rv, &format!("{path}{{}}")),
            _ => Err(at(format!(
                "type changed from {} to {}",
                wn.describe(),
                rn.describe()
            ))),
        }
    }

    /// A writer type against a reader union: readable if some branch reads it.
    fn check_reader_union(
        &mut self,
        w: &'a Value,
        wn: &Node,
        branches: &'a [Value],
        path: &str,
    ) -> Result<(), String> {
        let mut errors = Vec::new();
        for b in branches.iter() {
            match self.check(w, b, path) {
                Ok(()) => return Ok(()),
                Err(e) => errors.push(e),
            }
        }
        let detail = errors
            .iter()
            .filter(|e| !e.ends_with("to null"))
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        Err(format!(
            "writer type {} matches no branch of the reader union{}",
            wn.describe(),
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            }
        ))
    }

    fn check_fields(
        &mut self,
        wo: &'a Map<String, Value>,
        ro: &'a Map<String, Value>,
        path: &str,
    ) -> Result<(), String> {
        let fields = |o: &'a Map<String, Value>| -> &'a [Value] {
            o.get("fields")
                .and_then(Value::as_array)
                .map_or(&[], Vec::as_slice)
        };
        let writer_fields = fields(wo);
        for rf in fields(ro) {
            let name = rf.get("name").and_then(Value::as_str).unwrap_or("?");
            let aliases: Vec<&str> = rf
                .get("aliases")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let wf = writer_fields.iter().find(|wf| {
                let wname = wf.get("name").and_then(Value::as_str).unwrap_or("");
                wname == name || aliases.contains(&wname)
            });
            let field_path = if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}.{name}")
            };
            let rt = rf.get("type").ok_or("field without type")?;
            match wf {
                Some(wf) => {
                    let wt = wf.get("type").ok_or("field without type")?;
                    self.check(wt, rt, &field_path)?;
                }
                None if rf.get("default").is_some() => {}
                None => {
                    return Err(format!(
                        "field '{field_path}' is missing from the writer schema and has no default"
                    ))
                }
            }
        }
        Ok(())
    }
}

fn promotable(writer: &str, reader: &str) -> bool {
    writer == reader
        || matches!(
            (writer, reader),
            ("int", "long" | "float" | "double")
                | ("long", "float" | "double")
                | ("float", "double")
                | ("string", "bytes")
                | ("bytes", "string")
        )
}

/// Decimal precision/scale must stay the same when both sides are decimals.
fn check_decimal(
    w: Option<&Map<String, Value>>,
    r: Option<&Map<String, Value>>,
) -> Result<(), String> {
    let decimal = |o: Option<&Map<String, Value>>| {
        o.filter(|o| o.get("logicalType").and_then(Value::as_str) == Some("decimal"))
            .map(|o| {
                (
                    o.get("precision").and_then(Value::as_u64),
                    o.get("scale").and_then(Value::as_u64).unwrap_or(0),
                )
            })
    };
    match (decimal(w), decimal(r)) {
        (Some(wd), Some(rd)) if wd != rd => Err(format!(
            "decimal changed from (precision {:?}, scale {}) to (precision {:?}, scale {})",
            wd.0, wd.1, rd.0, rd.1
        )),
        _ => Ok(()),
    }
}

/// Named types match by unqualified name, or when a reader alias names the writer type.
fn names_match(w: &Map<String, Value>, r: &Map<String, Value>) -> Result<(), String> {
    let wname = short(w);
    if wname == short(r) {
        return Ok(());
    }
    let aliased = r.get("aliases").and_then(Value::as_array).is_some_and(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .any(|alias| alias.rsplit('.').next() == Some(wname))
    });
    if aliased {
        Ok(())
    } else {
        Err(format!("name changed from {wname} to {}", short(r)))
    }
}

/// Enums: every writer symbol is a reader symbol, or the reader has a default.
fn check_enum(wo: &Map<String, Value>, ro: &Map<String, Value>) -> Result<(), String> {
    let symbols = |o: &Map<String, Value>| -> Vec<String> {
        o.get("symbols")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let reader_symbols = symbols(ro);
    let missing: Vec<String> = symbols(wo)
        .into_iter()
        .filter(|s| !reader_symbols.contains(s))
        .collect();
    if missing.is_empty() || ro.get("default").is_some() {
        Ok(())
    } else {
        Err(format!(
            "enum {} lacks symbol(s) {} and has no default",
            short(ro),
            missing.join(", ")
        ))
    }
}

/// Fixed types: the same size, and compatible decimal logical types.
fn check_fixed(wo: &Map<String, Value>, ro: &Map<String, Value>) -> Result<(), String> {
    let size = |o: &Map<String, Value>| o.get("size").and_then(Value::as_u64);
    if size(wo) != size(ro) {
        return Err(format!(
            "fixed {} size changed from {:?} to {:?}",
            short(ro),
            size(wo),
            size(ro)
        ));
    }
    check_decimal(Some(wo), Some(ro))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(json: &str) -> AvroSchema {
        AvroSchema::new(json.to_string())
    }

    fn rec(fields: &str) -> AvroSchema {
        s(&format!(
            r#"{{"type":"record","name":"R","namespace":"n","fields":[{fields}]}}"#
        ))
    }

    #[test]
    fn modes() {
        let v1 = rec(r#"{"name":"a","type":"int"}"#);
        let v2 = rec(
            r#"{"name":"a","type":"long"},{"name":"b","type":["null","string"],"default":null}"#,
        );
        assert!(compatibility(&v1, &v2, Compat::Backward).is_ok());
        let fwd = compatibility(&v1, &v2, Compat::Forward).unwrap_err();
        assert!(
            fwd.contains("field 'a': type changed from long to int"),
            "{fwd}"
        );
        assert!(compatibility(&v1, &v2, Compat::Full).is_err());
        assert!(compatibility(&v1, &v2, Compat::None).is_ok());
        // Adding a field without default: not backward, but forward.
        let v3 = rec(r#"{"name":"a","type":"int"},{"name":"c","type":"string"}"#);
        let back = compatibility(&v1, &v3, Compat::Backward).unwrap_err();
        assert!(back.contains("'c' is missing from the writer schema and has no default"));
        assert!(compatibility(&v1, &v3, Compat::Forward).is_ok());
        // Removing a field with a default: full.
        let v4 = rec(r#"{"name":"a","type":"int"},{"name":"d","type":"int","default":1}"#);
        assert!(compatibility(&v4, &v1, Compat::Full).is_ok());
        assert_eq!("full".parse::<Compat>(), Ok(Compat::Full));
        assert!("sideways".parse::<Compat>().is_err());
    }

    #[test]
    fn nested_unions_enums_fixed_and_recursion() {
        let addr = |zip: &str| {
            rec(&format!(
                r#"{{"name":"addr","type":["null",{{"type":"record","name":"A","fields":[{{"name":"zip","type":{zip}}}]}}],"default":null}},
                {{"name":"list","type":{{"type":"array","items":"A"}}}},
                {{"name":"e","type":{{"type":"enum","name":"E","symbols":["X","Y"]}}}}"#
            ))
        };
        assert!(compatibility(&addr("\"int\""), &addr("\"long\""), Compat::Backward).is_ok());
        let e = compatibility(&addr("\"string\""), &addr("\"int\""), Compat::Backward).unwrap_err();
        assert!(
            e.contains("'addr.zip'") && e.contains("string to int"),
            "{e}"
        );
        let enum_of = |symbols: &str, default: &str| {
            rec(&format!(
                r#"{{"name":"e","type":{{"type":"enum","name":"E","symbols":[{symbols}]{default}}}}}"#
            ))
        };
        let narrower = enum_of(r#""X""#, "");
        let wider = enum_of(r#""X","Y""#, "");
        assert!(can_read(&wider, &narrower).is_ok());
        assert!(can_read(&narrower, &wider)
            .unwrap_err()
            .contains("lacks symbol(s) Y"));
        assert!(can_read(&enum_of(r#""X""#, r#","default":"X""#), &wider).is_ok());
        let fixed = |n: u32| {
            rec(&format!(
                r#"{{"name":"f","type":{{"type":"fixed","name":"F","size":{n}}}}}"#
            ))
        };
        assert!(can_read(&fixed(4), &fixed(8))
            .unwrap_err()
            .contains("size changed"));
        let list =
            rec(r#"{"name":"next","type":["null","R"],"default":null},{"name":"v","type":"int"}"#);
        assert!(can_read(&list, &list).is_ok());
        let renamed = s(
            r#"{"type":"record","name":"S","aliases":["n.R"],"fields":[{"name":"w","aliases":["v"],"type":"long"}]}"#,
        );
        assert!(can_read(&renamed, &list).is_ok());
        let dec = |p: u32, sc: u32| {
            rec(&format!(
                r#"{{"name":"d","type":{{"type":"bytes","logicalType":"decimal","precision":{p},"scale":{sc}}}}}"#
            ))
        };
        assert!(can_read(&dec(10, 2), &dec(10, 2)).is_ok());
        assert!(can_read(&dec(10, 3), &dec(10, 2))
            .unwrap_err()
            .contains("decimal changed"));
        let nullable = rec(r#"{"name":"a","type":["null","int"],"default":null}"#);
        let plain = rec(r#"{"name":"a","type":"int"}"#);
        assert!(can_read(&nullable, &plain).is_ok());
        assert!(can_read(&plain, &nullable)
            .unwrap_err()
            .contains("writer union branch"));
        assert!(can_read(&s("{"), &plain).is_err());
    }
}
