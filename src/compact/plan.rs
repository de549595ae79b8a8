//! Planning: which files of which directories are merged, and into how many outputs.
//!
//! Pure functions over listed directories ([`Directory`]), so that selection and bin-packing are
//! unit-tested without a store. The same [`rolls_after`] rule decides output boundaries in the
//! plan (on input sizes) and in the rewrite (on the real size of the output being written), so a
//! concatenated format gets exactly the planned outputs and a re-encoded one is judged on what
//! it really wrote.

use std::collections::HashSet;

use serde::Serialize;

use super::config::CompactConfig;

/// One data file of a directory, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataFile {
    /// Key relative to the store root.
    pub path: String,
    pub bytes: u64,
    /// Last modification, ms since the epoch.
    pub modified_ms: i64,
}

impl DataFile {
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// One data directory of a topic: every data file directly in it, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    pub topic: String,
    /// Relative to the topic directory (`dt=2026-11-01/hour=03`; empty = the topic directory).
    pub dir: String,
    pub files: Vec<DataFile>,
}

/// The planned work on one directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirPlan {
    pub topic: String,
    pub dir: String,
    /// Inputs in row order (name order: Kafka partition, then offsets).
    pub inputs: Vec<DataFile>,
    /// Estimated output sizes (from input sizes).
    pub outputs: Vec<u64>,
}

impl DirPlan {
    pub fn input_bytes(&self) -> u64 {
        self.inputs.iter().map(|f| f.bytes).sum()
    }
}

/// Why a directory is left alone this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Skip {
    /// Fewer small files than `compact.min.input.files`.
    FewSmallFiles { small: usize },
    /// A file was committed into it less than `compact.min.age.ms` ago.
    Open { age_ms: i64 },
}

/// Selects the inputs of a directory and packs them, or says why it is skipped.
///
/// Inputs are the small files (below `compact.small.file.ratio` x target) that no Kafka
/// partition's newest commit names (`pinned`: ingest recovery replays those); the directory
/// qualifies with at least `compact.min.input.files` of them and no file younger than
/// `compact.min.age.ms`.
pub fn select(
    dir: &Directory,
    pinned: &HashSet<String>,
    cfg: &CompactConfig,
    now_ms: i64,
) -> Result<DirPlan, Skip> {
    let newest = dir.files.iter().map(|f| f.modified_ms).max().unwrap_or(0);
    let age_ms = now_ms - newest;
    if age_ms < cfg.min_age_ms as i64 {
        return Err(Skip::Open { age_ms });
    }
    let inputs: Vec<DataFile> = dir
        .files
        .iter()
        .filter(|f| f.bytes < cfg.small_below() && !pinned.contains(&f.path))
        .cloned()
        .collect();
    if inputs.len() < cfg.min_input_files {
        return Err(Skip::FewSmallFiles {
            small: inputs.len(),
        });
    }
    let sizes: Vec<u64> = inputs.iter().map(|f| f.bytes).collect();
    let outputs = pack(&sizes, cfg.target_bytes)
        .iter()
        .map(|bin| bin.iter().map(|&i| sizes[i]).sum())
        .collect();
    Ok(DirPlan {
        topic: dir.topic.clone(),
        dir: dir.dir.clone(),
        inputs,
        outputs,
    })
}

/// Whether the output being written closes after an input, given its size so far (`current`)
/// and the estimated size of everything still to come (`rest`): once it reaches the target,
/// unless the rest is a small remainder (< 0.75 x target) that fits with room to spare
/// (total <= 1.25 x: `rest` is an estimate for re-encoded formats, and no output may pass 1.5 x).
pub fn rolls_after(current: u64, rest: u64, target: u64) -> bool {
    if current < target || rest == 0 {
        return false;
    }
    let remainder_fits = rest * 4 < target * 3 && (current + rest) * 4 <= target * 5;
    !remainder_fits
}

/// Packs sizes in order into bins with [`rolls_after`]; returns the indices of each bin.
pub fn pack(sizes: &[u64], target: u64) -> Vec<Vec<usize>> {
    let total: u64 = sizes.iter().sum();
    let mut bins = vec![Vec::new()];
    let (mut current, mut done) = (0u64, 0u64);
    for (i, &s) in sizes.iter().enumerate() {
        bins.last_mut().expect("one bin").push(i);
        current += s;
        done += s;
        if rolls_after(current, total - done, target) {
            bins.push(Vec::new());
            current = 0;
        }
    }
    bins.retain(|b| !b.is_empty());
    bins
}

/// Keeps the plans whose inputs fit in `max_bytes` in total, in order; the first plan is always
/// kept, so one huge directory still makes progress.
pub fn limit_bytes(plans: Vec<DirPlan>, max_bytes: u64) -> (Vec<DirPlan>, usize) {
    let mut total = 0;
    let mut kept = Vec::new();
    let mut deferred = 0;
    for p in plans {
        let b = p.input_bytes();
        if kept.is_empty() || total + b <= max_bytes {
            total += b;
            kept.push(p);
        } else {
            deferred += 1;
        }
    }
    (kept, deferred)
}

/// The `name=value` levels of a directory path, values Hive-unescaped; levels without `=` are
/// left out.
pub fn partition_values(dir: &str) -> Vec<(String, String)> {
    dir.split('/')
        .filter_map(|seg| seg.split_once('='))
        .map(|(k, v)| {
            (
                crate::partition::escape::unescape(k),
                crate::partition::escape::unescape(v),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, bytes: u64, modified_ms: i64) -> DataFile {
        DataFile {
            path: format!("topics/t/dt=1/{name}"),
            bytes,
            modified_ms,
        }
    }

    fn cfg() -> CompactConfig {
        CompactConfig {
            target_bytes: 1000,
            min_input_files: 3,
            small_ratio_percent: 50,
            min_age_ms: 100,
            ..CompactConfig::default()
        }
    }

    fn sums(sizes: &[u64], target: u64) -> Vec<u64> {
        pack(sizes, target)
            .iter()
            .map(|b| b.iter().map(|&i| sizes[i]).sum())
            .collect()
    }

    #[test]
    fn bins_land_in_range_except_one_remainder() {
        assert_eq!(sums(&[300; 10], 1000), vec![1200, 1200, 600]);
        assert_eq!(sums(&[300; 7], 1000), vec![1200, 900]);
        // 1200 + 300 would pass 1.25 x: the remainder stands alone; 1000 + 200 joins.
        assert_eq!(sums(&[300; 5], 1000), vec![1200, 300]);
        assert_eq!(sums(&[500, 500, 200], 1000), vec![1200]);
        assert_eq!(sums(&[100; 3], 1000), vec![300]);
        assert_eq!(sums(&[], 1000), Vec::<u64>::new());
        for n in 1..60 {
            for size in [7u64, 90, 333, 499] {
                let out = sums(&vec![size; n], 1000);
                let small = out.iter().filter(|&&s| s * 4 < 3000).count();
                assert!(small <= 1, "{n} x {size}: {out:?}");
                for s in &out {
                    assert!(*s * 2 <= 3000 + 2 * size, "{n} x {size}: {out:?}");
                }
                assert_eq!(out.iter().sum::<u64>(), n as u64 * size);
            }
        }
    }

    #[test]
    fn selection_rules() {
        let now = 10_000;
        let files: Vec<DataFile> = (0..4)
            .map(|i| file(&format!("t+0+{i}.parquet"), 100, 1000))
            .chain([file("big.parquet", 600, 1000)])
            .collect();
        let dir = Directory {
            topic: "t".into(),
            dir: "dt=1".into(),
            files,
        };
        let plan = select(&dir, &HashSet::new(), &cfg(), now).unwrap();
        assert_eq!(plan.inputs.len(), 4, "the big file is not an input");
        assert_eq!(plan.outputs, vec![400]);
        // A pinned file (named by a newest commit) is left alone: too few inputs remain.
        let mut pinned = HashSet::new();
        pinned.insert(dir.files[0].path.clone());
        pinned.insert(dir.files[1].path.clone());
        assert_eq!(
            select(&dir, &pinned, &cfg(), now),
            Err(Skip::FewSmallFiles { small: 2 })
        );
        // Open: a file younger than min.age.
        assert_eq!(
            select(&dir, &HashSet::new(), &cfg(), 1050),
            Err(Skip::Open { age_ms: 50 })
        );
    }

    #[test]
    fn second_run_plans_nothing() {
        let target = 1000;
        let sizes = vec![170u64; 23];
        let outs = sums(&sizes, target);
        let dir = Directory {
            topic: "t".into(),
            dir: String::new(),
            files: outs
                .iter()
                .enumerate()
                .map(|(i, &b)| file(&format!("o{i}"), b, 0))
                .collect(),
        };
        assert!(select(&dir, &HashSet::new(), &cfg(), 1_000_000).is_err());
    }

    #[test]
    fn byte_limit_keeps_whole_directories() {
        let plan = |b: u64| DirPlan {
            topic: "t".into(),
            dir: String::new(),
            inputs: vec![file("x", b, 0)],
            outputs: vec![b],
        };
        let (kept, deferred) = limit_bytes(vec![plan(500), plan(400), plan(200)], 600);
        assert_eq!((kept.len(), deferred), (1, 2));
        let (kept, _) = limit_bytes(vec![plan(5000)], 600);
        assert_eq!(kept.len(), 1, "the first directory always goes");
    }

    #[test]
    fn partition_values_unescape() {
        assert_eq!(
            partition_values("region=a%2Fb/hour=03/x"),
            vec![
                ("region".to_string(), "a/b".to_string()),
                ("hour".to_string(), "03".to_string())
            ]
        );
    }
}
