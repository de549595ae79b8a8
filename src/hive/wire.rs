//! Thrift binary-protocol building blocks for the metastore codec: the `Encode`/`Decode`
//! traits, field writers that skip absent optional values, container readers that check element
//! types and sizes, and a skip of unknown values that never requires UTF-8.

use std::collections::BTreeMap;

use thrift::protocol::{
    TFieldIdentifier, TInputProtocol, TListIdentifier, TMapIdentifier, TOutputProtocol,
    TStructIdentifier, TType,
};
use thrift::{ProtocolError, ProtocolErrorKind};

pub(super) trait Encode {
    fn encode(&self, o: &mut dyn TOutputProtocol) -> thrift::Result<()>;
}

pub(super) trait Decode: Sized {
    /// The wire type this value has as a field.
    const TTYPE: TType;
    fn decode(i: &mut dyn TInputProtocol) -> thrift::Result<Self>;
}

pub(super) fn invalid(message: impl Into<String>) -> thrift::Error {
    thrift::Error::Protocol(ProtocolError::new(ProtocolErrorKind::InvalidData, message))
}

pub(super) fn len_i32(len: usize) -> thrift::Result<i32> {
    i32::try_from(len).map_err(|_| invalid(format!("collection of {len} elements is too large")))
}

pub(super) fn size_usize(size: i32) -> thrift::Result<usize> {
    usize::try_from(size).map_err(|_| invalid(format!("negative collection size {size}")))
}

// ----------------------------------------------------------------------------------------------
// Writing
// ----------------------------------------------------------------------------------------------

pub(super) fn begin(o: &mut dyn TOutputProtocol, ty: TType, id: i16) -> thrift::Result<()> {
    o.write_field_begin(&TFieldIdentifier::new::<Option<String>, String, i16>(
        None, ty, id,
    ))
}

pub(super) fn w_string(o: &mut dyn TOutputProtocol, id: i16, v: &str) -> thrift::Result<()> {
    begin(o, TType::String, id)?;
    o.write_string(v)?;
    o.write_field_end()
}

pub(super) fn w_opt_string(
    o: &mut dyn TOutputProtocol,
    id: i16,
    v: &Option<String>,
) -> thrift::Result<()> {
    match v {
        Some(v) => w_string(o, id, v),
        None => Ok(()),
    }
}

pub(super) fn w_i32(o: &mut dyn TOutputProtocol, id: i16, v: i32) -> thrift::Result<()> {
    begin(o, TType::I32, id)?;
    o.write_i32(v)?;
    o.write_field_end()
}

pub(super) fn w_i16(o: &mut dyn TOutputProtocol, id: i16, v: i16) -> thrift::Result<()> {
    begin(o, TType::I16, id)?;
    o.write_i16(v)?;
    o.write_field_end()
}

pub(super) fn w_bool(o: &mut dyn TOutputProtocol, id: i16, v: bool) -> thrift::Result<()> {
    begin(o, TType::Bool, id)?;
    o.write_bool(v)?;
    o.write_field_end()
}

pub(super) fn w_opt_bool(
    o: &mut dyn TOutputProtocol,
    id: i16,
    v: Option<bool>,
) -> thrift::Result<()> {
    match v {
        Some(v) => w_bool(o, id, v),
        None => Ok(()),
    }
}

pub(super) fn w_struct(o: &mut dyn TOutputProtocol, id: i16, v: &dyn Encode) -> thrift::Result<()> {
    begin(o, TType::Struct, id)?;
    v.encode(o)?;
    o.write_field_end()
}

pub(super) fn w_opt_struct<T: Encode>(
    o: &mut dyn TOutputProtocol,
    id: i16,
    v: &Option<T>,
) -> thrift::Result<()> {
    match v {
        Some(v) => w_struct(o, id, v),
        None => Ok(()),
    }
}

pub(super) fn w_string_list(
    o: &mut dyn TOutputProtocol,
    id: i16,
    v: &[String],
) -> thrift::Result<()> {
    begin(o, TType::List, id)?;
    o.write_list_begin(&TListIdentifier::new(TType::String, len_i32(v.len())?))?;
    for s in v {
        o.write_string(s)?;
    }
    o.write_list_end()?;
    o.write_field_end()
}

pub(super) fn w_struct_list<T: Encode>(
    o: &mut dyn TOutputProtocol,
    id: i16,
    v: &[T],
) -> thrift::Result<()> {
    begin(o, TType::List, id)?;
    o.write_list_begin(&TListIdentifier::new(TType::Struct, len_i32(v.len())?))?;
    for s in v {
        s.encode(o)?;
    }
    o.write_list_end()?;
    o.write_field_end()
}

pub(super) fn w_string_map(
    o: &mut dyn TOutputProtocol,
    id: i16,
    v: &BTreeMap<String, String>,
) -> thrift::Result<()> {
    begin(o, TType::Map, id)?;
    o.write_map_begin(&TMapIdentifier::new(
        TType::String,
        TType::String,
        len_i32(v.len())?,
    ))?;
    for (k, val) in v {
        o.write_string(k)?;
        o.write_string(val)?;
    }
    o.write_map_end()?;
    o.write_field_end()
}

/// Writes a struct: begin, the fields `body` writes, stop, end.
pub(super) fn w_body(
    o: &mut dyn TOutputProtocol,
    name: &str,
    body: impl FnOnce(&mut dyn TOutputProtocol) -> thrift::Result<()>,
) -> thrift::Result<()> {
    o.write_struct_begin(&TStructIdentifier::new(name))?;
    body(o)?;
    o.write_field_stop()?;
    o.write_struct_end()
}

// ----------------------------------------------------------------------------------------------
// Reading
// ----------------------------------------------------------------------------------------------

/// Reads a struct, handing each field to `field`; a field it does not take (returns false) is
/// skipped, whatever its type.
pub(super) fn read_struct(
    i: &mut dyn TInputProtocol,
    mut field: impl FnMut(&mut dyn TInputProtocol, i16, TType) -> thrift::Result<bool>,
) -> thrift::Result<()> {
    i.read_struct_begin()?;
    loop {
        let ident = i.read_field_begin()?;
        if ident.field_type == TType::Stop {
            break;
        }
        let id = ident.id.unwrap_or(i16::MIN);
        if !field(i, id, ident.field_type)? {
            skip(i, ident.field_type, MAX_SKIP_DEPTH)?;
        }
        i.read_field_end()?;
    }
    i.read_struct_end()
}

/// Nesting limit when skipping unknown values.
pub(super) const MAX_SKIP_DEPTH: u8 = 64;

/// Skips a value of type `ty`. Unlike `TInputProtocol::skip`, a string is skipped as bytes: an
/// unknown `binary` field need not be UTF-8.
pub(super) fn skip(i: &mut dyn TInputProtocol, ty: TType, depth: u8) -> thrift::Result<()> {
    let depth = depth
        .checked_sub(1)
        .ok_or_else(|| invalid("values nested too deeply"))?;
    match ty {
        TType::Bool => i.read_bool().map(drop),
        TType::I08 => i.read_i8().map(drop),
        TType::I16 => i.read_i16().map(drop),
        TType::I32 => i.read_i32().map(drop),
        TType::I64 => i.read_i64().map(drop),
        TType::Double => i.read_double().map(drop),
        TType::String => i.read_bytes().map(drop),
        TType::Struct => {
            i.read_struct_begin()?;
            loop {
                let ident = i.read_field_begin()?;
                if ident.field_type == TType::Stop {
                    break;
                }
                skip(i, ident.field_type, depth)?;
                i.read_field_end()?;
            }
            i.read_struct_end()
        }
        TType::List => {
            let ident = i.read_list_begin()?;
            for _ in 0..size_usize(ident.size)? {
                skip(i, ident.element_type, depth)?;
            }
            i.read_list_end()
        }
        TType::Set => {
            let ident = i.read_set_begin()?;
            for _ in 0..size_usize(ident.size)? {
                skip(i, ident.element_type, depth)?;
            }
            i.read_set_end()
        }
        TType::Map => {
            let ident = i.read_map_begin()?;
            let n = size_usize(ident.size)?;
            if n > 0 {
                let (Some(k), Some(v)) = (ident.key_type, ident.value_type) else {
                    return Err(invalid("map without key or value type"));
                };
                for _ in 0..n {
                    skip(i, k, depth)?;
                    skip(i, v, depth)?;
                }
            }
            i.read_map_end()
        }
        other => Err(invalid(format!("cannot skip a value of type {other:?}"))),
    }
}

pub(super) fn r_list<T: Decode>(i: &mut dyn TInputProtocol) -> thrift::Result<Vec<T>> {
    let ident = i.read_list_begin()?;
    let n = size_usize(ident.size)?;
    if n > 0 && ident.element_type != T::TTYPE {
        return Err(invalid(format!(
            "list of {:?}, expected {:?}",
            ident.element_type,
            T::TTYPE
        )));
    }
    // No `with_capacity(n)`: the size comes from the wire.
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(T::decode(i)?);
    }
    i.read_list_end()?;
    Ok(out)
}

pub(super) fn r_string_map(i: &mut dyn TInputProtocol) -> thrift::Result<BTreeMap<String, String>> {
    let ident = i.read_map_begin()?;
    let n = size_usize(ident.size)?;
    if n > 0 && (ident.key_type != Some(TType::String) || ident.value_type != Some(TType::String)) {
        return Err(invalid(format!(
            "map<{:?},{:?}>, expected map<string,string>",
            ident.key_type, ident.value_type
        )));
    }
    let mut out = BTreeMap::new();
    for _ in 0..n {
        let k = i.read_string()?;
        let v = i.read_string()?;
        out.insert(k, v);
    }
    i.read_map_end()?;
    Ok(out)
}

impl Decode for String {
    const TTYPE: TType = TType::String;
    fn decode(i: &mut dyn TInputProtocol) -> thrift::Result<Self> {
        i.read_string()
    }
}

impl<T: Decode> Decode for Vec<T> {
    const TTYPE: TType = TType::List;
    fn decode(i: &mut dyn TInputProtocol) -> thrift::Result<Self> {
        r_list(i)
    }
}

/// The "result" of a `void` call: it has no field 0.
impl Decode for () {
    const TTYPE: TType = TType::Void;
    fn decode(_: &mut dyn TInputProtocol) -> thrift::Result<Self> {
        Ok(())
    }
}
