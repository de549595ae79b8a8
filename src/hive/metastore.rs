//! Synchronous Hive Metastore Thrift client: connections, timeouts, retries, failover and the
//! typed [`HiveError`].
//!
//! Wire format: plain (unframed, buffered) socket transport and strict binary protocol, what a
//! default Hive metastore (`hive.metastore.sasl.enabled=false`) serves; the encoding is in
//! `calls.rs`, `codec.rs` and `wire.rs`. Calls are blocking and take `&mut self`: run them on a blocking thread from async
//! code.
//!
//! Failure handling, per call:
//! - Each attempt uses the current URI, connecting first if needed (`connect_timeout`); every
//!   socket read and write has `io_timeout`.
//! - A transport failure (refused, reset, timed out, closed) drops the connection. If that
//!   connection had already served a call (it may just be stale, e.g. after a metastore restart)
//!   the same URI is tried once more at once on a fresh connection; otherwise the client fails
//!   over to the next URI. After a round over all URIs has failed it sleeps (exponential
//!   backoff) and starts another round, `retries` times.
//! - Declared Hive exceptions and `TApplicationException`s are answers, not failures: they are
//!   returned at once and the connection is kept. Undecodable replies drop the connection and
//!   are returned at once.
//!
//! Retried calls may run twice on the server (the first attempt may have succeeded before the
//! connection broke): `create_database`/`create_table` then report `AlreadyExists`, which
//! [`MetastoreClient::ensure_database`] and [`MetastoreClient::create_table_if_missing`] treat as
//! success; `add_partitions` (ifNotExists) and `alter_table` are idempotent.

use std::fmt;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::ApplicationErrorKind;

pub use super::calls::RemoteErrorKind;
use super::calls::{Call, Reply};
pub use super::error::{HiveError, Target};
use super::model::{AddPartitionsRequest, AddPartitionsResult, Database, Partition, Table};
use super::wire::Decode;

/// The metastore's usual port.
pub const DEFAULT_PORT: u16 = 9083;

/// One metastore address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetastoreUri {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for MetastoreUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "thrift://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "thrift://{}:{}", self.host, self.port)
        }
    }
}

/// Parses `thrift://host:port[,thrift://host2:port2...]` (as in `hive.metastore.uris`); the port
/// defaults to 9083.
pub fn parse_uris(uris: &str) -> Result<Vec<MetastoreUri>, HiveError> {
    let invalid = |uri: &str, reason: &str| HiveError::InvalidUri {
        uri: uri.to_string(),
        reason: reason.to_string(),
    };
    let mut out = Vec::new();
    for part in uris.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let url = url::Url::parse(part).map_err(|e| invalid(part, &e.to_string()))?;
        if url.scheme() != "thrift" {
            return Err(invalid(part, "the scheme must be thrift://"));
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err(invalid(part, "no host")),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(invalid(part, "a metastore URI has no path or query"));
        }
        out.push(MetastoreUri {
            host,
            port: url.port().unwrap_or(DEFAULT_PORT),
        });
    }
    if out.is_empty() {
        return Err(invalid(uris, "no URI given"));
    }
    Ok(out)
}

/// Client settings; [`MetastoreConfig::new`] has the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetastoreConfig {
    /// Tried in order; the client stays on the one that answered last.
    pub uris: Vec<MetastoreUri>,
    /// TCP connect timeout per address (default 10 s).
    pub connect_timeout: Duration,
    /// Timeout of each socket read and write (default 60 s): the longest a call may wait.
    pub io_timeout: Duration,
    /// Extra rounds over all URIs after the first round failed (default 3).
    pub retries: u32,
    /// Sleep before the second round; doubled each round up to `max_backoff` (default 200 ms).
    pub initial_backoff: Duration,
    /// Default 5 s.
    pub max_backoff: Duration,
}

impl MetastoreConfig {
    pub fn new(uris: Vec<MetastoreUri>) -> Self {
        MetastoreConfig {
            uris,
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(60),
            retries: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// [`parse_uris`] plus the defaults.
    pub fn from_uris(uris: &str) -> Result<Self, HiveError> {
        Ok(MetastoreConfig::new(parse_uris(uris)?))
    }
}

/// A socket half whose timeouts read as "no answer within ..." instead of EAGAIN.
#[derive(Debug)]
struct TimedStream {
    stream: TcpStream,
    timeout: Duration,
}

impl TimedStream {
    fn map_timeout(&self, e: io::Error, what: &str) -> io::Error {
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what} timed out after {:?}", self.timeout),
            )
        } else {
            e
        }
    }
}

impl Read for TimedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream
            .read(buf)
            .map_err(|e| self.map_timeout(e, "waiting for the reply"))
    }
}

impl Write for TimedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream
            .write(buf)
            .map_err(|e| self.map_timeout(e, "sending the request"))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

struct Connection {
    uri_index: usize,
    input: TBinaryInputProtocol<BufReader<TimedStream>>,
    output: TBinaryOutputProtocol<BufWriter<TimedStream>>,
    /// Has completed at least one call (so a failure may just mean it went stale).
    used: bool,
}

/// Why one attempt failed.
enum AttemptError {
    /// The connection is unusable; another attempt may succeed.
    Transport(String),
    /// The reply could not be decoded; retrying will not help.
    Protocol(String),
}

fn connect(uri: &MetastoreUri, config: &MetastoreConfig) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = (uri.host.as_str(), uri.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", uri.host))?
        .collect();
    let mut last = format!("{} resolves to no address", uri.host);
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, config.connect_timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                last = format!(
                    "cannot connect to {addr}: no answer within {:?}",
                    config.connect_timeout
                )
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

fn open(uri_index: usize, config: &MetastoreConfig) -> Result<Connection, String> {
    let stream = connect(&config.uris[uri_index], config)?;
    let setup = |s: &TcpStream| -> io::Result<TcpStream> {
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(config.io_timeout))?;
        s.set_write_timeout(Some(config.io_timeout))?;
        s.try_clone()
    };
    let write_half = setup(&stream).map_err(|e| format!("cannot set up the socket: {e}"))?;
    let timed = |stream| TimedStream {
        stream,
        timeout: config.io_timeout,
    };
    Ok(Connection {
        uri_index,
        // strict: the reply must carry the version header (any Thrift server sends it).
        input: TBinaryInputProtocol::new(BufReader::new(timed(stream)), true),
        output: TBinaryOutputProtocol::new(BufWriter::new(timed(write_half)), true),
        used: false,
    })
}

/// A Hive Metastore client; see the module docs for its failure handling. Connects lazily.
pub struct MetastoreClient {
    config: MetastoreConfig,
    current: usize,
    conn: Option<Connection>,
    seq: i32,
}

impl fmt::Debug for MetastoreClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetastoreClient")
            .field("uris", &self.config.uris)
            .field("current", &self.current_uri().to_string())
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl MetastoreClient {
    /// A client that connects on its first call. Fails only on an empty URI list.
    pub fn new(config: MetastoreConfig) -> Result<Self, HiveError> {
        if config.uris.is_empty() {
            return Err(HiveError::InvalidUri {
                uri: String::new(),
                reason: "no URI given".into(),
            });
        }
        Ok(MetastoreClient {
            config,
            current: 0,
            conn: None,
            seq: 0,
        })
    }

    pub fn config(&self) -> &MetastoreConfig {
        &self.config
    }

    /// The URI the next call goes to first.
    pub fn current_uri(&self) -> &MetastoreUri {
        &self.config.uris[self.current]
    }

    /// Drops the connection (the next call reconnects).
    pub fn close(&mut self) {
        self.conn = None;
    }

    pub fn get_database(&mut self, name: &str) -> Result<Database, HiveError> {
        self.call_value(Call::GetDatabase { name })
    }

    pub fn create_database(&mut self, database: &Database) -> Result<(), HiveError> {
        self.call_void(Call::CreateDatabase { database })
    }

    /// Creates the database unless it exists; true when this call created it.
    pub fn ensure_database(&mut self, database: &Database) -> Result<bool, HiveError> {
        match self.get_database(&database.name) {
            Ok(_) => return Ok(false),
            Err(e) if e.is_no_such_object() => {}
            Err(e) => return Err(e),
        }
        match self.create_database(database) {
            Ok(()) => Ok(true),
            // Created concurrently, or by an attempt whose reply was lost.
            Err(e) if e.is_already_exists() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `cascade` drops the database's tables too; `delete_data` deletes managed data. Hive 2.3
    /// reports a missing database as `MetaException` (a NullPointerException in its listener),
    /// not `NoSuchObjectException`.
    pub fn drop_database(
        &mut self,
        name: &str,
        delete_data: bool,
        cascade: bool,
    ) -> Result<(), HiveError> {
        self.call_void(Call::DropDatabase {
            name,
            delete_data,
            cascade,
        })
    }

    pub fn get_table(&mut self, db: &str, table: &str) -> Result<Table, HiveError> {
        self.call_value(Call::GetTable { db, table })
    }

    /// `get_table`, with `None` for a missing table (or database).
    pub fn get_table_if_exists(
        &mut self,
        db: &str,
        table: &str,
    ) -> Result<Option<Table>, HiveError> {
        match self.get_table(db, table) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.is_no_such_object() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn create_table(&mut self, table: &Table) -> Result<(), HiveError> {
        self.call_void(Call::CreateTable { table })
    }

    /// Creates the table unless one of that name exists; true when this call created it. An
    /// existing table is left as it is (compare it with [`super::table::evolve_table`]).
    pub fn create_table_if_missing(&mut self, table: &Table) -> Result<bool, HiveError> {
        match self.create_table(table) {
            Ok(()) => Ok(true),
            Err(e) if e.is_already_exists() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Replaces the definition of `db`.`table` with `new_table` (which may rename it).
    pub fn alter_table(
        &mut self,
        db: &str,
        table: &str,
        new_table: &Table,
    ) -> Result<(), HiveError> {
        self.call_void(Call::AlterTable {
            db,
            table,
            new_table,
        })
    }

    /// Drops the table and its partitions; `delete_data` has no effect on external tables.
    pub fn drop_table(
        &mut self,
        db: &str,
        table: &str,
        delete_data: bool,
    ) -> Result<(), HiveError> {
        self.call_void(Call::DropTable {
            db,
            table,
            delete_data,
        })
    }

    /// The raw `add_partitions_req` call.
    pub fn add_partitions_req(
        &mut self,
        request: &AddPartitionsRequest,
    ) -> Result<AddPartitionsResult, HiveError> {
        self.call_value(Call::AddPartitionsReq { request })
    }

    /// Registers partitions, skipping those that exist (`ifNotExists=true`, `needResult=false`):
    /// calling it again with the same partitions is a no-op.
    pub fn add_partitions(
        &mut self,
        db: &str,
        table: &str,
        partitions: Vec<Partition>,
    ) -> Result<(), HiveError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let request = AddPartitionsRequest {
            db_name: db.to_string(),
            tbl_name: table.to_string(),
            parts: partitions,
            if_not_exists: true,
            need_result: Some(false),
        };
        self.add_partitions_req(&request).map(|_| ())
    }

    /// Partition names (`k1=v1/k2=v2`, Hive-escaped); `max_parts` -1 = all.
    pub fn get_partition_names(
        &mut self,
        db: &str,
        table: &str,
        max_parts: i16,
    ) -> Result<Vec<String>, HiveError> {
        self.call_value(Call::GetPartitionNames {
            db,
            table,
            max_parts,
        })
    }

    /// The partition of `db`.`table` with these values (in key order).
    pub fn get_partition(
        &mut self,
        db: &str,
        table: &str,
        values: &[String],
    ) -> Result<Partition, HiveError> {
        self.call_value(Call::GetPartition { db, table, values })
    }

    /// Replaces the definition of the partition with `partition`'s values (its location, ...).
    pub fn alter_partition(
        &mut self,
        db: &str,
        table: &str,
        partition: &Partition,
    ) -> Result<(), HiveError> {
        self.call_void(Call::AlterPartition {
            db,
            table,
            partition,
        })
    }

    // ------------------------------------------------------------------------------------------

    fn call_value<T: Decode>(&mut self, call: Call<'_>) -> Result<T, HiveError> {
        match self.call::<T>(call)? {
            Some(v) => Ok(v),
            // `current` is the URI that answered.
            None => Err(HiveError::Protocol {
                uri: self.current_uri().to_string(),
                call: call.name(),
                target: target(&call),
                message: "the reply has neither a result nor an exception".into(),
            }),
        }
    }

    fn call_void(&mut self, call: Call<'_>) -> Result<(), HiveError> {
        self.call::<()>(call).map(|_| ())
    }

    fn call<T: Decode>(&mut self, call: Call<'_>) -> Result<Option<T>, HiveError> {
        let n = self.config.uris.len();
        let mut attempts = 0u32;
        let mut backoff = self.config.initial_backoff;
        let mut last = None;
        for round in 0..=self.config.retries {
            if round > 0 {
                tracing::info!(
                    "Hive metastore {}: retrying in {backoff:?} (round {} of {})",
                    call.name(),
                    round + 1,
                    self.config.retries + 1
                );
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(self.config.max_backoff);
            }
            for _ in 0..n {
                let idx = self.current;
                let reused = self
                    .conn
                    .as_ref()
                    .is_some_and(|c| c.uri_index == idx && c.used);
                attempts += 1;
                let mut outcome = self.attempt::<T>(&call, idx);
                if reused && matches!(outcome, Err(AttemptError::Transport(_))) {
                    // Probably a stale connection: one more try on a fresh one, same URI.
                    outcome = self.attempt::<T>(&call, idx);
                }
                let err = match outcome {
                    Ok(reply) => return self.finish(&call, idx, reply),
                    Err(AttemptError::Protocol(message)) => {
                        return Err(self.error(&call, idx, Failure::Protocol(message)))
                    }
                    Err(AttemptError::Transport(message)) => {
                        self.error(&call, idx, Failure::Transport(message))
                    }
                };
                tracing::warn!("{err}");
                last = Some(err);
                self.current = (idx + 1) % n;
            }
        }
        let last = last
            .unwrap_or_else(|| self.error(&call, 0, Failure::Transport("no attempt made".into())));
        Err(HiveError::Unavailable {
            uris: self
                .config
                .uris
                .iter()
                .map(|u| u.to_string())
                .collect::<Vec<_>>()
                .join(","),
            call: call.name(),
            target: target(&call),
            attempts,
            last: Box::new(last),
        })
    }

    /// One request/reply exchange with URI `idx`, connecting first if needed. Any error drops
    /// the connection.
    fn attempt<T: Decode>(
        &mut self,
        call: &Call<'_>,
        idx: usize,
    ) -> Result<Reply<T>, AttemptError> {
        let mut conn = match self.conn.take() {
            Some(c) if c.uri_index == idx => c,
            _ => open(idx, &self.config).map_err(AttemptError::Transport)?,
        };
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let result = call
            .write(&mut conn.output, seq)
            .and_then(|()| call.read_reply::<T>(&mut conn.input, seq));
        match result {
            Ok(reply) => {
                conn.used = true;
                self.conn = Some(conn);
                Ok(reply)
            }
            // The connection is dropped: its stream is in an unknown state.
            Err(thrift::Error::Transport(t)) => {
                Err(AttemptError::Transport(if t.message.is_empty() {
                    format!("connection failed ({:?})", t.kind)
                } else {
                    format!("connection failed: {}", t.message)
                }))
            }
            Err(other) => Err(AttemptError::Protocol(other.to_string())),
        }
    }

    fn finish<T>(
        &mut self,
        call: &Call<'_>,
        idx: usize,
        reply: Reply<T>,
    ) -> Result<Option<T>, HiveError> {
        match reply {
            Reply::Success(v) => Ok(v),
            Reply::Declared(kind, message) => {
                Err(self.error(call, idx, Failure::Remote(kind, message)))
            }
            Reply::Application(e) => {
                Err(self.error(call, idx, Failure::Application(e.kind, e.message)))
            }
        }
    }

    fn error(&self, call: &Call<'_>, idx: usize, failure: Failure) -> HiveError {
        let uri = self.config.uris[idx].to_string();
        let (call_name, target) = (call.name(), target(call));
        match failure {
            Failure::Remote(kind, message) => HiveError::Remote {
                uri,
                call: call_name,
                target,
                kind,
                message,
            },
            Failure::Application(kind, message) => HiveError::Application {
                uri,
                call: call_name,
                target,
                kind,
                message,
            },
            Failure::Transport(message) => HiveError::Transport {
                uri,
                call: call_name,
                target,
                message,
            },
            Failure::Protocol(message) => HiveError::Protocol {
                uri,
                call: call_name,
                target,
                message,
            },
        }
    }
}

/// What went wrong in a call, before the URI and call context are added.
enum Failure {
    Remote(RemoteErrorKind, String),
    Application(ApplicationErrorKind, String),
    Transport(String),
    Protocol(String),
}

fn target(call: &Call<'_>) -> Target {
    let (database, table) = call.target();
    Target {
        database: database.map(str::to_string),
        table: table.map(str::to_string),
    }
}

#[cfg(test)]
#[path = "metastore_tests.rs"]
mod tests;
