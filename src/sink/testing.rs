//! Helpers of the sink's unit tests: a context writing JSON lines into a local directory, chunks
//! of `{"id": n}` records, and what landed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::commit::CommitLog;
use crate::config::{Config, RawConfig, Source};
use crate::decode::buffer::RecordBuffer;
use crate::metrics::Metrics;
use crate::sink::memory::{BudgetShare, MemoryBudget};
use crate::sink::rotation::RotationPolicy;
use crate::sink::SinkContext;
use crate::store::Store;

/// A context writing JSON lines of `id BIGINT` into `dir`, 4-record batches, 10-record files;
/// `extra` settings replace or add to those.
pub fn context(
    dir: &std::path::Path,
    runtime: &tokio::runtime::Runtime,
    extra: &[(&str, &str)],
) -> SinkContext {
    let mut raw = RawConfig::default();
    let base = [
        ("topics", "t"),
        ("bootstrap.servers", "localhost:9092"),
        ("store.url", dir.to_str().unwrap()),
        ("format.class", "json"),
        ("value.schema", "id BIGINT"),
        ("decode.batch.records", "4"),
        ("flush.size", "10"),
    ];
    for (k, v) in base.iter().chain(extra) {
        raw.set(k, v, Source::Override);
    }
    let config = Arc::new(Config::from_raw(&raw).unwrap());
    let store = Store::with_url(dir.to_str().unwrap(), &BTreeMap::new()).unwrap();
    SinkContext {
        policy: RotationPolicy {
            config: config.rotation.clone(),
        },
        config,
        commit_log: CommitLog::new(store, "topics", "w1"),
        runtime: runtime.handle().clone(),
        metrics: Arc::new(Metrics::default()),
        dlq: None,
        inferred_schemas: Mutex::new(HashMap::new()),
        compiler: crate::expr::SqlCompiler::new(),
        memory: BudgetShare::new(&MemoryBudget::new(1 << 30)),
        listener: None,
        registry: None,
    }
}

/// A chunk with one `{"id": offset}` record per offset.
pub fn chunk(offsets: &[i64]) -> RecordBuffer {
    let mut chunk = RecordBuffer::new(false, false);
    for &o in offsets {
        let value = format!(r#"{{"id":{o}}}"#);
        chunk.push(o, 0, None, Some(value.as_bytes()), Vec::new);
    }
    chunk
}

/// Every `id` written under `dir` for partition 0, file by file in name order (staging and
/// other `_` directories left out, as readers do).
pub fn written(dir: &std::path::Path) -> Vec<Vec<i64>> {
    let mut files: Vec<_> = walk(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/partition=0/"))
        .filter(|p| !p.to_string_lossy().contains("/_"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                        .as_i64()
                        .unwrap()
                })
                .collect()
        })
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}
