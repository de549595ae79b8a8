//! Scanning the store: the topics under `topics.dir`, the data directories of a topic and their
//! files, and the files ingest recovery may still replay (named by a Kafka partition's newest
//! commit record), which compaction leaves alone.

use std::collections::{BTreeMap, HashSet};

use super::error::{store_err, CompactError};
use super::journal::{list_all, relative};
use super::plan::{DataFile, Directory};
use crate::commit::reader::Reader;
use crate::commit::Layout;
use crate::store::Store;

/// Topic directories under `topics.dir` (`_`/`.`-prefixed names skipped).
pub async fn topics(store: &Store, layout: &Layout) -> Result<Vec<String>, CompactError> {
    let dir = store.path(layout.topics_dir());
    let names = store
        .child_dir_names(&dir)
        .await
        .map_err(|e| store_err("list (topics)", &dir, e))?;
    Ok(names
        .into_iter()
        .filter(|n| !n.starts_with('_') && !n.starts_with('.'))
        .collect())
}

/// Every data directory of a topic with the files directly in it whose name ends with `.<ext>`,
/// in one recursive listing; levels starting with `_` or `.` are skipped, as readers skip them.
pub async fn directories(
    store: &Store,
    layout: &Layout,
    topic: &str,
    ext: &str,
) -> Result<Vec<Directory>, CompactError> {
    let topic_rel = layout.data_dir(topic, "");
    let prefix = store.path(&topic_rel);
    let metas = list_all(store, &prefix, "list (data files)").await?;
    let suffix = format!(".{ext}");
    let mut dirs: BTreeMap<String, Vec<DataFile>> = BTreeMap::new();
    for m in metas {
        let (Some(rel), Some(in_topic)) = (
            relative(&store.root, &m.location),
            relative(&prefix, &m.location),
        ) else {
            continue;
        };
        let (dir, name) = in_topic.rsplit_once('/').unwrap_or(("", &in_topic));
        let hidden = |s: &str| s.starts_with('_') || s.starts_with('.');
        if hidden(name) || !name.ends_with(&suffix) || dir.split('/').any(hidden) {
            continue;
        }
        dirs.entry(dir.to_string()).or_default().push(DataFile {
            path: rel,
            bytes: m.size,
            modified_ms: m.last_modified.timestamp_millis(),
        });
    }
    Ok(dirs
        .into_iter()
        .map(|(dir, mut files)| {
            files.sort_by(|a, b| a.name().cmp(b.name()));
            Directory {
                topic: topic.to_string(),
                dir,
                files,
            }
        })
        .collect())
}

/// The final paths named by the newest commit record of every Kafka partition of `topic`:
/// recovery and the ingest sweep replay that commit's publish, which fails if a file it names
/// is gone. Read after the data files were listed, so every listed file whose commit was the
/// newest at listing time is caught (a commit stops being the newest only once a newer exists).
pub async fn pinned(log: &Reader, topic: &str) -> Result<HashSet<String>, CompactError> {
    let mut out = HashSet::new();
    for p in log.partitions(topic).await? {
        if let Some(record) = log.newest_commit(topic, p).await? {
            out.extend(record.files.into_iter().map(|f| f.final_path));
        }
    }
    Ok(out)
}
