//! Helpers of the crash tests (tests/kill_restart.rs, tests/zombie.rs): the real binary as a
//! child process with its log kept for failures, seeded random moments, and a view of what a
//! store holds (a local directory or a bucket, both read through object_store) at any moment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use streamx::commit::{CommitLog, CommitRecord};
use streamx::store::Store;

use super::count_offsets;

/// A small seeded generator (the moments of a run replay from the printed seed).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.next(1 << 30) as f64 / (1u64 << 30) as f64
    }

    /// `0..n` in random order.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            v.swap(i, self.next(i as u64 + 1) as usize);
        }
        v
    }
}

/// `STREAMX_TEST_SEED` or the clock; printed so that a failing run's moments can be replayed.
pub fn seed(label: &str) -> u64 {
    let seed = std::env::var("STREAMX_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{label}: seed {seed} (STREAMX_TEST_SEED={seed} replays its random moments)");
    seed
}

/// The log filter of the crash tests' processes: info, plus the memory-budget flush lines.
pub const LOG_FILTER: &str = "info,librdkafka=warn,streamx::ingest=debug";

/// A running `streamx ingest`, killed if still running when dropped (a failing test leaves no
/// process behind).
pub struct Ingest(pub Child);

impl std::ops::Deref for Ingest {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Ingest {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `streamx ingest` with `args`, its stderr appended to `log`, optionally with a
/// `STREAMX_FAULT` plan.
pub fn spawn_ingest(args: &[String], fault: Option<&str>, log: &Path) -> Ingest {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = Command::new(super::streamx_bin());
    cmd.arg("ingest")
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .env("STREAMX_LOG", LOG_FILTER)
        // Plain `key=value` fields, for the tests that read the log.
        .env("NO_COLOR", "1");
    if let Some(f) = fault {
        cmd.env("STREAMX_FAULT", f);
    }
    Ingest(cmd.spawn().expect("spawn streamx"))
}

/// Waits for `child` to exit, at most `deadline`; `None` if it is still running.
pub fn wait_exit(child: &mut Child, deadline: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to a child process.
pub fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: plain kill(2) on the pid of a child we have not reaped yet.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({}, {signal})", child.id());
}

/// Whether every thread of process `pid` is stopped (SIGSTOP delivered everywhere).
pub fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut any = false;
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            return false;
        };
        // The state follows the parenthesised command name.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        if !matches!(state, Some("T") | Some("t")) {
            return false;
        }
        any = true;
    }
    any
}

/// Prints the last lines of the processes' logs when the test fails.
pub struct PrintOnPanic(pub Vec<PathBuf>);

impl Drop for PrintOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for path in &self.0 {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(80).collect();
                eprintln!("--- last lines of {} ---", path.display());
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

/// Lines of the memory-budget flushes that staged at least one file (`flushed=N`, N > 0).
pub fn spill_lines(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("memory budget reached"))
        .filter(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("flushed="))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n > 0)
        })
        .count()
}

/// What a store holds, read with object_store (a local directory and a bucket alike).
pub struct StoreView {
    rt: tokio::runtime::Runtime,
    pub store: Store,
    log: CommitLog,
    /// How often polling this store is reasonable (a bucket costs an HTTP round trip per list).
    pub poll: Duration,
}

impl StoreView {
    pub fn new(url: &str, options: &BTreeMap<String, String>) -> Self {
        let store = Store::with_url(url, options).unwrap();
        let poll = if url.contains("://") {
            Duration::from_millis(200)
        } else {
            Duration::from_millis(50)
        };
        StoreView {
            rt: tokio::runtime::Runtime::new().unwrap(),
            log: CommitLog::new(store.clone(), "topics", "crash-test-reader"),
            store,
            poll,
        }
    }

    pub fn local(dir: &Path) -> Self {
        Self::new(&dir.to_string_lossy(), &BTreeMap::new())
    }

    /// Keys (relative to the store root) below `rel`.
    pub fn list(&self, rel: &str) -> Vec<String> {
        let prefix = self.store.path(rel);
        let root = self.store.root.as_ref().to_string();
        self.rt.block_on(async {
            let metas: Vec<_> = self
                .store
                .inner
                .list(Some(&prefix))
                .try_collect()
                .await
                .unwrap();
            metas
                .into_iter()
                .map(|m| {
                    let k = m.location.as_ref();
                    k.strip_prefix(&root)
                        .map(|r| r.trim_start_matches('/'))
                        .unwrap_or(k)
                        .to_string()
                })
                .collect()
        })
    }

    pub fn exists(&self, rel: &str) -> bool {
        let path = self.store.path(rel);
        match self.rt.block_on(self.store.inner.head(&path)) {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => panic!("head {path}: {e}"),
        }
    }

    pub fn get(&self, rel: &str) -> Bytes {
        let path = self.store.path(rel);
        self.rt.block_on(async {
            self.store
                .inner
                .get(&path)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        })
    }

    /// The newest commit of a Kafka partition, if any (one list and one read).
    pub fn newest_commit(&self, topic: &str, partition: i32) -> Option<CommitRecord> {
        let newest = self
            .list(&format!("topics/_streamx/commits/{topic}/{partition}"))
            .into_iter()
            .filter_map(|k| {
                k.rsplit('/')
                    .next()?
                    .strip_suffix(".json")?
                    .parse::<u64>()
                    .ok()
            })
            .max()?;
        let path = self.log.commit_path(topic, partition, newest);
        Some(self.rt.block_on(self.log.read_commit(&path)).unwrap())
    }

    /// The last committed offset of each partition (`None`: nothing committed yet).
    pub fn committed_through(&self, topic: &str, partitions: i32) -> Vec<Option<i64>> {
        (0..partitions)
            .map(|p| self.newest_commit(topic, p).map(|c| c.end_offset))
            .collect()
    }

    /// Every commit of a partition, oldest first.
    pub fn commits(&self, topic: &str, partition: i32) -> Vec<CommitRecord> {
        self.rt
            .block_on(self.log.list_commits(topic, partition))
            .unwrap()
    }

    /// Files of the newest commits not (yet) at their final key: > 0 right after a kill means
    /// the process died inside the publish step.
    pub fn unpublished(&self, topic: &str, partitions: i32) -> usize {
        (0..partitions)
            .filter_map(|p| self.newest_commit(topic, p))
            .flat_map(|c| c.files)
            .filter(|f| !self.exists(&f.final_path))
            .count()
    }

    /// Staged files nobody committed (yet): left by a process killed before its commit object,
    /// by spills of a commit that never happened, or discarded late by a fenced writer.
    pub fn staged(&self, topic: &str) -> usize {
        self.list(&format!("topics/_streamx/staging/{topic}")).len()
    }

    /// Data files a reader sees under `topics/<topic>/` (no `_`- or `.`-prefixed segment).
    pub fn data_files(&self, topic: &str) -> Vec<String> {
        let mut files: Vec<String> = self
            .list(&format!("topics/{topic}"))
            .into_iter()
            .filter(|k| {
                k.split('/')
                    .skip(2)
                    .all(|s| !s.starts_with('_') && !s.starts_with('.'))
                    && k.ends_with(".parquet")
            })
            .collect();
        files.sort();
        files
    }

    /// (partition, offset) -> how many times a reader sees it.
    pub fn offsets(&self, topic: &str) -> BTreeMap<(i32, i64), u32> {
        let mut seen = BTreeMap::new();
        for f in self.data_files(topic) {
            count_offsets(self.get(&f), &mut seen);
        }
        seen
    }

    /// The commit records of each partition form a gap-free chain: consecutive sequence numbers
    /// (from 0, or from the oldest record kept by `commit.history.keep`), each commit starting
    /// right after the previous one's end, every listed file published; and, when the whole
    /// history is kept, every data file a reader sees belongs to a commit. Returns the number of
    /// commit records read.
    pub fn assert_commit_chain(&self, topic: &str, partitions: i32) -> usize {
        let mut committed_files = std::collections::BTreeSet::new();
        let mut total = 0;
        let mut whole_history = true;
        for p in 0..partitions {
            let commits = self.commits(topic, p);
            let first_seq = commits.first().map_or(0, |c| c.seq);
            whole_history &= first_seq == 0;
            for (i, c) in commits.iter().enumerate() {
                assert_eq!(
                    c.seq,
                    first_seq + i as u64,
                    "partition {p}: commit sequence has a gap"
                );
                assert_eq!((c.topic.as_str(), c.partition), (topic, p));
                assert!(c.start_offset <= c.end_offset, "partition {p}: {c:?}");
                if i > 0 {
                    assert_eq!(
                        c.start_offset,
                        commits[i - 1].end_offset + 1,
                        "partition {p}: commit {} does not start after commit {}",
                        c.seq,
                        c.seq - 1
                    );
                }
                for f in &c.files {
                    assert!(
                        f.first_offset >= c.start_offset && f.last_offset <= c.end_offset,
                        "partition {p}: a file of commit {} lies outside its range: {f:?}",
                        c.seq
                    );
                    assert!(
                        self.exists(&f.final_path),
                        "partition {p}: {} of commit {} was never published",
                        f.final_path,
                        c.seq
                    );
                    committed_files.insert(f.final_path.clone());
                }
            }
            total += commits.len();
        }
        let strays: Vec<String> = self
            .data_files(topic)
            .into_iter()
            .filter(|f| whole_history && !committed_files.contains(f))
            .take(10)
            .collect();
        assert!(
            strays.is_empty(),
            "data files no commit lists (visible to readers): {strays:?}"
        );
        total
    }
}

/// An S3 bucket (in the emulator) emptied and deleted when dropped, whether the test passed or
/// failed; best effort, so that a failing test still reports its own failure.
pub struct TempBucket {
    pub endpoint: String,
    pub name: String,
    pub store: Store,
}

impl Drop for TempBucket {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Runtime::new() else {
            return;
        };
        rt.block_on(async {
            let metas: Vec<_> = self
                .store
                .inner
                .list(None)
                .try_collect()
                .await
                .unwrap_or_default();
            for m in metas {
                let _ = self.store.inner.delete(&m.location).await;
            }
        });
        // moto deletes an empty bucket on an unsigned request; no unwrap (this may run while
        // the test is already panicking).
        use std::io::{Read, Write};
        let hostport = self
            .endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/');
        if let Ok(mut s) = std::net::TcpStream::connect(hostport) {
            let request = format!(
                "DELETE /{} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.name
            );
            if s.write_all(request.as_bytes()).is_ok() {
                let _ = s.read_to_end(&mut Vec::new());
            }
        }
    }
}
