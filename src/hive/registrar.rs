//! [`Registrar`]: registers committed partitions in the Hive Metastore, after the commit and off
//! the ingest thread (DESIGN.md invariant 7).
//!
//! ```text
//!  commit ──► CommitListener::committed ──► pending set (per topic: dirs + newest schema)
//!                                                │  (wakes)
//!  start ──► catch-up: dirs with committed files in the store ──┘
//!                                                ▼
//!            background thread "streamx-hive": database if missing ─► EXTERNAL table if missing
//!            ─► alter table when the schema grew ─► add_partitions_req(ifNotExists)
//!                 └─ metastore unreachable: everything stays pending, retry with backoff
//! ```
//!
//! `committed` only merges into the pending set under a mutex and returns: writing never waits
//! for the metastore. Every step is idempotent, so a batch that failed half-way is simply tried
//! again; a process that dies with work pending loses nothing either, because the next start's
//! catch-up registers every directory with committed files that the metastore lacks.
//!
//! Errors the user has to fix (an invalid name, a column type Hive cannot hold, a table someone
//! else defined differently) are logged and that batch is dropped instead of retried forever; the
//! next start retries it. Unreachable or failing metastores are retried until they answer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;

use super::catchup::{CatchUpError, StoreScan};
use super::config::HiveConfig;
use super::metastore::MetastoreClient;
use super::model::{Database, Table};
use super::table::{
    build_partition, build_table, evolve_table, evolve_table_appending, PartitionKey, TableSpec,
};
use super::{HiveError, RemoteErrorKind, TableError};
use crate::config::{Config, TopicSelection};
use crate::sink::{CommitInfo, CommitListener};
use crate::store::Store;
use crate::Origin;

/// Partitions per `add_partitions_req` call.
const ADD_BATCH: usize = 500;
/// First pause after a failed attempt; doubled up to `hive.retry.backoff.max.ms`.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);

/// One failed registration step.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    Metastore(#[from] HiveError),
    #[error("Hive table `{table}`: {source}")]
    Table { table: String, source: TableError },
    #[error(transparent)]
    Store(#[from] CatchUpError),
    #[error("Hive table `{table}`: cannot create it for topic '{topic}': no schema yet (no commit schema and no Parquet or Avro file in {dir:?})")]
    NoSchema {
        table: String,
        topic: String,
        dir: String,
    },
}

impl RegisterError {
    pub fn origin(&self) -> Origin {
        match self {
            RegisterError::Metastore(e) => e.origin(),
            RegisterError::Table { source, .. } => source.origin(),
            RegisterError::Store(_) => Origin::External,
            RegisterError::NoSchema { .. } => Origin::Internal,
        }
    }

    /// The metastore lacks a database or table (dropped while StreamX had it cached).
    fn missing_object(&self) -> bool {
        matches!(
            self,
            RegisterError::Metastore(e) if matches!(
                e.remote_kind(),
                Some(RemoteErrorKind::NoSuchObject | RemoteErrorKind::InvalidObject)
            )
        )
    }

    /// Worth another attempt: the metastore or the store may answer later, and a directory
    /// named by a commit that is not published yet gets its files when the partition recovers.
    fn retryable(&self) -> bool {
        matches!(self, RegisterError::NoSchema { .. }) || self.origin() == Origin::External
    }
}

/// What is waiting to be registered for one topic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicWork {
    /// Partition directories relative to `<topics.dir>/<topic>`.
    pub dirs: BTreeSet<String>,
    /// The newest schema a commit reported; `None` for catch-up work (taken from the files).
    pub schema: Option<SchemaRef>,
}

/// The pending set. Bound: one entry per distinct directory, however many commits write to
/// it, so while the metastore is down it grows by the directories written meanwhile (an hourly
/// rule: one per hour and topic), not by commits or records. Nothing is ever dropped for space:
/// a dropped entry would be a partition missing until the next start's catch-up.
#[derive(Debug, Default)]
pub struct Pending {
    topics: BTreeMap<String, TopicWork>,
}

impl Pending {
    /// Adds newer work: directories are merged, a newer schema replaces the older one.
    pub fn add(&mut self, topic: &str, work: TopicWork) {
        let entry = self.topics.entry(topic.to_string()).or_default();
        entry.dirs.extend(work.dirs);
        if work.schema.is_some() {
            entry.schema = work.schema;
        }
    }

    /// Puts back work that failed: its directories are merged, but a schema that arrived while
    /// it was being tried is newer and stays.
    pub fn restore(&mut self, topic: &str, work: TopicWork) {
        let entry = self.topics.entry(topic.to_string()).or_default();
        entry.dirs.extend(work.dirs);
        if entry.schema.is_none() {
            entry.schema = work.schema;
        }
    }

    pub fn take(&mut self) -> BTreeMap<String, TopicWork> {
        std::mem::take(&mut self.topics)
    }

    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// Directories waiting, over all topics.
    pub fn dirs(&self) -> usize {
        self.topics.values().map(|w| w.dirs.len()).sum()
    }

    /// Distinct directories of this set and `other` together.
    pub fn dirs_with(&self, other: &Pending) -> usize {
        let extra: usize = other
            .topics
            .iter()
            .map(|(topic, w)| match self.topics.get(topic) {
                Some(mine) => w.dirs.difference(&mine.dirs).count(),
                None => w.dirs.len(),
            })
            .sum();
        self.dirs() + extra
    }
}

/// Exponential backoff between failed attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    /// Failed attempts in a row.
    pub failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.min(max);
        Backoff {
            initial,
            max,
            next: initial,
            failures: 0,
        }
    }

    /// The pause before the next attempt after one more failure.
    pub fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.max);
        self.failures += 1;
        pause
    }

    pub fn succeeded(&mut self) {
        self.next = self.initial;
        self.failures = 0;
    }
}

struct State {
    pending: Pending,
    /// Catch-up still to do (at start; again after it failed).
    catch_up: bool,
    /// What the worker took and is registering (back in `pending` if it fails).
    in_flight: Pending,
    /// Set by [`Registrar::shutdown`]: finish by then.
    stop_by: Option<Instant>,
    finished: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic on the worker cannot leave the set half-updated (merges are single calls).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Registers commits in the metastore from a background thread; see the module docs.
pub struct Registrar {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl CommitListener for Registrar {
    fn committed(&self, info: CommitInfo) {
        if info.dirs.is_empty() {
            // A commit of skipped records only: no files, nothing to register.
            return;
        }
        let work = TopicWork {
            dirs: info.dirs.into_iter().collect(),
            schema: info.schema,
        };
        self.shared.lock().pending.add(&info.topic, work);
        self.shared.wake.notify_all();
    }
}

impl crate::metrics::Level for Registrar {
    fn level(&self) -> u64 {
        self.pending_dirs() as u64
    }
}

impl Registrar {
    /// Starts the background thread, which first registers what the store already holds for
    /// the configured topics (catch-up), then every commit it is told about.
    pub fn start(
        config: &Config,
        hive: HiveConfig,
        store: Store,
        runtime: tokio::runtime::Handle,
    ) -> Result<Arc<Registrar>, std::io::Error> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: Pending::default(),
                catch_up: true,
                in_flight: Pending::default(),
                stop_by: None,
                finished: false,
            }),
            wake: Condvar::new(),
        });
        let worker = Worker {
            shared: shared.clone(),
            backoff: Backoff::new(INITIAL_BACKOFF, hive.max_backoff),
            client: MetastoreClient::new(hive.metastore.clone())
                .map_err(|e| std::io::Error::other(e.to_string()))?,
            hive,
            store_url: config.store_url.clone(),
            topics_dir: config.topics_dir.clone(),
            topics: config.topics.clone(),
            scan: StoreScan::new(store, &config.topics_dir),
            runtime,
            tables: HashMap::new(),
            databases: BTreeSet::new(),
        };
        let handle = std::thread::Builder::new()
            .name("streamx-hive".into())
            .spawn(move || worker.run())?;
        Ok(Arc::new(Registrar {
            shared,
            worker: Mutex::new(Some(handle)),
        }))
    }

    /// Directories waiting to be registered (queued or being tried).
    pub fn pending_dirs(&self) -> usize {
        let state = self.shared.lock();
        state.pending.dirs_with(&state.in_flight)
    }

    /// Asks the thread to register what is pending and stop, waiting at most `deadline`.
    /// Returns the directories still pending (registered by the next start's catch-up).
    pub fn shutdown(&self, deadline: Duration) -> usize {
        let stop_by = Instant::now() + deadline;
        let mut state = self.shared.lock();
        state.stop_by = Some(stop_by);
        self.shared.wake.notify_all();
        while !state.finished {
            let now = Instant::now();
            if now >= stop_by {
                break;
            }
            state = self
                .shared
                .wake
                .wait_timeout(state, stop_by - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let left = state.pending.dirs_with(&state.in_flight);
        let finished = state.finished;
        drop(state);
        if finished {
            let handle = self
                .worker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(h) = handle {
                let _ = h.join();
            }
        }
        if left > 0 || !finished {
            tracing::warn!(
                pending_dirs = left,
                "Hive registration did not finish before shutdown; the next start registers the rest"
            );
        }
        left
    }
}

/// A table as last seen in (or written to) the metastore, and the schema last compared with it.
struct KnownTable {
    table: Table,
    schema: Option<SchemaRef>,
}

struct Worker {
    shared: Arc<Shared>,
    backoff: Backoff,
    client: MetastoreClient,
    hive: HiveConfig,
    store_url: String,
    topics_dir: String,
    topics: TopicSelection,
    scan: StoreScan,
    runtime: tokio::runtime::Handle,
    /// By table name.
    tables: HashMap<String, KnownTable>,
    databases: BTreeSet<String>,
}

enum Step {
    CatchUp,
    Register(BTreeMap<String, TopicWork>),
    Stop,
}

impl Worker {
    fn run(mut self) {
        let mut retry_at: Option<Instant> = None;
        loop {
            let step = self.next_step(retry_at);
            let ok = match step {
                Step::Stop => break,
                Step::CatchUp => self.catch_up(),
                Step::Register(work) => self.register_all(work),
            };
            if ok {
                if self.backoff.failures > 0 {
                    tracing::info!(
                        after_failures = self.backoff.failures,
                        "Hive metastore registration works again"
                    );
                }
                self.backoff.succeeded();
                retry_at = None;
            } else {
                retry_at = Some(Instant::now() + self.backoff.failed());
            }
        }
        self.shared.lock().finished = true;
        self.shared.wake.notify_all();
    }

    /// Waits until there is something to do and no backoff pause runs.
    fn next_step(&self, retry_at: Option<Instant>) -> Step {
        let mut state = self.shared.lock();
        loop {
            let now = Instant::now();
            let stop_now = state
                .stop_by
                .is_some_and(|t| now >= t || (state.pending.is_empty() && !state.catch_up));
            if stop_now {
                return Step::Stop;
            }
            let mut wake_at = state.stop_by;
            match retry_at {
                Some(t) if t > now => wake_at = Some(wake_at.map_or(t, |s| s.min(t))),
                _ if state.catch_up => {
                    state.catch_up = false;
                    return Step::CatchUp;
                }
                _ if !state.pending.is_empty() => {
                    let work = state.pending.take();
                    for (topic, w) in &work {
                        state.in_flight.add(topic, w.clone());
                    }
                    return Step::Register(work);
                }
                _ => {}
            }
            state = match wake_at {
                Some(t) => {
                    self.shared
                        .wake
                        .wait_timeout(state, t.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }

    /// Queues every directory with committed files of the job's topics.
    fn catch_up(&mut self) -> bool {
        let result = self.runtime.block_on(async {
            let topics = match &self.topics {
                TopicSelection::List(list) => list.clone(),
                TopicSelection::Regex(pattern) => match regex::Regex::new(pattern) {
                    Ok(re) => {
                        let all = self.scan.topics().await?;
                        all.into_iter().filter(|t| re.is_match(t)).collect()
                    }
                    Err(e) => {
                        // Config validation rejects such a pattern; never match every topic.
                        tracing::error!(key = "topics.regex", pattern, error = %e, "Hive catch-up skipped: not a valid regular expression");
                        Vec::new()
                    }
                },
            };
            let mut found = Vec::new();
            for topic in topics {
                let dirs = self.scan.committed_dirs(&topic).await?;
                found.push((topic, dirs));
            }
            Ok::<_, CatchUpError>(found)
        });
        match result {
            Ok(found) => {
                let total: usize = found.iter().map(|(_, d)| d.len()).sum();
                tracing::info!(
                    topics = found.len(),
                    dirs = total,
                    "Hive catch-up: registering the partitions found in the store"
                );
                let mut state = self.shared.lock();
                for (topic, dirs) in found {
                    if !dirs.is_empty() {
                        state.pending.add(&topic, TopicWork { dirs, schema: None });
                    }
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "Hive catch-up cannot read the store; retrying");
                self.shared.lock().catch_up = true;
                false
            }
        }
    }

    /// Registers every topic's work; failed retryable work goes back into the pending set.
    fn register_all(&mut self, work: BTreeMap<String, TopicWork>) -> bool {
        let mut ok = true;
        let mut failed = Vec::new();
        for (topic, w) in work {
            let mut result = self.register(&topic, &w);
            if matches!(&result, Err(e) if e.missing_object()) {
                // Dropped behind our back since we cached it: look everything up again, once.
                self.databases.clear();
                result = self.register(&topic, &w);
            }
            match result {
                Ok(added) => {
                    tracing::debug!(%topic, dirs = added, "registered in the Hive metastore")
                }
                Err(e) if e.retryable() => {
                    if ok {
                        tracing::warn!(%topic, error = %e, retry_failures = self.backoff.failures + 1, "Hive registration failed; files stay committed, partitions stay pending and are retried");
                    }
                    ok = false;
                    self.tables.remove(&self.hive.table_for(&topic));
                    self.client.close();
                    failed.push((topic, w));
                }
                Err(e) => {
                    tracing::error!(%topic, error = %e, origin = %e.origin(), dirs = w.dirs.len(), "cannot register these partitions in the Hive metastore; skipped until the next start");
                    self.tables.remove(&self.hive.table_for(&topic));
                }
            }
        }
        let mut state = self.shared.lock();
        for (topic, w) in failed {
            state.pending.restore(&topic, w);
        }
        state.in_flight.take();
        ok
    }

    /// Alters `table` so it holds `schema`. A metastore that refuses changed column types (by
    /// default every change but primitive widening: a struct that gained a field) gets the new
    /// columns only; the columns that keep their old type are logged (their new nested fields
    /// are in the files, not in the table). An evolution that cannot be made at all is logged
    /// and the table kept: its partitions are still worth adding.
    fn evolve(
        &mut self,
        db: &str,
        table_name: &str,
        table: &mut Table,
        schema: &SchemaRef,
    ) -> Result<(), RegisterError> {
        let altered = match evolve_table(table, schema) {
            Ok(Some(altered)) => altered,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::error!(table = %table_name, error = %e, "Hive table not evolved");
                return Ok(());
            }
        };
        match self.client.alter_table(db, table_name, &altered) {
            Ok(()) => {
                tracing::info!(table = %table_name, columns = altered.columns().len(), "Hive table schema evolved");
                *table = altered;
                return Ok(());
            }
            Err(e) if e.remote_kind() == Some(RemoteErrorKind::InvalidOperation) => {
                tracing::warn!(table = %table_name, error = %e, "the metastore refuses changed column types; adding new columns only")
            }
            Err(e) => return Err(e.into()),
        }
        let (appended, kept) = match evolve_table_appending(table, schema) {
            Ok(evolved) => evolved,
            Err(e) => {
                tracing::error!(table = %table_name, error = %e, "Hive table not evolved");
                return Ok(());
            }
        };
        if !kept.is_empty() {
            tracing::warn!(table = %table_name, columns = ?kept, "these columns keep their Hive type: their new nested fields are in the files but not in the table (set hive.metastore.disallow.incompatible.col.type.changes=false on the metastore to allow it)");
        }
        if let Some(appended) = appended {
            self.client.alter_table(db, table_name, &appended)?;
            tracing::info!(table = %table_name, columns = appended.columns().len(), "Hive table schema evolved (new columns)");
            *table = appended;
        }
        Ok(())
    }

    /// Makes sure the table exists and holds `work.schema`, then adds the partitions. Returns
    /// how many directories were sent.
    fn register(&mut self, topic: &str, work: &TopicWork) -> Result<usize, RegisterError> {
        if work.dirs.is_empty() {
            // The partition keys of a new table come from a directory.
            return Ok(0);
        }
        let table_name = self.hive.table_for(topic);
        let table_err = |source| RegisterError::Table {
            table: table_name.clone(),
            source,
        };
        let db = self.hive.database.clone();
        if !self.databases.contains(&db) {
            self.client.ensure_database(&Database::new(&db))?;
            self.databases.insert(db.clone());
        }
        let known = match self.tables.remove(&table_name) {
            Some(k) => k,
            None => match self.client.get_table_if_exists(&db, &table_name)? {
                Some(table) => KnownTable {
                    table,
                    schema: None,
                },
                None => self.create_table(topic, &table_name, work)?,
            },
        };
        let mut known = known;
        if let Some(schema) = &work.schema {
            if known.schema.as_ref() != Some(schema) {
                self.evolve(&db, &table_name, &mut known.table, schema)?;
                known.schema = Some(schema.clone());
            }
        }
        let location = self
            .hive
            .location_for(&self.store_url, &self.topics_dir, topic)
            .map_err(table_err)?;
        let mut partitions = Vec::with_capacity(work.dirs.len());
        for dir in &work.dirs {
            match partition_values(&known.table, dir) {
                Ok(values) if values.is_empty() => {}
                Ok(values) => {
                    let mut p = build_partition(&known.table, &values).map_err(table_err)?;
                    // Exactly the directory the files are in (key names keep their case there).
                    if let Some(sd) = p.sd.as_mut() {
                        sd.location = Some(format!("{location}/{dir}"));
                    }
                    partitions.push(p);
                }
                Err(why) => {
                    tracing::error!(table = %table_name, %topic, dir, why, "directory not registered")
                }
            }
        }
        let sent = partitions.len();
        let mut rest = partitions;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(ADD_BATCH));
            self.client.add_partitions(&db, &table_name, rest)?;
            rest = tail;
        }
        self.tables.insert(table_name, known);
        Ok(sent)
    }

    fn create_table(
        &mut self,
        topic: &str,
        table_name: &str,
        work: &TopicWork,
    ) -> Result<KnownTable, RegisterError> {
        let table_err = |source| RegisterError::Table {
            table: table_name.to_string(),
            source,
        };
        let first_dir = work.dirs.iter().next().cloned().unwrap_or_default();
        let schema = match &work.schema {
            Some(s) => s.clone(),
            None => self
                .runtime
                .block_on(self.scan.table_schema(topic, &first_dir, &self.hive.format))?
                .ok_or_else(|| RegisterError::NoSchema {
                    table: table_name.to_string(),
                    topic: topic.to_string(),
                    dir: first_dir.clone(),
                })?,
        };
        let partition_keys = first_dir
            .split('/')
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.split_once('=').map(|(k, _)| PartitionKey::string(k)))
            .collect();
        let spec = TableSpec {
            database: self.hive.database.clone(),
            table: table_name.to_string(),
            location: self
                .hive
                .location_for(&self.store_url, &self.topics_dir, topic)
                .map_err(table_err)?,
            partition_keys,
            format: self.hive.format.clone(),
            owner: Some("streamx".into()),
            parameters: self.hive.table_properties.clone(),
        };
        let table = build_table(&spec, &schema).map_err(table_err)?;
        let created = self.client.create_table_if_missing(&table)?;
        if created {
            tracing::info!(table = %format!("{}.{table_name}", spec.database), location = %spec.location, "Hive table created");
            return Ok(KnownTable {
                table,
                schema: Some(schema),
            });
        }
        // Created concurrently (another process): use theirs.
        Ok(KnownTable {
            table: self.client.get_table(&spec.database, table_name)?,
            schema: None,
        })
    }
}

/// The partition values of directory `dir` (`k1=v1/k2=v2`, Hive-escaped) for `table`, whose
/// partition keys it must name in order.
pub fn partition_values(table: &Table, dir: &str) -> Result<Vec<String>, String> {
    let segments: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() != table.partition_keys.len() {
        return Err(format!(
            "{} directory level(s) but the table has {} partition key(s)",
            segments.len(),
            table.partition_keys.len()
        ));
    }
    let mut values = Vec::with_capacity(segments.len());
    for (segment, key) in segments.iter().zip(&table.partition_keys) {
        let Some((name, value)) = segment.split_once('=') else {
            return Err(format!("level {segment:?} is not name=value"));
        };
        let name = crate::partition::escape::unescape(name);
        if !name.eq_ignore_ascii_case(&key.name) {
            return Err(format!(
                "level {segment:?} where the table has key `{}`",
                key.name
            ));
        }
        values.push(crate::partition::escape::unescape(value));
    }
    Ok(values)
}

#[cfg(test)]
#[path = "registrar_tests.rs"]
mod tests;
