//! The durable job registry: job configs and target states in `config.storage.topic`, one
//! partition, `cleanup.policy=compact`, Kafka Connect's record shapes:
//!
//! | key | value |
//! |---|---|
//! | `connector-<name>` | `{"properties": {...}}`, or a tombstone (deleted) |
//! | `target-state-<name>` | `{"state": "STARTED"|"PAUSED", "state.v2": "STARTED"|"PAUSED"|"STOPPED"}` |
//! | `restart-connector-<name>` | `{"include-tasks": true, "only-failed": bool}`: restart the job's tasks |
//! | `streamx-barrier-<uuid>` | a tombstone: the read-your-write barrier below |
//!
//! A restart record is an event, not state: every worker that reads it once it is caught up
//! (past the barrier it wrote when it opened the topic) restarts the job's tasks it runs, so a
//! restart asked of any worker restarts the job on all of them, as in Kafka Connect. Restart
//! records read while catching up are history: a starting worker starts every job anyway.
//!
//! With `status.storage.topic`, every worker publishes `status-worker-<worker id>` there: its
//! tasks' states per job and the wall time of publication (a tombstone when it stops); the
//! follower reads that topic too, so `/status` can show every worker's tasks.
//!
//! One follower thread consumes the topic from the beginning, for as long as the worker runs,
//! folding records into a [`Registry`] (latest value per key wins, so the topic works as a plain
//! log on a broker that does not compact) and calling `on_change` after each batch that changed
//! it, and for each restart record ([`Change`]). Nothing is handed on before the topic has been
//! read to its end (the barrier this worker wrote when it opened the topic, below): the first
//! registry the worker acts on is the whole topic's, never a prefix of it, in which a job
//! deleted later would still exist or a replaced config would still be current.
//!
//! A write produces its records, waits for the broker's acknowledgement, then produces a barrier
//! record with a fresh id and waits until the follower has read it back: everything before the
//! barrier, our write included, is then in the registry. High watermarks are not used, because
//! tansu's memory store reports them below the real end (shared/notes/connect-rest.md).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::source::oauth::AuthContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use serde_json::{json, Value};

use super::config::WorkerConfig;

const CONNECTOR: &str = "connector-";
const TARGET: &str = "target-state-";
const BARRIER: &str = "streamx-barrier-";
const RESTART: &str = "restart-connector-";
const STATUS: &str = "status-worker-";
/// How long a write may take, barrier included.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("config topic client: {0}")]
    Client(KafkaError),
    #[error("cannot create config topic '{topic}': {source}")]
    Create { topic: String, source: KafkaError },
    #[error("cannot write to config topic '{topic}': {source}")]
    Write { topic: String, source: KafkaError },
    #[error("config topic '{topic}' was not read back within {timeout:?}")]
    Timeout { topic: String, timeout: Duration },
    #[error("cannot start the admin runtime: {0}")]
    Runtime(std::io::Error),
}

/// What a job should be doing, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    Running,
    Paused,
    Stopped,
}

impl TargetState {
    fn to_json(self) -> Value {
        match self {
            TargetState::Running => json!({"state": "STARTED", "state.v2": "STARTED"}),
            TargetState::Paused => json!({"state": "PAUSED", "state.v2": "PAUSED"}),
            // Older readers know no STOPPED: they see PAUSED, as Connect writes it.
            TargetState::Stopped => json!({"state": "PAUSED", "state.v2": "STOPPED"}),
        }
    }

    fn from_json(v: &Value) -> TargetState {
        let state = v
            .get("state.v2")
            .or_else(|| v.get("state"))
            .and_then(Value::as_str);
        match state {
            Some("PAUSED") => TargetState::Paused,
            Some("STOPPED") => TargetState::Stopped,
            _ => TargetState::Running,
        }
    }
}

/// What the follower tells the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The registry after a batch that changed it.
    Registry(Registry),
    /// Restart job `name`'s tasks (only the failed ones with `only_failed`).
    Restart { name: String, only_failed: bool },
}

/// Every job as the topic holds it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registry {
    pub configs: BTreeMap<String, BTreeMap<String, String>>,
    pub targets: BTreeMap<String, TargetState>,
}

impl Registry {
    /// The stored target of `name` (running unless set).
    pub fn target(&self, name: &str) -> TargetState {
        self.targets
            .get(name)
            .copied()
            .unwrap_or(TargetState::Running)
    }

    /// Folds one record in; returns the barrier id when it is one.
    fn apply(&mut self, key: &str, value: Option<&[u8]>) -> Option<String> {
        let parsed = value.and_then(|v| serde_json::from_slice::<Value>(v).ok());
        if let Some(name) = key.strip_prefix(CONNECTOR) {
            let props = parsed.as_ref().and_then(|v| v.get("properties"));
            match props.and_then(|p| serde_json::from_value(p.clone()).ok()) {
                Some(config) => {
                    self.configs.insert(name.to_string(), config);
                }
                None => {
                    self.configs.remove(name);
                }
            }
        } else if let Some(name) = key.strip_prefix(TARGET) {
            match &parsed {
                Some(v) => {
                    self.targets
                        .insert(name.to_string(), TargetState::from_json(v));
                }
                None => {
                    self.targets.remove(name);
                }
            }
        } else if let Some(id) = key.strip_prefix(BARRIER) {
            return Some(id.to_string());
        }
        None
    }
}

/// The registry and the barriers the follower has read.
#[derive(Default)]
struct Shared {
    registry: Registry,
    /// Worker id -> its last published status (`{"at_ms", "jobs": {...}}`).
    statuses: BTreeMap<String, Value>,
    barriers_seen: Vec<String>,
    failed: Option<String>,
    /// The barrier this worker wrote when it opened the topic; restart records after it are
    /// acted on (`live`).
    live_after: Option<String>,
    live: bool,
}

/// The config topic: writes with read-your-write, and the registry read from it.
pub struct ConfigStore {
    topic: String,
    status_topic: Option<String>,
    producer: BaseProducer<AuthContext>,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    stop: Arc<AtomicBool>,
    follower: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn client(worker: &WorkerConfig) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &worker.bootstrap_servers);
    for (k, v) in &worker.client {
        cc.set(k, v);
    }
    cc
}

impl ConfigStore {
    /// Creates the topic if missing, starts the follower and reads the topic to its end.
    /// `on_change` runs on the follower thread after every batch that changed the registry and
    /// for every restart record read once caught up.
    pub fn open(
        worker: &WorkerConfig,
        on_change: impl Fn(Change) + Send + 'static,
    ) -> Result<ConfigStore, StoreError> {
        create_topic(worker, &worker.config_topic)?;
        let producer: BaseProducer<AuthContext> = client(worker)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .create_with_context(AuthContext)
            .map_err(StoreError::Client)?;
        let consumer: BaseConsumer<AuthContext> = client(worker)
            .set("group.id", format!("{}-config-reader", worker.group_id))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "100")
            .set("fetch.queue.backoff.ms", "10")
            .create_with_context(AuthContext)
            .map_err(StoreError::Client)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&worker.config_topic, 0, Offset::Beginning)
            .map_err(StoreError::Client)?;
        if let Some(status) = &worker.status_topic {
            create_topic(worker, status)?;
            tpl.add_partition_offset(status, 0, Offset::Beginning)
                .map_err(StoreError::Client)?;
        }
        consumer.assign(&tpl).map_err(StoreError::Client)?;
        let store = ConfigStore {
            topic: worker.config_topic.clone(),
            status_topic: worker.status_topic.clone(),
            producer,
            shared: Arc::new((Mutex::new(Shared::default()), Condvar::new())),
            stop: Arc::new(AtomicBool::new(false)),
            follower: Mutex::new(None),
        };
        let (shared, stop) = (store.shared.clone(), store.stop.clone());
        let handle = std::thread::Builder::new()
            .name("streamx-config".into())
            .spawn(move || follow(consumer, shared, stop, on_change))
            .map_err(StoreError::Runtime)?;
        *store.follower.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        let opened = uuid::Uuid::new_v4().simple().to_string();
        store.lock().live_after = Some(opened.clone());
        store.barrier_on(opened)?;
        Ok(store)
    }

    /// A copy of the registry as read so far.
    pub fn registry(&self) -> Registry {
        self.lock().registry.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a job's config (read back before returning).
    pub fn put_config(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let value = json!({ "properties": config }).to_string();
        self.write(&[(format!("{CONNECTOR}{name}"), Some(value))])
    }

    /// Stores a job's target state (read back before returning).
    pub fn put_target(&self, name: &str, state: TargetState) -> Result<(), StoreError> {
        let value = state.to_json().to_string();
        self.write(&[(format!("{TARGET}{name}"), Some(value))])
    }

    /// Tombstones for a job's config and target state (read back before returning).
    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        self.write(&[
            (format!("{CONNECTOR}{name}"), None),
            (format!("{TARGET}{name}"), None),
        ])
    }

    /// Asks every worker (this one included) to restart job `name`'s tasks (read back before
    /// returning).
    pub fn put_restart(&self, name: &str, only_failed: bool) -> Result<(), StoreError> {
        let value = json!({"include-tasks": true, "only-failed": only_failed}).to_string();
        self.write(&[(format!("{RESTART}{name}"), Some(value))])
    }

    fn write(&self, records: &[(String, Option<String>)]) -> Result<(), StoreError> {
        for (key, value) in records {
            self.produce(key, value.as_deref())?;
        }
        self.barrier()
    }

    fn produce(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        self.produce_to(&self.topic, key, value)
    }

    fn produce_to(&self, topic: &str, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        let write_err = |source| StoreError::Write {
            topic: topic.to_string(),
            source,
        };
        let mut record = BaseRecord::<str, str>::to(topic).key(key).partition(0);
        if let Some(v) = value {
            record = record.payload(v);
        }
        self.producer.send(record).map_err(|(e, _)| write_err(e))?;
        self.producer.flush(WRITE_TIMEOUT).map_err(write_err)
    }

    /// Publishes this worker's status (`None`: it stops); a no-op without a status topic.
    pub fn put_status(&self, worker_id: &str, status: Option<&Value>) -> Result<(), StoreError> {
        let Some(topic) = &self.status_topic else {
            return Ok(());
        };
        let value = status.map(Value::to_string);
        self.produce_to(topic, &format!("{STATUS}{worker_id}"), value.as_deref())
    }

    /// The last status every worker published, by worker id.
    pub fn statuses(&self) -> BTreeMap<String, Value> {
        self.lock().statuses.clone()
    }

    /// Produces a marker and waits until the follower has read it: everything written before
    /// is then in the registry.
    fn barrier(&self) -> Result<(), StoreError> {
        self.barrier_on(uuid::Uuid::new_v4().simple().to_string())
    }

    /// [`ConfigStore::barrier`] with the marker `id`.
    fn barrier_on(&self, id: String) -> Result<(), StoreError> {
        self.produce(&format!("{BARRIER}{id}"), None)?;
        let deadline = Instant::now() + WRITE_TIMEOUT;
        let (lock, cond) = &*self.shared;
        let mut shared = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(i) = shared.barriers_seen.iter().position(|b| *b == id) {
                shared.barriers_seen.swap_remove(i);
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline || shared.failed.is_some() {
                return Err(StoreError::Timeout {
                    topic: self.topic.clone(),
                    timeout: WRITE_TIMEOUT,
                });
            }
            shared = cond
                .wait_timeout(shared, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for ConfigStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self
            .follower
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = h.join();
        }
    }
}

/// The follower loop: read, fold, notify.
fn follow(
    consumer: BaseConsumer<AuthContext>,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    stop: Arc<AtomicBool>,
    on_change: impl Fn(Change),
) {
    let (lock, cond) = &*shared;
    // The registry last handed to `on_change`; none until the topic has been read to its end.
    let mut told: Option<Registry> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut batch = Vec::new();
        let mut next = consumer.poll(Duration::from_millis(100));
        while let Some(result) = next {
            match result {
                Ok(m) => batch.push((
                    String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    m.payload().map(<[u8]>::to_vec),
                )),
                Err(e) => tracing::warn!(error = %e, "config topic read failed; retrying"),
            }
            next = consumer.poll(Duration::ZERO);
        }
        if batch.is_empty() {
            continue;
        }
        let (changed, restarts) = {
            let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
            let restarts: Vec<Change> = batch
                .iter()
                .filter_map(|(key, value)| s.fold(key, value.as_deref()))
                .collect();
            // Barriers of other workers are never claimed: keep only the newest few.
            let excess = s.barriers_seen.len().saturating_sub(1024);
            s.barriers_seen.drain(..excess);
            (changed_since(&s, &mut told), restarts)
        };
        // The registry first: a restart of a job created in the same batch finds it.
        changed
            .into_iter()
            .map(Change::Registry)
            .for_each(&on_change);
        restarts.into_iter().for_each(&on_change);
        cond.notify_all();
    }
}

/// The registry to hand on, when it differs from the one last handed on (`told`), and only
/// once the topic has been read to its end (`live`): a registry read halfway may still hold a
/// job deleted further on, or an old config of one, and must never be acted on.
fn changed_since(s: &Shared, told: &mut Option<Registry>) -> Option<Registry> {
    if !s.live || told.as_ref() == Some(&s.registry) {
        return None;
    }
    *told = Some(s.registry.clone());
    told.clone()
}

impl Shared {
    /// Folds one record of the config or status topic in; a restart record read once caught
    /// up is returned.
    fn fold(&mut self, key: &str, value: Option<&[u8]>) -> Option<Change> {
        if let Some(worker) = key.strip_prefix(STATUS) {
            match value.and_then(|v| serde_json::from_slice(v).ok()) {
                Some(v) => self.statuses.insert(worker.to_string(), v),
                None => self.statuses.remove(worker),
            };
        } else if let Some(name) = key.strip_prefix(RESTART) {
            let parsed = value.and_then(|v| serde_json::from_slice::<Value>(v).ok())?;
            let only_failed = parsed["only-failed"].as_bool().unwrap_or(false);
            return self.live.then(|| Change::Restart {
                name: name.to_string(),
                only_failed,
            });
        } else if let Some(id) = self.registry.apply(key, value) {
            if self.live_after.as_deref() == Some(id.as_str()) {
                self.live = true;
            }
            self.barriers_seen.push(id);
        }
        None
    }
}

/// Creates a worker topic (one partition, compacted) unless it exists. A broker that refuses
/// the compaction setting gets the topic without it: it then works as a log read to its end.
fn create_topic(worker: &WorkerConfig, name: &str) -> Result<(), StoreError> {
    let admin: AdminClient<AuthContext> = client(worker)
        .create_with_context(AuthContext)
        .map_err(StoreError::Client)?;
    let create_err = |source| StoreError::Create {
        topic: name.to_string(),
        source,
    };
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let compacted =
        NewTopic::new(name, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
    let plain = NewTopic::new(name, 1, TopicReplication::Fixed(1));
    for (i, topic) in [compacted, plain].iter().enumerate() {
        let results = futures::executor::block_on(admin.create_topics([topic], &options))
            .map_err(create_err)?;
        match results.into_iter().next() {
            Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => {
                return Ok(())
            }
            Some(Err((_, code))) if i == 0 => {
                tracing::warn!(topic = %name, %code, "creating the topic compacted failed; creating it without cleanup.policy=compact");
            }
            Some(Err((_, code))) => return Err(create_err(KafkaError::AdminOp(code))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_folds_latest_value_per_key() {
        let mut r = Registry::default();
        r.apply("connector-a", Some(br#"{"properties":{"x":"1"}}"#));
        r.apply("connector-a", Some(br#"{"properties":{"x":"2"}}"#));
        r.apply(
            "target-state-a",
            Some(br#"{"state":"PAUSED","state.v2":"STOPPED"}"#),
        );
        assert_eq!(r.configs["a"]["x"], "2");
        assert_eq!(r.target("a"), TargetState::Stopped);
        assert_eq!(r.target("b"), TargetState::Running);
        r.apply("target-state-a", Some(br#"{"state":"PAUSED"}"#));
        assert_eq!(r.target("a"), TargetState::Paused);
        assert_eq!(r.apply("streamx-barrier-42", None).as_deref(), Some("42"));
        r.apply("connector-a", None);
        r.apply("target-state-a", None);
        assert_eq!(r, Registry::default());
    }

    #[test]
    fn restart_records_count_once_caught_up() {
        let mut s = Shared {
            live_after: Some("me".into()),
            ..Shared::default()
        };
        let restart = br#"{"include-tasks":true,"only-failed":true}"#;
        assert_eq!(
            s.fold("restart-connector-a", Some(restart)),
            None,
            "history"
        );
        assert_eq!(s.fold("streamx-barrier-other", None), None);
        assert!(!s.live);
        s.fold("streamx-barrier-me", None);
        assert!(s.live);
        let got = s.fold("restart-connector-a", Some(restart));
        let want = Change::Restart {
            name: "a".into(),
            only_failed: true,
        };
        assert_eq!(got, Some(want));
        assert_eq!(s.fold("restart-connector-a", None), None, "a tombstone");
        assert!(s.registry.configs.is_empty());
    }

    #[test]
    fn nothing_is_handed_on_before_the_topic_is_read_to_its_end() {
        let mut s = Shared {
            live_after: Some("me".into()),
            ..Shared::default()
        };
        let mut told = None;
        s.fold("connector-a", Some(br#"{"properties":{"x":"1"}}"#));
        s.fold("connector-b", Some(br#"{"properties":{"x":"old"}}"#));
        assert_eq!(changed_since(&s, &mut told), None, "a prefix of the topic");
        s.fold("connector-a", None);
        s.fold("connector-b", Some(br#"{"properties":{"x":"new"}}"#));
        assert_eq!(
            changed_since(&s, &mut told),
            None,
            "not read to the end yet"
        );
        s.fold("streamx-barrier-me", None);
        let first = changed_since(&s, &mut told).expect("the whole topic, once read");
        assert_eq!(first.configs.len(), 1, "{first:?}");
        assert_eq!(first.configs["b"]["x"], "new");
        assert_eq!(changed_since(&s, &mut told), None, "unchanged");
        s.fold("target-state-b", Some(br#"{"state":"PAUSED"}"#));
        let next = changed_since(&s, &mut told).expect("a change once live");
        assert_eq!(next.target("b"), TargetState::Paused);
    }

    #[test]
    fn an_empty_topic_is_handed_on_once_read() {
        let mut s = Shared {
            live_after: Some("me".into()),
            ..Shared::default()
        };
        let mut told = None;
        s.fold("streamx-barrier-me", None);
        assert_eq!(changed_since(&s, &mut told), Some(Registry::default()));
    }

    #[test]
    fn target_states_round_trip() {
        for s in [
            TargetState::Running,
            TargetState::Paused,
            TargetState::Stopped,
        ] {
            assert_eq!(TargetState::from_json(&s.to_json()), s);
        }
    }
}
