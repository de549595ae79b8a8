//! Thrift encoding of the metastore objects in `model.rs`: a hand-written, minimal subset of
//! `hive_metastore.thrift` (Hive 2.3), so no generated code for the whole IDL is needed.
//!
//! Field ids and types were checked against the `metaDataMap` of the generated classes in
//! hive-metastore-2.3.10.jar. Unknown fields, and known ids with an unexpected wire type, are
//! skipped as generated Thrift code does. Optional values that are `None` are not sent.

use thrift::protocol::{TInputProtocol, TOutputProtocol, TType};

use super::model::{
    AddPartitionsRequest, AddPartitionsResult, Database, FieldSchema, Order, Partition, SerDeInfo,
    StorageDescriptor, Table,
};
use super::wire::{
    r_list, r_string_map, read_struct, w_body, w_bool, w_i32, w_opt_bool, w_opt_string,
    w_opt_struct, w_string, w_string_list, w_string_map, w_struct_list, Decode, Encode,
};

// ----------------------------------------------------------------------------------------------
// Structs (ids: hive_metastore.thrift, Hive 2.3)
// ----------------------------------------------------------------------------------------------

impl Encode for FieldSchema {
    fn encode(&self, o: &mut dyn TOutputProtocol) -> thrift::Result<()> {
        w_body(o, "FieldSchema", |o| {
            w_string(o, 1, &self.name)?;
            w_string(o, 2, &self.type_name)?;
            w_opt_string(o, 3, &self.comment)
        })
    }
}

impl Decode for FieldSchema {
    const TTYPE: TType = TType::Struct;
    fn decode(i: &mut dyn TInputProtocol) -> thrift::Result<Self> {
        let mut v = FieldSchema::default();
        read_struct(i, |i, id, ty| {
            match (id, ty) {
                (1, TType::String) => v.name = i.read_string()?,
                (2, TType::String) => v.type_name = i.read_string()?,
                (3, TType::String) => v.comment = Some(i.read_string()?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(v)
    }
}

impl Encode for SerDeInfo {
    fn encode(&self, o: &mut dyn TOutputProtocol) -> thrift::Result<()> {
        w_body(o, "SerDeInfo", |o| {
            w_opt_string(o, 1, &self.name)?;
            w_opt_string(o, 2, &self.serialization_lib)?;
            w_string_map(o, 3, &self.parameters)
        })
    }
}

impl Decode for SerDeInfo {
    const TTYPE: TType = TType::Struct;
    fn decode(i: &mut dyn TInputProtocol) -> thrift::Result<Self> {
        let mut v = SerDeInfo::default();
        read_struct(i, |i, id, ty| {
            match (id, ty) {
                (1, TType::String) => v.name = Some(i.read_string()?),
                (2, TType::String) => v.serialization_lib = Some(i.read_string()?),
                (3, TType::Map) => v.parameters = r_string_map(i)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(v)
    }
}

impl Encode for Order {
    fn encode(&self, o: &mut dyn TOutputProtocol) -> thrift::Result<()> {
        w_body(o, "Order", |o| {
            w_string(o, 1, &self.col)?;
            w_i32(o, 2, self.order)
        })
    }
}

impl Decode for Order {
    const TTYPE: TType = TType::Struct;
    fn decode(i: &mut dyn TInputProtocol) -> thrift::Result<Self> {
        let mut v = Order::default();
        read_struct(i, |i, id, ty| {
            match (id, ty) {
                (1, TType::String) => v.col = i.read_string()?,
                (2, TType::I32) => v.order = i.read_i32()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(v)
    }
}

impl Encode for StorageDescriptor {
    fn encode(&self, o: &mut dyn TOutputProtocol) -> thrift::Result<()> {
        w_body(o, "StorageDescriptor", |o| {
            w_struct_list(o, 1, &self.cols)?;
            w_opt_string(o, 2, &self.location)?;
            w_opt_string(o, 3, &self.input_format)?;
            w_opt_string(o, 4, &self.output_format)?;
            w_bool(o, 5, self.compressed)?;
            w_i32(o, 6, self.num_buckets)?;
            w_opt_struct(o, 7, &self.serde_info)?;
            w_string_list(o, 8, &self.bucket_cols)?;
            w_struct_list(o, 9, &self.sort_cols)?;
            w_string_map(o, 10, &self.parameters)?;
            // 11: skewedInfo (not modelled)
            w_opt_bool(o, 12, self.stored_as_sub_directories)
        })
    }
}

impl Decode for StorageDescriptor {
    const TTYPE: TType = TType::Struct;
    fn decode(i: &mut dyn TInputProtocol) -> thrift::Result<Self> {
        let mut v = StorageDescriptor::default();
        read_struct(i, |i, id, ty| {
            match (id, ty) {
                (1, TType::List) => v.cols = r_list(i)?,
                (2, TType::String) => v.location = Some(i.read_string()?),
                (3, TType::String) => v.input_format = Some(i.read_string()?),
                (4, TType::String) => v.output_format = Some(i.read_string()?),
                (5, TType::Bool) => v.compressed = i.read_bool()?,
                (6, TType::I32) => v.num_buckets = i.read_i32()?,
                (7, TType::Struct) => v.serde_info = Some(SerDeInfo::decode(i)?),
                (8, TType::List) => v.bucket_cols = r_list(i)?,
                (9, TType::List) => v.sort_cols = r_list(i)?,
                (10, TType::Map) => v.parameters = r_string_map(i)?,
                (12, TType::Bool) => v.stored_as_sub_directories = Some(i.read_bool()?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(v)
    }
}

impl Encode for Table {
    fn encode(&self, o: &mut dyn TOutputProtocol) -> thrift::Result<()> {
        w_body(o, "Table", |o| {
            w_string(o, 1, &self.table_name)?;
            w_string(o, 2, &self.db_name)?;
            w_opt_string(o, 3, &self.owner)?;
            w_i32(o, 4, self.create_time)?;
            w_i32(o, 5, self.last_access_time)?;
            w_i32(o, 6, self.retention)?;
            w_opt_struct(o, 7, &self.sd)?;
            w_struct_list(o, 8, &self.partition_keys)?;
            w_string_map(o, 9, &self.parameters)?;
            w_opt_string(o, 10, &self.view_original_text)?;
            w_opt_string(o, 11, &self.view_expanded_text)?;
            w_opt_string(o, 12, &self.table_type)?;
            // 13: privileges (not modelled)
            w_opt_bool(o, 14, self.temporary)?;
            w_opt_bool(o, 15, self.rewrite_enabled)
        })
    }
}

impl Decode for Table {
    const TTYPE: TType = TType::Struct;
    fn decode(i: &mut dyn TInputProtocol) -> thrift::Result<Self> {
        let mut v = Table::default();
        read_struct(i, |i, id, ty| {
            match (id, ty) {
                (1, TType::String) => v.table_name = i.read_string()?,
                (2, TType::String) => v.db_name = i.read_string()?,
                (3, TType::String) => v.owner = Some(i.read_string()?),
                (4, TType::I32) => v.create_time = i.read_i32()?,
                (5, TType::I32) => v.last_access_time = i.read_i32()?,
                (6, TType::I32) => v.retention = i.read_i32()?,
                (7, TType::Struct) => v.sd = Some(StorageDescriptor::decode(i)?),
                (8, TType::List) => v.partition_keys = r_list(i)?,
                (9, TType::Map) => v.parameters = r_string_map(i)?,
                (10, TType::String) => v.view_original_text = Some(i.read_string()?),
                (11, TType::String) => v.view_expanded_text = Some(i.read_string()?),
                (12, TType::String) => v.table_type = Some(i.read_string()?),
                (14, TType::Bool) => v.temporary = Some(i.read_bool()?),
                (15, TType::Bool) => v.rewrite_enabled = Some(i.read_bool()?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(v)
    }
}

impl Encode for Database {
    fn encode(&self, o: &mut dyn TOutputProtocol) -> thrift::Result<()> {
        w_body(o, "Database", |o| {
            w_string(o, 1, &self.name)?;
            w_opt_string(o, 2, &self.description)?;
            w_opt_string(o, 3, &self.location_uri)?;
            w_string_map(o, 4, &self.parameters)?;
            // 5: privileges (not modelled)
            w_opt_string(o, 6, &self.owner_name)?;
            if let Some(t) = self.owner_type {
                w_i32(o, 7, t)?;
            }
            Ok(())
        })
    }
}

impl Decode for Database {
    const TTYPE: TType = TType::Struct;
    fn decode(i: &mut dyn TInputProtocol) -> thrift::Result<Self> {
        let mut v = Database::default();
        read_struct(i, |i, id, ty| {
            match (id, ty) {
                (1, TType::String) => v.name = i.read_string()?,
                (2, TType::String) => v.description = Some(i.read_string()?),
                (3, TType::String) => v.location_uri = Some(i.read_string()?),
                (4, TType::Map) => v.parameters = r_string_map(i)?,
                (6, TType::String) => v.owner_name = Some(i.read_string()?),
                (7, TType::I32) => v.owner_type = Some(i.read_i32()?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(v)
    }
}

impl Encode for Partition {
    fn encode(&self, o: &mut dyn TOutputProtocol) -> thrift::Result<()> {
        w_body(o, "Partition", |o| {
            w_string_list(o, 1, &self.values)?;
            w_string(o, 2, &self.db_name)?;
            w_string(o, 3, &self.table_name)?;
            w_i32(o, 4, self.create_time)?;
            w_i32(o, 5, self.last_access_time)?;
            w_opt_struct(o, 6, &self.sd)?;
            w_string_map(o, 7, &self.parameters)
        })
    }
}

impl Decode for Partition {
    const TTYPE: TType = TType::Struct;
    fn decode(i: &mut dyn TInputProtocol) -> thrift::Result<Self> {
        let mut v = Partition::default();
        read_struct(i, |i, id, ty| {
            match (id, ty) {
                (1, TType::List) => v.values = r_list(i)?,
                (2, TType::String) => v.db_name = i.read_string()?,
                (3, TType::String) => v.table_name = i.read_string()?,
                (4, TType::I32) => v.create_time = i.read_i32()?,
                (5, TType::I32) => v.last_access_time = i.read_i32()?,
                (6, TType::Struct) => v.sd = Some(StorageDescriptor::decode(i)?),
                (7, TType::Map) => v.parameters = r_string_map(i)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(v)
    }
}

impl Encode for AddPartitionsRequest {
    fn encode(&self, o: &mut dyn TOutputProtocol) -> thrift::Result<()> {
        w_body(o, "AddPartitionsRequest", |o| {
            w_string(o, 1, &self.db_name)?;
            w_string(o, 2, &self.tbl_name)?;
            w_struct_list(o, 3, &self.parts)?;
            w_bool(o, 4, self.if_not_exists)?;
            w_opt_bool(o, 5, self.need_result)
        })
    }
}

impl Decode for AddPartitionsResult {
    const TTYPE: TType = TType::Struct;
    fn decode(i: &mut dyn TInputProtocol) -> thrift::Result<Self> {
        let mut v = AddPartitionsResult::default();
        read_struct(i, |i, id, ty| {
            match (id, ty) {
                (1, TType::List) => v.partitions = Some(r_list(i)?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(v)
    }
}
