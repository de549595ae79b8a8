//! Where StreamX keeps its own objects under `topics.dir` (relative to the store root):
//!
//! ```text
//!  <topics.dir>/_streamx/commits/<topic>/<partition>/<seq:020>.json        commit records
//!  <topics.dir>/_streamx/staging/<topic>/<partition>/<writer>/<seq:020>/<file name>
//!  <topics.dir>/_streamx/schemas/<topic>/<n>.json                          inferred JSON schema versions
//!  <topics.dir>/_streamx/probe/<uuid>                                       conditional-write probe
//!  <topics.dir>/<topic>/<partition path>/<topic>+<p>+<first>+<last>.<ext>  published data
//! ```
//!
//! Everything under `_streamx` is invisible to readers (a segment starting with `_`).

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
        format!("{}/{seq:020}.json", self.commits_dir(topic, partition))
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
        format!("{}/{n}.json", self.schemas_dir(topic))
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
}
