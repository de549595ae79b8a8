//! What the REST API does, apart from HTTP: every operation on jobs, as Kafka Connect defines
//! it, with the config topic as the source of truth. Writes go to the topic first and are read
//! back (so a 2xx answer means durable); the jobs follow through the registry's change callback.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::config::WorkerConfig;
use super::jobs::{JobStatus, Jobs, State};
use super::store::{ConfigStore, StoreError, TargetState};
use crate::config::{keys, Config, TopicSelection};
use crate::job::PrepareError;

/// Why a request cannot be done; each maps onto Kafka Connect's status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Connector {0} not found")]
    NotFound(String),
    #[error("Connector {0} already exists")]
    Exists(String),
    #[error("Task {1} of connector {0} not found")]
    TaskNotFound(String, usize),
    #[error("Connector configuration is invalid and contains the following {} error(s):\n{}", .0.keys().len().max(1), .0)]
    Invalid(PrepareError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("reading commit records: {0}")]
    Offsets(String),
}

impl ApiError {
    /// The HTTP status Kafka Connect answers with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::NotFound(_) | ApiError::TaskNotFound(..) => 404,
            ApiError::Exists(_) => 409,
            ApiError::Invalid(_) | ApiError::BadRequest(_) => 400,
            ApiError::Store(_) | ApiError::Offsets(_) => 500,
        }
    }
}

/// The worker's state shared by every request.
pub struct Worker {
    pub config: WorkerConfig,
    pub store: ConfigStore,
    pub jobs: Arc<Jobs>,
    pub cluster_id: String,
}

/// How old another worker's published status may be and still be shown (they publish every
/// [`super::STATUS_PERIOD`]).
const STATUS_FRESH_MS: i64 = 15_000;

/// `{state, worker_id, trace?, restarts?}`: Kafka Connect's shape; `restarts` (StreamX's own,
/// how often the worker restarted the task by itself, [`super::restart`]) only once there was
/// one, so a status without restarts is exactly Connect's.
fn state_json(s: &State, worker_id: &str) -> Value {
    let mut v = json!({"state": s.state, "worker_id": worker_id});
    if let Some(t) = &s.trace {
        v["trace"] = json!(t);
    }
    if s.restarts > 0 {
        v["restarts"] = json!(s.restarts);
    }
    v
}

/// A config map from a JSON object of strings (Connect refuses other values too).
pub fn config_from_json(v: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::BadRequest("the connector config must be a JSON object".into()))?;
    obj.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(n) => Ok((k.clone(), n.to_string())),
            Value::Bool(b) => Ok((k.clone(), b.to_string())),
            _ => Err(ApiError::BadRequest(format!(
                "config value of '{k}' must be a string"
            ))),
        })
        .collect()
}

impl Worker {
    pub fn names(&self) -> Vec<String> {
        self.store.registry().configs.into_keys().collect()
    }

    fn stored(&self, name: &str) -> Result<BTreeMap<String, String>, ApiError> {
        self.store
            .registry()
            .configs
            .remove(name)
            .ok_or_else(|| ApiError::NotFound(name.to_string()))
    }

    /// The stored config exactly as it was sent.
    pub fn config(&self, name: &str) -> Result<BTreeMap<String, String>, ApiError> {
        self.stored(name)
    }

    /// Prepares `config` as job `name` would run here ([`crate::job::prepare`]: keys, values
    /// and SQL); the error names every bad key.
    pub fn validate(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<Config, PrepareError> {
        self.jobs.ingest_config(name, config, true)
    }

    /// ConnectorInfo: `{name, config, tasks: [{connector, task}], type}`.
    pub fn info(&self, name: &str) -> Result<Value, ApiError> {
        let config = self.stored(name)?;
        Ok(info_json(name, &config))
    }

    /// Creates (`create_only`) or creates/updates job `name`; true when it was created.
    pub fn put(
        &self,
        name: &str,
        mut config: BTreeMap<String, String>,
        create_only: bool,
    ) -> Result<bool, ApiError> {
        if name.is_empty() || name.contains('/') {
            return Err(ApiError::BadRequest(format!(
                "connector name {name:?} is not valid"
            )));
        }
        // Before anything trims it: a control character at either end counts too.
        crate::config::check_job_name("name", name).map_err(|e| ApiError::Invalid(e.into()))?;
        match config.get("name") {
            Some(n) if n != name => {
                return Err(ApiError::BadRequest(format!(
                    "Connector name configuration ({n}) doesn't match connector name in the URL ({name})"
                )))
            }
            Some(_) => {}
            None => {
                config.insert("name".into(), name.into());
            }
        }
        let exists = self.store.registry().configs.contains_key(name);
        if exists && create_only {
            return Err(ApiError::Exists(name.to_string()));
        }
        self.validate(name, &config).map_err(ApiError::Invalid)?;
        self.store.put_config(name, &config)?;
        Ok(!exists)
    }

    /// PATCH: merges `patch` into the stored config; a null value removes the key.
    pub fn patch(&self, name: &str, patch: &Value) -> Result<BTreeMap<String, String>, ApiError> {
        let mut config = self.stored(name)?;
        let obj = patch
            .as_object()
            .ok_or_else(|| ApiError::BadRequest("the patch must be a JSON object".into()))?;
        for (k, v) in obj {
            if v.is_null() {
                config.remove(k);
            } else {
                let one = config_from_json(&json!({ k: v }))?;
                config.extend(one);
            }
        }
        self.put(name, config.clone(), false)?;
        Ok(config)
    }

    pub fn set_target(&self, name: &str, state: TargetState) -> Result<(), ApiError> {
        self.stored(name)?;
        Ok(self.store.put_target(name, state)?)
    }

    pub fn delete(&self, name: &str) -> Result<(), ApiError> {
        self.stored(name)?;
        Ok(self.store.delete(name)?)
    }

    /// Restarts the job's tasks on every worker: a restart record in the config topic, which
    /// every worker's follower reads (this one's included). Stopping commits open files; the
    /// answer does not wait for it.
    pub fn restart(&self, name: &str, only_failed: bool) -> Result<(), ApiError> {
        self.stored(name)?;
        Ok(self.store.put_restart(name, only_failed)?)
    }

    /// ConnectorStateInfo: `{name, connector: {state, worker_id, trace?}, tasks, type}`. The
    /// tasks are this worker's, then those other workers published recently (status topic),
    /// numbered in that order.
    pub fn status(&self, name: &str) -> Result<Value, ApiError> {
        self.stored(name)?;
        let status = self.jobs.status(name).unwrap_or_else(|| JobStatus {
            connector: State::of("UNASSIGNED"),
            tasks: Vec::new(),
        });
        let me = &self.config.advertised;
        let mut tasks: Vec<Value> = status
            .tasks
            .iter()
            .map(|(_, s)| state_json(s, me))
            .collect();
        let now = crate::clock::wall_ms();
        for (worker, published) in self.store.statuses() {
            let fresh = published["at_ms"]
                .as_i64()
                .is_some_and(|at| now - at <= STATUS_FRESH_MS);
            if worker == *me || !fresh {
                continue;
            }
            for t in published["jobs"][name].as_array().into_iter().flatten() {
                let mut t = t.clone();
                t["worker_id"] = json!(worker);
                tasks.push(t);
            }
        }
        for (id, t) in tasks.iter_mut().enumerate() {
            t["id"] = json!(id);
        }
        Ok(json!({
            "name": name,
            "connector": state_json(&status.connector, me),
            "tasks": tasks,
            "type": "sink",
        }))
    }

    /// Publishes this worker's task states to the status topic (`stopping`: a tombstone).
    pub fn publish_status(&self, stopping: bool) -> Result<(), StoreError> {
        let me = &self.config.advertised;
        if stopping {
            return self.store.put_status(me, None);
        }
        let jobs: serde_json::Map<String, Value> = self
            .jobs
            .statuses()
            .into_iter()
            .map(|(name, s)| {
                let tasks: Vec<Value> = s.tasks.iter().map(|(_, t)| state_json(t, me)).collect();
                (name, json!(tasks))
            })
            .collect();
        let status = json!({"at_ms": crate::clock::wall_ms(), "jobs": jobs});
        self.store.put_status(me, Some(&status))
    }

    /// The status of one task: UNASSIGNED while a task of the config is not running here.
    pub fn task_status(&self, name: &str, task: usize) -> Result<Value, ApiError> {
        let status = self.status(name)?;
        let running = status["tasks"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["id"] == json!(task)).cloned());
        if let Some(t) = running {
            return Ok(t);
        }
        let configured = self.info(name)?["tasks"].as_array().map_or(0, Vec::len);
        if task < configured {
            return Ok(
                json!({"id": task, "state": "UNASSIGNED", "worker_id": self.config.advertised}),
            );
        }
        Err(ApiError::TaskNotFound(name.to_string(), task))
    }

    /// `{name: {topics: [...]}}`: the listed topics, or for a pattern the topics with commits.
    pub async fn topics(&self, name: &str) -> Result<Value, ApiError> {
        let config = self.stored(name)?;
        let parsed = self.validate(name, &config).map_err(ApiError::Invalid)?;
        let topics: Vec<String> = match &parsed.topics {
            TopicSelection::List(list) => list.clone(),
            TopicSelection::Regex(_) => self
                .committed(&parsed)
                .await?
                .into_iter()
                .map(|(t, _, _)| t)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
        };
        Ok(json!({ name: { "topics": topics } }))
    }

    /// ConnectorOffsets from the store's commit records: per partition the next offset to
    /// consume (the newest commit's end + 1), as a sink connector's consumer group would hold.
    pub async fn offsets(&self, name: &str) -> Result<Value, ApiError> {
        let config = self.stored(name)?;
        let parsed = self.validate(name, &config).map_err(ApiError::Invalid)?;
        let offsets: Vec<Value> = self
            .committed(&parsed)
            .await?
            .into_iter()
            .map(|(topic, partition, next)| {
                json!({
                    "partition": {"kafka_topic": topic, "kafka_partition": partition},
                    "offset": {"kafka_offset": next},
                })
            })
            .collect();
        Ok(json!({ "offsets": offsets }))
    }

    /// `(topic, partition, next offset)` of every partition with a commit of the job's topics.
    async fn committed(&self, config: &Config) -> Result<Vec<(String, i32, i64)>, ApiError> {
        let err = |e: &dyn std::fmt::Display| ApiError::Offsets(e.to_string());
        let store = crate::store::Store::with_url(&config.store_url, &config.store_options)
            .map_err(|e| err(&e))?;
        let log = crate::commit::reader::Reader::new(store, &config.topics_dir);
        let wanted = |t: &str| match &config.topics {
            TopicSelection::List(list) => list.iter().any(|l| l == t),
            TopicSelection::Regex(re) => regex::Regex::new(re).is_ok_and(|r| r.is_match(t)),
        };
        let mut out = Vec::new();
        for topic in log.topics().await.map_err(|e| err(&e))? {
            if !wanted(&topic) {
                continue;
            }
            for partition in log.partitions(&topic).await.map_err(|e| err(&e))? {
                let newest = log.newest_commit(&topic, partition).await;
                if let Some(last) = newest.map_err(|e| err(&e))? {
                    out.push((topic.clone(), partition, last.end_offset + 1));
                }
            }
        }
        Ok(out)
    }

    /// ConfigInfos for the validate endpoint: every known key's definition, the sent values
    /// (secrets as `[hidden]`), and the errors on the keys they concern.
    pub fn validate_infos(&self, class: &str, config: &BTreeMap<String, String>) -> Value {
        let name = config.get("name").map_or("validate", String::as_str);
        let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Err(e) = self.validate(name, config) {
            let keys = e.keys();
            let key = keys.first().cloned().unwrap_or_else(|| "name".into());
            let message = e.to_string();
            for k in if keys.is_empty() { vec![key] } else { keys } {
                errors.entry(k).or_default().push(message.clone());
            }
        }
        let mut names: Vec<String> = keys::KEYS.iter().map(|k| k.name.to_string()).collect();
        names.extend(
            config
                .keys()
                .filter(|k| !names.contains(k))
                .cloned()
                .collect::<Vec<_>>(),
        );
        names.extend(
            errors
                .keys()
                .filter(|k| !names.contains(k))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let configs: Vec<Value> = names
            .iter()
            .map(|k| config_info(k, config.get(k), errors.get(k)))
            .collect();
        json!({
            "name": class,
            "error_count": errors.values().map(Vec::len).sum::<usize>(),
            "groups": ["Common"],
            "configs": configs,
        })
    }
}

fn config_info(key: &str, value: Option<&String>, errors: Option<&Vec<String>>) -> Value {
    let spec = keys::spec(key);
    let shown = match value {
        Some(v) => json!(crate::config::secrets::shown(key, v)),
        None => spec
            .and_then(|s| s.default)
            .map_or(Value::Null, |d| json!(d)),
    };
    json!({
        "definition": {
            "name": key,
            "type": if keys::is_secret(key) { "PASSWORD" } else { "STRING" },
            "required": false,
            "default_value": spec.and_then(|s| s.default),
            "importance": "MEDIUM",
            "documentation": spec.map_or("", |s| s.doc),
            "group": "Common",
            "width": "NONE",
            "display_name": key,
            "dependents": [],
            "order": -1,
        },
        "value": {
            "name": key,
            "value": shown,
            "recommended_values": [],
            "errors": errors.cloned().unwrap_or_default(),
            "visible": true,
        }
    })
}

/// ConnectorInfo of a stored config.
pub fn info_json(name: &str, config: &BTreeMap<String, String>) -> Value {
    let tasks = config
        .get("tasks.max")
        .and_then(|t| t.trim().parse::<usize>().ok())
        .unwrap_or(1);
    let tasks: Vec<Value> = (0..tasks)
        .map(|t| json!({"connector": name, "task": t}))
        .collect();
    json!({"name": name, "config": config, "tasks": tasks, "type": "sink"})
}

#[cfg(test)]
mod tests {
    #[test]
    fn validate_answers_hide_secrets_and_url_credentials() {
        let url = "https://u:url-Secret-1@sr:8081".to_string();
        let info = super::config_info("value.converter.schema.registry.url", Some(&url), None);
        assert_eq!(info["value"]["value"], "https://[hidden]@sr:8081", "{info}");
        let jaas = "x password=\"jaas-Secret-2\";".to_string();
        let info = super::config_info("sasl.jaas.config", Some(&jaas), None);
        assert_eq!(info["value"]["value"], "[hidden]", "{info}");
    }
}
