//! The process's allocator setup (glibc malloc), per subcommand: how many arenas, from which size
//! a buffer is mapped on its own, and for `streamx ingest` a watcher that hands freed memory back
//! to the system once the resident set passes the memory budget plus [`RSS_MARGIN_BYTES`].
//!
//! ```text
//!  profile      arenas                  mmap / trim threshold   freed memory goes back
//!  Lean         1                       128 KiB                 at once (buffers are mapped)
//!  Ingest       partition workers + 1   16 MiB                  as Compaction, and all of
//!                                                               it while RSS > budget + margin
//!  Compaction   directory threads + 1   16 MiB                  16 MiB free atop a heap
//! ```
//!
//! Why (measured on the 2-core machine, README "Performance"): glibc's defaults (8 arenas per
//! core, a threshold that rises after large frees) keep tens of MiB of freed memory that
//! `memory.budget.bytes` cannot see. The lean setting fixes that, but then every buffer over
//! 128 KiB is mapped, faulted in page by page and unmapped on each use, and all threads queue on
//! one arena's lock: a third of `streamx compact`'s CPU and a tenth or more of ingest's. Arenas per
//! thread and 16 MiB thresholds remove that cost; for ingest, whose memory is bounded by its
//! budget, the watcher keeps the memory bound: it reads the resident set every
//! [`WATCH_INTERVAL`] and calls `malloc_trim(0)` only above the ceiling, so a job well inside its
//! budget never pays for trimming (trimming on a timer regardless measured no CPU gain at all).
//! What is still above the ceiling after trimming is live memory the budget does not see (records
//! being decoded and split, librdkafka's queues, allocator fragments): the watcher publishes it as
//! [`resident_excess`], and the memory budget counts it against open files
//! ([`crate::sink::memory::MemoryBudget`]), so that they are flushed sooner while it lasts.
//! Everything else (worker, query, ...) keeps the lean setting and never reports an excess.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How malloc is set up.
#[derive(Debug, Clone, Copy)]
pub enum MallocProfile {
    /// One arena, 128 KiB thresholds: freed buffers go back to the system at once.
    Lean,
    /// `streamx ingest`: an arena per thread that allocates (the partition workers and the
    /// consumer), 16 MiB thresholds, and the resident-set ceiling `budget_bytes` +
    /// [`RSS_MARGIN_BYTES`].
    Ingest { workers: usize, budget_bytes: u64 },
    /// `streamx compact`: an arena per directory thread plus one, 16 MiB thresholds (its
    /// memory is bounded by streaming row group by row group).
    Compaction { parallelism: usize },
}

/// How far above `memory.budget.bytes` the resident set may grow before freed memory is handed
/// back and open files are charged for the excess (the memory bench's target is budget +
/// 150 MiB; the resident set overshoots the ceiling by up to ~60 MiB before the watcher's next
/// look: 64 MiB here peaked at 373-384 MiB in that bench, 32 MiB at 345-364 MiB).
pub const RSS_MARGIN_BYTES: u64 = 32 << 20;

/// How often the ingest watcher reads the resident set.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(100);

const LARGE_THRESHOLD: i32 = 16 << 20;

/// Bytes the resident set stood above the ingest ceiling at the watcher's last look, after
/// trimming (0 below it, and without a watcher).
static RESIDENT_EXCESS: AtomicU64 = AtomicU64::new(0);

/// Bytes the process's resident set stood above `memory.budget.bytes` + [`RSS_MARGIN_BYTES`]
/// when the watcher last looked, after handing freed memory back: memory that open files are not
/// charged for but that the process still holds.
pub fn resident_excess() -> u64 {
    RESIDENT_EXCESS.load(Ordering::Relaxed)
}

/// Sets malloc up for `profile`; call before the threads it concerns start. For
/// [`MallocProfile::Ingest`] also starts the watcher thread (it runs until the process exits).
pub fn tune(profile: MallocProfile) {
    let (arenas, threshold) = match profile {
        MallocProfile::Lean => (1, 128 * 1024),
        MallocProfile::Ingest { workers, .. } => (workers + 1, LARGE_THRESHOLD),
        MallocProfile::Compaction { parallelism } => (parallelism + 1, LARGE_THRESHOLD),
    };
    set(arenas.min(64) as i32, threshold);
    if let MallocProfile::Ingest { budget_bytes, .. } = profile {
        let ceiling = budget_bytes.saturating_add(RSS_MARGIN_BYTES);
        let spawned = std::thread::Builder::new()
            .name("streamx-rss-ceiling".into())
            .spawn(move || loop {
                std::thread::sleep(WATCH_INTERVAL);
                RESIDENT_EXCESS.store(excess_after_trim(ceiling), Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the resident-set watcher: {e}");
        }
    }
}

/// Trims when the resident set is above `ceiling`; returns how far above it stays.
fn excess_after_trim(ceiling: u64) -> u64 {
    let Some(rss) = resident_bytes() else {
        return 0;
    };
    if rss <= ceiling {
        return 0;
    }
    trim();
    resident_bytes().map_or(0, |rss| rss.saturating_sub(ceiling))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set(arenas: i32, threshold: i32) {
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
        libc::mallopt(libc::M_MMAP_THRESHOLD, threshold);
        libc::mallopt(libc::M_TRIM_THRESHOLD, threshold);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set(_arenas: i32, _threshold: i32) {}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

/// The process's resident set in bytes (`/proc/self/statm`), where the system has one.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_set_grows_with_touched_memory() {
        let before = resident_bytes().expect("statm on Linux");
        // black_box: an optimised build would otherwise drop the unread block altogether.
        let block = std::hint::black_box(vec![1u8; 64 << 20]);
        let after = resident_bytes().unwrap();
        assert!(after >= before + (32 << 20), "{before} -> {after}");
        drop(block);
    }

    #[test]
    fn live_memory_above_the_ceiling_is_reported_as_excess() {
        let block = std::hint::black_box(vec![1u8; 128 << 20]);
        trim();
        let rss = resident_bytes().unwrap();
        // The block is live: trimming cannot hand it back, so it stays above a ceiling set below
        // where the resident set stands with it (other tests freeing memory meanwhile can take
        // some of the excess off, not most of it).
        let excess = excess_after_trim(rss - (96 << 20));
        assert!(excess >= 48 << 20, "excess {excess} with {rss} resident");
        assert_eq!(excess_after_trim(rss + (256 << 20)), 0);
        drop(block);
    }
}
