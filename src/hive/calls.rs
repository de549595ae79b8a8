//! The metastore calls StreamX makes: their names, argument structs and declared exceptions,
//! writing a request message and decoding its reply (result struct with field 0 = success and
//! one field per declared exception, or a `TApplicationException`).

use thrift::protocol::{TInputProtocol, TMessageIdentifier, TMessageType, TOutputProtocol, TType};
use thrift::ApplicationError;

use super::model::{AddPartitionsRequest, Database, Partition, Table};
use super::wire::{
    invalid, read_struct, w_body, w_bool, w_i16, w_string, w_string_list, w_struct, Decode,
};

/// The exceptions `hive_metastore.thrift` declares for the calls StreamX makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteErrorKind {
    AlreadyExists,
    NoSuchObject,
    InvalidObject,
    InvalidOperation,
    Meta,
}

impl RemoteErrorKind {
    /// The Java class name, as Hive users know it from logs.
    pub fn java_name(self) -> &'static str {
        match self {
            RemoteErrorKind::AlreadyExists => "AlreadyExistsException",
            RemoteErrorKind::NoSuchObject => "NoSuchObjectException",
            RemoteErrorKind::InvalidObject => "InvalidObjectException",
            RemoteErrorKind::InvalidOperation => "InvalidOperationException",
            RemoteErrorKind::Meta => "MetaException",
        }
    }
}

/// What a reply carried, once fully read (the connection is still in sync in every case).
#[derive(Debug)]
pub(crate) enum Reply<T> {
    /// Field 0 (None for `void` calls).
    Success(Option<T>),
    /// One of the call's declared exceptions.
    Declared(RemoteErrorKind, String),
    /// A `TApplicationException` (unknown method, internal server error, ...).
    Application(ApplicationError),
}

// ----------------------------------------------------------------------------------------------
// Calls
// ----------------------------------------------------------------------------------------------

/// The arguments of one metastore call; knows its name, argument struct and declared exceptions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Call<'a> {
    GetDatabase {
        name: &'a str,
    },
    CreateDatabase {
        database: &'a Database,
    },
    DropDatabase {
        name: &'a str,
        delete_data: bool,
        cascade: bool,
    },
    GetTable {
        db: &'a str,
        table: &'a str,
    },
    CreateTable {
        table: &'a Table,
    },
    AlterTable {
        db: &'a str,
        table: &'a str,
        new_table: &'a Table,
    },
    DropTable {
        db: &'a str,
        table: &'a str,
        delete_data: bool,
    },
    AddPartitionsReq {
        request: &'a AddPartitionsRequest,
    },
    GetPartitionNames {
        db: &'a str,
        table: &'a str,
        max_parts: i16,
    },
    GetPartition {
        db: &'a str,
        table: &'a str,
        values: &'a [String],
    },
    AlterPartition {
        db: &'a str,
        table: &'a str,
        partition: &'a Partition,
    },
}

use RemoteErrorKind::{AlreadyExists, InvalidObject, InvalidOperation, Meta, NoSuchObject};

impl Call<'_> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Call::GetDatabase { .. } => "get_database",
            Call::CreateDatabase { .. } => "create_database",
            Call::DropDatabase { .. } => "drop_database",
            Call::GetTable { .. } => "get_table",
            Call::CreateTable { .. } => "create_table",
            Call::AlterTable { .. } => "alter_table",
            Call::DropTable { .. } => "drop_table",
            Call::AddPartitionsReq { .. } => "add_partitions_req",
            Call::GetPartitionNames { .. } => "get_partition_names",
            Call::GetPartition { .. } => "get_partition",
            Call::AlterPartition { .. } => "alter_partition",
        }
    }

    /// (database, table) the call is about, for error messages.
    pub(crate) fn target(&self) -> (Option<&str>, Option<&str>) {
        match *self {
            Call::GetDatabase { name } | Call::DropDatabase { name, .. } => (Some(name), None),
            Call::CreateDatabase { database } => (Some(&database.name), None),
            Call::GetTable { db, table }
            | Call::AlterTable { db, table, .. }
            | Call::DropTable { db, table, .. }
            | Call::GetPartitionNames { db, table, .. }
            | Call::GetPartition { db, table, .. }
            | Call::AlterPartition { db, table, .. } => (Some(db), Some(table)),
            Call::CreateTable { table } => (Some(&table.db_name), Some(&table.table_name)),
            Call::AddPartitionsReq { request } => (Some(&request.db_name), Some(&request.tbl_name)),
        }
    }

    /// Field id -> exception of the call's result struct.
    fn exceptions(&self) -> &'static [(i16, RemoteErrorKind)] {
        match self {
            Call::GetDatabase { .. } => &[(1, NoSuchObject), (2, Meta)],
            Call::CreateDatabase { .. } => &[(1, AlreadyExists), (2, InvalidObject), (3, Meta)],
            Call::DropDatabase { .. } => &[(1, NoSuchObject), (2, InvalidOperation), (3, Meta)],
            Call::GetTable { .. } => &[(1, Meta), (2, NoSuchObject)],
            Call::CreateTable { .. } => &[
                (1, AlreadyExists),
                (2, InvalidObject),
                (3, Meta),
                (4, NoSuchObject),
            ],
            Call::AlterTable { .. } => &[(1, InvalidOperation), (2, Meta)],
            Call::DropTable { .. } => &[(1, NoSuchObject), (2, Meta)],
            Call::AddPartitionsReq { .. } => &[(1, InvalidObject), (2, AlreadyExists), (3, Meta)],
            // Hive 2.3 declares only MetaException (as field 1) here.
            Call::GetPartitionNames { .. } => &[(1, Meta)],
            Call::GetPartition { .. } => &[(1, Meta), (2, NoSuchObject)],
            Call::AlterPartition { .. } => &[(1, InvalidOperation), (2, Meta)],
        }
    }

    fn encode_args(&self, o: &mut dyn TOutputProtocol) -> thrift::Result<()> {
        w_body(o, "args", |o| match *self {
            Call::GetDatabase { name } => w_string(o, 1, name),
            Call::CreateDatabase { database } => w_struct(o, 1, database),
            Call::DropDatabase {
                name,
                delete_data,
                cascade,
            } => {
                w_string(o, 1, name)?;
                w_bool(o, 2, delete_data)?;
                w_bool(o, 3, cascade)
            }
            Call::GetTable { db, table } => {
                w_string(o, 1, db)?;
                w_string(o, 2, table)
            }
            Call::CreateTable { table } => w_struct(o, 1, table),
            Call::AlterTable {
                db,
                table,
                new_table,
            } => {
                w_string(o, 1, db)?;
                w_string(o, 2, table)?;
                w_struct(o, 3, new_table)
            }
            Call::DropTable {
                db,
                table,
                delete_data,
            } => {
                w_string(o, 1, db)?;
                w_string(o, 2, table)?;
                w_bool(o, 3, delete_data)
            }
            Call::AddPartitionsReq { request } => w_struct(o, 1, request),
            Call::GetPartitionNames {
                db,
                table,
                max_parts,
            } => {
                w_string(o, 1, db)?;
                w_string(o, 2, table)?;
                w_i16(o, 3, max_parts)
            }
            Call::GetPartition { db, table, values } => {
                w_string(o, 1, db)?;
                w_string(o, 2, table)?;
                w_string_list(o, 3, values)
            }
            Call::AlterPartition {
                db,
                table,
                partition,
            } => {
                w_string(o, 1, db)?;
                w_string(o, 2, table)?;
                w_struct(o, 3, partition)
            }
        })
    }

    /// Writes the whole request message and flushes it.
    pub(crate) fn write(&self, o: &mut dyn TOutputProtocol, seq: i32) -> thrift::Result<()> {
        o.write_message_begin(&TMessageIdentifier::new(
            self.name(),
            TMessageType::Call,
            seq,
        ))?;
        self.encode_args(o)?;
        o.write_message_end()?;
        o.flush()
    }

    /// Reads the reply message to this call (sent with sequence number `seq`). `T` is the type
    /// of field 0, `()` for `void` calls. An `Err` means the stream is out of sync (transport or
    /// protocol error); every `Ok` leaves it ready for the next call.
    pub(crate) fn read_reply<T: Decode>(
        &self,
        i: &mut dyn TInputProtocol,
        seq: i32,
    ) -> thrift::Result<Reply<T>> {
        let ident = i.read_message_begin()?;
        if ident.name != self.name() {
            return Err(invalid(format!(
                "reply to `{}` while waiting for `{}`",
                ident.name,
                self.name()
            )));
        }
        if ident.sequence_number != seq {
            return Err(invalid(format!(
                "reply with sequence number {} while waiting for {seq}",
                ident.sequence_number
            )));
        }
        let reply = match ident.message_type {
            TMessageType::Reply => self.read_result(i)?,
            TMessageType::Exception => {
                Reply::Application(thrift::Error::read_application_error_from_in_protocol(i)?)
            }
            other => return Err(invalid(format!("unexpected message type {other}"))),
        };
        i.read_message_end()?;
        Ok(reply)
    }

    fn read_result<T: Decode>(&self, i: &mut dyn TInputProtocol) -> thrift::Result<Reply<T>> {
        let exceptions = self.exceptions();
        let mut success = None;
        let mut declared = None;
        read_struct(i, |i, id, ty| {
            if id == 0 && ty == T::TTYPE && T::TTYPE != TType::Void {
                success = Some(T::decode(i)?);
                return Ok(true);
            }
            if ty != TType::Struct {
                return Ok(false);
            }
            let Some(&(_, kind)) = exceptions.iter().find(|(eid, _)| *eid == id) else {
                return Ok(false);
            };
            let mut message = String::new();
            read_struct(i, |i, id, ty| {
                if (id, ty) == (1, TType::String) {
                    message = i.read_string()?;
                    return Ok(true);
                }
                Ok(false)
            })?;
            declared = Some((kind, message));
            Ok(true)
        })?;
        Ok(match declared {
            Some((kind, message)) => Reply::Declared(kind, message),
            None => Reply::Success(success),
        })
    }
}

#[cfg(test)]
#[path = "calls_tests.rs"]
mod tests;
