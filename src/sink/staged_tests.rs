//! Files staged early (memory budget, schema change) against the store-wide sweep: a writer must
//! commit them before the sweep may take them as orphans (issue: "the sweep deletes a live
//! writer's staged files; the commit names them anyway").

use std::time::{Duration, Instant};

use crate::clock::wall_ms;
use crate::commit::{Recovered, StagingCleanup};
use crate::sink::rotation::RotateReason;
use crate::sink::testing::{chunk, context, written};
use crate::sink::{Committed, PartitionWriter};

const AGE_MS: u64 = 2000;

fn fresh() -> Recovered {
    Recovered {
        next_seq: 0,
        next_offset: None,
    }
}

/// A spilled file, on a partition that then goes quiet under a commit with no time bound
/// (flush.size only): the writer's tick commits it once half the cleanup age has passed, so a
/// sweep after the full age finds nothing of it to delete and every record lands once. Before
/// the fix the tick did nothing (the spill never set its time), the sweep deleted the staged
/// file and the next commit failed with MissingFile: the records were lost.
#[test]
fn a_spilled_file_is_committed_before_the_sweep_may_take_it() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let age = AGE_MS.to_string();
    let ctx = context(
        dir.path(),
        &runtime,
        &[("flush.size", "1000"), ("staging.cleanup.age.ms", &age)],
    );
    let mut writer = PartitionWriter::new(&ctx, "t", 0, &fresh()).unwrap();
    let pushed = writer.push_chunk(&ctx, &mut chunk(&[0, 1, 2, 3])).unwrap();
    assert_eq!(pushed, Committed::Nothing);
    let dirs: Vec<String> = writer.open_file_sizes().into_iter().map(|d| d.0).collect();
    assert_eq!(dirs.len(), 1, "one open file after a full batch");
    writer.spill(&ctx, &dirs[0]).unwrap();
    // The partition is quiet: ticks come, records do not.
    let half_age = Instant::now() + Duration::from_millis(AGE_MS / 2 + 50);
    let ticked = writer.tick(&ctx, half_age, wall_ms()).unwrap();
    assert_eq!(
        ticked,
        Committed::Through { end: 3 },
        "the tick commits the spilled file"
    );
    // Any process's sweep, once the staged file is older than the cleanup age.
    let sweep_everything = StagingCleanup {
        min_age: Duration::ZERO,
    };
    runtime
        .block_on(ctx.commit_log.sweep(sweep_everything))
        .unwrap();
    writer.rotate(&ctx, RotateReason::Shutdown).unwrap();
    assert_eq!(written(dir.path()), vec![vec![0, 1, 2, 3]]);
}

/// A writer that missed its tick (a stalled process) must not name a spilled file older than
/// three quarters of the cleanup age: the commit is given up and the records are consumed again
/// after recovery, instead of being committed as a file the sweep may already have deleted.
#[test]
fn a_commit_naming_a_stale_spilled_file_is_given_up() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(
        dir.path(),
        &runtime,
        &[("flush.size", "1000"), ("staging.cleanup.age.ms", "1000")],
    );
    let mut writer = PartitionWriter::new(&ctx, "t", 0, &fresh()).unwrap();
    writer.push_chunk(&ctx, &mut chunk(&[0, 1, 2, 3])).unwrap();
    let dirs: Vec<String> = writer.open_file_sizes().into_iter().map(|d| d.0).collect();
    writer.spill(&ctx, &dirs[0]).unwrap();
    let spilled = Instant::now();
    // A stall: the process does nothing for longer than 3/4 of the age.
    while spilled.elapsed() < Duration::from_millis(800) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let rotated = writer.rotate(&ctx, RotateReason::Shutdown).unwrap();
    assert_eq!(rotated, Committed::Fenced, "the stale commit is given up");
    assert!(written(dir.path()).is_empty(), "nothing was committed");
    let recovered = runtime.block_on(ctx.commit_log.recover("t", 0)).unwrap();
    assert_eq!(
        recovered,
        fresh(),
        "the records are consumed again from offset 0"
    );
}
