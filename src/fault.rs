//! Fault-injection points for the crash tests.
//!
//! `STREAMX_FAULT=<point>[@<n>][,<point>[@<n>]...]` makes the process abort (no cleanup, no
//! flushing: the same as `kill -9` for the store and the broker) the n-th time (default 1st) it
//! passes `<point>`. Points are named where they are called, e.g. `commit.after_stage`,
//! `commit.after_commit_object`, `commit.after_first_publish`, `commit.after_publish`. Unset, a
//! point costs one relaxed atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static PLAN: OnceLock<HashMap<String, (u64, AtomicU64)>> = OnceLock::new();

fn plan() -> &'static HashMap<String, (u64, AtomicU64)> {
    PLAN.get_or_init(|| {
        let spec = std::env::var("STREAMX_FAULT").unwrap_or_default();
        spec.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                let (name, n) = match s.trim().split_once('@') {
                    Some((name, n)) => (name, n.parse().unwrap_or(1)),
                    None => (s.trim(), 1),
                };
                (name.to_string(), (n, AtomicU64::new(0)))
            })
            .collect()
    })
}

/// Aborts the process if `STREAMX_FAULT` names this point and its hit count is reached.
pub fn point(name: &str) {
    let plan = plan();
    if plan.is_empty() {
        return;
    }
    if let Some((at, hits)) = plan.get(name) {
        if hits.fetch_add(1, Ordering::Relaxed) + 1 == *at {
            eprintln!("streamx: fault injection: aborting at {name}");
            std::process::abort();
        }
    }
}
