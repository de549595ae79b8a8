//! The global memory budget (`memory.budget.bytes`) shared by every open file of a process.
//!
//! One [`MemoryBudget`] per process: `streamx ingest` makes one, `streamx worker` makes one at
//! start for every task of every job it runs ([`crate::ingest::Process`]). Each ingest run
//! (a task) draws on it through its own [`BudgetShare`], which also counts what that run's
//! files hold, for its job's `streamx_memory_budget_used_bytes`.
//!
//! Each open file reports its in-memory size after every write through an [`Accounted`] handle;
//! the ingest loop checks [`MemoryBudget::over`] after each record and, when the budget is
//! reached, flushes the largest open files of its own first (they are staged early and join
//! their commit later) until the process's usage is back under [`MemoryBudget::target`]. Nothing
//! fails and nothing grows without bound; small files are the price of too many open partitions
//! for the budget.
//!
//! Open files are not all the memory of a process: records being decoded and split, librdkafka's
//! queues and the allocator's fragments come on top. When the resident set stays above the
//! budget plus its margin even after freed memory went back to the system
//! ([`crate::alloc::resident_excess`]), that excess is taken off what open files may hold, down
//! to half the budget at most, until the resident set is back under the ceiling.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes held by open files, against a limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
    /// Memory the process holds beyond open files and its margin ([`crate::alloc::resident_excess`]
    /// in a process; a stand-in in tests).
    excess: fn() -> u64,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Self::with_excess(limit, crate::alloc::resident_excess)
    }

    /// A budget whose process-wide excess comes from `excess`.
    pub fn with_excess(limit: u64, excess: fn() -> u64) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicU64::new(0),
            excess,
        })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// What open files may hold now: the budget less the process's excess memory, at least half
    /// the budget.
    pub fn available(&self) -> u64 {
        self.limit - (self.excess)().min(self.limit / 2)
    }

    /// Whether open files hold at least what they may ([`MemoryBudget::available`]).
    pub fn over(&self) -> bool {
        self.used() >= self.available()
    }

    /// Where flushing stops: three quarters of what open files may hold, so that one flush frees
    /// a good share rather than one file at a time.
    pub fn target(&self) -> u64 {
        self.available() / 4 * 3
    }
}

impl crate::metrics::Level for MemoryBudget {
    fn level(&self) -> u64 {
        self.used()
    }

    fn capacity(&self) -> u64 {
        self.limit
    }
}

/// One ingest run's (one task's) part of the process's [`MemoryBudget`]: what its own files
/// and queued records hold, counted in the budget too. Dereferences to the budget, so
/// [`MemoryBudget::over`], `used` and `target` are the process's.
#[derive(Debug)]
pub struct BudgetShare {
    budget: Arc<MemoryBudget>,
    held: AtomicU64,
}

impl BudgetShare {
    pub fn new(budget: &Arc<MemoryBudget>) -> Arc<Self> {
        Arc::new(BudgetShare {
            budget: budget.clone(),
            held: AtomicU64::new(0),
        })
    }

    /// The process's budget this share draws on.
    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    /// Bytes this run's files and queued records hold.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }
}

impl Deref for BudgetShare {
    type Target = MemoryBudget;

    fn deref(&self) -> &MemoryBudget {
        &self.budget
    }
}

/// A job's gauge: what this run holds, out of the process's one budget.
impl crate::metrics::Level for BudgetShare {
    fn level(&self) -> u64 {
        self.held()
    }

    fn capacity(&self) -> u64 {
        self.budget.limit
    }
}

/// The share of the budget one open file holds; released when dropped.
#[derive(Debug)]
pub struct Accounted {
    share: Arc<BudgetShare>,
    bytes: u64,
}

impl Accounted {
    pub fn new(share: &Arc<BudgetShare>) -> Self {
        Accounted {
            share: share.clone(),
            bytes: 0,
        }
    }

    /// Records the file's current size, in its run's share and in the process's budget.
    pub fn set(&mut self, bytes: u64) {
        let (share, budget) = (&self.share.held, &self.share.budget.used);
        if bytes >= self.bytes {
            share.fetch_add(bytes - self.bytes, Ordering::Relaxed);
            budget.fetch_add(bytes - self.bytes, Ordering::Relaxed);
        } else {
            share.fetch_sub(self.bytes - bytes, Ordering::Relaxed);
            budget.fetch_sub(self.bytes - bytes, Ordering::Relaxed);
        }
        self.bytes = bytes;
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Accounted {
    fn drop(&mut self) {
        self.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting_follows_sizes_and_drops() {
        let b = BudgetShare::new(&MemoryBudget::new(1000));
        let mut a = Accounted::new(&b);
        a.set(600);
        let mut c = Accounted::new(&b);
        c.set(300);
        assert_eq!(b.used(), 900);
        assert!(!b.over());
        c.set(450);
        assert!(b.over());
        drop(a);
        assert_eq!(b.used(), 450);
        assert_eq!(b.target(), 750);
        drop(c);
        assert_eq!(b.used(), 0);
    }

    static EXCESS: AtomicU64 = AtomicU64::new(0);

    #[test]
    fn memory_held_beyond_open_files_is_taken_off_the_budget_down_to_half() {
        let b = BudgetShare::new(&MemoryBudget::with_excess(1000, || {
            EXCESS.load(Ordering::Relaxed)
        }));
        let mut a = Accounted::new(&b);
        a.set(700);
        assert!(!b.over());
        EXCESS.store(400, Ordering::Relaxed);
        assert_eq!(b.available(), 600);
        assert!(b.over());
        assert_eq!(b.target(), 450);
        EXCESS.store(5000, Ordering::Relaxed);
        assert_eq!(b.available(), 500, "never below half the budget");
        EXCESS.store(0, Ordering::Relaxed);
        assert!(!b.over());
    }

    /// Two runs (tasks) of one process: each share counts its own files, the budget counts
    /// both, and either run sees the other's bytes in `over`.
    #[test]
    fn shares_of_one_budget_count_their_own_files_and_fill_the_one_budget() {
        let budget = MemoryBudget::with_excess(1000, || 0);
        let (one, two) = (BudgetShare::new(&budget), BudgetShare::new(&budget));
        let mut a = Accounted::new(&one);
        a.set(600);
        let mut b = Accounted::new(&two);
        b.set(300);
        assert_eq!((one.held(), two.held(), budget.used()), (600, 300, 900));
        assert!(!two.over());
        b.set(450);
        assert!(one.over() && two.over(), "600 + 450 of 1000");
        use crate::metrics::Level;
        assert_eq!((two.level(), two.capacity()), (450, 1000));
        drop(a);
        assert_eq!((one.held(), budget.used()), (0, 450));
    }
}
