//! The commit protocol under store faults (a [`FaultyStore`] over the local store): ambiguous
//! creates, lost responses, broken chains, pruning, the sweep and staging cleanup.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use object_store::ObjectStoreExt;

use super::*;
use crate::store::durable::DurableLocal;
use crate::store::faults::{FaultAction, FaultRule, FaultyStore, Op};

/// The local store under `dir`, wrapped in a fault injector.
fn faulty(dir: &std::path::Path) -> (Store, Arc<FaultyStore>) {
    let real = Store::with_url(dir.to_str().unwrap(), &BTreeMap::new()).unwrap();
    let faults = Arc::new(FaultyStore::new(real.inner.clone()));
    let store = Store {
        inner: faults.clone(),
        ..real
    };
    (store, faults)
}

fn file(p: i32, first: i64, last: i64) -> PendingFile {
    let name = final_file_name("t", p, first, last, 10, "raw");
    PendingFile {
        final_path: format!("topics/t/partition={p}/{name}"),
        data: Bytes::from(format!("{first}..{last}\n")),
        rows: (last - first + 1) as u64,
        first_offset: first,
        last_offset: last,
    }
}

async fn commit(log: &CommitLog, seq: u64, first: i64, last: i64) -> CommitOutcome {
    log.commit("t", 0, seq, first, last, vec![file(0, first, last)], vec![])
        .await
        .unwrap()
}

fn final_exists(dir: &std::path::Path, first: i64, last: i64) -> bool {
    dir.join(file(0, first, last).final_path).exists()
}

#[tokio::test]
async fn a_retried_create_that_had_succeeded_is_our_commit_not_a_fence() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = faulty(dir.path());
    // The create is applied, then the client sees AlreadyExists (its retry after a lost answer).
    faults.add(FaultRule::new(
        Op::Put,
        "_streamx/commits/",
        FaultAction::ApplyThenAlreadyExists,
    ));
    let log = CommitLog::new(store, "topics", "w1");
    assert!(matches!(
        commit(&log, 0, 0, 9).await,
        CommitOutcome::Committed(_)
    ));
    assert_eq!(faults.fired(), 1);
    assert!(final_exists(dir.path(), 0, 9), "our files were published");
    let rec = log.recover("t", 0).await.unwrap();
    assert_eq!(rec.next_offset, Some(10));
}

#[tokio::test]
async fn a_record_by_another_writer_still_fences_after_an_ambiguous_create() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = faulty(dir.path());
    let a = CommitLog::new(store.clone(), "topics", "a");
    let b = CommitLog::new(store, "topics", "b");
    assert!(matches!(
        commit(&a, 0, 0, 9).await,
        CommitOutcome::Committed(_)
    ));
    faults.add(FaultRule::new(
        Op::Put,
        "_streamx/commits/",
        FaultAction::Fail,
    ));
    // b's first attempt never reached the store; its retry finds a's record.
    assert!(b
        .commit("t", 0, 0, 0, 4, vec![file(0, 0, 4)], vec![])
        .await
        .is_err());
    assert!(matches!(
        commit(&b, 0, 0, 4).await,
        CommitOutcome::Fenced { seq: 0 }
    ));
    assert!(!final_exists(dir.path(), 0, 4));
}

#[tokio::test]
async fn a_lost_answer_to_the_create_is_finished_by_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = faulty(dir.path());
    faults.add(FaultRule::new(
        Op::Put,
        "_streamx/commits/",
        FaultAction::ApplyThenFail,
    ));
    let log = CommitLog::new(store.clone(), "topics", "w1");
    assert!(log
        .commit("t", 0, 0, 0, 9, vec![file(0, 0, 9)], vec![])
        .await
        .is_err());
    // The process stops on the error; the next owner finds the commit and publishes it.
    let next = CommitLog::new(store, "topics", "w2");
    assert_eq!(next.recover("t", 0).await.unwrap().next_offset, Some(10));
    assert!(final_exists(dir.path(), 0, 9));
}

#[tokio::test]
async fn recovery_refuses_a_chain_with_a_gap_or_a_missing_link() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = faulty(dir.path());
    let log = CommitLog::new(store.clone(), "topics", "w1");
    commit(&log, 0, 0, 9).await;
    commit(&log, 1, 15, 19).await; // offsets 10..=14 skipped
    let err = log.recover("t", 0).await.unwrap_err();
    assert!(matches!(err, CommitError::BrokenChain { .. }), "{err}");
    assert!(err.to_string().contains("ended at 9"), "{err}");

    // A store that ignores Create lets a second writer replace commit 2: the chain shows it.
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = faulty(dir.path());
    let log = CommitLog::new(store.clone(), "topics", "w1");
    commit(&log, 0, 0, 9).await;
    commit(&log, 2, 10, 19).await; // commit 1 missing
    let err = log.recover("t", 0).await.unwrap_err().to_string();
    assert!(err.contains("commit 1 is missing"), "{err}");
    drop(faults);
}

#[tokio::test]
async fn old_commit_records_are_pruned_and_recovery_reads_a_bounded_number() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = faulty(dir.path());
    let log = CommitLog::new(store, "topics", "w1").keep_commits(3);
    for seq in 0..20u64 {
        let first = seq as i64 * 10;
        commit(&log, seq, first, first + 9).await;
    }
    let left = std::fs::read_dir(dir.path().join("topics/_streamx/commits/t/0"))
        .unwrap()
        .count();
    assert_eq!(left, 3);
    // Recovery lists the partition's records and reads two of them (newest and its link).
    faults.add(FaultRule::new(Op::Get, "_streamx/commits/", FaultAction::Fail).nth(3));
    assert_eq!(log.recover("t", 0).await.unwrap().next_offset, Some(200));
    assert_eq!(
        faults.fired(),
        0,
        "recovery read more than two commit records"
    );
}

#[tokio::test]
async fn the_sweep_finishes_a_half_published_commit_and_deletes_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = faulty(dir.path());
    let log = CommitLog::new(store.clone(), "topics", "w1");
    commit(&log, 0, 0, 9).await;
    // Commit 1 with two files; the second rename fails (the process dies there).
    faults.add(FaultRule::new(Op::Rename, "topics/t/", FaultAction::Fail).nth(2));
    let files = vec![file(0, 10, 14), file(0, 15, 19)];
    assert!(log.commit("t", 0, 1, 10, 19, files, vec![]).await.is_err());
    assert!(final_exists(dir.path(), 10, 14) && !final_exists(dir.path(), 15, 19));
    // Orphans: a fenced writer's file of seq 1, a crash's file of seq 0, one of seq 2 (young).
    for (writer, seq) in [("zombie", 1), ("crashed", 0), ("live", 2)] {
        let key = log.layout().staging("t", 0, writer, seq, "x.raw");
        store
            .inner
            .put(&store.path(&key), Bytes::from_static(b"x").into())
            .await
            .unwrap();
    }
    let other = CommitLog::new(store, "topics", "sweeper");
    let young = StagingCleanup {
        min_age: Duration::from_secs(3600),
    };
    let report = other.sweep(young).await.unwrap();
    assert!(
        final_exists(dir.path(), 15, 19),
        "the sweep published the rest"
    );
    assert_eq!(report.published, 1);
    assert_eq!((report.staging_deleted, report.staging_kept), (2, 1));
    let old = StagingCleanup {
        min_age: Duration::ZERO,
    };
    let report = other.sweep(old).await.unwrap();
    assert_eq!((report.staging_deleted, report.staging_kept), (1, 0));
}

#[tokio::test]
async fn local_commits_are_fsynced_staged_files_before_the_commit_object() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let synced = Arc::new(Mutex::new(Vec::<std::path::PathBuf>::new()));
    let seen = synced.clone();
    let fs = object_store::local::LocalFileSystem::new_with_prefix(&root).unwrap();
    let durable = DurableLocal::new(fs, root.clone()).with_observer(Arc::new(move |p| {
        seen.lock().unwrap().push(p.to_path_buf())
    }));
    let store = Store {
        inner: Arc::new(durable),
        root: Default::default(),
        url: root.display().to_string(),
    };
    let log = CommitLog::new(store, "topics", "w1");
    commit(&log, 0, 0, 9).await;
    let synced = synced.lock().unwrap().clone();
    let pos = |suffix: &str| {
        synced
            .iter()
            .position(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("{suffix} never synced: {synced:?}"))
    };
    let staged = pos("staging/t/0/w1/00000000000000000000/t+0+0000000000+0000000009.raw");
    let record = pos("commits/t/0/00000000000000000000.json");
    let published = pos("partition=0/t+0+0000000000+0000000009.raw");
    assert!(staged < record && record < published, "{synced:?}");
    assert!(synced.contains(&root.join("topics/_streamx/commits/t/0")));
}

#[tokio::test]
async fn a_writer_stalled_in_its_create_loses_to_the_one_that_committed_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = faulty(dir.path());
    faults.add(FaultRule::new(
        Op::Put,
        "_streamx/commits/",
        FaultAction::Stall(Duration::from_secs(2)),
    ));
    let zombie = CommitLog::new(store.clone(), "topics", "zombie");
    let stalled = tokio::spawn(async move { commit(&zombie, 0, 0, 9).await });
    // Poll (with a deadline) until the zombie's create is the one stalled.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while faults.fired() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stall never began"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let owner = CommitLog::new(store, "topics", "owner");
    assert!(matches!(
        commit(&owner, 0, 0, 4).await,
        CommitOutcome::Committed(_)
    ));
    assert!(matches!(
        stalled.await.unwrap(),
        CommitOutcome::Fenced { seq: 0 }
    ));
    assert!(final_exists(dir.path(), 0, 4) && !final_exists(dir.path(), 0, 9));
}
