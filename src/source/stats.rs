//! The part of librdkafka's statistics (`statistics.interval.ms`) the consumer lag needs: per
//! partition, the broker's offsets as last seen in fetch responses and the consumed position.
//! No extra request to the brokers: librdkafka emits these from what it already knows.

use std::collections::HashMap;

use serde::Deserialize;

/// One partition as the statistics report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The low watermark (-1 when unknown).
    pub low: i64,
    /// Where consumption of the partition ends: its last stable offset (what `read_committed`
    /// reads up to), or the high watermark when that is unknown (-1 when neither is known).
    pub end: i64,
    /// The offset after the last record handed to the application (-1 when none yet).
    pub consumed: i64,
}

#[derive(Deserialize)]
struct Stats {
    #[serde(default)]
    topics: HashMap<String, TopicStats>,
}

#[derive(Deserialize)]
struct TopicStats {
    #[serde(default)]
    partitions: HashMap<String, Partition>,
}

#[derive(Deserialize)]
struct Partition {
    partition: i32,
    #[serde(default)]
    fetch_state: String,
    #[serde(default = "unknown")]
    lo_offset: i64,
    #[serde(default = "unknown")]
    hi_offset: i64,
    #[serde(default = "unknown")]
    ls_offset: i64,
    #[serde(default = "unknown")]
    app_offset: i64,
}

fn unknown() -> i64 {
    -1
}

/// The partitions being fetched (assigned to this consumer), by topic and partition; `None`
/// when the JSON is not librdkafka's statistics.
pub fn fetched_partitions(json: &[u8]) -> Option<HashMap<(String, i32), PartitionOffsets>> {
    let stats: Stats = serde_json::from_slice(json).ok()?;
    let mut out = HashMap::new();
    for (topic, t) in stats.topics {
        for p in t.partitions.into_values() {
            // -1 is librdkafka's internal "unassigned" partition; "none" is not being fetched.
            if p.partition < 0 || p.fetch_state == "none" {
                continue;
            }
            let end = if p.ls_offset >= 0 {
                p.ls_offset
            } else {
                p.hi_offset.max(-1)
            };
            let offsets = PartitionOffsets {
                low: p.lo_offset.max(-1),
                end,
                consumed: p.app_offset.max(-1),
            };
            out.insert((topic.clone(), p.partition), offsets);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fetched_partitions() {
        let json = br#"{"name":"c","topics":{"t":{"topic":"t","partitions":{
            "0":{"partition":0,"fetch_state":"active","lo_offset":0,"hi_offset":12,"ls_offset":10,"app_offset":4},
            "1":{"partition":1,"fetch_state":"none","lo_offset":0,"hi_offset":5,"ls_offset":5,"app_offset":-1001},
            "2":{"partition":2,"fetch_state":"active","lo_offset":3,"hi_offset":9,"ls_offset":-1001,"app_offset":-1001},
            "-1":{"partition":-1,"fetch_state":"none"}}}}}"#;
        let got = fetched_partitions(json).unwrap();
        assert_eq!(got.len(), 2);
        let p0 = got[&("t".to_string(), 0)];
        assert_eq!((p0.low, p0.end, p0.consumed), (0, 10, 4));
        let p2 = got[&("t".to_string(), 2)];
        assert_eq!((p2.low, p2.end, p2.consumed), (3, 9, -1));
        assert!(fetched_partitions(b"not json").is_none());
    }
}
