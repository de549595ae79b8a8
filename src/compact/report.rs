//! What a run planned and did, and how it is shown: the `--dry-run` table, `--json`, and the
//! one-line summary.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::plan::{DirPlan, Skip};

/// A directory left alone, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub topic: String,
    pub dir: String,
    #[serde(flatten)]
    pub skip: Skip,
}

/// A directory that could not be compacted this run (nothing of it was lost).
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub topic: String,
    pub dir: String,
    pub message: String,
    /// Confined to the directory (a corrupt input, incompatible schemas), not the store.
    pub local: bool,
}

/// The plan and the outcome of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub plans: Vec<DirPlan>,
    pub skipped: Vec<Skipped>,
    /// Directories planned but left for a later run by `compact.max.bytes.per.run`.
    pub deferred: usize,
    /// Swaps of killed runs completed at the start of this one.
    pub recovered: usize,
    pub dirs_done: usize,
    /// Directories another compactor owned (lost create race).
    pub backed_off: usize,
    pub files_in: usize,
    pub files_out: usize,
    pub rows: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The longest step from the first publish to the last input moved to the trash of a
    /// directory (ms): the only time a directory-listing reader can see a row twice.
    pub duplicate_window_ms: u64,
    #[serde(skip)]
    pub elapsed: Duration,
    pub problems: Vec<Problem>,
}

fn label(topic: &str, dir: &str) -> String {
    if dir.is_empty() {
        topic.to_string()
    } else {
        format!("{topic}/{dir}")
    }
}

impl Report {
    /// The plan as a table: one line per directory.
    pub fn plan_table(&self) -> String {
        let mut out = String::new();
        let rows: Vec<[String; 4]> = self
            .plans
            .iter()
            .map(|p| {
                let sizes: Vec<String> = p.outputs.iter().map(|b| human(*b)).collect();
                [
                    label(&p.topic, &p.dir),
                    p.inputs.len().to_string(),
                    human(p.input_bytes()),
                    format!("{} ({})", p.outputs.len(), sizes.join(", ")),
                ]
            })
            .collect();
        let head = [
            "directory",
            "input files",
            "input bytes",
            "planned outputs (est.)",
        ];
        let width = |i: usize| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        };
        let w = [width(0), width(1), width(2)];
        let mut line = |c: [&str; 4]| {
            let _ = writeln!(
                out,
                "{:<a$}  {:>b$}  {:>c$}  {}",
                c[0],
                c[1],
                c[2],
                c[3],
                a = w[0],
                b = w[1],
                c = w[2]
            );
        };
        line(head);
        for r in &rows {
            line([r[0].as_str(), r[1].as_str(), r[2].as_str(), r[3].as_str()]);
        }
        let files: usize = self.plans.iter().map(|p| p.inputs.len()).sum();
        let outputs: usize = self.plans.iter().map(|p| p.outputs.len()).sum();
        let _ = writeln!(
            out,
            "{} directories: {files} files -> {outputs} planned; {} skipped, {} deferred to a later run",
            self.plans.len(),
            self.skipped.len(),
            self.deferred
        );
        out
    }

    /// The one-line summary of a run.
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-3);
        let mut s = format!(
            "compacted {} directories: {} files -> {} files, {} rows, {} -> {}, {:.1} MB/s in {:.1} s",
            self.dirs_done,
            self.files_in,
            self.files_out,
            self.rows,
            human(self.bytes_in),
            human(self.bytes_out),
            self.bytes_in as f64 / 1e6 / secs,
            secs
        );
        if self.dirs_done > 0 {
            let _ = write!(
                s,
                "; longest publish -> delete window {} ms",
                self.duplicate_window_ms
            );
        }
        if self.recovered > 0 {
            let _ = write!(s, "; completed {} swaps of an earlier run", self.recovered);
        }
        if self.backed_off > 0 {
            let _ = write!(
                s,
                "; {} directories left to another compactor",
                self.backed_off
            );
        }
        if !self.problems.is_empty() {
            let _ = write!(s, "; {} directories failed", self.problems.len());
        }
        s
    }
}

/// Bytes for people: 1.5 MiB.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(10), "10 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(128 << 20), "128.0 MiB");
    }
}
