//! Protobuf message descriptors as Arrow types, and the column builders that append decoded
//! [`DynamicMessage`]s straight into Arrow arrays (no JSON, no row structs).
//!
//! Mapping ([`Column::plan`] decides it once per reader schema; [`Column::data_type`] derives the
//! Arrow type from that plan, so schema and arrays cannot disagree):
//!
//! | protobuf | Arrow |
//! | --- | --- |
//! | message | `Struct` (top level: the columns) |
//! | `repeated T` | `List<T>` (never null; empty when absent) |
//! | `map<K, V>` | `Map<K, V>` (Arrow map, keys non-null, entry order as decoded) |
//! | `oneof` members, `optional` fields, message fields | nullable: null unless set |
//! | other proto3 scalars | their value, the type's default (0, "", false) when absent |
//! | `enum` | `Utf8`: the value's name (an unknown number as its decimal text) |
//! | `google.protobuf.Timestamp` | `Timestamp(Microsecond, "UTC")` (nanos truncated to micros) |
//! | `google.protobuf.Duration` | `Int64`: microseconds (Parquet has no duration type) |
//! | `google.protobuf.*Value` wrappers | the nullable wrapped primitive |
//! | `bytes` | `Binary` |
//! | `int32`/`sint32`/`sfixed32`, `int64`/..., `uint32`/`fixed32`, `uint64`/`fixed64` | `Int32`, `Int64`, `UInt32`, `UInt64` |
//! | `float`, `double`, `bool`, `string` | `Float32`, `Float64`, `Boolean`, `Utf8` |
//! | a message nested in itself (recursion, e.g. `google.protobuf.Struct`) | `Binary`: the protobuf encoding of that sub-message |
//!
//! Every field is nullable in the Arrow schema except map keys (Arrow requires them non-null).

use std::sync::Arc;

use arrow::array::{Array, ListArray, NullBufferBuilder};
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder,
    Int64Builder, MapArray, StringBuilder, StructArray, TimestampMicrosecondBuilder, UInt32Builder,
    UInt64Builder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use prost::Message;
use prost_reflect::{
    DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value,
};

/// One Arrow column being built from protobuf values, shaped by the descriptor.
pub enum Column {
    Bool(BooleanBuilder),
    I32(Int32Builder),
    I64(Int64Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Str(StringBuilder),
    Bin(BinaryBuilder),
    Enum(EnumDescriptor, StringBuilder),
    /// `google.protobuf.Timestamp`.
    Timestamp(TimestampMicrosecondBuilder),
    /// `google.protobuf.Duration`, in microseconds.
    Duration(Int64Builder),
    /// `google.protobuf.*Value`: field 1 of the wrapper, null when the wrapper is absent.
    Wrapper(Box<Column>),
    /// A recursive message: its protobuf encoding.
    Encoded(BinaryBuilder),
    Struct(StructColumn),
    List {
        item: FieldRef,
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        child: Box<Column>,
    },
    Map {
        entries: FieldRef,
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        key: Box<Column>,
        value: Box<Column>,
    },
}

/// A message's fields as columns.
pub struct StructColumn {
    fields: Vec<(FieldDescriptor, Field, Column)>,
    nulls: NullBufferBuilder,
}

/// Why a descriptor cannot be mapped (a message without fields: Arrow/Parquet have no empty
/// struct).
pub type PlanError = String;

impl StructColumn {
    /// The columns of `message`'s fields; `stack` holds the messages being planned (recursion).
    pub fn plan(message: &MessageDescriptor) -> Result<Self, PlanError> {
        Self::plan_in(message, &mut vec![message.full_name().to_string()])
    }

    fn plan_in(message: &MessageDescriptor, stack: &mut Vec<String>) -> Result<Self, PlanError> {
        let mut fields = Vec::new();
        for fd in message.fields() {
            let column = Column::plan(&fd, stack)?;
            let field = Field::new(fd.name(), column.data_type(), true);
            fields.push((fd, field, column));
        }
        Ok(StructColumn {
            fields,
            nulls: NullBufferBuilder::new(0),
        })
    }

    /// The Arrow fields of the message (the output schema for the top-level message).
    pub fn arrow_fields(&self) -> Fields {
        self.fields.iter().map(|(_, f, _)| f.clone()).collect()
    }

    /// The Arrow schema of the top-level message.
    pub fn schema(&self) -> Schema {
        Schema::new(self.arrow_fields())
    }

    /// Appends one message (`None`: a null struct, every child null).
    pub fn append(&mut self, message: Option<&DynamicMessage>) {
        match message {
            Some(m) => {
                for (fd, _, column) in &mut self.fields {
                    if fd.supports_presence() && !m.has_field(fd) {
                        column.append(None);
                    } else {
                        column.append(Some(&m.get_field(fd)));
                    }
                }
                self.nulls.append_non_null();
            }
            None => {
                for (_, _, column) in &mut self.fields {
                    column.append(None);
                }
                self.nulls.append_null();
            }
        }
    }

    fn finish_array(&mut self) -> Result<StructArray, ArrowError> {
        let fields = self.arrow_fields();
        let len = self.nulls.len();
        let arrays = self
            .fields
            .iter_mut()
            .map(|(_, _, c)| c.finish())
            .collect::<Result<Vec<_>, _>>()?;
        let nulls = self.nulls.finish();
        if fields.is_empty() {
            return Ok(StructArray::new_empty_fields(len, nulls));
        }
        StructArray::try_new(fields, arrays, nulls)
    }

    /// The rows appended since the last call as a batch of `schema` (top-level use).
    pub fn finish_batch(
        &mut self,
        schema: &arrow::datatypes::SchemaRef,
    ) -> Result<RecordBatch, ArrowError> {
        let array = self.finish_array()?;
        let rows = array.len();
        let (_, columns, _) = array.into_parts();
        RecordBatch::try_new_with_options(
            schema.clone(),
            columns,
            &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows)),
        )
    }
}

fn is_wrapper(name: &str) -> bool {
    matches!(
        name,
        "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

impl Column {
    /// The column of field `fd` (its cardinality included).
    fn plan(fd: &FieldDescriptor, stack: &mut Vec<String>) -> Result<Column, PlanError> {
        if fd.is_map() {
            let Kind::Message(entry) = fd.kind() else {
                return Err(format!("map field {} has no entry message", fd.full_name()));
            };
            let key = Column::of_kind(&entry.map_entry_key_field().kind(), stack)?;
            let value = Column::of_kind(&entry.map_entry_value_field().kind(), stack)?;
            let entry_fields = Fields::from(vec![
                Field::new("key", key.data_type(), false),
                Field::new("value", value.data_type(), true),
            ]);
            return Ok(Column::Map {
                entries: Arc::new(Field::new("entries", DataType::Struct(entry_fields), false)),
                offsets: vec![0],
                nulls: NullBufferBuilder::new(0),
                key: Box::new(key),
                value: Box::new(value),
            });
        }
        let column = Column::of_kind(&fd.kind(), stack)?;
        if fd.is_list() {
            return Ok(Column::List {
                item: Arc::new(Field::new("item", column.data_type(), true)),
                offsets: vec![0],
                nulls: NullBufferBuilder::new(0),
                child: Box::new(column),
            });
        }
        Ok(column)
    }

    /// The column of one value of `kind`.
    fn of_kind(kind: &Kind, stack: &mut Vec<String>) -> Result<Column, PlanError> {
        Ok(match kind {
            Kind::Double => Column::F64(Float64Builder::new()),
            Kind::Float => Column::F32(Float32Builder::new()),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Column::I32(Int32Builder::new()),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Column::I64(Int64Builder::new()),
            Kind::Uint32 | Kind::Fixed32 => Column::U32(UInt32Builder::new()),
            Kind::Uint64 | Kind::Fixed64 => Column::U64(UInt64Builder::new()),
            Kind::Bool => Column::Bool(BooleanBuilder::new()),
            Kind::String => Column::Str(StringBuilder::new()),
            Kind::Bytes => Column::Bin(BinaryBuilder::new()),
            Kind::Enum(e) => Column::Enum(e.clone(), StringBuilder::new()),
            Kind::Message(m) => Column::of_message(m, stack)?,
        })
    }

    fn of_message(m: &MessageDescriptor, stack: &mut Vec<String>) -> Result<Column, PlanError> {
        let name = m.full_name();
        if name == "google.protobuf.Timestamp" {
            return Ok(Column::Timestamp(
                TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            ));
        }
        if name == "google.protobuf.Duration" {
            return Ok(Column::Duration(Int64Builder::new()));
        }
        if is_wrapper(name) {
            let inner = m
                .get_field(1)
                .ok_or_else(|| format!("wrapper {name} has no field 1"))?;
            return Ok(Column::Wrapper(Box::new(Column::of_kind(
                &inner.kind(),
                stack,
            )?)));
        }
        if stack.iter().any(|s| s == name) {
            return Ok(Column::Encoded(BinaryBuilder::new()));
        }
        stack.push(name.to_string());
        let planned = StructColumn::plan_in(m, stack);
        stack.pop();
        Ok(Column::Struct(planned?))
    }

    /// The Arrow type of this column.
    pub fn data_type(&self) -> DataType {
        match self {
            Column::Bool(_) => DataType::Boolean,
            Column::I32(_) => DataType::Int32,
            Column::I64(_) | Column::Duration(_) => DataType::Int64,
            Column::U32(_) => DataType::UInt32,
            Column::U64(_) => DataType::UInt64,
            Column::F32(_) => DataType::Float32,
            Column::F64(_) => DataType::Float64,
            Column::Str(_) | Column::Enum(..) => DataType::Utf8,
            Column::Bin(_) | Column::Encoded(_) => DataType::Binary,
            Column::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Column::Wrapper(inner) => inner.data_type(),
            Column::Struct(s) => DataType::Struct(s.arrow_fields()),
            Column::List { item, .. } => DataType::List(item.clone()),
            Column::Map { entries, .. } => DataType::Map(entries.clone(), false),
        }
    }

    /// Appends one value (`None`: null). A value of another kind than planned (impossible for a
    /// message decoded with the planned descriptor) is appended as null.
    pub fn append(&mut self, value: Option<&Value>) {
        macro_rules! scalar {
            ($b:expr, $variant:ident) => {
                match value {
                    Some(Value::$variant(v)) => $b.append_value(*v),
                    _ => $b.append_null(),
                }
            };
        }
        match self {
            Column::Bool(b) => scalar!(b, Bool),
            Column::I32(b) => scalar!(b, I32),
            Column::I64(b) => scalar!(b, I64),
            Column::U32(b) => scalar!(b, U32),
            Column::U64(b) => scalar!(b, U64),
            Column::F32(b) => scalar!(b, F32),
            Column::F64(b) => scalar!(b, F64),
            Column::Str(b) => match value {
                Some(Value::String(s)) => b.append_value(s),
                _ => b.append_null(),
            },
            Column::Bin(b) => match value {
                Some(Value::Bytes(v)) => b.append_value(v),
                _ => b.append_null(),
            },
            Column::Enum(e, b) => match value {
                Some(Value::EnumNumber(n)) => match e.get_value(*n) {
                    Some(v) => b.append_value(v.name()),
                    None => b.append_value(n.to_string()),
                },
                _ => b.append_null(),
            },
            Column::Timestamp(b) => b.append_option(message_of(value).and_then(micros)),
            Column::Duration(b) => b.append_option(message_of(value).and_then(micros)),
            Column::Wrapper(inner) => match message_of(value) {
                Some(m) => inner.append(m.get_field_by_number(1).as_deref()),
                None => inner.append(None),
            },
            Column::Encoded(b) => match message_of(value) {
                Some(m) => b.append_value(m.encode_to_vec()),
                None => b.append_null(),
            },
            Column::Struct(s) => s.append(message_of(value)),
            Column::List {
                offsets,
                nulls,
                child,
                ..
            } => append_list(offsets, nulls, child, value),
            Column::Map {
                offsets,
                nulls,
                key,
                value: values,
                ..
            } => append_map(offsets, nulls, key, values, value),
        }
    }

    /// The values appended since the last call, as an array; the builder starts over.
    pub fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Column::Bool(b) => Arc::new(b.finish()),
            Column::I32(b) => Arc::new(b.finish()),
            Column::I64(b) | Column::Duration(b) => Arc::new(b.finish()),
            Column::U32(b) => Arc::new(b.finish()),
            Column::U64(b) => Arc::new(b.finish()),
            Column::F32(b) => Arc::new(b.finish()),
            Column::F64(b) => Arc::new(b.finish()),
            Column::Str(b) | Column::Enum(_, b) => Arc::new(b.finish()),
            Column::Bin(b) | Column::Encoded(b) => Arc::new(b.finish()),
            Column::Timestamp(b) => Arc::new(b.finish()),
            Column::Wrapper(inner) => inner.finish()?,
            Column::Struct(s) => Arc::new(s.finish_array()?),
            Column::List {
                item,
                offsets,
                nulls,
                child,
            } => {
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                Arc::new(ListArray::try_new(
                    item.clone(),
                    offsets,
                    child.finish()?,
                    nulls.finish(),
                )?)
            }
            Column::Map {
                entries,
                offsets,
                nulls,
                key,
                value,
            } => {
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                let DataType::Struct(fields) = entries.data_type() else {
                    unreachable!("map entries are planned as a struct")
                };
                let kv = StructArray::try_new(
                    fields.clone(),
                    vec![key.finish()?, value.finish()?],
                    None,
                )?;
                Arc::new(MapArray::try_new(
                    entries.clone(),
                    offsets,
                    kv,
                    nulls.finish(),
                    false,
                )?)
            }
        })
    }
}

fn message_of(value: Option<&Value>) -> Option<&DynamicMessage> {
    match value {
        Some(Value::Message(m)) => Some(m),
        _ => None,
    }
}

/// `seconds` (field 1) and `nanos` (field 2) of a Timestamp or Duration, in microseconds.
fn micros(m: &DynamicMessage) -> Option<i64> {
    let seconds = m.get_field_by_number(1).and_then(|v| v.as_i64())?;
    let nanos = m.get_field_by_number(2).and_then(|v| v.as_i32())?;
    seconds
        .checked_mul(1_000_000)?
        .checked_add(i64::from(nanos) / 1_000)
}

fn next_offset(offsets: &[i32], added: usize) -> i32 {
    let last = *offsets.last().unwrap_or(&0);
    last + i32::try_from(added).expect("fewer than 2^31 list items per batch")
}

fn append_list(
    offsets: &mut Vec<i32>,
    nulls: &mut NullBufferBuilder,
    child: &mut Column,
    value: Option<&Value>,
) {
    match value {
        Some(Value::List(items)) => {
            for item in items {
                child.append(Some(item));
            }
            offsets.push(next_offset(offsets, items.len()));
            nulls.append_non_null();
        }
        _ => {
            offsets.push(next_offset(offsets, 0));
            nulls.append_null();
        }
    }
}

fn append_map(
    offsets: &mut Vec<i32>,
    nulls: &mut NullBufferBuilder,
    keys: &mut Column,
    values: &mut Column,
    value: Option<&Value>,
) {
    match value {
        Some(Value::Map(map)) => {
            for (k, v) in map {
                keys.append(Some(&key_value(k)));
                values.append(Some(v));
            }
            offsets.push(next_offset(offsets, map.len()));
            nulls.append_non_null();
        }
        _ => {
            offsets.push(next_offset(offsets, 0));
            nulls.append_null();
        }
    }
}

fn key_value(k: &MapKey) -> Value {
    match k {
        MapKey::Bool(b) => Value::Bool(*b),
        MapKey::I32(v) => Value::I32(*v),
        MapKey::I64(v) => Value::I64(*v),
        MapKey::U32(v) => Value::U32(*v),
        MapKey::U64(v) => Value::U64(*v),
        MapKey::String(s) => Value::String(s.clone()),
    }
}
