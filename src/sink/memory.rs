//! The global memory budget (`memory.budget.bytes`) shared by every open file of a process.
//!
//! Each open file reports its in-memory size after every write through an [`Accounted`] handle;
//! the ingest loop checks [`MemoryBudget::over`] after each record and, when the budget is
//! reached, flushes the largest open files first (they are staged early and join their commit
//! later) until usage is back under [`MemoryBudget::target`]. Nothing fails and nothing grows
//! without bound; small files are the price of too many open partitions for the budget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes held by open files, against a limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether open files hold at least the budget.
    pub fn over(&self) -> bool {
        self.used() >= self.limit
    }

    /// Where flushing stops: three quarters of the budget, so that one flush frees a good share
    /// rather than one file at a time.
    pub fn target(&self) -> u64 {
        self.limit / 4 * 3
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

/// The share of the budget one open file holds; released when dropped.
#[derive(Debug)]
pub struct Accounted {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Accounted {
    pub fn new(budget: &Arc<MemoryBudget>) -> Self {
        Accounted {
            budget: budget.clone(),
            bytes: 0,
        }
    }

    /// Records the file's current size.
    pub fn set(&mut self, bytes: u64) {
        if bytes >= self.bytes {
            self.budget
                .used
                .fetch_add(bytes - self.bytes, Ordering::Relaxed);
        } else {
            self.budget
                .used
                .fetch_sub(self.bytes - bytes, Ordering::Relaxed);
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
        let b = MemoryBudget::new(1000);
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
}
