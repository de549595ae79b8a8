//! [`HiveError`]: what can go wrong talking to the metastore, with the context (URI, call,
//! database/table) a user needs, and who has to act on it ([`HiveError::origin`]).

use std::fmt;

use thrift::ApplicationErrorKind;

use super::calls::RemoteErrorKind;
use crate::Origin;

/// The database and table a call was about, for error messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub database: Option<String>,
    pub table: Option<String>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.database, &self.table) {
            (Some(db), Some(t)) => write!(f, " of table `{db}`.`{t}`"),
            (Some(db), None) => write!(f, " of database `{db}`"),
            (None, Some(t)) => write!(f, " of table `{t}`"),
            (None, None) => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HiveError {
    #[error("invalid Hive metastore URI {uri:?}: {reason} (expected thrift://host:port[,thrift://host2:port])")]
    InvalidUri { uri: String, reason: String },
    #[error("Hive metastore {uri}: {call}{target} failed with {}: {message}", .kind.java_name())]
    Remote {
        uri: String,
        call: &'static str,
        target: Target,
        kind: RemoteErrorKind,
        message: String,
    },
    #[error("Hive metastore {uri}: {call}{target} failed with TApplicationException ({kind:?}): {message}")]
    Application {
        uri: String,
        call: &'static str,
        target: Target,
        kind: ApplicationErrorKind,
        message: String,
    },
    #[error("Hive metastore {uri}: {call}{target}: {message}")]
    Transport {
        uri: String,
        call: &'static str,
        target: Target,
        message: String,
    },
    #[error("Hive metastore {uri}: {call}{target}: malformed reply ({message}); is it a Hive metastore serving unframed transport and binary protocol?")]
    Protocol {
        uri: String,
        call: &'static str,
        target: Target,
        message: String,
    },
    #[error("Hive metastore unavailable: {call}{target} failed {attempts} times over {uris}; last error: {last}")]
    Unavailable {
        uris: String,
        call: &'static str,
        target: Target,
        attempts: u32,
        last: Box<HiveError>,
    },
}

impl HiveError {
    /// Who has to act: a bad URI or a Hive "no such object / already exists / invalid" answer is
    /// the user's (config, names, schema); an unreachable or failing metastore is external; a
    /// request the server could not parse is ours.
    pub fn origin(&self) -> Origin {
        match self {
            HiveError::InvalidUri { .. } => Origin::User,
            HiveError::Remote { kind, .. } => match kind {
                RemoteErrorKind::Meta => Origin::External,
                _ => Origin::User,
            },
            HiveError::Application { kind, .. } => match kind {
                ApplicationErrorKind::ProtocolError
                | ApplicationErrorKind::InvalidMessageType
                | ApplicationErrorKind::WrongMethodName
                | ApplicationErrorKind::BadSequenceId => Origin::Internal,
                _ => Origin::External,
            },
            HiveError::Transport { .. } | HiveError::Protocol { .. } => Origin::External,
            HiveError::Unavailable { last, .. } => last.origin(),
        }
    }

    /// The declared Hive exception this error carries, if any.
    pub fn remote_kind(&self) -> Option<RemoteErrorKind> {
        match self {
            HiveError::Remote { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    pub fn is_no_such_object(&self) -> bool {
        self.remote_kind() == Some(RemoteErrorKind::NoSuchObject)
    }

    pub fn is_already_exists(&self) -> bool {
        self.remote_kind() == Some(RemoteErrorKind::AlreadyExists)
    }
}
