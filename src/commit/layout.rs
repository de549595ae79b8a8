//! Where StreamX keeps its own objects under `topics.dir` (relative to the store root):
//!
//! ```text
//!  <topics.dir>/_streamx/commits/<topic>/<partition>/<seq:020>.json        commit records
//!  <topics.dir>/_streamx/staging/<topic>/<partition>/<writer>/<seq:020>/<file name>
//!  <topics.dir>/_streamx/schemas/<topic>/<n>.json                          inferred JSON schema versions
//!  <topics.dir>/_streamx/probe/<uuid>                                       conditional-write probe
//!  <topics.dir>/_streamx/compactions/<topic>/<dir>/<seq:020>.json           compaction records
//!  <topics.dir>/_streamx/compactions/<topic>/<dir>/<seq:020>.home           its partition is home
//!  <topics.dir>/_streamx/compaction-staging/<topic>/<dir>/<seq:020>/<run>/<name>  staged outputs
//!  <topics.dir>/_streamx/compaction-trash/<topic>/<dir>/<seq:020>/<name>   compacted inputs (grace)
//!  <topics.dir>/<topic>/<dir>/<topic>+compacted+<seq:010>+<n:04>.<ext>      compaction outputs
//!  <topics.dir>/<topic>/<partition path>/<topic>+<p>+<first>+<last>.<ext>  published data
//! ```
//!
//! Everything under `_streamx` is invisible to readers (a segment starting with `_`).

use super::record_log::LogKeys;

/// The shape of every path StreamX writes under one `topics.dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    topics_dir: String,
}

/// A staged file's key, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagingKey {
    pub topic: String,
    pub partition: i32,
    pub writer: String,
    pub seq: u64,
}

impl Layout {
    pub fn new(topics_dir: &str) -> Self {
        Layout {
            topics_dir: topics_dir.trim_matches('/').to_string(),
        }
    }

    pub fn topics_dir(&self) -> &str {
        &self.topics_dir
    }

    /// `<topics.dir>/_streamx/commits`: one directory per topic below.
    pub fn commits_root(&self) -> String {
        format!("{}/_streamx/commits", self.topics_dir)
    }

    pub fn commits_dir(&self, topic: &str, partition: i32) -> String {
        format!("{}/{topic}/{partition}", self.commits_root())
    }

    pub fn commit(&self, topic: &str, partition: i32, seq: u64) -> String {
        self.commit_keys(topic, partition).key(seq)
    }

    /// The commit log of one Kafka partition, as a [`super::RecordLog`] directory.
    pub fn commit_keys(&self, topic: &str, partition: i32) -> LogKeys {
        LogKeys {
            dir: self.commits_dir(topic, partition),
            pad: 20,
        }
    }

    /// `<topics.dir>/_streamx/schemas`: one directory per topic below.
    pub fn schemas_root(&self) -> String {
        format!("{}/_streamx/schemas", self.topics_dir)
    }

    pub fn schemas_dir(&self, topic: &str) -> String {
        format!("{}/{topic}", self.schemas_root())
    }

    /// Version `n` of `topic`'s inferred JSON schema.
    pub fn schema_version(&self, topic: &str, n: u64) -> String {
        self.schema_keys(topic).key(n)
    }

    /// The schema history of one topic, as a [`super::RecordLog`] directory (`<n>.json`).
    pub fn schema_keys(&self, topic: &str) -> LogKeys {
        LogKeys {
            dir: self.schemas_dir(topic),
            pad: 0,
        }
    }

    pub fn staging_root(&self) -> String {
        format!("{}/_streamx/staging", self.topics_dir)
    }

    pub fn staging(
        &self,
        topic: &str,
        partition: i32,
        writer: &str,
        seq: u64,
        name: &str,
    ) -> String {
        format!(
            "{}/{topic}/{partition}/{writer}/{seq:020}/{name}",
            self.staging_root()
        )
    }

    /// `<topics.dir>/_streamx/compactions`: `<topic>/<dir>/<seq>.json` below.
    pub fn compactions_root(&self) -> String {
        format!("{}/_streamx/compactions", self.topics_dir)
    }

    /// The compaction records of one data directory (`dir` relative to the topic directory).
    pub fn compactions_dir(&self, topic: &str, dir: &str) -> String {
        join(&[&self.compactions_root(), topic, dir])
    }

    /// Compaction record `seq` of one data directory.
    pub fn compaction_record(&self, topic: &str, dir: &str, seq: u64) -> String {
        self.compaction_keys(topic, dir).key(seq)
    }

    /// The compaction journal of one data directory, as a [`super::RecordLog`] directory.
    pub fn compaction_keys(&self, topic: &str, dir: &str) -> LogKeys {
        LogKeys {
            dir: self.compactions_dir(topic, dir),
            pad: 20,
        }
    }

    /// Marks that the Hive partition of compaction record `seq` (a location swap) is back home.
    pub fn compaction_record_home(&self, topic: &str, dir: &str, seq: u64) -> String {
        format!("{}/{seq:020}.home", self.compactions_dir(topic, dir))
    }

    /// `<topics.dir>/_streamx/compaction-staging`: `<topic>/<dir>/<seq>/<run>/<name>` below.
    pub fn compaction_staging_root(&self) -> String {
        format!("{}/_streamx/compaction-staging", self.topics_dir)
    }

    /// The staged outputs of every attempt at compaction `seq` of one data directory.
    pub fn compaction_staging_dir(&self, topic: &str, dir: &str, seq: u64) -> String {
        join(&[
            &self.compaction_staging_root(),
            topic,
            dir,
            &format!("{seq:020}"),
        ])
    }

    /// A staged compaction output of run `run`.
    pub fn compaction_staging(
        &self,
        topic: &str,
        dir: &str,
        seq: u64,
        run: &str,
        name: &str,
    ) -> String {
        format!(
            "{}/{run}/{name}",
            self.compaction_staging_dir(topic, dir, seq)
        )
    }

    /// `<topics.dir>/_streamx/compaction-trash`: `<topic>/<dir>/<seq>/<name>` below, the inputs
    /// of compaction `seq` moved out of their directory, kept for `compact.input.grace.ms`.
    pub fn compaction_trash_root(&self) -> String {
        format!("{}/_streamx/compaction-trash", self.topics_dir)
    }

    /// The trash of compaction `seq` of one data directory.
    pub fn compaction_trash_dir(&self, topic: &str, dir: &str, seq: u64) -> String {
        join(&[
            &self.compaction_trash_root(),
            topic,
            dir,
            &format!("{seq:020}"),
        ])
    }

    /// Where input `name` of compaction `seq` waits out its grace period.
    pub fn compaction_trash(&self, topic: &str, dir: &str, seq: u64, name: &str) -> String {
        format!("{}/{name}", self.compaction_trash_dir(topic, dir, seq))
    }

    /// Takes apart a trashed input's key given relative to [`Layout::compaction_trash_root`]
    /// (`<topic>/<dir...>/<seq>/<name>`): `(topic, dir, seq)`.
    pub fn parse_compaction_trash(relative: &str) -> Option<(String, String, u64)> {
        let parts: Vec<&str> = relative.trim_matches('/').split('/').collect();
        if parts.len() < 3 {
            return None;
        }
        let (head, tail) = parts.split_at(parts.len() - 2);
        let seq = tail[0].parse().ok()?;
        let (topic, dir) = head.split_first()?;
        Some((topic.to_string(), dir.join("/"), seq))
    }

    /// The data directory of a topic (`dir` relative to it; empty = the topic directory).
    pub fn data_dir(&self, topic: &str, dir: &str) -> String {
        join(&[&self.topics_dir, topic, dir])
    }

    /// The name of output `n` of compaction `seq`: never an ingest name
    /// (`<topic>+<partition>+<first>+<last>.<ext>` has a number where this has `compacted`).
    pub fn compaction_output_name(topic: &str, seq: u64, n: usize, ext: &str) -> String {
        format!("{topic}+compacted+{seq:010}+{n:04}.{ext}")
    }

    /// True for a name made by [`Layout::compaction_output_name`].
    pub fn is_compaction_output(topic: &str, name: &str) -> bool {
        name.strip_prefix(topic)
            .is_some_and(|rest| rest.starts_with("+compacted+"))
    }

    /// Takes apart a compaction record key given relative to [`Layout::compactions_root`]
    /// (`<topic>/<dir...>/<seq>.json`): `(topic, dir, seq)`.
    pub fn parse_compaction_record(relative: &str) -> Option<(String, String, u64)> {
        let parts: Vec<&str> = relative.trim_matches('/').split('/').collect();
        let (last, rest) = parts.split_last()?;
        let seq = last.strip_suffix(".json")?.parse().ok()?;
        let (topic, dir) = rest.split_first()?;
        Some((topic.to_string(), dir.join("/"), seq))
    }

    /// Takes apart a staged compaction output key given relative to
    /// [`Layout::compaction_staging_root`] (`<topic>/<dir...>/<seq>/<run>/<name>`):
    /// `(topic, dir, seq)`.
    pub fn parse_compaction_staging(relative: &str) -> Option<(String, String, u64)> {
        let parts: Vec<&str> = relative.trim_matches('/').split('/').collect();
        if parts.len() < 4 {
            return None;
        }
        let (head, tail) = parts.split_at(parts.len() - 3);
        let seq = tail[0].parse().ok()?;
        let (topic, dir) = head.split_first()?;
        Some((topic.to_string(), dir.join("/"), seq))
    }

    /// Takes apart a staged file's key, given relative to the staging root
    /// (`<topic>/<partition>/<writer>/<seq>/<name>`); `None` for anything else.
    pub fn parse_staging(relative: &str) -> Option<StagingKey> {
        let parts: Vec<&str> = relative.trim_matches('/').split('/').collect();
        let [topic, partition, writer, seq, _name] = parts[..] else {
            return None;
        };
        Some(StagingKey {
            topic: topic.to_string(),
            partition: partition.parse().ok()?,
            writer: writer.to_string(),
            seq: seq.parse().ok()?,
        })
    }
}

/// Joins path parts with `/`, skipping empty ones.
fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_keys_round_trip() {
        let l = Layout::new("/topics/");
        let key = l.staging("clicks", 3, "w1", 42, "clicks+3+0+9.parquet");
        assert_eq!(
            key,
            "topics/_streamx/staging/clicks/3/w1/00000000000000000042/clicks+3+0+9.parquet"
        );
        let rel = key.strip_prefix(&format!("{}/", l.staging_root())).unwrap();
        assert_eq!(
            Layout::parse_staging(rel),
            Some(StagingKey {
                topic: "clicks".into(),
                partition: 3,
                writer: "w1".into(),
                seq: 42
            })
        );
        assert_eq!(Layout::parse_staging("clicks/x/w1/1/f"), None);
        assert_eq!(Layout::parse_staging("clicks/1/w1/1"), None);
        assert_eq!(
            l.commit("clicks", 3, 7),
            "topics/_streamx/commits/clicks/3/00000000000000000007.json"
        );
        assert_eq!(
            l.schema_version("clicks", 12),
            "topics/_streamx/schemas/clicks/12.json"
        );
    }

    #[test]
    fn compaction_keys_round_trip() {
        let l = Layout::new("topics");
        let rec = l.compaction_record("clicks", "dt=2026-11-01/hour=03", 7);
        assert_eq!(
            rec,
            "topics/_streamx/compactions/clicks/dt=2026-11-01/hour=03/00000000000000000007.json"
        );
        let rel = rec
            .strip_prefix(&format!("{}/", l.compactions_root()))
            .unwrap();
        assert_eq!(
            Layout::parse_compaction_record(rel),
            Some(("clicks".into(), "dt=2026-11-01/hour=03".into(), 7))
        );
        let staged = l.compaction_staging("clicks", "", 3, "r1", "x.parquet");
        assert_eq!(
            staged,
            "topics/_streamx/compaction-staging/clicks/00000000000000000003/r1/x.parquet"
        );
        let rel = staged
            .strip_prefix(&format!("{}/", l.compaction_staging_root()))
            .unwrap();
        assert_eq!(
            Layout::parse_compaction_staging(rel),
            Some(("clicks".into(), String::new(), 3))
        );
        let trashed = l.compaction_trash("clicks", "dt=1/hour=03", 4, "x.parquet");
        assert_eq!(
            trashed,
            "topics/_streamx/compaction-trash/clicks/dt=1/hour=03/00000000000000000004/x.parquet"
        );
        let rel = trashed
            .strip_prefix(&format!("{}/", l.compaction_trash_root()))
            .unwrap();
        assert_eq!(
            Layout::parse_compaction_trash(rel),
            Some(("clicks".into(), "dt=1/hour=03".into(), 4))
        );
        let name = Layout::compaction_output_name("clicks", 3, 1, "parquet");
        assert_eq!(name, "clicks+compacted+0000000003+0001.parquet");
        assert!(Layout::is_compaction_output("clicks", &name));
        assert!(!Layout::is_compaction_output(
            "clicks",
            "clicks+0+0000000000+0000000009.parquet"
        ));
        assert_eq!(l.data_dir("clicks", ""), "topics/clicks");
    }
}
